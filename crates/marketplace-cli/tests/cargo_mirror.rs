//! Mirror mode: `mkt cargo import` takes the `.crate` files of the machine's cargo cache, `mkt
//! serve` serves them, and a fresh `CARGO_HOME` whose `[source.crates-io]` is replaced by the
//! server builds a real project of more than 20 crates, with the checksums crates.io gave.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{get_page, mkt, ok, serve, terminate};
use marketplace_testing::mirror::{PROJECT, cargo_cache};

/// `(name, version) → checksum` of a `Cargo.lock`.
fn checksums(lock: &str) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |key: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
                .map(|v| v.trim_end_matches('"').to_owned())
        };
        if let (Some(name), Some(version), Some(sum)) =
            (field("name"), field("version"), field("checksum"))
        {
            out.insert((name, version), sum);
        }
    }
    out
}

#[cfg(unix)]
#[test]
fn imported_crates_serve_as_a_crates_io_mirror_that_cargo_builds_from() {
    let ci = std::env::var("CI").is_ok();
    let Some(cache) = cargo_cache() else {
        eprintln!("SKIP: no cargo download cache on this machine to import");
        assert!(
            !ci,
            "CI builds the workspace first, so it has a cargo cache"
        );
        return;
    };
    if Command::new("cargo").arg("--version").output().is_err() {
        eprintln!("SKIP: no cargo on PATH");
        assert!(!ci, "CI has cargo");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, config) = (dir.path().join("home"), dir.path().join("config.toml"));
    ok(mkt(&home, &config).arg("init").output().expect("init"));
    let imported = ok(mkt(&home, &config)
        .args(["cargo", "import"])
        .arg(&cache)
        .output()
        .expect("import"));
    assert!(
        imported.contains(" refused)") && imported.contains(", 0 refused"),
        "{imported}"
    );
    // Importing again changes nothing: every version is already present.
    let again = ok(mkt(&home, &config)
        .args(["cargo", "import"])
        .arg(&cache)
        .output()
        .expect("import again"));
    assert!(again.starts_with("imported 0 crates"), "{again}");

    let (server, address) = serve(&home, &config, &[], Stdio::piped());

    let cargo_home = dir.path().join("cargo-home");
    std::fs::create_dir_all(&cargo_home).expect("cargo home");
    std::fs::write(
        cargo_home.join("config.toml"),
        format!(
            "[source.crates-io]\nreplace-with = \"mirror\"\n\n[source.mirror]\nregistry = \"sparse+{address}/cargo/index/\"\n\n[net]\nretry = 0\n"
        ),
    )
    .expect("cargo config");
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join("src")).expect("mkdir");
    std::fs::write(project.join("Cargo.toml"), PROJECT).expect("manifest");
    std::fs::write(
        project.join("src/main.rs"),
        "fn main() { let v: serde_json::Value = serde_json::json!({\"ok\": true}); println!(\"{v}\"); }\n",
    )
    .expect("main");
    let built = Command::new("cargo")
        .args(["run", "--quiet"])
        .current_dir(&project)
        .env("CARGO_HOME", &cargo_home)
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo run");

    // The catalogue shows an imported crate: its readme from the .crate, the cargo line, and
    // the home's countersignature.
    let versions =
        checksums(&std::fs::read_to_string(project.join("Cargo.lock")).unwrap_or_default());
    let (_, version) = versions
        .keys()
        .find(|(name, _)| name == "serde_json")
        .unwrap_or_else(|| {
            panic!(
                "cargo resolved serde_json: {}",
                String::from_utf8_lossy(&built.stderr)
            )
        });
    let (status, page) = get_page(&address, &format!("/packages/serde_json/{version}"));
    assert_eq!(status, 200, "{page}");
    for wanted in [
        "<h1>Serde JSON",
        &format!("cargo add serde_json@{version} --registry marketplace"),
        "Trusted (",
    ] {
        assert!(page.contains(wanted), "the crate's page lacks {wanted}");
    }

    let served = terminate(server);
    assert!(
        built.status.success(),
        "cargo run against the mirror:\n{}\nserver: {served}",
        String::from_utf8_lossy(&built.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&built.stdout).trim(),
        r#"{"ok":true}"#
    );

    let lock = checksums(&std::fs::read_to_string(project.join("Cargo.lock")).expect("lock"));
    assert!(
        lock.len() >= 20,
        "a graph of at least 20 crates: {}",
        lock.len()
    );
    // Every checksum is the SHA-256 of the file cargo downloaded from crates.io, which is
    // what this workspace's own lockfile says wherever it names the same version.
    let ours = checksums(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock"))
            .expect("the workspace lock"),
    );
    let mut compared = 0;
    for ((name, version), sum) in &lock {
        if let Some(theirs) = ours.get(&(name.clone(), version.clone())) {
            assert_eq!(sum, theirs, "{name} {version}");
            compared += 1;
        }
    }
    assert!(
        compared >= 20,
        "{compared} checksums compared with the workspace's lockfile"
    );

    // An imported crate is a package like any other: `mkt verify` checks the home's
    // countersignature and reads the .crate under the archive rules.
    let (_, version) = lock
        .keys()
        .find(|(name, _)| name == "serde_json")
        .expect("serde_json in the graph");
    let verified = ok(mkt(&home, &config)
        .args(["verify", &format!("serde_json@{version}")])
        .output()
        .expect("verify"));
    assert!(verified.contains("signature valid"), "{verified}");
}
