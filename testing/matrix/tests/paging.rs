//! A registry whose `list` returns short pages (here: at most 3 rows, however many are asked
//! for) is within the trait's contract; the client must not take a short page for the end. `gc`
//! over it deletes no referenced archive, and `rebuild_index` indexes every version.

use std::sync::Arc;
use std::time::Duration;

use marketplace_client::{ArchiveLimits, MarketplaceBuilder, pack_dir};
use marketplace_conformance::layer::{Layered, RegistryOverride};
use marketplace_core::{PackageRecord, Registry, Result, SearchQuery, TrustLevel, async_trait};

struct ShortPages;

#[async_trait]
impl RegistryOverride for ShortPages {
    async fn list(
        &self,
        inner: &dyn Registry,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        inner.list(limit.min(3), offset).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_pages_never_make_gc_delete_a_referenced_archive() {
    let root = tempfile::tempdir().unwrap();
    let client = MarketplaceBuilder::in_memory()
        .unwrap()
        .map_registry(|r| Arc::new(Layered::new(r).with_override(ShortPages)))
        .build()
        .unwrap();
    let key = client.generate_keypair().await.unwrap();
    client
        .trust_key(&key.public_key, TrustLevel::Full)
        .await
        .unwrap();
    for n in 0..8 {
        let dir = root.path().join(format!("p{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("marketplace.toml"),
            format!(
                "[package]\nname = \"paged{n}\"\nversion = \"1.0.0\"\ndescription = \"Paged\"\n"
            ),
        )
        .unwrap();
        let packed = pack_dir(&dir, &ArchiveLimits::default()).unwrap();
        client.publish(packed, &key.private_key).await.unwrap();
    }
    let report = client.gc(Duration::ZERO).await.unwrap();
    assert_eq!(
        report.deleted, 0,
        "gc deleted referenced archives: {report:?}"
    );
    assert_eq!(client.store().stats().await.unwrap().objects, 8);
    assert_eq!(
        client.rebuild_index().await.unwrap(),
        8,
        "every version indexed"
    );
    let mut query = SearchQuery::text("paged");
    query.limit = 100;
    assert_eq!(client.search(&query).await.unwrap().len(), 8);
}
