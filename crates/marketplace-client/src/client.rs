//! [`MarketplaceClient`]: the flows of the marketplace over composed backends.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt as _;
use marketplace_core::semver::VersionReq;
use marketplace_core::time::OffsetDateTime;
use marketplace_core::{
    ContentHash, CryptoVerifier, DependencyGraph, Error, KeyId, MetricsCollector, PackageId,
    PackageMetadata, PackageRecord, PackageRef, PackageStats, PackageStore, PrivateKey, Registry,
    Result, SearchEngine, SearchQuery, SearchResult, TrustLevel, TrustResult, VerificationResult,
    VersionState, YankInfo,
};
use tracing::Instrument as _;

use crate::archive::{ArchiveInfo, ArchiveLimits, extract, inspect};
use crate::lockfile::{LockedPackage, Lockfile};
use crate::plugin::MarketplacePlugin;
use crate::retry::RetryPolicy;

/// Archives stored at once by [`MarketplaceClient::publish_batch`].
const STORE_CONCURRENCY: usize = 8;

/// Counter of finished flows, labelled `operation` and `outcome` (`ok` or the error kind).
pub const OPERATIONS_TOTAL: &str = "marketplace_operations_total";
/// Histogram of flow latency in seconds, labelled `operation` and `outcome`.
pub const OPERATION_SECONDS: &str = "marketplace_operation_duration_seconds";
/// Histogram of backend call latency in seconds, labelled `backend`, `operation`, `outcome`.
pub const BACKEND_SECONDS: &str = "marketplace_backend_duration_seconds";
/// Counter of refused packages, labelled `operation` and `reason` (`checksum`, `signature`,
/// `trust`, `archive`).
pub const VERIFICATION_FAILURES_TOTAL: &str = "marketplace_verification_failures_total";
/// Counter of retried backend calls, labelled `backend` and `operation`.
pub const RETRIES_TOTAL: &str = "marketplace_retries_total";
/// Counter of archive bytes, labelled `direction` (`published`, `downloaded`).
pub const BYTES_TOTAL: &str = "marketplace_bytes_total";

/// A package archive validated and turned into metadata, ready to be signed and published.
///
/// `metadata.signature` is empty; set it from a detached signature over
/// [`marketplace_core::signing_payload`] of `metadata`, then call
/// [`MarketplaceClient::publish_prepared`]. [`MarketplaceClient::publish`] does both with a
/// private key.
#[derive(Debug, Clone)]
pub struct PreparedPackage {
    /// The archive.
    pub archive: Bytes,
    /// Its metadata, from the manifest, with checksum, size and publication time.
    pub metadata: PackageMetadata,
    /// What the archive holds.
    pub info: ArchiveInfo,
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The id as registered.
    pub id: PackageId,
    /// The archive's content hash.
    pub checksum: ContentHash,
    /// Archive size in bytes.
    pub size: u64,
    /// Whether the search index took the package. When `false` the package is published and
    /// installable, and [`MarketplaceClient::rebuild_index`] makes it searchable.
    pub indexed: bool,
}

/// A downloaded, verified package.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// Its metadata.
    pub metadata: PackageMetadata,
    /// The archive, whose hash and signature were checked.
    pub archive: Bytes,
}

/// One package an install put into its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    /// The exact version.
    pub id: PackageId,
    /// The archive's content hash.
    pub checksum: ContentHash,
    /// Where it was extracted.
    pub path: PathBuf,
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallReport {
    /// The version of the requested package.
    pub root: PackageId,
    /// Packages extracted by this install, dependencies first.
    pub installed: Vec<InstalledPackage>,
    /// Packages of the graph that were already in place (same version and hash).
    pub already_present: Vec<PackageId>,
    /// Whether the versions came from the destination's lockfile instead of resolution.
    pub from_lockfile: bool,
    /// The lockfile written.
    pub lockfile: PathBuf,
}

/// The outcome of [`MarketplaceClient::verify`]: every check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The package.
    pub id: PackageId,
    /// Its archive hash, recomputed from the stored bytes.
    pub checksum: ContentHash,
    /// The key that signed it.
    pub key_id: KeyId,
    /// How far that key is trusted.
    pub trust: TrustLevel,
    /// Files in the archive.
    pub files: usize,
}

/// Everything known about one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInfo {
    /// Its metadata.
    pub metadata: PackageMetadata,
    /// Whether it is yanked.
    pub yanked: bool,
    /// Its download statistics.
    pub stats: PackageStats,
}

/// What [`MarketplaceClient::gc`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Objects in the store.
    pub scanned: u64,
    /// Objects no registered version refers to.
    pub orphaned: u64,
    /// Orphans deleted (those older than the grace period).
    pub deleted: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
}

