//! Dependency resolution in one trip to the blocking pool: the core resolver's synchronous
//! driver reads through one connection, so its ~100 reads for a 50-package graph are plain
//! function calls instead of ~100 hops between async and blocking threads.

use marketplace_core::{
    BlockingResolutionSource, PackageId, PackageMetadata, PackageRef, Result, VersionState,
};
use rusqlite::Connection;

use crate::queries::{self, QResult, QueryError};

/// The two reads resolution makes, on one connection held for the whole resolution.
pub(crate) struct ConnectionSource<'a> {
    pub(crate) connection: &'a Connection,
    pub(crate) location: &'a str,
}

impl ConnectionSource<'_> {
    fn run<T>(
        &self,
        operation: &str,
        op: impl FnOnce(&Connection, &str) -> QResult<T>,
    ) -> Result<T> {
        op(self.connection, self.location).map_err(|e| match e {
            QueryError::Contract(e) => e,
            QueryError::Db(e) => e.during(operation.to_owned()),
        })
    }
}

impl BlockingResolutionSource for ConnectionSource<'_> {
    fn version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        self.run("list versions", |c, l| {
            queries::version_states(c, l, package)
        })
    }

    fn metadata(&self, id: &PackageId) -> Result<PackageMetadata> {
        self.run("read a version", |c, l| queries::get(c, l, id))
    }
}
