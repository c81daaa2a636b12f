//! Each suite fails a deliberately broken backend, naming the check that caught it. Every broken
//! backend is a reference backend behind the kit's [`Layered`] wrapper with one method replaced.

use std::sync::Arc;

use bytes::Bytes;
use marketplace_conformance::layer::{
    CryptoOverride, Layered, MetricsOverride, RegistryOverride, SearchOverride, StoreOverride,
};
use marketplace_conformance::reference::{
    MemoryMetrics, MemoryPackageStore, MemoryRegistry, MemorySearchEngine,
};
use marketplace_conformance::{
    Capabilities, SuiteReport, crypto_suite, metrics_suite, registry_suite, search_suite,
    store_suite,
};
use marketplace_core::semver::VersionReq;
use marketplace_core::{
    ContentHash, CryptoVerifier, DependencyGraph, Error, EventKind, Labels, MetricsCollector,
    PackageId, PackageMetadata, PackageRecord, PackageRef, PackageStore, Registry, RegistryEvent,
    ResolveOptions, Result, SearchEngine, Signature, VerificationResult, async_trait,
};

/// Asserts the report failed and that `check` is among the failures.
fn assert_caught(report: &SuiteReport, check: &str) {
    assert!(
        !report.passed(),
        "the suite passed a broken backend:\n{report}"
    );
    assert!(
        report.failed_names().contains(&check),
        "expected {check} to fail; failures were {:?}\n{report}",
        report.failed_names()
    );
}

async fn broken_registry<O: RegistryOverride + 'static>(fault: O) -> SuiteReport {
    let inner: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    let registry = Layered::new(inner).with_override(fault);
    registry_suite(&registry, &Capabilities::default()).await
}

/// Chooses the highest version even when it is yanked.
struct ResolvesYanked;

