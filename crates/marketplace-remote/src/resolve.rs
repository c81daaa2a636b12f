//! Resolution over a server without a round trip per graph level: the server's own graph is
//! taken as a hint of what the client's resolver will read, fetched up front, and the
//! resolver then runs here over those reads as it would over live ones.
//!
//! The hint decides nothing. The resolver still chooses every version itself from the version
//! lists (read live, all at once) and the metadata; the hint only supplies metadata the
//! resolver would otherwise ask for level by level, each entry keyed by its own id (so it is
//! the metadata of that version or of none), and verified later like any other read (the
//! author's signature covers the dependencies). What the hint lacks or gets wrong is read
//! live, as without a hint: a lying server costs time, never correctness.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use futures_util::{StreamExt, stream};
use marketplace_core::{
    DependencyGraph, PackageId, PackageMetadata, PackageRef, Registry, ResolutionSource,
    ResolveOptions, Result, VersionState, resolve_graph,
};
use marketplace_protocol::v1;

use crate::registry::RemoteRegistry;

/// How many version lists are read at once while prefetching.
const PREFETCH_CONCURRENCY: usize = 16;

/// Resolves `root`'s graph over `registry`, prefetching what the server's graph names.
pub(crate) async fn resolve(
    registry: &RemoteRegistry,
    root: &PackageId,
    options: ResolveOptions,
) -> Result<DependencyGraph> {
    let source = Prefetched::new(registry, root).await;
    resolve_graph(&source, root, options).await
}

/// A resolution source that answers from what was prefetched and reads the rest live.
struct Prefetched<'a> {
    registry: &'a RemoteRegistry,
    /// Metadata by canonical id, taken when first asked for (each is asked for once).
    metadata: Mutex<HashMap<String, PackageMetadata>>,
    /// Version lists by canonical package.
    versions: Mutex<HashMap<String, Vec<VersionState>>>,
}

impl<'a> Prefetched<'a> {
    async fn new(registry: &'a RemoteRegistry, root: &PackageId) -> Prefetched<'a> {
        let hint = server_graph(registry, root).await.unwrap_or_default();
        let mut packages: Vec<PackageRef> = hint.iter().map(|m| m.id.package()).collect();
        packages.sort_by_key(PackageRef::canonical);
        packages.dedup_by_key(|p| p.canonical());
        let versions = stream::iter(packages)
            .map(|package| async move {
                let states = registry.list_version_states(&package).await;
                (package.canonical(), states)
            })
            .buffer_unordered(PREFETCH_CONCURRENCY)
            // A failed prefetch is read again when the resolver asks (and fails there).
            .filter_map(|(key, states)| async move { states.ok().map(|s| (key, s)) })
            .collect::<HashMap<_, _>>()
            .await;
        Prefetched {
            registry,
            metadata: Mutex::new(hint.into_iter().map(|m| (m.id.canonical(), m)).collect()),
            versions: Mutex::new(versions),
        }
    }
}

/// The metadata of the graph the server resolves for `root` (pinned exactly); `None` when
/// the server cannot say (the resolution then reads everything live).
async fn server_graph(registry: &RemoteRegistry, root: &PackageId) -> Option<Vec<PackageMetadata>> {
    let mut version = root.version.clone();
    version.build = Default::default();
    let query = v1::ResolveParams {
        package: Some(root.package().to_string()),
        req: Some(format!("={version}")),
    };
    let graph: v1::ResolvedGraph = registry
        .connection()
        .get_json(&format!("resolve {root}"), "/resolve", &query)
        .await
        .ok()?;
    graph
        .nodes
        .into_iter()
        .map(|node| PackageMetadata::try_from(node.metadata).ok())
        .collect()
}

fn take<T>(cache: &Mutex<HashMap<String, T>>, key: &str) -> Option<T> {
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(key)
}

#[async_trait]
impl ResolutionSource for Prefetched<'_> {
    async fn version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        match take(&self.versions, &package.canonical()) {
            Some(states) => Ok(states),
            None => self.registry.list_version_states(package).await,
        }
    }

    async fn metadata(&self, id: &PackageId) -> Result<PackageMetadata> {
        match take(&self.metadata, &id.canonical()) {
            Some(metadata) => Ok(metadata),
            None => self.registry.get(id).await,
        }
    }
}
