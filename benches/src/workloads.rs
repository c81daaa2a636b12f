//! The workloads W1–W8 of SPEC §8 and the raw baselines, each measured in-process and returned
//! as report rows. Shared by `bench-report` and the criterion benchmarks.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use marketplace_client::{MarketplaceBuilder, MarketplaceClient};
use marketplace_core::{
    CryptoVerifier, KeyPair, PackageId, PackageRecord, PackageStore, Registry, ResolutionPolicy,
    ResolveOptions, SearchEngine, SearchQuery, TrustLevel, signing_payload,
};
use marketplace_crypto_ring::RingCryptoVerifier;
use marketplace_registry_sqlite::SqliteRegistry;
use marketplace_search_tantivy::TantivySearchEngine;
use marketplace_store_local::LocalPackageStore;

use marketplace_testing::corpus::{self, Rng};

/// How hard to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A few minutes in all.
    Quick,
    /// The full run.
    Full,
}

impl Mode {
    /// `quick` in a quick run, `full` in a full one.
    pub fn pick<T>(self, quick: T, full: T) -> T {
        match self {
            Mode::Quick => quick,
            Mode::Full => full,
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Row {
    /// `W1 search 10k, text`.
    pub workload: String,
    /// What was measured, formatted (`p50 0.41 ms · p99 0.62 ms`).
    pub measured: String,
    /// The SPEC §8 target, formatted, or `—`.
    pub target: String,
    /// The raw baseline measured in the same run, formatted, or `—`.
    pub baseline: String,
    /// Measured over baseline (or over the target's limit), where one applies.
    pub ratio: Option<f64>,
    /// Whether the target is met, where there is one.
    pub met: Option<bool>,
}

/// p50 and p99 of samples.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

impl Latency {
    /// From unsorted samples.
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
        Latency {
            p50: at(0.50),
            p99: at(0.99),
        }
    }

    /// `p50 … · p99 …`.
    pub fn show(&self) -> String {
        format!("p50 {} · p99 {}", duration(self.p50), duration(self.p99))
    }
}

/// `412 µs`, `1.24 ms`, `3.1 s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn mib_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

fn latency_row(
    workload: String,
    l: Latency,
    p50_limit: Duration,
    p99_limit: Option<Duration>,
) -> Row {
    let met = l.p50 < p50_limit && p99_limit.is_none_or(|limit| l.p99 < limit);
    Row {
        workload,
        measured: l.show(),
        target: match p99_limit {
            Some(p99) => format!("p50 < {} · p99 < {}", duration(p50_limit), duration(p99)),
            None => format!("p50 < {}", duration(p50_limit)),
        },
        baseline: "—".into(),
        ratio: Some(l.p50.as_secs_f64() / p50_limit.as_secs_f64()),
        met: Some(met),
    }
}

/// Times every query `reps` times after one warm-up pass.
async fn time_queries<F, Fut>(queries: &[SearchQuery], reps: usize, mut run: F) -> Latency
where
    F: FnMut(SearchQuery) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for q in queries {
        run(q.clone()).await;
    }
    let mut samples = Vec::with_capacity(queries.len() * reps);
    for _ in 0..reps {
        for q in queries {
            let q = q.clone();
            let started = Instant::now();
            run(q).await;
            samples.push(started.elapsed());
        }
    }
    Latency::of(samples)
}

/// Indexes `records` into a fresh RAM index, in batches.
pub async fn search_index(records: &[PackageRecord]) -> TantivySearchEngine {
    let engine = TantivySearchEngine::in_memory().expect("a RAM index");
    for chunk in records.chunks(10_000) {
        engine.index_batch(chunk).await.expect("indexing");
    }
    engine
}

/// W1: search latency at 10k and 100k packages (text; with filters; with facets) and the peer
/// workload.
pub async fn w1_search(mode: Mode) -> Vec<Row> {
    let reps = mode.pick(2, 5);
    let mut rows = Vec::new();
    for packages in [10_000, 100_000] {
        let records = corpus::corpus(packages, 42);
        let engine = search_index(&records).await;
        let label = format!("{}k", packages / 1000);
        let text = corpus::queries(false);
        let filtered = corpus::queries(true);
        let l = time_queries(&text, reps, |q| {
            let e = &engine;
            async move {
                e.search(&q).await.expect("search");
            }
        })
        .await;
        rows.push(latency_row(
            format!(
                "W1 search {label}, text ({} segments)",
                engine.segment_count()
            ),
            l,
            Duration::from_millis(1),
            Some(Duration::from_millis(5)),
        ));
        let l = time_queries(&filtered, reps, |q| {
            let e = &engine;
            async move {
                e.search(&q).await.expect("search");
            }
        })
        .await;
        rows.push(latency_row(
            format!("W1 search {label}, filters"),
            l,
            Duration::from_millis(1),
            Some(Duration::from_millis(5)),
        ));
        let l = time_queries(&text, reps, |q| {
            let e = &engine;
            async move {
                e.facets(&q).await.expect("facets");
            }
        })
        .await;
        rows.push(Row {
            workload: format!("W1 facets {label} (counts per category and keyword)"),
            measured: l.show(),
            target: "— (reported; SPEC §8 targets search)".into(),
            baseline: "—".into(),
            ratio: None,
            met: None,
        });
    }
    rows.push(single_publishes_row(reps).await);
    rows.push(relevance_row().await);
    let engine = search_index(&corpus::peer_corpus(10_000)).await;
    let l = time_queries(&corpus::peer_queries(), reps, |q| {
        let e = &engine;
        async move {
            e.search(&q).await.expect("search");
        }
    })
    .await;
    rows.push(latency_row(
        "W1 peer workload, 10k".into(),
        l,
        Duration::from_millis(1),
        Some(Duration::from_millis(5)),
    ));
    rows
}

/// W1 after one-at-a-time publishing: 1,000 versions indexed one commit each into an index on
/// disk (as `mkt publish` does one package at a time), then the W1 text queries. The merge
/// policy must keep the segments few enough that a search stays under 2 ms.
async fn single_publishes_row(reps: usize) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = TantivySearchEngine::open(dir.path().join("index")).expect("an index on disk");
    let records = corpus::corpus(500, 9);
    for record in records.iter().take(1_000) {
        engine.index(record).await.expect("index one version");
    }
    let segments = engine.segment_count();
    let l = time_queries(&corpus::queries(false), reps, |q| {
        let e = &engine;
        async move {
            e.search(&q).await.expect("search");
        }
    })
    .await;
    let mut row = latency_row(
        format!("W1 search after 1,000 single publishes (disk, {segments} segments)"),
        l,
        Duration::from_millis(2),
        Some(Duration::from_millis(2)),
    );
    row.target = "every percentile < 2 ms (#17)".into();
    row
}

