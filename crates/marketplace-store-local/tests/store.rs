//! Corruption on disk, large and interrupted uploads, staging clean-up, and files in the
//! store's directory that are not its objects.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use marketplace_core::{ContentHash, ErrorKind, PackageStore};
use marketplace_store_local::LocalPackageStore;

/// Larger than any piece or chunk the store handles at once.
const LARGE: usize = 9 * 1024 * 1024;
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

async fn large_round_trip(store: &LocalPackageStore) {
    let data = body(LARGE + 12_345, 7);
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
        .expect("large upload");
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
    let other = body(LARGE, 9);
    let result = store
        .upload_stream(
            Box::new(Source {
                body: other.clone(),
                pos: 0,
                fail_at: Some(LARGE / 2 + 1000),
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
async fn large_uploads_in_a_directory_and_in_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    large_round_trip(&LocalPackageStore::open(dir.path()).expect("local")).await;
    large_round_trip(&LocalPackageStore::in_memory()).await;
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
    let store = LocalPackageStore::open(dir.path()).expect("local");
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
    let store = LocalPackageStore::open(dir.path()).expect("local");
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

/// Files that are not objects (an editor's backup, a stray directory, a name of the wrong
/// length or case) are neither listed nor counted, and never break a listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_files_are_not_objects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalPackageStore::open(dir.path()).expect("local");
    let hash = store
        .store(Bytes::from_static(b"one"))
        .await
        .expect("store");
    let hex = hash.hex();
    let shard = dir.path().join("sha256").join(&hex[0..2]).join(&hex[2..4]);
    std::fs::write(shard.join(format!("{hex}~")), b"backup").expect("write");
    std::fs::write(shard.join(hex.to_uppercase()), b"upper").expect("write");
    std::fs::write(shard.join(&hex[..10]), b"short").expect("write");
    std::fs::create_dir_all(dir.path().join("sha256/zz/qq")).expect("mkdir");
    std::fs::write(dir.path().join("sha256/README"), b"hello").expect("write");
    assert_eq!(store.list("", 10).await.expect("list"), vec![hash.clone()]);
    assert_eq!(
        store
            .list(&format!("sha256:{}", &hex[..5]), 10)
            .await
            .expect("list"),
        vec![hash.clone()]
    );
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.objects, stats.bytes), (1, 3));
}
