//! The full Registry suite of the conformance kit, on a file database and an in-memory one.

use marketplace_conformance::{Capabilities, registry_suite};
use marketplace_registry_sqlite::SqliteRegistry;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = SqliteRegistry::open(dir.path().join("db/registry.sqlite")).expect("open file");
    let report = registry_suite(&file, &Capabilities::default())
        .await
        .named("sqlite-file");
    println!("file database: {report}");
    report.assert_passed();

    let memory = SqliteRegistry::open_in_memory().expect("open in memory");
    let report = registry_suite(&memory, &Capabilities::default())
        .await
        .named("sqlite-memory");
    println!("in-memory database: {report}");
    report.assert_passed();
}