/// Relevance on real packages: the judged queries of `marketplace_testing::real` over the
/// metadata of a few hundred real crates; mean reciprocal rank (top 10) and hits in the top 3.
async fn relevance_row() -> Row {
    use marketplace_testing::real::{RELEVANCE, judge, real_records};
    let records = real_records();
    let engine = search_index(&records).await;
    let judgement = judge(&engine).await.expect("search");
    Row {
        workload: format!(
            "W1 relevance, {} judged queries over {} real crate versions",
            RELEVANCE.len(),
            records.len()
        ),
        measured: format!(
            "MRR {:.3} · hits@3 {}/{}",
            judgement.mrr,
            judgement.top3,
            RELEVANCE.len()
        ),
        target: "hits@3 ≥ 90% (#17)".into(),
        baseline: "—".into(),
        ratio: None,
        met: Some(judgement.meets_target()),
    }
}

/// A SQLite file registry in `dir` holding `records` (yanks applied).
pub async fn registry_with(dir: &Path, records: &[PackageRecord]) -> Arc<SqliteRegistry> {
    let registry = SqliteRegistry::open(dir.join("registry.sqlite3")).expect("open SQLite");
    for chunk in records.chunks(1_000) {
        let items = chunk
            .iter()
            .map(|r| (r.metadata.clone(), r.metadata.checksum.clone()))
            .collect();
        registry.register_batch(items).await.expect("register");
    }
    for r in records.iter().filter(|r| r.is_yanked()) {
        registry
            .yank(&r.metadata.id, "benchmark")
            .await
            .expect("yank");
    }
    Arc::new(registry)
}

