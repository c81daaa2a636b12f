//! Stores with one defect each: a directory store written as a third party would write it
//! (one file per object, named by its digest), correct unless told which mistake to make.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use marketplace_conformance::{Capabilities, SuiteReport, Tamper, store_suite};
use marketplace_core::time::OffsetDateTime;
use marketplace_core::{
    ByteStream, ContentHash, ContentHasher, Error, HashAlgorithm, PackageStore, Result,
    StorageMetadata, StorageStats, async_trait,
};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::common::defect;

/// The one mistake a [`DirStore`] makes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mistake {
    /// `get` returns the file's bytes without hashing them.
    GetUnverified,
    /// `stream` yields the file's chunks without hashing them.
    StreamUnverified,
    /// `stream` checks the length it read against the file's, not the digest.
    StreamChecksOnlyTheLength,
    /// `copy_to` copies the file's bytes straight into the target.
    CopyUnverified,
    /// `upload_stream` reads the whole body into memory before writing it.
    UploadBuffersTheBody,
    /// `upload_stream` stops reading at the size hint.
    UploadStopsAtTheHint,
    /// `metadata` reports the size hint of the upload that made the object.
    SizeFromTheHint,
    /// `stats` keep counting deleted objects.
    StatsKeepDeleted,
    /// `list` returns every match whatever the limit.
    ListIgnoresTheLimit,
    /// `list` ignores the prefix.
    ListIgnoresThePrefix,
    /// `list` in the order the directory gives.
    ListUnsorted,
    /// `exists` checks the directory is readable, not the object.
    ExistsAlwaysTrue,
    /// `store` rewrites the file every time (a new creation time).
    StoreRewrites,
    /// `upload_stream` writes straight to the object's name: a failed upload leaves a partial
    /// object there.
    UploadInPlace,
    /// `get` of a missing object answers with no bytes.
    MissingIsEmpty,
    /// `delete` answers whether the directory exists.
    DeleteAlwaysTrue,
}

/// A store of one file per object in a directory, with a sidecar file recording the object's
/// creation time and size.
struct DirStore {
    dir: tempfile::TempDir,
    mistake: Option<Mistake>,
}

impl DirStore {
    fn new(mistake: Option<Mistake>) -> Self {
        DirStore {
            dir: tempfile::tempdir().expect("a temporary directory"),
            mistake,
        }
    }

    fn makes(&self, mistake: Mistake) -> bool {
        self.mistake == Some(mistake)
    }

    fn path(&self, hash: &ContentHash) -> PathBuf {
        self.dir.path().join(hash.hex())
    }

    fn sidecar(&self, hash: &ContentHash) -> PathBuf {
        self.dir.path().join(format!("{}.meta", hash.hex()))
    }

    fn read(&self, hash: &ContentHash) -> Result<Bytes> {
        match std::fs::read(self.path(hash)) {
            Ok(bytes) => Ok(bytes.into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::not_found(format!("object {hash}")))
            }
            Err(e) => Err(io("read an object", e)),
        }
    }

    fn verified(&self, hash: &ContentHash, bytes: Bytes) -> Result<Bytes> {
        let actual = ContentHash::sha256(&bytes);
        if &actual != hash {
            return Err(Error::integrity(format!("object {hash}"), hash, actual));
        }
        Ok(bytes)
    }

    /// Writes `bytes` as the object `hash` (through a staging file) unless it exists.
    fn put(&self, hash: &ContentHash, bytes: &[u8], size_hint: Option<u64>) -> Result<()> {
        if self.path(hash).exists() && !self.makes(Mistake::StoreRewrites) {
            return Ok(());
        }
        let staging = self.dir.path().join(format!("staging-{}", hash.hex()));
        std::fs::write(&staging, bytes).map_err(|e| io("write an object", e))?;
        std::fs::rename(&staging, self.path(hash)).map_err(|e| io("move an object", e))?;
        let size = match size_hint {
            Some(hint) if self.makes(Mistake::SizeFromTheHint) => hint,
            _ => bytes.len() as u64,
        };
        let created = OffsetDateTime::now_utc().unix_timestamp_nanos();
        std::fs::write(self.sidecar(hash), format!("{created} {size}"))
            .map_err(|e| io("write an object's metadata", e))
    }

    fn objects(&self) -> Result<Vec<ContentHash>> {
        let mut hashes = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).map_err(|e| io("list", e))? {
            let name = entry.map_err(|e| io("list", e))?.file_name();
            let name = name.to_string_lossy();
            if name.len() == 64 && !name.contains('.') {
                hashes.push(format!("sha256:{name}").parse()?);
            }
        }
        Ok(hashes)
    }

    fn deleted(&self) -> PathBuf {
        self.dir.path().join("deleted.log")
    }
}

