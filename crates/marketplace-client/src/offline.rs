//! Working without the network: [`MetadataCache`] keeps the version metadata a client read from
//! a registry under a directory, [`CachedRegistry`] fills it as a registry is read, and
//! [`MarketplaceBuilder::offline`] composes a client of that cache and of an archive cache
//! ([`crate::CachedStore`]'s) alone.
//!
//! Nothing in the caches is trusted: an offline install verifies every archive's hash and
//! every author's signature against the user's trust store exactly as an online one. What an
//! offline client cannot know is what changed since it last read: a yank, a new version.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use marketplace_core::semver::VersionReq;
use marketplace_core::{
    ContentHash, CryptoVerifier, DependencyGraph, DownloadCount, Error, Facets, IndexStats,
    MetadataUpdate, PackageId, PackageMetadata, PackageRecord, PackageRef, PackageStats,
    PackageStore, Registry, RegistryEvent, ResolveOptions, Result, SearchEngine, SearchQuery,
    SearchResult, VersionState,
};

use crate::builder::MarketplaceBuilder;

const BACKEND: &str = "offline";

/// Version metadata under a directory: one JSON file per version, in one directory per
/// package (`ns~name/1.2.0.json`, canonical names; `~` is in no name). Written whole and
/// renamed into place, so a reader sees a version's file complete or not at all.
#[derive(Clone, Debug)]
pub struct MetadataCache {
    dir: PathBuf,
}

impl MetadataCache {
    /// The cache kept under `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        MetadataCache { dir: dir.into() }
    }

    /// Where the cache is kept.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn package_dir(&self, package: &PackageRef) -> PathBuf {
        self.dir.join(package.canonical().replace('/', "~"))
    }

    fn file(&self, id: &PackageId) -> PathBuf {
        let mut version = id.version.clone();
        version.build = Default::default();
        self.package_dir(&id.package())
            .join(format!("{version}.json"))
    }

    /// Keeps `metadata` (replacing what was kept for that version).
    pub fn put(&self, metadata: &PackageMetadata) -> Result<()> {
        let file = self.file(&metadata.id);
        let failed = |e: std::io::Error| {
            Error::backend(
                BACKEND,
                format!(
                    "cache the metadata of {} in {}",
                    metadata.id,
                    file.display()
                ),
                e,
                false,
            )
        };
        let dir = file
            .parent()
            .expect("a version's file is in its package's directory");
        std::fs::create_dir_all(dir).map_err(failed)?;
        let json = serde_json::to_vec(metadata).map_err(|e| failed(std::io::Error::other(e)))?;
        let partial = dir.join(format!(".{}.partial", std::process::id()));
        std::fs::write(&partial, json).map_err(failed)?;
        std::fs::rename(&partial, &file).map_err(failed)
    }

    /// The metadata kept for `id`, if any. A file that does not read back as `id`'s metadata
    /// is ignored (and reported): the cache is a copy, never a source of truth.
    pub fn get(&self, id: &PackageId) -> Option<PackageMetadata> {
        let file = self.file(id);
        let bytes = std::fs::read(&file).ok()?;
        match serde_json::from_slice::<PackageMetadata>(&bytes) {
            Ok(metadata) if metadata.id.canonical() == id.canonical() => Some(metadata),
            Ok(other) => {
                tracing::warn!(file = %file.display(), found = %other.id, "a cached metadata file holds another version; ignored");
                None
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "a cached metadata file does not parse; ignored");
                None
            }
        }
    }

    /// The versions of `package` kept, ascending.
    pub fn versions(&self, package: &PackageRef) -> Vec<PackageMetadata> {
        let Ok(entries) = std::fs::read_dir(self.package_dir(package)) else {
            return Vec::new();
        };
        let mut found: Vec<PackageMetadata> = entries
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                let version = name.strip_suffix(".json")?.parse().ok()?;
                self.get(&package.at(version))
            })
            .collect();
        found.sort_by(|a, b| a.id.version.cmp_precedence(&b.id.version));
        found
    }

    fn keep(&self, metadata: &PackageMetadata) {
        if let Err(e) = self.put(metadata) {
            tracing::warn!(error = %e, "the metadata cache cannot be written");
        }
    }
}

/// A registry whose reads of version metadata are also kept in a [`MetadataCache`] (one read
/// alone and every node of a resolved graph), for a later offline client. Everything else is
/// `inner`'s, unchanged; a cache that cannot be written is logged and skipped.
pub struct CachedRegistry {
    inner: Arc<dyn Registry>,
    cache: MetadataCache,
}

impl CachedRegistry {
    /// `inner`, its metadata reads kept in `cache`.
    pub fn new(inner: Arc<dyn Registry>, cache: MetadataCache) -> Self {
        CachedRegistry { inner, cache }
    }
}

#[async_trait]
impl Registry for CachedRegistry {
    async fn register(
        &self,
        metadata: PackageMetadata,
        content_hash: ContentHash,
    ) -> Result<PackageId> {
        self.inner.register(metadata, content_hash).await
    }

