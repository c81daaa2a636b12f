//! Fault injection: every backend call of a publish fails in turn (the Nth call across all four
//! backends), and the crash-safety invariants hold after each failure:
//! - a registered version always has its bytes in the store;
//! - a failed publish leaves at most an orphaned blob, which `gc` removes;
//! - a version that was registered but not indexed becomes searchable after `rebuild_index`;
//! - publishing again after the failure completes the package.
//!
//! Transient failures are also injected at every step: retries make each publish succeed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use marketplace_client::{
    ArchiveLimits, MarketplaceBuilder, MarketplaceClient, RetryPolicy, pack_dir,
};
use marketplace_core::semver::VersionReq;
use marketplace_core::{
    ByteStream, ContentHash, CryptoVerifier, Error, HashAlgorithm, Key, KeyId, KeyPair,
    MetadataUpdate, PackageId, PackageMetadata, PackageRecord, PackageRef, PackageStats,
    PackageStore, PrivateKey, PublicKey, Registry, RegistryEvent, Result, SearchEngine,
    SearchQuery, SearchResult, Signature, StorageMetadata, StorageStats, TrustLevel, TrustResult,
    TrustedKey, VerificationResult, VersionState,
};
use marketplace_core::{Facets, IndexStats};

/// Which call fails, and how.
struct Plan {
    armed: AtomicBool,
    calls: AtomicUsize,
    fail_at: usize,
    transient: bool,
    log: Mutex<Vec<String>>,
}

impl Plan {
    fn new(fail_at: usize, transient: bool) -> Arc<Self> {
        Arc::new(Plan {
            armed: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
            fail_at,
            transient,
            log: Mutex::new(Vec::new()),
        })
    }

    /// Counts a call; fails it if it is the chosen one.
    fn step(&self, call: &str) -> Result<()> {
        if !self.armed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.log.lock().unwrap().push(call.to_owned());
        if n == self.fail_at {
            return Err(Error::backend(
                "fault-injection",
                call.to_owned(),
                format!("injected failure at call {n}"),
                self.transient,
            ));
        }
        Ok(())
    }
}

struct FaultyRegistry(Arc<dyn Registry>, Arc<Plan>);
struct FaultyStore(Arc<dyn PackageStore>, Arc<Plan>);
struct FaultySearch(Arc<dyn SearchEngine>, Arc<Plan>);
struct FaultyCrypto(Arc<dyn CryptoVerifier>, Arc<Plan>);

#[async_trait]
impl Registry for FaultyRegistry {
    async fn register(&self, metadata: PackageMetadata, hash: ContentHash) -> Result<PackageId> {
        self.1.step("registry.register")?;
        self.0.register(metadata, hash).await
    }
    async fn get(&self, id: &PackageId) -> Result<PackageMetadata> {
        self.1.step("registry.get")?;
        self.0.get(id).await
    }
    async fn list_version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        self.1.step("registry.list_version_states")?;
        self.0.list_version_states(package).await
    }
    async fn update_metadata(&self, id: &PackageId, u: MetadataUpdate) -> Result<PackageMetadata> {
        self.1.step("registry.update_metadata")?;
        self.0.update_metadata(id, u).await
    }
    async fn yank(&self, id: &PackageId, reason: &str) -> Result<()> {
        self.1.step("registry.yank")?;
        self.0.yank(id, reason).await
    }
    async fn unyank(&self, id: &PackageId) -> Result<()> {
        self.1.step("registry.unyank")?;
        self.0.unyank(id).await
    }
    async fn is_yanked(&self, id: &PackageId) -> Result<bool> {
        self.1.step("registry.is_yanked")?;
        self.0.is_yanked(id).await
    }
    async fn list_by_author(&self, a: &str, l: usize, o: usize) -> Result<Vec<PackageRecord>> {
        self.1.step("registry.list_by_author")?;
        self.0.list_by_author(a, l, o).await
    }
    async fn list(&self, limit: usize, offset: usize) -> Result<Vec<PackageRecord>> {
        self.1.step("registry.list")?;
        self.0.list(limit, offset).await
    }
    async fn get_stats(&self, id: &PackageId) -> Result<PackageStats> {
        self.1.step("registry.get_stats")?;
        self.0.get_stats(id).await
    }
    async fn record_download(&self, id: &PackageId) -> Result<()> {
        self.1.step("registry.record_download")?;
        self.0.record_download(id).await
    }
    async fn events_since(&self, after: u64, limit: usize) -> Result<Vec<RegistryEvent>> {
        self.1.step("registry.events_since")?;
        self.0.events_since(after, limit).await
    }
}

