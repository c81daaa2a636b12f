//! Relevance on real packages: the judged queries of `marketplace_testing::real::RELEVANCE`
//! over the metadata of the few hundred real crates checked into `testing/support/data`.

use marketplace_core::SearchEngine;
use marketplace_search_tantivy::TantivySearchEngine;
use marketplace_testing::real::{RELEVANCE, judge, real_records};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_package_people_mean_is_in_the_top_three() {
    let records = real_records();
    assert!(records.len() >= 300, "{} real records", records.len());
    assert!(RELEVANCE.len() >= 40);
    let engine = TantivySearchEngine::in_memory().expect("index");
    engine.index_batch(&records).await.expect("index");
    let judgement = judge(&engine).await.expect("search");
    let misses = judgement.misses.join("\n");
    println!(
        "hits@3 {}/{}, MRR {:.3}\n{misses}",
        judgement.top3,
        RELEVANCE.len(),
        judgement.mrr
    );
    assert!(
        judgement.meets_target(),
        "hits@3 {}/{} is below 90%:\n{misses}",
        judgement.top3,
        RELEVANCE.len()
    );
}
