//! The full Registry suite of the conformance kit, on a file database and an in-memory one.

use std::sync::Arc;

use marketplace_conformance::{Capabilities, registry_suite};
use marketplace_core::Registry;
use marketplace_registry_sqlite::SqliteRegistry;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db/registry.sqlite");
    let file = SqliteRegistry::open(&path).expect("open file");
    // A second connection to the same file, as a restarted process opens it.
    let caps = Capabilities::default().with_registry_reopen(move || {
        SqliteRegistry::open(&path)
            .map(|r| Arc::new(r) as Arc<dyn Registry>)
            .map_err(|e| e.to_string())
    });
    let report = registry_suite(&file, &caps).await.named("sqlite-file");
    println!("file database: {report}");
    report.assert_passed();

    let memory = SqliteRegistry::open_in_memory().expect("open in memory");
    let report = registry_suite(&memory, &Capabilities::default())
        .await
        .named("sqlite-memory");
    println!("in-memory database: {report}");
    report.assert_passed();
}

/// The AccountStore suite on the same database kinds; accounts written through one handle
/// read the same through a second (a restarted server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_conformance() {
    use marketplace_conformance::accounts_suite;
    use marketplace_core::{AccountStore, OwnerTarget, TokenHash, UserName};

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("registry.sqlite");
    let file = SqliteRegistry::open(&path).expect("open file");
    let report = accounts_suite(&file, &Capabilities::default())
        .await
        .named("sqlite-file");
    println!("file database: {report}");
    report.assert_passed();

    let reopened = SqliteRegistry::open(&path).expect("reopen");
    let rae = UserName::new("r-rae").expect("name");
    let token = reopened
        .token_by_hash(&TokenHash::of("rae"))
        .await
        .expect("token_by_hash")
        .expect("the token survives reopening");
    assert!(token.revoked_at.is_some(), "and so does its revocation");
    assert_eq!(reopened.tokens(&rae).await.expect("tokens").len(), 1);
    let owned = reopened
        .owned_by(&UserName::new("o-ann").expect("name"))
        .await
        .expect("owned_by");
    assert!(owned.contains(&OwnerTarget::Namespace("own".parse().expect("name"))));
    assert_eq!(
        reopened.users().await.expect("users").len(),
        file.users().await.expect("users").len()
    );

    let memory = SqliteRegistry::open_in_memory().expect("open in memory");
    let report = accounts_suite(&memory, &Capabilities::default())
        .await
        .named("sqlite-memory");
    println!("in-memory database: {report}");
    report.assert_passed();
}