fn io(operation: &str, e: std::io::Error) -> Error {
    Error::backend("dirstore", operation, e, false)
}

#[async_trait]
impl PackageStore for DirStore {
    async fn store(&self, bytes: Bytes) -> Result<ContentHash> {
        let hash = ContentHash::sha256(&bytes);
        self.put(&hash, &bytes, None)?;
        Ok(hash)
    }

    async fn get(&self, hash: &ContentHash) -> Result<Bytes> {
        let bytes = match self.read(hash) {
            Err(Error::NotFound { .. }) if self.makes(Mistake::MissingIsEmpty) => {
                return Ok(Bytes::new());
            }
            other => other?,
        };
        if self.makes(Mistake::GetUnverified) {
            return Ok(bytes);
        }
        self.verified(hash, bytes)
    }

    async fn stream(&self, hash: &ContentHash) -> Result<ByteStream> {
        let bytes = self.read(hash)?;
        let expected_len = std::fs::read_to_string(self.sidecar(hash))
            .ok()
            .and_then(|meta| meta.split(' ').nth(1)?.parse::<usize>().ok());
        let mut items: Vec<Result<Bytes>> = bytes
            .chunks(4096)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let bad = if self.makes(Mistake::StreamUnverified) {
            false
        } else if self.makes(Mistake::StreamChecksOnlyTheLength) {
            expected_len != Some(bytes.len())
        } else {
            &ContentHash::sha256(&bytes) != hash
        };
        if bad {
            items.push(Err(Error::integrity(
                format!("object {hash}"),
                hash,
                ContentHash::sha256(&bytes),
            )));
        }
        Ok(Box::pin(futures::stream::iter(items)))
    }

