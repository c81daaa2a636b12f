//! Relevance on real packages: the judged queries of `marketplace_testing::real::RELEVANCE`
//! over the metadata of the few hundred real crates checked into `testing/support/data`.

use marketplace_core::{PackageRecord, SearchEngine, SearchQuery};
use marketplace_search_tantivy::TantivySearchEngine;
use marketplace_testing::real::{RELEVANCE, real_crates, reciprocal_rank};

async fn engine() -> TantivySearchEngine {
    let records: Vec<PackageRecord> = real_crates()
        .iter()
        .filter_map(|krate| krate.record().ok())
        .collect();
    assert!(records.len() >= 300, "{} real records", records.len());
    let engine = TantivySearchEngine::in_memory().expect("index");
    engine.index_batch(&records).await.expect("index");
    engine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_package_people_mean_is_in_the_top_three() {
    let engine = engine().await;
    assert!(RELEVANCE.len() >= 40);
    let mut hits = 0;
    let mut reciprocal = 0.0;
    let mut misses = Vec::new();
    for judged in RELEVANCE {
        let query = SearchQuery {
            limit: 10,
            ..SearchQuery::text(judged.query)
        };
        let ranked: Vec<String> = engine
            .search(&query)
            .await
            .expect("search")
            .iter()
            .map(|hit| hit.id.name.to_string())
            .collect();
        let rr = reciprocal_rank(&ranked, judged.expected);
        reciprocal += rr;
        if rr >= 1.0 / 3.0 {
            hits += 1;
        } else {
            misses.push(format!(
                "{:?} wants {}, got {:?}",
                judged.query,
                judged.expected,
                &ranked[..ranked.len().min(5)]
            ));
        }
    }
    let total = RELEVANCE.len();
    let mrr = reciprocal / total as f64;
    println!("hits@3 {hits}/{total}, MRR {mrr:.3}\n{}", misses.join("\n"));
    assert!(
        hits * 10 >= total * 9,
        "hits@3 {hits}/{total} is below 90%:\n{}",
        misses.join("\n")
    );
}
