//! The directory store: `<root>/sha256/ab/cd/<full hex>` for complete objects (listing a
//! prefix reads one shard, not the whole store), `<root>/staging/<unique>` for uploads whose
//! digest is not known yet. (The layout object_store's `LocalFileSystem` gives the same keys,
//! so a home written by either opens with the other.)
//!
//! Writes: a new staging file is written by one thread while a second thread asks the disk to
//! flush what has been written so far (`fdatasync`), so the disk works while later chunks are
//! still being copied; the caller hashes the same chunks meanwhile. Once the file is complete,
//! fsynced and its digest known, it is renamed to its address and the directory is fsynced.
//! Reads: one buffer of the file's size, filled by one thread while another hashes the pieces
//! already read. Streams: a reading thread a few chunks ahead of the consumer, which hashes.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path as FsPath, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use marketplace_core::time::OffsetDateTime;
use marketplace_core::{
    ByteStream, ContentHash, ContentHasher, Error, HashAlgorithm, Result, StorageMetadata,
    StorageStats,
};
use tokio::sync::mpsc as async_mpsc;
use tokio::task::JoinHandle;

use crate::error::StoreError;

/// Reads of objects at least this large overlap reading with hashing on a second thread.
const PARALLEL_READ: u64 = 1024 * 1024;

/// The piece a parallel read hands to the hashing thread.
const READ_PIECE: usize = 1024 * 1024;

/// Chunks queued for the writing thread.
const WRITE_QUEUE: usize = 2;

/// The chunks of a stream: large enough that reading and hashing run in long strides.
const STREAM_CHUNK: usize = 4 * 1024 * 1024;

