//! The local directory's own write and read paths.
//!
//! object_store's `LocalFileSystem` stays the store for everything else (existence, metadata,
//! listing, deletion, streaming), over the same files. Uploads and verified reads go through
//! here because they are where the throughput target applies, and `LocalFileSystem` puts every
//! upload through two renames and three fsyncs (its own staging file, then ours) and reads
//! large files as separately allocated ranges.
//!
//! Writes: a new staging file is written by one thread while a second thread asks the disk to
//! flush what has been written so far (`fdatasync`), so the disk works while later chunks are
//! still being copied; the caller hashes the same chunks meanwhile. Once the file is complete,
//! fsynced and its digest known, it is renamed to its address and the directory is fsynced.
//! Reads: one buffer of the file's size, filled by one thread while another hashes the pieces
//! already read.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path as FsPath, PathBuf};
use std::sync::mpsc;

use bytes::Bytes;
use marketplace_core::{ContentHash, ContentHasher, Error, HashAlgorithm, Result};
use tokio::sync::mpsc as async_mpsc;
use tokio::task::JoinHandle;

use crate::error::StoreError;
use crate::verify;

/// Reads of objects at least this large overlap reading with hashing on a second thread.
const PARALLEL_READ: u64 = 1024 * 1024;

/// The piece a parallel read hands to the hashing thread.
const READ_PIECE: usize = 1024 * 1024;

/// Chunks queued for the writing thread.
const WRITE_QUEUE: usize = 2;

/// The directory of a local store, as files.
#[derive(Debug)]
pub(crate) struct LocalDir {
    root: PathBuf,
    name: String,
}

impl LocalDir {
    pub(crate) fn new(root: PathBuf, name: String) -> Self {
        LocalDir { root, name }
    }

    /// The file of a complete object: the same place object_store's `LocalFileSystem` maps
    /// the object's key to (keys are plain ASCII, so no escaping applies).
    pub(crate) fn object_file(&self, hash: &ContentHash) -> PathBuf {
        self.shard_dir(hash).join(hash.hex().as_str())
    }

    /// The directory holding the object `hash`: `<root>/sha256/ab/cd`.
    fn shard_dir(&self, hash: &ContentHash) -> PathBuf {
        let hex = hash.hex();
        self.root
            .join(hash.algorithm().as_str())
            .join(&hex[0..2])
            .join(&hex[2..4])
    }

    fn fail(&self, operation: impl Into<String>, path: &FsPath, source: io::Error) -> Error {
        StoreError::File {
            store: self.name.clone(),
            path: path.to_owned(),
            source,
        }
        .during(operation)
    }

    /// Starts writing a new staging file named `file_name`; feed it with
    /// [`StagedWrite::write`] and end with [`StagedWrite::finish`].
    pub(crate) fn begin(&self, file_name: &str) -> StagedWrite {
        let dir = self.root.join("staging");
        let path = dir.join(file_name);
        let (chunks, mut received) = async_mpsc::channel::<Bytes>(WRITE_QUEUE);
        let (dir_for_task, path_for_task) = (dir, path.clone());
        let writer = tokio::task::spawn_blocking(move || -> io::Result<()> {
            let file = create_new(&dir_for_task, &path_for_task)?;
            std::thread::scope(|scope| {
                // The syncer flushes whatever has been written whenever it is told more has.
                let (more, told) = mpsc::channel::<()>();
                let file = &file;
                let syncer = scope.spawn(move || -> io::Result<()> {
                    while told.recv().is_ok() {
                        while told.try_recv().is_ok() {}
                        file.sync_data()?;
                    }
                    Ok(())
                });
                let written = (|| {
                    let mut out = file;
                    while let Some(chunk) = received.blocking_recv() {
                        out.write_all(&chunk)?;
                        let _ = more.send(());
                    }
                    Ok(())
                })();
                drop(more);
                let synced = syncer
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("the fsync thread panicked")));
                written.and(synced)?;
                file.sync_all()
            })
        });
        StagedWrite {
            chunks: Some(chunks),
            writer,
            path,
        }
    }

    /// Moves a complete staging file to the address `hash`, or removes it when the address is
    /// already taken (same bytes: one object). The new directory entry (and any shard
    /// directory created for it) is fsynced before this returns.
    pub(crate) fn publish(&self, staged: &FsPath, hash: &ContentHash) -> Result<()> {
        let dest = self.object_file(hash);
        let operation = format!("move an upload into place as {hash}");
        if dest.exists() {
            let _ = std::fs::remove_file(staged);
            return Ok(());
        }
        let shard = self.shard_dir(hash);
        let result = create_dirs(&shard)
            .and_then(|()| std::fs::rename(staged, &dest))
            .and_then(|()| sync_dir(&shard));
        result.map_err(|e| {
            let _ = std::fs::remove_file(staged);
            self.fail(operation, &dest, e)
        })
    }

    /// Reads the whole object and checks its digest; large objects are hashed on a second
    /// thread while the rest is read.
    pub(crate) fn read_verified(&self, hash: &ContentHash) -> Result<Bytes> {
        let path = self.object_file(hash);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::not_found(format!("object {hash} in {}", self.name)));
            }
            Err(e) => return Err(self.fail(format!("read {hash}"), &path, e)),
        };
        let read = |e| self.fail(format!("read {hash}"), &path, e);
        let size = file.metadata().map_err(read)?.len();
        let size = usize::try_from(size).map_err(|_| {
            read(io::Error::other(format!(
                "{size} bytes do not fit in memory on this platform"
            )))
        })?;
        let mut body = vec![0u8; size];
        let actual = if size < PARALLEL_READ as usize {
            file.read_exact(&mut body).map_err(read)?;
            verify::digest(hash.algorithm(), &body)?
        } else {
            read_and_hash(&mut file, &mut body, hash.algorithm()).map_err(read)??
        };
        verify::check(hash, &actual, &self.name)?;
        Ok(Bytes::from(body))
    }
}

