//! Every suite passes against the in-memory reference implementations.

use marketplace_conformance::reference::{
    MemoryMetrics, MemoryPackageStore, MemoryRegistry, MemorySearchEngine,
};
use marketplace_conformance::{
    Capabilities, accounts_suite, crypto_suite, metrics_suite, registry_suite, search_suite,
    store_suite,
};
use marketplace_core::PackageStore;

#[tokio::test]
async fn registry_suite_passes_on_the_reference() {
    let report = registry_suite(&MemoryRegistry::new(), &Capabilities::default()).await;
    report.assert_passed();
    assert!(report.checks.len() >= 25, "{report}");
}

#[tokio::test]
async fn registry_suite_passes_with_the_provided_batch() {
    // A registry that keeps the provided methods: the non-atomic register_batch,
    // list_versions, resolve_version and resolve_dependencies.
    let registry = support_registry::Plain(MemoryRegistry::new());
    let mut caps = Capabilities::default();
    caps.atomic_batch = false;
    let report = registry_suite(&registry, &caps).await;
    report.assert_passed();
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.name == "registry::register_batch_is_atomic"
                && matches!(c.outcome, marketplace_conformance::Outcome::Skipped(_)))
    );
}

#[tokio::test]
async fn store_suite_passes_on_the_reference() {
    let store = std::sync::Arc::new(MemoryPackageStore::new());
    let handle = store.clone();
    // The reference keeps its objects in the value itself: a second handle is another Arc.
    let mut caps = Capabilities::default()
        .with_tamper(store.clone())
        .with_store_reopen(move || Ok(handle.clone() as std::sync::Arc<dyn PackageStore>));
    caps.bounded_upload_memory = false;
    let report = store_suite(&*store, &caps).await;
    report.assert_passed();
    assert!(
        report
            .checks
            .iter()
            .all(|c| c.name == "store::upload_stream_memory_is_bounded"
                || !matches!(c.outcome, marketplace_conformance::Outcome::Skipped(_))),
        "only the memory check may be skipped on the reference:\n{report}"
    );
}

#[tokio::test]
async fn search_suite_passes_on_the_reference() {
    search_suite(&MemorySearchEngine::new(), &Capabilities::default())
        .await
        .assert_passed();
}

#[tokio::test]
async fn crypto_suite_passes_on_the_reference() {
    crypto_suite(
        &marketplace_conformance::reference::MemoryCryptoVerifier::default(),
        &Capabilities::default(),
    )
    .await
    .assert_passed();
}

#[tokio::test]
async fn metrics_suite_passes_on_the_reference() {
    metrics_suite(&MemoryMetrics::new(), &Capabilities::default())
        .await
        .assert_passed();
}

mod support_registry {
    use marketplace_conformance::reference::MemoryRegistry;

    use marketplace_core::{
        ContentHash, MetadataUpdate, PackageId, PackageMetadata, PackageRecord, PackageRef,
        PackageStats, Registry, RegistryEvent, Result, async_trait,
    };

    /// Forwards only the required methods, so every provided method runs.
    pub(crate) struct Plain(pub(crate) MemoryRegistry);

    #[async_trait]
    impl Registry for Plain {
        async fn register(&self, m: PackageMetadata, h: ContentHash) -> Result<PackageId> {
            self.0.register(m, h).await
        }
        async fn get(&self, id: &PackageId) -> Result<PackageMetadata> {
            self.0.get(id).await
        }
        async fn list_version_states(
            &self,
            p: &PackageRef,
        ) -> Result<Vec<marketplace_core::VersionState>> {
            self.0.list_version_states(p).await
        }
        async fn update_metadata(
            &self,
            id: &PackageId,
            u: MetadataUpdate,
        ) -> Result<PackageMetadata> {
            self.0.update_metadata(id, u).await
        }
        async fn yank(&self, id: &PackageId, reason: &str) -> Result<()> {
            self.0.yank(id, reason).await
        }
        async fn unyank(&self, id: &PackageId) -> Result<()> {
            self.0.unyank(id).await
        }
        async fn is_yanked(&self, id: &PackageId) -> Result<bool> {
            self.0.is_yanked(id).await
        }
        async fn list_by_author(&self, a: &str, l: usize, o: usize) -> Result<Vec<PackageRecord>> {
            self.0.list_by_author(a, l, o).await
        }
        async fn list(&self, l: usize, o: usize) -> Result<Vec<PackageRecord>> {
            self.0.list(l, o).await
        }
        async fn get_stats(&self, id: &PackageId) -> Result<PackageStats> {
            self.0.get_stats(id).await
        }
        async fn downloads_since(
            &self,
            after: u64,
            limit: usize,
        ) -> Result<Vec<marketplace_core::DownloadCount>> {
            self.0.downloads_since(after, limit).await
        }
        async fn record_download(&self, id: &PackageId) -> Result<()> {
            self.0.record_download(id).await
        }
        async fn events_since(&self, after: u64, limit: usize) -> Result<Vec<RegistryEvent>> {
            self.0.events_since(after, limit).await
        }
    }
}

/// The client suite passes on a marketplace made only of the reference backends: what a
/// backend author composes theirs into (`reference::marketplace`).
#[cfg(feature = "client")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_suite_passes_on_the_reference_marketplace() {
    let factory = || Ok(marketplace_conformance::reference::marketplace());
    let report = marketplace_conformance::client_suite(&factory, &Capabilities::default()).await;
    report.assert_passed();
}

#[tokio::test]
async fn accounts_suite_passes_on_the_reference() {
    let report = accounts_suite(
        &marketplace_conformance::reference::MemoryAccounts::new(),
        &Capabilities::default(),
    )
    .await;
    println!("{report}");
    report.assert_passed();
}
