//! `cargo xtask`: repository automation for Marketplace.
//!
//! - `cargo xtask ci` runs every gate CI runs: formatting, clippy with warnings denied, the
//!   dependency invariants of the architecture, rustdoc with warnings denied, and the whole
//!   test suite.
//! - `cargo xtask invariants` checks only the dependency invariants.
//! - `cargo xtask bench-report [--quick]` runs the SPEC §8 workloads in release mode and
//!   prints the comparison table (also written under `target/bench-report/`).
//! - `cargo xtask conformance [filters]` runs the conformance matrix: every combination of the
//!   in-tree backend modes, then the external backend crates.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod conformance;
mod fuzz;
mod invariants;
mod schemathesis;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("invariants") => invariants::check(&workspace_root()),
        Some("conformance") => conformance::run(&args[1..], None),
        Some("bench-report") => bench_report(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("api-fuzz") => schemathesis::run(&workspace_root()),
        Some("help" | "--help" | "-h") | None => {
            print_help();
            Ok(())
        }
        Some(other) => Err(format!("unknown task {other:?}; run `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    println!(
        "cargo xtask <task>\n\n\
         tasks:\n  \
         ci           fmt check, clippy -D warnings (also the client without default features),\n               dependency invariants, rustdoc -D warnings, cargo test --workspace, the\n               conformance matrix, schemathesis against a served marketplace, fuzz runs,\n               cargo deny check licenses bans sources\n               (cargo-deny installed when missing); a gate whose tool cannot be had\n               (moto_server for S3, PostgreSQL, cargo-fuzz) prints SKIP, and fails under CI=true\n  \
         invariants   check the dependency invariants of the architecture\n  \
         api-fuzz     schemathesis against the OpenAPI document of a served marketplace (needs\n               `pip install schemathesis` and the debug mkt the tests build)\n  \
         bench-report run the SPEC §8 workloads (release build) and print measured values,\n               targets, raw baselines and ratios; --quick for a short run,\n               --only w1,w4 for a subset\n  \
         fuzz         every fuzz target (fuzz/) for --seconds N each (default 60), or the\n               targets named; needs cargo-fuzz (`cargo install --locked cargo-fuzz`)\n  \
         conformance  the conformance matrix (testing/matrix): every per-trait suite once per\n               backend mode, the client suite once per combination and once over\n               HTTP (a server per check), then the external backend crates.\n               Filters: --registry sqlite-file,sqlite-memory,postgres --store local,memory,objectstore-local,objectstore-memory,s3\n               --search tantivy-ram,tantivy-disk --crypto ring; --skip-external; --skip-remote;\n               --break TRAIT:MODE injects a broken backend (to see the matrix catch it)"
    );
}

/// The workspace root (the parent of this crate's directory).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

fn run(step: &str, args: &[&str]) -> Result<(), String> {
    println!("==> {step}: cargo {}", args.join(" "));
    let status = cargo()
        .args(args)
        .status()
        .map_err(|e| format!("{step}: could not start cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{step} failed ({status}); run `cargo {}` to see why",
            args.join(" ")
        ))
    }
}

