//! [`MarketplaceBuilder`]: composes backends into a [`MarketplaceClient`].

use std::fmt;
use std::sync::Arc;

use marketplace_core::{
    AccountStore, CryptoVerifier, Error, MetricsCollector, PackageStore, Registry,
    ResolutionPolicy, Result, SearchEngine, Upstream,
};

use crate::client::MarketplaceClient;
use crate::plugin::MarketplacePlugin;
use crate::retry::RetryPolicy;
use marketplace_package::ArchiveLimits;

/// Composes a registry, a package store, a search engine, a crypto verifier, an optional
/// metrics collector and plugins into a [`MarketplaceClient`].
///
/// Any implementation of the traits works (ours, a third party's, or a test double). With the
/// default features, [`MarketplaceBuilder::local`] and [`MarketplaceBuilder::in_memory`] give the
/// embedded default: SQLite + local files + tantivy + ring, with OpenTelemetry metrics.
///
/// ```no_run
/// use std::sync::Arc;
/// use marketplace_client::{LicenseAllowList, MarketplaceBuilder};
///
/// # async fn demo() -> marketplace_core::Result<()> {
/// let client = MarketplaceBuilder::local("./marketplace-data")?
///     .plugin(Arc::new(LicenseAllowList::new(["MIT", "Apache-2.0"])?))
///     .build()?;
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
#[derive(Default)]
pub struct MarketplaceBuilder {
    registry: Option<Arc<dyn Registry>>,
    store: Option<Arc<dyn PackageStore>>,
    search: Option<Arc<dyn SearchEngine>>,
    crypto: Option<Arc<dyn CryptoVerifier>>,
    accounts: Option<Arc<dyn AccountStore>>,
    upstream: Option<Arc<dyn Upstream>>,
    metrics: Option<Arc<dyn MetricsCollector>>,
    plugins: Vec<Arc<dyn MarketplacePlugin>>,
    limits: ArchiveLimits,
    retry: RetryPolicy,
    /// Why the search index must be rebuilt from the registry (it was damaged or missing).
    index_repair: Option<String>,
    read_only: bool,
    /// The search index is another process's to write: it is searched, never followed.
    index_read_only: bool,
    resolution: ResolutionPolicy,
}

impl fmt::Debug for MarketplaceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MarketplaceBuilder")
            .field("registry", &self.registry.is_some())
            .field("store", &self.store.is_some())
            .field("search", &self.search.is_some())
            .field("crypto", &self.crypto.is_some())
            .field("accounts", &self.accounts.is_some())
            .field("upstream", &self.upstream.is_some())
            .field("metrics", &self.metrics.is_some())
            .field("plugins", &self.plugins.len())
            .field("limits", &self.limits)
            .field("retry", &self.retry)
            .field("resolution", &self.resolution)
            .finish()
    }
}

impl MarketplaceBuilder {
    /// An empty builder: set the four backends, then [`MarketplaceBuilder::build`].
    pub fn new() -> Self {
        MarketplaceBuilder::default()
    }

