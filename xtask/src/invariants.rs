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

/// The crates whose normal dependency trees must hold no backend library, with the `cargo tree`
/// feature arguments that give the tree concerned: the kit with its end-to-end suite, and the
/// client without its backend features.
const BACKEND_FREE: &[(&str, &[&str])] = &[
    ("marketplace-core", &[]),
    ("marketplace-package", &[]),
    ("marketplace-conformance", &["--features", "client"]),
    ("marketplace-client", &["--no-default-features"]),
];

/// Names of every crate in the normal (non-dev, non-build) dependency tree of `package`.
pub(crate) fn normal_dependencies(
    root: &Path,
    package: &str,
    features: &[&str],
) -> Result<Vec<String>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root)
        .args([
            "tree", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}",
        ])
        .args(features)
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

/// Backend crates and the backend libraries each may use (its own, and nothing else).
const BACKEND_CRATES: &[(&str, &[&str])] = &[
    ("marketplace-crypto-ring", &["ring"]),
    (
        "marketplace-registry-sqlite",
        &["rusqlite", "libsqlite3-sys"],
    ),
    ("marketplace-store-objectstore", &["object_store"]),
    ("marketplace-search-tantivy", &["tantivy"]),
];

/// Whether the workspace has a crate directory for `package`.
fn exists(root: &Path, package: &str) -> bool {
    root.join("crates")
        .join(package)
        .join("Cargo.toml")
        .is_file()
}

/// Problems with a backend crate's tree: another backend library, or another marketplace crate
/// than the core.
pub(crate) fn backend_problems(package: &str, own: &[&str], deps: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for dep in deps {
        if BACKEND_LIBRARIES.contains(&dep.as_str()) && !own.contains(&dep.as_str()) {
            problems.push(format!(
                "{package} depends on another backend's library {dep}"
            ));
        }
        if dep.starts_with("marketplace-") && dep != package && dep != "marketplace-core" {
            problems.push(format!(
                "{package} depends on {dep}; a backend depends on marketplace-core only"
            ));
        }
    }
    problems
}

/// Fails naming every dependency that breaks an architecture invariant: a backend library in
/// the core or the kit, or a backend crate depending on another backend.
pub(crate) fn check(root: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    for (package, own) in BACKEND_CRATES {
        if exists(root, package) {
            let deps = normal_dependencies(root, package, &[])?;
            problems.extend(backend_problems(package, own, &deps));
        }
    }
    for (package, features) in BACKEND_FREE {
        let deps = normal_dependencies(root, package, features)?;
        for lib in BACKEND_LIBRARIES {
            if deps.iter().any(|d| d == lib) {
                problems.push(format!(
                    "{package} {} depends on the backend library {lib} (see `cargo tree -p {package} {} -e normal -i {lib}`)",
                    features.join(" "),
                    features.join(" ")
                ));
            }
        }
    }
    if problems.is_empty() {
        println!(
            "    marketplace-core, marketplace-package, marketplace-conformance (with its client suite) and marketplace-client without default features depend on no backend library;"
        );
        println!("    each backend crate depends on marketplace-core and its own library only");
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
