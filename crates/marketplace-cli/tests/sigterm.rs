//! SIGTERM while 50 publishes are in flight: `mkt serve` stops accepting, lets each of them
//! finish, and exits cleanly; every package is then either complete (registered, stored,
//! indexed) or absent — never half there.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};

use marketplace_client::MarketplaceBuilder;
use marketplace_core::time::format_description::well_known::Rfc3339;
use marketplace_core::{Key, PackageMetadata, SearchQuery};

const PUBLISHES: usize = 50;

fn mkt(home: &std::path::Path, config: &std::path::Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mkt"));
    cmd.env("MKT_HOME", home).env("MKT_CONFIG", config);
    cmd
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The archive, signature header and publication time of package `i`, signed with `key`.
async fn signed(i: usize, key: &marketplace_core::KeyPair) -> (bytes::Bytes, String, String) {
    let signer = MarketplaceBuilder::in_memory().unwrap().build().unwrap();
    let metadata = PackageMetadata::new(
        format!("inflight{i}@1.0.0").parse().unwrap(),
        "Published while the server stops",
        marketplace_core::ContentHash::sha256(b""),
        0,
    );
    let archive = marketplace_testing::corpus::archive(&metadata, 4096);
    let prepared = signer.prepare(archive.clone()).await.unwrap();
    let signature = signer
        .crypto()
        .sign(&prepared.metadata, &key.private_key)
        .await
        .unwrap();
    let header = format!(
        "ed25519 {} {}",
        hex(&signature.public_key.bytes),
        hex(&signature.bytes)
    );
    let at = prepared.metadata.published_at.format(&Rfc3339).unwrap();
    (archive, header, at)
}

#[test]
fn sigterm_during_50_publishes_leaves_each_complete_or_absent() {
    let dir = tempfile::tempdir().unwrap();
    let (home, config) = (dir.path().join("home"), dir.path().join("config.toml"));
    assert!(mkt(&home, &config).arg("init").status().unwrap().success());
    let token = mkt(&home, &config)
        .args(["token", "create", "--name", "import", "--user", "alice"])
        .output()
        .unwrap();
    assert!(token.status.success(), "{token:?}");
    let token = String::from_utf8(token.stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    assert!(
        mkt(&home, &config)
            .args(["key", "add", "--user", "alice"])
            .status()
            .unwrap()
            .success()
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pem = std::fs::read_to_string(home.join("keys/default.pem")).unwrap();
    let packages = runtime.block_on(async {
        let signer = MarketplaceBuilder::in_memory().unwrap().build().unwrap();
        let Key::Private(key) = signer.import_key_pem(&pem).await.unwrap() else {
            panic!("a private key");
        };
        let mut packages = Vec::new();
        for i in 0..PUBLISHES {
            packages.push(signed(i, &key).await);
        }
        packages
    });

    let mut server = mkt(&home, &config)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit-per-token",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let address = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_owned();

    // Every client sends its headers and half its body, waits until all have (and SIGTERM is
    // sent), then sends the rest.
    let halfway = Arc::new(Barrier::new(PUBLISHES + 1));
    let signalled = Arc::new(Barrier::new(PUBLISHES + 1));
    let clients: Vec<_> = packages
        .into_iter()
        .map(|(archive, signature, at)| {
            let (address, token) = (address.clone(), token.clone());
            let (halfway, signalled) = (Arc::clone(&halfway), Arc::clone(&signalled));
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(&address).unwrap();
                let head = format!(
                    "PUT /api/v1/packages HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\ncontent-type: application/octet-stream\r\nmarketplace-signature: {signature}\r\nmarketplace-published-at: {at}\r\nContent-Length: {}\r\n\r\n",
                    archive.len()
                );
                let (front, back) = archive.split_at(archive.len() / 2);
                let sent = stream
                    .write_all(head.as_bytes())
                    .and_then(|()| stream.write_all(front));
                halfway.wait();
                signalled.wait();
                let mut answer = String::new();
                let finished = sent
                    .and_then(|()| stream.write_all(back))
                    .and_then(|()| stream.read_to_string(&mut answer));
                match finished {
                    Ok(_) => answer.split_whitespace().nth(1).map(str::to_owned),
                    Err(_) => None,
                }
            })
        })
        .collect();
    halfway.wait();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::sleep(std::time::Duration::from_millis(200));
    signalled.wait();
    let statuses: Vec<Option<String>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let status = server.wait().unwrap();
    let mut stderr = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    let created = statuses
        .iter()
        .filter(|s| s.as_deref() == Some("201"))
        .count();
    assert_eq!(
        created, PUBLISHES,
        "requests in flight at SIGTERM finish: {statuses:?}"
    );

    runtime.block_on(async {
        let client = MarketplaceBuilder::local(&home).unwrap().build().unwrap();
        let mut complete = 0;
        for i in 0..PUBLISHES {
            let id = format!("inflight{i}@1.0.0").parse().unwrap();
            match client.registry().get(&id).await {
                Ok(metadata) => {
                    let bytes = client.download(&id).await.expect("registered means stored");
                    assert_eq!(bytes.archive.len() as u64, metadata.size);
                    let hits = client
                        .search(&SearchQuery::text(format!("inflight{i}")))
                        .await
                        .unwrap();
                    assert!(
                        hits.iter().any(|h| h.id == id),
                        "registered means indexed: {id}"
                    );
                    complete += 1;
                }
                Err(e) => {
                    assert_eq!(e.kind(), marketplace_core::ErrorKind::NotFound, "{e}");
                }
            }
        }
        assert_eq!(complete, created, "every 201 is a complete package");
    });
}
