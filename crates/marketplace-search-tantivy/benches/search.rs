//! Search latency (p50/p99, with and without facets), suggest latency and index build rate on
//! a deterministic synthetic corpus of 10k and 100k packages: names from a list of 72 domain
//! words, descriptions of 10–40 words (half domain words, half from 4,096 Zipf-skewed
//! pseudo-words), 1–5 keywords, 1–2 of 8 categories, Zipf-like downloads, 1–3 versions.
//!
//! Run with `cargo bench -p marketplace-search-tantivy --bench search`. Percentiles are printed
//! per corpus (200 queries each, timed one by one); criterion reports means and medians.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use marketplace_core::{ContentHash, PackageMetadata, PackageRecord, SearchEngine, SearchQuery};
use marketplace_search_tantivy::TantivySearchEngine;

const WORDS: &[&str] = &[
    "web", "http", "server", "client", "async", "json", "yaml", "toml", "config", "parser", "cli",
    "terminal", "color", "log", "trace", "metrics", "cache", "queue", "stream", "file", "path",
    "watch", "archive", "zip", "crypto", "hash", "sign", "token", "auth", "session", "cookie",
    "router", "template", "render", "markdown", "html", "css", "image", "audio", "video", "graph",
    "tree", "map", "set", "vector", "matrix", "tensor", "model", "train", "infer", "sql", "query",
    "database", "pool", "migrate", "schema", "test", "mock", "bench", "fuzz", "lint", "format",
    "build", "deploy", "docker", "cloud", "storage", "bucket", "sync", "mirror", "proxy", "dns",
];
const CATEGORIES: &[&str] = &[
    "web-programming",
    "command-line-interface",
    "database",
    "encoding",
    "cryptography",
    "development-tools",
    "filesystem",
    "network",
];

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn word(&mut self) -> &'static str {
        WORDS[self.below(WORDS.len())]
    }
    /// A description word: a domain word half the time, otherwise one of 4,096 pseudo-words
    /// drawn with a Zipf-like skew (a few common, most rare), as in real descriptions.
    fn description_word(&mut self) -> String {
        if self.below(2) == 0 {
            return self.word().to_owned();
        }
        let rank = (4096.0_f64.powf(self.below(1_000_000) as f64 / 1_000_000.0)) as usize;
        pseudo_word(rank)
    }
}

/// The pseudo-word of a rank: three syllables.
fn pseudo_word(rank: usize) -> String {
    const SYLLABLES: &[&str] = &[
        "ka", "lo", "mi", "ren", "tus", "va", "zor", "qui", "bel", "nor", "sa", "dri", "fen",
        "gol", "pa", "xu",
    ];
    (0..3)
        .map(|i| SYLLABLES[(rank >> (4 * i)) % SYLLABLES.len()])
        .collect()
}

fn corpus(packages: usize) -> Vec<PackageRecord> {
    let mut rng = Rng(42);
    let mut out = Vec::with_capacity(packages * 2);
    for n in 0..packages {
        let name = format!("{}-{}-{n}", rng.word(), rng.word());
        let words = 10 + rng.below(31);
        let description: Vec<String> = (0..words).map(|_| rng.description_word()).collect();
        let keywords: Vec<String> = (0..1 + rng.below(5))
            .map(|_| rng.word().to_owned())
            .collect();
        let categories: Vec<String> = (0..1 + rng.below(2))
            .map(|_| CATEGORIES[rng.below(CATEGORIES.len())].to_owned())
            .collect();
        // Zipf-like downloads: a few packages get most of them.
        let downloads = 10_000_000 / (1 + n as u64 + rng.below(10) as u64);
        for minor in 0..1 + rng.below(3) {
            let id = format!("ns{}/{name}@1.{minor}.0", n % 300)
                .parse()
                .expect("id");
            let mut m = PackageMetadata::new(
                id,
                description.join(" "),
                ContentHash::sha256(name.as_bytes()),
                1000,
            );
            m.keywords = keywords.clone();
            m.categories = categories.clone();
            let mut record = PackageRecord::new(m);
            record.downloads = downloads;
            out.push(record);
        }
    }
    out
}

fn queries() -> Vec<SearchQuery> {
    let mut rng = Rng(7);
    (0..200)
        .map(|i| {
            let text = if i % 2 == 0 {
                rng.word().to_owned()
            } else {
                format!("{} {}", rng.word(), rng.word())
            };
            let mut q = SearchQuery::text(text);
            if i % 10 == 0 {
                q.categories = vec![CATEGORIES[rng.below(CATEGORIES.len())].to_owned()];
            }
            q
        })
        .collect()
}

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
        let records = corpus(packages);
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

        let queries = queries();
        for (label, with_facets) in [("search", false), ("search+facets", true)] {
            let mut samples = Vec::new();
            for q in queries.iter().cycle().take(1000) {
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
