//! `mkt --registry URL`: a real `mkt serve` on 127.0.0.1, and a user's home that talks to it
//! only over HTTP — login with the token on stdin, the server's keys trusted only when the
//! user says so, search, install verified here, publish signed here, and the commands that
//! only make sense on a home refused.

#![cfg(unix)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use common::{mkt, ok, serve};

const PACKAGES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/packages");

fn code(output: &Output) -> Option<i32> {
    output.status.code()
}

/// `mkt serve` on a port of its choosing, stopped when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Served {
    fn start(home: &Path, config: &Path) -> Served {
        Served::start_with(home, config, &[])
    }

    fn start_with(home: &Path, config: &Path, extra: &[&str]) -> Served {
        let (child, url) = serve(home, config, extra, Stdio::null());
        Served { child, url }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mkt login` with `token` on stdin (not a terminal).
fn login(home: &Path, config: &Path, url: &str, token: &str, extra: &[&str]) -> Output {
    let mut child = mkt(home, config)
        .args(["--registry", url, "login"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("login");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{token}\n").as_bytes())
        .expect("write the token");
    child.wait_with_output().expect("login output")
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).map_or(true, |mut d| d.next().is_none())
}

struct World {
    _dir: tempfile::TempDir,
    server: PathBuf,
    user: PathBuf,
    config: PathBuf,
    token: String,
    served: Served,
}

/// A server home with one package, a user alice (a token, her key registered) and bob, served;
/// alice's own home with her key.
fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = dir.path().join("server");
    let user = dir.path().join("user");
    let config = dir.path().join("config.toml");
    ok(mkt(&server, &config).arg("init").output().unwrap());
    ok(mkt(&server, &config)
        .args(["publish", &format!("{PACKAGES}/base-styles-1.0.0")])
        .output()
        .unwrap());
    let created = ok(mkt(&server, &config)
        .args(["token", "create", "--name", "laptop", "--user", "alice"])
        .output()
        .unwrap());
    let token = created.lines().next().expect("the token").trim().to_owned();
    ok(mkt(&user, &config)
        .args(["keygen", "--name", "alice", "--trust"])
        .output()
        .unwrap());
    let alice_key = user.join("keys/alice.pub.pem");
    ok(mkt(&server, &config)
        .args(["key", "add", alice_key.to_str().unwrap(), "--user", "alice"])
        .output()
        .unwrap());
    // bob exists (a served home is the server's to change: its operator adds users first).
    ok(mkt(&server, &config)
        .args(["user", "add", "bob"])
        .output()
        .unwrap());
    let served = Served::start(&server, &config);
    World {
        _dir: dir,
        server,
        user,
        config,
        token,
        served,
    }
}

#[test]
fn a_user_logs_in_trusts_what_they_choose_installs_and_publishes_over_http() {
    let w = world();
    let url = w.served.url.clone();

    // A token that is not one is refused before anything is sent or stored.
    let bad = login(&w.user, &w.config, &url, "hunter2", &[]);
    assert_eq!(code(&bad), Some(2), "{bad:?}");
    assert!(!w.user.join("credentials.toml").exists());

    // Logged in; the server's key is shown, not trusted.
    let first = login(&w.user, &w.config, &url, &w.token, &["--json"]);
    let shown: serde_json::Value = serde_json::from_str(&ok(first)).expect("json");
    assert_eq!(shown["user"], "alice");
    let keys = shown["keys"].as_array().expect("keys");
    let server_key = keys
        .iter()
        .find(|k| k["trusted_here"] == false)
        .expect("the server's own key, not trusted here")["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let credentials = w.user.join("credentials.toml");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&credentials).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the credentials are the user's alone");
    assert!(
        std::fs::read_to_string(&credentials)
            .unwrap()
            .contains(&w.token)
    );

    // Search and info come from the server.
    let found = ok(mkt(&w.user, &w.config)
        .args(["--registry", &url, "search", "css reset"])
        .output()
        .unwrap());
    assert!(found.contains("starter/base-styles"), "{found}");

    // The author is not trusted here: refused, nothing written.
    let dest = w.user.join("tools");
    let refused = mkt(&w.user, &w.config)
        .args([
            "--registry",
            &url,
            "install",
            "starter/base-styles",
            "--dest",
        ])
        .arg(&dest)
        .output()
        .unwrap();
    assert_eq!(code(&refused), Some(4), "{refused:?}");
    assert!(is_empty_dir(&dest));

    // Trusted once the user says so; then it installs, verified here.
    ok(login(
        &w.user,
        &w.config,
        &url,
        &w.token,
        &["--trust-fingerprint", &server_key],
    ));
    ok(mkt(&w.user, &w.config)
        .args([
            "--registry",
            &url,
            "install",
            "starter/base-styles",
            "--dest",
        ])
        .arg(&dest)
        .output()
        .unwrap());
    let installed = ok(mkt(&w.user, &w.config)
        .args(["--registry", &url, "audit", "--json", "--dest"])
        .arg(&dest)
        .output()
        .unwrap());
    let audit: serde_json::Value = serde_json::from_str(&installed).expect("json");
    assert_eq!(audit["checked"], 1, "{installed}");
    assert_eq!(audit["findings"], serde_json::json!([]), "{installed}");
    assert!(!is_empty_dir(&dest));

    // A publish signed with alice's key lands on the server, as hers.
    let published = ok(mkt(&w.user, &w.config)
        .args(["--registry", &url, "publish", "--key", "alice"])
        .arg(format!("{PACKAGES}/readme-badges-0.1.0"))
        .output()
        .unwrap());
    assert!(published.contains("published"), "{published}");
    let on_server = ok(mkt(&w.server, &w.config)
        .args(["versions", "starter/readme-badges", "--json"])
        .output()
        .unwrap());
    assert!(on_server.contains("0.1.0"), "{on_server}");

    // Yank through the API, seen on the server.
    ok(mkt(&w.user, &w.config)
        .args([
            "--registry",
            &url,
            "yank",
            "starter/readme-badges@0.1.0",
            "--reason",
            "typo",
        ])
        .output()
        .unwrap());
    let info = ok(mkt(&w.server, &w.config)
        .args(["info", "starter/readme-badges@0.1.0", "--json"])
        .output()
        .unwrap());
    assert!(info.contains("typo"), "{info}");

    // Logged out: the token is gone, and the server refuses what needs one.
    ok(mkt(&w.user, &w.config)
        .args(["--registry", &url, "logout"])
        .output()
        .unwrap());
    assert!(
        !std::fs::read_to_string(&credentials)
            .unwrap()
            .contains(&w.token)
    );
    let anonymous = mkt(&w.user, &w.config)
        .args(["--registry", &url, "unyank", "starter/readme-badges@0.1.0"])
        .output()
        .unwrap();
    assert!(!anonymous.status.success(), "{anonymous:?}");
}

#[test]
fn a_named_registry_a_readable_credentials_file_and_home_only_commands() {
    let w = world();
    let url = w.served.url.clone();
    std::fs::write(&w.config, format!("[registries.team]\nurl = \"{url}\"\n")).unwrap();
    let versions = ok(mkt(&w.user, &w.config)
        .args(["--registry", "team", "versions", "starter/base-styles"])
        .output()
        .unwrap());
    assert!(versions.contains("1.0.0"), "{versions}");

    let unknown = mkt(&w.user, &w.config)
        .args(["--registry", "elsewhere", "versions", "starter/base-styles"])
        .output()
        .unwrap();
    assert_eq!(code(&unknown), Some(2), "{unknown:?}");
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("team"),
        "{unknown:?}"
    );

    for command in [&["gc"][..], &["rebuild-index"], &["user", "list"]] {
        let refused = mkt(&w.user, &w.config)
            .args(["--registry", "team"])
            .args(command)
            .output()
            .unwrap();
        assert_eq!(code(&refused), Some(2), "{command:?}: {refused:?}");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("works on a marketplace home"),
            "{refused:?}"
        );
    }

    // A credentials file others may read is refused, and its token not used.
    ok(login(&w.user, &w.config, "team", &w.token, &[]));
    let credentials = w.user.join("credentials.toml");
    std::fs::set_permissions(
        &credentials,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let refused = mkt(&w.user, &w.config)
        .args(["--registry", "team", "versions", "starter/base-styles"])
        .output()
        .unwrap();
    assert_eq!(code(&refused), Some(1), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("chmod 600"),
        "{refused:?}"
    );

    // The default registry of the configuration, and `--registry ""` for the home's own.
    std::fs::write(
        &w.config,
        format!("[registries.team]\nurl = \"{url}\"\n\n[registry]\ndefault = \"team\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(
        &credentials,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let by_default = ok(mkt(&w.user, &w.config)
        .args(["versions", "starter/base-styles"])
        .output()
        .unwrap());
    assert!(by_default.contains("1.0.0"), "{by_default}");
    let on_the_home = mkt(&w.user, &w.config)
        .args(["--registry", "", "versions", "starter/base-styles"])
        .output()
        .unwrap();
    assert_eq!(
        code(&on_the_home),
        Some(3),
        "the user's home has no such package"
    );
}

#[test]
fn owners_keys_and_tokens_over_http() {
    let w = world();
    let url = w.served.url.clone();
    ok(login(&w.user, &w.config, &url, &w.token, &[]));
    let remote = |args: &[&str]| {
        mkt(&w.user, &w.config)
            .args(["--registry", &url])
            .args(args)
            .output()
            .unwrap()
    };
    // alice publishes the first package of a namespace nobody owns: she owns the namespace,
    // and names bob an owner once bob exists.
    ok(remote(&[
        "publish",
        "--key",
        "alice",
        &format!("{PACKAGES}/license-files-1.0.0"),
    ]));
    let owners = ok(remote(&[
        "owner",
        "list",
        "starter",
        "--namespace",
        "--json",
    ]));
    assert!(owners.contains("alice"), "{owners}");
    let added = ok(remote(&[
        "owner",
        "add",
        "starter",
        "--namespace",
        "bob",
        "--json",
    ]));
    assert!(added.contains("bob") && added.contains("alice"), "{added}");
    let removed = ok(remote(&[
        "owner",
        "remove",
        "starter",
        "--namespace",
        "bob",
    ]));
    assert!(removed.contains("bob no longer owns"), "{removed}");

    // Her keys: a second one registered, listed, revoked.
    ok(mkt(&w.user, &w.config)
        .args(["keygen", "--name", "second", "--trust"])
        .output()
        .unwrap());
    let added = ok(remote(&["key", "add", "second", "--json"]));
    let second: serde_json::Value = serde_json::from_str(&added).expect("json");
    let second_id = second["key_id"].as_str().expect("key id").to_owned();
    let listed = ok(remote(&["key", "list"]));
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(listed.contains(&second_id), "{listed}");
    ok(remote(&[
        "key",
        "revoke",
        &second_id,
        "--reason",
        "lost laptop",
    ]));
    let listed = ok(remote(&["key", "list"]));
    assert!(!listed.contains(&second_id), "{listed}");

    // Someone else's keys are not hers to change over a registry.
    let refused = remote(&["key", "list", "--user", "bob"]);
    assert_eq!(code(&refused), Some(2), "{refused:?}");

    // Her tokens: a narrower one made over the API (its secret alone on the first line),
    // listed, revoked; one wider than the token making it is refused.
    let created = ok(remote(&[
        "token",
        "create",
        "--name",
        "ci",
        "--scope",
        "publish-update",
        "--pattern",
        "starter/*",
    ]));
    let secret = created
        .lines()
        .next()
        .expect("the secret")
        .trim()
        .to_owned();
    assert!(
        secret.starts_with("mkt_") && secret.len() == 68,
        "{created}"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&ok(remote(&["token", "list", "--json"]))).expect("json");
    let ci = listed
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["name"] == "ci")
        .expect("the new token is listed");
    let ci_id = ci["id"].as_str().unwrap().to_owned();
    assert!(
        !listed.to_string().contains(&secret),
        "secrets are never listed"
    );
    let wider = remote(&["token", "create", "--name", "root", "--scope", "admin"]);
    assert!(!wider.status.success(), "{wider:?}");
    let revoked = ok(remote(&["token", "revoke", &ci_id]));
    assert!(revoked.contains("revoked token"), "{revoked}");
    let listed = ok(remote(&["token", "list", "--json"]));
    assert!(listed.contains("revoked_at\": \""), "{listed}");
}

/// `GET path` on `url`'s server, the body as text (plain HTTP/1.1, no client library).
fn http_get(url: &str, path: &str) -> String {
    use std::io::Read as _;
    let address = url.strip_prefix("http://").expect("an http URL");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

/// How many archives the server has sent by hash: its own request counter.
fn archives_sent(url: &str) -> u64 {
    let metrics = http_get(url, "/metrics");
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("marketplace_http_requests_total{")
                && l.contains(r#"route="/api/v1/archives/{hash}""#)
        })
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("a counter line: {l}"))
        })
        .sum()
}

/// Fifty package directories, each depending on the next (`chain/p-00` → … → `chain/p-49`).
fn fifty_packages(dir: &Path) -> Vec<PathBuf> {
    (0..50)
        .map(|i| {
            let package = dir.join(format!("p-{i:02}"));
            std::fs::create_dir_all(&package).unwrap();
            let mut manifest = format!(
                "[package]\nname = \"p-{i:02}\"\nnamespace = \"chain\"\nversion = \"1.0.0\"\ndescription = \"Link {i} of a chain\"\nlicense = \"MIT\"\n[dependencies]\n"
            );
            if i < 49 {
                manifest.push_str(&format!("\"chain/p-{:02}\" = \"^1\"\n", i + 1));
            }
            std::fs::write(package.join("marketplace.toml"), manifest).unwrap();
            // Incompressible, so the archives are most of what an install reads.
            let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ i as u64;
            let data: Vec<u8> = (0..20_000 + i * 100)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            std::fs::write(package.join("data.bin"), data).unwrap();
            package
        })
        .collect()
}

/// What `dest` holds (an install killed half-way must leave nothing: no package directory,
/// lockfile, journal or staging directory).
fn leftovers(dest: &Path) -> Vec<String> {
    std::fs::read_dir(dest)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_fifty_package_graph_from_the_cache_offline_and_never_half_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = dir.path().join("server");
    let user = dir.path().join("user");
    let config = dir.path().join("config.toml");
    ok(mkt(&server, &config).arg("init").output().unwrap());
    ok(mkt(&server, &config)
        .arg("publish")
        .args(fifty_packages(&dir.path().join("src")))
        .output()
        .unwrap());
    ok(mkt(&user, &config)
        .args(["trust", "add"])
        .arg(server.join("keys/default.pub.pem"))
        .output()
        .unwrap());
    let served = Served::start_with(&server, &config, UNLIMITED);
    let url = served.url.clone();
    let install = |dest: &Path, extra: &[&str]| {
        mkt(&user, &config)
            .args(["--registry", &url])
            .args(extra)
            .args(["install", "chain/p-00", "--json", "--dest"])
            .arg(dest)
            .output()
            .unwrap()
    };
    let installed = |output: Output| -> usize {
        let report: serde_json::Value = serde_json::from_str(&ok(output)).expect("json");
        report["installed"].as_array().expect("installed").len()
    };

    // Cold: every archive comes from the server, once.
    assert_eq!(installed(install(&user.join("a"), &[])), 50);
    assert_eq!(archives_sent(&url), 50, "one request per archive");
    // Warm: the same graph elsewhere downloads nothing.
    assert_eq!(installed(install(&user.join("b"), &[])), 50);
    assert_eq!(
        archives_sent(&url),
        50,
        "a warm cache sends no archive request"
    );

    // Offline: the server is gone; the caches and the trust store are enough.
    drop(served);
    assert_eq!(installed(install(&user.join("c"), &["--offline"])), 50);
    let verified = mkt(&user, &config)
        .args([
            "--registry",
            &url,
            "--offline",
            "verify",
            "chain/p-17@1.0.0",
        ])
        .output()
        .unwrap();
    ok(verified);
    let tree = ok(mkt(&user, &config)
        .args(["--registry", &url, "--offline", "tree", "chain/p-45"])
        .output()
        .unwrap());
    assert!(tree.contains("chain/p-49@1.0.0"), "{tree}");
    // What would answer less offline than it says is refused, naming the need.
    for command in [
        &["search", "chain"][..],
        &["info", "chain/p-00"],
        &["audit"],
    ] {
        let refused = mkt(&user, &config)
            .args(["--registry", &url, "--offline"])
            .args(command)
            .output()
            .unwrap();
        assert_eq!(code(&refused), Some(2), "{command:?}: {refused:?}");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("needs the registry"),
            "{command:?}: {refused:?}"
        );
    }
    // Offline without the cache (another home): says what is missing, writes nothing.
    let stranger = dir.path().join("stranger");
    std::fs::create_dir_all(&stranger).unwrap();
    let cold = mkt(&stranger, &config)
        .args([
            "--registry",
            &url,
            "--offline",
            "install",
            "chain/p-00",
            "--dest",
        ])
        .arg(stranger.join("d"))
        .output()
        .unwrap();
    assert_eq!(code(&cold), Some(3), "{cold:?}");
    assert!(is_empty_dir(&stranger.join("d")));

    // Killed mid-install: a fresh user (nothing cached) installs through a relay that kills
    // the server once it has relayed half of what a whole install reads; nothing half-written
    // is left behind.
    let served = Served::start_with(&server, &config, UNLIMITED);
    let whole = {
        let relay = Relay::start(&served.url, None);
        let counted = dir.path().join("counted");
        ok(mkt(&counted, &config)
            .args(["trust", "add"])
            .arg(server.join("keys/default.pub.pem"))
            .output()
            .unwrap());
        ok(mkt(&counted, &config)
            .args(["--registry", &relay.url, "install", "chain/p-00", "--dest"])
            .arg(counted.join("tools"))
            .output()
            .unwrap());
        relay.relayed()
    };
    let served = std::sync::Arc::new(std::sync::Mutex::new(served));
    let victim = std::sync::Arc::clone(&served);
    let relay = Relay::start(
        &served.lock().unwrap().url,
        Some((
            whole / 2,
            Box::new(move || {
                let mut served = victim.lock().unwrap();
                served.child.kill().expect("kill the server");
                let _ = served.child.wait();
            }),
        )),
    );
    let fresh = dir.path().join("fresh");
    ok(mkt(&fresh, &config)
        .args(["trust", "add"])
        .arg(server.join("keys/default.pub.pem"))
        .output()
        .unwrap());
    let dest = fresh.join("tools");
    let killed = mkt(&fresh, &config)
        .args(["--registry", &relay.url, "install", "chain/p-00", "--dest"])
        .arg(&dest)
        .output()
        .unwrap();
    assert!(
        relay.tripped(),
        "the server was not killed ({whole} bytes in all)"
    );
    assert!(!killed.status.success(), "{killed:?}");
    assert!(
        leftovers(&dest).is_empty(),
        "a killed install left {:?}\n{}",
        leftovers(&dest),
        String::from_utf8_lossy(&killed.stderr)
    );
}

/// `mkt serve` flags that lift the rate limits (the test is about the cache, not the limits).
const UNLIMITED: &[&str] = &[
    "--rate-limit-per-address",
    "0",
    "--rate-limit-per-token",
    "0",
];

/// A TCP relay on 127.0.0.1 in front of a server: it counts the bytes the server sends and,
/// given a threshold, runs `trip` (kills the server) and cuts every connection once that many
/// have passed.
struct Relay {
    url: String,
    relayed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    tripped: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

type Trip = (u64, Box<dyn FnOnce() + Send>);

impl Relay {
    fn start(server_url: &str, trip: Option<Trip>) -> Relay {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::{Arc, Mutex};
        let upstream = server_url.trim_start_matches("http://").to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let relayed = Arc::new(AtomicU64::new(0));
        let tripped = Arc::new(AtomicBool::new(false));
        let (threshold, trip) = match trip {
            Some((threshold, trip)) => (threshold, Some(trip)),
            None => (u64::MAX, None),
        };
        let trip = Arc::new(Mutex::new(trip));
        let open: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::default();
        let (count, flag) = (Arc::clone(&relayed), Arc::clone(&tripped));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if flag.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                open.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                });
                let (mut s_read, mut c_write) = (server, client);
                let (count, flag, trip, open) = (
                    Arc::clone(&count),
                    Arc::clone(&flag),
                    Arc::clone(&trip),
                    Arc::clone(&open),
                );
                std::thread::spawn(move || {
                    use std::io::Read as _;
                    let mut buffer = [0u8; 4096];
                    loop {
                        let n = match s_read.read(&mut buffer) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let before = count.fetch_add(n as u64, Ordering::SeqCst);
                        if before + n as u64 >= threshold && !flag.swap(true, Ordering::SeqCst) {
                            if let Some(trip) = trip.lock().unwrap().take() {
                                trip();
                            }
                            for stream in open.lock().unwrap().iter() {
                                let _ = stream.shutdown(std::net::Shutdown::Both);
                            }
                            break;
                        }
                        if c_write.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_write.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Relay {
            url,
            relayed,
            tripped,
        }
    }

    fn relayed(&self) -> u64 {
        self.relayed.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn tripped(&self) -> bool {
        self.tripped.load(std::sync::atomic::Ordering::SeqCst)
    }
}
