//! The full Registry suite of the conformance kit, on a file database and an in-memory one.

use std::sync::Arc;

use marketplace_conformance::{Capabilities, registry_suite};
use marketplace_core::Registry;
use marketplace_registry_sqlite::SqliteRegistry;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db/registry.sqlite");
    let file = SqliteRegistry::open(&path).expect("open file");
    // A second connection to the same file, as a restarted process opens it.
    let caps = Capabilities::default().with_registry_reopen(move || {
        SqliteRegistry::open(&path)
            .map(|r| Arc::new(r) as Arc<dyn Registry>)
            .map_err(|e| e.to_string())
    });
    let report = registry_suite(&file, &caps).await.named("sqlite-file");
    println!("file database: {report}");
    report.assert_passed();

    let memory = SqliteRegistry::open_in_memory().expect("open in memory");
    let report = registry_suite(&memory, &Capabilities::default())
        .await
        .named("sqlite-memory");
    println!("in-memory database: {report}");
    report.assert_passed();
}
