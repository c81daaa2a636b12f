//! `Registry` and `AccountStore` on PostgreSQL: tokio-postgres with a deadpool pool, embedded
//! versioned migrations, a gap-free event log under concurrent writers, keyset paging and
//! set-based resolution.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accounts;
mod error;
mod options;
mod queries;
mod resolution;
mod schema;
#[cfg(feature = "tls")]
mod tls;

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{Object, Pool, Transaction};
use marketplace_core::time::OffsetDateTime;
use marketplace_core::{
    ContentHash, DependencyGraph, DownloadCount, Error, MetadataUpdate, PackageId, PackageMetadata,
    PackageRecord, PackageRef, PackageStats, Registry, RegistryEvent, ResolveOptions, Result,
    VersionState, check_registration,
};

use crate::error::PgError;
use crate::queries::{QResult, QueryError};

pub use crate::options::PostgresOptions;
pub use crate::schema::SCHEMA_VERSION;

/// A [`Registry`] (and [`marketplace_core::AccountStore`]) stored in PostgreSQL.
///
/// Statements run on a pool of connections (deadpool), each prepared once per connection.
/// Every mutation is one transaction that takes the event log's lock first, so writers on any
/// number of connections and processes are serialised there and the log has no gaps; reads
/// never wait for writers (PostgreSQL's snapshots). Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct PostgresRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// Where the database is, without the password: `postgres://user@host:port/db`.
    location: String,
}

impl std::fmt::Debug for PostgresRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresRegistry")
            .field("location", &self.inner.location)
            .finish_non_exhaustive()
    }
}

/// Converts a statement's result into the public one, saying what was being done.
pub(crate) fn finish<T>(result: QResult<T>, operation: impl FnOnce() -> String) -> Result<T> {
    result.map_err(|e| match e {
        QueryError::Contract(e) => e,
        QueryError::Db(e) => e.during(operation()),
    })
}

fn today() -> marketplace_core::time::Date {
    OffsetDateTime::now_utc().date()
}

impl PostgresRegistry {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db?sslmode=…`,
    /// or libpq's `host=… dbname=…` form) with the default options, and brings its schema up
    /// to date. See [`PostgresRegistry::open`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::open(PostgresOptions::from_url(url)?).await
    }

    /// Connects as the standard `PG*` environment variables say (`PGHOST`, `PGPORT`,
    /// `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, …), as `psql` would.
    pub async fn from_env() -> Result<Self> {
        Self::open(PostgresOptions::from_env()?).await
    }

    /// Connects with `options` and migrates the schema (in one transaction, under an advisory
    /// lock, so servers starting together on a new database migrate it once). Errors:
    /// `Backend` (transient when the server cannot be reached) naming the database; `Backend`
    /// when the database was written by a newer library (left untouched).
    pub async fn open(options: PostgresOptions) -> Result<Self> {
        let location = options.location();
        let opening = "open the registry database";
        let pool = options
            .pool()
            .map_err(|e| PgError::Config(e).during(opening))?;
        let mut client = pool
            .get()
            .await
            .map_err(|e| PgError::pool(&location, e).during(opening))?;
        schema::migrate(&mut client, &location)
            .await
            .map_err(|e| e.during(opening))?;
        drop(client);
        Ok(PostgresRegistry {
            inner: Arc::new(Inner { pool, location }),
        })
    }

    /// Where the database is, without the password.
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    /// A pooled connection. Errors: `Backend`, transient when the server is unreachable or
    /// every connection stayed busy for the pool's whole wait.
    pub(crate) async fn client(&self, operation: &str) -> Result<Object> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| PgError::pool(&self.inner.location, e).during(operation))
    }

    /// Runs `op` on a pooled connection.
    async fn read<T>(
        &self,
        operation: impl Fn() -> String,
        op: impl AsyncFnOnce(&Object, &str) -> QResult<T>,
    ) -> Result<T> {
        let client = self.client(&operation()).await?;
        finish(op(&client, self.location()).await, operation)
    }

    /// Runs `op` in a transaction, committed when it succeeds and rolled back otherwise.
    async fn write<T>(
        &self,
        operation: impl Fn() -> String,
        op: impl AsyncFnOnce(&Transaction<'_>, &str) -> QResult<T>,
    ) -> Result<T> {
        let location = self.location();
        let mut client = self.client(&operation()).await?;
        let result = async {
            let tx = client
                .transaction()
                .await
                .map_err(|e| PgError::postgres(location, &e))?;
            let value = op(&tx, location).await?;
            tx.commit()
                .await
                .map_err(|e| PgError::postgres(location, &e))?;
            Ok(value)
        }
        .await;
        finish(result, operation)
    }

    /// Brings the planner's statistics up to date each time the registry has doubled in size
    /// since they were last taken (from 4,096 versions on): a bulk import outgrows them
    /// faster than autovacuum's minute-long naps notice, and a plan made for a small table
    /// (a sequential scan inside the resolution's recursive query) turns milliseconds into
    /// seconds. Best effort: a failure leaves it to autovacuum.
    async fn refresh_statistics(&self) {
        let Ok(client) = self.client("refresh statistics").await else {
            return;
        };
        if let Ok(true) = queries::statistics_stale(&client, self.location()).await {
            let _ = client
                .batch_execute("ANALYZE packages, versions, dependencies, version_authors")
                .await;
        }
    }

    pub(crate) async fn read_version_states(
        &self,
        package: &PackageRef,
    ) -> Result<Vec<VersionState>> {
        self.read(
            || format!("list the versions of {package}"),
            async |client, location| queries::version_states(client, location, package).await,
        )
        .await
    }

    pub(crate) async fn read_metadata(&self, id: &PackageId) -> Result<PackageMetadata> {
        self.read(
            || format!("get {id}"),
            async |client, location| queries::get(client, location, id).await,
        )
        .await
    }
}

