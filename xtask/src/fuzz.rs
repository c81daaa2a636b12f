//! `cargo xtask fuzz`: runs the cargo-fuzz (libFuzzer) targets of `fuzz/`, each for a bounded
//! time, from the committed seed corpus (`fuzz/corpus/TARGET`) plus a working corpus under
//! `target/fuzz-corpus/TARGET` that keeps what runs discover. A crash fails the run and leaves
//! its input under `fuzz/artifacts/TARGET/`: turn it into a regression test.
//!
//! The machine's toolchain is stable; libFuzzer's instrumentation needs flags stable rustc
//! accepts only with `RUSTC_BOOTSTRAP=1`, which is set for these builds alone.

use std::process::Command;

use crate::{conformance::target_dir, workspace_root};

/// Every fuzz target, as `fuzz/Cargo.toml` declares them.
pub(crate) const TARGETS: &[&str] = &[
    "manifest",
    "archive",
    "pem",
    "identifiers",
    "search_query",
    "wire_bodies",
];

fn installed() -> bool {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `cargo xtask fuzz [TARGET…] [--seconds N]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut seconds = 60u64;
    let mut chosen: Vec<&str> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            seconds = args
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or("--seconds needs a number")?;
        } else if let Some(target) = TARGETS.iter().find(|t| **t == arg) {
            chosen.push(target);
        } else {
            return Err(format!(
                "unknown fuzz target {arg:?}; targets: {}",
                TARGETS.join(", ")
            ));
        }
    }
    if chosen.is_empty() {
        chosen = TARGETS.to_vec();
    }
    if !installed() {
        return Err("cargo-fuzz is not installed: run `cargo install --locked cargo-fuzz`".into());
    }
    fuzz(&chosen, seconds)
}

/// The CI gate: every target for 60 s, or a visible SKIP when cargo-fuzz is not installed (the
/// README's test command must pass with the Rust toolchain alone; `.ci/run` installs it, and
/// under `CI=true` a missing cargo-fuzz fails).
pub(crate) fn ci() -> Result<(), String> {
    if !installed() {
        return crate::missing(
            "fuzz",
            "cargo-fuzz is not installed (`cargo install --locked cargo-fuzz`; .ci/run installs it)",
        );
    }
    let seconds = std::env::var("MARKETPLACE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    fuzz(TARGETS, seconds)
}

fn fuzz(targets: &[&str], seconds: u64) -> Result<(), String> {
    let root = workspace_root();
    let fuzz_dir = root.join("fuzz");
    let build_dir = target_dir().join("fuzz");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!(
        "==> fuzz: building {} targets (sanitizer: none)",
        targets.len()
    );
    let status = Command::new(&cargo)
        .current_dir(&fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "build", "--sanitizer", "none", "--target-dir"])
        .arg(&build_dir)
        .status()
        .map_err(|e| format!("could not run cargo fuzz: {e}"))?;
    if !status.success() {
        return Err(format!("cargo fuzz build failed ({status})"));
    }
    for target in targets {
        let work = target_dir().join("fuzz-corpus").join(target);
        std::fs::create_dir_all(&work).map_err(|e| format!("create {}: {e}", work.display()))?;
        println!("==> fuzz {target}: {seconds} s");
        let status = Command::new(&cargo)
            .current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "--sanitizer", "none", "--target-dir"])
            .arg(&build_dir)
            .arg(target)
            .arg(&work)
            .arg(fuzz_dir.join("corpus").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg("-rss_limit_mb=2048")
            .arg("-print_final_stats=1")
            .status()
            .map_err(|e| format!("could not run cargo fuzz: {e}"))?;
        if !status.success() {
            return Err(format!(
                "fuzz target {target} found a crash ({status}); the input is under fuzz/artifacts/{target}/ — make it a regression test"
            ));
        }
    }
    println!("==> fuzz: no crash in {} targets", targets.len());
    Ok(())
}