    /// The registry (metadata, versions, yanks, downloads).
    pub fn registry(mut self, registry: Arc<dyn Registry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The package store (archive bytes by content hash).
    pub fn store(mut self, store: Arc<dyn PackageStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The search engine.
    pub fn search(mut self, search: Arc<dyn SearchEngine>) -> Self {
        self.search = Some(search);
        self
    }

    /// The crypto verifier and trust store.
    pub fn crypto(mut self, crypto: Arc<dyn CryptoVerifier>) -> Self {
        self.crypto = Some(crypto);
        self
    }

    /// The account store (users, tokens, owners, key bindings): optional; the account flows
    /// ([`MarketplaceClient::publish_as`] and the rest) need one. The embedded default uses
    /// its registry's database.
    pub fn accounts(mut self, accounts: Arc<dyn AccountStore>) -> Self {
        self.accounts = Some(accounts);
        self
    }

    /// Where writes go when the marketplace is served by someone else (a server's API): a
    /// publish is checked and signed here, then handed to `upstream`, which stores, registers
    /// and indexes it; yank and unyank go there too. Without one (the default), writes are
    /// made in this composition's own backends.
    pub fn upstream(mut self, upstream: Arc<dyn Upstream>) -> Self {
        self.upstream = Some(upstream);
        self
    }

    /// The metrics collector. Without one, the client records nothing — except with the
    /// `otel` feature, where [`MarketplaceBuilder::build`] uses a fresh [`crate::OtelMetrics`].
    pub fn metrics(mut self, metrics: Arc<dyn MetricsCollector>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Adds a plugin; hooks run in the order plugins were added.
    pub fn plugin(mut self, plugin: Arc<dyn MarketplacePlugin>) -> Self {
        self.plugins.push(plugin);
        self
    }

    /// The archive limits for publish and install (default [`ArchiveLimits::default`]).
    pub fn limits(mut self, limits: ArchiveLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Which versions of one package an install may use together (default
    /// [`ResolutionPolicy::OneVersion`]; [`ResolutionPolicy::SemverCompatible`] is cargo's rule).
    pub fn resolution(mut self, policy: ResolutionPolicy) -> Self {
        self.resolution = policy;
        self
    }

    /// How transient backend errors are retried (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// A client that changes nothing in its backends (as on a read-only home): installs and
    /// reads work, downloads are not counted, and publish, yank and the maintenance flows
    /// are refused.
    #[cfg(feature = "remote")]
    pub(crate) fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Wraps the registry set so far, e.g. in a caching or instrumenting layer. Does nothing
    /// when no registry is set.
    pub fn map_registry(mut self, f: impl FnOnce(Arc<dyn Registry>) -> Arc<dyn Registry>) -> Self {
        self.registry = self.registry.map(f);
        self
    }

    /// Wraps the package store set so far (see [`MarketplaceBuilder::map_registry`]).
    pub fn map_store(
        mut self,
        f: impl FnOnce(Arc<dyn PackageStore>) -> Arc<dyn PackageStore>,
    ) -> Self {
        self.store = self.store.map(f);
        self
    }

    /// Wraps the search engine set so far (see [`MarketplaceBuilder::map_registry`]).
    pub fn map_search(
        mut self,
        f: impl FnOnce(Arc<dyn SearchEngine>) -> Arc<dyn SearchEngine>,
    ) -> Self {
        self.search = self.search.map(f);
        self
    }

    /// Wraps the crypto verifier set so far (see [`MarketplaceBuilder::map_registry`]).
    pub fn map_crypto(
        mut self,
        f: impl FnOnce(Arc<dyn CryptoVerifier>) -> Arc<dyn CryptoVerifier>,
    ) -> Self {
        self.crypto = self.crypto.map(f);
        self
    }

    /// The client. `Invalid` naming the first backend that was not set.
    pub fn build(self) -> Result<MarketplaceClient> {
        fn required<T: ?Sized>(slot: Option<Arc<T>>, what: &str) -> Result<Arc<T>> {
            slot.ok_or_else(|| {
                Error::invalid(
                    "MarketplaceBuilder",
                    what,
                    format!("a {what} is required: call MarketplaceBuilder::{what}(…)"),
                )
            })
        }
        #[cfg(feature = "otel")]
        let metrics = Some(
            self.metrics
                .unwrap_or_else(|| Arc::new(crate::otel::OtelMetrics::new())),
        );
        #[cfg(not(feature = "otel"))]
        let metrics = self.metrics;
        Ok(MarketplaceClient {
            registry: required(self.registry, "registry")?,
            store: required(self.store, "store")?,
            search: required(self.search, "search")?,
            crypto: required(self.crypto, "crypto")?,
            accounts: self.accounts,
            upstream: self.upstream,
            metrics,
            plugins: self.plugins,
            limits: self.limits,
            retry: self.retry,
            index_repair: self.index_repair,
            read_only: self.read_only,
            index_read_only: self.index_read_only,
            resolution: self.resolution,
        })
    }
}

#[cfg(all(
    feature = "sqlite",
    feature = "localstore",
    feature = "tantivy",
    feature = "ring"
))]
impl MarketplaceBuilder {
    /// The embedded default, persisted under `dir` (created if missing):
    /// `dir/registry.sqlite3` (SQLite, WAL), `dir/store/` (content-addressed files, fsynced),
    /// `dir/index/` (tantivy) and `dir/trust.json` (the ring verifier's trust store).
    ///
    /// A home in a directory this process cannot write (a read-only disk, or another user's
    /// home) is opened with [`MarketplaceBuilder::local_read_only`] instead.
    ///
    /// Errors: `Backend` naming the path that cannot be created or opened.
    pub fn local(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::backend("filesystem", format!("create {}", dir.display()), e, false)
        })?;
        if !writable(dir) && dir.join("registry.sqlite3").is_file() {
            return Self::local_read_only(dir);
        }
        refuse_emptied_registry(dir)?;
        let registry_file = dir.join("registry.sqlite3");
        let existing_home = Self::is_local_home(dir);
        let registry = marketplace_registry_sqlite::SqliteRegistry::open(&registry_file)?;
        let (search, index_repair) = open_or_set_aside_index(&dir.join("index"), existing_home)?;
        Self::home(dir, registry, search, index_repair)
    }

