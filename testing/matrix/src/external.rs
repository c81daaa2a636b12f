//! External backend crates: each runs its own tests (the kit's suites inside), with the kit told
//! to save every report as JSON; the matrix reads those reports back — typed, not scraped from
//! printed text.

use std::path::{Path, PathBuf};
use std::process::Command;

use marketplace_conformance::{REPORT_DIR_VAR, SuiteReport};
use serde::Serialize;

use crate::{cell, print_table};

/// A backend crate outside the workspace that proves itself with the kit. **The extension
/// point**: add an entry here (or list manifest paths in `MARKETPLACE_CONFORMANCE_EXTERNAL`,
/// separated by `:`) and the matrix runs it.
struct External {
    /// The name shown in the matrix.
    name: &'static str,
    /// Its `Cargo.toml`, relative to the workspace root.
    manifest: &'static str,
}

/// The external backends of this repository.
const EXTERNAL: &[External] = &[External {
    name: "jsondir-registry (third party)",
    manifest: "examples/third-party-backend/Cargo.toml",
}];

/// What one external crate's run gave.
#[derive(Debug, Serialize)]
pub(crate) struct ExternalResult {
    name: String,
    manifest: String,
    /// Whether its `cargo test` passed.
    passed: bool,
    /// The suites its tests ran.
    suites: Vec<SuiteReport>,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// The `.json` files of `dir`, sorted.
pub(crate) fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// One saved report.
pub(crate) fn read_report(path: &Path) -> Result<SuiteReport, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not a suite report: {e}", path.display()))
}

/// Runs one external crate's tests with the kit saving its reports, and reads them.
fn run_one(name: &str, manifest: &Path, target: &Path) -> ExternalResult {
    println!(
        "==> external backend {name}: cargo test --manifest-path {}",
        manifest.display()
    );
    let reports = target
        .join("conformance")
        .join("external")
        .join(name.replace(|c: char| !c.is_ascii_alphanumeric(), "-"));
    let _ = std::fs::remove_dir_all(&reports);
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--locked", "--manifest-path"])
        .arg(manifest)
        .env("CARGO_TARGET_DIR", target)
        .env(REPORT_DIR_VAR, &reports)
        .status();
    let passed = match status {
        Ok(status) => status.success(),
        Err(e) => {
            eprintln!("error: could not run cargo test for {name}: {e}");
            false
        }
    };
    let suites = json_files(&reports)
        .iter()
        .filter_map(|p| read_report(p).map_err(|e| eprintln!("warning: {e}")).ok())
        .collect();
    ExternalResult {
        name: name.to_owned(),
        manifest: manifest.display().to_string(),
        passed,
        suites,
    }
}

/// Runs every external crate, prints their rows, and adds their failures to `failures`.
pub(crate) fn run_all(failures: &mut Vec<String>) -> Vec<ExternalResult> {
    let root = workspace_root();
    let target = target_dir(&root);
    let mut all: Vec<(String, PathBuf)> = EXTERNAL
        .iter()
        .map(|e| (e.name.to_owned(), root.join(e.manifest)))
        .collect();
    if let Ok(list) = std::env::var("MARKETPLACE_CONFORMANCE_EXTERNAL") {
        all.extend(
            list.split(':')
                .filter(|p| !p.is_empty())
                .map(|p| (p.to_owned(), PathBuf::from(p))),
        );
    }
    let results: Vec<ExternalResult> = all
        .iter()
        .map(|(name, manifest)| run_one(name, manifest, &target))
        .collect();
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let cells: Vec<String> = r
                .suites
                .iter()
                .map(|s| format!("{} {}", s.suite, cell(s)))
                .collect();
            let summary = match (cells.is_empty(), r.passed) {
                (true, true) => "pass (no suite report saved)".to_owned(),
                (true, false) => "FAIL (no suite report saved)".to_owned(),
                (false, _) => cells.join("  "),
            };
            vec![r.name.clone(), "│".into(), summary]
        })
        .collect();
    println!("\nexternal backends\n");
    print_table(&["backend", "│", "suites"], &rows);
    for r in &results {
        if !r.passed {
            failures.push(format!("FAILED cargo test of {} ({})", r.name, r.manifest));
        }
        for suite in &r.suites {
            for check in suite.failures() {
                if let marketplace_conformance::Outcome::Failed(why) = &check.outcome {
                    failures.push(format!("FAILED {} [{}]: {why}", check.name, r.name));
                }
            }
        }
    }
    results
}
