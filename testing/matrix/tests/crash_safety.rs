//! Fault injection: every backend call of a publish fails in turn (the Nth call across all four
//! backends), and the crash-safety invariants hold after each failure:
//! - a registered version always has its bytes in the store;
//! - a failed publish leaves at most an orphaned blob, which `gc` removes;
//! - a version that was registered but not indexed becomes searchable after `rebuild_index`;
//! - publishing again after the failure completes the package.
//!
//! Transient failures are also injected at every step: retries make each publish succeed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use marketplace_client::{
    ArchiveLimits, MarketplaceBuilder, MarketplaceClient, RetryPolicy, pack_dir,
};
use marketplace_conformance::layer::{Call, FailAt, Layered};
use marketplace_core::semver::VersionReq;
use marketplace_core::{KeyPair, PackageId, PackageRef, SearchQuery, TrustLevel};

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

/// A marketplace whose four backends answer to `plan` (the kit's fault-injecting hook), with a
/// trusted key (set up unarmed).
async fn market(dir: &std::path::Path, plan: &Arc<FailAt>) -> (MarketplaceClient, KeyPair) {
    let client = MarketplaceBuilder::local(dir)
        .unwrap()
        .map_registry(|r| Arc::new(Layered::new(r).hook(plan.clone())))
        .map_store(|s| Arc::new(Layered::new(s).hook(plan.clone())))
        .map_search(|s| Arc::new(Layered::new(s).hook(plan.clone())))
        .map_crypto(|c| Arc::new(Layered::new(c).hook(plan.clone())))
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

fn plan(fail_at: usize, transient: bool) -> Arc<FailAt> {
    Arc::new(FailAt::new(fail_at, transient))
}

/// The calls that bring download totals into the index (after the events).
const DOWNLOAD_STEPS: [&str; 3] = [
    "search.downloads_position",
    "registry.downloads_since",
    "search.apply_downloads",
];

/// How many backend calls one clean publish makes.
async fn calls_per_publish() -> (usize, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(0, false);
    let (client, key) = market(dir.path(), &plan).await;
    plan.arm();
    client
        .publish(package("1.0.0"), &key.private_key)
        .await
        .unwrap();
    let log: Vec<String> = plan.log().iter().map(Call::to_string).collect();
    (log.len(), log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_at_any_step_of_publish_keeps_the_invariants() {
    let (total, steps) = calls_per_publish().await;
    assert!(
        steps.iter().any(|s| s == "store.store")
            && steps.iter().any(|s| s == "registry.register")
            && steps.iter().any(|s| s == "search.apply_feed"),
        "publish touches every backend: {steps:?}"
    );
    let registered_at = steps
        .iter()
        .position(|s| s == "registry.register")
        .expect("a registration");
    for n in 1..=total {
        let step = &steps[n - 1];
        let context = format!("failure at call {n} ({step})");
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(n, false);
        let (client, key) = market(dir.path(), &plan).await;
        plan.arm();
        let result = client.publish(package("1.0.0"), &key.private_key).await;
        plan.disarm();

        let id: PackageId = "faults/sturdy@1.0.0".parse().unwrap();
        let registered = registered_have_bytes(&client, &context).await;
        match &result {
            Ok(published) if DOWNLOAD_STEPS.contains(&step.as_str()) => {
                // Download totals follow after the events: a failure there leaves them to the
                // next follow, and the version is indexed all the same.
                assert!(published.indexed, "{context}: reported as not indexed");
                assert_eq!(registered, vec![id.clone()], "{context}");
                let hits = client.search(&SearchQuery::text("sturdy")).await.unwrap();
                assert_eq!(hits.len(), 1, "{context}: not searchable");
            }
            Ok(published) => {
                // Only a failure after registration (following the feed into the index) is
                // absorbed.
                assert!(n - 1 > registered_at, "{context}: publish succeeded");
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
        let plan = plan(n, true);
        let (client, key) = market(dir.path(), &plan).await;
        plan.arm();
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
    let plan = plan(1, false);
    let (client, key) = market(dir.path(), &plan).await;
    plan.arm();
    assert!(
        client
            .publish(package("1.0.0"), &key.private_key)
            .await
            .is_err()
    );
    assert_eq!(plan.log().len(), 1, "a permanent error was retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_after_a_failed_download_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(0, false);
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
    plan.arm();
    client.install(&package, &req, &clean).await.unwrap();
    plan.disarm();
    let total = plan.log().len();
    // The index directory admits one writer: close this client before reopening the directory.
    drop(client);
    for n in 1..=total {
        let failing = self::plan(n, false);
        let (faulty, _) = market(dir.path(), &failing).await;
        let dest = dest_root.path().join(format!("dest-{n}"));
        failing.arm();
        let result = faulty.install(&package, &req, &dest).await;
        let step = failing.log()[n - 1].to_string();
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
