//! `PackageStore` on object_store: content-addressed, verified archives in S3, or on any
//! other object_store backend (a local directory, memory).
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod layout;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use marketplace_core::time::OffsetDateTime;
use marketplace_core::{
    ByteStream, ContentHash, ContentHasher, Error, HashAlgorithm, PackageStore, Result,
    StorageMetadata, StorageStats,
};
#[cfg(feature = "s3")]
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncRead;

use crate::error::StoreError;

/// Bodies up to this size are uploaded in one request; larger ones as multipart uploads of
/// parts this size (S3's minimum part size is 5 MiB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// Parts uploaded concurrently by a multipart upload.
const PART_CONCURRENCY: usize = 2;

/// Bodies at least this large are written to staging while they are hashed, then moved into
/// place; smaller ones are hashed first and written straight to their address.
const OVERLAP_THRESHOLD: usize = 1024 * 1024;

/// Objects larger than this are read as ranges of this size, a few ahead of the consumer, so
/// that reading overlaps hashing.
const READ_CHUNK: u64 = 4 * 1024 * 1024;

/// Ranges read ahead of the consumer.
const READ_AHEAD: usize = 2;

/// Settings for an S3 (or S3-compatible) store (feature `s3`). Unset fields fall back to the standard `AWS_*`
/// environment variables read by [`ObjectStorePackageStore::s3_from_env`].
#[cfg(feature = "s3")]
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct S3Config {
    /// Bucket name (required).
    pub bucket: String,
    /// Endpoint URL for S3-compatible servers, e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// Region (default `us-east-1`).
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Allow plain HTTP endpoints (for local test servers).
    pub allow_http: bool,
    /// A key prefix under which the store keeps its objects.
    pub prefix: Option<String>,
}

#[cfg(feature = "s3")]
impl S3Config {
    /// A configuration for `bucket`, everything else from the environment.
    pub fn bucket(bucket: impl Into<String>) -> Self {
        S3Config {
            bucket: bucket.into(),
            ..S3Config::default()
        }
    }

    /// `bucket` on an S3-compatible server (MinIO, moto, Ceph …) at `endpoint`, with static
    /// credentials; plain `http://` endpoints are allowed.
    pub fn compatible(
        bucket: impl Into<String>,
        endpoint: impl Into<String>,
        region: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        S3Config {
            bucket: bucket.into(),
            endpoint: Some(endpoint.into()),
            region: Some(region.into()),
            access_key_id: Some(access_key_id.into()),
            secret_access_key: Some(secret_access_key.into()),
            allow_http: true,
            prefix: None,
        }
    }
}

/// A content-addressed [`PackageStore`] over any [`ObjectStore`].
///
/// Objects live at `<prefix>/sha256/ab/cd/<hex>`; uploads whose digest is not yet known are
/// written under `<prefix>/staging/` and moved into place once complete and hashed. Reads are
/// verified: `get` checks the digest before returning, `stream` fails at the end.
#[derive(Debug, Clone)]
pub struct ObjectStorePackageStore {
    store: Arc<dyn ObjectStore>,
    root: Path,
    name: String,
}

/// Makes staging keys unique within a process; the process id and time make them unique
/// across processes.
static UPLOADS: AtomicU64 = AtomicU64::new(0);

