//! `mkt serve`: the first line names the address (port 0 picks a free one), the API answers,
//! a publish through it lands in the home, and SIGTERM stops it cleanly.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use common::{address_of, mkt, ok, serve, terminate};

/// One HTTP/1.1 GET of `path` on the server at `url`; returns the status line and the body.
fn get(url: &str, path: &str) -> (String, String) {
    get_with(url, path, "")
}

/// A GET with `headers` (each ending in CRLF) added.
fn get_with(url: &str, path: &str, headers: &str) -> (String, String) {
    let address = url.strip_prefix("http://").unwrap_or(url);
    let mut stream = TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{headers}Connection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

#[cfg(unix)]
#[test]
fn serve_prints_its_address_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, config) = (dir.path().join("home"), dir.path().join("config.toml"));
    let init = mkt(&home, &config).arg("init").output().expect("init");
    assert!(init.status.success(), "{init:?}");

    let (child, address) = serve(&home, &config, &[], Stdio::piped());
    assert!(
        !address.ends_with(":0"),
        "a real port was chosen: {address}"
    );

    let (status, body) = get(&address, "/health");
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("\"ok\""), "{body}");
    let (status, body) = get(&address, "/api/v1/packages/nothing/versions");
    assert!(status.contains("404"), "{status}");
    assert!(body.contains("\"not_found\""), "{body}");
    let (status, body) = get(&address, "/api/v1/keys");
    assert!(status.contains("200"), "{status}: {body}");
    assert!(
        body.contains("ultimate"),
        "the home's key is served: {body}"
    );

    let stderr = terminate(child);
    assert!(stderr.contains("stopped"), "{stderr}");
}

/// The README's server for a team: init, the first admin's token, serve — and the token
/// works against the served API (a private server refuses reads without it).
#[cfg(unix)]
#[test]
fn a_team_server_starts_with_the_first_admins_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, config) = (dir.path().join("home"), dir.path().join("config.toml"));
    assert!(
        mkt(&home, &config)
            .arg("init")
            .status()
            .expect("init")
            .success()
    );
    let created = mkt(&home, &config)
        .args(["token", "create", "--name", "ops", "--scope", "admin"])
        .output()
        .expect("token create");
    assert!(created.status.success(), "{created:?}");
    let stdout = String::from_utf8(created.stdout).expect("utf-8");
    let token = stdout.lines().next().expect("a first line").to_owned();

    let (child, address) = serve(&home, &config, &["--private"], Stdio::piped());
    let auth = format!("Authorization: Bearer {token}\r\n");
    let (status, body) = get_with(&address, "/api/v1/me", &auth);
    assert!(status.contains("200"), "{status}: {body}");
    assert!(body.contains("\"admin\""), "{body}");
    let (status, _) = get(&address, "/api/v1/search?q=x");
    assert!(status.contains("401"), "private: {status}");
    let (status, _) = get_with(&address, "/api/v1/search?q=x", &auth);
    assert!(status.contains("200"), "{status}");
    let (status, _) = get_with(
        &address,
        "/api/v1/me",
        "Authorization: Bearer mkt_wrong\r\n",
    );
    assert!(status.contains("401"), "{status}");

    terminate(child);
}

#[test]
fn serve_on_a_taken_address_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, config) = (dir.path().join("home"), dir.path().join("config.toml"));
    assert!(
        mkt(&home, &config)
            .arg("init")
            .status()
            .expect("init")
            .success()
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let output = mkt(&home, &config)
        .args(["serve", "--listen", &address])
        .output()
        .expect("serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("listen on {address}")), "{stderr}");
    assert!(
        stderr.contains("--listen"),
        "the hint names the flag: {stderr}"
    );
}

#[test]
fn serve_needs_an_existing_home() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, config) = (dir.path().join("nowhere"), dir.path().join("config.toml"));
    let output = mkt(&home, &config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .expect("serve");
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert!(!home.exists(), "nothing was created");
}

/// `--config server.toml` sets the address, the private mode and the store (an S3 bucket on
/// moto_server): the server is ready while the bucket answers, and not once it is gone.
#[cfg(unix)]
#[test]
fn a_config_file_chooses_the_store_and_the_limits() {
    let Some(s3) = marketplace_testing::s3::S3Server::start() else {
        return;
    };
    let bucket = s3.bucket("served-archives").expect("bucket");
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, config) = (dir.path().join("home"), dir.path().join("config.toml"));
    assert!(
        mkt(&home, &config)
            .arg("init")
            .status()
            .expect("init")
            .success()
    );
    let server_toml = dir.path().join("server.toml");
    std::fs::write(
        &server_toml,
        format!(
            "listen = \"127.0.0.1:0\"\nprivate = true\n\n[limits]\nmax_headers = 20\n\n[store]\nbackend = \"s3\"\nbucket = \"{}\"\nendpoint = \"{}\"\nregion = \"{}\"\nallow_http = true\n",
            bucket.name, bucket.endpoint, bucket.region
        ),
    )
    .expect("server.toml");
    let mut child = mkt(&home, &config)
        .arg("serve")
        .arg("--config")
        .arg(&server_toml)
        .env("AWS_ACCESS_KEY_ID", &bucket.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &bucket.secret_access_key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let address = address_of(&mut child);
    let (status, body) = get(&address, "/ready");
    assert!(status.contains("200"), "{status}: {body}");
    let (status, _) = get(&address, "/api/v1/search?q=x");
    assert!(status.contains("401"), "private, from the file: {status}");
    let many: String = (0..30).map(|i| format!("X-Extra-{i}: 1\r\n")).collect();
    let (status, _) = get_with(&address, "/health", &many);
    assert!(
        status.contains("431"),
        "max_headers from the file: {status}"
    );

    drop(s3);
    let (status, body) = get(&address, "/ready");
    assert!(status.contains("503"), "the bucket is gone: {status}");
    assert!(body.contains("store"), "{body}");

    let stderr = terminate(child);
    assert!(
        stderr.contains("archives in s3://served-archives"),
        "{stderr}"
    );
}

