//! The Marketplace conformance kit: a suite per backend trait, model-based property checks,
//! and in-memory reference implementations.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accounts;
#[cfg(feature = "client")]
mod client;
mod crypto;
pub mod exposition;
pub mod fixtures;
pub mod layer;
mod metrics;
mod property;
pub mod reference;
mod registry;
mod report;
mod search;
mod store;

pub use accounts::accounts_suite;
#[cfg(feature = "client")]
pub use client::{
    ClientFactory, Composition, CompositionFactory, ServerSide, client_suite, client_suite_composed,
};
pub use crypto::{OPENSSL_PRIVATE_PEM, OPENSSL_PUBLIC_PEM, crypto_suite};
/// The builder the client suite's factory returns, so a backend's tests need only the kit.
#[cfg(feature = "client")]
pub use marketplace_client::MarketplaceBuilder;
pub use metrics::metrics_suite;
pub use registry::registry_suite;
pub use report::{CheckOutcome, CheckResult, Outcome, REPORT_DIR_VAR, SuiteReport};
pub use search::search_suite;
pub use store::store_suite;

/// What a backend claims to support. Checks of a capability the backend does not claim are
/// reported as skipped, never silently dropped. `Capabilities::default()` claims everything.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `register_batch` is all-or-nothing (one transaction). Without it, the kit still checks
    /// that invalid input and duplicates known before the batch change nothing.
    pub atomic_batch: bool,
    /// Search finds terms with typos (1 edit for 5–8 letters, 2 for 9 or more).
    pub typo_tolerance: bool,
    /// Search results carry highlighted snippets.
    pub highlights: bool,
    /// Random operation sequences per property check (more finds more, takes longer).
    pub property_cases: u32,
    /// Concurrent tasks in the concurrency checks.
    pub concurrent_tasks: usize,
    /// How long one check may take before it is reported as hung (default 60 s). A backend
    /// that blocks the executor without yielding cannot be timed out: it hangs the test.
    pub check_timeout: std::time::Duration,
    /// Run only the checks named here: full names (`registry::duplicate_version_rejected`) or
    /// prefixes ending in `*` (`search::*`). Empty: every check, or those listed (comma
    /// separated) in the environment variable [`ONLY_VAR`]. Checks left out are reported as
    /// skipped.
    pub only: Vec<String>,
    /// A way to change a stored object's bytes beneath the store under test (on disk, in the
    /// bucket), so the store suite can prove that every read path verifies. Without it
    /// `store::every_read_verifies` is skipped. See [`Capabilities::with_tamper`].
    pub tamper: Option<TamperHook>,
    /// `upload_stream` holds a bounded part of the body in memory, whatever its size. Stores
    /// that keep their objects in memory cannot, and say `false`; the check measures the
    /// process's peak memory (Linux only).
    pub bounded_upload_memory: bool,
    /// Opens a second handle on the registry's storage, as a restarted process would: with
    /// it, `registry::state_survives_reopening` checks that yanks, metadata updates, events
    /// and statistics are kept. See [`Capabilities::with_registry_reopen`].
    pub reopen_registry: Option<ReopenHook<dyn marketplace_core::Registry>>,
    /// The same for a crypto backend's trust store: trust levels and revocations are kept.
    pub reopen_crypto: Option<ReopenHook<dyn marketplace_core::CryptoVerifier>>,
    /// The same for a store: objects, their metadata and the totals are kept.
    pub reopen_store: Option<ReopenHook<dyn marketplace_core::PackageStore>>,
}

/// Opens a new handle on the storage of the backend under test (the same file, database or
/// bucket) while the first stays open, as a second process or a restart would see it.
pub type ReopenFn<T> = dyn Fn() -> Result<std::sync::Arc<T>, String> + Send + Sync;

/// A reopen factory in [`Capabilities`] (compared by identity).
pub struct ReopenHook<T: ?Sized>(pub std::sync::Arc<ReopenFn<T>>);