/// The marketplace: publish, install, download, search and manage packages over composed
/// backends. Build one with [`crate::MarketplaceBuilder`]. Cheap to share behind an `Arc`;
/// every method takes `&self`.
pub struct MarketplaceClient {
    pub(crate) registry: Arc<dyn Registry>,
    pub(crate) store: Arc<dyn PackageStore>,
    pub(crate) search: Arc<dyn SearchEngine>,
    pub(crate) crypto: Arc<dyn CryptoVerifier>,
    pub(crate) metrics: Option<Arc<dyn MetricsCollector>>,
    pub(crate) plugins: Vec<Arc<dyn MarketplacePlugin>>,
    pub(crate) limits: ArchiveLimits,
    pub(crate) retry: RetryPolicy,
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

fn outcome<T>(result: &Result<T>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.kind().as_str(),
    }
}

/// Runs blocking work (archive decompression, file writes) off the async workers.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::backend("tokio", what, e, false))?
}

/// Where an install puts a package: `dest/name-version`, or `dest/namespace/name-version`.
fn install_dir(dest: &Path, id: &PackageId) -> PathBuf {
    let dir = format!("{}-{}", id.name, id.version);
    match &id.namespace {
        Some(ns) => dest.join(ns.as_str()).join(dir),
        None => dest.join(dir),
    }
}

impl MarketplaceClient {
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

    /// The metrics collector, if one was configured.
    pub fn metrics(&self) -> Option<&dyn MetricsCollector> {
        self.metrics.as_deref()
    }

    /// The archive limits applied on publish and install.
    pub fn limits(&self) -> &ArchiveLimits {
        &self.limits
    }

    // ---- instrumentation -------------------------------------------------------------------

    fn count(&self, name: &str, labels: &[(&str, &str)]) {
        if let Some(m) = &self.metrics {
            m.counter(name, 1, labels);
        }
    }

    fn add_bytes(&self, direction: &str, bytes: usize) {
        if let Some(m) = &self.metrics {
            m.counter(BYTES_TOTAL, bytes as u64, &[("direction", direction)]);
        }
    }

    /// Runs one flow inside a tracing span and records its count, latency and errors.
    async fn flow<T>(
        &self,
        operation: &'static str,
        span: tracing::Span,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let start = Instant::now();
        let result = work.instrument(span.clone()).await;
        let elapsed = start.elapsed();
        let outcome = outcome(&result);
        if let Err(e) = &result {
            span.in_scope(|| tracing::info!(operation, error = %e, "failed"));
        }
        if let Some(m) = &self.metrics {
            let labels = [("operation", operation), ("outcome", outcome)];
            m.counter(OPERATIONS_TOTAL, 1, &labels);
            m.timing(OPERATION_SECONDS, elapsed, &labels);
            if let Err(e) = &result {
                m.error(operation, e.kind());
            }
        }
        result
    }

    /// One backend call: timed, and retried with backoff when `retry` and the error is
    /// transient.
    async fn call<T, F, Fut>(
        &self,
        backend: &'static str,
        operation: &'static str,
        retry: bool,
        call: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let start = Instant::now();
        let policy = if retry {
            self.retry
        } else {
            RetryPolicy::none()
        };
        let result = policy
            .run(call, |e| {
                tracing::warn!(backend, operation, error = %e, "transient error; retrying");
                self.count(
                    RETRIES_TOTAL,
                    &[("backend", backend), ("operation", operation)],
                );
            })
            .await;
        if let Some(m) = &self.metrics {
            m.timing(
                BACKEND_SECONDS,
                start.elapsed(),
                &[
                    ("backend", backend),
                    ("operation", operation),
                    ("outcome", outcome(&result)),
                ],
            );
        }
        result
    }

    fn refused(&self, operation: &str, reason: &str, error: Error) -> Error {
        self.count(
            VERIFICATION_FAILURES_TOTAL,
            &[("operation", operation), ("reason", reason)],
        );
        error
    }

    async fn post_hooks(&self, hook: &'static str, metadata: &PackageMetadata, archive: &Bytes) {
        for plugin in &self.plugins {
            let result = match hook {
                "post_publish" => plugin.post_publish(metadata).await,
                _ => plugin.post_download(metadata, archive).await,
            };
            if let Err(e) = result {
                tracing::warn!(plugin = plugin.name(), hook, package = %metadata.id, error = %e, "plugin hook failed");
                self.count(
                    "marketplace_plugin_errors_total",
                    &[("plugin", plugin.name()), ("hook", hook)],
                );
            }
        }
    }

    async fn pre_download_hooks(&self, metadata: &PackageMetadata) -> Result<()> {
        for plugin in &self.plugins {
            plugin.pre_download(metadata).await?;
        }
        Ok(())
    }

