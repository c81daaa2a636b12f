//! `Registry` on SQLite: bundled SQLite in WAL mode, versioned migrations, one writer
//! connection plus a pool of readers, statements run off the async threads.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accounts;
mod error;
mod queries;
mod resolution;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use marketplace_core::time::OffsetDateTime;
use marketplace_core::{
    ContentHash, DependencyGraph, DownloadCount, MetadataUpdate, PackageId, PackageMetadata,
    PackageRecord, PackageRef, PackageStats, Registry, RegistryEvent, ResolveOptions, Result,
    VersionState, check_registration,
};
use rusqlite::Connection;

use crate::error::SqliteError;
use crate::queries::{At, QResult, QueryError};

pub use crate::schema::SCHEMA_VERSION;

/// How durable a write's commit is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// fsync on commit: survives power loss (registrations, yanks, metadata).
    Full,
    /// WAL without fsync on commit: survives a crash of the process, may lose the last commits
    /// on power loss. For download counts, which are statistics.
    Relaxed,
}

/// Most idle reader connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;

/// A [`Registry`] stored in SQLite.
///
/// File databases use WAL, so readers (a pool of read-only connections) never wait for the
/// writer; writes go through one connection, serialised. In-memory databases use one
/// connection for everything. Every statement runs on tokio's blocking pool, so the registry
/// must be used inside a tokio runtime. Cloning is cheap and shares the database.
#[derive(Clone)]
pub struct SqliteRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    path: Option<PathBuf>,
    location: String,
    /// Declared (so dropped) before the writer: the last connection to close checkpoints the
    /// write-ahead log and removes it, which only a read-write connection can do — so a home
    /// closed cleanly leaves just the database file.
    readers: Mutex<Vec<Connection>>,
    /// `None` when opened read-only: every write is refused.
    writer: Option<Mutex<Connection>>,
    /// Readers open the file as immutable (read-only, where SQLite could not open its WAL).
    immutable: bool,
}

impl std::fmt::Debug for SqliteRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteRegistry")
            .field("location", &self.inner.location)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Connections hold no Rust-side state a panic could leave half-changed; SQLite rolls back
    // an unfinished transaction when it is dropped.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SqliteRegistry {
    /// Opens (or creates) the database at `path`, creating parent directories, and upgrades an
    /// older schema. Errors: `Backend` naming the path if it is not a SQLite database, is
    /// corrupt, or was written by a newer version of this library.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let location = path.display().to_string();
        let opening = format!("open the registry database {location}");
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| {
                SqliteError::CreateDir {
                    path: parent.display().to_string(),
                    source,
                }
                .during(&opening)
            })?;
        }
        Self::start(Some(path), location, &opening)
    }

    /// Opens the existing database at `path` for reading only, for a home on a read-only disk
    /// or directory: every read works, every write is refused (`Backend`, saying the database
    /// is read-only), nothing is created or migrated. Where SQLite cannot open the write-ahead
    /// log (its files missing and the directory not writable), the file is read as immutable.
    /// Errors: `Backend` naming the path if it is missing, not a database, or at another schema
    /// version than this library writes (an older one is upgraded by opening it writable once).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let location = path.display().to_string();
        let opening = format!("open the registry database {location} read-only");
        let (reader, immutable) =
            schema::open_read_only(&path, &location).map_err(|e| e.during(&opening))?;
        Ok(SqliteRegistry {
            inner: Arc::new(Inner {
                path: Some(path),
                location,
                readers: Mutex::new(vec![reader]),
                writer: None,
                immutable,
            }),
        })
    }

    /// Whether this registry was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.inner.writer.is_none()
    }

    /// A fresh, empty in-memory database.
    pub fn open_in_memory() -> Result<Self> {
        Self::start(
            None,
            ":memory:".to_owned(),
            "open an in-memory registry database",
        )
    }

    fn start(path: Option<PathBuf>, location: String, opening: &str) -> Result<Self> {
        // Processes opening a new database at once meet SQLite's deadlock guard (switching to
        // WAL, or upgrading a read to a write, is refused at once, not after the busy
        // timeout): such an open is tried again, a little later each time, for up to 10 s.
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(5);
        let writer = loop {
            let opened = schema::connect(path.as_deref(), &location)
                .and_then(|mut writer| schema::migrate(&mut writer, &location).map(|()| writer));
            match opened {
                Err(e) if e.is_busy() && started.elapsed() < std::time::Duration::from_secs(10) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(200));
                }
                other => break other.map_err(|e| e.during(opening))?,
            }
        };
        Ok(SqliteRegistry {
            inner: Arc::new(Inner {
                path,
                location,
                readers: Mutex::new(Vec::new()),
                writer: Some(Mutex::new(writer)),
                immutable: false,
            }),
        })
    }

    /// Where the database lives (`:memory:` for in-memory databases).
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    /// Runs `op` on a reader connection on the blocking pool.
    async fn read<T, F>(&self, operation: String, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> QResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        blocking(operation, move || inner.with_reader(op)).await
    }

    /// Runs `op` in a transaction on the writer connection on the blocking pool, durable
    /// (fsynced) on commit.
    async fn write<T, F>(&self, operation: String, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>, &str) -> QResult<T> + Send + 'static,
    {
        self.write_with(Durability::Full, operation, op).await
    }

    /// Like [`SqliteRegistry::write`], choosing how durable the commit is.
    async fn write_with<T, F>(&self, durability: Durability, operation: String, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>, &str) -> QResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        blocking(operation, move || {
            let location = inner.location.as_str();
            let Some(writer) = &inner.writer else {
                return Err(QueryError::Db(SqliteError::ReadOnly {
                    location: location.to_owned(),
                }));
            };
            let mut conn = lock(writer);
            let relaxed = durability == Durability::Relaxed;
            if relaxed {
                conn.pragma_update(None, "synchronous", "NORMAL")
                    .at(location)?;
            }
            let result = (|| {
                let tx = conn.transaction().at(location)?;
                let value = op(&tx, location)?;
                tx.commit().at(location)?;
                Ok(value)
            })();
            if relaxed {
                conn.pragma_update(None, "synchronous", "FULL")
                    .at(location)?;
            }
            result
        })
        .await
    }
}

