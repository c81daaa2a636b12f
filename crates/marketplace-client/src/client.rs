//! [`MarketplaceClient`]: the composed backends every flow runs over. The flows themselves live
//! one per module: `publish`, `install`, `verify`, `query`, `maintain`, `trust`; the path every
//! backend call takes is in `instrument`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use marketplace_core::{
    AccountStore, CryptoVerifier, Error, MetricsCollector, PackageId, PackageStore, Registry,
    ResolutionPolicy, Result, SearchEngine, Upstream,
};
use marketplace_package::ArchiveLimits;

use crate::plugin::MarketplacePlugin;
use crate::retry::RetryPolicy;

/// The marketplace: publish, install, download, search and manage packages over composed
/// backends. Build one with [`crate::MarketplaceBuilder`]. Cheap to share behind an `Arc`;
/// every method takes `&self`; cloning shares the backends.
#[derive(Clone)]
pub struct MarketplaceClient {
    pub(crate) registry: Arc<dyn Registry>,
    pub(crate) store: Arc<dyn PackageStore>,
    pub(crate) search: Arc<dyn SearchEngine>,
    pub(crate) crypto: Arc<dyn CryptoVerifier>,
    pub(crate) accounts: Option<Arc<dyn AccountStore>>,
    pub(crate) upstream: Option<Arc<dyn Upstream>>,
    pub(crate) metrics: Option<Arc<dyn MetricsCollector>>,
    pub(crate) plugins: Vec<Arc<dyn MarketplacePlugin>>,
    pub(crate) limits: ArchiveLimits,
    pub(crate) retry: RetryPolicy,
    pub(crate) index_repair: Option<String>,
    pub(crate) read_only: bool,
    pub(crate) index_read_only: bool,
    pub(crate) resolution: ResolutionPolicy,
}

impl fmt::Debug for MarketplaceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MarketplaceClient")
            .field(
                "plugins",
                &self.plugins.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .field("limits", &self.limits)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl MarketplaceClient {
    /// This client (sharing its backends) resolving installs under `policy`.
    pub fn with_resolution(mut self, policy: ResolutionPolicy) -> Self {
        self.resolution = policy;
        self
    }

    /// The policy installs resolve under ([`crate::MarketplaceBuilder::resolution`]).
    pub fn resolution(&self) -> ResolutionPolicy {
        self.resolution
    }

    /// The registry.
    pub fn registry(&self) -> &dyn Registry {
        self.registry.as_ref()
    }

    /// The package store.
    pub fn store(&self) -> &dyn PackageStore {
        self.store.as_ref()
    }

    /// The search engine.
    pub fn search_engine(&self) -> &dyn SearchEngine {
        self.search.as_ref()
    }

    /// The crypto verifier and trust store.
    pub fn crypto(&self) -> &dyn CryptoVerifier {
        self.crypto.as_ref()
    }

    /// The account store, if one was configured.
    pub fn account_store(&self) -> Option<&dyn AccountStore> {
        self.accounts.as_deref()
    }

    /// The metrics collector, if one was configured.
    pub fn metrics(&self) -> Option<&dyn MetricsCollector> {
        self.metrics.as_deref()
    }

    /// The archive limits applied on publish and install.
    pub fn limits(&self) -> &ArchiveLimits {
        &self.limits
    }

    /// Why the search index must be rebuilt, when [`crate::MarketplaceBuilder::local`] found it
    /// damaged (and set it aside) or missing: call [`MarketplaceClient::rebuild_index`], as
    /// `mkt` does on opening a home (saying so).
    pub fn index_repair(&self) -> Option<&str> {
        self.index_repair.as_deref()
    }

    /// Whether the home was opened read-only ([`crate::MarketplaceBuilder::local_read_only`]):
    /// reads work, writes are refused, downloads are not counted, and the search index does
    /// not follow the registry.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Whether the search index is searched but not written by this client
    /// ([`crate::MarketplaceBuilder::local_reader`], or a read-only home): it does not follow
    /// the registry, and a repair rebuilds a copy in memory.
    pub fn is_index_read_only(&self) -> bool {
        self.read_only || self.index_read_only
    }
}

/// Runs blocking work (archive decompression, file writes) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::backend("tokio", what, e, false))?
}

/// Where an install puts a package: `dest/name-version`, or `dest/namespace/name-version`.
pub fn install_dir(dest: &Path, id: &PackageId) -> PathBuf {
    let dir = format!("{}-{}", id.name, id.version);
    match &id.namespace {
        Some(ns) => dest.join(ns.as_str()).join(dir),
        None => dest.join(dir),
    }
}
