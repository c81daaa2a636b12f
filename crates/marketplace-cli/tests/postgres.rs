//! `--database-url` and `[registry]` in `mkt serve --config`: a home's registry and accounts in
//! a real PostgreSQL server (started by the test), shared by a second home, served over HTTP.

#![cfg(unix)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use marketplace_testing::postgres::PostgresServer;

const PACKAGES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/packages");

fn mkt(home: &Path, config: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mkt"));
    cmd.env("MKT_HOME", home)
        .env("MKT_CONFIG", config)
        .env_remove("MKT_REGISTRY")
        .env_remove("MKT_DATABASE_URL");
    cmd
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn two_homes_share_a_postgres_registry_and_mkt_serve_serves_it_from_its_config() {
    let Some(pg) = PostgresServer::start() else {
        return;
    };
    let url = pg.create_database("served").expect("a database");
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    let config = dir.path().join("config.toml");
    ok(mkt(&first, &config).arg("init").output().unwrap());
    ok(mkt(&second, &config).arg("init").output().unwrap());

    // The first home publishes into the database and makes a token there.
    ok(mkt(&first, &config)
        .args(["--database-url", &url, "publish"])
        .arg(format!("{PACKAGES}/base-styles-1.0.0"))
        .output()
        .unwrap());
    let created = ok(mkt(&first, &config)
        .args(["--database-url", &url, "token", "create", "--name", "ci"])
        .args(["--user", "alice"])
        .output()
        .unwrap());
    let token = created.lines().next().expect("the token").trim().to_owned();

    // The second home sees both through the same database (its own SQLite file is empty).
    let info = ok(mkt(&second, &config)
        .args(["--database-url", &url, "info", "starter/base-styles"])
        .output()
        .unwrap());
    assert!(info.contains("1.0.0"), "{info}");
    let tokens = ok(mkt(&second, &config)
        .args(["--database-url", &url, "token", "list", "--user", "alice"])
        .output()
        .unwrap());
    assert!(tokens.contains("ci"), "{tokens}");
    let own = mkt(&second, &config)
        .args(["info", "starter/base-styles"])
        .output()
        .unwrap();
    assert_eq!(own.status.code(), Some(3), "not in the home's own registry");

    // A password in the server's file is refused before anything is opened.
    let with_password = dir.path().join("bad.toml");
    std::fs::write(
        &with_password,
        "[registry]\nbackend = \"postgres\"\nurl = \"postgres://app:hunter2@127.0.0.1/x\"\n",
    )
    .unwrap();
    let refused = mkt(&second, &config)
        .args(["serve", "--config"])
        .arg(&with_password)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(5), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("holds a password"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    // The second home serves the database, chosen in its config file.
    let server_toml = dir.path().join("server.toml");
    std::fs::write(
        &server_toml,
        format!(
            "listen = \"127.0.0.1:0\"\n\n[registry]\nbackend = \"postgres\"\nurl = \"{url}\"\n"
        ),
    )
    .unwrap();
    let mut child = mkt(&second, &config)
        .args(["serve", "--config"])
        .arg(&server_toml)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first_line)
        .expect("first line");
    let address = first_line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("the address: {first_line:?}"))
        .to_owned();
    let body = get(&address, "/api/v1/packages/starter%2Fbase-styles/versions");
    assert!(body.contains("1.0.0"), "served from the database: {body}");
    let whoami = get_with(
        &address,
        "/api/v1/me",
        &format!("Authorization: Bearer {token}\r\n"),
    );
    assert!(whoami.contains("alice"), "the database's token: {whoami}");

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    child.wait().expect("wait");
    assert!(
        stderr.contains("registry in postgres://postgres@127.0.0.1"),
        "{stderr}"
    );
}

fn get(address: &str, path: &str) -> String {
    get_with(address, path, "")
}

/// One HTTP/1.1 GET with `headers` (each ending in CRLF); the whole response.
fn get_with(address: &str, path: &str, headers: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{headers}Connection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
}
