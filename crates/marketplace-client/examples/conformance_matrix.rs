//! The conformance matrix behind `cargo xtask conformance`: every per-trait suite once per
//! backend mode, and the end-to-end client suite once per combination of modes, printed as a
//! matrix and written as JSON.
//!
//! ```text
//! cargo run -p marketplace-client --example conformance_matrix -- \
//!     [--registry sqlite-file,sqlite-memory] [--store local,memory,s3] \
//!     [--search tantivy-ram,tantivy-disk] [--crypto ring] [--json PATH] \
//!     [--break registry:sqlite-memory]
//! ```
//!
//! `--break TRAIT:MODE` wraps that backend in one that forgets yanks, to show that the matrix
//! fails exactly in the cells that use it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use marketplace_client::{MarketplaceBuilder, OtelMetrics};
use marketplace_conformance::{
    Capabilities, Outcome, SuiteReport, client_suite, crypto_suite, metrics_suite, registry_suite,
    search_suite, store_suite,
};
use marketplace_core::{
    ContentHash, CryptoVerifier, MetadataUpdate, PackageId, PackageMetadata, PackageRecord,
    PackageRef, PackageStats, PackageStore, Registry, RegistryEvent, Result, SearchEngine,
    VersionState,
};
use marketplace_crypto_ring::RingCryptoVerifier;
use marketplace_registry_sqlite::SqliteRegistry;
use marketplace_search_tantivy::TantivySearchEngine;
use marketplace_store_objectstore::ObjectStorePackageStore;
use marketplace_store_objectstore::testing::S3Server;

/// The dimensions of the matrix and their modes: the one table every run enumerates.
const DIMENSIONS: [(&str, &[&str]); 4] = [
    ("registry", &["sqlite-file", "sqlite-memory"]),
    ("store", &["local", "memory", "s3"]),
    ("search", &["tantivy-ram", "tantivy-disk"]),
    ("crypto", &["ring"]),
];

/// Everything the constructors need: scratch space, the S3 server, the broken mode if any.
struct Env {
    dir: tempfile::TempDir,
    next: AtomicUsize,
    s3: Option<S3Server>,
    broken: Option<(String, String)>,
}

impl Env {
    fn scratch(&self) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        self.dir.path().join(format!("m{n}"))
    }

    fn is_broken(&self, dimension: &str, mode: &str) -> bool {
        self.broken
            .as_ref()
            .is_some_and(|(d, m)| d == dimension && m == mode)
    }

    fn registry(&self, mode: &str) -> Result<Arc<dyn Registry>> {
        let registry: Arc<dyn Registry> = match mode {
            "sqlite-file" => Arc::new(SqliteRegistry::open(
                self.scratch().join("registry.sqlite3"),
            )?),
            "sqlite-memory" => Arc::new(SqliteRegistry::open_in_memory()?),
            other => unreachable!("unknown registry mode {other}"),
        };
        Ok(if self.is_broken("registry", mode) {
            Arc::new(ForgetsYanks(registry))
        } else {
            registry
        })
    }

    fn store(&self, mode: &str) -> Result<Arc<dyn PackageStore>> {
        Ok(match mode {
            "local" => Arc::new(ObjectStorePackageStore::local(
                self.scratch().join("store"),
            )?),
            "memory" => Arc::new(ObjectStorePackageStore::in_memory()),
            "s3" => {
                let server = self
                    .s3
                    .as_ref()
                    .expect("the S3 server runs when s3 is selected");
                let bucket = format!("matrix-{}", self.next.fetch_add(1, Ordering::SeqCst));
                Arc::new(server.store(&bucket)?)
            }
            other => unreachable!("unknown store mode {other}"),
        })
    }

    fn search(&self, mode: &str) -> Result<Arc<dyn SearchEngine>> {
        Ok(match mode {
            "tantivy-ram" => Arc::new(TantivySearchEngine::in_memory()?),
            "tantivy-disk" => Arc::new(TantivySearchEngine::open(self.scratch().join("index"))?),
            other => unreachable!("unknown search mode {other}"),
        })
    }

    fn crypto(&self, mode: &str) -> Result<Arc<dyn CryptoVerifier>> {
        Ok(match mode {
            "ring" => Arc::new(RingCryptoVerifier::open(self.scratch().join("trust.json"))?),
            other => unreachable!("unknown crypto mode {other}"),
        })
    }

    fn builder(&self, combo: &[String]) -> Result<MarketplaceBuilder> {
        Ok(MarketplaceBuilder::new()
            .registry(self.registry(&combo[0])?)
            .store(self.store(&combo[1])?)
            .search(self.search(&combo[2])?)
            .crypto(self.crypto(&combo[3])?))
    }
}

/// A registry that forgets yanks: what `--break` injects.
struct ForgetsYanks(Arc<dyn Registry>);

