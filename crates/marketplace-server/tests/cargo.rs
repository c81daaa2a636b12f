//! The machine's own `cargo` against the server as an alternative registry: publish a
//! workspace of crates that depend on each other, build a project from them, search, yank,
//! owners, `cargo update` revalidating the index, and the failures cargo must report with our
//! message. Each test starts its server on 127.0.0.1 and gives cargo an isolated `CARGO_HOME`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use marketplace_client::{MarketplaceBuilder, MarketplaceClient};
use marketplace_core::{PackageRef, Scope, TrustLevel, UserName};
use marketplace_server::{Server, ServerConfig};
use tokio::sync::oneshot;

/// A server with accounts and its own signing key, and the tokens the tests use.
struct Registry {
    base: String,
    client: Arc<MarketplaceClient>,
    /// Alice: publish-new, publish-update, yank, owners.
    alice: String,
    /// Bob: a user with the same scopes, owning nothing.
    bob: String,
    stop: Option<oneshot::Sender<()>>,
    _home: tempfile::TempDir,
}

impl Registry {
    async fn start(config: ServerConfig) -> Registry {
        // reqwest's TLS stack wants a provider chosen, although these tests speak plain HTTP.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let home = tempfile::tempdir().expect("tempdir");
        let client = MarketplaceBuilder::local(home.path())
            .map(|b| b.metrics(Arc::new(marketplace_client::OtelMetrics::new())))
            .and_then(MarketplaceBuilder::build)
            .expect("a home");
        let key = client.generate_keypair().await.expect("the server's key");
        client
            .trust_key(&key.public_key, TrustLevel::Ultimate)
            .await
            .expect("trust it");
        let scopes = [
            Scope::PublishNew,
            Scope::PublishUpdate,
            Scope::Yank,
            Scope::Owners,
        ];
        let mut tokens = Vec::new();
        for name in ["alice", "bob"] {
            let user = UserName::new(name).expect("name");
            client.create_user(user.clone(), false).await.expect("user");
            tokens.push(
                client
                    .create_token(&user, "cargo", scopes, None, None)
                    .await
                    .expect("token")
                    .secret,
            );
        }
        let client = Arc::new(client);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = Server::new(Arc::clone(&client))
            .with_config(config)
            .with_signing_key(key);
        tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Registry {
            base,
            client,
            bob: tokens.pop().expect("bob"),
            alice: tokens.pop().expect("alice"),
            stop: Some(stop),
            _home: home,
        }
    }

