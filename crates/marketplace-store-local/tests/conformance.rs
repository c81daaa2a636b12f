//! The full PackageStore suite against a local directory and memory, each with a way to
//! corrupt objects beneath the store.

use std::sync::Arc;

use bytes::Bytes;
use marketplace_conformance::{Capabilities, Tamper, store_suite};
use marketplace_core::{ContentHash, PackageStore, async_trait};
use marketplace_store_local::LocalPackageStore;

/// Corrupts objects by writing past the store's verification, as a failing disk would.
struct Beneath(LocalPackageStore);

#[async_trait]
impl Tamper for Beneath {
    async fn replace(&self, hash: &ContentHash, bytes: Bytes) -> Result<(), String> {
        self.0
            .overwrite_unverified(hash, bytes)
            .await
            .map_err(|e| e.to_string())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let local = LocalPackageStore::open(&path).expect("local store");
    let caps = Capabilities::default()
        .with_tamper(Beneath(local.clone()))
        .with_store_reopen(move || {
            LocalPackageStore::open(&path)
                .map(|s| Arc::new(s) as Arc<dyn PackageStore>)
                .map_err(|e| e.to_string())
        });
    let report = store_suite(&local, &caps).await.named("local");
    println!("local directory: {report}");
    report.assert_passed();

    let memory = LocalPackageStore::in_memory();
    let mut caps = Capabilities::default().with_tamper(Beneath(memory.clone()));
    // Its objects live in memory: an upload cannot be bounded by less than the body.
    caps.bounded_upload_memory = false;
    let report = store_suite(&memory, &caps).await.named("memory");
    println!("in memory: {report}");
    report.assert_passed();
}
