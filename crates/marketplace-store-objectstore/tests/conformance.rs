//! The full PackageStore suite against object_store's local directory and memory backends and
//! a real S3-compatible server, each with a way to corrupt objects beneath the store.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use marketplace_conformance::{Capabilities, Tamper, store_suite};
use marketplace_core::{ContentHash, PackageStore, async_trait};
use marketplace_store_objectstore::ObjectStorePackageStore;

/// Corrupts objects by writing past the store's verification, as a failing disk would.
struct Beneath(ObjectStorePackageStore);

#[async_trait]
impl Tamper for Beneath {
    async fn replace(&self, hash: &ContentHash, bytes: Bytes) -> Result<(), String> {
        self.0
            .overwrite_unverified(hash, bytes)
            .await
            .map_err(|e| e.to_string())
    }
}

fn capabilities(store: &ObjectStorePackageStore) -> Capabilities {
    Capabilities::default().with_tamper(Beneath(store.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let local = ObjectStorePackageStore::local(&path).expect("local store");
    let caps = capabilities(&local).with_store_reopen(move || {
        ObjectStorePackageStore::local(&path)
            .map(|s| Arc::new(s) as Arc<dyn PackageStore>)
            .map_err(|e| e.to_string())
    });
    let report = store_suite(&local, &caps).await.named("objectstore-local");
    println!("local directory: {report}");
    report.assert_passed();

    let memory = ObjectStorePackageStore::in_memory();
    let mut caps = capabilities(&memory);
    // Its objects live in memory: an upload cannot be bounded by less than the body.
    caps.bounded_upload_memory = false;
    let report = store_suite(&memory, &caps)
        .await
        .named("objectstore-memory");
    println!("in memory: {report}");
    report.assert_passed();

    if let Some(server) = marketplace_testing::s3::S3Server::start() {
        let s3 = common::s3_store(&server, "conformance");
        let report = store_suite(&s3, &capabilities(&s3)).await.named("s3");
        println!("S3 (moto_server): {report}");
        report.assert_passed();
    }
}