fn ci() -> Result<(), String> {
    run("format", &["fmt", "--all", "--", "--check"])?;
    run(
        "clippy",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run(
        "client without default features",
        &[
            "clippy",
            "-p",
            "marketplace-client",
            "--no-default-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    println!("==> dependency invariants");
    invariants::check(&workspace_root())?;
    println!("==> docs: RUSTDOCFLAGS=-D warnings cargo doc --workspace --no-deps");
    let status = cargo()
        .args(["doc", "--workspace", "--no-deps", "--locked"])
        .env("RUSTDOCFLAGS", "-D warnings")
        .status()
        .map_err(|e| format!("docs: could not start cargo: {e}"))?;
    if !status.success() {
        return Err("docs failed: broken intra-doc links or rustdoc warnings (see above)".into());
    }
    // The backend crates' conformance tests save their per-trait reports, so the matrix runs
    // only the client suite per combination: no suite runs twice.
    let reports = conformance::reports_dir();
    let _ = std::fs::remove_dir_all(&reports);
    println!(
        "==> tests: {}={} cargo test --workspace --locked",
        conformance::REPORT_DIR_VAR,
        reports.display()
    );
    let status = cargo()
        .args(["test", "--workspace", "--locked"])
        .env(conformance::REPORT_DIR_VAR, &reports)
        .status()
        .map_err(|e| format!("tests: could not start cargo: {e}"))?;
    if !status.success() {
        return Err("tests failed; run `cargo test --workspace` to see why".into());
    }
    // The matrix's S3 column needs moto_server (PyPI) and its PostgreSQL row a PostgreSQL
    // installation (Debian's postgresql); without one, the other columns and rows run.
    let mut filters: Vec<String> = Vec::new();
    if !tool_answers("moto_server", &["--help"]) {
        missing(
            "conformance matrix, S3 column",
            "moto_server is not installed (pip install 'moto[server]'; .ci/run installs it)",
        )?;
        filters.extend([
            "--store".to_string(),
            "local,memory,objectstore-local,objectstore-memory".to_string(),
        ]);
    }
    if !postgres_installed() {
        missing(
            "conformance matrix, PostgreSQL rows",
            "PostgreSQL is not installed (apt-get install postgresql; .ci/run installs it)",
        )?;
        filters.extend([
            "--registry".to_string(),
            "sqlite-file,sqlite-memory".to_string(),
        ]);
    }
    conformance::run(&filters, Some(&reports))?;
    if tool_answers("schemathesis", &["--version"]) {
        schemathesis::run(&workspace_root())?;
    } else {
        missing(
            "API fuzzing",
            "schemathesis is not installed (pip install schemathesis; .ci/run installs it)",
        )?;
    }
    fuzz::ci()?;
    deny()?;
    println!("==> ci: every gate passed");
    Ok(())
}

/// `cargo xtask bench-report [--quick]`: the workload runner, built in release mode.
fn bench_report(args: &[String]) -> Result<(), String> {
    let out = conformance::target_dir().join("bench-report");
    // The CLI row runs the release `mkt` beside the runner.
    let built = cargo()
        .args([
            "build",
            "--release",
            "--locked",
            "-q",
            "-p",
            "marketplace-cli",
            "--bin",
            "mkt",
        ])
        .status()
        .map_err(|e| format!("could not build mkt: {e}"))?;
    if !built.success() {
        return Err(format!("building mkt failed ({built})"));
    }
    let mut command = cargo();
    command.args([
        "run",
        "--release",
        "--locked",
        "-q",
        "-p",
        "marketplace-benches",
        "--bin",
        "bench-report",
        "--",
    ]);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => {
                command.arg(arg);
            }
            "--only" => {
                let list = args.next().ok_or("--only needs a list such as w1,w4")?;
                command.arg(arg).arg(list);
            }
            other => {
                return Err(format!(
                    "unknown bench-report option {other:?} (--quick, --only w1,w2,…)"
                ));
            }
        }
    }
    command.arg("--out").arg(&out);
    println!("==> bench-report (release build; the first build takes a few minutes)");
    let status = command
        .status()
        .map_err(|e| format!("could not run the bench-report: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("bench-report failed ({status})"))
    }
}

/// `cargo deny check licenses bans sources` (advisories need a network database; see
/// deny.toml). cargo-deny is installed first when it is missing (it needs only cargo and the
/// package registry); when it cannot be had the gate is skipped, visibly.
fn deny() -> Result<(), String> {
    let installed = || {
        cargo()
            .args(["deny", "--version"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !installed() {
        println!("==> installing cargo-deny: cargo install --locked cargo-deny");
        let status = cargo()
            .args(["install", "--locked", "--quiet", "cargo-deny"])
            .status();
        if !status.is_ok_and(|s| s.success()) || !installed() {
            return missing(
                "licenses, bans and sources",
                "cargo-deny is not installed and `cargo install --locked cargo-deny` failed",
            );
        }
    }
    run(
        "licenses, bans and sources",
        &["deny", "--locked", "check", "licenses", "bans", "sources"],
    )
}

/// Whether `program` runs and answers `args` (a `--version` or `--help`) successfully.
fn tool_answers(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether PostgreSQL's server binaries are here: `initdb` on PATH, or under Debian's
/// `/usr/lib/postgresql/<major>/bin` (where the `postgresql` package puts it), as the test
/// harness looks for them.
fn postgres_installed() -> bool {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("initdb").is_file()));
    on_path
        || std::fs::read_dir("/usr/lib/postgresql").is_ok_and(|majors| {
            majors
                .flatten()
                .any(|m| m.path().join("bin").join("initdb").is_file())
        })
}

/// A gate that cannot run for want of a tool: a visible SKIP line on a developer's machine, a
/// failure under CI (`CI=true`), where .ci/run installs every tool and nothing may skip.
fn missing(gate: &str, why: &str) -> Result<(), String> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        return Err(format!("{gate}: {why} (CI=true: nothing may be skipped)"));
    }
    println!("==> {gate}: SKIP — {why}");
    Ok(())
}

#[cfg(test)]
mod tests;