    async fn upload_stream(
        &self,
        mut reader: Box<dyn AsyncRead + Send + Unpin>,
        size_hint: Option<u64>,
    ) -> Result<ContentHash> {
        let read_failed =
            |e: std::io::Error| Error::carried_by(e).unwrap_or_else(|e| io("read an upload", e));
        if self.makes(Mistake::UploadBuffersTheBody) || self.makes(Mistake::UploadStopsAtTheHint) {
            let mut body = Vec::new();
            match size_hint {
                Some(hint) if self.makes(Mistake::UploadStopsAtTheHint) => {
                    (&mut reader).take(hint).read_to_end(&mut body).await
                }
                _ => reader.read_to_end(&mut body).await,
            }
            .map_err(read_failed)?;
            let hash = ContentHash::sha256(&body);
            self.put(&hash, &body, size_hint)?;
            return Ok(hash);
        }
        // Stream to a staging file while hashing, then move it into place.
        let staging = self.dir.path().join(format!(
            "upload-{}",
            OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        let mut file = std::fs::File::create(&staging).map_err(|e| io("create an upload", e))?;
        let mut hasher = ContentHasher::new(HashAlgorithm::Sha256)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    if self.makes(Mistake::UploadInPlace) {
                        // What was read so far is already visible under the body's address.
                        let partial = hasher.finish();
                        drop(file);
                        let _ = std::fs::rename(&staging, self.path(&partial));
                    } else {
                        let _ = std::fs::remove_file(&staging);
                    }
                    return Err(read_failed(e));
                }
            };
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
            std::io::Write::write_all(&mut file, &buf[..n])
                .map_err(|e| io("write an upload", e))?;
        }
        drop(file);
        let hash = hasher.finish();
        if self.path(&hash).exists() {
            let _ = std::fs::remove_file(&staging);
            return Ok(hash);
        }
        std::fs::rename(&staging, self.path(&hash)).map_err(|e| io("move an upload", e))?;
        let size = match size_hint {
            Some(hint) if self.makes(Mistake::SizeFromTheHint) => hint,
            _ => size,
        };
        let created = OffsetDateTime::now_utc().unix_timestamp_nanos();
        std::fs::write(self.sidecar(&hash), format!("{created} {size}"))
            .map_err(|e| io("write an object's metadata", e))?;
        Ok(hash)
    }

    async fn exists(&self, hash: &ContentHash) -> Result<bool> {
        if self.makes(Mistake::ExistsAlwaysTrue) {
            return Ok(self.dir.path().is_dir());
        }
        Ok(self.path(hash).exists())
    }

    async fn delete(&self, hash: &ContentHash) -> Result<bool> {
        let existed = self.path(hash).exists();
        if existed {
            std::fs::remove_file(self.path(hash)).map_err(|e| io("delete", e))?;
            let size = std::fs::read_to_string(self.sidecar(hash)).unwrap_or_default();
            let _ = std::fs::remove_file(self.sidecar(hash));
            if self.makes(Mistake::StatsKeepDeleted) {
                let mut log = std::fs::read_to_string(self.deleted()).unwrap_or_default();
                log.push_str(&size);
                log.push('\n');
                std::fs::write(self.deleted(), log).map_err(|e| io("log a delete", e))?;
            }
        }
        if self.makes(Mistake::DeleteAlwaysTrue) {
            return Ok(self.dir.path().is_dir());
        }
        Ok(existed)
    }

    async fn metadata(&self, hash: &ContentHash) -> Result<StorageMetadata> {
        if !self.path(hash).exists() {
            return Err(Error::not_found(format!("object {hash}")));
        }
        let meta = std::fs::read_to_string(self.sidecar(hash))
            .map_err(|e| io("read an object's metadata", e))?;
        let mut fields = meta.split(' ');
        let created: i128 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
        let size: u64 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
        Ok(StorageMetadata::new(
            hash.clone(),
            size,
            OffsetDateTime::from_unix_timestamp_nanos(created)
                .map_err(|e| io("read a creation time", std::io::Error::other(e)))?,
        ))
    }

    async fn copy_to(&self, hash: &ContentHash, target: &dyn PackageStore) -> Result<()> {
        if self.makes(Mistake::CopyUnverified) {
            let bytes = self.read(hash)?;
            target.store(bytes).await?;
            return Ok(());
        }
        let bytes = self.get(hash).await?;
        target.store(bytes).await?;
        Ok(())
    }

    async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<ContentHash>> {
        let mut hashes = self.objects()?;
        if !self.makes(Mistake::ListUnsorted) {
            hashes.sort_by_key(ToString::to_string);
        } else {
            // Directory order, which is no order at all: newest first, say.
            hashes.sort_by_key(|h| std::cmp::Reverse(h.to_string()));
        }
        if !self.makes(Mistake::ListIgnoresThePrefix) {
            hashes.retain(|h| h.to_string().starts_with(prefix));
        }
        if !self.makes(Mistake::ListIgnoresTheLimit) {
            hashes.truncate(limit);
        }
        Ok(hashes)
    }

    async fn stats(&self) -> Result<StorageStats> {
        let mut stats = StorageStats::default();
        for hash in self.objects()? {
            stats.objects += 1;
            stats.bytes += std::fs::metadata(self.path(&hash))
                .map_err(|e| io("stat", e))?
                .len();
        }
        if self.makes(Mistake::StatsKeepDeleted) {
            for line in std::fs::read_to_string(self.deleted())
                .unwrap_or_default()
                .lines()
            {
                stats.objects += 1;
                stats.bytes += line
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        Ok(stats)
    }
}

/// Corrupts a [`DirStore`]'s file directly.
#[async_trait]
impl Tamper for DirStore {
    async fn replace(&self, hash: &ContentHash, bytes: Bytes) -> std::result::Result<(), String> {
        std::fs::write(self.path(hash), &bytes).map_err(|e| e.to_string())
    }
}

async fn store(mistake: Mistake) -> SuiteReport {
    suite(Some(mistake)).await
}

async fn suite(mistake: Option<Mistake>) -> SuiteReport {
    let store = Arc::new(DirStore::new(mistake));
    let caps = Capabilities::default().with_tamper(store.clone());
    store_suite(&*store, &caps).await
}

/// The directory store without a mistake passes, so each failure below is its mistake's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_store_passes_without_a_mistake() {
    suite(None).await.assert_passed();
}