#[async_trait]
impl PackageStore for FaultyStore {
    async fn store(&self, bytes: Bytes) -> Result<ContentHash> {
        self.1.step("store.store")?;
        self.0.store(bytes).await
    }
    async fn get(&self, hash: &ContentHash) -> Result<Bytes> {
        self.1.step("store.get")?;
        self.0.get(hash).await
    }
    async fn stream(&self, hash: &ContentHash) -> Result<ByteStream> {
        self.1.step("store.stream")?;
        self.0.stream(hash).await
    }
    async fn upload_stream(
        &self,
        reader: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
        size_hint: Option<u64>,
    ) -> Result<ContentHash> {
        self.1.step("store.upload_stream")?;
        self.0.upload_stream(reader, size_hint).await
    }
    async fn exists(&self, hash: &ContentHash) -> Result<bool> {
        self.1.step("store.exists")?;
        self.0.exists(hash).await
    }
    async fn delete(&self, hash: &ContentHash) -> Result<bool> {
        self.1.step("store.delete")?;
        self.0.delete(hash).await
    }
    async fn metadata(&self, hash: &ContentHash) -> Result<StorageMetadata> {
        self.1.step("store.metadata")?;
        self.0.metadata(hash).await
    }
    async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<ContentHash>> {
        self.1.step("store.list")?;
        self.0.list(prefix, limit).await
    }
    async fn stats(&self) -> Result<StorageStats> {
        self.1.step("store.stats")?;
        self.0.stats().await
    }
}

#[async_trait]
impl SearchEngine for FaultySearch {
    async fn index(&self, record: &PackageRecord) -> Result<()> {
        self.1.step("search.index")?;
        self.0.index(record).await
    }
    async fn remove(&self, id: &PackageId) -> Result<()> {
        self.1.step("search.remove")?;
        self.0.remove(id).await
    }
    async fn search(&self, query: &SearchQuery) -> Result<Vec<SearchResult>> {
        self.1.step("search.search")?;
        self.0.search(query).await
    }
    async fn suggest(&self, prefix: &str, limit: usize) -> Result<Vec<PackageRef>> {
        self.1.step("search.suggest")?;
        self.0.suggest(prefix, limit).await
    }
    async fn facets(&self, query: &SearchQuery) -> Result<Facets> {
        self.1.step("search.facets")?;
        self.0.facets(query).await
    }
    async fn similar(&self, id: &PackageId, limit: usize) -> Result<Vec<SearchResult>> {
        self.1.step("search.similar")?;
        self.0.similar(id, limit).await
    }
    async fn rebuild(
        &self,
        records: Box<dyn Iterator<Item = PackageRecord> + Send>,
    ) -> Result<u64> {
        self.1.step("search.rebuild")?;
        self.0.rebuild(records).await
    }
    async fn optimize(&self) -> Result<()> {
        self.1.step("search.optimize")?;
        self.0.optimize().await
    }
    async fn stats(&self) -> Result<IndexStats> {
        self.1.step("search.stats")?;
        self.0.stats().await
    }
}

#[async_trait]
impl CryptoVerifier for FaultyCrypto {
    async fn generate_keypair(&self) -> Result<KeyPair> {
        self.1.step("crypto.generate_keypair")?;
        self.0.generate_keypair().await
    }
    async fn sign(&self, metadata: &PackageMetadata, key: &PrivateKey) -> Result<Signature> {
        self.1.step("crypto.sign")?;
        self.0.sign(metadata, key).await
    }
    async fn verify_signature(
        &self,
        metadata: &PackageMetadata,
        signature: &Signature,
    ) -> Result<VerificationResult> {
        self.1.step("crypto.verify_signature")?;
        self.0.verify_signature(metadata, signature).await
    }
    async fn checksum(&self, bytes: &[u8], algorithm: HashAlgorithm) -> Result<ContentHash> {
        self.1.step("crypto.checksum")?;
        self.0.checksum(bytes, algorithm).await
    }
    async fn add_trusted_key(&self, key: &PublicKey, level: TrustLevel) -> Result<()> {
        self.1.step("crypto.add_trusted_key")?;
        self.0.add_trusted_key(key, level).await
    }
    async fn revoke_key(&self, key_id: &KeyId, reason: &str) -> Result<()> {
        self.1.step("crypto.revoke_key")?;
        self.0.revoke_key(key_id, reason).await
    }
    async fn is_revoked(&self, key_id: &KeyId) -> Result<bool> {
        self.1.step("crypto.is_revoked")?;
        self.0.is_revoked(key_id).await
    }
    async fn verify_trust(&self, key_id: &KeyId) -> Result<TrustResult> {
        self.1.step("crypto.verify_trust")?;
        self.0.verify_trust(key_id).await
    }
    async fn trusted_keys(&self) -> Result<Vec<TrustedKey>> {
        self.1.step("crypto.trusted_keys")?;
        self.0.trusted_keys().await
    }
    fn import_key_pem(&self, pem: &str) -> Result<Key> {
        self.0.import_key_pem(pem)
    }
    fn export_key_pem(&self, key: &Key) -> Result<String> {
        self.0.export_key_pem(key)
    }
}