/// Chunks a stream's reading thread runs ahead of the consumer.
const STREAM_AHEAD: usize = 2;

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

    /// The store's name in messages: `local store <dir>`.
    pub(crate) fn name(&self) -> &str {
        &self.name
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

    fn staging_dir(&self) -> PathBuf {
        self.root.join("staging")
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
        let dir = self.staging_dir();
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
            let mut hasher = ContentHasher::new(hash.algorithm())?;
            hasher.update(&body);
            hasher.finish()
        } else {
            read_and_hash(&mut file, &mut body, hash.algorithm()).map_err(read)??
        };
        if &actual != hash {
            return Err(Error::integrity(
                format!("object {hash} in {}", self.name),
                hash,
                actual,
            ));
        }
        Ok(Bytes::from(body))
    }

    /// The object as chunks read by a thread a few chunks ahead; verified as it is consumed
    /// (see [`marketplace_core::verify_stream`]).
    pub(crate) fn stream(&self, hash: &ContentHash) -> Result<ByteStream> {
        let path = self.object_file(hash);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::not_found(format!("object {hash} in {}", self.name)));
            }
            Err(e) => return Err(self.fail(format!("stream {hash}"), &path, e)),
        };
        let (chunks, received) = async_mpsc::channel::<Result<Bytes>>(STREAM_AHEAD);
        let failed = {
            let (store, path, operation) = (self.name.clone(), path, format!("stream {hash}"));
            move |source| {
                StoreError::File {
                    store,
                    path,
                    source,
                }
                .during(operation)
            }
        };
        tokio::task::spawn_blocking(move || {
            let mut file = file;
            loop {
                let mut chunk = Vec::with_capacity(STREAM_CHUNK);
                match (&mut file)
                    .take(STREAM_CHUNK as u64)
                    .read_to_end(&mut chunk)
                {
                    Ok(0) => return,
                    Ok(_) => {
                        if chunks.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                            // The consumer dropped the stream.
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = chunks.blocking_send(Err(failed(e)));
                        return;
                    }
                }
            }
        });
        let stream = futures_util::stream::unfold(received, |mut received| async move {
            received.recv().await.map(|item| (item, received))
        });
        marketplace_core::verify_stream(Box::pin(stream), hash.clone(), self.name.clone())
    }

    pub(crate) fn exists(&self, hash: &ContentHash) -> Result<bool> {
        let path = self.object_file(hash);
        path.try_exists()
            .map_err(|e| self.fail(format!("check {hash}"), &path, e))
    }

    /// Removes the object's file and makes the removal durable.
    pub(crate) fn delete(&self, hash: &ContentHash) -> Result<bool> {
        let path = self.object_file(hash);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(self.fail(format!("delete {hash}"), &path, e)),
        }
        sync_dir(&self.shard_dir(hash))
            .map_err(|e| self.fail(format!("delete {hash}"), &path, e))?;
        Ok(true)
    }

    pub(crate) fn metadata(&self, hash: &ContentHash) -> Result<StorageMetadata> {
        let path = self.object_file(hash);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::not_found(format!("object {hash} in {}", self.name)));
            }
            Err(e) => return Err(self.fail(format!("read metadata of {hash}"), &path, e)),
        };
        Ok(StorageMetadata::new(
            hash.clone(),
            meta.len(),
            datetime(meta.modified().ok()),
        ))
    }

    /// Addresses whose text form starts with `prefix`, ascending, at most `limit`: only the
    /// shards the prefix can match are read.
    pub(crate) fn list(&self, prefix: &str, limit: usize) -> Result<Vec<ContentHash>> {
        let Some(hex) = HashAlgorithm::Sha256.hex_prefix(prefix) else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        self.walk(
            |hash, _| {
                hash.hex().starts_with(hex).then(|| found.push(hash));
            },
            hex,
        )?;
        found.sort();
        found.truncate(limit);
        Ok(found)
    }

    pub(crate) fn stats(&self) -> Result<StorageStats> {
        let (mut objects, mut bytes) = (0, 0);
        self.walk(
            |_, size| {
                objects += 1;
                bytes += size;
            },
            "",
        )?;
        Ok(StorageStats::new(objects, bytes))
    }

    /// Calls `each` with the address and size of every object in the shards `hex` (a prefix
    /// of the hex digest) can match. Files that are not objects of this store are skipped.
    fn walk(&self, mut each: impl FnMut(ContentHash, u64), hex: &str) -> Result<()> {
        let algorithm = HashAlgorithm::Sha256;
        let top = self.root.join(algorithm.as_str());
        let within = |name: &str, start: usize| {
            let wanted = hex.get(start..(start + 2).min(hex.len())).unwrap_or("");
            name.len() == 2 && name.starts_with(wanted) && is_hex(name)
        };
        for first in self.entries(&top)? {
            if !within(&first, 0) {
                continue;
            }
            let first_dir = top.join(&first);
            for second in self.entries(&first_dir)? {
                if !within(&second, 2) {
                    continue;
                }
                let shard = first_dir.join(&second);
                for file in self.entries(&shard)? {
                    if !file.starts_with(&format!("{first}{second}")) {
                        continue;
                    }
                    let Ok(hash) = format!("{}:{file}", algorithm.as_str()).parse() else {
                        continue;
                    };
                    let path = shard.join(&file);
                    match std::fs::metadata(&path) {
                        Ok(meta) if meta.is_file() => each(hash, meta.len()),
                        Ok(_) => {}
                        // Deleted while the shard was read.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(self.fail("list objects", &path, e)),
                    }
                }
            }
        }
        Ok(())
    }

    /// The names in `dir` (none when it does not exist).
    fn entries(&self, dir: &FsPath) -> Result<Vec<String>> {
        let listing = match std::fs::read_dir(dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.fail("list objects", dir, e)),
        };
        let mut names = Vec::new();
        for entry in listing {
            let entry = entry.map_err(|e| self.fail("list objects", dir, e))?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Removes staging files last modified at least `older_than` ago.
    pub(crate) fn cleanup_staging(&self, older_than: Duration) -> Result<u64> {
        let dir = self.staging_dir();
        let cutoff = SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut removed = 0;
        for name in self.entries(&dir)? {
            let path = dir.join(&name);
            let old = std::fs::metadata(&path)
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| modified <= cutoff);
            if !old {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.fail("remove a staging upload", &path, e)),
            }
        }
        Ok(removed)
    }

    /// Writes `bytes` at the address `hash` without checking them (see
    /// `LocalPackageStore::overwrite_unverified`).
    pub(crate) fn overwrite(&self, hash: &ContentHash, bytes: &[u8]) -> Result<()> {
        let path = self.object_file(hash);
        create_dirs(&self.shard_dir(hash))
            .and_then(|()| std::fs::write(&path, bytes))
            .map_err(|e| self.fail(format!("overwrite {hash}"), &path, e))
    }
}

/// A file time as the contract's time (the epoch when the platform has none).
fn datetime(time: Option<SystemTime>) -> OffsetDateTime {
    time.map(OffsetDateTime::from)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn is_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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
