//! The `PackageStore` suite, including a model-based property check.

use std::collections::HashSet;
use std::io;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use futures::StreamExt;
use marketplace_core::{ContentHash, ErrorKind, PackageStore};
use proptest::prelude::*;
use tokio::io::{AsyncRead, ReadBuf};

use crate::Capabilities;
use crate::property::property;
use crate::reference::MemoryPackageStore;
use crate::report::{CheckResult, Context, SuiteReport, ensure, ensure_eq, expect_kind};

/// Runs every `PackageStore` check against `store`, which must be empty when the suite starts.
///
/// Checks: store/get round trips (empty, small, multi-chunk), idempotent stores, concurrent
/// stores of the same and of different bodies, missing objects, verified streams, streaming uploads (and that a failing upload stores nothing),
/// exists/delete, metadata, prefix listing, stats, `copy_to`, and a property check against a
/// model over random operation sequences.
pub async fn store_suite(store: &dyn PackageStore, caps: &Capabilities) -> SuiteReport {
    let s = store;
    let mut report = SuiteReport::new("store", caps);
    report.run("store_then_get", store_then_get(s)).await;
    report.run("store_is_idempotent", idempotent(s)).await;
    report
        .run("concurrent_stores_keep_one_object", concurrent(s))
        .await;
    report.run("missing_is_not_found", missing(s)).await;
    report.run("stream_yields_the_bytes", stream(s)).await;
    report.run("upload_stream", upload_stream(s)).await;
    report
        .run("failed_upload_stores_nothing", failed_upload(s))
        .await;
    report.run("exists_and_delete", exists_and_delete(s)).await;
    report.run("metadata", metadata(s)).await;
    report.run("list_by_prefix", list(s)).await;
    report.run("stats_count_objects_and_bytes", stats(s)).await;
    report.run("copy_to", copy_to(s)).await;
    report
        .run(
            "model_random_operations",
            model_check(s, caps.property_cases),
        )
        .await;
    report
}

/// Deterministic pseudo-random bytes, so that large bodies do not compress to nothing.
fn body(seed: u64, len: usize) -> Bytes {
    let mut x = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

async fn store_then_get(s: &dyn PackageStore) -> CheckResult {
    for (seed, len) in [(1, 0), (2, 1), (3, 1000), (4, 300_000)] {
        let bytes = body(seed, len);
        let hash = s
            .store(bytes.clone())
            .await
            .ctx(format!("store {len} bytes"))?;
        ensure_eq!(
            hash,
            ContentHash::sha256(&bytes),
            "the address of {len} bytes is their SHA-256"
        );
        let got = s.get(&hash).await.ctx(format!("get {hash}"))?;
        ensure!(
            got == bytes,
            "get {hash} returned {} bytes that differ from the {len} stored",
            got.len()
        );
    }
    Ok(())
}

async fn idempotent(s: &dyn PackageStore) -> CheckResult {
    let bytes = body(10, 5000);
    let first = s.store(bytes.clone()).await.ctx("store")?;
    let before = s.stats().await.ctx("stats")?;
    let second = s.store(bytes.clone()).await.ctx("store again")?;
    ensure_eq!(second, first, "the same bytes get the same address");
    let after = s.stats().await.ctx("stats")?;
    ensure_eq!(after, before, "storing the same bytes again adds nothing");
    Ok(())
}

/// Eight tasks store the same 1.5 MiB body while four store bodies of their own: every store
/// succeeds with the body's address, the same bytes are kept once, and every object reads back.
async fn concurrent(s: &dyn PackageStore) -> CheckResult {
    let same = body(20, 1_536 * 1024);
    let others: Vec<Bytes> = (0..4).map(|i| body(21 + i, 700_000 + i as usize)).collect();
    let before = s.stats().await.ctx("stats")?;
    let stores = (0..8)
        .map(|_| same.clone())
        .chain(others.iter().cloned())
        .map(|bytes| async move { (s.store(bytes.clone()).await, bytes) });
    for (result, bytes) in futures::future::join_all(stores).await {
        let hash = result.ctx(format!("a concurrent store of {} bytes", bytes.len()))?;
        ensure_eq!(
            hash,
            ContentHash::sha256(&bytes),
            "a concurrent store returns the body's SHA-256"
        );
        let got = s.get(&hash).await.ctx(format!("get {hash}"))?;
        ensure!(got == bytes, "{hash} reads back different bytes");
    }
    let after = s.stats().await.ctx("stats")?;
    let added: u64 = std::iter::once(&same)
        .chain(&others)
        .map(|b| b.len() as u64)
        .sum();
    ensure_eq!(
        (after.objects - before.objects, after.bytes - before.bytes),
        (5, added),
        "stats grow by one object per distinct body"
    );
    Ok(())
}

async fn missing(s: &dyn PackageStore) -> CheckResult {
    let hash = ContentHash::sha256(b"never stored by the conformance kit");
    expect_kind(
        s.get(&hash).await,
        ErrorKind::NotFound,
        "get a missing object",
    )?;
    expect_kind(
        s.stream(&hash).await.map(|_| ()),
        ErrorKind::NotFound,
        "stream a missing object",
    )?;
    expect_kind(
        s.metadata(&hash).await,
        ErrorKind::NotFound,
        "metadata of a missing object",
    )?;
    ensure!(
        !s.exists(&hash).await.ctx("exists")?,
        "exists says a missing object exists"
    );
    Ok(())
}

async fn collect(s: &dyn PackageStore, hash: &ContentHash) -> Result<Vec<u8>, String> {
    let mut stream = s.stream(hash).await.ctx(format!("stream {hash}"))?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.ctx(format!("read the stream of {hash}"))?);
    }
    Ok(out)
}

