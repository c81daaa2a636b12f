//! `PackageStore` on this machine: content-addressed, verified archives in a local directory
//! (files, fsynced) or in memory.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod dir;
mod error;
mod memory;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::future::Either;
use futures_util::stream::{BoxStream, StreamExt};
use marketplace_core::time::OffsetDateTime;
use marketplace_core::{
    ByteStream, ContentHash, ContentHasher, Error, HashAlgorithm, PackageStore, Result,
    StorageMetadata, StorageStats,
};
use tokio::io::AsyncRead;

use crate::dir::LocalDir;
use crate::error::StoreError;
use crate::memory::Memory;

/// Bodies at least this large are written to staging while they are hashed, then moved into
/// place; smaller ones are hashed first (and not written at all when already stored).
const OVERLAP_THRESHOLD: usize = 1024 * 1024;

/// Pieces read from an upload stream: small enough that the first is hashed and written soon
/// and the buffers are recycled, large enough to keep hops few.
const PIECE: usize = 512 * 1024;

/// Makes staging names unique within a process; the process id and time make them unique
/// across processes.
static UPLOADS: AtomicU64 = AtomicU64::new(0);

/// A [`PackageStore`] on this machine: a directory of files ([`LocalPackageStore::open`]) or a
/// map in memory ([`LocalPackageStore::in_memory`]). Cloning gives another handle on the same
/// objects.
#[derive(Debug, Clone)]
pub struct LocalPackageStore {
    place: Place,
}

#[derive(Debug, Clone)]
enum Place {
    Dir(Arc<LocalDir>),
    Memory(Arc<Memory>),
}

impl LocalPackageStore {
    /// A store in the directory `dir`, created if missing. Every write is fsynced (file and
    /// directory) before it returns: an object must be durable before the registry records it,
    /// or a power cut could leave a registered package without bytes.
    ///
    /// Errors: `Backend` naming `dir` when it cannot be created.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let name = format!("local store {}", dir.display());
        std::fs::create_dir_all(dir).map_err(|source| {
            StoreError::File {
                store: name.clone(),
                path: dir.to_owned(),
                source,
            }
            .during("create the store's directory")
        })?;
        Ok(LocalPackageStore {
            place: Place::Dir(Arc::new(LocalDir::new(dir.to_owned(), name))),
        })
    }

    /// A store in memory, empty: for tests and short-lived tools. `upload_stream` holds the
    /// whole body (the objects live in memory anyway).
    pub fn in_memory() -> Self {
        LocalPackageStore {
            place: Place::Memory(Arc::new(Memory::default())),
        }
    }

    /// Replaces the bytes at `hash` without checking them, as a failing disk would: for the
    /// conformance kit's corruption checks and for tools that test a deployment's
    /// verification; never a way to store a package (reads of the object fail with
    /// `Integrity` unless `bytes` hash to `hash`).
    pub async fn overwrite_unverified(&self, hash: &ContentHash, bytes: Bytes) -> Result<()> {
        match &self.place {
            Place::Dir(dir) => {
                let (dir, hash) = (Arc::clone(dir), hash.clone());
                blocking(move || dir.overwrite(&hash, &bytes)).await
            }
            Place::Memory(memory) => {
                memory.overwrite(hash, bytes);
                Ok(())
            }
        }
    }

    /// A directory upload: `pieces` are written to a staging file while they are hashed
    /// (unless the digest is `known`), then the file is moved to its address.
    async fn upload(
        dir: &Arc<LocalDir>,
        known: Option<ContentHash>,
        mut pieces: BoxStream<'_, Result<Bytes>>,
    ) -> Result<ContentHash> {
        let mut staged = dir.begin(&staging_name());
        // The hashing task reads the same pieces as the writing task, beside it.
        let (to_hash, mut hash_queue) = tokio::sync::mpsc::channel::<Bytes>(2);
        let hash_pieces = known.is_none();
        let hashing = match known {
            Some(hash) => Either::Left(std::future::ready(Ok(hash))),
            None => Either::Right(blocking(move || {
                let mut hasher = ContentHasher::new(HashAlgorithm::Sha256)?;
                while let Some(piece) = hash_queue.blocking_recv() {
                    hasher.update(&piece);
                }
                Ok(hasher.finish())
            })),
        };
        let fed: Result<()> = async {
            while let Some(piece) = pieces.next().await {
                let piece = piece?;
                if hash_pieces {
                    let _ = to_hash.send(piece.clone()).await;
                }
                if !staged.write(piece).await {
                    // The writer stopped on an error, which `finish` returns.
                    break;
                }
            }
            Ok(())
        }
        .await;
        drop(to_hash);
        let hashed = hashing.await;
        let hash = match fed.and(hashed) {
            Ok(hash) => hash,
            Err(e) => {
                staged.abort().await;
                return Err(e);
            }
        };
        let staging = staged.finish(dir).await?;
        let (dir, published) = (Arc::clone(dir), hash.clone());
        blocking(move || dir.publish(&staging, &published)).await?;
        Ok(hash)
    }
}

