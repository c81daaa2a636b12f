//! The full PackageStore suite against a local directory, memory, and a real S3-compatible
//! server.

mod common;

use marketplace_conformance::{Capabilities, store_suite};
use marketplace_store_objectstore::ObjectStorePackageStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = ObjectStorePackageStore::local(dir.path().join("store")).expect("local store");
    let report = store_suite(&local, &Capabilities::default())
        .await
        .named("local");
    println!("local directory: {report}");
    report.assert_passed();

    let memory = ObjectStorePackageStore::in_memory();
    let report = store_suite(&memory, &Capabilities::default())
        .await
        .named("memory");
    println!("in memory: {report}");
    report.assert_passed();

    if let Some(server) = marketplace_testing::s3::S3Server::start() {
        let s3 = common::s3_store(&server, "conformance");
        let report = store_suite(&s3, &Capabilities::default()).await.named("s3");
        println!("S3 (moto_server): {report}");
        report.assert_passed();
    }
}
