//! The `PackageStore` suite, including a model-based property check.

use std::collections::HashSet;
use std::io;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use futures::StreamExt;
use marketplace_core::{ContentHash, ContentHasher, ErrorKind, HashAlgorithm, PackageStore};
use proptest::prelude::*;
use tokio::io::{AsyncRead, ReadBuf};

use crate::property::property;
use crate::reference::MemoryPackageStore;
use crate::report::{CheckResult, Context, SuiteReport, ensure, ensure_eq, expect_kind};
use crate::{Capabilities, Tamper};

/// Runs every `PackageStore` check against `store`, which must be empty when the suite starts.
///
/// Checks: store/get round trips (empty, small, multi-chunk), idempotent stores, concurrent
/// stores of the same and of different bodies, missing objects, verified streams, streaming
/// uploads (wrong size hints, bounded memory, and that a failing upload stores nothing),
/// exists/delete, metadata, prefix listing, stats, `copy_to`, corruption beneath the store
/// (with [`Capabilities::with_tamper`]), and a property check against a model over random
/// operation sequences.
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
        .run(
            "upload_stream_trusts_the_body_not_the_hint",
            upload_wrong_hints(s),
        )
        .await;
    if !caps.bounded_upload_memory {
        report.skip(
            "upload_stream_memory_is_bounded",
            "the store keeps its objects in memory (Capabilities::bounded_upload_memory)",
        );
    } else if peak_memory::supported() {
        report
            .run("upload_stream_memory_is_bounded", upload_memory(s))
            .await;
    } else {
        report.skip(
            "upload_stream_memory_is_bounded",
            "peak memory is measured on Linux only",
        );
    }
    report
        .run("failed_upload_stores_nothing", failed_upload(s))
        .await;
    report.run("exists_and_delete", exists_and_delete(s)).await;
    report.run("metadata", metadata(s)).await;
    report.run("list_by_prefix", list(s)).await;
    report.run("stats_count_objects_and_bytes", stats(s)).await;
    report.run("copy_to", copy_to(s)).await;
    match &caps.tamper {
        Some(tamper) => {
            report
                .run("every_read_verifies", every_read_verifies(s, &*tamper.0))
                .await;
        }
        None => report.skip(
            "every_read_verifies",
            "no way to corrupt objects beneath the store given (Capabilities::with_tamper)",
        ),
    }
    report
        .run(
            "model_random_operations",
            model_check(s, caps.property_cases),
        )
        .await;
    match &caps.reopen_store {
        Some(reopen) => {
            report
                .run("objects_survive_reopening", objects_survive(s, &*reopen.0))
                .await;
        }
        None => report.skip(
            "objects_survive_reopening",
            "no way to reopen the store given (Capabilities::with_store_reopen)",
        ),
    }
    report
}

