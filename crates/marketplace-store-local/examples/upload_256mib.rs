//! Streams 256 MiB of generated data into a local store with `upload_stream`, to measure peak
//! memory: `cargo build --release --example upload_256mib -p marketplace-store-local` then
//! `/usr/bin/time -v target/release/examples/upload_256mib` and read "Maximum resident set size".

use std::pin::Pin;
use std::task::{Context, Poll};

use marketplace_core::PackageStore;
use marketplace_store_local::LocalPackageStore;
use tokio::io::{AsyncRead, ReadBuf};

const TOTAL: u64 = 256 * 1024 * 1024;

/// Generates `TOTAL` bytes without ever holding them.
struct Generated {
    sent: u64,
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (TOTAL - self.sent)
            .min(buf.remaining() as u64)
            .min(64 * 1024) as usize;
        let start = self.sent;
        let chunk: Vec<u8> = (0..n as u64)
            .map(|i| (((start + i) * 2_654_435_761) >> 13) as u8)
            .collect();
        buf.put_slice(&chunk);
        self.sent += n as u64;
        Poll::Ready(Ok(()))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = LocalPackageStore::open(dir.path())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let hash =
        runtime.block_on(store.upload_stream(Box::new(Generated { sent: 0 }), Some(TOTAL)))?;
    let size = runtime.block_on(store.metadata(&hash))?.size;
    println!("uploaded {size} bytes as {hash}");
    Ok(())
}