#[marketplace_core::async_trait]
impl Registry for ForgetsYanks {
    async fn register(&self, metadata: PackageMetadata, hash: ContentHash) -> Result<PackageId> {
        self.0.register(metadata, hash).await
    }
    async fn register_batch(
        &self,
        items: Vec<(PackageMetadata, ContentHash)>,
    ) -> Result<Vec<PackageId>> {
        self.0.register_batch(items).await
    }
    async fn get(&self, id: &PackageId) -> Result<PackageMetadata> {
        self.0.get(id).await
    }
    async fn list_version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        let mut states = self.0.list_version_states(package).await?;
        for s in &mut states {
            s.yanked = false;
        }
        Ok(states)
    }
    async fn update_metadata(&self, id: &PackageId, u: MetadataUpdate) -> Result<PackageMetadata> {
        self.0.update_metadata(id, u).await
    }
    async fn yank(&self, id: &PackageId, reason: &str) -> Result<()> {
        self.0.yank(id, reason).await
    }
    async fn unyank(&self, id: &PackageId) -> Result<()> {
        self.0.unyank(id).await
    }
    async fn is_yanked(&self, id: &PackageId) -> Result<bool> {
        self.0.is_yanked(id).await.map(|_| false)
    }
    async fn list_by_author(&self, a: &str, l: usize, o: usize) -> Result<Vec<PackageRecord>> {
        self.0.list_by_author(a, l, o).await
    }
    async fn list(&self, limit: usize, offset: usize) -> Result<Vec<PackageRecord>> {
        self.0.list(limit, offset).await
    }
    async fn get_stats(&self, id: &PackageId) -> Result<PackageStats> {
        self.0.get_stats(id).await
    }
    async fn record_download(&self, id: &PackageId) -> Result<()> {
        self.0.record_download(id).await
    }
    async fn events_since(&self, after: u64, limit: usize) -> Result<Vec<RegistryEvent>> {
        self.0.events_since(after, limit).await
    }
}

struct Options {
    selected: Vec<Vec<String>>,
    json: Option<PathBuf>,
    broken: Option<(String, String)>,
}

fn usage(message: &str) -> ! {
    eprintln!("error: {message}");
    eprintln!(
        "usage: conformance_matrix [--registry M,..] [--store M,..] [--search M,..] [--crypto M,..] [--json PATH] [--break TRAIT:MODE]"
    );
    for (dimension, modes) in DIMENSIONS {
        eprintln!("  --{dimension}: {}", modes.join(", "));
    }
    std::process::exit(2);
}

fn parse_args() -> Options {
    let mut selected: Vec<Vec<String>> = DIMENSIONS
        .iter()
        .map(|(_, modes)| modes.iter().map(|m| (*m).to_owned()).collect())
        .collect();
    let mut json = None;
    let mut broken = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--json" => json = Some(PathBuf::from(value())),
            "--break" => {
                let v = value();
                let (d, m) = v
                    .split_once(':')
                    .unwrap_or_else(|| usage("--break takes TRAIT:MODE"));
                broken = Some((d.to_owned(), m.to_owned()));
            }
            flag => {
                let name = flag.trim_start_matches("--");
                let Some(i) = DIMENSIONS.iter().position(|(d, _)| *d == name) else {
                    usage(&format!("unknown option {flag}"));
                };
                let wanted: Vec<String> = value().split(',').map(str::to_owned).collect();
                for w in &wanted {
                    if !DIMENSIONS[i].1.contains(&w.as_str()) {
                        usage(&format!("unknown {name} mode {w}"));
                    }
                }
                selected[i] = wanted;
            }
        }
    }
    Options {
        selected,
        json,
        broken,
    }
}

fn combinations(selected: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut combos = vec![Vec::new()];
    for modes in selected {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                modes.iter().map(move |m| {
                    let mut c = c.clone();
                    c.push(m.clone());
                    c
                })
            })
            .collect();
    }
    combos
}

