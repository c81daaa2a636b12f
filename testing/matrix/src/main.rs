//! The conformance matrix behind `cargo xtask conformance`: every per-trait suite once per
//! backend mode, the end-to-end client suite once per combination of modes, then the external
//! backend crates (their own tests, reporting through the kit), printed as one matrix and
//! written as JSON.
//!
//! ```text
//! cargo run -p marketplace-matrix -- \
//!     [--registry sqlite-file,sqlite-memory,postgres] [--store local,memory,objectstore-local,objectstore-memory,s3] \
//!     [--search tantivy-ram,tantivy-disk] [--crypto ring] [--json PATH] \
//!     [--reports DIR] [--skip-external] [--skip-remote] [--break registry:sqlite-memory]
//! ```
//!
//! After the combinations, the client suite runs once more over the remote composition: for
//! each check a server on 127.0.0.1 (SQLite, the local store, tantivy) and a client that
//! reaches it only over HTTP (`--skip-remote` leaves that row out).
//!
//! `--reports DIR` takes the per-trait reports that the backend crates' own conformance tests
//! saved there (the kit writes them when `MARKETPLACE_CONFORMANCE_REPORTS` is set, as `cargo
//! xtask ci` does), so CI runs each per-trait suite once; a mode without a saved report is run
//! here. `--break TRAIT:MODE` wraps that backend in one that forgets yanks, to show that the
//! matrix fails exactly in the cells that use it.

mod external;
mod modes;
mod remote;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use marketplace_client::OtelMetrics;
use marketplace_conformance::{
    Capabilities, SuiteReport, client_suite, client_suite_composed, crypto_suite, metrics_suite,
    registry_suite, search_suite, store_suite,
};
use serde::Serialize;

use crate::modes::{DIMENSIONS, Env};

struct Options {
    selected: Vec<Vec<String>>,
    json: Option<PathBuf>,
    reports: Option<PathBuf>,
    skip_external: bool,
    skip_remote: bool,
    broken: Option<(String, String)>,
}

fn usage(message: &str) -> ! {
    eprintln!("error: {message}");
    eprintln!(
        "usage: marketplace-matrix [--registry M,..] [--store M,..] [--search M,..] [--crypto M,..] [--json PATH] [--reports DIR] [--skip-external] [--skip-remote] [--break TRAIT:MODE]"
    );
    for (dimension, modes) in DIMENSIONS {
        eprintln!("  --{dimension}: {}", modes.join(", "));
    }
    std::process::exit(2);
}

fn parse_args() -> Options {
    let mut options = Options {
        selected: DIMENSIONS
            .iter()
            .map(|(_, modes)| modes.iter().map(|m| (*m).to_owned()).collect())
            .collect(),
        json: None,
        reports: None,
        skip_external: false,
        skip_remote: false,
        broken: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--skip-external" {
            options.skip_external = true;
            continue;
        }
        if arg == "--skip-remote" {
            options.skip_remote = true;
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--json" => options.json = Some(PathBuf::from(value)),
            "--reports" => options.reports = Some(PathBuf::from(value)),
            "--break" => {
                let (d, m) = value
                    .split_once(':')
                    .unwrap_or_else(|| usage("--break takes TRAIT:MODE"));
                options.broken = Some((d.to_owned(), m.to_owned()));
            }
            flag => {
                let name = flag.trim_start_matches("--");
                let Some(i) = DIMENSIONS.iter().position(|(d, _)| *d == name) else {
                    usage(&format!("unknown option {flag}"));
                };
                let wanted: Vec<String> = value.split(',').map(str::to_owned).collect();
                if let Some(w) = wanted
                    .iter()
                    .find(|w| !DIMENSIONS[i].1.contains(&w.as_str()))
                {
                    usage(&format!("unknown {name} mode {w}"));
                }
                options.selected[i] = wanted;
            }
        }
    }
    options
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

/// A matrix cell: pass, pass* (some checks skipped) or FAIL, with the time.
pub(crate) fn cell(report: &SuiteReport) -> String {
    let status = if !report.passed() {
        "FAIL"
    } else if report.skipped_any() {
        "pass*"
    } else {
        "pass"
    };
    format!("{status} {:.1}s", report.duration().as_secs_f64())
}

/// Prints rows as aligned columns.
pub(crate) fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
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
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Per-trait reports saved by the backend crates' tests, by (suite, backend).
fn saved_reports(dir: &Path) -> BTreeMap<(String, String), SuiteReport> {
    let mut found = BTreeMap::new();
    for path in external::json_files(dir) {
        match external::read_report(&path) {
            Ok(report) => {
                if let Some(backend) = report.backend.clone() {
                    found.insert((report.suite.clone(), backend), report);
                }
            }
            Err(e) => eprintln!("warning: {e}"),
        }
    }
    found
}

#[derive(Serialize)]
struct BackendJson<'a> {
    r#trait: &'a str,
    mode: &'a str,
    report: &'a SuiteReport,
}

#[derive(Serialize)]
struct CombinationJson<'a> {
    registry: &'a str,
    store: &'a str,
    search: &'a str,
    crypto: &'a str,
    client: &'a SuiteReport,
}