    async fn register_batch(
        &self,
        items: Vec<(PackageMetadata, ContentHash)>,
    ) -> Result<Vec<PackageId>> {
        self.inner.register_batch(items).await
    }

    async fn get(&self, id: &PackageId) -> Result<PackageMetadata> {
        let metadata = self.inner.get(id).await?;
        self.cache.keep(&metadata);
        Ok(metadata)
    }

    async fn list_version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        self.inner.list_version_states(package).await
    }

    async fn resolve_version(
        &self,
        package: &PackageRef,
        requirement: &VersionReq,
    ) -> Result<Option<PackageId>> {
        self.inner.resolve_version(package, requirement).await
    }

    async fn resolve_dependencies(
        &self,
        id: &PackageId,
        options: ResolveOptions,
    ) -> Result<DependencyGraph> {
        let graph = self.inner.resolve_dependencies(id, options).await?;
        for node in graph.nodes.values() {
            self.cache.keep(&node.metadata);
        }
        Ok(graph)
    }

    async fn update_metadata(
        &self,
        id: &PackageId,
        update: MetadataUpdate,
    ) -> Result<PackageMetadata> {
        self.inner.update_metadata(id, update).await
    }

    async fn yank(&self, id: &PackageId, reason: &str) -> Result<()> {
        self.inner.yank(id, reason).await
    }

    async fn unyank(&self, id: &PackageId) -> Result<()> {
        self.inner.unyank(id).await
    }

    async fn is_yanked(&self, id: &PackageId) -> Result<bool> {
        self.inner.is_yanked(id).await
    }

    async fn list_by_author(
        &self,
        author: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        self.inner.list_by_author(author, limit, offset).await
    }

    async fn list(&self, limit: usize, offset: usize) -> Result<Vec<PackageRecord>> {
        self.inner.list(limit, offset).await
    }

    async fn get_stats(&self, id: &PackageId) -> Result<PackageStats> {
        self.inner.get_stats(id).await
    }

    async fn record_download(&self, id: &PackageId) -> Result<()> {
        self.inner.record_download(id).await
    }

    async fn downloads_since(&self, after: u64, limit: usize) -> Result<Vec<DownloadCount>> {
        self.inner.downloads_since(after, limit).await
    }

    async fn events_since(&self, after: u64, limit: usize) -> Result<Vec<RegistryEvent>> {
        self.inner.events_since(after, limit).await
    }

    async fn latest_event_seq(&self) -> Result<u64> {
        self.inner.latest_event_seq().await
    }
}

/// What an offline client cannot do: everything that needs the registry's server.
fn needs_network(operation: &str) -> Error {
    Error::backend(
        BACKEND,
        operation,
        "offline: this needs the registry (only cached metadata and archives are at hand)",
        false,
    )
}

/// The registry of an offline client: the versions and metadata a [`MetadataCache`] holds.
/// Yank state is not known offline: every cached version reads as not yanked (as cargo's
/// `--offline` uses the index it last fetched). Writes, statistics, listings and the change
/// feed need the network and say so.
pub struct OfflineRegistry {
    cache: MetadataCache,
}

impl OfflineRegistry {
    /// The registry of what `cache` holds.
    pub fn new(cache: MetadataCache) -> Self {
        OfflineRegistry { cache }
    }
}

#[async_trait]
impl Registry for OfflineRegistry {
    async fn register(
        &self,
        metadata: PackageMetadata,
        _content_hash: ContentHash,
    ) -> Result<PackageId> {
        Err(needs_network(&format!("register {}", metadata.id)))
    }

    async fn get(&self, id: &PackageId) -> Result<PackageMetadata> {
        self.cache.get(id).ok_or_else(|| {
            Error::not_found(format!(
                "{id} in the offline cache {} (install it once online)",
                self.cache.dir().display()
            ))
        })
    }

    async fn list_version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        let versions = self.cache.versions(package);
        if versions.is_empty() {
            return Err(Error::not_found(format!(
                "package {package} in the offline cache {} (install it once online)",
                self.cache.dir().display()
            )));
        }
        Ok(versions
            .into_iter()
            .map(|m| VersionState::new(m.id.version, None))
            .collect())
    }

    async fn update_metadata(
        &self,
        id: &PackageId,
        _update: MetadataUpdate,
    ) -> Result<PackageMetadata> {
        Err(needs_network(&format!("update the metadata of {id}")))
    }

    async fn yank(&self, id: &PackageId, _reason: &str) -> Result<()> {
        Err(needs_network(&format!("yank {id}")))
    }

    async fn unyank(&self, id: &PackageId) -> Result<()> {
        Err(needs_network(&format!("unyank {id}")))
    }

    async fn is_yanked(&self, id: &PackageId) -> Result<bool> {
        self.get(id).await.map(|_| false)
    }

    async fn list_by_author(
        &self,
        author: &str,
        _limit: usize,
        _offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        Err(needs_network(&format!("list the versions by {author}")))
    }

    async fn list(&self, _limit: usize, _offset: usize) -> Result<Vec<PackageRecord>> {
        Err(needs_network("list every version"))
    }

    async fn get_stats(&self, id: &PackageId) -> Result<PackageStats> {
        Err(needs_network(&format!("get the statistics of {id}")))
    }

    async fn record_download(&self, id: &PackageId) -> Result<()> {
        Err(needs_network(&format!("count a download of {id}")))
    }

    async fn downloads_since(&self, _after: u64, _limit: usize) -> Result<Vec<DownloadCount>> {
        Err(needs_network("list the download totals"))
    }

    async fn events_since(&self, _after: u64, _limit: usize) -> Result<Vec<RegistryEvent>> {
        Err(needs_network("read the change feed"))
    }
}