impl<T: ?Sized> ReopenHook<T> {
    /// Wraps `reopen`.
    pub fn new(
        reopen: impl Fn() -> Result<std::sync::Arc<T>, String> + Send + Sync + 'static,
    ) -> Self {
        ReopenHook(std::sync::Arc::new(reopen))
    }
}

impl<T: ?Sized> Clone for ReopenHook<T> {
    fn clone(&self) -> Self {
        ReopenHook(std::sync::Arc::clone(&self.0))
    }
}

impl<T: ?Sized> std::fmt::Debug for ReopenHook<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReopenHook(..)")
    }
}

impl<T: ?Sized> PartialEq for ReopenHook<T> {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T: ?Sized> Eq for ReopenHook<T> {}

/// Replaces the bytes a store keeps for an object, beneath the store: the file on disk, the
/// object in the bucket, the entry in the map. The store suite uses it to corrupt objects in
/// every way (a flipped byte, one byte short, one byte more, nothing) and to see that every
/// read path reports `Integrity` instead of returning the bytes.
#[async_trait::async_trait]
pub trait Tamper: Send + Sync {
    /// Puts `bytes` where the object `hash` is kept, as if a disk or a bucket had changed it.
    async fn replace(
        &self,
        hash: &marketplace_core::ContentHash,
        bytes: bytes::Bytes,
    ) -> Result<(), String>;
}

#[async_trait::async_trait]
impl<T: Tamper + ?Sized> Tamper for std::sync::Arc<T> {
    async fn replace(
        &self,
        hash: &marketplace_core::ContentHash,
        bytes: bytes::Bytes,
    ) -> Result<(), String> {
        (**self).replace(hash, bytes).await
    }
}

/// A [`Tamper`] in [`Capabilities`] (compared by identity).
#[derive(Clone)]
pub struct TamperHook(pub std::sync::Arc<dyn Tamper>);

impl std::fmt::Debug for TamperHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TamperHook(..)")
    }
}

impl PartialEq for TamperHook {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TamperHook {}

/// The environment variable naming the checks to run when `Capabilities::only` is empty.
pub const ONLY_VAR: &str = "MARKETPLACE_CONFORMANCE_ONLY";

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            atomic_batch: true,
            typo_tolerance: true,
            highlights: true,
            property_cases: 48,
            concurrent_tasks: 16,
            check_timeout: std::time::Duration::from_secs(60),
            only: Vec::new(),
            tamper: None,
            bounded_upload_memory: true,
            reopen_registry: None,
            reopen_crypto: None,
            reopen_store: None,
        }
    }
}

impl Capabilities {
    /// Everything claimed, default case counts (same as `default()`).
    pub fn all() -> Self {
        Self::default()
    }

    /// These capabilities with `reopen` as the way to open the registry's storage again.
    pub fn with_registry_reopen(
        mut self,
        reopen: impl Fn() -> Result<std::sync::Arc<dyn marketplace_core::Registry>, String>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.reopen_registry = Some(ReopenHook::new(reopen));
        self
    }

    /// These capabilities with `reopen` as the way to open the trust store again.
    pub fn with_crypto_reopen(
        mut self,
        reopen: impl Fn() -> Result<std::sync::Arc<dyn marketplace_core::CryptoVerifier>, String>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.reopen_crypto = Some(ReopenHook::new(reopen));
        self
    }

    /// These capabilities with `reopen` as the way to open the store again.
    pub fn with_store_reopen(
        mut self,
        reopen: impl Fn() -> Result<std::sync::Arc<dyn marketplace_core::PackageStore>, String>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.reopen_store = Some(ReopenHook::new(reopen));
        self
    }

    /// These capabilities with `tamper` as the way to corrupt the store's objects.
    pub fn with_tamper(mut self, tamper: impl Tamper + 'static) -> Self {
        self.tamper = Some(TamperHook(std::sync::Arc::new(tamper)));
        self
    }
}
