//! The Marketplace conformance kit: a suite per backend trait, model-based property checks,
//! and in-memory reference implementations.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "client")]
mod client;
mod crypto;
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
}

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
        }
    }
}

impl Capabilities {
    /// Everything claimed, default case counts (same as `default()`).
    pub fn all() -> Self {
        Self::default()
    }
}