/// The search engine of an offline client: there is no index offline, and every call says so.
pub struct OfflineSearch;

#[async_trait]
impl SearchEngine for OfflineSearch {
    async fn index(&self, record: &PackageRecord) -> Result<()> {
        Err(needs_network(&format!("index {}", record.metadata.id)))
    }

    async fn remove(&self, id: &PackageId) -> Result<()> {
        Err(needs_network(&format!("remove {id} from the index")))
    }

    async fn search(&self, _query: &SearchQuery) -> Result<Vec<SearchResult>> {
        Err(needs_network("search"))
    }

    async fn suggest(&self, _prefix: &str, _limit: usize) -> Result<Vec<PackageRef>> {
        Err(needs_network("suggest names"))
    }

    async fn facets(&self, _query: &SearchQuery) -> Result<Facets> {
        Err(needs_network("count facets"))
    }

    async fn similar(&self, id: &PackageId, _limit: usize) -> Result<Vec<SearchResult>> {
        Err(needs_network(&format!("find packages similar to {id}")))
    }

    async fn rebuild(
        &self,
        _records: Box<dyn Iterator<Item = PackageRecord> + Send>,
    ) -> Result<u64> {
        Err(needs_network("rebuild the index"))
    }

    async fn optimize(&self) -> Result<()> {
        Err(needs_network("optimize the index"))
    }

    async fn stats(&self) -> Result<IndexStats> {
        Err(needs_network("read the index statistics"))
    }
}

impl MarketplaceBuilder {
    /// A client of what earlier clients of a registry left behind, without the network:
    /// versions and metadata from `metadata` (filled by [`CachedRegistry`]), archives from
    /// `archives` (the store a [`crate::CachedStore`] filled), verified with `crypto` (the
    /// user's trust store) as online. Installs (from a lockfile or by resolving over the
    /// cached versions), verify and reads of cached metadata work; nothing is counted or
    /// changed; search, statistics and every write say they need the network.
    pub fn offline(
        metadata: MetadataCache,
        archives: Arc<dyn PackageStore>,
        crypto: Arc<dyn CryptoVerifier>,
    ) -> Self {
        MarketplaceBuilder::new()
            .registry(Arc::new(OfflineRegistry::new(metadata)))
            .store(archives)
            .search(Arc::new(OfflineSearch))
            .crypto(crypto)
            .read_only()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketplace_core::ErrorKind;

    fn metadata(id: &str) -> PackageMetadata {
        let id: PackageId = id.parse().expect("id");
        PackageMetadata::new(id, "cached", ContentHash::sha256(b"archive"), 7)
    }

    #[tokio::test]
    async fn the_offline_registry_answers_what_the_cache_holds_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = MetadataCache::new(dir.path().join("metadata"));
        for id in [
            "Acme/Web_Kit@1.2.0",
            "acme/web-kit@1.0.0+build.7",
            "other@0.1.0",
        ] {
            cache.put(&metadata(id)).expect("put");
        }
        let offline = OfflineRegistry::new(cache.clone());
        // Canonical lookups, build metadata ignored, as a registry's.
        let got = offline
            .get(&"acme/web-kit@1.0.0".parse().unwrap())
            .await
            .expect("cached");
        assert_eq!(got.id.to_string(), "acme/web-kit@1.0.0+build.7");
        let versions: Vec<String> = offline
            .list_version_states(&"acme/web-kit".parse().unwrap())
            .await
            .expect("versions")
            .iter()
            .map(|s| s.version.to_string())
            .collect();
        assert_eq!(versions, ["1.0.0+build.7", "1.2.0"]);
        // What was never read is NotFound, naming the cache; a write needs the network.
        let missing = offline
            .get(&"acme/web-kit@2.0.0".parse().unwrap())
            .await
            .expect_err("not cached");
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert!(missing.to_string().contains("offline cache"), "{missing}");
        let write = offline
            .yank(&"other@0.1.0".parse().unwrap(), "no")
            .await
            .expect_err("offline");
        assert!(write.to_string().contains("needs the registry"), "{write}");
        // A file holding another version's metadata is not that version's.
        let wrong = dir.path().join("metadata/other/0.2.0.json");
        std::fs::copy(dir.path().join("metadata/other/0.1.0.json"), &wrong).expect("copy");
        assert!(cache.get(&"other@0.2.0".parse().unwrap()).is_none());
        assert_eq!(cache.versions(&"other".parse().unwrap()).len(), 1);
    }
}