fn cell(report: &SuiteReport) -> String {
    let status = if !report.passed() {
        "FAIL"
    } else if report
        .checks
        .iter()
        .any(|c| matches!(c.outcome, Outcome::Skipped(_)))
    {
        "pass*"
    } else {
        "pass"
    };
    format!("{status} {:.1}s", report.duration().as_secs_f64())
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn report_json(report: &SuiteReport) -> String {
    let checks: Vec<String> = report
        .checks
        .iter()
        .map(|c| {
            let (outcome, why) = match &c.outcome {
                Outcome::Passed => ("passed", String::new()),
                Outcome::Failed(why) => ("failed", why.clone()),
                Outcome::Skipped(why) => ("skipped", why.clone()),
            };
            format!(
                "{{\"name\":{},\"outcome\":\"{outcome}\",\"seconds\":{},\"why\":{}}}",
                json_string(&c.name),
                c.duration.as_secs_f64(),
                json_string(&why)
            )
        })
        .collect();
    format!(
        "{{\"suite\":{},\"passed\":{},\"seconds\":{},\"checks\":[{}]}}",
        json_string(&report.suite),
        report.passed(),
        report.duration().as_secs_f64(),
        checks.join(",")
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = parse_args();
    let uses_s3 = options.selected[1].iter().any(|m| m == "s3");
    let s3 = if uses_s3 {
        if !S3Server::available() {
            eprintln!(
                "error: the s3 store mode needs moto_server (pip install 'moto[server]'), or leave it out with --store local,memory"
            );
            std::process::exit(1);
        }
        S3Server::start()
    } else {
        None
    };
    let env = Env {
        dir: tempfile::tempdir().expect("a temporary directory"),
        next: AtomicUsize::new(0),
        s3,
        broken: options.broken.clone(),
    };
    let caps = Capabilities::default();
    let mut failures: Vec<String> = Vec::new();
    let mut record = |label: &str, report: &SuiteReport| {
        for check in report.failures() {
            if let Outcome::Failed(why) = &check.outcome {
                failures.push(format!("FAILED {} [{label}]: {why}", check.name));
            }
        }
    };

    // Per-trait suites, once per backend mode.
    let mut per_mode: BTreeMap<(String, String), SuiteReport> = BTreeMap::new();
    for (i, (dimension, _)) in DIMENSIONS.iter().enumerate() {
        for mode in &options.selected[i] {
            eprintln!("running the {dimension} suite on {mode}");
            let report = match *dimension {
                "registry" => {
                    registry_suite(env.registry(mode).expect("registry").as_ref(), &caps).await
                }
                "store" => store_suite(env.store(mode).expect("store").as_ref(), &caps).await,
                "search" => search_suite(env.search(mode).expect("search").as_ref(), &caps).await,
                _ => crypto_suite(env.crypto(mode).expect("crypto").as_ref(), &caps).await,
            };
            record(&format!("{dimension} {mode}"), &report);
            per_mode.insert(((*dimension).to_owned(), mode.clone()), report);
        }
    }
    eprintln!("running the metrics suite on otel");
    let metrics = metrics_suite(&OtelMetrics::new(), &caps).await;
    record("metrics otel", &metrics);

    // The client suite, once per combination.
    let combos = combinations(&options.selected);
    let mut client_reports = Vec::new();
    for combo in &combos {
        let label = combo.join(" · ");
        eprintln!("running the client suite on {label}");
        let factory = || env.builder(combo);
        let report = client_suite(&factory, &caps).await;
        record(&label, &report);
        client_reports.push(report);
    }

    // The matrix.
    let headers = [
        "registry", "store", "search", "crypto", "│", "registry", "store", "search", "crypto",
        "metrics", "client",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (combo, client) in combos.iter().zip(&client_reports) {
        let mut row: Vec<String> = combo.clone();
        row.push("│".into());
        for (i, (dimension, _)) in DIMENSIONS.iter().enumerate() {
            row.push(cell(
                &per_mode[&((*dimension).to_owned(), combo[i].clone())],
            ));
        }
        row.push(cell(&metrics));
        row.push(cell(client));
        rows.push(row);
    }
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    println!(
        "\nconformance matrix: {} combinations; per-trait suites once per mode, the client suite once per combination\n",
        combos.len()
    );
    line(headers.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    println!("\n(pass* = passed with checks skipped for capabilities not claimed)");

    if let Some(path) = &options.json {
        let mut json = String::from("{\"backends\":[");
        let backends: Vec<String> = per_mode
            .iter()
            .map(|((d, m), r)| {
                format!(
                    "{{\"trait\":\"{d}\",\"mode\":\"{m}\",\"report\":{}}}",
                    report_json(r)
                )
            })
            .chain([format!(
                "{{\"trait\":\"metrics\",\"mode\":\"otel\",\"report\":{}}}",
                report_json(&metrics)
            )])
            .collect();
        json.push_str(&backends.join(","));
        json.push_str("],\"combinations\":[");
        let combos_json: Vec<String> = combos
            .iter()
            .zip(&client_reports)
            .map(|(c, r)| {
                format!(
                    "{{\"registry\":\"{}\",\"store\":\"{}\",\"search\":\"{}\",\"crypto\":\"{}\",\"client\":{}}}",
                    c[0], c[1], c[2], c[3], report_json(r)
                )
            })
            .collect();
        json.push_str(&combos_json.join(","));
        let _ = write!(json, "],\"passed\":{}}}", failures.is_empty());
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match std::fs::write(path, json) {
            Ok(()) => println!("report: {}", display(path)),
            Err(e) => eprintln!("error: could not write {}: {e}", path.display()),
        }
    }

    drop(env);
    if failures.is_empty() {
        println!("every cell passed");
    } else {
        println!("\n{} failed checks:", failures.len());
        for f in &failures {
            println!("  {f}");
        }
        std::process::exit(1);
    }
}

fn display(path: &Path) -> String {
    path.canonicalize()
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}
