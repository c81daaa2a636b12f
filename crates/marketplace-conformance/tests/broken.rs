//! Each suite fails a deliberately broken backend, naming the check that caught it.

mod support;

use std::time::Duration;

use bytes::Bytes;
use marketplace_conformance::reference::{
    MemoryMetrics, MemoryPackageStore, MemoryRegistry, MemorySearchEngine,
};
use marketplace_conformance::{
    Capabilities, SuiteReport, crypto_suite, metrics_suite, registry_suite, search_suite,
    store_suite,
};
use marketplace_core::semver::VersionReq;
use marketplace_core::{
    ByteStream, ContentHash, CryptoVerifier, Error, Facets, HashAlgorithm, IndexStats, Key, KeyId,
    KeyPair, Labels, MetadataUpdate, MetricsCollector, MetricsSnapshot, PackageId, PackageMetadata,
    PackageRecord, PackageRef, PackageStats, PackageStore, PrivateKey, PublicKey, Registry,
    RegistryEvent, Result, SearchEngine, SearchQuery, SearchResult, Signature, StorageMetadata,
    StorageStats, TrustLevel, TrustResult, TrustedKey, VerificationResult, async_trait,
};
use tokio::io::AsyncRead;

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

#[derive(Clone, Copy, PartialEq)]
enum RegistryFault {
    ResolvesYanked,
    AcceptsDuplicates,
    ForgetsEvents,
    GreedyResolver,
}

struct BrokenRegistry {
    inner: MemoryRegistry,
    fault: RegistryFault,
}

