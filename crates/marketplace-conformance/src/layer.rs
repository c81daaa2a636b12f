//! One generic wrapper for every backend trait, for tests: [`Layered`] forwards each call to
//! the wrapped backend, after the [`Hook`]s saw it (count it, log it, fail it) and through an
//! override that may replace any one method (a deliberately broken backend, an interceptor).
//!
//! ```
//! use std::sync::Arc;
//! use marketplace_conformance::layer::{CallCounter, Layered, RegistryOverride};
//! use marketplace_conformance::reference::MemoryRegistry;
//! use marketplace_core::{PackageRef, Registry, Result, VersionState, async_trait};
//!
//! /// A registry that forgets yanks: only the faulty method is written.
//! struct ForgetsYanks;
//!
//! #[async_trait]
//! impl RegistryOverride for ForgetsYanks {
//!     async fn list_version_states(
//!         &self,
//!         inner: &dyn Registry,
//!         package: &PackageRef,
//!     ) -> Result<Vec<VersionState>> {
//!         let mut states = inner.list_version_states(package).await?;
//!         states.iter_mut().for_each(|s| s.yanked = None);
//!         Ok(states)
//!     }
//! }
//!
//! let counter = Arc::new(CallCounter::default());
//! let inner: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
//! let broken: Arc<dyn Registry> =
//!     Arc::new(Layered::new(inner).hook(counter.clone()).with_override(ForgetsYanks));
//! # let _ = broken;
//! ```
//!
//! Every method of every trait is forwarded, provided methods included (so a backend's own
//! `register_batch` or `resolve_dependencies` is what the wrapper calls), and each is written
//! once here — not in every test that needs a wrapper.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use marketplace_core::semver::{Version, VersionReq};
use marketplace_core::{
    ByteStream, ContentHash, CryptoVerifier, DependencyGraph, DownloadCount, Error, ErrorKind,
    Facets, HashAlgorithm, IndexStats, Key, KeyId, KeyPair, Labels, MetadataUpdate,
    MetricsCollector, MetricsSnapshot, PackageId, PackageMetadata, PackageRecord, PackageRef,
    PackageStats, PackageStore, PrivateKey, PublicKey, Registry, RegistryEvent, ResolveOptions,
    Result, SearchEngine, SearchQuery, SearchResult, Signature, StorageMetadata, StorageStats,
    TrustLevel, TrustResult, TrustedKey, VerificationResult, VersionState, async_trait,
};
use tokio::io::AsyncRead;

/// One call through a [`Layered`] backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Call {
    /// `registry`, `store`, `search`, `crypto` or `metrics`.
    pub backend: &'static str,
    /// The trait method, e.g. `get`.
    pub method: &'static str,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.backend, self.method)
    }
}

/// Sees every call before it reaches the backend; an error fails the call with that error.
pub trait Hook: Send + Sync {
    /// Called before `call` is forwarded.
    fn before(&self, call: Call) -> Result<()>;
}

impl<F: Fn(Call) -> Result<()> + Send + Sync> Hook for F {
    fn before(&self, call: Call) -> Result<()> {
        self(call)
    }
}

/// Counts calls per backend and method.
#[derive(Debug, Default)]
pub struct CallCounter {
    counts: Mutex<BTreeMap<Call, u64>>,
}

impl CallCounter {
    /// How many times `backend.method` was called.
    pub fn count(&self, backend: &str, method: &str) -> u64 {
        self.lock()
            .iter()
            .filter(|(c, _)| c.backend == backend && c.method == method)
            .map(|(_, n)| n)
            .sum()
    }

    /// Every call counted so far.
    pub fn counts(&self) -> BTreeMap<Call, u64> {
        self.lock().clone()
    }

