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
    "tokio-postgres",
];

/// The crates whose normal dependency trees must hold no backend library, with the `cargo tree`
/// feature arguments that give the tree concerned: the kit with its end-to-end suite, and the
/// client without its backend features.
const BACKEND_FREE: &[(&str, &[&str])] = &[
    ("marketplace-core", &[]),
    ("marketplace-package", &[]),
    ("marketplace-protocol", &[]),
    ("marketplace-conformance", &["--features", "client"]),
    ("marketplace-client", &["--no-default-features"]),
];

/// Crates that the client's default (local-only) tree must not hold: object_store and the S3
/// stack, a second crypto library and OpenTelemetry (opt-in).
const NOT_IN_DEFAULT_CLIENT: &[&str] = &[
    "object_store",
    "aws-lc-rs",
    "aws-lc-sys",
    "reqwest",
    "hyper",
    "opentelemetry",
    "opentelemetry_sdk",
    "tokio-postgres",
];

/// Crypto libraries besides ring, which no tree of the workspace may hold (S3's TLS runs on
/// ring too).
const SECOND_CRYPTO: &[&str] = &["aws-lc-rs", "aws-lc-sys", "openssl-sys"];

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
    ("marketplace-registry-postgres", &["tokio-postgres"]),
    ("marketplace-store-local", &[]),
    ("marketplace-store-objectstore", &["object_store"]),
    ("marketplace-search-tantivy", &["tantivy"]),
    ("marketplace-remote", &["ring"]),
];

/// The house crates a backend may depend on: the contract, the wire types (for a backend that
/// reads a server) and the stored row encoding (for the SQL registries).
const BACKEND_HOUSE_CRATES: &[&str] = &[
    "marketplace-core",
    "marketplace-protocol",
    "marketplace-registry-encoding",
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
        if dep.starts_with("marketplace-")
            && dep != package
            && !BACKEND_HOUSE_CRATES.contains(&dep.as_str())
        {
            problems.push(format!(
                "{package} depends on {dep}; a backend depends on marketplace-core (and the wire types of marketplace-protocol) only"
            ));
        }
    }
    problems
}

/// The crates of the house, each with the house crates it may depend on — normal, dev and build
/// dependencies alike: the layers of docs/ARCHITECTURE.md, so that nothing imports upward (the
/// client never depends on the kit, not even for its tests). A crate of the house missing from
/// this table is a problem too.
pub(crate) const LAYERS: &[(&str, &str, &[&str])] = &[
    ("crates/marketplace-core", "marketplace-core", &[]),
    (
        "crates/marketplace-package",
        "marketplace-package",
        &[
            "marketplace-core",
            "marketplace-package",
            "marketplace-testing",
        ],
    ),
    (
        "crates/marketplace-protocol",
        "marketplace-protocol",
        &["marketplace-core"],
    ),
    (
        "crates/marketplace-cargo",
        "marketplace-cargo",
        &["marketplace-core", "marketplace-package"],
    ),
    (
        "crates/marketplace-crypto-ring",
        "marketplace-crypto-ring",
        &["marketplace-core", "marketplace-conformance"],
    ),
    (
        "crates/marketplace-registry-encoding",
        "marketplace-registry-encoding",
        &["marketplace-core"],
    ),
    (
        "crates/marketplace-registry-sqlite",
        "marketplace-registry-sqlite",
        &[
            "marketplace-core",
            "marketplace-registry-encoding",
            "marketplace-conformance",
        ],
    ),
    (
        "crates/marketplace-registry-postgres",
        "marketplace-registry-postgres",
        &[
            "marketplace-core",
            "marketplace-registry-encoding",
            "marketplace-registry-postgres",
            "marketplace-conformance",
            "marketplace-testing",
        ],
    ),
    (
        "crates/marketplace-store-local",
        "marketplace-store-local",
        &["marketplace-core", "marketplace-conformance"],
    ),
    (
        "crates/marketplace-store-objectstore",
        "marketplace-store-objectstore",
        &[
            "marketplace-core",
            "marketplace-store-objectstore",
            "marketplace-conformance",
            "marketplace-testing",
        ],
    ),
    (
        "crates/marketplace-search-tantivy",
        "marketplace-search-tantivy",
        &[
            "marketplace-core",
            "marketplace-conformance",
            "marketplace-testing",
        ],
    ),
    (
        "crates/marketplace-remote",
        "marketplace-remote",
        &[
            "marketplace-core",
            "marketplace-protocol",
            "marketplace-conformance",
            "marketplace-testing",
        ],
    ),
    (
        "crates/marketplace-client",
        "marketplace-client",
        &[
            "marketplace-core",
            "marketplace-package",
            "marketplace-cargo",
            "marketplace-client",
            "marketplace-registry-sqlite",
            "marketplace-registry-postgres",
            "marketplace-store-local",
            "marketplace-store-objectstore",
            "marketplace-search-tantivy",
            "marketplace-crypto-ring",
            "marketplace-remote",
        ],
    ),
    (
        "crates/marketplace-conformance",
        "marketplace-conformance",
        &[
            "marketplace-core",
            "marketplace-package",
            "marketplace-client",
        ],
    ),
    (
        "crates/marketplace-server",
        "marketplace-server",
        &[
            "marketplace-core",
            "marketplace-cargo",
            "marketplace-client",
            "marketplace-protocol",
            "marketplace-testing",
        ],
    ),
    (
        "crates/marketplace-cli",
        "marketplace-cli",
        &[
            "marketplace-core",
            "marketplace-cargo",
            "marketplace-client",
            "marketplace-server",
            "marketplace-testing",
        ],
    ),
    (
        "testing/support",
        "marketplace-testing",
        &["marketplace-core", "marketplace-package"],
    ),
];