impl Inner {
    /// Resolves `id` with the core resolver's synchronous driver over one connection, in the
    /// calling (blocking) thread: one hop for the whole resolution.
    fn resolve_blocking(&self, id: &PackageId, options: ResolveOptions) -> Result<DependencyGraph> {
        let resolved = self.with_reader(|connection, location| {
            let source = resolution::ConnectionSource {
                connection,
                location,
            };
            Ok(marketplace_core::resolve_graph_blocking(
                &source, id, options,
            ))
        });
        match resolved {
            Ok(result) => result,
            Err(QueryError::Contract(e)) => Err(e),
            Err(QueryError::Db(e)) => Err(e.during("open a reader")),
        }
    }

    /// An idle pooled reader, or a new one.
    fn take_reader(&self, path: &Path) -> std::result::Result<Connection, SqliteError> {
        let pooled = lock(&self.readers).pop();
        match pooled {
            Some(conn) => Ok(conn),
            None if self.immutable => schema::connect_immutable(path, &self.location),
            None => schema::connect_reader(path, &self.location),
        }
    }

    /// Returns a reader to the pool, keeping at most `MAX_IDLE_READERS`.
    fn give_back(&self, conn: Connection) {
        let mut idle = lock(&self.readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }

    fn with_reader<T>(&self, op: impl FnOnce(&Connection, &str) -> QResult<T>) -> QResult<T> {
        let Some(path) = &self.path else {
            // In memory: one connection serves readers and the writer (an in-memory database
            // is never read-only).
            let Some(writer) = &self.writer else {
                return Err(QueryError::Db(SqliteError::ReadOnly {
                    location: self.location.clone(),
                }));
            };
            return op(&lock(writer), &self.location);
        };
        let conn = self.take_reader(path)?;
        let result = op(&conn, &self.location);
        self.give_back(conn);
        result
    }
}

/// Runs a database closure on tokio's blocking pool and converts its errors.
async fn blocking<T, F>(operation: String, op: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> QResult<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(op).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(QueryError::Contract(e))) => Err(e),
        Ok(Err(QueryError::Db(e))) => Err(e.during(operation)),
        Err(join) => Err(SqliteError::Task(join.to_string()).during(operation)),
    }
}

fn today() -> marketplace_core::time::Date {
    OffsetDateTime::now_utc().date()
}

#[async_trait]
impl Registry for SqliteRegistry {
    async fn register(
        &self,
        metadata: PackageMetadata,
        content_hash: ContentHash,
    ) -> Result<PackageId> {
        check_registration(&metadata, &content_hash)?;
        self.write(format!("register {}", metadata.id), move |tx, location| {
            queries::insert_version(tx, location, &metadata)
        })
        .await
    }