defect!(
    get_returns_unverified_bytes,
    store(Mistake::GetUnverified),
    ["store::every_read_verifies"]
);
defect!(
    stream_is_unverified,
    store(Mistake::StreamUnverified),
    ["store::every_read_verifies"]
);
defect!(
    stream_checks_only_the_length,
    store(Mistake::StreamChecksOnlyTheLength),
    ["store::every_read_verifies"]
);
defect!(
    copy_to_is_unverified,
    store(Mistake::CopyUnverified),
    ["store::every_read_verifies"]
);
defect!(
    upload_holds_the_whole_body,
    store(Mistake::UploadBuffersTheBody),
    ["store::upload_stream_memory_is_bounded"]
);
defect!(
    upload_stops_at_the_size_hint,
    store(Mistake::UploadStopsAtTheHint),
    ["store::upload_stream_trusts_the_body_not_the_hint"]
);
defect!(
    metadata_reports_the_size_hint,
    store(Mistake::SizeFromTheHint),
    ["store::upload_stream_trusts_the_body_not_the_hint"]
);
defect!(
    stats_count_deleted_objects,
    store(Mistake::StatsKeepDeleted),
    ["store::exists_and_delete"]
);
defect!(
    list_ignores_the_limit,
    store(Mistake::ListIgnoresTheLimit),
    ["store::list_by_prefix"]
);
defect!(
    list_ignores_the_prefix,
    store(Mistake::ListIgnoresThePrefix),
    ["store::list_by_prefix"]
);
defect!(
    list_is_unsorted,
    store(Mistake::ListUnsorted),
    ["store::list_by_prefix"]
);
defect!(
    exists_is_always_true,
    store(Mistake::ExistsAlwaysTrue),
    ["store::missing_is_not_found"]
);
defect!(
    store_rewrites_the_object,
    store(Mistake::StoreRewrites),
    ["store::store_is_idempotent"]
);
defect!(
    a_failed_upload_leaves_a_partial_object,
    store(Mistake::UploadInPlace),
    ["store::failed_upload_stores_nothing"]
);
defect!(
    a_missing_object_reads_as_empty,
    store(Mistake::MissingIsEmpty),
    ["store::missing_is_not_found"]
);
defect!(
    delete_always_says_it_deleted,
    store(Mistake::DeleteAlwaysTrue),
    ["store::exists_and_delete"]
);

/// A second handle on a [`DirStore`]'s directory that reads creation times from the files'
/// modification times, rounded to the second (as some file systems keep them).
struct ReopenedDir {
    dir: PathBuf,
}

#[async_trait]
impl PackageStore for ReopenedDir {
    async fn store(&self, _bytes: Bytes) -> Result<ContentHash> {
        Err(Error::backend(
            "dirstore",
            "store",
            std::io::Error::other("read-only"),
            false,
        ))
    }
    async fn get(&self, hash: &ContentHash) -> Result<Bytes> {
        let bytes: Bytes = std::fs::read(self.dir.join(hash.hex()))
            .map_err(|e| io("read", e))?
            .into();
        Ok(bytes)
    }
    async fn stream(&self, hash: &ContentHash) -> Result<ByteStream> {
        let bytes = self.get(hash).await?;
        Ok(Box::pin(futures::stream::iter([Ok(bytes)])))
    }
    async fn upload_stream(
        &self,
        _reader: Box<dyn AsyncRead + Send + Unpin>,
        _size_hint: Option<u64>,
    ) -> Result<ContentHash> {
        Err(Error::backend(
            "dirstore",
            "upload",
            std::io::Error::other("read-only"),
            false,
        ))
    }
    async fn exists(&self, hash: &ContentHash) -> Result<bool> {
        Ok(self.dir.join(hash.hex()).exists())
    }
    async fn delete(&self, _hash: &ContentHash) -> Result<bool> {
        Ok(false)
    }
    async fn metadata(&self, hash: &ContentHash) -> Result<StorageMetadata> {
        let file = std::fs::metadata(self.dir.join(hash.hex())).map_err(|e| io("stat", e))?;
        let modified = file.modified().map_err(|e| io("stat", e))?;
        let seconds = modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| io("stat", std::io::Error::other(e)))?
            .as_secs();
        Ok(StorageMetadata::new(
            hash.clone(),
            file.len(),
            OffsetDateTime::from_unix_timestamp(seconds as i64)
                .map_err(|e| io("stat", std::io::Error::other(e)))?,
        ))
    }
    async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<ContentHash>> {
        let mut hashes = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| io("list", e))? {
            let name = entry.map_err(|e| io("list", e))?.file_name();
            let name = name.to_string_lossy();
            if name.len() == 64 && !name.contains('.') {
                hashes.push(format!("sha256:{name}").parse()?);
            }
        }
        hashes.sort_by_key(ToString::to_string);
        hashes.retain(|h: &ContentHash| h.to_string().starts_with(prefix));
        hashes.truncate(limit);
        Ok(hashes)
    }
    async fn stats(&self) -> Result<StorageStats> {
        let mut stats = StorageStats::default();
        for hash in self.list("", usize::MAX).await? {
            stats.objects += 1;
            stats.bytes += self.metadata(&hash).await?.size;
        }
        Ok(stats)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creation_times_change_on_restart() {
    let store = Arc::new(DirStore::new(None));
    let dir = store.dir.path().to_owned();
    let caps = Capabilities::default()
        .with_tamper(store.clone())
        .with_store_reopen(move || {
            Ok(Arc::new(ReopenedDir { dir: dir.clone() }) as Arc<dyn PackageStore>)
        });
    let report = store_suite(&*store, &caps).await;
    crate::common::assert_caught(&report, &["store::objects_survive_reopening"]);
}
