//! The search index follows the registry's change feed: what a process registered but did not
//! index (killed, or its index write failed) is applied by the next process that syncs — no
//! manual rebuild — and a yank reaches the index the same way.

use std::sync::Arc;

use marketplace_client::{ArchiveLimits, MarketplaceBuilder, pack_dir};
use marketplace_conformance::layer::{Layered, SearchOverride};
use marketplace_core::{
    Error, PackageRecord, Result, SearchEngine, SearchQuery, TrustLevel, async_trait,
};

/// An index whose writes all fail, as if the process died before each.
struct WritesFail;

#[async_trait]
impl SearchOverride for WritesFail {
    async fn apply_feed(
        &self,
        _inner: &dyn SearchEngine,
        _records: &[PackageRecord],
        _position: u64,
    ) -> Result<()> {
        Err(Error::backend(
            "test",
            "apply the feed",
            "the process died here",
            false,
        ))
    }
}

fn package(root: &std::path::Path, name: &str) -> marketplace_client::Inspected {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("marketplace.toml"),
        format!("[package]\nname = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"Follows the feed\"\n"),
    )
    .unwrap();
    pack_dir(&dir, &ArchiveLimits::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_process_applies_what_the_index_missed() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    {
        let client = MarketplaceBuilder::local(&home)
            .unwrap()
            .map_search(|s| Arc::new(Layered::new(s).with_override(WritesFail)))
            .build()
            .unwrap();
        let key = client.generate_keypair().await.unwrap();
        client
            .trust_key(&key.public_key, TrustLevel::Full)
            .await
            .unwrap();
        let published = client
            .publish(package(root.path(), "pangolin"), &key.private_key)
            .await
            .expect("registered although the index write failed");
        assert!(!published.indexed);
        client
            .publish(package(root.path(), "armadillo"), &key.private_key)
            .await
            .unwrap();
        client
            .yank(&"armadillo@1.0.0".parse().unwrap(), "testing")
            .await
            .unwrap();
    }
    let client = MarketplaceBuilder::local(&home).unwrap().build().unwrap();
    assert!(
        client
            .search(&SearchQuery::text("pangolin"))
            .await
            .unwrap()
            .is_empty(),
        "not indexed yet"
    );
    assert_eq!(
        client.sync_index().await.unwrap(),
        3,
        "two registrations and a yank"
    );
    let hits = client.search(&SearchQuery::text("pangolin")).await.unwrap();
    assert_eq!(hits.len(), 1, "found without a rebuild");
    assert!(
        client
            .search(&SearchQuery::text("armadillo"))
            .await
            .unwrap()
            .is_empty(),
        "the yank reached the index too"
    );
    assert_eq!(client.sync_index().await.unwrap(), 0, "caught up");
}