    /// Forgets every count.
    pub fn reset(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Call, u64>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Hook for CallCounter {
    fn before(&self, call: Call) -> Result<()> {
        *self.lock().entry(call).or_default() += 1;
        Ok(())
    }
}

/// Fails the Nth call (1-based, counting every backend sharing this hook) once armed, with a
/// transient or permanent `Backend` error, and logs every call it counted.
#[derive(Debug)]
pub struct FailAt {
    armed: AtomicBool,
    calls: AtomicUsize,
    fail_at: usize,
    transient: bool,
    log: Mutex<Vec<Call>>,
}

impl FailAt {
    /// Fails call number `fail_at` once [`FailAt::arm`]ed.
    pub fn new(fail_at: usize, transient: bool) -> Self {
        FailAt {
            armed: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
            fail_at,
            transient,
            log: Mutex::new(Vec::new()),
        }
    }

    /// Starts counting (calls made while setting up are not counted).
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Stops counting and failing.
    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    /// The calls counted while armed, in order.
    pub fn log(&self) -> Vec<Call> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Hook for FailAt {
    fn before(&self, call: Call) -> Result<()> {
        if !self.armed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(call);
        if n == self.fail_at {
            return Err(Error::backend(
                "fault-injection",
                call.to_string(),
                format!("injected failure at call {n}"),
                self.transient,
            ));
        }
        Ok(())
    }
}

/// The override that changes nothing: every method is the wrapped backend's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unchanged;

/// A backend wrapped with hooks and an override. Build one with [`Layered::new`] over an
/// `Arc<dyn Trait>`; it implements that trait.
pub struct Layered<T: ?Sized, O = Unchanged> {
    inner: Arc<T>,
    over: O,
    hooks: Vec<Arc<dyn Hook>>,
}

impl<T: ?Sized> Layered<T, Unchanged> {
    /// Wraps `inner`, changing nothing yet.
    pub fn new(inner: Arc<T>) -> Self {
        Layered {
            inner,
            over: Unchanged,
            hooks: Vec::new(),
        }
    }
}

impl<T: ?Sized, O> Layered<T, O> {
    /// Adds a hook; hooks see each call in the order they were added.
    pub fn hook(mut self, hook: Arc<dyn Hook>) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Replaces the override (the methods it implements replace the backend's).
    pub fn with_override<P>(self, over: P) -> Layered<T, P> {
        Layered {
            inner: self.inner,
            over,
            hooks: self.hooks,
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &Arc<T> {
        &self.inner
    }

    fn before(&self, backend: &'static str, method: &'static str) -> Result<()> {
        let call = Call { backend, method };
        self.hooks.iter().try_for_each(|h| h.before(call))
    }
}

/// Declares an override trait whose every method defaults to the wrapped backend's, and the
/// trait implementation of [`Layered`] that runs the hooks and then the override.
macro_rules! layer {
    (
        $(#[$doc:meta])*
        $Trait:ident => $Override:ident, $backend:literal {
            $( async fn $method:ident ( $( $arg:ident : $ty:ty ),* $(,)? ) -> $ret:ty ; )*
        }
        $( sync { $( fn $smethod:ident ( $( $sarg:ident : $sty:ty ),* $(,)? ) -> $sret:ty ; )* } )?
    ) => {
        $(#[$doc])*
        #[async_trait]
        pub trait $Override: Send + Sync {
            $(
                #[doc = concat!("`", stringify!($Trait), "::", stringify!($method), "`; by default the wrapped backend's.")]
                async fn $method(&self, inner: &dyn $Trait, $( $arg: $ty ),*) -> $ret {
                    inner.$method($( $arg ),*).await
                }
            )*
            $( $(
                #[doc = concat!("`", stringify!($Trait), "::", stringify!($smethod), "`; by default the wrapped backend's.")]
                fn $smethod(&self, inner: &dyn $Trait, $( $sarg: $sty ),*) -> $sret {
                    inner.$smethod($( $sarg ),*)
                }
            )* )?
        }

        impl $Override for Unchanged {}

        #[async_trait]
        impl<O: $Override> $Trait for Layered<dyn $Trait, O> {
            $(
                async fn $method(&self, $( $arg: $ty ),*) -> $ret {
                    self.before($backend, stringify!($method))?;
                    self.over.$method(&*self.inner, $( $arg ),*).await
                }
            )*
            $( $(
                fn $smethod(&self, $( $sarg: $sty ),*) -> $sret {
                    self.before($backend, stringify!($smethod))?;
                    self.over.$smethod(&*self.inner, $( $sarg ),*)
                }
            )* )?
        }
    };
}

layer! {
    /// Replaces chosen [`Registry`] methods of a [`Layered`] registry.
    Registry => RegistryOverride, "registry" {
        async fn register(metadata: PackageMetadata, content_hash: ContentHash) -> Result<PackageId>;
        async fn register_batch(items: Vec<(PackageMetadata, ContentHash)>) -> Result<Vec<PackageId>>;
        async fn get(id: &PackageId) -> Result<PackageMetadata>;
        async fn list_version_states(package: &PackageRef) -> Result<Vec<VersionState>>;
        async fn list_versions(package: &PackageRef) -> Result<Vec<Version>>;
        async fn resolve_version(package: &PackageRef, requirement: &VersionReq) -> Result<Option<PackageId>>;
        async fn resolve_dependencies(id: &PackageId, options: ResolveOptions) -> Result<DependencyGraph>;
        async fn update_metadata(id: &PackageId, update: MetadataUpdate) -> Result<PackageMetadata>;
        async fn yank(id: &PackageId, reason: &str) -> Result<()>;
        async fn unyank(id: &PackageId) -> Result<()>;
        async fn is_yanked(id: &PackageId) -> Result<bool>;
        async fn list_by_author(author: &str, limit: usize, offset: usize) -> Result<Vec<PackageRecord>>;
        async fn list(limit: usize, offset: usize) -> Result<Vec<PackageRecord>>;
        async fn get_stats(id: &PackageId) -> Result<PackageStats>;
        async fn record_download(id: &PackageId) -> Result<()>;
        async fn downloads_since(after: u64, limit: usize) -> Result<Vec<DownloadCount>>;
        async fn events_since(after: u64, limit: usize) -> Result<Vec<RegistryEvent>>;
        async fn latest_event_seq() -> Result<u64>;
    }
}

layer! {
    /// Replaces chosen [`PackageStore`] methods of a [`Layered`] store.
    PackageStore => StoreOverride, "store" {
        async fn store(bytes: Bytes) -> Result<ContentHash>;
        async fn get(hash: &ContentHash) -> Result<Bytes>;
        async fn stream(hash: &ContentHash) -> Result<ByteStream>;
        async fn upload_stream(reader: Box<dyn AsyncRead + Send + Unpin>, size_hint: Option<u64>) -> Result<ContentHash>;
        async fn exists(hash: &ContentHash) -> Result<bool>;
        async fn delete(hash: &ContentHash) -> Result<bool>;
        async fn metadata(hash: &ContentHash) -> Result<StorageMetadata>;
        async fn copy_to(hash: &ContentHash, target: &dyn PackageStore) -> Result<()>;
        async fn list(prefix: &str, limit: usize) -> Result<Vec<ContentHash>>;
        async fn stats() -> Result<StorageStats>;
        async fn cleanup_staging(older_than: Duration) -> Result<u64>;
    }
}

layer! {
    /// Replaces chosen [`SearchEngine`] methods of a [`Layered`] search engine.
    SearchEngine => SearchOverride, "search" {
        async fn index(record: &PackageRecord) -> Result<()>;
        async fn index_batch(records: &[PackageRecord]) -> Result<()>;
        async fn update(record: &PackageRecord) -> Result<()>;
        async fn remove(id: &PackageId) -> Result<()>;
        async fn search(query: &SearchQuery) -> Result<Vec<SearchResult>>;
        async fn suggest(prefix: &str, limit: usize) -> Result<Vec<PackageRef>>;
        async fn facets(query: &SearchQuery) -> Result<Facets>;
        async fn similar(id: &PackageId, limit: usize) -> Result<Vec<SearchResult>>;
        async fn rebuild(records: Box<dyn Iterator<Item = PackageRecord> + Send>) -> Result<u64>;
        async fn optimize() -> Result<()>;
        async fn stats() -> Result<IndexStats>;
        async fn feed_position() -> Result<Option<u64>>;
        async fn apply_feed(records: &[PackageRecord], position: u64) -> Result<()>;
        async fn downloads_position() -> Result<Option<u64>>;
        async fn apply_downloads(counts: &[DownloadCount], position: u64) -> Result<()>;
    }
}

layer! {
    /// Replaces chosen [`CryptoVerifier`] methods of a [`Layered`] verifier.
    CryptoVerifier => CryptoOverride, "crypto" {
        async fn generate_keypair() -> Result<KeyPair>;
        async fn sign(metadata: &PackageMetadata, private_key: &PrivateKey) -> Result<Signature>;
        async fn verify_signature(metadata: &PackageMetadata, signature: &Signature) -> Result<VerificationResult>;
        async fn checksum(bytes: &[u8], algorithm: HashAlgorithm) -> Result<ContentHash>;
        async fn verify_checksum(bytes: &[u8], expected: &ContentHash) -> Result<()>;
        async fn add_trusted_key(key: &PublicKey, level: TrustLevel) -> Result<()>;
        async fn revoke_key(key_id: &KeyId, reason: &str) -> Result<()>;
        async fn is_revoked(key_id: &KeyId) -> Result<bool>;
        async fn verify_trust(key_id: &KeyId) -> Result<TrustResult>;
        async fn trusted_keys() -> Result<Vec<TrustedKey>>;
    }
    sync {
        fn import_key_pem(pem: &str) -> Result<Key>;
        fn export_key_pem(key: &Key) -> Result<String>;
    }
}

/// Replaces chosen [`MetricsCollector`] methods of a [`Layered`] collector. Metrics are
/// synchronous and recording cannot fail, so hooks see only the calls that return a `Result`
/// (`export_prometheus`).
pub trait MetricsOverride: Send + Sync {
    /// `MetricsCollector::counter`; by default the wrapped backend's.
    fn counter(&self, inner: &dyn MetricsCollector, name: &str, value: u64, labels: Labels<'_>) {
        inner.counter(name, value, labels);
    }
    /// `MetricsCollector::gauge`; by default the wrapped backend's.
    fn gauge(&self, inner: &dyn MetricsCollector, name: &str, value: f64, labels: Labels<'_>) {
        inner.gauge(name, value, labels);
    }
    /// `MetricsCollector::histogram`; by default the wrapped backend's.
    fn histogram(&self, inner: &dyn MetricsCollector, name: &str, value: f64, labels: Labels<'_>) {
        inner.histogram(name, value, labels);
    }
    /// `MetricsCollector::timing`; by default the wrapped backend's.
    fn timing(
        &self,
        inner: &dyn MetricsCollector,
        name: &str,
        duration: Duration,
        labels: Labels<'_>,
    ) {
        inner.timing(name, duration, labels);
    }
    /// `MetricsCollector::error`; by default the wrapped backend's.
    fn error(&self, inner: &dyn MetricsCollector, operation: &str, kind: ErrorKind) {
        inner.error(operation, kind);
    }
    /// `MetricsCollector::snapshot`; by default the wrapped backend's.
    fn snapshot(&self, inner: &dyn MetricsCollector) -> MetricsSnapshot {
        inner.snapshot()
    }
    /// `MetricsCollector::reset`; by default the wrapped backend's.
    fn reset(&self, inner: &dyn MetricsCollector) {
        inner.reset();
    }
    /// `MetricsCollector::export_prometheus`; by default the wrapped backend's.
    fn export_prometheus(&self, inner: &dyn MetricsCollector) -> Result<String> {
        inner.export_prometheus()
    }
}

impl MetricsOverride for Unchanged {}

impl<O: MetricsOverride> MetricsCollector for Layered<dyn MetricsCollector, O> {
    fn counter(&self, name: &str, value: u64, labels: Labels<'_>) {
        self.over.counter(&*self.inner, name, value, labels);
    }
    fn gauge(&self, name: &str, value: f64, labels: Labels<'_>) {
        self.over.gauge(&*self.inner, name, value, labels);
    }
    fn histogram(&self, name: &str, value: f64, labels: Labels<'_>) {
        self.over.histogram(&*self.inner, name, value, labels);
    }
    fn timing(&self, name: &str, duration: Duration, labels: Labels<'_>) {
        self.over.timing(&*self.inner, name, duration, labels);
    }
    fn error(&self, operation: &str, kind: ErrorKind) {
        self.over.error(&*self.inner, operation, kind);
    }
    fn snapshot(&self) -> MetricsSnapshot {
        self.over.snapshot(&*self.inner)
    }
    fn reset(&self) {
        self.over.reset(&*self.inner);
    }
    fn export_prometheus(&self) -> Result<String> {
        self.before("metrics", "export_prometheus")?;
        self.over.export_prometheus(&*self.inner)
    }
}