/// W2 (`get` latency) and W7 (index rebuild rate) on one registry.
pub async fn w2_w7_registry(mode: Mode) -> Vec<Row> {
    let packages = mode.pick(20_000, 100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let records = corpus::corpus(packages, 42);
    let started = Instant::now();
    let registry = registry_with(dir.path(), &records).await;
    let register_rate = records.len() as f64 / started.elapsed().as_secs_f64();
    let mut rng = Rng::new(3);
    let ids: Vec<PackageId> = (0..mode.pick(5_000, 20_000))
        .map(|_| records[rng.below(records.len())].metadata.id.clone())
        .collect();
    for id in ids.iter().take(500) {
        registry.get(id).await.expect("get");
    }
    let mut samples = Vec::with_capacity(ids.len());
    for id in &ids {
        let started = Instant::now();
        registry.get(id).await.expect("get");
        samples.push(started.elapsed());
    }
    let mut rows = vec![latency_row(
        format!("W2 get metadata ({} versions)", records.len()),
        Latency::of(samples),
        Duration::from_micros(50),
        None,
    )];
    rows.push(Row {
        workload: format!("registry sync: register_batch ({} versions)", records.len()),
        measured: format!("{register_rate:.0} versions/s"),
        target: "≥ 20,000/s".into(),
        baseline: "—".into(),
        ratio: Some(register_rate / 20_000.0),
        met: Some(register_rate >= 20_000.0),
    });
    // W7: rebuild the on-disk index from this registry through the client.
    let client = MarketplaceBuilder::new()
        .registry(registry)
        .store(Arc::new(LocalPackageStore::in_memory()))
        .search(Arc::new(
            TantivySearchEngine::open(dir.path().join("index")).expect("index"),
        ))
        .crypto(Arc::new(RingCryptoVerifier::in_memory()))
        .build()
        .expect("client");
    let started = Instant::now();
    let rebuilt = client.rebuild_index().await.expect("rebuild");
    let rate = rebuilt as f64 / started.elapsed().as_secs_f64();
    rows.push(Row {
        workload: format!("W7 index rebuild from the registry ({rebuilt} versions)"),
        measured: format!("{rate:.0} versions/s"),
        target: "≥ 20,000/s".into(),
        baseline: "—".into(),
        ratio: Some(rate / 20_000.0),
        met: Some(rate >= 20_000.0),
    });
    rows
}

/// The embedded default in `dir` with a trusted key.
pub async fn local_client(dir: &Path) -> (MarketplaceClient, KeyPair) {
    let client = MarketplaceBuilder::local(dir)
        .and_then(MarketplaceBuilder::build)
        .expect("the local default");
    let key = client.crypto().generate_keypair().await.expect("keygen");
    client
        .crypto()
        .add_trusted_key(&key.public_key, TrustLevel::Full)
        .await
        .expect("trust");
    (client, key)
}

/// Archives for `count` distinct versions of the corpus with `seed`.
pub fn archives(count: usize, seed: u64) -> Vec<Bytes> {
    corpus::corpus(count, seed)
        .iter()
        .take(count)
        .map(|r| corpus::archive(&r.metadata, 2_000))
        .collect()
}

/// W3: end-to-end publish throughput through the client on the local default.
pub async fn w3_publish(mode: Mode) -> Vec<Row> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, key) = local_client(dir.path()).await;
    let single = archives(mode.pick(100, 300), 11);
    let started = Instant::now();
    for a in &single {
        client
            .publish(a.clone(), &key.private_key)
            .await
            .expect("publish");
    }
    let single_rate = single.len() as f64 / started.elapsed().as_secs_f64();
    let batch = archives(mode.pick(2_000, 10_000), 12);
    let batch_rate = publish_batch_rate(&client, &key.private_key, &batch).await;
    vec![
        Row {
            workload: format!("W3 publish, one at a time ({} packages)", single.len()),
            measured: format!("{single_rate:.0} packages/s"),
            target: "— (the target allows the batch API)".into(),
            baseline: "—".into(),
            ratio: None,
            met: None,
        },
        Row {
            workload: format!(
                "W3 publish_batch, 1,000 per batch ({} packages)",
                batch.len()
            ),
            measured: format!("{batch_rate:.0} packages/s"),
            target: "≥ 2,000/s".into(),
            baseline: "—".into(),
            ratio: Some(batch_rate / 2_000.0),
            met: Some(batch_rate >= 2_000.0),
        },
    ]
}