async fn stream(s: &dyn PackageStore) -> CheckResult {
    for (seed, len) in [(20, 0), (21, 10), (22, 1_000_000)] {
        let bytes = body(seed, len);
        let hash = s.store(bytes.clone()).await.ctx("store")?;
        let streamed = collect(s, &hash).await?;
        ensure!(
            streamed == bytes,
            "the stream of {len} bytes differs from what was stored ({} bytes)",
            streamed.len()
        );
    }
    Ok(())
}

/// A reader yielding `body` in small pieces, optionally failing after `fail_after` bytes.
struct Trickle {
    body: Bytes,
    pos: usize,
    fail_after: Option<usize>,
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.fail_after.is_some_and(|n| self.pos >= n) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "conformance kit: upload interrupted",
            )));
        }
        let end = (self.pos + 7919)
            .min(self.body.len())
            .min(self.pos + buf.remaining());
        buf.put_slice(&self.body[self.pos..end]);
        self.pos = end;
        Poll::Ready(Ok(()))
    }
}

async fn upload_stream(s: &dyn PackageStore) -> CheckResult {
    let bytes = body(30, 3 * 1024 * 1024 + 17);
    let reader = Trickle {
        body: bytes.clone(),
        pos: 0,
        fail_after: None,
    };
    let hash = s
        .upload_stream(Box::new(reader), Some(bytes.len() as u64))
        .await
        .ctx("upload_stream 3 MiB")?;
    ensure_eq!(
        hash,
        ContentHash::sha256(&bytes),
        "the address of an uploaded body"
    );
    let got = s.get(&hash).await.ctx("get the uploaded body")?;
    ensure!(got == bytes, "the uploaded body reads back differently");
    let empty = Trickle {
        body: Bytes::new(),
        pos: 0,
        fail_after: None,
    };
    let hash = s
        .upload_stream(Box::new(empty), None)
        .await
        .ctx("upload_stream of nothing")?;
    ensure_eq!(
        hash,
        ContentHash::sha256(b""),
        "the address of an empty upload"
    );
    Ok(())
}

async fn failed_upload(s: &dyn PackageStore) -> CheckResult {
    let bytes = body(40, 200_000);
    let before = s.stats().await.ctx("stats")?;
    let reader = Trickle {
        body: bytes.clone(),
        pos: 0,
        fail_after: Some(100_000),
    };
    let result = s
        .upload_stream(Box::new(reader), Some(bytes.len() as u64))
        .await;
    ensure!(
        result.is_err(),
        "an upload whose reader fails must fail, got {result:?}"
    );
    ensure_eq!(
        s.stats().await.ctx("stats")?,
        before,
        "a failed upload stores nothing"
    );
    ensure!(
        !s.exists(&ContentHash::sha256(&bytes)).await.ctx("exists")?,
        "a failed upload is visible"
    );
    Ok(())
}

async fn exists_and_delete(s: &dyn PackageStore) -> CheckResult {
    let hash = s.store(body(50, 100)).await.ctx("store")?;
    ensure!(
        s.exists(&hash).await.ctx("exists")?,
        "a stored object does not exist"
    );
    ensure!(
        s.delete(&hash).await.ctx("delete")?,
        "delete of a stored object says it was absent"
    );
    ensure!(
        !s.exists(&hash).await.ctx("exists after delete")?,
        "a deleted object exists"
    );
    expect_kind(s.get(&hash).await, ErrorKind::NotFound, "get after delete")?;
    ensure!(
        !s.delete(&hash).await.ctx("delete twice")?,
        "deleting twice says the object existed"
    );
    Ok(())
}

async fn metadata(s: &dyn PackageStore) -> CheckResult {
    let started = marketplace_core::time::OffsetDateTime::now_utc()
        - marketplace_core::time::Duration::seconds(2);
    let bytes = body(60, 12_345);
    let hash = s.store(bytes).await.ctx("store")?;
    let meta = s.metadata(&hash).await.ctx("metadata")?;
    ensure_eq!(meta.hash, hash, "metadata names its object");
    ensure_eq!(meta.size, 12_345, "metadata size");
    let now = marketplace_core::time::OffsetDateTime::now_utc()
        + marketplace_core::time::Duration::seconds(2);
    ensure!(
        meta.created >= started && meta.created <= now,
        "created {} is not around now",
        meta.created
    );
    Ok(())
}