    async fn register_batch(
        &self,
        items: Vec<(PackageMetadata, ContentHash)>,
    ) -> Result<Vec<PackageId>> {
        for (metadata, hash) in &items {
            check_registration(metadata, hash)?;
        }
        let operation = format!("register a batch of {} versions", items.len());
        self.write(operation, move |tx, location| {
            items
                .iter()
                .map(|(metadata, _)| queries::insert_version(tx, location, metadata))
                .collect()
        })
        .await
    }

    async fn get(&self, id: &PackageId) -> Result<PackageMetadata> {
        let id = id.clone();
        self.read(format!("get {id}"), move |conn, location| {
            queries::get(conn, location, &id)
        })
        .await
    }

    async fn list_version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        let package = package.clone();
        self.read(
            format!("list the versions of {package}"),
            move |conn, location| queries::version_states(conn, location, &package),
        )
        .await
    }

    async fn resolve_dependencies(
        &self,
        id: &PackageId,
        options: ResolveOptions,
    ) -> Result<DependencyGraph> {
        // The provided resolver, run next to the data: every read it makes is a direct call
        // on one connection inside one blocking task.
        let inner = Arc::clone(&self.inner);
        let id = id.clone();
        tokio::task::spawn_blocking(move || inner.resolve_blocking(&id, options))
            .await
            .map_err(|e| SqliteError::Task(e.to_string()).during("resolve dependencies"))?
    }

    async fn update_metadata(
        &self,
        id: &PackageId,
        update: MetadataUpdate,
    ) -> Result<PackageMetadata> {
        update.validate()?;
        let id = id.clone();
        self.write(
            format!("update the metadata of {id}"),
            move |tx, location| queries::update_metadata(tx, location, &id, update),
        )
        .await
    }

    async fn yank(&self, id: &PackageId, reason: &str) -> Result<()> {
        let (id, reason) = (id.clone(), reason.to_owned());
        self.write(format!("yank {id}"), move |tx, location| {
            queries::set_yank(tx, location, &id, Some(&reason))
        })
        .await
    }

    async fn unyank(&self, id: &PackageId) -> Result<()> {
        let id = id.clone();
        self.write(format!("unyank {id}"), move |tx, location| {
            queries::set_yank(tx, location, &id, None)
        })
        .await
    }

    async fn is_yanked(&self, id: &PackageId) -> Result<bool> {
        let id = id.clone();
        self.read(
            format!("check whether {id} is yanked"),
            move |conn, location| queries::is_yanked(conn, location, &id),
        )
        .await
    }

    async fn list_by_author(
        &self,
        author: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        let author = author.to_owned();
        self.read(
            format!("list the versions by {author}"),
            move |conn, location| queries::list(conn, location, Some(&author), limit, offset),
        )
        .await
    }

    async fn list(&self, limit: usize, offset: usize) -> Result<Vec<PackageRecord>> {
        self.read("list versions".to_owned(), move |conn, location| {
            queries::list(conn, location, None, limit, offset)
        })
        .await
    }

    async fn get_stats(&self, id: &PackageId) -> Result<PackageStats> {
        let id = id.clone();
        self.read(
            format!("read the statistics of {id}"),
            move |conn, location| queries::stats(conn, location, &id, today()),
        )
        .await
    }

    async fn record_download(&self, id: &PackageId) -> Result<()> {
        let id = id.clone();
        let operation = format!("record a download of {id}");
        self.write_with(Durability::Relaxed, operation, move |tx, location| {
            queries::record_download(tx, location, &id, today())
        })
        .await
    }

    async fn downloads_since(&self, after: u64, limit: usize) -> Result<Vec<DownloadCount>> {
        self.read(
            format!("read download totals after stamp {after}"),
            move |conn, location| queries::downloads_since(conn, location, after, limit),
        )
        .await
    }

    async fn events_since(&self, after: u64, limit: usize) -> Result<Vec<RegistryEvent>> {
        self.read(
            format!("read events after {after}"),
            move |conn, location| queries::events_since(conn, location, after, limit),
        )
        .await
    }

    async fn latest_event_seq(&self) -> Result<u64> {
        self.read("read the newest event".to_owned(), |conn, location| {
            queries::latest_event_seq(conn, location)
        })
        .await
    }
}
