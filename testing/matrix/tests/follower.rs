//! The search index follows the registry's change feed: what a process registered but did not
//! index (killed, or its index write failed) is applied by the next process that syncs — no
//! manual rebuild — and a yank reaches the index the same way, and download totals too, batched.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use marketplace_client::{ArchiveLimits, MarketplaceBuilder, pack_dir};
use marketplace_conformance::layer::{Layered, SearchOverride};
use marketplace_core::{
    DownloadCount, Error, PackageRecord, Result, SearchEngine, SearchQuery, SortOrder, TrustLevel,
    async_trait,
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

/// One batch of download totals: `(package, total)` pairs.
type Batch = Vec<(String, u64)>;

/// Records every batch of download totals the index is given.
#[derive(Default)]
struct CountsTotals {
    batches: Arc<Mutex<Vec<Batch>>>,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl SearchOverride for CountsTotals {
    async fn apply_downloads(
        &self,
        inner: &dyn SearchEngine,
        counts: &[DownloadCount],
        position: u64,
    ) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !counts.is_empty() {
            self.batches.lock().unwrap().push(
                counts
                    .iter()
                    .map(|c| (c.package.to_string(), c.total))
                    .collect(),
            );
        }
        inner.apply_downloads(counts, position).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_downloads_reach_the_index_batched() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    {
        let client = MarketplaceBuilder::local(&home).unwrap().build().unwrap();
        let key = client.generate_keypair().await.unwrap();
        client
            .trust_key(&key.public_key, TrustLevel::Full)
            .await
            .unwrap();
        for name in ["pangolin", "armadillo"] {
            client
                .publish(package(root.path(), name), &key.private_key)
                .await
                .unwrap();
        }
        for id in [
            "armadillo@1.0.0",
            "pangolin@1.0.0",
            "armadillo@1.0.0",
            "armadillo@1.0.0",
        ] {
            client.download(&id.parse().unwrap()).await.unwrap();
        }
    }
    let spy = CountsTotals::default();
    let (batches, calls) = (spy.batches.clone(), spy.calls.clone());
    let client = MarketplaceBuilder::local(&home)
        .unwrap()
        .map_search(|s| Arc::new(Layered::new(s).with_override(spy)))
        .build()
        .unwrap();
    let by_downloads = SearchQuery::text("follows").with_sort(SortOrder::Downloads);
    let totals = |hits: Vec<marketplace_core::SearchResult>| {
        hits.into_iter()
            .map(|h| (h.id.to_string(), h.downloads))
            .collect::<Vec<_>>()
    };
    let before = totals(client.search(&by_downloads).await.unwrap());
    assert!(
        before.iter().all(|(_, n)| *n == 0),
        "downloads are not indexed as they happen: {before:?}"
    );
    assert_eq!(client.sync_index().await.unwrap(), 0, "no events to apply");
    assert_eq!(
        totals(client.search(&by_downloads).await.unwrap()),
        [
            ("armadillo@1.0.0".to_owned(), 3),
            ("pangolin@1.0.0".to_owned(), 1)
        ],
        "the totals reached the index"
    );
    assert_eq!(
        *batches.lock().unwrap(),
        [[("pangolin".to_owned(), 1), ("armadillo".to_owned(), 3)]],
        "four downloads, one batch of one total per package"
    );
    let applied = calls.load(Ordering::SeqCst);
    client.sync_index().await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        applied,
        "caught up: nothing more to apply"
    );
    drop(client);
    // The position is kept with the index: a new process applies nothing again.
    let client = MarketplaceBuilder::local(&home).unwrap().build().unwrap();
    client.sync_index().await.unwrap();
    assert_eq!(
        totals(client.search(&by_downloads).await.unwrap()),
        [
            ("armadillo@1.0.0".to_owned(), 3),
            ("pangolin@1.0.0".to_owned(), 1)
        ],
        "after a reopen"
    );
}