async fn list(s: &dyn PackageStore) -> CheckResult {
    let mut hashes = Vec::new();
    for seed in 70..80 {
        hashes.push(s.store(body(seed, 64)).await.ctx("store")?);
    }
    let all = s.list("sha256:", usize::MAX).await.ctx("list sha256:")?;
    for h in &hashes {
        ensure!(all.contains(h), "list does not show {h}");
    }
    let texts: Vec<String> = all.iter().map(ToString::to_string).collect();
    let mut sorted = texts.clone();
    sorted.sort();
    ensure_eq!(texts, sorted, "list is ascending");
    let everything = s
        .list("", usize::MAX)
        .await
        .ctx("list with an empty prefix")?;
    ensure_eq!(everything, all, "an empty prefix lists everything");
    let prefix = format!("sha256:{}", &hashes[0].hex()[..2]);
    let some = s
        .list(&prefix, usize::MAX)
        .await
        .ctx(format!("list {prefix}"))?;
    ensure!(
        some.contains(&hashes[0]),
        "list {prefix} misses {}",
        hashes[0]
    );
    ensure!(
        some.iter().all(|h| h.to_string().starts_with(&prefix)),
        "list {prefix} returned others: {some:?}"
    );
    let three = s.list("sha256:", 3).await.ctx("list with limit 3")?;
    ensure_eq!(
        three,
        all[..3].to_vec(),
        "list with a limit returns the first entries"
    );
    Ok(())
}

async fn stats(s: &dyn PackageStore) -> CheckResult {
    let before = s.stats().await.ctx("stats")?;
    s.store(body(90, 1000)).await.ctx("store")?;
    s.store(body(91, 2500)).await.ctx("store")?;
    let after = s.stats().await.ctx("stats")?;
    ensure_eq!(
        (after.objects - before.objects, after.bytes - before.bytes),
        (2, 3500),
        "stats grow by (objects, bytes)"
    );
    Ok(())
}

async fn copy_to(s: &dyn PackageStore) -> CheckResult {
    let bytes = body(100, 400_000);
    let hash = s.store(bytes.clone()).await.ctx("store")?;
    let target = MemoryPackageStore::new();
    s.copy_to(&hash, &target).await.ctx("copy_to")?;
    let copied = target.get(&hash).await.ctx("get the copy")?;
    ensure!(copied == bytes, "the copy differs from the original");
    expect_kind(
        s.copy_to(&ContentHash::sha256(b"missing"), &target).await,
        ErrorKind::NotFound,
        "copy a missing object",
    )
}

#[derive(Debug, Clone)]
enum Op {
    Store(usize),
    Get(usize),
    Delete(usize),
    Exists(usize),
}

async fn model_check(s: &dyn PackageStore, cases: u32) -> CheckResult {
    let blob = 0usize..4;
    let op = prop_oneof![
        3 => blob.clone().prop_map(Op::Store),
        2 => blob.clone().prop_map(Op::Get),
        2 => blob.clone().prop_map(Op::Delete),
        1 => blob.prop_map(Op::Exists),
    ];
    property(cases, proptest::collection::vec(op, 1..30), |ops, case| {
        Box::pin(async move {
            let blobs: Vec<Bytes> = (0..4)
                .map(|i| body(10_000 + u64::from(case) * 8 + i, 100 + i as usize * 37))
                .collect();
            let mut stored: HashSet<usize> = HashSet::new();
            for (step, op) in ops.iter().enumerate() {
                let doing = format!("step {step} {op:?}");
                match op {
                    Op::Store(i) => {
                        let h = s.store(blobs[*i].clone()).await.ctx(&doing)?;
                        ensure_eq!(h, ContentHash::sha256(&blobs[*i]), "{doing}");
                        stored.insert(*i);
                    }
                    Op::Get(i) => {
                        let got = s.get(&ContentHash::sha256(&blobs[*i])).await;
                        if stored.contains(i) {
                            ensure!(got.ctx(&doing)? == blobs[*i], "{doing}: wrong bytes");
                        } else {
                            expect_kind(got, ErrorKind::NotFound, &doing)?;
                        }
                    }
                    Op::Delete(i) => {
                        let existed = s
                            .delete(&ContentHash::sha256(&blobs[*i]))
                            .await
                            .ctx(&doing)?;
                        ensure_eq!(existed, stored.remove(i), "{doing}");
                    }
                    Op::Exists(i) => {
                        let exists = s
                            .exists(&ContentHash::sha256(&blobs[*i]))
                            .await
                            .ctx(&doing)?;
                        ensure_eq!(exists, stored.contains(i), "{doing}");
                    }
                }
            }
            for i in stored {
                s.delete(&ContentHash::sha256(&blobs[i]))
                    .await
                    .ctx("clean up")?;
            }
            Ok(())
        })
    })
    .await
}