/// Archives per second of `client.publish_batch` over `archives`, 1,000 per batch.
pub async fn publish_batch_rate(
    client: &MarketplaceClient,
    key: &marketplace_core::PrivateKey,
    archives: &[Bytes],
) -> f64 {
    let started = Instant::now();
    for chunk in archives.chunks(1_000) {
        client
            .publish_batch(chunk.to_vec(), key)
            .await
            .expect("publish_batch");
    }
    archives.len() as f64 / started.elapsed().as_secs_f64()
}

/// W3 through the CLI: one `mkt publish` of 1,000 package directories (each packed, validated,
/// signed, then published through the batch path), timed as a whole process, on a fresh home.
/// `mkt` is the release binary beside this one (`cargo xtask bench-report` builds it).
pub fn w3_cli_publish() -> Row {
    const PACKAGES: usize = 1_000;
    let workload = format!("W3 mkt publish of {PACKAGES} package directories, whole process");
    let unavailable = |why: String| Row {
        workload: workload.clone(),
        measured: format!("unavailable ({why})"),
        target: "≥ 500 packages/s (#17)".into(),
        baseline: "—".into(),
        ratio: None,
        met: None,
    };
    let mkt = match crate::http::release_mkt() {
        Ok(mkt) => mkt,
        Err(why) => return unavailable(why),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let mkt_at = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(&mkt)
            .arg("--home")
            .arg(&home)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
    };
    match mkt_at(&["init".as_ref()]) {
        Ok(o) if o.status.success() => {}
        Ok(o) => return unavailable(format!("mkt init: {}", String::from_utf8_lossy(&o.stderr))),
        Err(e) => return unavailable(format!("mkt init: {e}")),
    }
    let mut paths = Vec::with_capacity(PACKAGES);
    // The corpus holds 1–4 versions of each package: its first PACKAGES records.
    for record in corpus::corpus(PACKAGES, 21).into_iter().take(PACKAGES) {
        let m = &record.metadata;
        let path = dir
            .path()
            .join("packages")
            .join(format!("{}-{}", m.id.name, m.id.version));
        std::fs::create_dir_all(&path).expect("package directory");
        std::fs::write(path.join("marketplace.toml"), corpus::manifest(m)).expect("manifest");
        std::fs::write(path.join("README.md"), corpus::readme(m, 2_000)).expect("readme");
        paths.push(path.into_os_string());
    }
    let mut args: Vec<&std::ffi::OsStr> = vec!["publish".as_ref()];
    args.extend(paths.iter().map(|p| p.as_os_str()));
    let started = Instant::now();
    let outcome = mkt_at(&args);
    let took = started.elapsed();
    match outcome {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return unavailable(format!(
                "mkt publish: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Err(e) => return unavailable(format!("mkt publish: {e}")),
    }
    let rate = PACKAGES as f64 / took.as_secs_f64();
    Row {
        workload,
        measured: format!("{rate:.0} packages/s ({})", duration(took)),
        target: "≥ 500 packages/s (#17)".into(),
        baseline: "—".into(),
        ratio: Some(rate / 500.0),
        met: Some(rate >= 500.0),
    }
}

/// Latency of resolving `root`'s graph on `registry` (the first few runs warm up, untimed).
async fn time_resolution(registry: &dyn Registry, root: &PackageId, mode: Mode) -> Latency {
    let mut samples = Vec::new();
    for i in 0..mode.pick(100, 500) {
        let started = Instant::now();
        registry
            .resolve_dependencies(root, ResolveOptions::TRANSITIVE)
            .await
            .expect("resolve");
        if i > 5 {
            samples.push(started.elapsed());
        }
    }
    Latency::of(samples)
}

/// W4: a package with a 50-package transitive graph: resolution alone, and a full install.
pub async fn w4_install(mode: Mode) -> Vec<Row> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, key) = local_client(&dir.path().join("market")).await;
    let chain = corpus::dependency_chain(50);
    let archives: Vec<Bytes> = chain.iter().map(|m| corpus::archive(m, 2_000)).collect();
    client
        .publish_batch(archives, &key.private_key)
        .await
        .expect("publish the chain");
    let root: PackageId = "chain/pkg-0@1.2.0".parse().expect("root");
    let graph = client
        .registry()
        .resolve_dependencies(&root, ResolveOptions::TRANSITIVE)
        .await
        .expect("resolve");
    assert_eq!(graph.len(), 50, "the graph holds the whole chain");
    let resolution = time_resolution(client.registry(), &root, mode).await;
    // The same resolution over the in-memory reference registry: what the solver itself costs,
    // without SQLite round trips.
    let memory = marketplace_conformance::reference::MemoryRegistry::new();
    for m in &chain {
        memory
            .register(m.clone(), m.checksum.clone())
            .await
            .expect("register");
    }
    let solver = time_resolution(&memory, &root, mode).await;
    let package = root.package();
    let req = "^1".parse().expect("requirement");
    let mut samples = Vec::new();
    for i in 0..mode.pick(5, 20) {
        let dest = dir.path().join(format!("install-{i}"));
        let started = Instant::now();
        let report = client
            .install(&package, &req, &dest)
            .await
            .expect("install");
        samples.push(started.elapsed());
        assert_eq!(report.installed.len(), 50);
    }
    let install = Latency::of(samples);
    let real = real_universe_row().await;
    vec![
        real,
        latency_row(
            "W4 resolve a 50-package transitive graph".into(),
            resolution,
            Duration::from_millis(2),
            None,
        ),
        Row {
            workload: "W4 resolve the same graph on the in-memory reference registry".into(),
            measured: solver.show(),
            target: "— (the solver's share)".into(),
            baseline: "—".into(),
            ratio: None,
            met: None,
        },
        Row {
            workload: "W4 install 50 packages (resolve, fetch, verify, extract, lock)".into(),
            measured: install.show(),
            target: "—".into(),
            baseline: "—".into(),
            ratio: None,
            met: None,
        },
    ]
}

