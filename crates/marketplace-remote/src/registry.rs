//! [`RemoteRegistry`]: the core's `Registry` read from a server's API.

use std::sync::Arc;

use async_trait::async_trait;
use marketplace_core::{
    ContentHash, DependencyGraph, DownloadCount, Error, MetadataUpdate, PackageId, PackageMetadata,
    PackageRecord, PackageRef, PackageStats, Registry, RegistryEvent, ResolveOptions, Result,
    VersionState,
};
use marketplace_protocol::v1;

use crate::connection::{Connection, NO_QUERY, package_segment, version_path};

/// The registry of a remote marketplace: versions with their yank state, each version's
/// metadata (with its author's signature, which the client verifies; another version's
/// metadata is an `Integrity` error), download statistics and
/// the change feed, over `/api/v1`. Dependency resolution is the core's resolver running here
/// over those reads, so the graph is the client's own; the server's graph only tells it what
/// to read up front.
///
/// Writes (`register`, `register_batch`, `update_metadata`, `yank`, `unyank`) are refused:
/// a remote marketplace is changed through its API as one of its users. `list`,
/// `list_by_author` and `downloads_since` are not served by the API (v1) and say so.
#[derive(Clone, Debug)]
pub struct RemoteRegistry {
    connection: Arc<Connection>,
}

impl RemoteRegistry {
    pub(crate) fn new(connection: Arc<Connection>) -> Self {
        RemoteRegistry { connection }
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.connection
    }
}

#[async_trait]
impl Registry for RemoteRegistry {
    async fn register(
        &self,
        metadata: PackageMetadata,
        _content_hash: ContentHash,
    ) -> Result<PackageId> {
        Err(self
            .connection
            .refused_write(&format!("register {}", metadata.id)))
    }

    async fn register_batch(
        &self,
        items: Vec<(PackageMetadata, ContentHash)>,
    ) -> Result<Vec<PackageId>> {
        Err(self
            .connection
            .refused_write(&format!("register {} versions", items.len())))
    }

    async fn get(&self, id: &PackageId) -> Result<PackageMetadata> {
        let body: v1::VersionMetadata = self
            .connection
            .get_json(&format!("get {id}"), &version_path(id), NO_QUERY)
            .await?;
        let metadata = PackageMetadata::try_from(body)?;
        // Another version's metadata, however validly signed, is not this version's.
        if !same_version(&metadata.id, id) {
            return Err(Error::integrity(
                format!("the metadata {} sent for {id}", self.connection.base()),
                id,
                &metadata.id,
            ));
        }
        Ok(metadata)
    }

    async fn list_version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        let path = format!("/packages/{}/versions", package_segment(package));
        let body: v1::VersionList = self
            .connection
            .get_json(&format!("list the versions of {package}"), &path, NO_QUERY)
            .await?;
        let mut states = body.states()?;
        // The contract's order (ascending semver), whatever order the server sent.
        states.sort_by(|a, b| a.version.cmp_precedence(&b.version));
        Ok(states)
    }

    /// The core's resolver, here, over this registry's reads — with the server's own graph
    /// for `id` as a prefetch hint: its metadata and the version lists of its packages are
    /// read in two round trips instead of two per graph level. The hint chooses nothing (see
    /// the `resolve` module); what it lacks is read live.
    async fn resolve_dependencies(
        &self,
        id: &PackageId,
        options: ResolveOptions,
    ) -> Result<DependencyGraph> {
        crate::resolve::resolve(self, id, options).await
    }

    async fn update_metadata(
        &self,
        id: &PackageId,
        _update: MetadataUpdate,
    ) -> Result<PackageMetadata> {
        Err(self
            .connection
            .refused_write(&format!("update the metadata of {id}")))
    }

    async fn yank(&self, id: &PackageId, _reason: &str) -> Result<()> {
        Err(self.connection.refused_write(&format!("yank {id}")))
    }

    async fn unyank(&self, id: &PackageId) -> Result<()> {
        Err(self.connection.refused_write(&format!("unyank {id}")))
    }

    async fn is_yanked(&self, id: &PackageId) -> Result<bool> {
        let states = self.list_version_states(&id.package()).await?;
        states
            .iter()
            .find(|s| s.version.cmp_precedence(&id.version).is_eq())
            .map(VersionState::is_yanked)
            .ok_or_else(|| Error::not_found(format!("package {id}")))
    }

    async fn list_by_author(
        &self,
        author: &str,
        _limit: usize,
        _offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        Err(self
            .connection
            .not_served(&format!("list the versions by {author}")))
    }

    async fn list(&self, _limit: usize, _offset: usize) -> Result<Vec<PackageRecord>> {
        Err(self.connection.not_served("list every version"))
    }

    async fn get_stats(&self, id: &PackageId) -> Result<PackageStats> {
        let path = format!("{}/stats", version_path(id));
        let body: v1::Stats = self
            .connection
            .get_json(&format!("get the statistics of {id}"), &path, NO_QUERY)
            .await?;
        PackageStats::try_from(body)
    }

    /// Counts the download on the server (`POST …/downloads`): the archive was read by hash,
    /// which the server does not count.
    async fn record_download(&self, id: &PackageId) -> Result<()> {
        let path = format!("{}/downloads", version_path(id));
        self.connection
            .post_empty(&format!("count a download of {id}"), &path)
            .await
    }

    async fn downloads_since(&self, _after: u64, _limit: usize) -> Result<Vec<DownloadCount>> {
        Err(self.connection.not_served("list the download totals"))
    }

    async fn events_since(&self, after: u64, limit: usize) -> Result<Vec<RegistryEvent>> {
        let query = v1::EventParams {
            since: Some(after),
            limit: Some(limit.clamp(1, MAX_EVENTS_PAGE)),
        };
        let body: v1::EventPage = self
            .connection
            .get_json("read the change feed", "/events", &query)
            .await?;
        body.events
            .into_iter()
            .map(RegistryEvent::try_from)
            .collect()
    }
}

/// The most events the server sends in one page.
const MAX_EVENTS_PAGE: usize = 1000;

/// Whether `a` and `b` name the same version (canonical names; build metadata ignored).
fn same_version(a: &PackageId, b: &PackageId) -> bool {
    a.package().canonical() == b.package().canonical()
        && a.version.cmp_precedence(&b.version).is_eq()
}