impl ObjectStorePackageStore {
    /// A store over `store`, keeping objects under `prefix` (`""` for the root). `name` appears
    /// in error messages (for example `s3://bucket`).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, name: impl Into<String>) -> Self {
        ObjectStorePackageStore {
            store,
            root: Path::from(prefix),
            name: name.into(),
        }
    }

    /// A store in the local directory `dir` on object_store's `LocalFileSystem`, created if
    /// missing. Every write is fsynced (file and directory) before it returns.
    ///
    /// For a home on one machine, `marketplace-store-local` is the store to use: the same
    /// layout (either opens what the other wrote) with its own file handling, faster and with
    /// fewer dependencies. This one proves object_store's local backend and serves tools that
    /// already hold an `ObjectStore`.
    pub fn local(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let name = format!("local store {}", dir.display());
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::backend(
                "objectstore",
                format!("create the directory {}", dir.display()),
                e,
                false,
            )
        })?;
        // fsync files and directories on every write: an object must be durable before the
        // registry records it, or a power cut could leave a registered package without bytes.
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map(|fs| fs.with_fsync(true))
            .map_err(|source| {
                StoreError::ObjectStore {
                    store: name.clone(),
                    source,
                }
                .during("open a local store")
            })?;
        Ok(Self::new(Arc::new(fs), "", name))
    }

    /// A store in memory, empty.
    pub fn in_memory() -> Self {
        Self::new(Arc::new(InMemory::new()), "", "in-memory store")
    }

    /// A store in an S3 bucket (or an S3-compatible server).
    ///
    /// HTTPS runs on rustls with ring: unless the process has chosen a rustls crypto provider
    /// already, this installs ring's as the process default.
    #[cfg(feature = "s3")]
    pub fn s3(config: S3Config) -> Result<Self> {
        if config.bucket.is_empty() {
            return Err(Error::invalid(
                "bucket",
                "",
                "an S3 store needs a bucket name",
            ));
        }
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Losing a race with another thread installing one is fine: a provider is set.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &config.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let name = format!("s3://{}", config.bucket);
        let s3 = builder
            .build()
            .map_err(|e| StoreError::Config(e.to_string()).during(format!("configure {name}")))?;
        Ok(Self::new(
            Arc::new(s3),
            config.prefix.as_deref().unwrap_or(""),
            name,
        ))
    }

    /// An S3 store configured from the environment: `MKT_S3_BUCKET` (required),
    /// `MKT_S3_ENDPOINT`, `MKT_S3_REGION`, `MKT_S3_PREFIX`, `MKT_S3_ALLOW_HTTP=true`, and the
    /// standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_REGION`.
    /// Returns `Ok(None)` when `MKT_S3_BUCKET` is not set.
    #[cfg(feature = "s3")]
    pub fn s3_from_env() -> Result<Option<Self>> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let Some(bucket) = var("MKT_S3_BUCKET") else {
            return Ok(None);
        };
        let config = S3Config {
            bucket,
            endpoint: var("MKT_S3_ENDPOINT"),
            region: var("MKT_S3_REGION"),
            access_key_id: None,
            secret_access_key: None,
            allow_http: var("MKT_S3_ALLOW_HTTP").is_some_and(|v| v == "true" || v == "1"),
            prefix: var("MKT_S3_PREFIX"),
        };
        Self::s3(config).map(Some)
    }

    /// Writes `bytes` where the object `hash` lives, without hashing them: what a failing disk
    /// or a tampered bucket would leave there. For the conformance kit's corruption checks and
    /// for tools that test a deployment's verification; never a way to store a package (reads
    /// of the object fail with `Integrity` unless `bytes` hash to `hash`).
    pub async fn overwrite_unverified(&self, hash: &ContentHash, bytes: Bytes) -> Result<()> {
        let key = layout::object_path(&self.root, hash);
        self.store
            .put(&key, PutPayload::from(bytes))
            .await
            .map_err(|e| self.fail(format!("overwrite {hash}"), e))?;
        Ok(())
    }

    fn fail(&self, operation: impl Into<String>, source: object_store::Error) -> Error {
        StoreError::ObjectStore {
            store: self.name.clone(),
            source,
        }
        .during(operation)
    }

    /// Maps `NotFound` to the contract's error for `hash`, anything else to `Backend`.
    fn fail_on(&self, operation: &str, hash: &ContentHash, source: object_store::Error) -> Error {
        match source {
            object_store::Error::NotFound { .. } => {
                Error::not_found(format!("object {hash} in {}", self.name))
            }
            other => self.fail(format!("{operation} {hash}"), other),
        }
    }

    fn staging_key(&self) -> Path {
        layout::staging_dir(&self.root).join(staging_name())
    }

    /// Moves a complete, hashed staging object to its address (or drops it if the address is
    /// taken: same bytes, stored once).
    async fn publish_staged(&self, staging: &Path, hash: &ContentHash) -> Result<()> {
        let key = layout::object_path(&self.root, hash);
        if self.exists(hash).await? {
            let _ = self.store.delete(staging).await;
            return Ok(());
        }
        if let Err(e) = self.store.rename(staging, &key).await {
            let _ = self.store.delete(staging).await;
            return Err(self.fail(format!("move an upload into place as {hash}"), e));
        }
        Ok(())
    }

    async fn multipart(
        &self,
        first: BytesMut,
        reader: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<ContentHash> {
        let staging = self.staging_key();
        let upload = self
            .store
            .put_multipart(&staging)
            .await
            .map_err(|e| self.fail("start a multipart upload", e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        // Hash each part on the blocking pool while the next part is read and earlier parts
        // are written: the upload costs about as much as the slowest of the three, not all.
        let mut hashing = hash_part(
            ContentHasher::new(HashAlgorithm::Sha256)?,
            first.freeze(),
            &mut writer,
        );
        let outcome: Result<ContentHasher> = async {
            loop {
                let chunk = read_chunk(reader, PART_SIZE, &self.name).await?;
                let hasher = joined(hashing.await, &self.name)?;
                if chunk.is_empty() {
                    return Ok(hasher);
                }
                writer
                    .wait_for_capacity(PART_CONCURRENCY)
                    .await
                    .map_err(|e| self.fail("upload a part", e))?;
                hashing = hash_part(hasher, chunk.freeze(), &mut writer);
            }
        }
        .await;
        let hasher = match outcome {
            Ok(hasher) => hasher,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(e);
            }
        };
        writer
            .finish()
            .await
            .map_err(|e| self.fail("complete a multipart upload", e))?;
        let hash = hasher.finish();
        self.publish_staged(&staging, &hash).await?;
        Ok(hash)
    }

    /// The object's bytes as chunks; large objects as ranges read a few ahead.
    async fn chunks(
        &self,
        hash: &ContentHash,
        operation: &str,
    ) -> Result<(u64, BoxStream<'static, object_store::Result<Bytes>>)> {
        let key = layout::object_path(&self.root, hash);
        let size = self
            .store
            .head(&key)
            .await
            .map_err(|e| self.fail_on(operation, hash, e))?
            .size;
        if size <= READ_CHUNK {
            let result = self
                .store
                .get(&key)
                .await
                .map_err(|e| self.fail_on(operation, hash, e))?;
            return Ok((size, result.into_stream()));
        }
        let store = Arc::clone(&self.store);
        let ranges = (0..size)
            .step_by(READ_CHUNK as usize)
            .map(move |start| start..(start + READ_CHUNK).min(size));
        let stream = futures::stream::iter(ranges)
            .map(move |range| {
                let (store, key) = (Arc::clone(&store), key.clone());
                async move { store.get_range(&key, range).await }
            })
            .buffered(READ_AHEAD)
            .boxed();
        Ok((size, stream))
    }
}

/// A staging name unique across processes (process id, time) and within one (a counter).
fn staging_name() -> String {
    let n = UPLOADS.fetch_add(1, Ordering::Relaxed);
    let now = OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("{}-{now}-{n}", std::process::id())
}

/// Starts hashing `part` on the blocking pool and hands it to the upload.
fn hash_part(
    mut hasher: ContentHasher,
    part: Bytes,
    writer: &mut WriteMultipart,
) -> tokio::task::JoinHandle<ContentHasher> {
    writer.put(part.clone());
    tokio::task::spawn_blocking(move || {
        hasher.update(&part);
        hasher
    })
}

fn joined<T>(result: std::result::Result<T, tokio::task::JoinError>, store: &str) -> Result<T> {
    result.map_err(|e| {
        Error::backend(
            "objectstore",
            format!("hash an upload to {store}"),
            e,
            false,
        )
    })
}

fn modified(meta: &ObjectMeta) -> OffsetDateTime {
    let nanos = meta.last_modified.timestamp_nanos_opt().unwrap_or(0);
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Reads up to `size` bytes (fewer only at the end of the input).
async fn read_chunk(
    reader: &mut (dyn AsyncRead + Send + Unpin),
    size: usize,
    store: &str,
) -> Result<BytesMut> {
    marketplace_core::read_piece(reader, size)
        .await
        .map_err(|e| {
            Error::carried_by(e).unwrap_or_else(|source| {
                StoreError::Upload {
                    store: store.to_owned(),
                    source,
                }
                .during("read an upload")
            })
        })
}

#[async_trait]
impl PackageStore for ObjectStorePackageStore {
    async fn store(&self, bytes: Bytes) -> Result<ContentHash> {
        if bytes.len() >= OVERLAP_THRESHOLD {
            // Write to staging while hashing, then move into place.
            let staging = self.staging_key();
            let to_hash = bytes.clone();
            let hashing = tokio::task::spawn_blocking(move || ContentHash::sha256(&to_hash));
            let written = self.store.put(&staging, PutPayload::from(bytes)).await;
            let hash = joined(hashing.await, &self.name)?;
            written.map_err(|e| self.fail(format!("store {hash}"), e))?;
            self.publish_staged(&staging, &hash).await?;
            return Ok(hash);
        }
        let hash = ContentHash::sha256(&bytes);
        if self.exists(&hash).await? {
            return Ok(hash);
        }
        // A single put is atomic in every object store: the object appears whole or not at all.
        let key = layout::object_path(&self.root, &hash);
        self.store
            .put(&key, PutPayload::from(bytes))
            .await
            .map_err(|e| self.fail(format!("store {hash}"), e))?;
        Ok(hash)
    }

    async fn get(&self, hash: &ContentHash) -> Result<Bytes> {
        // One read into one buffer (in memory: the stored bytes themselves, no copy), then one
        // hash on the blocking pool. `stream` overlaps a large download with hashing.
        let key = layout::object_path(&self.root, hash);
        let body = self
            .store
            .get(&key)
            .await
            .map_err(|e| self.fail_on("read", hash, e))?
            .bytes()
            .await
            .map_err(|e| self.fail_on("read", hash, e))?;
        let (algorithm, copy) = (hash.algorithm(), body.clone());
        let actual = joined(
            tokio::task::spawn_blocking(move || -> Result<ContentHash> {
                let mut hasher = ContentHasher::new(algorithm)?;
                hasher.update(&copy);
                Ok(hasher.finish())
            })
            .await,
            &self.name,
        )??;
        if &actual != hash {
            return Err(Error::integrity(
                format!("object {hash} in {}", self.name),
                hash,
                actual,
            ));
        }
        Ok(body)
    }

    async fn stream(&self, hash: &ContentHash) -> Result<ByteStream> {
        let (_, chunks) = self.chunks(hash, "read").await?;
        let (store, operation) = (self.name.clone(), format!("stream {hash}"));
        let chunks = chunks.map_err(move |source| {
            StoreError::ObjectStore {
                store: store.clone(),
                source,
            }
            .during(operation.clone())
        });
        marketplace_core::verify_stream(Box::pin(chunks), hash.clone(), self.name.clone())
    }

    async fn upload_stream(
        &self,
        mut reader: Box<dyn AsyncRead + Send + Unpin>,
        _size_hint: Option<u64>,
    ) -> Result<ContentHash> {
        // Small bodies: one request. Larger: a multipart upload to a staging key, hashed as it
        // goes, moved into place once the digest is known. Memory stays within a few parts.
        let first = read_chunk(reader.as_mut(), PART_SIZE, &self.name).await?;
        if first.len() < PART_SIZE {
            return self.store(first.freeze()).await;
        }
        self.multipart(first, reader.as_mut()).await
    }

    async fn exists(&self, hash: &ContentHash) -> Result<bool> {
        match self
            .store
            .head(&layout::object_path(&self.root, hash))
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.fail(format!("check {hash}"), e)),
        }
    }

    async fn delete(&self, hash: &ContentHash) -> Result<bool> {
        if !self.exists(hash).await? {
            return Ok(false);
        }
        match self
            .store
            .delete(&layout::object_path(&self.root, hash))
            .await
        {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.fail(format!("delete {hash}"), e)),
        }
    }

    async fn metadata(&self, hash: &ContentHash) -> Result<StorageMetadata> {
        let meta = self
            .store
            .head(&layout::object_path(&self.root, hash))
            .await
            .map_err(|e| self.fail_on("read metadata of", hash, e))?;
        Ok(StorageMetadata::new(
            hash.clone(),
            meta.size,
            modified(&meta),
        ))
    }

    async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<ContentHash>> {
        let Some((dir, hex)) = layout::listing(&self.root, prefix) else {
            return Ok(Vec::new());
        };
        let found: Vec<ObjectMeta> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| self.fail(format!("list {prefix:?}"), e))?;
        let mut hashes: Vec<ContentHash> = found
            .iter()
            .filter_map(|meta| layout::hash_of(&self.root, HashAlgorithm::Sha256, &meta.location))
            .filter(|hash| hash.hex().starts_with(&hex))
            .collect();
        hashes.sort();
        hashes.truncate(limit);
        Ok(hashes)
    }

    async fn stats(&self) -> Result<StorageStats> {
        let dir = layout::algorithm_dir(&self.root, HashAlgorithm::Sha256);
        let found: Vec<ObjectMeta> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| self.fail("count objects", e))?;
        let mut stats = StorageStats::default();
        for meta in found {
            if layout::hash_of(&self.root, HashAlgorithm::Sha256, &meta.location).is_some() {
                stats.objects += 1;
                stats.bytes += meta.size;
            }
        }
        Ok(stats)
    }

    /// Removes staging objects (uploads interrupted by a crash) older than `older_than`.
    async fn cleanup_staging(&self, older_than: Duration) -> Result<u64> {
        let cutoff = OffsetDateTime::now_utc() - older_than;
        let staging = layout::staging_dir(&self.root);
        let leftovers: Vec<ObjectMeta> = self
            .store
            .list(Some(&staging))
            .try_collect()
            .await
            .map_err(|e| self.fail("list staging uploads", e))?;
        let mut removed = 0;
        for meta in leftovers {
            if modified(&meta) <= cutoff {
                match self.store.delete(&meta.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => removed += 1,
                    Err(e) => return Err(self.fail("remove a staging upload", e)),
                }
            }
        }
        Ok(removed)
    }
}