/// A staging name unique across processes (process id, time) and within one (a counter).
fn staging_name() -> String {
    let n = UPLOADS.fetch_add(1, Ordering::Relaxed);
    let now = OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("{}-{now}-{n}", std::process::id())
}

/// Starts `work` (file I/O, hashing) on the blocking pool at once; the returned future waits
/// for it.
fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> impl Future<Output = Result<T>> {
    let task = tokio::task::spawn_blocking(work);
    async move {
        task.await.map_err(|e| {
            Error::backend("local store", "run file I/O on the blocking pool", e, false)
        })?
    }
}

/// Reads up to `size` bytes (fewer only at the end of the input).
async fn read_piece(
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
impl PackageStore for LocalPackageStore {
    async fn store(&self, bytes: Bytes) -> Result<ContentHash> {
        let dir = match &self.place {
            Place::Dir(dir) => dir,
            Place::Memory(memory) => return Ok(memory.store(bytes)),
        };
        let known = if bytes.len() < OVERLAP_THRESHOLD {
            let hash = ContentHash::sha256(&bytes);
            if self.exists(&hash).await? {
                return Ok(hash);
            }
            Some(hash)
        } else {
            None
        };
        let pieces = (0..bytes.len())
            .step_by(PIECE)
            .map(move |start| Ok(bytes.slice(start..(start + PIECE).min(bytes.len()))));
        Self::upload(dir, known, futures_util::stream::iter(pieces).boxed()).await
    }

    async fn get(&self, hash: &ContentHash) -> Result<Bytes> {
        match &self.place {
            Place::Dir(dir) => {
                let (dir, wanted) = (Arc::clone(dir), hash.clone());
                blocking(move || dir.read_verified(&wanted)).await
            }
            Place::Memory(memory) => {
                let bytes = memory.get(hash)?;
                if bytes.len() < OVERLAP_THRESHOLD {
                    return memory.verified(hash, bytes);
                }
                let (memory, wanted) = (Arc::clone(memory), hash.clone());
                blocking(move || memory.verified(&wanted, bytes)).await
            }
        }
    }

    async fn stream(&self, hash: &ContentHash) -> Result<ByteStream> {
        match &self.place {
            Place::Dir(dir) => dir.stream(hash),
            Place::Memory(memory) => memory.stream(hash),
        }
    }

    async fn upload_stream(
        &self,
        mut reader: Box<dyn AsyncRead + Send + Unpin>,
        _size_hint: Option<u64>,
    ) -> Result<ContentHash> {
        let dir = match &self.place {
            Place::Dir(dir) => dir,
            Place::Memory(memory) => {
                let mut body = BytesMut::new();
                loop {
                    let piece = read_piece(reader.as_mut(), PIECE, "in-memory store").await?;
                    if piece.is_empty() {
                        return Ok(memory.store(body.freeze()));
                    }
                    body.extend_from_slice(&piece);
                }
            }
        };
        let name = dir.name().to_owned();
        let pieces = futures_util::stream::try_unfold(reader, move |mut reader| {
            let name = name.clone();
            async move {
                let piece = read_piece(reader.as_mut(), PIECE, &name).await?;
                Ok((!piece.is_empty()).then(|| (piece.freeze(), reader)))
            }
        });
        Self::upload(dir, None, pieces.boxed()).await
    }

    async fn exists(&self, hash: &ContentHash) -> Result<bool> {
        match &self.place {
            Place::Dir(dir) => dir.exists(hash),
            Place::Memory(memory) => Ok(memory.exists(hash)),
        }
    }

    async fn delete(&self, hash: &ContentHash) -> Result<bool> {
        match &self.place {
            Place::Dir(dir) => {
                let (dir, hash) = (Arc::clone(dir), hash.clone());
                blocking(move || dir.delete(&hash)).await
            }
            Place::Memory(memory) => Ok(memory.delete(hash)),
        }
    }

    async fn metadata(&self, hash: &ContentHash) -> Result<StorageMetadata> {
        match &self.place {
            Place::Dir(dir) => dir.metadata(hash),
            Place::Memory(memory) => memory.metadata(hash),
        }
    }

    async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<ContentHash>> {
        match &self.place {
            Place::Dir(dir) => {
                let (dir, prefix) = (Arc::clone(dir), prefix.to_owned());
                blocking(move || dir.list(&prefix, limit)).await
            }
            Place::Memory(memory) => Ok(memory.list(prefix, limit)),
        }
    }

    async fn stats(&self) -> Result<StorageStats> {
        match &self.place {
            Place::Dir(dir) => {
                let dir = Arc::clone(dir);
                blocking(move || dir.stats()).await
            }
            Place::Memory(memory) => Ok(memory.stats()),
        }
    }

    /// Removes staging files (uploads interrupted by a crash) older than `older_than`.
    async fn cleanup_staging(&self, older_than: Duration) -> Result<u64> {
        match &self.place {
            Place::Dir(dir) => {
                let dir = Arc::clone(dir);
                blocking(move || dir.cleanup_staging(older_than)).await
            }
            // Memory stages nothing: an upload appears whole or not at all.
            Place::Memory(_) => Ok(0),
        }
    }
}
