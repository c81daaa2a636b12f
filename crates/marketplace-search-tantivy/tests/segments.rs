//! One-at-a-time publishing (one commit per version) keeps the index in few segments: the
//! merge policy folds small segments as they come, so a search keeps walking a handful.

use marketplace_conformance::fixtures::record;
use marketplace_core::{SearchEngine, SearchQuery};
use marketplace_search_tantivy::TantivySearchEngine;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_single_writes_leave_few_segments() {
    let engine = TantivySearchEngine::in_memory().expect("index");
    let words = [
        "cache", "parser", "async", "logger", "tensor", "crypto", "cli",
    ];
    let mut most = 0;
    for i in 0..1_000usize {
        let (a, b) = (words[i % 7], words[(i / 7) % 7]);
        // 300 packages, most with several versions: new versions rewrite their package's
        // documents, so deletes accumulate as they do in a real registry.
        let version = record(
            &format!("p{}@1.0.{}", i % 300, i / 300),
            &format!("a {a} library with {b} support"),
            &[a],
            &["tools"],
            i as u64,
        );
        engine.index(&version).await.expect("index one version");
        most = most.max(engine.segment_count());
    }
    println!("most segments at once: {most}");
    assert!(most <= 12, "{most} segments after single commits");
    let hits = engine
        .search(&SearchQuery::text("parser"))
        .await
        .expect("search");
    assert!(!hits.is_empty());
    assert_eq!(engine.stats().await.expect("stats").packages, 300);
}