#[async_trait]
impl RegistryOverride for ResolvesYanked {
    async fn resolve_version(
        &self,
        inner: &dyn Registry,
        p: &PackageRef,
        req: &VersionReq,
    ) -> Result<Option<PackageId>> {
        let versions = match inner.list_versions(p).await {
            Ok(v) => v,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(versions
            .into_iter()
            .rev()
            .find(|v| req.matches(v))
            .map(|v| p.at(v)))
    }
}

/// Answers a duplicate registration with success.
struct AcceptsDuplicates;

#[async_trait]
impl RegistryOverride for AcceptsDuplicates {
    async fn register(
        &self,
        inner: &dyn Registry,
        m: PackageMetadata,
        h: ContentHash,
    ) -> Result<PackageId> {
        let id = m.id.clone();
        match inner.register(m, h).await {
            Err(Error::AlreadyExists { .. }) => Ok(id),
            other => other,
        }
    }
}

/// Drops every yank event: an audit log with holes.
struct ForgetsEvents;

#[async_trait]
impl RegistryOverride for ForgetsEvents {
    async fn events_since(
        &self,
        inner: &dyn Registry,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RegistryEvent>> {
        Ok(inner
            .events_since(after, limit)
            .await?
            .into_iter()
            .filter(|e| !matches!(e.kind, EventKind::Yanked { .. }))
            .collect())
    }
}

/// Highest version first, no backtracking.
struct GreedyResolver;

#[async_trait]
impl RegistryOverride for GreedyResolver {
    async fn resolve_dependencies(
        &self,
        inner: &dyn Registry,
        id: &PackageId,
        _options: ResolveOptions,
    ) -> Result<DependencyGraph> {
        // Highest version first, no backtracking: the classic defect.
        let mut nodes = std::collections::BTreeMap::new();
        let mut queue = vec![id.clone()];
        let mut chosen: std::collections::HashMap<String, PackageId> =
            std::collections::HashMap::new();
        while let Some(current) = queue.pop() {
            let meta = inner.get(&current).await?;
            let mut deps = Vec::new();
            for (dep, req) in &meta.dependencies {
                let pick =
                    match chosen.get(&dep.canonical()) {
                        Some(existing) if req.matches(&existing.version) => existing.clone(),
                        Some(existing) => {
                            return Err(Error::Conflict {
                                root: id.to_string(),
                                explanation: format!("{dep} {req} clashes with {existing}"),
                                trace: String::new(),
                            });
                        }
                        None => inner.resolve_version(dep, req).await?.ok_or_else(|| {
                            Error::Conflict {
                                root: id.to_string(),
                                explanation: format!("nothing matches {dep} {req}"),
                                trace: String::new(),
                            }
                        })?,
                    };
                if chosen.insert(dep.canonical(), pick.clone()).is_none() {
                    queue.push(pick.clone());
                }
                deps.push(pick);
            }
            nodes.insert(current, marketplace_core::GraphNode::new(meta, deps));
        }
        Ok(DependencyGraph::new(id.clone(), nodes))
    }
}

#[tokio::test]
async fn registry_that_resolves_yanked_versions_fails() {
    let report = broken_registry(ResolvesYanked).await;
    assert_caught(&report, "registry::resolve_version_skips_yanked");
    assert_caught(&report, "registry::model_random_operations");
}

#[tokio::test]
async fn registry_that_accepts_duplicates_fails() {
    let report = broken_registry(AcceptsDuplicates).await;
    assert_caught(&report, "registry::duplicate_version_rejected");
    assert_caught(&report, "registry::concurrent_duplicate_registration");
}

#[tokio::test]
async fn registry_with_gaps_in_its_event_log_fails() {
    assert_caught(
        &broken_registry(ForgetsEvents).await,
        "registry::events_log_every_mutation",
    );
}

#[tokio::test]
async fn registry_with_a_greedy_resolver_fails() {
    let report = broken_registry(GreedyResolver).await;
    assert_caught(&report, "registry::resolve_needs_backtracking");
}

async fn broken_store<O: StoreOverride + 'static>(fault: O) -> SuiteReport {
    let inner: Arc<dyn PackageStore> = Arc::new(MemoryPackageStore::new());
    let store = Layered::new(inner).with_override(fault);
    let mut caps = Capabilities::default();
    caps.bounded_upload_memory = false;
    store_suite(&store, &caps).await
}

/// Flips the first byte of everything it returns.
struct CorruptsBytes;

#[async_trait]
impl StoreOverride for CorruptsBytes {
    async fn get(&self, inner: &dyn PackageStore, hash: &ContentHash) -> Result<Bytes> {
        let bytes = inner.get(hash).await?;
        if bytes.is_empty() {
            return Ok(bytes);
        }
        let mut v = bytes.to_vec();
        v[0] ^= 0xff;
        Ok(v.into())
    }
}

/// Says it deleted, and keeps the object.
struct KeepsDeleted;

#[async_trait]
impl StoreOverride for KeepsDeleted {
    async fn delete(&self, inner: &dyn PackageStore, hash: &ContentHash) -> Result<bool> {
        inner.exists(hash).await
    }
}

#[tokio::test]
async fn store_that_returns_corrupted_bytes_fails() {
    assert_caught(&broken_store(CorruptsBytes).await, "store::store_then_get");
}

#[tokio::test]
async fn store_whose_delete_keeps_objects_fails() {
    let report = broken_store(KeepsDeleted).await;
    assert_caught(&report, "store::exists_and_delete");
    assert_caught(&report, "store::model_random_operations");
}

async fn broken_search<O: SearchOverride + 'static>(fault: O) -> SuiteReport {
    let inner: Arc<dyn SearchEngine> = Arc::new(MemorySearchEngine::new());
    let engine = Layered::new(inner).with_override(fault);
    search_suite(&engine, &Capabilities::default()).await
}

/// Removing does nothing.
struct RemoveIsNoop;

#[async_trait]
impl SearchOverride for RemoveIsNoop {
    async fn remove(&self, _inner: &dyn SearchEngine, _id: &PackageId) -> Result<()> {
        Ok(())
    }
}

/// Indexes every version as if it were not yanked.
struct ShowsYanked;

#[async_trait]
impl SearchOverride for ShowsYanked {
    async fn index(&self, inner: &dyn SearchEngine, record: &PackageRecord) -> Result<()> {
        let mut r = record.clone();
        r.yanked = None;
        inner.index(&r).await
    }
    async fn update(&self, inner: &dyn SearchEngine, record: &PackageRecord) -> Result<()> {
        self.index(inner, record).await
    }
}

#[tokio::test]
async fn search_whose_remove_is_a_noop_fails() {
    let report = broken_search(RemoveIsNoop).await;
    assert_caught(&report, "search::remove_deletes");
    assert_caught(&report, "search::model_random_operations");
}

#[tokio::test]
async fn search_that_shows_yanked_versions_fails() {
    assert_caught(
        &broken_search(ShowsYanked).await,
        "search::yanked_versions_hidden_by_default",
    );
}

/// Says every signature is valid: accepts tampered metadata.
struct AcceptsTampered;