    // ---- verification ----------------------------------------------------------------------

    /// Checks that `metadata` carries a valid signature by a trusted, unrevoked key.
    async fn check_signature(
        &self,
        operation: &str,
        metadata: &PackageMetadata,
    ) -> Result<(KeyId, TrustLevel)> {
        let id = &metadata.id;
        let Some(signature) = &metadata.signature else {
            return Err(self.refused(
                operation,
                "signature",
                Error::signature(
                    format!("package {id}"),
                    "is not signed; packages must be signed by a trusted key",
                ),
            ));
        };
        let verdict = self
            .call("crypto", "verify_signature", true, || {
                self.crypto.verify_signature(metadata, signature)
            })
            .await?;
        if let VerificationResult::Mismatch { .. } | VerificationResult::Malformed { .. } = verdict
        {
            return Err(self.refused(
                operation,
                "signature",
                Error::signature(format!("package {id}"), verdict.to_string()),
            ));
        }
        let key_id = signature.key_id();
        match self
            .call("crypto", "verify_trust", true, || {
                self.crypto.verify_trust(&key_id)
            })
            .await?
        {
            TrustResult::Trusted { level, .. } => Ok((key_id, level)),
            other => Err(self.refused(
                operation,
                "trust",
                Error::signature(format!("package {id}"), other.to_string()),
            )),
        }
    }

    /// Fetches the archive of `metadata` and checks its hash and size.
    async fn fetch_checked(&self, operation: &str, metadata: &PackageMetadata) -> Result<Bytes> {
        let what = format!("archive of {}", metadata.id);
        let bytes = match self
            .call("store", "get", true, || self.store.get(&metadata.checksum))
            .await
        {
            Ok(bytes) => bytes,
            Err(e @ Error::Integrity { .. }) => {
                return Err(self.refused(operation, "checksum", e));
            }
            Err(Error::NotFound { .. }) => {
                return Err(Error::not_found(format!(
                    "{what} ({} is registered but missing from the store)",
                    metadata.checksum
                )));
            }
            Err(e) => return Err(e),
        };
        // The store verifies too; the client does not rely on it.
        let algorithm = metadata.checksum.algorithm();
        let actual = self
            .call("crypto", "checksum", true, || {
                self.crypto.checksum(&bytes, algorithm)
            })
            .await?;
        if actual != metadata.checksum {
            return Err(self.refused(
                operation,
                "checksum",
                Error::integrity(&what, &metadata.checksum, actual),
            ));
        }
        if bytes.len() as u64 != metadata.size {
            return Err(self.refused(
                operation,
                "checksum",
                Error::integrity(
                    &what,
                    format!("{} bytes", metadata.size),
                    format!("{} bytes", bytes.len()),
                ),
            ));
        }
        Ok(bytes)
    }

    /// Validates an archive against the limits and checks that its manifest names `metadata`.
    async fn inspect_for(
        &self,
        operation: &str,
        metadata: &PackageMetadata,
        archive: &Bytes,
    ) -> Result<ArchiveInfo> {
        let limits = self.limits;
        let bytes = archive.clone();
        let info = blocking("inspect an archive", move || inspect(&bytes, &limits))
            .await
            .map_err(|e| self.refused(operation, "archive", e))?;
        if info.manifest.id.canonical() != metadata.id.canonical() {
            return Err(self.refused(
                operation,
                "archive",
                Error::invalid(
                    format!("archive of {}", metadata.id),
                    info.manifest.id.to_string(),
                    "the manifest must name the registered package and version",
                ),
            ));
        }
        Ok(info)
    }

    // ---- publish ---------------------------------------------------------------------------

    /// Validates an archive and its manifest and computes its metadata, without changing
    /// anything. `Invalid` names the entry or manifest field and the rule.
    pub async fn prepare(&self, archive: Bytes) -> Result<PreparedPackage> {
        let limits = self.limits;
        let bytes = archive.clone();
        let info = blocking("inspect an archive", move || inspect(&bytes, &limits)).await?;
        let checksum = self
            .call("crypto", "checksum", true, || {
                self.crypto
                    .checksum(&archive, marketplace_core::HashAlgorithm::Sha256)
            })
            .await?;
        let metadata = info.manifest.to_metadata(checksum, archive.len() as u64);
        metadata.validate()?;
        Ok(PreparedPackage {
            archive,
            metadata,
            info,
        })
    }