/// Objects, their metadata (creation time included) and the totals read the same through a
/// second handle on the store.
async fn objects_survive(
    s: &dyn PackageStore,
    reopen: &crate::ReopenFn<dyn PackageStore>,
) -> CheckResult {
    let stored = body(300, 70_000);
    let a = s.store(stored.clone()).await.ctx("store")?;
    let uploaded = body(301, 300_000);
    let b = s
        .upload_stream(Box::new(Trickle::new(uploaded.clone(), None)), None)
        .await
        .ctx("upload_stream")?;
    let gone = s.store(body(302, 10)).await.ctx("store")?;
    s.delete(&gone).await.ctx("delete")?;
    let again = reopen().map_err(|e| format!("reopen the store: {e}"))?;
    let again = again.as_ref();
    for (hash, bytes) in [(&a, &stored), (&b, &uploaded)] {
        ensure!(
            again.get(hash).await.ctx("get after reopening")? == *bytes,
            "{hash} reads back differently after reopening"
        );
        ensure_eq!(
            again.metadata(hash).await.ctx("metadata after reopening")?,
            s.metadata(hash).await.ctx("metadata")?,
            "the metadata of {hash} after reopening"
        );
    }
    ensure!(
        !again.exists(&gone).await.ctx("exists after reopening")?,
        "a deleted object is back after reopening"
    );
    ensure_eq!(
        again.stats().await.ctx("stats after reopening")?,
        s.stats().await.ctx("stats")?,
        "the totals after reopening"
    );
    ensure_eq!(
        again
            .list("sha256:", usize::MAX)
            .await
            .ctx("list after reopening")?,
        s.list("sha256:", usize::MAX).await.ctx("list")?,
        "the listing after reopening"
    );
    Ok(())
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
    let created = s.metadata(&first).await.ctx("metadata")?.created;
    // Long enough for any clock to move on: a store that rewrites the object shows it.
    std::thread::sleep(std::time::Duration::from_millis(20));
    s.store(bytes.clone()).await.ctx("store a third time")?;
    s.upload_stream(Box::new(Trickle::new(bytes, None)), None)
        .await
        .ctx("upload the same bytes")?;
    ensure_eq!(
        s.metadata(&first).await.ctx("metadata")?.created,
        created,
        "storing the same bytes again keeps the object as it was (its creation time)"
    );
    ensure_eq!(
        s.stats().await.ctx("stats")?,
        before,
        "uploading the same bytes adds nothing"
    );
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

impl Trickle {
    fn new(body: Bytes, fail_after: Option<usize>) -> Self {
        Trickle {
            body,
            pos: 0,
            fail_after,
        }
    }
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
    let keep = s.store(body(51, 300)).await.ctx("store")?;
    let hash = s.store(body(50, 100)).await.ctx("store")?;
    let before = s.stats().await.ctx("stats")?;
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
    expect_kind(
        s.metadata(&hash).await,
        ErrorKind::NotFound,
        "metadata after delete",
    )?;
    ensure!(
        !s.delete(&hash).await.ctx("delete twice")?,
        "deleting twice says the object existed"
    );
    let after = s.stats().await.ctx("stats")?;
    ensure_eq!(
        (before.objects - after.objects, before.bytes - after.bytes),
        (1, 100),
        "stats shrink by the deleted object (once, though deleted twice)"
    );
    ensure!(
        !s.list("sha256:", usize::MAX)
            .await
            .ctx("list")?
            .contains(&hash),
        "list still shows a deleted object"
    );
    ensure!(
        s.get(&keep).await.ctx("get another object")? == body(51, 300),
        "deleting one object changed another"
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

/// Bodies whose size hint is wrong (too small, too large, zero) or missing: the stored object
/// is everything the reader yielded, and its metadata says how much that was.
async fn upload_wrong_hints(s: &dyn PackageStore) -> CheckResult {
    let cases: [(u64, usize, Option<u64>); 5] = [
        (31, 1_200_000, Some(1_000)),
        (32, 1_200_000, Some(0)),
        (33, 200_000, Some(50 * 1024 * 1024)),
        (34, 9 * 1024 * 1024 + 5, None),
        (35, 9 * 1024 * 1024 + 6, Some(4096)),
    ];
    for (seed, len, hint) in cases {
        let bytes = body(seed, len);
        let what = format!("upload_stream of {len} bytes with size hint {hint:?}");
        let hash = s
            .upload_stream(Box::new(Trickle::new(bytes.clone(), None)), hint)
            .await
            .ctx(&what)?;
        ensure_eq!(hash, ContentHash::sha256(&bytes), "{what}: the address");
        let got = s.get(&hash).await.ctx(format!("{what}: get"))?;
        ensure!(
            got == bytes,
            "{what}: read back {} bytes that differ",
            got.len()
        );
        ensure_eq!(
            s.metadata(&hash)
                .await
                .ctx(format!("{what}: metadata"))?
                .size,
            len as u64,
            "{what}: the metadata size"
        );
        s.delete(&hash).await.ctx("clean up")?;
    }
    Ok(())
}

/// The size of the body the memory check uploads, and the most the process may grow by while
/// uploading it: a store that reads the whole body before writing it grows by at least the
/// body.
const LARGE_BODY: u64 = 96 * 1024 * 1024;
const UPLOAD_MEMORY_LIMIT: u64 = LARGE_BODY / 2;

/// `len` bytes made on the fly from one 1 MiB block, each copy stamped with its index, so the
/// reader itself holds 1 MiB whatever the length.
struct Generated {
    block: Vec<u8>,
    pos: u64,
    len: u64,
}

impl Generated {
    const BLOCK: u64 = 1024 * 1024;

    fn new(len: u64) -> Self {
        Generated {
            block: body(77, Self::BLOCK as usize).to_vec(),
            pos: 0,
            len,
        }
    }

    /// The piece at the current position, at most `max` bytes, stamped with its block index.
    fn piece(&self, max: usize) -> Vec<u8> {
        let in_block = (self.pos % Self::BLOCK) as usize;
        let n = (Self::BLOCK as usize - in_block)
            .min(max)
            .min((self.len - self.pos) as usize);
        let mut piece = self.block[in_block..in_block + n].to_vec();
        let stamp = (self.pos / Self::BLOCK).to_le_bytes();
        for (i, b) in piece
            .iter_mut()
            .enumerate()
            .take(stamp.len().saturating_sub(in_block))
        {
            *b = stamp[in_block + i];
        }
        piece
    }

    /// The address of the whole body, computed piece by piece.
    fn hash(len: u64) -> ContentHash {
        let mut hasher = ContentHasher::new(HashAlgorithm::Sha256).expect("sha256 is built in");
        let mut body = Generated::new(len);
        while body.pos < body.len {
            let piece = body.piece(usize::MAX);
            body.pos += piece.len() as u64;
            hasher.update(&piece);
        }
        hasher.finish()
    }
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.len {
            let piece = self.piece(buf.remaining().min(64 * 1024));
            buf.put_slice(&piece);
            self.pos += piece.len() as u64;
        }
        Poll::Ready(Ok(()))
    }
}

/// Held while the process's peak memory is measured: two measurements at once (two store
/// suites in one test binary) would each see the other's upload.
static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn upload_memory(s: &dyn PackageStore) -> CheckResult {
    let want = Generated::hash(LARGE_BODY);
    let _measuring = MEASURING.lock().await;
    for hint in [Some(LARGE_BODY), None] {
        let what = format!(
            "upload_stream of {} MiB (size hint {hint:?})",
            LARGE_BODY >> 20
        );
        let baseline = peak_memory::reset().map_err(|e| format!("reset the peak memory: {e}"))?;
        let hash = s
            .upload_stream(Box::new(Generated::new(LARGE_BODY)), hint)
            .await
            .ctx(&what)?;
        let peak = peak_memory::peak().map_err(|e| format!("read the peak memory: {e}"))?;
        ensure_eq!(hash, want, "{what}: the address");
        let grew = peak.saturating_sub(baseline);
        ensure!(
            grew <= UPLOAD_MEMORY_LIMIT,
            "{what}: the process grew by {} MiB (at most {} MiB allowed): the body is held in memory",
            grew >> 20,
            UPLOAD_MEMORY_LIMIT >> 20
        );
        ensure_eq!(
            s.metadata(&hash).await.ctx("metadata")?.size,
            LARGE_BODY,
            "{what}: the metadata size"
        );
        s.delete(&hash).await.ctx("clean up")?;
    }
    Ok(())
}

/// The process's peak resident memory, on Linux: reset it, then read how high it went.
mod peak_memory {
    /// Whether this platform can measure it.
    pub(super) fn supported() -> bool {
        cfg!(target_os = "linux") && reset().is_ok()
    }

    /// Resets the peak to the current resident memory, and returns it (bytes).
    pub(super) fn reset() -> std::io::Result<u64> {
        std::fs::write("/proc/self/clear_refs", "5")?;
        peak()
    }

    /// The peak resident memory since the last reset (bytes).
    pub(super) fn peak() -> std::io::Result<u64> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib * 1024)
            .ok_or_else(|| std::io::Error::other("no VmHWM line in /proc/self/status"))
    }
}