/// W4 on real crates: every version of a few hundred real crates, with their real dependencies
/// and yanks (`marketplace_testing::real::real_universe`), in a SQLite registry; each crate's
/// newest and oldest versions that are not yanked resolved once each, after one untimed pass.
/// Resolution is under cargo's policy (one version per semver-compatible series), as real
/// crates need; it fails where the universe lacks a dependency (old versions name crates it
/// does not hold) or the requirements truly clash; each failure is timed too.
async fn real_universe_row() -> Row {
    use marketplace_testing::real::real_universe;
    let universe = real_universe();
    let mut records = Vec::new();
    let mut refused = 0;
    // Old crates.io accepted versions that differ only in build metadata (`1.0.1+1.7.3` and
    // `1.0.1+1.7.5`); semver says they are one version, and the registry refuses the second.
    let mut seen = std::collections::HashSet::new();
    for version in &universe {
        match version.metadata() {
            Ok(metadata)
                if !seen.insert((
                    metadata.id.package().canonical(),
                    marketplace_core::semver::Version {
                        build: marketplace_core::semver::BuildMetadata::EMPTY,
                        ..metadata.id.version.clone()
                    },
                )) =>
            {
                refused += 1;
            }
            Ok(metadata) => {
                let mut record = PackageRecord::new(metadata);
                if version.yanked {
                    record.yanked = Some(marketplace_core::YankInfo::new(
                        "yanked upstream",
                        marketplace_core::now_seconds(),
                    ));
                }
                records.push(record);
            }
            Err(_) => refused += 1,
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = registry_with(dir.path(), &records).await;
    let mut roots: Vec<PackageId> = Vec::new();
    let mut by_package: std::collections::BTreeMap<String, Vec<&PackageRecord>> =
        std::collections::BTreeMap::new();
    for record in records.iter().filter(|r| !r.is_yanked()) {
        by_package
            .entry(record.metadata.id.package().canonical())
            .or_default()
            .push(record);
    }
    for versions in by_package.values_mut() {
        versions.sort_by(|a, b| a.metadata.id.version.cmp(&b.metadata.id.version));
        roots.push(versions[versions.len() - 1].metadata.id.clone());
        if versions.len() > 1 {
            roots.push(versions[0].metadata.id.clone());
        }
    }
    let cargo = ResolveOptions::TRANSITIVE.with_policy(ResolutionPolicy::SemverCompatible);
    for root in &roots {
        let _ = registry.resolve_dependencies(root, cargo).await;
    }
    let mut samples = Vec::with_capacity(roots.len());
    let (mut resolved, mut failed, mut lacking) = (0, 0, 0);
    let mut other_failure: Option<String> = None;
    let mut slowest = (Duration::ZERO, String::new());
    for root in &roots {
        let started = Instant::now();
        let outcome = registry.resolve_dependencies(root, cargo).await;
        let took = started.elapsed();
        match outcome {
            Ok(_) => resolved += 1,
            Err(marketplace_core::Error::Conflict { explanation, .. })
                if explanation.contains("but no package named") =>
            {
                failed += 1;
                lacking += 1;
            }
            Err(e) => {
                failed += 1;
                if other_failure.is_none() {
                    other_failure = Some(format!("{root}: {e}"));
                }
            }
        }
        if took > slowest.0 {
            slowest = (took, root.to_string());
        }
        samples.push(took);
    }
    if let Some(failure) = other_failure {
        eprintln!("W4 real crates, a failure other than a lacking crate: {failure}");
    }
    let latency = Latency::of(samples);
    let met = latency.p99 < Duration::from_millis(50) && slowest.0 < Duration::from_millis(200);
    Row {
        workload: format!(
            "W4 resolve real crates, cargo's policy: {} roots over {} versions of {} crates ({} yanked, {} with renamed dependencies; {refused} refused); {resolved} resolved, {failed} failed ({lacking} on a crate the universe lacks)",
            roots.len(),
            records.len(),
            by_package.len(),
            records.iter().filter(|r| r.is_yanked()).count(),
            records
                .iter()
                .filter(|r| !r.metadata.renamed_dependencies.is_empty())
                .count(),
        ),
        measured: format!(
            "{} · max {} ({})",
            latency.show(),
            duration(slowest.0),
            slowest.1
        ),
        target: "p99 < 50 ms · max < 200 ms (#17)".into(),
        baseline: "—".into(),
        ratio: Some(latency.p99.as_secs_f64() / 0.050),
        met: Some(met),
    }
}

fn sha256_rate(data: &[u8], reps: usize) -> f64 {
    let started = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(ring::digest::digest(&ring::digest::SHA256, data));
    }
    mib_per_s(data.len() * reps, started.elapsed())
}

/// W5: upload (`store`) and verified download (`get`) throughput on a local-directory store,
/// against raw SHA-256 (ring) measured in the same run.
pub async fn w5_transfer(mode: Mode) -> Vec<Row> {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = LocalPackageStore::open(dir.path().join("store")).expect("store");
    let memory = LocalPackageStore::in_memory();
    let mut rows = Vec::new();
    for (store_label, store, durable) in [
        ("local directory", &local, true),
        ("in memory", &memory, false),
    ] {
        for (label, size, reps) in [
            ("1 MiB", 1usize << 20, mode.pick(30, 100)),
            ("64 MiB", 64usize << 20, mode.pick(3, 8)),
        ] {
            let mut rng = Rng::new(size as u64);
            let data: Vec<u8> = (0..size / 8)
                .flat_map(|_| rng.next_u64().to_le_bytes())
                .collect();
            let baseline = sha256_rate(&data, reps.max(3));
            // Uploads: a new body each time (its first 8 bytes change, in place, untimed), and
            // the object deleted again untimed, so that each upload writes a new file into
            // page cache freed a moment ago, as on a long-running server. Allocating fresh
            // buffers instead measures this VM's cost of memory it has not touched recently
            // (docs/PERFORMANCE.md, W5).
            let mut body = BytesMut::from(data.as_slice());
            let mut up = Duration::ZERO;
            for i in 0..reps {
                body[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let bytes = body.freeze();
                let started = Instant::now();
                let hash = store.store(bytes.clone()).await.expect("store");
                up += started.elapsed();
                store.delete(&hash).await.expect("delete");
                body = bytes
                    .try_into_mut()
                    .expect("the store keeps no reference to the body");
            }
            // Downloads: one stored object read repeatedly (from the page cache).
            let hash = store.store(body.freeze()).await.expect("store");
            let mut down = Duration::ZERO;
            for _ in 0..reps {
                let started = Instant::now();
                std::hint::black_box(store.get(&hash).await.expect("get"));
                down += started.elapsed();
            }
            let upload = if durable {
                "upload (store: hashed, written, fsynced)"
            } else {
                "upload (store: hashed)"
            };
            for (what, total) in [(upload, up), ("download (get, verified)", down)] {
                let rate = mib_per_s(size * reps, total);
                let ratio = rate / baseline;
                rows.push(Row {
                    workload: format!("W5 {store_label}: {what}, {label}"),
                    measured: format!("{rate:.0} MiB/s"),
                    target: "≥ 70% of raw SHA-256".into(),
                    baseline: format!("SHA-256 {baseline:.0} MiB/s"),
                    ratio: Some(ratio),
                    met: Some(ratio >= 0.70),
                });
            }
        }
    }
    rows
}

/// W6: signature verification through the crypto backend against raw ring Ed25519.
pub async fn w6_verify(mode: Mode) -> Vec<Row> {
    let crypto = RingCryptoVerifier::in_memory();
    let key = crypto.generate_keypair().await.expect("keygen");
    let records = corpus::corpus(1, 5);
    let metadata = &records[0].metadata;
    let signature = crypto.sign(metadata, &key.private_key).await.expect("sign");
    let n = mode.pick(2_000, 10_000);
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let result = crypto
            .verify_signature(metadata, &signature)
            .await
            .expect("verify");
        samples.push(started.elapsed());
        assert!(result.is_valid());
    }
    let ours = Latency::of(samples);
    let payload = signing_payload(metadata);
    let public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ED25519,
        key.public_key.bytes.clone(),
    );
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        public
            .verify(&payload, &signature.bytes)
            .expect("raw verify");
        samples.push(started.elapsed());
    }
    let raw = Latency::of(samples);
    let ratio = ours.p50.as_secs_f64() / raw.p50.as_secs_f64();
    vec![Row {
        workload: "W6 verify a package signature".into(),
        measured: ours.show(),
        target: "within 10% of raw ring".into(),
        baseline: format!(
            "ring Ed25519 p50 {} ({:.0} verifies/s)",
            duration(raw.p50),
            1.0 / raw.p50.as_secs_f64()
        ),
        ratio: Some(ratio),
        met: Some(ratio <= 1.10),
    }]
}