    /// The home's composition around an opened registry and index: its store and trust store.
    fn home(
        dir: &std::path::Path,
        registry: marketplace_registry_sqlite::SqliteRegistry,
        search: marketplace_search_tantivy::TantivySearchEngine,
        index_repair: Option<String>,
    ) -> Result<Self> {
        let registry = Arc::new(registry);
        let mut builder = MarketplaceBuilder::new()
            .registry(registry.clone())
            .accounts(registry)
            .store(Arc::new(marketplace_store_local::LocalPackageStore::open(
                dir.join("store"),
            )?))
            .search(Arc::new(search))
            .crypto(Arc::new(marketplace_crypto_ring::RingCryptoVerifier::open(
                dir.join("trust.json"),
            )?));
        builder.index_repair = index_repair;
        Ok(builder)
    }

    /// The embedded default under `dir`, for reading only: every read flow works (search,
    /// info, versions, stats, verify, download, install into a writable destination — with
    /// downloads not counted), every write is refused by its backend, and nothing under `dir`
    /// is created or changed. The search index cannot follow the registry here: an index that
    /// lags stays as it is ([`MarketplaceClient::index_lag`] says by how much), and one that
    /// cannot be opened is replaced by a copy in memory, rebuilt from the registry when
    /// [`MarketplaceClient::index_repair`] asks for it.
    ///
    /// Errors: `Backend` naming the path when `dir` holds no registry, or it cannot be read.
    pub fn local_read_only(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let registry = marketplace_registry_sqlite::SqliteRegistry::open_read_only(
            dir.join("registry.sqlite3"),
        )?;
        let (search, index_repair) = index_for_reading(&dir.join("index"))?;
        let mut builder = Self::home(dir, registry, search, index_repair)?;
        builder.read_only = true;
        Ok(builder)
    }

    /// Whether `dir` holds an embedded marketplace: its registry file exists and is not empty.
    pub fn is_local_home(dir: impl AsRef<std::path::Path>) -> bool {
        std::fs::metadata(dir.as_ref().join("registry.sqlite3")).is_ok_and(|m| m.len() > 0)
    }

    /// The embedded default under an existing `dir`, for a process that reads it while another
    /// may be writing to it (a `mkt search` beside a `mkt publish`): the registry is opened as
    /// usual (SQLite serializes writers, so downloads are still counted), and the search index
    /// is opened without its writer lock, so opening never waits for or fails on a writer.
    /// Searches see the index's last commit; the index does not follow the registry here (the
    /// next writer catches it up; [`MarketplaceClient::index_lag`](crate::MarketplaceClient::index_lag)
    /// says by how much it is behind), and a missing or damaged index is replaced by a copy in
    /// memory rebuilt from the registry. Nothing is created under `dir`.
    ///
    /// A `dir` this process cannot write is opened with [`MarketplaceBuilder::local_read_only`].
    ///
    /// Errors: `NotFound` when `dir` holds no marketplace; `Backend` naming what cannot be
    /// opened.
    pub fn local_reader(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let registry_file = dir.join("registry.sqlite3");
        if !Self::is_local_home(dir) {
            return Err(Error::NotFound {
                what: format!("a marketplace in {}", dir.display()),
            });
        }
        if !writable(dir) {
            return Self::local_read_only(dir);
        }
        let registry = marketplace_registry_sqlite::SqliteRegistry::open(&registry_file)?;
        let (search, index_repair) = index_for_reading(&dir.join("index"))?;
        let mut builder = Self::home(dir, registry, search, index_repair)?;
        builder.index_read_only = true;
        Ok(builder)
    }

    /// The embedded default, entirely in memory: for tests and short-lived tools.
    pub fn in_memory() -> Result<Self> {
        let registry = Arc::new(marketplace_registry_sqlite::SqliteRegistry::open_in_memory()?);
        Ok(MarketplaceBuilder::new()
            .registry(registry.clone())
            .accounts(registry)
            .store(Arc::new(
                marketplace_store_local::LocalPackageStore::in_memory(),
            ))
            .search(Arc::new(
                marketplace_search_tantivy::TantivySearchEngine::in_memory()?,
            ))
            .crypto(Arc::new(
                marketplace_crypto_ring::RingCryptoVerifier::in_memory(),
            )))
    }
}

/// The index in `index_dir` opened for reading only, or, when it cannot be, a copy in memory
/// and why (the caller rebuilds it from the registry).
#[cfg(all(
    feature = "sqlite",
    feature = "localstore",
    feature = "tantivy",
    feature = "ring"
))]
fn index_for_reading(
    index_dir: &std::path::Path,
) -> Result<(
    marketplace_search_tantivy::TantivySearchEngine,
    Option<String>,
)> {
    match marketplace_search_tantivy::TantivySearchEngine::open_read_only(index_dir) {
        Ok(search) => Ok((search, None)),
        Err(e) => Ok((
            marketplace_search_tantivy::TantivySearchEngine::in_memory()?,
            Some(format!(
                "the search index {} cannot be opened read-only ({e}); searching a copy in memory, rebuilt from the registry",
                index_dir.display()
            )),
        )),
    }
}