    /// Publishes a package archive, signed with `key`.
    ///
    /// Validates the archive and manifest, checks that the version is free, signs, verifies
    /// the signature and that the key is trusted and not revoked, runs the `pre_publish`
    /// hooks, then stores the bytes, registers the version and indexes it — in that order, so
    /// a failure never leaves a registered version without its bytes (an orphaned blob is
    /// removed by [`MarketplaceClient::gc`]).
    ///
    /// Errors: `Invalid` (archive, manifest, plugin policy), `AlreadyExists`, `Signature`
    /// (key not trusted or revoked), `Backend`.
    pub async fn publish(&self, archive: Bytes, key: &PrivateKey) -> Result<Published> {
        let span = tracing::info_span!(
            "marketplace.publish",
            size = archive.len(),
            package = tracing::field::Empty
        );
        self.flow("publish", span, async {
            let mut prepared = self.prepare(archive).await?;
            tracing::Span::current()
                .record("package", tracing::field::display(&prepared.metadata.id));
            self.check_free(&prepared.metadata.id).await?;
            let signature = self
                .call("crypto", "sign", true, || {
                    self.crypto.sign(&prepared.metadata, key)
                })
                .await?;
            prepared.metadata.signature = Some(signature);
            self.publish_checked(prepared).await
        })
        .await
    }

    /// Publishes a prepared package whose `metadata.signature` was set from a detached
    /// signature. Same checks and errors as [`MarketplaceClient::publish`]; the archive is
    /// validated again and must match the metadata.
    pub async fn publish_prepared(&self, prepared: PreparedPackage) -> Result<Published> {
        let span = tracing::info_span!("marketplace.publish", package = %prepared.metadata.id);
        self.flow("publish", span, async {
            let again = self.prepare(prepared.archive.clone()).await?;
            let mut expected = again.metadata;
            expected.published_at = prepared.metadata.published_at;
            expected.signature.clone_from(&prepared.metadata.signature);
            if expected != prepared.metadata {
                return Err(Error::invalid(
                    "metadata",
                    prepared.metadata.id.to_string(),
                    "must be the metadata prepare() computed for this archive",
                ));
            }
            self.check_free(&prepared.metadata.id).await?;
            self.publish_checked(prepared).await
        })
        .await
    }

    async fn check_free(&self, id: &PackageId) -> Result<()> {
        match self
            .call("registry", "get", true, || self.registry.get(id))
            .await
        {
            Ok(existing) => Err(Error::already_exists(format!("package {}", existing.id))),
            Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn publish_checked(&self, prepared: PreparedPackage) -> Result<Published> {
        let PreparedPackage {
            archive, metadata, ..
        } = prepared;
        self.check_signature("publish", &metadata).await?;
        for plugin in &self.plugins {
            plugin.pre_publish(&metadata).await?;
        }
        // 1. bytes
        let hash = self
            .call("store", "store", true, || self.store.store(archive.clone()))
            .await?;
        if hash != metadata.checksum {
            return Err(Error::integrity(
                format!("stored archive of {}", metadata.id),
                &metadata.checksum,
                &hash,
            ));
        }
        // 2. registry: the version exists from here on.
        let id = self.register(&metadata, &hash).await?;
        self.add_bytes("published", archive.len());
        // 3. index: derived data; a miss is repaired by rebuild_index.
        let mut record = PackageRecord::new(metadata.clone());
        record.metadata.id = id.clone();
        let indexed = match self
            .call("search", "index", true, || self.search.index(&record))
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(package = %id, error = %e, "published but not indexed; rebuild_index repairs this");
                self.count("marketplace_index_failures_total", &[]);
                false
            }
        };
        self.post_hooks("post_publish", &metadata, &archive).await;
        Ok(Published {
            id,
            checksum: hash,
            size: metadata.size,
            indexed,
        })
    }

    /// Registers, retrying transient errors; a retry that finds the version registered with
    /// the same hash (the earlier attempt landed) counts as success.
    async fn register(&self, metadata: &PackageMetadata, hash: &ContentHash) -> Result<PackageId> {
        let mut attempt = 0;
        self.call("registry", "register", true, || {
            attempt += 1;
            let retried = attempt > 1;
            async move {
                match self.registry.register(metadata.clone(), hash.clone()).await {
                    Err(Error::AlreadyExists { what }) if retried => {
                        match self.registry.get(&metadata.id).await {
                            Ok(existing) if existing.checksum == *hash => Ok(existing.id),
                            _ => Err(Error::AlreadyExists { what }),
                        }
                    }
                    other => other,
                }
            }
        })
        .await
    }

