//! `cargo xtask conformance`: runs the conformance matrix (`testing/matrix`), which enumerates
//! every combination of in-tree backend modes and then the external backend crates, reading
//! every suite's report as JSON. This crate only starts it.

use std::path::{Path, PathBuf};

use crate::{cargo, workspace_root};

/// The environment variable the kit reads to save reports (`marketplace_conformance::
/// REPORT_DIR_VAR`; repeated here because xtask depends on nothing).
pub(crate) const REPORT_DIR_VAR: &str = "MARKETPLACE_CONFORMANCE_REPORTS";

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Where `cargo xtask ci` has the backend crates' tests save their per-trait reports.
pub(crate) fn reports_dir() -> PathBuf {
    target_dir().join("conformance").join("reports")
}

/// Runs the matrix with `args`; with `reports`, the per-trait suites that the backend crates'
/// tests already ran are taken from their saved reports instead of being run again.
pub(crate) fn run(args: &[String], reports: Option<&Path>) -> Result<(), String> {
    let json = target_dir().join("conformance").join("matrix.json");
    println!("==> conformance matrix: cargo run -p marketplace-matrix");
    let mut command = cargo();
    command
        .args(["run", "--locked", "-q", "-p", "marketplace-matrix", "--"])
        .args(args)
        .arg("--json")
        .arg(&json);
    if let Some(dir) = reports {
        command.arg("--reports").arg(dir);
    }
    let status = command
        .status()
        .map_err(|e| format!("could not run the matrix: {e}"))?;
    if status.success() {
        println!("==> conformance: every cell passed");
        Ok(())
    } else {
        Err("conformance failed (see the failed checks above)".into())
    }
}
