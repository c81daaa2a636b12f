//! Mirror mode: `mkt cargo import` takes the `.crate` files of the machine's cargo cache, `mkt
//! serve` serves them, and a fresh `CARGO_HOME` whose `[source.crates-io]` is replaced by the
//! server builds a real project of more than 20 crates, with the checksums crates.io gave.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn mkt(home: &Path, config: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mkt"));
    cmd.env("MKT_HOME", home).env("MKT_CONFIG", config);
    cmd
}

fn ok(output: std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `.crate` cache of the machine's cargo.
fn cargo_cache() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let cache = home.join("registry").join("cache");
    cache.is_dir().then_some(cache)
}

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

/// The project: crates this workspace builds with, so the cache holds their whole graph.
const PROJECT: &str = r#"[package]
name = "mirror-user"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
semver = "1"
toml = "1"
hex = "0.4"
thiserror = "2"
smallvec = "1"

[workspace]
"#;

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

    let mut server = mkt(&home, &config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut first = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    let address = first
        .trim()
        .strip_prefix("listening on ")
        .expect("the address")
        .to_owned();

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

    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    let mut served = String::new();
    if let Some(mut stderr) = server.stderr.take() {
        let _ = stderr.read_to_string(&mut served);
    }
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
}