#[async_trait]
impl Registry for BrokenRegistry {
    async fn register(&self, m: PackageMetadata, h: ContentHash) -> Result<PackageId> {
        let id = m.id.clone();
        match self.inner.register(m, h).await {
            Err(Error::AlreadyExists { .. }) if self.fault == RegistryFault::AcceptsDuplicates => {
                Ok(id)
            }
            other => other,
        }
    }
    async fn get(&self, id: &PackageId) -> Result<PackageMetadata> {
        self.inner.get(id).await
    }
    async fn list_version_states(
        &self,
        p: &PackageRef,
    ) -> Result<Vec<marketplace_core::VersionState>> {
        self.inner.list_version_states(p).await
    }
    async fn resolve_version(&self, p: &PackageRef, req: &VersionReq) -> Result<Option<PackageId>> {
        if self.fault != RegistryFault::ResolvesYanked {
            return self.inner.resolve_version(p, req).await;
        }
        let versions = match self.inner.list_versions(p).await {
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
    async fn resolve_dependencies(
        &self,
        id: &PackageId,
        transitive: bool,
    ) -> Result<marketplace_core::DependencyGraph> {
        if self.fault != RegistryFault::GreedyResolver {
            return self.inner.resolve_dependencies(id, transitive).await;
        }
        // Highest version first, no backtracking: the classic defect.
        let mut nodes = std::collections::BTreeMap::new();
        let mut queue = vec![id.clone()];
        let mut chosen: std::collections::HashMap<String, PackageId> =
            std::collections::HashMap::new();
        while let Some(current) = queue.pop() {
            let meta = self.inner.get(&current).await?;
            let mut deps = Vec::new();
            for (dep, req) in &meta.dependencies {
                let pick = match chosen.get(&dep.canonical()) {
                    Some(existing) if req.matches(&existing.version) => existing.clone(),
                    Some(existing) => {
                        return Err(Error::Conflict {
                            root: id.to_string(),
                            explanation: format!("{dep} {req} clashes with {existing}"),
                        });
                    }
                    None => self.inner.resolve_version(dep, req).await?.ok_or_else(|| {
                        Error::Conflict {
                            root: id.to_string(),
                            explanation: format!("nothing matches {dep} {req}"),
                        }
                    })?,
                };
                if chosen.insert(dep.canonical(), pick.clone()).is_none() {
                    queue.push(pick.clone());
                }
                deps.push(pick);
            }
            nodes.insert(
                current,
                marketplace_core::GraphNode {
                    metadata: meta,
                    dependencies: deps,
                },
            );
        }
        Ok(marketplace_core::DependencyGraph {
            root: id.clone(),
            nodes,
        })
    }
    async fn update_metadata(&self, id: &PackageId, u: MetadataUpdate) -> Result<PackageMetadata> {
        self.inner.update_metadata(id, u).await
    }
    async fn yank(&self, id: &PackageId, reason: &str) -> Result<()> {
        self.inner.yank(id, reason).await
    }
    async fn unyank(&self, id: &PackageId) -> Result<()> {
        self.inner.unyank(id).await
    }
    async fn is_yanked(&self, id: &PackageId) -> Result<bool> {
        self.inner.is_yanked(id).await
    }
    async fn list_by_author(&self, a: &str, l: usize, o: usize) -> Result<Vec<PackageRecord>> {
        self.inner.list_by_author(a, l, o).await
    }
    async fn list(&self, l: usize, o: usize) -> Result<Vec<PackageRecord>> {
        self.inner.list(l, o).await
    }
    async fn get_stats(&self, id: &PackageId) -> Result<PackageStats> {
        self.inner.get_stats(id).await
    }
    async fn record_download(&self, id: &PackageId) -> Result<()> {
        self.inner.record_download(id).await
    }
    async fn events_since(&self, after: u64, limit: usize) -> Result<Vec<RegistryEvent>> {
        let events = self.inner.events_since(after, limit).await?;
        if self.fault == RegistryFault::ForgetsEvents {
            // Drops every yank event: an audit log with holes.
            return Ok(events
                .into_iter()
                .filter(|e| !matches!(e.kind, marketplace_core::EventKind::Yanked { .. }))
                .collect());
        }
        Ok(events)
    }
}

async fn broken_registry(fault: RegistryFault) -> SuiteReport {
    let registry = BrokenRegistry {
        inner: MemoryRegistry::new(),
        fault,
    };
    registry_suite(&registry, &Capabilities::default()).await
}

#[tokio::test]
async fn registry_that_resolves_yanked_versions_fails() {
    let report = broken_registry(RegistryFault::ResolvesYanked).await;
    assert_caught(&report, "registry::resolve_version_skips_yanked");
    assert_caught(&report, "registry::model_random_operations");
}

#[tokio::test]
async fn registry_that_accepts_duplicates_fails() {
    let report = broken_registry(RegistryFault::AcceptsDuplicates).await;
    assert_caught(&report, "registry::duplicate_version_rejected");
    assert_caught(&report, "registry::concurrent_duplicate_registration");
}

#[tokio::test]
async fn registry_with_gaps_in_its_event_log_fails() {
    assert_caught(
        &broken_registry(RegistryFault::ForgetsEvents).await,
        "registry::events_log_every_mutation",
    );
}

#[tokio::test]
async fn registry_with_a_greedy_resolver_fails() {
    let report = broken_registry(RegistryFault::GreedyResolver).await;
    assert_caught(&report, "registry::resolve_needs_backtracking");
}

#[derive(Clone, Copy, PartialEq)]
enum StoreFault {
    CorruptsBytes,
    KeepsDeleted,
}

struct BrokenStore {
    inner: MemoryPackageStore,
    fault: StoreFault,
}

#[async_trait]
impl PackageStore for BrokenStore {
    async fn store(&self, bytes: Bytes) -> Result<ContentHash> {
        self.inner.store(bytes).await
    }
    async fn get(&self, hash: &ContentHash) -> Result<Bytes> {
        let bytes = self.inner.get(hash).await?;
        if self.fault == StoreFault::CorruptsBytes && !bytes.is_empty() {
            let mut v = bytes.to_vec();
            v[0] ^= 0xff;
            return Ok(v.into());
        }
        Ok(bytes)
    }
    async fn stream(&self, hash: &ContentHash) -> Result<ByteStream> {
        self.inner.stream(hash).await
    }
    async fn upload_stream(
        &self,
        r: Box<dyn AsyncRead + Send + Unpin>,
        hint: Option<u64>,
    ) -> Result<ContentHash> {
        self.inner.upload_stream(r, hint).await
    }
    async fn exists(&self, hash: &ContentHash) -> Result<bool> {
        self.inner.exists(hash).await
    }
    async fn delete(&self, hash: &ContentHash) -> Result<bool> {
        if self.fault == StoreFault::KeepsDeleted {
            return self.inner.exists(hash).await;
        }
        self.inner.delete(hash).await
    }
    async fn metadata(&self, hash: &ContentHash) -> Result<StorageMetadata> {
        self.inner.metadata(hash).await
    }
    async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<ContentHash>> {
        self.inner.list(prefix, limit).await
    }
    async fn stats(&self) -> Result<StorageStats> {
        self.inner.stats().await
    }
}

#[tokio::test]
async fn store_that_returns_corrupted_bytes_fails() {
    let store = BrokenStore {
        inner: MemoryPackageStore::new(),
        fault: StoreFault::CorruptsBytes,
    };
    assert_caught(
        &store_suite(&store, &Capabilities::default()).await,
        "store::store_then_get",
    );
}

#[tokio::test]
async fn store_whose_delete_keeps_objects_fails() {
    let store = BrokenStore {
        inner: MemoryPackageStore::new(),
        fault: StoreFault::KeepsDeleted,
    };
    let report = store_suite(&store, &Capabilities::default()).await;
    assert_caught(&report, "store::exists_and_delete");
    assert_caught(&report, "store::model_random_operations");
}

#[derive(Clone, Copy, PartialEq)]
enum SearchFault {
    RemoveIsNoop,
    ShowsYanked,
}

struct BrokenSearch {
    inner: MemorySearchEngine,
    fault: SearchFault,
}

#[async_trait]
impl SearchEngine for BrokenSearch {
    async fn index(&self, record: &PackageRecord) -> Result<()> {
        if self.fault == SearchFault::ShowsYanked {
            let mut r = record.clone();
            r.yanked = None;
            return self.inner.index(&r).await;
        }
        self.inner.index(record).await
    }
    async fn remove(&self, id: &PackageId) -> Result<()> {
        if self.fault == SearchFault::RemoveIsNoop {
            return Ok(());
        }
        self.inner.remove(id).await
    }
    async fn search(&self, q: &SearchQuery) -> Result<Vec<SearchResult>> {
        self.inner.search(q).await
    }
    async fn suggest(&self, prefix: &str, limit: usize) -> Result<Vec<PackageRef>> {
        self.inner.suggest(prefix, limit).await
    }
    async fn facets(&self, q: &SearchQuery) -> Result<Facets> {
        self.inner.facets(q).await
    }
    async fn similar(&self, id: &PackageId, limit: usize) -> Result<Vec<SearchResult>> {
        self.inner.similar(id, limit).await
    }
    async fn rebuild(
        &self,
        records: Box<dyn Iterator<Item = PackageRecord> + Send>,
    ) -> Result<u64> {
        self.inner.rebuild(records).await
    }
    async fn optimize(&self) -> Result<()> {
        self.inner.optimize().await
    }
    async fn stats(&self) -> Result<IndexStats> {
        self.inner.stats().await
    }
}

#[tokio::test]
async fn search_whose_remove_is_a_noop_fails() {
    let engine = BrokenSearch {
        inner: MemorySearchEngine::new(),
        fault: SearchFault::RemoveIsNoop,
    };
    let report = search_suite(&engine, &Capabilities::default()).await;
    assert_caught(&report, "search::remove_deletes");
    assert_caught(&report, "search::model_random_operations");
}

#[tokio::test]
async fn search_that_shows_yanked_versions_fails() {
    let engine = BrokenSearch {
        inner: MemorySearchEngine::new(),
        fault: SearchFault::ShowsYanked,
    };
    assert_caught(
        &search_suite(&engine, &Capabilities::default()).await,
        "search::yanked_versions_hidden_by_default",
    );
}

/// Says every signature is valid: accepts tampered metadata.
struct AcceptsTampered(support::DalekCryptoVerifier);

#[async_trait]
impl CryptoVerifier for AcceptsTampered {
    async fn generate_keypair(&self) -> Result<KeyPair> {
        self.0.generate_keypair().await
    }
    async fn sign(&self, m: &PackageMetadata, k: &PrivateKey) -> Result<Signature> {
        self.0.sign(m, k).await
    }
    async fn verify_signature(
        &self,
        _m: &PackageMetadata,
        s: &Signature,
    ) -> Result<VerificationResult> {
        Ok(VerificationResult::Valid { key_id: s.key_id() })
    }
    async fn checksum(&self, b: &[u8], a: HashAlgorithm) -> Result<ContentHash> {
        self.0.checksum(b, a).await
    }
    async fn add_trusted_key(&self, k: &PublicKey, l: TrustLevel) -> Result<()> {
        self.0.add_trusted_key(k, l).await
    }
    async fn revoke_key(&self, k: &KeyId, r: &str) -> Result<()> {
        self.0.revoke_key(k, r).await
    }
    async fn is_revoked(&self, k: &KeyId) -> Result<bool> {
        self.0.is_revoked(k).await
    }
    async fn verify_trust(&self, k: &KeyId) -> Result<TrustResult> {
        self.0.verify_trust(k).await
    }
    async fn trusted_keys(&self) -> Result<Vec<TrustedKey>> {
        self.0.trusted_keys().await
    }
    fn import_key_pem(&self, pem: &str) -> Result<Key> {
        self.0.import_key_pem(pem)
    }
    fn export_key_pem(&self, key: &Key) -> Result<String> {
        self.0.export_key_pem(key)
    }
}

#[tokio::test]
async fn crypto_that_verifies_a_tampered_signature_fails() {
    let report = crypto_suite(
        &AcceptsTampered(support::DalekCryptoVerifier::default()),
        &Capabilities::default(),
    )
    .await;
    assert_caught(&report, "crypto::tampered_metadata_fails");
    assert_caught(&report, "crypto::wrong_key_fails");
}

/// Counters overwrite instead of adding up.
struct OverwritingCounters(MemoryMetrics);

impl MetricsCollector for OverwritingCounters {
    fn counter(&self, name: &str, value: u64, labels: Labels<'_>) {
        self.0.gauge(name, value as f64, labels);
    }
    fn gauge(&self, name: &str, value: f64, labels: Labels<'_>) {
        self.0.gauge(name, value, labels)
    }
    fn histogram(&self, name: &str, value: f64, labels: Labels<'_>) {
        self.0.histogram(name, value, labels)
    }
    fn timing(&self, name: &str, d: Duration, labels: Labels<'_>) {
        self.0.timing(name, d, labels)
    }
    fn snapshot(&self) -> MetricsSnapshot {
        self.0.snapshot()
    }
    fn reset(&self) {
        self.0.reset()
    }
    fn export_prometheus(&self) -> Result<String> {
        self.0.export_prometheus()
    }
}

#[tokio::test]
async fn metrics_whose_counters_overwrite_fail() {
    let report = metrics_suite(
        &OverwritingCounters(MemoryMetrics::new()),
        &Capabilities::default(),
    )
    .await;
    assert_caught(&report, "metrics::counters_accumulate");
}
