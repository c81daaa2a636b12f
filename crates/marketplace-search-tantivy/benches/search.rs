//! Search latency (p50/p99: text, with category filters, with facets), suggest latency and index
//! build rate on the workspace's deterministic synthetic corpus (`marketplace-testing`) of 10k
//! and 100k packages: names from 72 domain words, descriptions of 10–40 words (half domain
//! words, half from 4,096 Zipf-skewed pseudo-words), 1–5 keywords, 1–2 of 8 categories, Zipf
//! downloads, 1–4 versions, some yanked. The queries are W1's of the workload report.
//!
//! Run with `cargo bench -p marketplace-search-tantivy --bench search`. Percentiles are printed
//! per corpus (200 queries each, timed one by one); criterion reports means and medians.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use marketplace_core::SearchEngine;
use marketplace_search_tantivy::TantivySearchEngine;
use marketplace_testing::corpus::{corpus, queries};

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (p(0.50), p(0.99))
}

fn search_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    for packages in [10_000, 100_000] {
        let records = corpus(packages, 42);
        let engine = TantivySearchEngine::in_memory().expect("index");
        let started = Instant::now();
        let n = rt
            .block_on(engine.rebuild(Box::new(records.into_iter())))
            .expect("rebuild");
        let build = started.elapsed();
        println!(
            "corpus {packages} packages: indexed {n} versions in {build:.2?} = {:.0} versions/s",
            n as f64 / build.as_secs_f64()
        );

        let filtered = queries(true);
        let queries = queries(false);
        for (label, set, with_facets) in [
            ("search", &queries, false),
            ("search with filters", &filtered, false),
            ("search+facets", &queries, true),
        ] {
            let mut samples = Vec::new();
            for q in set.iter().cycle().take(1000) {
                let t = Instant::now();
                rt.block_on(async {
                    engine.search(q).await.expect("search");
                    if with_facets {
                        engine.facets(q).await.expect("facets");
                    }
                });
                samples.push(t.elapsed());
            }
            let (p50, p99) = percentiles(samples);
            println!("corpus {packages}: {label}: p50 {p50:.2?}, p99 {p99:.2?}");
        }
        let mut samples = Vec::new();
        for q in queries.iter().take(200) {
            let prefix: String = q.text.chars().take(3).collect();
            let t = Instant::now();
            rt.block_on(engine.suggest(&prefix, 10)).expect("suggest");
            samples.push(t.elapsed());
        }
        let (p50, p99) = percentiles(samples);
        println!("corpus {packages}: suggest: p50 {p50:.2?}, p99 {p99:.2?}");

        let mut group = c.benchmark_group(format!("tantivy_{packages}"));
        let mut i = 0;
        group.bench_function("search", |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                rt.block_on(engine.search(black_box(&queries[i])))
                    .expect("search")
            })
        });
        group.bench_function("search_with_facets", |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                rt.block_on(async {
                    (
                        engine.search(&queries[i]).await.expect("search"),
                        engine.facets(&queries[i]).await.expect("facets"),
                    )
                })
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4));
    targets = search_benches
}
criterion_main!(benches);