fn package(version: &str) -> Bytes {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("marketplace.toml"),
        format!(
            "[package]\nname = \"sturdy\"\nnamespace = \"faults\"\nversion = \"{version}\"\ndescription = \"Survives injected failures\"\nlicense = \"MIT\"\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("data.txt"), "payload").unwrap();
    pack_dir(dir.path(), &ArchiveLimits::default())
        .unwrap()
        .archive()
        .clone()
}

/// A marketplace whose four backends answer to `plan`, with a trusted key (set up unarmed).
async fn market(dir: &std::path::Path, plan: &Arc<Plan>) -> (MarketplaceClient, KeyPair) {
    let client = MarketplaceBuilder::local(dir)
        .unwrap()
        .map_registry(|r| Arc::new(FaultyRegistry(r, Arc::clone(plan))))
        .map_store(|s| Arc::new(FaultyStore(s, Arc::clone(plan))))
        .map_search(|s| Arc::new(FaultySearch(s, Arc::clone(plan))))
        .map_crypto(|c| Arc::new(FaultyCrypto(c, Arc::clone(plan))))
        .retry(RetryPolicy::new(3, Duration::from_millis(1)))
        .build()
        .unwrap();
    let key = client.crypto().generate_keypair().await.unwrap();
    client
        .crypto()
        .add_trusted_key(&key.public_key, TrustLevel::Full)
        .await
        .unwrap();
    (client, key)
}

/// Every registered version has its bytes; returns the registered ids.
async fn registered_have_bytes(client: &MarketplaceClient, context: &str) -> Vec<PackageId> {
    let records = client.registry().list(100, 0).await.unwrap();
    for r in &records {
        assert!(
            client.store().exists(&r.metadata.checksum).await.unwrap(),
            "{context}: {} is registered but its bytes are missing",
            r.metadata.id
        );
    }
    records.into_iter().map(|r| r.metadata.id).collect()
}

/// How many backend calls one clean publish makes.
async fn calls_per_publish() -> (usize, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let plan = Plan::new(0, false);
    let (client, key) = market(dir.path(), &plan).await;
    plan.armed.store(true, Ordering::SeqCst);
    client
        .publish(package("1.0.0"), &key.private_key)
        .await
        .unwrap();
    let log = plan.log.lock().unwrap().clone();
    (log.len(), log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_at_any_step_of_publish_keeps_the_invariants() {
    let (total, steps) = calls_per_publish().await;
    assert!(
        steps.iter().any(|s| s == "store.store")
            && steps.iter().any(|s| s == "registry.register")
            && steps.iter().any(|s| s == "search.index"),
        "publish touches every backend: {steps:?}"
    );
    for n in 1..=total {
        let step = &steps[n - 1];
        let context = format!("failure at call {n} ({step})");
        let dir = tempfile::tempdir().unwrap();
        let plan = Plan::new(n, false);
        let (client, key) = market(dir.path(), &plan).await;
        plan.armed.store(true, Ordering::SeqCst);
        let result = client.publish(package("1.0.0"), &key.private_key).await;
        plan.armed.store(false, Ordering::SeqCst);

        let id: PackageId = "faults/sturdy@1.0.0".parse().unwrap();
        let registered = registered_have_bytes(&client, &context).await;
        match &result {
            Ok(published) => {
                // Only a failure after registration (the index) is absorbed.
                assert_eq!(step, "search.index", "{context}: publish succeeded");
                assert!(!published.indexed, "{context}: reported as indexed");
                assert_eq!(registered, vec![id.clone()], "{context}");
                let hits = client.search(&SearchQuery::text("sturdy")).await.unwrap();
                assert!(hits.is_empty(), "{context}: indexed after all");
                assert_eq!(client.rebuild_index().await.unwrap(), 1, "{context}");
                let hits = client.search(&SearchQuery::text("sturdy")).await.unwrap();
                assert_eq!(
                    hits.len(),
                    1,
                    "{context}: rebuild_index did not repair the index"
                );
            }
            Err(e) => {
                assert!(
                    e.to_string().contains("injected failure"),
                    "{context}: unexpected error {e}"
                );
                assert!(
                    registered.is_empty(),
                    "{context}: a failed publish registered {registered:?}"
                );
                let gc = client.gc(Duration::ZERO).await.unwrap();
                let stats = client.store().stats().await.unwrap();
                assert_eq!(stats.objects, 0, "{context}: gc left {gc:?}");
                // The publisher tries again and the package is complete.
                let again = client
                    .publish(package("1.0.0"), &key.private_key)
                    .await
                    .unwrap_or_else(|e| panic!("{context}: publishing again failed: {e}"));
                assert!(again.indexed, "{context}");
                client.verify(&again.id).await.unwrap();
                let hits = client.search(&SearchQuery::text("sturdy")).await.unwrap();
                assert_eq!(hits.len(), 1, "{context}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_and_others_are_not() {
    let (total, steps) = calls_per_publish().await;
    for n in 1..=total {
        let context = format!("transient failure at call {n} ({})", steps[n - 1]);
        let dir = tempfile::tempdir().unwrap();
        let plan = Plan::new(n, true);
        let (client, key) = market(dir.path(), &plan).await;
        plan.armed.store(true, Ordering::SeqCst);
        let published = client
            .publish(package("1.0.0"), &key.private_key)
            .await
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        assert!(published.indexed, "{context}");
        let retries = client.metrics().unwrap().snapshot();
        assert!(
            retries
                .samples
                .iter()
                .any(|s| s.name == marketplace_client::RETRIES_TOTAL),
            "{context}: no retry was counted"
        );
    }
    // A permanent error is not retried: exactly one call fails and publish gives up.
    let dir = tempfile::tempdir().unwrap();
    let plan = Plan::new(1, false);
    let (client, key) = market(dir.path(), &plan).await;
    plan.armed.store(true, Ordering::SeqCst);
    assert!(
        client
            .publish(package("1.0.0"), &key.private_key)
            .await
            .is_err()
    );
    assert_eq!(
        plan.log.lock().unwrap().len(),
        1,
        "a permanent error was retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_after_a_failed_download_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Plan::new(0, false);
    let (client, key) = market(dir.path(), &plan).await;
    client
        .publish(package("1.0.0"), &key.private_key)
        .await
        .unwrap();
    let package: PackageRef = "faults/sturdy".parse().unwrap();
    let req = VersionReq::parse("^1").unwrap();
    // Fail each call of an install in turn: the destination stays empty.
    let dest_root = tempfile::tempdir().unwrap();
    let clean = dest_root.path().join("clean");
    plan.armed.store(true, Ordering::SeqCst);
    client.install(&package, &req, &clean).await.unwrap();
    plan.armed.store(false, Ordering::SeqCst);
    let total = plan.calls.load(Ordering::SeqCst);
    // The index directory admits one writer: close this client before reopening the directory.
    drop(client);
    for n in 1..=total {
        let failing = Plan::new(n, false);
        let (faulty, _) = market(dir.path(), &failing).await;
        let dest = dest_root.path().join(format!("dest-{n}"));
        failing.armed.store(true, Ordering::SeqCst);
        let result = faulty.install(&package, &req, &dest).await;
        let step = failing.log.lock().unwrap()[n - 1].clone();
        match result {
            Err(_) => assert!(
                std::fs::read_dir(&dest).map_or(true, |mut d| d.next().is_none()),
                "failure at call {n} ({step}) left files in the destination"
            ),
            // Counting a download is statistics: its failure does not fail the install.
            Ok(_) => assert_eq!(step, "registry.record_download", "call {n}"),
        }
    }
}