#[async_trait]
impl Registry for PostgresRegistry {
    async fn register(
        &self,
        metadata: PackageMetadata,
        content_hash: ContentHash,
    ) -> Result<PackageId> {
        check_registration(&metadata, &content_hash)?;
        let items = [metadata];
        let mut ids = self
            .write(
                || format!("register {}", items[0].id),
                async |tx, location| {
                    let rows = std::future::ready(queries::encode_rows(location, &items));
                    queries::insert_versions(tx, location, &items, rows).await
                },
            )
            .await?;
        ids.pop()
            .ok_or_else(|| Error::backend("postgres", "register", "no id returned", false))
    }

    async fn register_batch(
        &self,
        items: Vec<(PackageMetadata, ContentHash)>,
    ) -> Result<Vec<PackageId>> {
        let mut seen = std::collections::HashSet::new();
        for (metadata, hash) in &items {
            check_registration(metadata, hash)?;
            if !seen.insert(metadata.id.canonical()) {
                return Err(Error::already_exists(format!(
                    "package {} (twice in one batch)",
                    metadata.id
                )));
            }
        }
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let items: Arc<Vec<PackageMetadata>> =
            Arc::new(items.into_iter().map(|(m, _)| m).collect());
        // Encoding the rows is a third of a big batch's time: it runs on another thread while
        // the first statements go to the server.
        let encoding = {
            let (items, location) = (Arc::clone(&items), self.location().to_owned());
            tokio::task::spawn_blocking(move || queries::encode_rows(&location, &items))
        };
        let ids = self
            .write(
                || format!("register a batch of {} versions", items.len()),
                async |tx, location| {
                    let rows = async {
                        encoding.await.map_err(|e| {
                            QueryError::Db(PgError::Task(format!("encoding the batch: {e}")))
                        })?
                    };
                    queries::insert_versions(tx, location, &items, rows).await
                },
            )
            .await?;
        self.refresh_statistics().await;
        Ok(ids)
    }

    async fn get(&self, id: &PackageId) -> Result<PackageMetadata> {
        self.read_metadata(id).await
    }

    async fn list_version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        self.read_version_states(package).await
    }

    async fn resolve_dependencies(
        &self,
        id: &PackageId,
        options: ResolveOptions,
    ) -> Result<DependencyGraph> {
        let source = resolution::Prefetched::fetch(self, id).await;
        marketplace_core::resolve_graph(&source, id, options).await
    }

    async fn update_metadata(
        &self,
        id: &PackageId,
        update: MetadataUpdate,
    ) -> Result<PackageMetadata> {
        update.validate()?;
        self.write(
            || format!("update the metadata of {id}"),
            async |tx, location| queries::update_metadata(tx, location, id, update).await,
        )
        .await
    }

    async fn yank(&self, id: &PackageId, reason: &str) -> Result<()> {
        self.write(
            || format!("yank {id}"),
            async |tx, location| queries::set_yank(tx, location, id, Some(reason)).await,
        )
        .await
    }

    async fn unyank(&self, id: &PackageId) -> Result<()> {
        self.write(
            || format!("unyank {id}"),
            async |tx, location| queries::set_yank(tx, location, id, None).await,
        )
        .await
    }

    async fn is_yanked(&self, id: &PackageId) -> Result<bool> {
        self.read(
            || format!("check whether {id} is yanked"),
            async |client, location| queries::is_yanked(client, location, id).await,
        )
        .await
    }

    async fn list_by_author(
        &self,
        author: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        self.read(
            || format!("list the versions by {author}"),
            async |client, location| {
                queries::list(client, location, Some(author), limit, offset).await
            },
        )
        .await
    }

    async fn list(&self, limit: usize, offset: usize) -> Result<Vec<PackageRecord>> {
        self.read(
            || "list versions".to_owned(),
            async |client, location| queries::list(client, location, None, limit, offset).await,
        )
        .await
    }

    async fn get_stats(&self, id: &PackageId) -> Result<PackageStats> {
        self.read(
            || format!("read the statistics of {id}"),
            async |client, location| queries::stats(client, location, id, today()).await,
        )
        .await
    }

    async fn record_download(&self, id: &PackageId) -> Result<()> {
        self.read(
            || format!("record a download of {id}"),
            async |client, location| queries::record_download(client, location, id, today()).await,
        )
        .await
    }

    async fn downloads_since(&self, after: u64, limit: usize) -> Result<Vec<DownloadCount>> {
        self.read(
            || format!("read download totals after stamp {after}"),
            async |client, location| queries::downloads_since(client, location, after, limit).await,
        )
        .await
    }

    async fn events_since(&self, after: u64, limit: usize) -> Result<Vec<RegistryEvent>> {
        self.read(
            || format!("read events after {after}"),
            async |client, location| queries::events_since(client, location, after, limit).await,
        )
        .await
    }

    async fn latest_event_seq(&self) -> Result<u64> {
        self.read(
            || "read the newest event".to_owned(),
            async |client, location| queries::latest_event_seq(client, location).await,
        )
        .await
    }
}