/// A flag beats the file; a bad file is refused before anything is opened, naming the key.
#[test]
fn flags_override_the_config_file_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, config) = (dir.path().join("home"), dir.path().join("config.toml"));
    let server_toml = dir.path().join("server.toml");
    std::fs::write(&server_toml, "private = true\n[limits]\nrate_limit = 5\n").expect("write");
    let output = mkt(&home, &config)
        .arg("serve")
        .arg("--config")
        .arg(&server_toml)
        .output()
        .expect("serve");
    assert_eq!(output.status.code(), Some(5), "invalid: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rate_limit"), "{stderr}");
    assert!(stderr.contains("server.toml"), "{stderr}");
    assert!(!home.exists(), "nothing was opened or created");

    assert!(
        mkt(&home, &config)
            .arg("init")
            .status()
            .expect("init")
            .success()
    );
    std::fs::write(&server_toml, "private = true\nlisten = \"127.0.0.1:0\"\n").expect("write");
    let mut child = mkt(&home, &config)
        .arg("serve")
        .arg("--config")
        .arg(&server_toml)
        .args(["--private", "false"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let address = address_of(&mut child);
    let (status, _) = get(&address, "/api/v1/search?q=x");
    assert!(status.contains("200"), "the flag made it public: {status}");
    terminate(child);
}

/// `--database-url` and `[registry]` in `server.toml`: two homes share a registry and its
/// accounts in a real PostgreSQL server (started by the test), and `mkt serve` serves it.
#[cfg(unix)]
#[test]
fn two_homes_share_a_postgres_registry_and_mkt_serve_serves_it_from_its_config() {
    let Some(pg) = marketplace_testing::postgres::PostgresServer::start() else {
        return;
    };
    let url = pg.create_database("served").expect("a database");
    let packages = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/packages");
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    let config = dir.path().join("config.toml");
    let run = |home: &std::path::Path, args: &[&str]| {
        mkt(home, &config)
            .env_remove("MKT_DATABASE_URL")
            .args(args)
            .output()
            .expect("run mkt")
    };
    ok(run(&first, &["init"]));
    ok(run(&second, &["init"]));

    // The first home publishes into the database and makes a token there.
    let styles = format!("{packages}/base-styles-1.0.0");
    ok(run(&first, &["--database-url", &url, "publish", &styles]));
    let created = ok(run(
        &first,
        &[
            "--database-url",
            &url,
            "token",
            "create",
            "--name",
            "ci",
            "--user",
            "alice",
        ],
    ));
    let token = created.lines().next().expect("the token").trim().to_owned();

    // The second home sees both through the database; its own registry has neither.
    let info = ok(run(
        &second,
        &["--database-url", &url, "info", "starter/base-styles"],
    ));
    assert!(info.contains("1.0.0"), "{info}");
    let tokens = ok(run(
        &second,
        &["--database-url", &url, "token", "list", "--user", "alice"],
    ));
    assert!(tokens.contains("ci"), "{tokens}");
    let own = run(&second, &["info", "starter/base-styles"]);
    assert_eq!(own.status.code(), Some(3), "not in the home's own registry");

    // A password in the server's file is refused before anything is opened.
    let with_password = dir.path().join("bad.toml");
    std::fs::write(
        &with_password,
        "[registry]\nbackend = \"postgres\"\nurl = \"postgres://app:hunter2@127.0.0.1/x\"\n",
    )
    .expect("bad.toml");
    let refused = run(
        &second,
        &["serve", "--config", with_password.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(5), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("holds a password"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    // The second home serves the database its config file names.
    let server_toml = dir.path().join("server.toml");
    std::fs::write(
        &server_toml,
        format!(
            "listen = \"127.0.0.1:0\"\n\n[registry]\nbackend = \"postgres\"\nurl = \"{url}\"\n"
        ),
    )
    .expect("server.toml");
    let mut child = mkt(&second, &config)
        .env_remove("MKT_DATABASE_URL")
        .arg("serve")
        .arg("--config")
        .arg(&server_toml)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let address = address_of(&mut child);
    let (status, body) = get(&address, "/api/v1/packages/starter%2Fbase-styles/versions");
    assert!(status.contains("200"), "{status}: {body}");
    assert!(body.contains("1.0.0"), "served from the database: {body}");
    let auth = format!("Authorization: Bearer {token}\r\n");
    let (status, body) = get_with(&address, "/api/v1/me", &auth);
    assert!(status.contains("200"), "{status}: {body}");
    assert!(body.contains("alice"), "the database's token: {body}");
    let stderr = terminate(child);
    assert!(
        stderr.contains("registry in postgres://postgres@127.0.0.1"),
        "{stderr}"
    );
}