#[cfg(feature = "remote")]
impl MarketplaceBuilder {
    /// A marketplace served by `marketplace-server` at `url`, read over its API
    /// ([`marketplace_remote`]) and verified against the user's own trust store, the JSON file
    /// `trust_store` (created with its parent directories if missing): every archive's hash,
    /// its author's signature and the key's trust and revocation are checked here, so a server
    /// cannot substitute a package. The reads work (install, resolve, info, versions, search,
    /// verify, download); publish (checked and signed here, with the options' token), yank and
    /// unyank go through the server's API ([`MarketplaceBuilder::upstream`]).
    ///
    /// Errors: `Invalid` for a URL that is not `http`/`https` (nothing is sent until a flow
    /// runs); `Backend` naming the trust store when it cannot be read.
    pub fn remote(
        url: &str,
        options: marketplace_remote::RemoteOptions,
        trust_store: impl AsRef<std::path::Path>,
    ) -> Result<Self> {
        let remote = marketplace_remote::Remote::connect(url, options)?;
        Ok(MarketplaceBuilder::new()
            .registry(Arc::new(remote.registry()))
            .store(Arc::new(remote.store()))
            .search(Arc::new(remote.search()))
            .upstream(Arc::new(remote))
            .crypto(Arc::new(marketplace_crypto_ring::RingCryptoVerifier::open(
                trust_store,
            )?)))
    }
}

/// Whether this process can create files in `dir` (tried with a probe file, removed at once:
/// permissions alone do not tell, e.g. for root or a read-only mount).
#[cfg(all(
    feature = "sqlite",
    feature = "localstore",
    feature = "tantivy",
    feature = "ring"
))]
fn writable(dir: &std::path::Path) -> bool {
    let probe = dir.join(format!(".mkt-write-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        // A leftover probe of a killed process with this pid: the directory took it.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

/// A registry file of zero bytes beside a store that holds archives was truncated or replaced:
/// SQLite would take it for a new, empty database and the marketplace would forget every
/// package it holds. Refused, saying so. (A zero-byte file with an empty store is what a first
/// use killed before its first commit leaves, and is opened as new.)
#[cfg(all(
    feature = "sqlite",
    feature = "localstore",
    feature = "tantivy",
    feature = "ring"
))]
fn refuse_emptied_registry(dir: &std::path::Path) -> Result<()> {
    let registry = dir.join("registry.sqlite3");
    let empty = std::fs::metadata(&registry).is_ok_and(|m| m.len() == 0);
    if !empty {
        return Ok(());
    }
    let objects = dir.join("store").join("sha256");
    let holds_archives = std::fs::read_dir(&objects).is_ok_and(|mut d| d.next().is_some());
    if holds_archives {
        return Err(Error::backend(
            "sqlite",
            format!("open the registry database {}", registry.display()),
            format!(
                "the registry file is empty (0 bytes) but the store {} holds archives: it was truncated or replaced; restore it from a backup (an empty registry is never started over existing packages)",
                dir.join("store").display()
            ),
            false,
        ));
    }
    Ok(())
}

/// Opens the on-disk index. The index is derived data: one that cannot be opened (damaged) is
/// moved aside and a fresh one opened, and one missing from an existing home is opened fresh;
/// either way the reason is returned, for the client to rebuild it from the registry. A busy
/// index (another process holds its writer) is not damaged and its error is returned as is.
#[cfg(all(
    feature = "sqlite",
    feature = "localstore",
    feature = "tantivy",
    feature = "ring"
))]
fn open_or_set_aside_index(
    path: &std::path::Path,
    existing_home: bool,
) -> Result<(
    marketplace_search_tantivy::TantivySearchEngine,
    Option<String>,
)> {
    use marketplace_search_tantivy::TantivySearchEngine;
    let missing = !path.exists();
    match TantivySearchEngine::open(path) {
        Ok(engine) => {
            let repair = (missing && existing_home).then(|| {
                format!(
                    "the search index {} was missing; it is rebuilt from the registry",
                    path.display()
                )
            });
            Ok((engine, repair))
        }
        Err(e) if e.is_transient() => Err(e),
        Err(e) => {
            let stamp = marketplace_core::time::OffsetDateTime::now_utc().unix_timestamp();
            let aside = path.with_file_name(format!("index.damaged-{stamp}"));
            std::fs::rename(path, &aside).map_err(|io| {
                Error::backend(
                    "filesystem",
                    format!("set the damaged index {} aside", path.display()),
                    io,
                    false,
                )
            })?;
            let engine = TantivySearchEngine::open(path)?;
            Ok((
                engine,
                Some(format!(
                    "the search index could not be opened ({e}); it was moved to {} and is rebuilt from the registry",
                    aside.display()
                )),
            ))
        }
    }
}
