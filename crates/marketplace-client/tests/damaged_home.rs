//! Derived or damaged state does not brick a local marketplace: a search index that cannot be
//! opened is set aside and rebuilt from the registry (the registry is the truth), a missing one
//! too; a registry file emptied under a store that holds archives is refused, saying so.

use marketplace_client::{ArchiveLimits, MarketplaceBuilder, pack_dir};
use marketplace_core::{SearchQuery, TrustLevel};

async fn publish_one(dir: &std::path::Path) {
    let client = MarketplaceBuilder::local(dir).unwrap().build().unwrap();
    let key = client.generate_keypair().await.unwrap();
    client
        .trust_key(&key.public_key, TrustLevel::Full)
        .await
        .unwrap();
    let src = dir.parent().unwrap().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("marketplace.toml"),
        "[package]\nname = \"survivor\"\nversion = \"1.0.0\"\ndescription = \"Outlives its index\"\n",
    )
    .unwrap();
    let packed = pack_dir(&src, &ArchiveLimits::default()).unwrap();
    client.publish(packed, &key.private_key).await.unwrap();
}

async fn finds_survivor(dir: &std::path::Path) -> Option<String> {
    let client = MarketplaceBuilder::local(dir).unwrap().build().unwrap();
    let why = client.index_repair().map(str::to_owned);
    if why.is_some() {
        assert_eq!(client.rebuild_index().await.unwrap(), 1);
    }
    let hits = client.search(&SearchQuery::text("survivor")).await.unwrap();
    assert_eq!(hits.len(), 1, "the package is found again");
    why
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_missing_index_is_rebuilt_from_the_registry() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("home");
    publish_one(&dir).await;
    assert_eq!(
        finds_survivor(&dir).await,
        None,
        "an intact index needs no repair"
    );

    // Damaged: its metadata file overwritten with garbage.
    std::fs::write(dir.join("index/meta.json"), b"\x00garbage{").unwrap();
    let why = finds_survivor(&dir).await.expect("a repair reason");
    assert!(why.contains("could not be opened"), "{why}");
    let aside: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("index.damaged-")
        })
        .collect();
    assert_eq!(
        aside.len(),
        1,
        "the damaged index is kept aside, not deleted"
    );

    // Missing.
    std::fs::remove_dir_all(dir.join("index")).unwrap();
    let why = finds_survivor(&dir).await.expect("a repair reason");
    assert!(why.contains("missing"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_registry_over_existing_archives_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("home");
    publish_one(&dir).await;
    let registry = dir.join("registry.sqlite3");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("registry.sqlite3{suffix}")));
    }
    std::fs::write(&registry, b"").unwrap();
    let err = MarketplaceBuilder::local(&dir).expect_err("an emptied registry");
    let message = err.to_string();
    assert!(message.contains("empty (0 bytes)"), "{message}");
    assert!(message.contains("restore it from a backup"), "{message}");
    assert_eq!(
        std::fs::metadata(&registry).unwrap().len(),
        0,
        "nothing was written"
    );

    // A zero-byte file with nothing else (a first use killed early) opens as new.
    let fresh = root.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::write(fresh.join("registry.sqlite3"), b"").unwrap();
    MarketplaceBuilder::local(&fresh).unwrap().build().unwrap();
}
