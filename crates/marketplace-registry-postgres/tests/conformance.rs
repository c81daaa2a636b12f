//! The Registry and AccountStore suites of the conformance kit on a real PostgreSQL server
//! (started by the test: `initdb` into a temporary directory, 127.0.0.1 and a free port).

use std::sync::Arc;

use marketplace_conformance::{Capabilities, accounts_suite, registry_suite};
use marketplace_core::{AccountStore, Registry, TokenHash};
use marketplace_registry_postgres::PostgresRegistry;
use marketplace_testing::postgres::PostgresServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let url = server.create_database("registry").expect("a database");
    let registry = PostgresRegistry::connect(&url).await.expect("connect");
    // A second pool on the same database, as a restarted server (or another node) opens it.
    let reopen_url = url.clone();
    let caps = Capabilities::default().with_registry_reopen(move || {
        let url = reopen_url.clone();
        // The hook is synchronous; connecting is not: a thread with its own runtime.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(PostgresRegistry::connect(&url))
                .map(|r| Arc::new(r) as Arc<dyn Registry>)
                .map_err(|e| e.to_string())
        })
        .join()
        .map_err(|_| "the reopening thread panicked".to_owned())?
    });
    let report = registry_suite(&registry, &caps).await.named("postgres");
    println!("{report}");
    report.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_conformance() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let url = server.create_database("accounts").expect("a database");
    let registry = PostgresRegistry::connect(&url).await.expect("connect");
    let report = accounts_suite(&registry, &Capabilities::default())
        .await
        .named("postgres");
    println!("{report}");
    report.assert_passed();

    // What one pool wrote, another reads (a second server on the same database).
    let other = PostgresRegistry::connect(&url).await.expect("reconnect");
    let token = other
        .token_by_hash(&TokenHash::of("rae"))
        .await
        .expect("token_by_hash")
        .expect("the token is there for the other pool");
    assert!(token.revoked_at.is_some(), "and so is its revocation");
    assert_eq!(
        other.users().await.expect("users").len(),
        registry.users().await.expect("users").len()
    );
}