#[derive(Serialize)]
struct MatrixJson<'a> {
    backends: Vec<BackendJson<'a>>,
    combinations: Vec<CombinationJson<'a>>,
    remote: Option<&'a SuiteReport>,
    external: &'a [external::ExternalResult],
    passed: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = parse_args();
    let env = Env::new(&options.selected, options.broken.clone());
    let caps = Capabilities::default();
    let mut failures: Vec<String> = Vec::new();
    let mut record = |label: &str, report: &SuiteReport| {
        for check in report.failures() {
            if let marketplace_conformance::Outcome::Failed(why) = &check.outcome {
                failures.push(format!("FAILED {} [{label}]: {why}", check.name));
            }
        }
    };

    // Per-trait suites, once per backend mode: from the backend crates' saved reports when
    // given, otherwise run here. A broken mode is always run here (it is not what was saved).
    let mut saved = options
        .reports
        .as_deref()
        .map(saved_reports)
        .unwrap_or_default();
    let mut per_mode: BTreeMap<(String, String), SuiteReport> = BTreeMap::new();
    for (i, (dimension, _)) in DIMENSIONS.iter().enumerate() {
        for mode in &options.selected[i] {
            let key = ((*dimension).to_owned(), mode.clone());
            let report = match saved
                .remove(&key)
                .filter(|_| !env.is_broken(dimension, mode))
            {
                Some(report) => {
                    eprintln!("the {dimension} suite on {mode}: from the backend crate's test");
                    report
                }
                None => {
                    eprintln!("running the {dimension} suite on {mode}");
                    let report = match *dimension {
                        "registry" => registry_suite(env.registry(mode).as_ref(), &caps).await,
                        "store" => {
                            let (store, caps) = env.store_under_test(mode, &caps);
                            store_suite(store.as_ref(), &caps).await
                        }
                        "search" => search_suite(env.search(mode).as_ref(), &caps).await,
                        _ => crypto_suite(env.crypto(mode).as_ref(), &caps).await,
                    };
                    report.named(mode.clone())
                }
            };
            env.release();
            record(&format!("{dimension} {mode}"), &report);
            per_mode.insert(key, report);
        }
    }
    let metrics = match saved.remove(&("metrics".to_owned(), "otel".to_owned())) {
        Some(report) => report,
        None => {
            eprintln!("running the metrics suite on otel");
            metrics_suite(&OtelMetrics::new(), &caps)
                .await
                .named("otel")
        }
    };
    record("metrics otel", &metrics);

    // The client suite, once per combination.
    let combos = combinations(&options.selected);
    let mut client_reports = Vec::new();
    for combo in &combos {
        let label = combo.join(" · ");
        eprintln!("running the client suite on {label}");
        let factory = || Ok(env.builder(combo));
        let report = client_suite(&factory, &caps).await.named(label.clone());
        env.release();
        record(&label, &report);
        client_reports.push(report);
    }

    let headers = [
        "registry", "store", "search", "crypto", "│", "registry", "store", "search", "crypto",
        "metrics", "client",
    ];
    let rows: Vec<Vec<String>> = combos
        .iter()
        .zip(&client_reports)
        .map(|(combo, client)| {
            let mut row: Vec<String> = combo.clone();
            row.push("│".into());
            for (i, (dimension, _)) in DIMENSIONS.iter().enumerate() {
                row.push(cell(
                    &per_mode[&((*dimension).to_owned(), combo[i].clone())],
                ));
            }
            row.push(cell(&metrics));
            row.push(cell(client));
            row
        })
        .collect();
    println!(
        "\nconformance matrix: {} combinations; per-trait suites once per mode, the client suite once per combination\n",
        combos.len()
    );
    print_table(&headers, &rows);
    println!("\n(pass* = passed with checks skipped for capabilities not claimed)");
    drop(env);

    // The same client suite with a server between the client and the backends.
    let remote = if options.skip_remote {
        None
    } else {
        eprintln!("running the client suite on {}", remote::LABEL);
        let report = client_suite_composed(&remote::composition, &caps)
            .await
            .named(remote::LABEL);
        record(remote::LABEL, &report);
        println!();
        print_table(
            &["composition", "client"],
            &[vec![remote::LABEL.to_owned(), cell(&report)]],
        );
        Some(report)
    };

    let external = if options.skip_external {
        Vec::new()
    } else {
        external::run_all(&mut failures)
    };

    if let Some(path) = &options.json {
        let backends = per_mode
            .iter()
            .map(|((t, m), report)| BackendJson {
                r#trait: t,
                mode: m,
                report,
            })
            .chain([BackendJson {
                r#trait: "metrics",
                mode: "otel",
                report: &metrics,
            }])
            .collect();
        let combinations = combos
            .iter()
            .zip(&client_reports)
            .map(|(c, client)| CombinationJson {
                registry: &c[0],
                store: &c[1],
                search: &c[2],
                crypto: &c[3],
                client,
            })
            .collect();
        let matrix = MatrixJson {
            backends,
            combinations,
            remote: remote.as_ref(),
            external: &external,
            passed: failures.is_empty(),
        };
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .map_err(|e| e.to_string())
            .and_then(|()| serde_json::to_vec_pretty(&matrix).map_err(|e| e.to_string()))
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        match written {
            Ok(()) => println!("report: {}", path.display()),
            Err(e) => eprintln!("error: could not write {}: {e}", path.display()),
        }
    }

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