    /// Requests answered on `route` with `status`, from `/metrics`.
    async fn answered(&self, route: &str, status: u16) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .filter(|l| l.starts_with("marketplace_http_requests_total"))
            .filter(|l| {
                l.contains(&format!("route=\"{route}\""))
                    && l.contains(&format!("status=\"{status}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Cargo with its own home naming the registry `mkt`, a shared target directory, and a token.
struct Cargo {
    home: PathBuf,
    target: PathBuf,
    token: Option<String>,
}

impl Cargo {
    fn new(root: &Path, registry: &Registry, token: Option<&str>) -> Cargo {
        let home = root.join("cargo-home");
        std::fs::create_dir_all(&home).expect("cargo home");
        std::fs::write(
            home.join("config.toml"),
            format!(
                "[registries.mkt]\nindex = \"sparse+{}/cargo/index/\"\n\n[registry]\nglobal-credential-providers = [\"cargo:token\"]\n\n[net]\nretry = 0\n",
                registry.base
            ),
        )
        .expect("cargo config");
        Cargo {
            home,
            target: root.join("target"),
            token: token.map(str::to_owned),
        }
    }

    /// Runs cargo in `dir` with `args` (on the blocking pool: the server runs meanwhile).
    async fn run(&self, dir: &Path, args: &[&str]) -> Output {
        let mut command = Command::new("cargo");
        command
            .args(args)
            .current_dir(dir)
            .env("CARGO_HOME", &self.home)
            .env("CARGO_TARGET_DIR", &self.target)
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("CARGO_REGISTRIES_MKT_TOKEN")
            .env_remove("RUSTFLAGS");
        if let Some(token) = &self.token {
            command.env("CARGO_REGISTRIES_MKT_TOKEN", token);
        }
        tokio::task::spawn_blocking(move || command.output().expect("run cargo"))
            .await
            .expect("cargo ran")
    }

    /// Runs cargo and asserts it succeeded; returns its stdout and stderr.
    async fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run(dir, args).await;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "cargo {}:\n{text}", args.join(" "));
        text
    }

    /// Runs cargo and asserts it failed; returns its stderr.
    async fn fails(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run(dir, args).await;
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "cargo {} should fail:\n{text}",
            args.join(" ")
        );
        text
    }
}

/// `cargo publish` to the test registry, of a crate written just before (not built, not committed).
const PUBLISH: &[&str] = &[
    "publish",
    "--registry",
    "mkt",
    "--no-verify",
    "--allow-dirty",
];

fn cargo_available() -> bool {
    match Command::new("cargo").arg("--version").output() {
        Ok(out) if out.status.success() => true,
        _ => {
            eprintln!("SKIP: no cargo on PATH: the Cargo registry tests need the machine's cargo");
            assert!(
                std::env::var("CI").is_err(),
                "CI must have cargo for the Cargo registry tests"
            );
            false
        }
    }
}

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

/// A library crate `name` with `manifest_rest` after its `[package]` table.
fn library(root: &Path, name: &str, version: &str, extra_package: &str, rest: &str, lib: &str) {
    write(
        &root.join(name).join("Cargo.toml"),
        &format!(
            "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\nlicense = \"MIT\"\ndescription = \"The {name} crate of the registry test\"\n{extra_package}\n{rest}"
        ),
    );
    write(&root.join(name).join("src/lib.rs"), lib);
}

/// The workspace: `mkt-util` depends on `mkt-base` (with a feature), on `mkt-extra` renamed
/// to `helper`, optionally on `mkt-opt`, on `mkt-unixonly` for unix only, and on
/// `mkt-devonly` for its tests.
fn workspace(root: &Path) {
    write(
        &root.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"mkt-base\", \"mkt-extra\", \"mkt-opt\", \"mkt-unixonly\", \"mkt-devonly\", \"mkt-util\"]\n",
    );
    library(
        root,
        "mkt-base",
        "0.1.0",
        "keywords = [\"registry-test\"]\nrust-version = \"1.60\"",
        "[features]\ndefault = [\"std\"]\nstd = []\nextra = []\n",
        "pub fn base() -> u32 { if cfg!(feature = \"extra\") { 41 } else { 0 } }\n",
    );
    library(
        root,
        "mkt-extra",
        "0.1.0",
        "",
        "",
        "pub fn one() -> u32 { 1 }\n",
    );
    library(
        root,
        "mkt-opt",
        "0.1.0",
        "",
        "",
        "pub fn opt() -> u32 { 100 }\n",
    );
    library(
        root,
        "mkt-unixonly",
        "0.1.0",
        "",
        "",
        "pub fn unix() -> u32 { 1000 }\n",
    );
    library(root, "mkt-devonly", "0.1.0", "", "", "pub fn dev() {}\n");
    let dep =
        |name: &str| format!("{{ path = \"../{name}\", version = \"0.1\", registry = \"mkt\" }}");
    library(
        root,
        "mkt-util",
        "0.1.0",
        "keywords = [\"registry-test\", \"utility\"]\ncategories = [\"development-tools\"]",
        &format!(
            "[dependencies]\nmkt-base = {{ path = \"../mkt-base\", version = \"0.1\", registry = \"mkt\", features = [\"extra\"] }}\nhelper = {{ package = \"mkt-extra\", path = \"../mkt-extra\", version = \"0.1\", registry = \"mkt\" }}\nmkt-opt = {{ path = \"../mkt-opt\", version = \"0.1\", registry = \"mkt\", optional = true }}\n\n[target.'cfg(unix)'.dependencies]\nmkt-unixonly = {}\n\n[dev-dependencies]\nmkt-devonly = {}\n\n[features]\nfancy = [\"dep:mkt-opt\"]\n",
            dep("mkt-unixonly"),
            dep("mkt-devonly"),
        ),
        "pub fn answer() -> u32 {\n    let fancy = {\n        #[cfg(feature = \"fancy\")]\n        { mkt_opt::opt() }\n        #[cfg(not(feature = \"fancy\"))]\n        { 0 }\n    };\n    mkt_base::base() + helper::one() + mkt_unixonly::unix() + fancy\n}\n",
    );
}

/// A binary project using `mkt-util` with its `fancy` feature.
fn consumer(root: &Path) -> PathBuf {
    let dir = root.join("consumer");
    write(
        &dir.join("Cargo.toml"),
        "[package]\nname = \"consumer\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\nmkt-util = { version = \"0.1\", registry = \"mkt\", features = [\"fancy\"] }\n\n[workspace]\n",
    );
    write(
        &dir.join("src/main.rs"),
        "fn main() { println!(\"answer={}\", mkt_util::answer()); }\n",
    );
    dir
}

fn lock_version(dir: &Path, name: &str) -> Option<String> {
    let lock = std::fs::read_to_string(dir.join("Cargo.lock")).ok()?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{name}\"") {
            return lines
                .next()
                .and_then(|v| v.strip_prefix("version = \""))
                .map(|v| v.trim_end_matches('"').to_owned());
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_publishes_a_workspace_and_builds_a_project_from_it() {
    if !cargo_available() {
        return;
    }
    let registry = Registry::start(ServerConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let cargo = Cargo::new(root, &registry, Some(&registry.alice));
    let ws = root.join("ws");
    workspace(&ws);
    cargo
        .ok(
            &ws,
            &[
                "publish",
                "--workspace",
                "--registry",
                "mkt",
                "--no-verify",
                "--allow-dirty",
            ],
        )
        .await;

    // What cargo published is a package of the marketplace like any other, countersigned.
    let util = registry
        .client
        .registry()
        .get(&"mkt-util@0.1.0".parse().unwrap())
        .await
        .expect("mkt-util registered");
    assert!(util.signature.is_some(), "countersigned by the server");
    let deps: Vec<String> = util.dependencies.keys().map(ToString::to_string).collect();
    assert_eq!(deps, ["mkt-base"], "the unconditional graph");
    assert_eq!(util.renamed_dependencies.len(), 1, "helper = mkt-extra");
    assert_eq!(util.keywords, ["registry-test", "utility"]);

    // The index line holds every Cargo field.
    let line = reqwest::get(format!("{}/cargo/index/mk/t-/mkt-util", registry.base))
        .await
        .expect("index")
        .text()
        .await
        .expect("text");
    let line: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    let dep = |name: &str| {
        line["deps"]
            .as_array()
            .expect("deps")
            .iter()
            .find(|d| d["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {line}"))
    };
    assert_eq!(dep("mkt-base")["features"], serde_json::json!(["extra"]));
    assert_eq!(dep("helper")["package"], "mkt-extra");
    assert_eq!(dep("mkt-opt")["optional"], true);
    assert_eq!(dep("mkt-unixonly")["target"], "cfg(unix)");
    assert_eq!(dep("mkt-devonly")["kind"], "dev");
    assert_eq!(
        line["features2"]["fancy"],
        serde_json::json!(["dep:mkt-opt"])
    );
    assert_eq!(line["v"], 2);
    assert_eq!(line["yanked"], false);
    assert!(line["pubtime"].is_string());

    // A project builds against the registry and runs.
    let project = consumer(root);
    let built = cargo.ok(&project, &["run", "--quiet"]).await;
    assert!(built.contains("answer=1142"), "{built}");
    // The downloads were counted, and the countersignature verifies as any package's does.
    let util_id = "mkt-util@0.1.0".parse().unwrap();
    let stats = registry.client.stats(&util_id).await.expect("stats");
    assert_eq!(stats.version_downloads, 1, "cargo's download counted");
    registry
        .client
        .verify(&util_id)
        .await
        .expect("mkt verify holds for a crate");

    // cargo search finds it.
    let found = cargo
        .ok(&project, &["search", "registry-test", "--registry", "mkt"])
        .await;
    assert!(found.contains("mkt-util = \"0.1.0\""), "{found}");

    // A new version: cargo update revalidates the index, unchanged files answered 304.
    let before = registry.answered("/cargo/index/{*path}", 304).await;
    library(
        &ws,
        "mkt-base",
        "0.1.1",
        "rust-version = \"1.60\"",
        "[features]\ndefault = [\"std\"]\nstd = []\nextra = []\n",
        "pub fn base() -> u32 { if cfg!(feature = \"extra\") { 41 } else { 0 } }\n",
    );
    cargo.ok(&ws.join("mkt-base"), PUBLISH).await;
    cargo.ok(&project, &["update"]).await;
    assert_eq!(lock_version(&project, "mkt-base").as_deref(), Some("0.1.1"));
    let after = registry.answered("/cargo/index/{*path}", 304).await;
    assert!(
        after > before,
        "unchanged index files revalidated with 304 ({before} → {after})"
    );

    // Yanked: a new lockfile does not choose it; the existing one still builds.
    cargo
        .ok(&project, &["yank", "mkt-base@0.1.1", "--registry", "mkt"])
        .await;
    assert!(
        registry
            .client
            .registry()
            .is_yanked(&"mkt-base@0.1.1".parse().unwrap())
            .await
            .expect("yank state")
    );
    cargo.ok(&project, &["build", "--locked", "--quiet"]).await;
    let fresh = root.join("fresh");
    std::fs::create_dir_all(&fresh).expect("mkdir");
    std::fs::copy(project.join("Cargo.toml"), fresh.join("Cargo.toml")).expect("copy");
    write(&fresh.join("src/main.rs"), "fn main() {}\n");
    cargo.ok(&fresh, &["generate-lockfile"]).await;
    assert_eq!(lock_version(&fresh, "mkt-base").as_deref(), Some("0.1.0"));
    cargo
        .ok(
            &project,
            &["yank", "--undo", "mkt-base@0.1.1", "--registry", "mkt"],
        )
        .await;
    cargo.ok(&fresh, &["update"]).await;
    assert_eq!(lock_version(&fresh, "mkt-base").as_deref(), Some("0.1.1"));

    // Owners: add, list, remove.
    cargo
        .ok(
            &project,
            &["owner", "--add", "bob", "mkt-util", "--registry", "mkt"],
        )
        .await;
    let owners = registry
        .client
        .owners(&marketplace_core::OwnerTarget::Package(
            "mkt-util".parse::<PackageRef>().unwrap(),
        ))
        .await
        .expect("owners");
    assert_eq!(owners.len(), 2, "{owners:?}");
    let listed = cargo
        .ok(
            &project,
            &["owner", "--list", "mkt-util", "--registry", "mkt"],
        )
        .await;
    assert!(
        listed.contains("alice") && listed.contains("bob"),
        "{listed}"
    );
    cargo
        .ok(
            &project,
            &["owner", "--remove", "bob", "mkt-util", "--registry", "mkt"],
        )
        .await;
    let listed = cargo
        .ok(
            &project,
            &["owner", "--list", "mkt-util", "--registry", "mkt"],
        )
        .await;
    assert!(!listed.contains("bob"), "{listed}");

    // Failures, each with our message shown by cargo.
    let duplicate = cargo.fails(&ws.join("mkt-base"), PUBLISH).await;
    assert!(duplicate.contains("already exists"), "{duplicate}");
    let bob = Cargo::new(&root.join("bob"), &registry, Some(&registry.bob));
    library(
        &ws,
        "mkt-base",
        "0.2.0",
        "",
        "",
        "pub fn base() -> u32 { 0 }\n",
    );
    let not_owner = bob.fails(&ws.join("mkt-base"), PUBLISH).await;
    assert!(
        not_owner.contains("403") && not_owner.contains("bob"),
        "{not_owner}"
    );
    let wrong = Cargo::new(&root.join("wrong"), &registry, Some("mkt_not-a-real-token"));
    let unknown = wrong.fails(&ws.join("mkt-base"), PUBLISH).await;
    assert!(
        unknown.contains("403") && unknown.contains("not one this server issued"),
        "{unknown}"
    );
    let long = "x".repeat(2001);
    library(&ws, "mkt-long", "0.1.0", "", "", "");
    write(
        &ws.join("mkt-long/Cargo.toml"),
        &format!(
            "[package]\nname = \"mkt-long\"\nversion = \"0.1.0\"\nedition = \"2021\"\nlicense = \"MIT\"\ndescription = \"{long}\"\n\n[workspace]\n"
        ),
    );
    let invalid = cargo.fails(&ws.join("mkt-long"), PUBLISH).await;
    assert!(invalid.contains("at most 2000 characters"), "{invalid}");
    assert!(
        registry
            .client
            .registry()
            .list_version_states(&"mkt-long".parse().unwrap())
            .await
            .is_err(),
        "nothing registered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_registry_needs_the_token_for_the_index_and_downloads() {
    if !cargo_available() {
        return;
    }
    let registry = Registry::start(ServerConfig::default().with_private(true)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let config = reqwest::get(format!("{}/cargo/index/config.json", registry.base))
        .await
        .expect("config.json");
    assert_eq!(config.status(), 401);
    let challenge = config
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(challenge.starts_with("Cargo login_url="), "{challenge}");
    let cargo = Cargo::new(root, &registry, Some(&registry.alice));
    let ws = root.join("ws");
    library(
        &ws,
        "mkt-private",
        "1.0.0",
        "",
        "[workspace]\n",
        "pub fn p() -> u8 { 7 }\n",
    );
    cargo.ok(&ws.join("mkt-private"), PUBLISH).await;
    let project = root.join("user");
    write(
        &project.join("Cargo.toml"),
        "[package]\nname = \"user\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nmkt-private = { version = \"1\", registry = \"mkt\" }\n\n[workspace]\n",
    );
    write(
        &project.join("src/main.rs"),
        "fn main() { println!(\"{}\", mkt_private::p()); }\n",
    );
    let anonymous = Cargo::new(&root.join("anonymous"), &registry, None);
    let refused = anonymous.fails(&project, &["generate-lockfile"]).await;
    assert!(
        refused.contains("401") || refused.contains("token"),
        "{refused}"
    );
    let ran = cargo.ok(&project, &["run", "--quiet"]).await;
    assert!(ran.contains('7'), "{ran}");
}
