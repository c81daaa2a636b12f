//! Architecture invariants checked with `cargo tree`.

use std::path::Path;
use std::process::Command;

/// Backend libraries that `marketplace-core` must never depend on.
pub(crate) const BACKEND_LIBRARIES: &[&str] = &[
    "rusqlite",
    "libsqlite3-sys",
    "object_store",
    "tantivy",
    "ring",
    "opentelemetry",
    "opentelemetry_sdk",
];

/// The crates whose normal dependency trees must hold no backend library.
const BACKEND_FREE: &[&str] = &["marketplace-core", "marketplace-conformance"];

/// Names of every crate in the normal (non-dev, non-build) dependency tree of `package`.
pub(crate) fn normal_dependencies(root: &Path, package: &str) -> Result<Vec<String>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root)
        .args([
            "tree", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}",
        ])
        .output()
        .map_err(|e| format!("could not run cargo tree: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo tree -p {package} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Fails naming every backend library found in a backend-free crate's tree.
pub(crate) fn check(root: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    for package in BACKEND_FREE {
        let deps = normal_dependencies(root, package)?;
        for lib in BACKEND_LIBRARIES {
            if deps.iter().any(|d| d == lib) {
                problems.push(format!(
                    "{package} depends on the backend library {lib} (see `cargo tree -p {package} -e normal -i {lib}`)"
                ));
            }
        }
    }
    if problems.is_empty() {
        println!("    marketplace-core and marketplace-conformance depend on no backend library");
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
