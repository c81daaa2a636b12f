//! The full PackageStore suite against a local directory, memory, and a real S3-compatible
//! server.

use marketplace_conformance::{Capabilities, store_suite};
use marketplace_store_objectstore::ObjectStorePackageStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = ObjectStorePackageStore::local(dir.path().join("store")).expect("local store");
    let report = store_suite(&local, &Capabilities::default()).await;
    println!("local directory: {report}");
    report.assert_passed();

    let memory = ObjectStorePackageStore::in_memory();
    let report = store_suite(&memory, &Capabilities::default()).await;
    println!("in memory: {report}");
    report.assert_passed();

    if let Some(server) = marketplace_store_objectstore::testing::S3Server::start() {
        let s3 = server.store("conformance").expect("bucket");
        let report = store_suite(&s3, &Capabilities::default()).await;
        println!("S3 (moto_server): {report}");
        report.assert_passed();
    }
}
