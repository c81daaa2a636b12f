//! The full SearchEngine suite, in RAM and on disk.

use marketplace_conformance::{Capabilities, search_suite};
use marketplace_search_tantivy::TantivySearchEngine;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let ram = TantivySearchEngine::in_memory().expect("in-memory index");
    let report = search_suite(&ram, &Capabilities::default())
        .await
        .named("tantivy-ram");
    println!("RAM: {report}");
    report.assert_passed();

    let dir = tempfile::tempdir().expect("tempdir");
    let disk = TantivySearchEngine::open(dir.path().join("index")).expect("on-disk index");
    let report = search_suite(&disk, &Capabilities::default())
        .await
        .named("tantivy-disk");
    println!("on disk: {report}");
    report.assert_passed();
}