/// The raw baselines that have no workload of their own: memcpy.
pub fn baselines() -> Vec<Row> {
    let src = vec![7u8; 64 << 20];
    let mut dst = vec![0u8; 64 << 20];
    let reps = 10;
    let started = Instant::now();
    for _ in 0..reps {
        dst.copy_from_slice(std::hint::black_box(&src));
    }
    let rate = mib_per_s(src.len() * reps, started.elapsed());
    std::hint::black_box(&dst);
    let mut rows = vec![Row {
        workload: "baseline: memcpy 64 MiB".into(),
        measured: format!("{rate:.0} MiB/s"),
        target: "—".into(),
        baseline: "—".into(),
        ratio: None,
        met: None,
    }];
    // What the disk allows an upload that must be durable: write a new file and fsync it.
    let dir = tempfile::tempdir().expect("tempdir");
    for (label, size, reps) in [("1 MiB", 1usize << 20, 30), ("64 MiB", 64usize << 20, 5)] {
        let mut total = Duration::ZERO;
        for i in 0..reps {
            use std::io::Write as _;
            let path = dir.path().join(format!("{label}-{i}"));
            let started = Instant::now();
            let mut file = std::fs::File::create(&path).expect("create");
            file.write_all(&src[..size]).expect("write");
            file.sync_all().expect("fsync");
            total += started.elapsed();
            // Untimed, as in W5: the next file reuses the freed page cache.
            std::fs::remove_file(&path).expect("remove");
        }
        let rate = mib_per_s(size * reps, total);
        rows.push(Row {
            workload: format!("baseline: write + fsync a new {label} file"),
            measured: format!("{rate:.0} MiB/s"),
            target: "—".into(),
            baseline: "—".into(),
            ratio: None,
            met: None,
        });
    }
    rows
}

/// W8, run in a child process: indexes `packages` packages of the corpus into an on-disk index
/// and returns the process's peak resident memory in KiB (Linux `VmHWM`).
pub async fn w8_index_peak_rss(packages: usize) -> Option<u64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let records = corpus::corpus(packages, 42);
    let engine = TantivySearchEngine::open(dir.path().join("index")).expect("index");
    for chunk in records.chunks(10_000) {
        engine.index_batch(chunk).await.expect("indexing");
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