#[async_trait]
impl CryptoOverride for AcceptsTampered {
    async fn verify_signature(
        &self,
        _inner: &dyn CryptoVerifier,
        _m: &PackageMetadata,
        s: &Signature,
    ) -> Result<VerificationResult> {
        Ok(VerificationResult::Valid { key_id: s.key_id() })
    }
}

#[tokio::test]
async fn crypto_that_verifies_a_tampered_signature_fails() {
    let inner: Arc<dyn CryptoVerifier> =
        Arc::new(marketplace_conformance::reference::MemoryCryptoVerifier::default());
    let crypto = Layered::new(inner).with_override(AcceptsTampered);
    let report = crypto_suite(&crypto, &Capabilities::default()).await;
    assert_caught(&report, "crypto::tampered_metadata_fails");
    assert_caught(&report, "crypto::wrong_key_fails");
}

/// Counters overwrite instead of adding up.
struct OverwritingCounters;

impl MetricsOverride for OverwritingCounters {
    fn counter(&self, inner: &dyn MetricsCollector, name: &str, value: u64, labels: Labels<'_>) {
        inner.gauge(name, value as f64, labels);
    }
}

#[tokio::test]
async fn metrics_whose_counters_overwrite_fail() {
    let inner: Arc<dyn MetricsCollector> = Arc::new(MemoryMetrics::new());
    let metrics = Layered::new(inner).with_override(OverwritingCounters);
    let report = metrics_suite(&metrics, &Capabilities::default()).await;
    assert_caught(&report, "metrics::counters_accumulate");
}

/// The wrapper itself changes nothing: every reference backend behind an unchanged layer passes
/// its whole suite, so a failure above is the fault's, not the wrapper's.
#[tokio::test]
async fn unchanged_layers_pass_every_suite() {
    let caps = Capabilities::default();
    let registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    registry_suite(&Layered::new(registry), &caps)
        .await
        .assert_passed();
    let memory = Arc::new(MemoryPackageStore::new());
    let mut store_caps = caps.clone().with_tamper(memory.clone());
    store_caps.bounded_upload_memory = false;
    let store: Arc<dyn PackageStore> = memory;
    store_suite(&Layered::new(store), &store_caps)
        .await
        .assert_passed();
    let search: Arc<dyn SearchEngine> = Arc::new(MemorySearchEngine::new());
    search_suite(&Layered::new(search), &caps)
        .await
        .assert_passed();
    let crypto: Arc<dyn CryptoVerifier> =
        Arc::new(marketplace_conformance::reference::MemoryCryptoVerifier::default());
    crypto_suite(&Layered::new(crypto), &caps)
        .await
        .assert_passed();
    let metrics: Arc<dyn MetricsCollector> = Arc::new(MemoryMetrics::new());
    metrics_suite(&Layered::new(metrics), &caps)
        .await
        .assert_passed();
}

/// Never answers `get`.
struct HangsOnGet;

#[async_trait]
impl RegistryOverride for HangsOnGet {
    async fn get(&self, _inner: &dyn Registry, _id: &PackageId) -> Result<PackageMetadata> {
        futures::future::pending().await
    }
}

#[tokio::test]
async fn a_hanging_backend_fails_the_check_that_waited_naming_it() {
    let inner: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    let registry = Layered::new(inner).with_override(HangsOnGet);
    let mut caps = Capabilities::default();
    caps.check_timeout = std::time::Duration::from_millis(300);
    caps.only = vec!["registry::register_then_get".into()];
    let report = registry_suite(&registry, &caps).await;
    assert_caught(&report, "registry::register_then_get");
    let failure = report.failures().next().expect("a failure");
    assert!(
        matches!(&failure.outcome, marketplace_conformance::Outcome::Failed(why) if why.contains("hung")),
        "{report}"
    );
}

#[tokio::test]
async fn checks_are_selected_by_name_and_prefix() {
    let mut caps = Capabilities::default();
    caps.only = vec![
        "registry::register_then_get".into(),
        "registry::yank*".into(),
    ];
    let report = registry_suite(&MemoryRegistry::new(), &caps).await;
    let ran: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| !matches!(c.outcome, marketplace_conformance::Outcome::Skipped(_)))
        .map(|c| c.name.as_str())
        .collect();
    assert!(ran.contains(&"registry::register_then_get"), "{ran:?}");
    assert!(
        ran.iter()
            .all(|n| *n == "registry::register_then_get" || n.starts_with("registry::yank")),
        "{ran:?}"
    );
    assert!(
        report.checks.len() > ran.len(),
        "the rest are reported as skipped"
    );
    report.assert_passed();
}
