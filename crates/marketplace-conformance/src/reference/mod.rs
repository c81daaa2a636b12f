//! Simple, obviously correct in-memory implementations of the traits.
//!
//! They are the kit's own proof that its suites can pass, the models the property checks are
//! compared with in spirit, and handy fakes in tests. They favour clarity over speed (linear
//! scans, one mutex) and keep nothing on disk: do not use them in production.

mod accounts;
mod crypto;
mod metrics;
mod registry;
mod search;
mod store;

pub use accounts::MemoryAccounts;
pub use crypto::MemoryCryptoVerifier;
pub use metrics::MemoryMetrics;
pub use registry::MemoryRegistry;
pub use search::MemorySearchEngine;
pub use store::MemoryPackageStore;

use std::sync::{Mutex, MutexGuard};

/// A marketplace made entirely of the reference backends, to compose a backend under test
/// into for the client suite without `marketplace-client`'s default features: replace one
/// backend with yours.
///
/// ```
/// use std::sync::Arc;
/// use marketplace_conformance::reference;
/// # use marketplace_conformance::reference::MemoryRegistry as MyRegistry;
///
/// let factory = || Ok(reference::marketplace().registry(Arc::new(MyRegistry::new())));
/// # let factory: marketplace_conformance::ClientFactory<'_> = &factory;
/// let client = factory()?.build()?;
/// # Ok::<(), marketplace_core::Error>(())
/// ```
#[cfg(feature = "client")]
pub fn marketplace() -> crate::MarketplaceBuilder {
    use std::sync::Arc;
    crate::MarketplaceBuilder::new()
        .registry(Arc::new(MemoryRegistry::new()))
        .store(Arc::new(MemoryPackageStore::new()))
        .search(Arc::new(MemorySearchEngine::new()))
        .crypto(Arc::new(MemoryCryptoVerifier::default()))
        .metrics(Arc::new(MemoryMetrics::new()))
}

/// Locks a mutex, recovering the data if a panicking holder poisoned it (the reference
/// implementations never leave state half-changed across a panic point).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
