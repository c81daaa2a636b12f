//! Corruption on disk, multipart uploads, interrupted uploads and staging clean-up.

mod common;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use marketplace_core::{ContentHash, ErrorKind, PackageStore};
use marketplace_store_objectstore::{ObjectStorePackageStore, PART_SIZE};
use tokio::io::{AsyncRead, ReadBuf};

fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

/// Yields `body`, failing after `fail_at` bytes if set.
struct Source {
    body: Vec<u8>,
    pos: usize,
    fail_at: Option<usize>,
}

impl AsyncRead for Source {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.fail_at.is_some_and(|n| self.pos >= n) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "client went away",
            )));
        }
        let end = (self.pos + 256 * 1024)
            .min(self.body.len())
            .min(self.pos + buf.remaining());
        buf.put_slice(&self.body[self.pos..end]);
        self.pos = end;
        Poll::Ready(Ok(()))
    }
}

async fn multipart_round_trip(store: &ObjectStorePackageStore) {
    let data = body(2 * PART_SIZE + 12_345, 7);
    let hash = store
        .upload_stream(
            Box::new(Source {
                body: data.clone(),
                pos: 0,
                fail_at: None,
            }),
            Some(data.len() as u64),
        )
        .await
        .expect("multipart upload");
    assert_eq!(hash, ContentHash::sha256(&data));
    assert_eq!(
        store.get(&hash).await.expect("get").as_ref(),
        data.as_slice()
    );
    assert_eq!(
        store.metadata(&hash).await.expect("metadata").size,
        data.len() as u64
    );

    // The same bytes again: one object.
    let before = store.stats().await.expect("stats");
    store
        .upload_stream(
            Box::new(Source {
                body: data.clone(),
                pos: 0,
                fail_at: None,
            }),
            None,
        )
        .await
        .expect("second upload");
    assert_eq!(store.stats().await.expect("stats"), before);

    // An upload that fails half-way stores nothing and leaves no staging object behind.
    let other = body(2 * PART_SIZE, 9);
    let result = store
        .upload_stream(
            Box::new(Source {
                body: other.clone(),
                pos: 0,
                fail_at: Some(PART_SIZE + 1000),
            }),
            None,
        )
        .await;
    assert!(result.is_err(), "an interrupted upload must fail");
    assert!(
        !store
            .exists(&ContentHash::sha256(&other))
            .await
            .expect("exists")
    );
    assert_eq!(store.stats().await.expect("stats"), before);
    assert_eq!(
        store
            .cleanup_staging(Duration::ZERO)
            .await
            .expect("cleanup"),
        0,
        "abort left a staging object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_on_every_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    multipart_round_trip(&ObjectStorePackageStore::local(dir.path()).expect("local")).await;
    multipart_round_trip(&ObjectStorePackageStore::in_memory()).await;
    if let Some(server) = marketplace_testing::s3::S3Server::start() {
        multipart_round_trip(&common::s3_store(&server, "multipart")).await;
    }
}

/// Small objects are read and hashed in one piece; large ones are hashed on a second thread
/// while later pieces are read, and streamed as ranges: each path must catch one flipped bit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipping_one_byte_on_disk_is_an_integrity_error() {
    for (size, flip) in [
        (300_000, 150_000),
        (9 * 1024 * 1024 + 123, 5 * 1024 * 1024 + 7),
    ] {
        flipped_byte_is_refused(size, flip).await;
    }
}

async fn flipped_byte_is_refused(size: usize, flip: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ObjectStorePackageStore::local(dir.path()).expect("local");
    let data = body(size, 3);
    let hash = store.store(Bytes::from(data)).await.expect("store");
    let hex = hash.hex();
    let file = dir
        .path()
        .join("sha256")
        .join(&hex[0..2])
        .join(&hex[2..4])
        .join(&hex);
    let mut raw = std::fs::read(&file).expect("the object is a file at its sharded path");
    raw[flip] ^= 0x01;
    std::fs::write(&file, &raw).expect("corrupt it");

    let err = store
        .get(&hash)
        .await
        .expect_err("get must refuse corrupted bytes");
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");

    let mut stream = store.stream(&hash).await.expect("stream opens");
    let mut last = None;
    while let Some(item) = stream.next().await {
        last = Some(item);
    }
    match last {
        Some(Err(e)) => assert_eq!(e.kind(), ErrorKind::Integrity, "{e}"),
        other => panic!(
            "a fully consumed stream of corrupted bytes must end with Integrity, got {other:?}"
        ),
    }
}

#[tokio::test]
async fn leftovers_of_a_crash_are_cleaned_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ObjectStorePackageStore::local(dir.path()).expect("local");
    std::fs::create_dir_all(dir.path().join("staging")).expect("mkdir");
    std::fs::write(dir.path().join("staging/12345-0-0"), b"half an upload").expect("leftover");
    assert_eq!(
        store.stats().await.expect("stats").objects,
        0,
        "staging objects are not objects"
    );
    assert!(store.list("", 10).await.expect("list").is_empty());
    assert_eq!(
        store
            .cleanup_staging(Duration::from_secs(3600))
            .await
            .expect("cleanup"),
        0,
        "young leftovers stay"
    );
    assert_eq!(
        store
            .cleanup_staging(Duration::ZERO)
            .await
            .expect("cleanup"),
        1
    );
    assert!(!dir.path().join("staging/12345-0-0").exists());
}

/// HTTPS to S3 runs on rustls with ring (no second crypto library): building a store for an
/// `https://` endpoint and using it must reach the network layer, not panic for want of a
/// crypto provider. Nothing listens on the port, so the read is a transient backend error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_endpoints_use_ring_for_tls() {
    use marketplace_store_objectstore::S3Config;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let store = ObjectStorePackageStore::s3(S3Config::compatible(
        "tls-check",
        format!("https://127.0.0.1:{port}"),
        "us-east-1",
        "key",
        "secret",
    ))
    .expect("an https S3 store");
    let hash = ContentHash::sha256(b"anything");
    let err = store.get(&hash).await.expect_err("nothing listens there");
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_some(),
        "the store installed a provider"
    );
}
