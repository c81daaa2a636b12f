//! TLS to the server (feature `tls`): a server with a certificate from a CA made here, reached
//! with `sslmode=require` and that CA; refused (and not as a transient error) without it.

#![cfg(feature = "tls")]

use std::path::Path;
use std::process::Command;

use marketplace_conformance::fixtures::package;
use marketplace_core::Registry;
use marketplace_registry_postgres::{PostgresOptions, PostgresRegistry};
use marketplace_testing::postgres::PostgresServer;

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A CA and a certificate for 127.0.0.1 signed by it, as files in `dir`, or `None` without
/// the openssl command line.
fn certificates(dir: &Path) -> Option<(String, String)> {
    let made = openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=test CA",
        ],
    ) && openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ) && {
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .ok()?;
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        )
    };
    if !made {
        eprintln!(
            "SKIP: the openssl command line is not installed; TLS to PostgreSQL is not tested"
        );
        return None;
    }
    Some((
        std::fs::read_to_string(dir.join("server.crt")).ok()?,
        std::fs::read_to_string(dir.join("server.key")).ok()?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_the_servers_ca_works_and_without_it_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((certificate, key)) = certificates(dir.path()) else {
        return;
    };
    let Some(server) = PostgresServer::start_tls(&certificate, &key) else {
        return;
    };
    let url = server.create_database("tls").expect("a database");
    let secure = format!("{url}?sslmode=require");

    let options = PostgresOptions::from_url(&secure)
        .expect("url")
        .with_ca_file(dir.path().join("ca.pem"));
    let registry = PostgresRegistry::open(options)
        .await
        .expect("TLS with the CA");
    let m = package("tls/web@1.0.0", &[]);
    registry
        .register(m.clone(), m.checksum.clone())
        .await
        .expect("register over TLS");
    assert_eq!(registry.get(&m.id).await.expect("get"), m);

    // The system's roots do not know this CA: refused, and retrying would not help.
    let error = PostgresRegistry::connect(&secure)
        .await
        .expect_err("an unknown CA");
    let text = error.to_string();
    assert!(text.contains("certificate"), "{text}");
    assert!(!error.is_transient(), "{text}");
}