/// A staging file being written by a blocking task.
pub(crate) struct StagedWrite {
    chunks: Option<async_mpsc::Sender<Bytes>>,
    writer: JoinHandle<io::Result<()>>,
    path: PathBuf,
}

impl StagedWrite {
    /// Queues `chunk` for writing. `false` when the writer has stopped (its error comes from
    /// [`StagedWrite::finish`]).
    pub(crate) async fn write(&mut self, chunk: Bytes) -> bool {
        match &self.chunks {
            Some(chunks) => chunks.send(chunk).await.is_ok(),
            None => false,
        }
    }

    /// Waits until everything queued is written and fsynced; returns the staging file. On error the staging file is removed.
    pub(crate) async fn finish(mut self, local: &LocalDir) -> Result<PathBuf> {
        self.chunks = None;
        let outcome = match (&mut self.writer).await {
            Ok(outcome) => outcome,
            Err(e) => Err(io::Error::other(e)),
        };
        match outcome {
            Ok(()) => Ok(std::mem::take(&mut self.path)),
            Err(e) => {
                let _ = std::fs::remove_file(&self.path);
                Err(local.fail("write an upload", &self.path, e))
            }
        }
    }

    /// Stops writing and removes the staging file.
    pub(crate) async fn abort(mut self) {
        self.chunks = None;
        let _ = (&mut self.writer).await;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Creates `path` as a new file in `dir`, creating `dir` if it is missing.
fn create_new(dir: &FsPath, path: &FsPath) -> io::Result<File> {
    let open = || File::options().write(true).create_new(true).open(path);
    match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            open()
        }
        other => other,
    }
}

/// Creates `dir` and any missing parents, fsyncing each created directory's entry in its
/// parent.
fn create_dirs(dir: &FsPath) -> io::Result<()> {
    // (directory, its parent) for each missing directory, innermost first.
    let missing: Vec<(&FsPath, &FsPath)> = dir
        .ancestors()
        .zip(dir.ancestors().skip(1))
        .take_while(|(d, _)| !d.is_dir())
        .collect();
    for (d, parent) in missing.into_iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => sync_dir(parent)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Makes the entries of `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &FsPath) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened for fsync elsewhere (NTFS journals renames itself).
#[cfg(not(unix))]
fn sync_dir(_dir: &FsPath) -> io::Result<()> {
    Ok(())
}

/// Fills `body` from `file` piece by piece while a second thread hashes the pieces already
/// filled.
fn read_and_hash(
    file: &mut File,
    body: &mut [u8],
    algorithm: HashAlgorithm,
) -> io::Result<Result<ContentHash>> {
    let mut hasher = match ContentHasher::new(algorithm) {
        Ok(hasher) => hasher,
        Err(e) => return Ok(Err(e)),
    };
    std::thread::scope(|scope| {
        let (filled, pieces) = mpsc::sync_channel::<&[u8]>(body.len() / READ_PIECE + 1);
        let hashing = scope.spawn(move || {
            for piece in pieces {
                hasher.update(piece);
            }
            hasher.finish()
        });
        let read = fill(file, body, filled);
        let hash = hashing
            .join()
            .map_err(|_| io::Error::other("the hashing thread panicked"))?;
        read.map(|()| Ok(hash))
    })
}

/// Reads `file` into `body` piece by piece, handing each filled piece on.
fn fill<'a>(
    file: &mut File,
    body: &'a mut [u8],
    filled: mpsc::SyncSender<&'a [u8]>,
) -> io::Result<()> {
    for piece in body.chunks_mut(READ_PIECE) {
        file.read_exact(piece)?;
        if filled.send(piece).is_err() {
            break;
        }
    }
    Ok(())
}
