//! The Marketplace conformance kit: a suite per backend trait, model-based property checks,
//! and in-memory reference implementations.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

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

#[cfg(feature = "client")]
pub use client::{ClientFactory, client_suite};
pub use crypto::{OPENSSL_PRIVATE_PEM, OPENSSL_PUBLIC_PEM, crypto_suite};
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
}

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
        }
    }
}

impl Capabilities {
    /// Everything claimed, default case counts (same as `default()`).
    pub fn all() -> Self {
        Self::default()
    }

    /// These capabilities with `tamper` as the way to corrupt the store's objects.
    pub fn with_tamper(mut self, tamper: impl Tamper + 'static) -> Self {
        self.tamper = Some(TamperHook(std::sync::Arc::new(tamper)));
        self
    }
}
