//! `cargo xtask conformance`: the in-tree matrix (every combination of backend modes), then
//! every external backend crate.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo, workspace_root};

/// A backend crate outside the workspace that proves itself with the kit: its tests run the
/// suites and print their reports. **The extension point**: add an entry here (or list manifest
/// paths in `MARKETPLACE_CONFORMANCE_EXTERNAL`, separated by `:`) and the matrix runs it.
pub(crate) struct External {
    /// The name shown in the matrix.
    pub(crate) name: &'static str,
    /// Its `Cargo.toml`, relative to the workspace root.
    pub(crate) manifest: &'static str,
}

/// The external backends of this repository.
pub(crate) const EXTERNAL: &[External] = &[External {
    name: "jsondir-registry (third party)",
    manifest: "examples/third-party-backend/Cargo.toml",
}];

/// One suite's summary line, as `SuiteReport`'s `Display` prints it:
/// `registry suite: 28 checks, 28 passed, 0 failed, 0 skipped (1.23s)`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SuiteLine {
    pub(crate) suite: String,
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    pub(crate) skipped: usize,
    pub(crate) time: String,
}

pub(crate) fn parse_suite_line(line: &str) -> Option<SuiteLine> {
    let (suite, rest) = line.trim().split_once(" suite: ")?;
    let suite = suite.rsplit(' ').next()?.to_owned();
    let (counts, time) = rest.rsplit_once(" (")?;
    let time = time.trim_end_matches(')').to_owned();
    let number = |label: &str| -> Option<usize> {
        counts
            .split(", ")
            .find_map(|part| part.trim().strip_suffix(label))
            .and_then(|n| n.trim().parse().ok())
    };
    Some(SuiteLine {
        suite,
        passed: number(" passed")?,
        failed: number(" failed")?,
        skipped: number(" skipped")?,
        time,
    })
}

fn external_manifests(root: &Path) -> Vec<(String, PathBuf)> {
    let mut all: Vec<(String, PathBuf)> = EXTERNAL
        .iter()
        .map(|e| (e.name.to_owned(), root.join(e.manifest)))
        .collect();
    if let Ok(list) = std::env::var("MARKETPLACE_CONFORMANCE_EXTERNAL") {
        for path in list.split(':').filter(|p| !p.is_empty()) {
            all.push((path.to_owned(), PathBuf::from(path)));
        }
    }
    all
}

/// Runs one external crate's tests; returns its suite lines and failure lines.
fn run_external(
    name: &str,
    manifest: &Path,
    target: &Path,
) -> Result<(Vec<SuiteLine>, Vec<String>, bool), String> {
    println!(
        "==> external backend {name}: cargo test --manifest-path {}",
        manifest.display()
    );
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--locked", "--manifest-path"])
        .arg(manifest)
        .args(["--", "--nocapture", "--test-threads", "1"])
        .env("CARGO_TARGET_DIR", target)
        .output()
        .map_err(|e| format!("could not run cargo test for {name}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let suites: Vec<SuiteLine> = stdout.lines().filter_map(parse_suite_line).collect();
    let failures: Vec<String> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("FAILED "))
        .map(|l| format!("{} [{name}]", l.trim()))
        .collect();
    if !output.status.success() && failures.is_empty() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    }
    Ok((suites, failures, output.status.success()))
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let skip_external = args.iter().any(|a| a == "--skip-external");
    let matrix_args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--skip-external")
        .collect();
    let report = target.join("conformance").join("matrix.json");
    println!("==> in-tree backends: every combination of modes");
    let status = cargo()
        .args([
            "run",
            "--locked",
            "-q",
            "-p",
            "marketplace-client",
            "--example",
            "conformance_matrix",
            "--",
        ])
        .args(&matrix_args)
        .arg("--json")
        .arg(&report)
        .status()
        .map_err(|e| format!("could not run the matrix: {e}"))?;
    let mut ok = status.success();

    if !skip_external {
        let mut rows = Vec::new();
        let mut failures = Vec::new();
        let mut json = Vec::new();
        for (name, manifest) in external_manifests(&root) {
            let (suites, failed, passed) = run_external(&name, &manifest, &target)?;
            ok &= passed;
            let cells: Vec<String> = suites
                .iter()
                .map(|s| {
                    let status = match (s.failed, s.skipped) {
                        (0, 0) => "pass",
                        (0, _) => "pass*",
                        _ => "FAIL",
                    };
                    format!("{} {status} {}", s.suite, s.time)
                })
                .collect();
            json.push(format!(
                "{{\"name\":{name:?},\"manifest\":{:?},\"passed\":{passed},\"suites\":[{}]}}",
                manifest.display().to_string(),
                suites
                    .iter()
                    .map(|s| format!(
                        "{{\"suite\":{:?},\"passed\":{},\"failed\":{},\"skipped\":{}}}",
                        s.suite, s.passed, s.failed, s.skipped
                    ))
                    .collect::<Vec<_>>()
                    .join(",")
            ));
            rows.push((
                name,
                if cells.is_empty() {
                    format!(
                        "{} (no suite report found)",
                        if passed { "pass" } else { "FAIL" }
                    )
                } else {
                    cells.join("  ")
                },
            ));
            failures.extend(failed);
        }
        println!("\nexternal backends\n");
        let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        for (name, cells) in &rows {
            println!("{name:<width$}  │  {cells}");
        }
        let path = target.join("conformance").join("external.json");
        let _ = std::fs::create_dir_all(target.join("conformance"));
        std::fs::write(&path, format!("[{}]", json.join(",")))
            .map_err(|e| format!("write {}: {e}", path.display()))?;
        println!("report: {}", path.display());
        if !failures.is_empty() {
            println!("\n{} failed checks:", failures.len());
            for f in failures {
                println!("  {f}");
            }
        }
    }
    if ok {
        println!("==> conformance: every cell passed");
        Ok(())
    } else {
        Err("conformance failed (see the failed checks above)".into())
    }
}