    /// Publishes many archives signed with one key, for imports: every archive is validated
    /// and signed first and the batch is refused as a whole on the first problem (nothing is
    /// stored); then all bytes are stored, all versions registered in one batch
    /// ([`Registry::register_batch`], atomic on registries with transactions) and indexed in
    /// one batch.
    pub async fn publish_batch(
        &self,
        archives: Vec<Bytes>,
        key: &PrivateKey,
    ) -> Result<Vec<Published>> {
        let span = tracing::info_span!("marketplace.publish_batch", count = archives.len());
        self.flow("publish_batch", span, async {
            let mut prepared = Vec::with_capacity(archives.len());
            let mut seen = HashSet::new();
            for archive in archives {
                let mut p = self.prepare(archive).await?;
                if !seen.insert(p.metadata.id.canonical()) {
                    return Err(Error::already_exists(format!(
                        "package {} (twice in one batch)",
                        p.metadata.id
                    )));
                }
                let metadata = &p.metadata;
                p.metadata.signature = Some(
                    self.call("crypto", "sign", true, || self.crypto.sign(metadata, key))
                        .await?,
                );
                self.check_signature("publish", &p.metadata).await?;
                for plugin in &self.plugins {
                    plugin.pre_publish(&p.metadata).await?;
                }
                prepared.push(p);
            }
            for p in &prepared {
                self.check_free(&p.metadata.id).await?;
            }
            // Stores run a few at a time: each waits mostly on I/O (an fsync, a network round
            // trip), so overlapping them multiplies throughput.
            let mut stores = futures::stream::iter(&prepared)
                .map(|p| async move {
                    let hash = self
                        .call("store", "store", true, || self.store.store(p.archive.clone()))
                        .await?;
                    if hash != p.metadata.checksum {
                        return Err(Error::integrity(
                            format!("stored archive of {}", p.metadata.id),
                            &p.metadata.checksum,
                            &hash,
                        ));
                    }
                    Ok(())
                })
                .buffer_unordered(STORE_CONCURRENCY);
            while let Some(stored) = stores.next().await {
                stored?;
            }
            drop(stores);
            let items: Vec<_> = prepared
                .iter()
                .map(|p| (p.metadata.clone(), p.metadata.checksum.clone()))
                .collect();
            let ids = self
                .call("registry", "register_batch", false, || {
                    self.registry.register_batch(items.clone())
                })
                .await?;
            let records: Vec<PackageRecord> = prepared
                .iter()
                .zip(&ids)
                .map(|(p, id)| {
                    let mut metadata = p.metadata.clone();
                    metadata.id = id.clone();
                    PackageRecord::new(metadata)
                })
                .collect();
            let indexed = match self
                .call("search", "index_batch", true, || {
                    self.search.index_batch(&records)
                })
                .await
            {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "batch published but not indexed; rebuild_index repairs this");
                    self.count("marketplace_index_failures_total", &[]);
                    false
                }
            };
            let mut published = Vec::with_capacity(prepared.len());
            for (p, id) in prepared.iter().zip(ids) {
                self.post_hooks("post_publish", &p.metadata, &p.archive).await;
                published.push(Published {
                    id,
                    checksum: p.metadata.checksum.clone(),
                    size: p.metadata.size,
                    indexed,
                });
            }
            Ok(published)
        })
        .await
    }

    // ---- download and install --------------------------------------------------------------

    /// Downloads one version: runs the `pre_download` hooks, checks the signature and trust,
    /// fetches the archive and checks its hash, then counts the download.
    ///
    /// Errors: `NotFound`, `Integrity` (tampered bytes), `Signature` (unsigned, wrongly
    /// signed, untrusted or revoked key), a plugin's error, `Backend`.
    pub async fn download(&self, id: &PackageId) -> Result<Downloaded> {
        let span = tracing::info_span!("marketplace.download", package = %id);
        self.flow("download", span, async {
            let metadata = self
                .call("registry", "get", true, || self.registry.get(id))
                .await?;
            self.pre_download_hooks(&metadata).await?;
            self.check_signature("download", &metadata).await?;
            let archive = self.fetch_checked("download", &metadata).await?;
            self.record_download(&metadata.id).await;
            self.add_bytes("downloaded", archive.len());
            self.post_hooks("post_download", &metadata, &archive).await;
            Ok(Downloaded { metadata, archive })
        })
        .await
    }

    async fn record_download(&self, id: &PackageId) {
        if let Err(e) = self
            .call("registry", "record_download", false, || {
                self.registry.record_download(id)
            })
            .await
        {
            tracing::warn!(package = %id, error = %e, "download not counted");
        }
    }

    /// Installs the highest version of `package` matching `requirement`, with its whole
    /// dependency graph, into `dest` (created if needed): each package goes to
    /// `dest/name-version` (or `dest/namespace/name-version`) and `dest/marketplace.lock`
    /// records exact versions and hashes.
    ///
    /// If the lockfile already holds a version of `package` that matches `requirement`, its
    /// locked graph is installed instead of resolving again, and an archive whose hash
    /// differs from the locked one is refused. Every package of the graph is fetched and
    /// verified (hash, signature, trust, archive rules, plugin policy) before anything is
    /// written, so a refusal leaves `dest` as it was; packages already in place with the
    /// locked hash are skipped.
    ///
    /// Errors: `NotFound` (no such package, or no version matches — the message says when
    /// only yanked versions do), `Conflict` (unsatisfiable dependencies), `Integrity`,
    /// `Signature`, `Invalid` (archive rules), a plugin's error, `Backend`.
    pub async fn install(
        &self,
        package: &PackageRef,
        requirement: &VersionReq,
        dest: &Path,
    ) -> Result<InstallReport> {
        let span = tracing::info_span!("marketplace.install", package = %package, requirement = %requirement);
        self.flow(
            "install",
            span,
            self.install_inner(package, requirement, dest),
        )
        .await
    }

    async fn install_inner(
        &self,
        package: &PackageRef,
        requirement: &VersionReq,
        dest: &Path,
    ) -> Result<InstallReport> {
        let lock_dest = dest.to_owned();
        let mut lock = blocking("read the lockfile", move || Lockfile::read(&lock_dest))
            .await?
            .unwrap_or_default();
        // 1. Which versions: the lockfile's, or a fresh resolution.
        let locked = lock
            .root_for(package)
            .filter(|root| requirement.matches(&root.version))
            .and_then(|root| Some((root.clone(), lock.graph_of(root)?)));
        let from_lockfile = locked.is_some();
        let (root, graph): (PackageId, BTreeMap<PackageId, Vec<PackageId>>) = match &locked {
            Some((root, graph)) => (
                root.clone(),
                graph
                    .iter()
                    .map(|(id, p)| (id.clone(), p.dependencies.clone()))
                    .collect(),
            ),
            None => {
                let root = self.resolve_root(package, requirement).await?;
                let graph: DependencyGraph = self
                    .call("registry", "resolve_dependencies", true, || {
                        self.registry.resolve_dependencies(&root, true)
                    })
                    .await?;
                (graph.root.clone(), graph.nodes)
            }
        };
        let order = DependencyGraph {
            root: root.clone(),
            nodes: graph.clone(),
        }
        .install_order();
        // 2. Fetch and verify everything before writing anything.
        let mut fetched = Vec::new();
        let mut already_present = Vec::new();
        let mut locked_packages = Vec::new();
        for id in &order {
            let metadata = self
                .call("registry", "get", true, || self.registry.get(id))
                .await?;
            if let Some((_, locked)) = &locked {
                let expected = &locked[id].checksum;
                if &metadata.checksum != expected {
                    return Err(self.refused(
                        "install",
                        "checksum",
                        Error::integrity(
                            format!("{id} (locked in {})", crate::lockfile::LOCKFILE),
                            expected,
                            &metadata.checksum,
                        ),
                    ));
                }
            }
            locked_packages.push(LockedPackage {
                id: id.clone(),
                checksum: metadata.checksum.clone(),
                dependencies: graph.get(id).cloned().unwrap_or_default(),
            });
            let target = install_dir(dest, id);
            let in_place = lock
                .get(id)
                .is_some_and(|l| l.checksum == metadata.checksum)
                && target.is_dir();
            if in_place {
                already_present.push(id.clone());
                continue;
            }
            self.pre_download_hooks(&metadata).await?;
            self.check_signature("install", &metadata).await?;
            let archive = self.fetch_checked("install", &metadata).await?;
            self.inspect_for("install", &metadata, &archive).await?;
            fetched.push((metadata, archive, target));
        }
        // 3. Extract; on a failure, remove what this install extracted.
        let jobs: Vec<(Bytes, PathBuf)> = fetched
            .iter()
            .map(|(_, archive, target)| (archive.clone(), target.clone()))
            .collect();
        let limits = self.limits;
        let dest_owned = dest.to_owned();
        blocking("extract packages", move || {
            let mut done: Vec<PathBuf> = Vec::new();
            for (archive, target) in &jobs {
                if let Err(e) = extract(archive, target, &limits) {
                    for dir in &done {
                        let _ = std::fs::remove_dir_all(dir);
                        if let Some(parent) = dir.parent().filter(|p| *p != dest_owned) {
                            let _ = std::fs::remove_dir(parent);
                        }
                    }
                    return Err(e);
                }
                done.push(target.clone());
            }
            Ok(())
        })
        .await?;
        // 4. Count, hook, lock.
        let mut installed = Vec::with_capacity(fetched.len());
        for (metadata, archive, target) in fetched {
            self.record_download(&metadata.id).await;
            self.post_hooks("post_download", &metadata, &archive).await;
            self.add_bytes("downloaded", archive.len());
            installed.push(InstalledPackage {
                id: metadata.id,
                checksum: metadata.checksum,
                path: target,
            });
        }
        lock.record(root.clone(), locked_packages);
        let lock_dest = dest.to_owned();
        blocking("write the lockfile", move || {
            std::fs::create_dir_all(&lock_dest).map_err(|e| {
                Error::backend(
                    "filesystem",
                    format!("create {}", lock_dest.display()),
                    e,
                    false,
                )
            })?;
            lock.write(&lock_dest)
        })
        .await?;
        Ok(InstallReport {
            root,
            installed,
            already_present,
            from_lockfile,
            lockfile: dest.join(crate::lockfile::LOCKFILE),
        })
    }

    /// The version to install: the highest match that is not yanked (yanked only by exact
    /// pin). `NotFound` says when the package is unknown and when only yanked versions match.
    async fn resolve_root(
        &self,
        package: &PackageRef,
        requirement: &VersionReq,
    ) -> Result<PackageId> {
        if let Some(id) = self
            .call("registry", "resolve_version", true, || {
                self.registry.resolve_version(package, requirement)
            })
            .await?
        {
            return Ok(id);
        }
        let states = self
            .call("registry", "list_version_states", true, || {
                self.registry.list_version_states(package)
            })
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::not_found(format!("package {package}")),
                e => e,
            })?;
        let yanked: Vec<String> = states
            .iter()
            .filter(|s| s.yanked && requirement.matches(&s.version))
            .map(|s| s.version.to_string())
            .collect();
        Err(if yanked.is_empty() {
            Error::not_found(format!("a version of {package} matching {requirement}"))
        } else {
            Error::not_found(format!(
                "a version of {package} matching {requirement} that is not yanked (yanked: {}; pin one with =VERSION to use it)",
                yanked.join(", ")
            ))
        })
    }

    // ---- queries ---------------------------------------------------------------------------

    /// Full-text search (see [`SearchQuery`]).
    pub async fn search(&self, query: &SearchQuery) -> Result<Vec<SearchResult>> {
        let span = tracing::info_span!("marketplace.search", text = %query.text);
        self.flow("search", span, async {
            self.call("search", "search", true, || self.search.search(query))
                .await
        })
        .await
    }

    /// Package names starting with `prefix`, for completion.
    pub async fn suggest(&self, prefix: &str, limit: usize) -> Result<Vec<PackageRef>> {
        let span = tracing::info_span!("marketplace.suggest", prefix);
        self.flow("suggest", span, async {
            self.call("search", "suggest", true, || {
                self.search.suggest(prefix, limit)
            })
            .await
        })
        .await
    }

    /// Metadata, yank state and download statistics of one version.
    pub async fn info(&self, id: &PackageId) -> Result<PackageInfo> {
        let span = tracing::info_span!("marketplace.info", package = %id);
        self.flow("info", span, async {
            let metadata = self
                .call("registry", "get", true, || self.registry.get(id))
                .await?;
            let yanked = self
                .call("registry", "is_yanked", true, || {
                    self.registry.is_yanked(id)
                })
                .await?;
            let stats = self
                .call("registry", "get_stats", true, || {
                    self.registry.get_stats(id)
                })
                .await?;
            Ok(PackageInfo {
                metadata,
                yanked,
                stats,
            })
        })
        .await
    }

    /// Every version of a package, ascending, with its yank state. `NotFound` if unknown.
    pub async fn versions(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        let span = tracing::info_span!("marketplace.versions", package = %package);
        self.flow("versions", span, async {
            self.call("registry", "list_version_states", true, || {
                self.registry.list_version_states(package)
            })
            .await
        })
        .await
    }

    /// Download statistics of a version and its package.
    pub async fn stats(&self, id: &PackageId) -> Result<PackageStats> {
        let span = tracing::info_span!("marketplace.stats", package = %id);
        self.flow("stats", span, async {
            self.call("registry", "get_stats", true, || {
                self.registry.get_stats(id)
            })
            .await
        })
        .await
    }

    // ---- management ------------------------------------------------------------------------

    /// Yanks a version (kept for exact pins and lockfiles, no longer chosen by ranges or shown
    /// by search). Idempotent. `NotFound` if absent.
    pub async fn yank(&self, id: &PackageId, reason: &str) -> Result<()> {
        let span = tracing::info_span!("marketplace.yank", package = %id);
        self.flow("yank", span, async {
            self.call("registry", "yank", true, || self.registry.yank(id, reason))
                .await?;
            self.reindex(
                id,
                Some(YankInfo {
                    reason: reason.to_owned(),
                    at: OffsetDateTime::now_utc(),
                }),
            )
            .await;
            Ok(())
        })
        .await
    }

    /// Restores a yanked version. Idempotent. `NotFound` if absent.
    pub async fn unyank(&self, id: &PackageId) -> Result<()> {
        let span = tracing::info_span!("marketplace.unyank", package = %id);
        self.flow("unyank", span, async {
            self.call("registry", "unyank", true, || self.registry.unyank(id))
                .await?;
            self.reindex(id, None).await;
            Ok(())
        })
        .await
    }

    /// Updates the search index entry of `id` after a change; a failure is logged (the
    /// registry is the truth and `rebuild_index` repairs the index).
    async fn reindex(&self, id: &PackageId, yanked: Option<YankInfo>) {
        let result = async {
            let metadata = self
                .call("registry", "get", true, || self.registry.get(id))
                .await?;
            let downloads = self
                .call("registry", "get_stats", true, || {
                    self.registry.get_stats(id)
                })
                .await?
                .total_downloads;
            let record = PackageRecord {
                metadata,
                yanked,
                downloads,
            };
            self.call("search", "update", true, || self.search.update(&record))
                .await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(package = %id, error = %e, "search index not updated; rebuild_index repairs this");
            self.count("marketplace_index_failures_total", &[]);
        }
    }

    /// Checks a published version end to end without installing it: signature, trust, the
    /// stored bytes' hash and the archive rules. Errors as [`MarketplaceClient::download`],
    /// plus `Invalid` for an archive that breaks a rule.
    pub async fn verify(&self, id: &PackageId) -> Result<Verified> {
        let span = tracing::info_span!("marketplace.verify", package = %id);
        self.flow("verify", span, async {
            let metadata = self
                .call("registry", "get", true, || self.registry.get(id))
                .await?;
            let (key_id, trust) = self.check_signature("verify", &metadata).await?;
            let archive = self.fetch_checked("verify", &metadata).await?;
            let info = self.inspect_for("verify", &metadata, &archive).await?;
            Ok(Verified {
                id: metadata.id,
                checksum: metadata.checksum,
                key_id,
                trust,
                files: info.files.len(),
            })
        })
        .await
    }

    /// Every registered version with its yank state and downloads, from the registry.
    async fn all_records(&self) -> Result<Vec<PackageRecord>> {
        // Large pages: registries page by offset, which costs a scan of the rows skipped.
        const PAGE: usize = 10_000;
        let mut records = Vec::new();
        loop {
            let offset = records.len();
            let page = self
                .call("registry", "list", true, || {
                    self.registry.list(PAGE, offset)
                })
                .await?;
            let done = page.len() < PAGE;
            records.extend(page);
            if done {
                return Ok(records);
            }
        }
    }

    /// Rebuilds the search index from the registry (the source of truth) and returns how many
    /// versions it holds. Repairs an index that missed a publish, a yank or download counts.
    pub async fn rebuild_index(&self) -> Result<u64> {
        let span = tracing::info_span!("marketplace.rebuild_index");
        self.flow("rebuild_index", span, async {
            let records = self.all_records().await?;
            let mut records = Some(records);
            self.call("search", "rebuild", false, || {
                let batch = records.take().unwrap_or_default();
                self.search.rebuild(Box::new(batch.into_iter()))
            })
            .await
        })
        .await
    }

    /// Deletes blobs that no registered version refers to and that are older than
    /// `grace` (a publish stores its bytes before it registers, so a young orphan may be a
    /// publish in progress; `Duration::ZERO` deletes every orphan).
    pub async fn gc(&self, grace: Duration) -> Result<GcReport> {
        let span = tracing::info_span!("marketplace.gc");
        self.flow("gc", span, async {
            let stored = self
                .call("store", "list", true, || self.store.list("", usize::MAX))
                .await?;
            let referenced: BTreeSet<ContentHash> = self
                .all_records()
                .await?
                .into_iter()
                .map(|r| r.metadata.checksum)
                .collect();
            let cutoff = OffsetDateTime::now_utc() - grace;
            let mut report = GcReport {
                scanned: stored.len() as u64,
                ..GcReport::default()
            };
            for hash in stored {
                if referenced.contains(&hash) {
                    continue;
                }
                report.orphaned += 1;
                let meta = match self
                    .call("store", "metadata", true, || self.store.metadata(&hash))
                    .await
                {
                    Ok(meta) => meta,
                    Err(Error::NotFound { .. }) => continue,
                    Err(e) => return Err(e),
                };
                if meta.created > cutoff {
                    continue;
                }
                if self
                    .call("store", "delete", true, || self.store.delete(&hash))
                    .await?
                {
                    report.deleted += 1;
                    report.bytes_freed += meta.size;
                }
            }
            Ok(report)
        })
        .await
    }
}