/// The house crates named in the dependency sections of a `Cargo.toml`.
pub(crate) fn house_dependencies(manifest: &str) -> Vec<String> {
    let mut in_dependencies = false;
    let mut found = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            let section = line.trim_matches(|c| c == '[' || c == ']');
            in_dependencies = section.ends_with("dependencies");
            continue;
        }
        if !in_dependencies {
            continue;
        }
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        if name.starts_with("marketplace-") && !found.contains(&name) {
            found.push(name);
        }
    }
    found
}

/// Every house dependency that a crate's layer does not allow.
pub(crate) fn layer_problems(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for (dir, package, allowed) in LAYERS {
        let path = root.join(dir).join("Cargo.toml");
        let Ok(manifest) = std::fs::read_to_string(&path) else {
            problems.push(format!(
                "{} is listed in the layers but missing",
                path.display()
            ));
            continue;
        };
        for dep in house_dependencies(&manifest) {
            if !allowed.contains(&dep.as_str()) {
                problems.push(format!(
                    "{package} depends on {dep}, which its layer does not allow (an upward or sideways import; see docs/ARCHITECTURE.md)"
                ));
            }
        }
    }
    problems
}

/// Fails naming every dependency that breaks an architecture invariant: a backend library in
/// the core or the kit, a backend crate depending on another backend, or a house crate
/// depending on one its layer does not allow.
pub(crate) fn check(root: &Path) -> Result<(), String> {
    let mut problems = layer_problems(root);
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
    let client = normal_dependencies(root, "marketplace-client", &[])?;
    for lib in NOT_IN_DEFAULT_CLIENT {
        if client.iter().any(|d| d == lib) {
            problems.push(format!(
                "marketplace-client with default features depends on {lib} (see `cargo tree -p marketplace-client -e normal -i {lib}`)"
            ));
        }
    }
    // The contract's links are `HttpUrl`s: a URL library (36 crates with its IDNA tables) is
    // no part of it.
    if normal_dependencies(root, "marketplace-core", &[])?
        .iter()
        .any(|d| d == "url")
    {
        problems.push("marketplace-core depends on url; its links are HttpUrl".into());
    }
    let everything = normal_dependencies(root, "marketplace-client", &["--all-features"])?;
    for lib in SECOND_CRYPTO {
        if everything.iter().any(|d| d == lib) {
            problems.push(format!(
                "marketplace-client with all features depends on {lib}, a second crypto library beside ring"
            ));
        }
    }
    if problems.is_empty() {
        println!(
            "    marketplace-client's default tree holds no object_store, S3 stack or OpenTelemetry, marketplace-core no url; with every feature, ring is the only crypto library"
        );
        println!(
            "    marketplace-core, marketplace-package, marketplace-protocol, marketplace-conformance (with its client suite) and marketplace-client without default features depend on no backend library;"
        );
        println!("    each backend crate depends on marketplace-core and its own library only");
        println!(
            "    no crate of the house depends on one above its layer (dev-dependencies included)"
        );
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
