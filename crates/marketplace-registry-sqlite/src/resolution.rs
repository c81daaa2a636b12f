//! Dependency resolution in one trip to the blocking pool: the core resolver runs over a
//! read-only view of one connection, so its ~100 reads for a 50-package graph are plain
//! function calls instead of ~100 hops between async and blocking threads.

use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use marketplace_core::{
    ContentHash, Error, MetadataUpdate, PackageId, PackageMetadata, PackageRecord, PackageRef,
    PackageStats, Registry, RegistryEvent, Result, VersionState,
};
use rusqlite::Connection;

use crate::queries::{self, QResult, QueryError};

/// The connection a view reads through: a pooled reader it owns for the resolution, or the
/// single connection of an in-memory database.
pub(crate) enum ViewConnection<'a> {
    Owned(Mutex<Connection>),
    Shared(&'a Mutex<Connection>),
}

/// A read-only [`Registry`] over one connection, for the resolver. Every read is synchronous;
/// mutations are refused (the view exists only while a resolution runs).
pub(crate) struct ReadView<'a> {
    pub(crate) connection: ViewConnection<'a>,
    pub(crate) location: &'a str,
}

impl ReadView<'_> {
    fn run<T>(
        &self,
        operation: &str,
        op: impl FnOnce(&Connection, &str) -> QResult<T>,
    ) -> Result<T> {
        let mutex = match &self.connection {
            ViewConnection::Owned(m) => m,
            ViewConnection::Shared(m) => *m,
        };
        let conn: MutexGuard<'_, Connection> = mutex.lock().unwrap_or_else(PoisonError::into_inner);
        op(&conn, self.location).map_err(|e| match e {
            QueryError::Contract(e) => e,
            QueryError::Db(e) => e.during(operation.to_owned()),
        })
    }

    fn read_only(&self, operation: &str) -> Error {
        Error::backend(
            "sqlite",
            operation.to_owned(),
            "the resolution view of the registry is read-only",
            false,
        )
    }

    /// Gives back an owned connection, for the reader pool.
    pub(crate) fn into_connection(self) -> Option<Connection> {
        match self.connection {
            ViewConnection::Owned(m) => {
                Some(m.into_inner().unwrap_or_else(PoisonError::into_inner))
            }
            ViewConnection::Shared(_) => None,
        }
    }
}

#[async_trait]
impl Registry for ReadView<'_> {
    async fn register(&self, _: PackageMetadata, _: ContentHash) -> Result<PackageId> {
        Err(self.read_only("register"))
    }

    async fn get(&self, id: &PackageId) -> Result<PackageMetadata> {
        self.run("read a version", |c, l| queries::get(c, l, id))
    }

    async fn list_version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        self.run("list versions", |c, l| {
            queries::version_states(c, l, package)
        })
    }

    async fn update_metadata(&self, _: &PackageId, _: MetadataUpdate) -> Result<PackageMetadata> {
        Err(self.read_only("update metadata"))
    }

    async fn yank(&self, _: &PackageId, _: &str) -> Result<()> {
        Err(self.read_only("yank"))
    }

    async fn unyank(&self, _: &PackageId) -> Result<()> {
        Err(self.read_only("unyank"))
    }

    async fn is_yanked(&self, id: &PackageId) -> Result<bool> {
        self.run("read a yank", |c, l| queries::is_yanked(c, l, id))
    }

    async fn list_by_author(
        &self,
        author: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        self.run("list versions by author", |c, l| {
            queries::list(c, l, Some(author), limit, offset)
        })
    }

    async fn list(&self, limit: usize, offset: usize) -> Result<Vec<PackageRecord>> {
        self.run("list versions", |c, l| {
            queries::list(c, l, None, limit, offset)
        })
    }

    async fn get_stats(&self, id: &PackageId) -> Result<PackageStats> {
        self.run("read statistics", |c, l| {
            queries::stats(
                c,
                l,
                id,
                marketplace_core::time::OffsetDateTime::now_utc().date(),
            )
        })
    }

    async fn record_download(&self, _: &PackageId) -> Result<()> {
        Err(self.read_only("record a download"))
    }

    async fn events_since(&self, after: u64, limit: usize) -> Result<Vec<RegistryEvent>> {
        self.run("read events", |c, l| {
            queries::events_since(c, l, after, limit)
        })
    }
}