/// Corrupts objects beneath the store in four ways and reads each through every path: `get`
/// and `copy_to` fail with `Integrity` (and copy nothing), and a stream read to its end ends
/// with an `Integrity` error after at most the stored bytes.
/// A way to corrupt an object's bytes.
type Corrupt = fn(&[u8]) -> Vec<u8>;

async fn every_read_verifies(s: &dyn PackageStore, tamper: &dyn Tamper) -> CheckResult {
    let corruptions: [(&str, Corrupt); 5] = [
        ("a flipped byte in the middle", |b| {
            let mut v = b.to_vec();
            let mid = v.len() / 2;
            v[mid] ^= 0x01;
            v
        }),
        ("a flipped last byte", |b| {
            let mut v = b.to_vec();
            let last = v.len() - 1;
            v[last] ^= 0x80;
            v
        }),
        ("one byte short", |b| b[..b.len() - 1].to_vec()),
        ("one byte more", |b| [b, b"\0"].concat()),
        ("nothing at all", |_| Vec::new()),
    ];
    for (i, (what, corrupt)) in corruptions.iter().enumerate() {
        for len in [10usize, 300_000] {
            let bytes = body(200 + i as u64 * 2 + u64::from(len > 10), len);
            let hash = s.store(bytes.clone()).await.ctx("store")?;
            tamper
                .replace(&hash, Bytes::from(corrupt(&bytes)))
                .await
                .map_err(|e| format!("tamper with {hash}: {e}"))?;
            let case = format!("{len} bytes, then {what} beneath the store");
            expect_kind(
                s.get(&hash).await,
                ErrorKind::Integrity,
                format!("get of {case}"),
            )?;
            match s.stream(&hash).await {
                // Refusing at once is as good as failing at the end.
                Err(e) if e.kind() == ErrorKind::Integrity => {}
                Err(e) => return Err(format!("stream of {case}: {e}")),
                Ok(mut stream) => {
                    let mut outcome = None;
                    while let Some(item) = stream.next().await {
                        if let Err(e) = item {
                            outcome = Some(e);
                            break;
                        }
                    }
                    match outcome {
                        Some(e) if e.kind() == ErrorKind::Integrity => {}
                        Some(e) => {
                            return Err(format!(
                                "stream of {case}: failed with {e}, not an Integrity error"
                            ));
                        }
                        None => {
                            return Err(format!(
                                "stream of {case}: ended cleanly, so a caller accepts bad bytes"
                            ));
                        }
                    }
                }
            }
            let target = MemoryPackageStore::new();
            expect_kind(
                s.copy_to(&hash, &target).await,
                ErrorKind::Integrity,
                format!("copy_to of {case}"),
            )?;
            ensure!(
                !target
                    .exists(&hash)
                    .await
                    .ctx("exists in the copy's target")?,
                "copy_to of {case} left an object in the target"
            );
            s.delete(&hash).await.ctx("clean up")?;
        }
    }
    Ok(())
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
