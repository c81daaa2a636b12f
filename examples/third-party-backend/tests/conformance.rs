//! The one test a backend author writes: the conformance kit on this backend — its own trait's
//! suite, and the end-to-end client suite with it composed into a marketplace.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use jsondir_registry::JsonDirRegistry;
use marketplace_client::MarketplaceBuilder;
use marketplace_conformance::{Capabilities, client_suite, registry_suite};

fn capabilities() -> Capabilities {
    let mut caps = Capabilities::default();
    // register_batch is the trait's provided, non-transactional one.
    caps.atomic_batch = false;
    caps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_suite_passes() {
    let dir = tempfile::tempdir().unwrap();
    let registry = JsonDirRegistry::open(dir.path()).unwrap();
    let report = registry_suite(&registry, &capabilities())
        .await
        .named("jsondir-registry");
    println!("{report}");
    report.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_suite_passes_with_this_registry() {
    let dir = tempfile::tempdir().unwrap();
    let next = AtomicUsize::new(0);
    let factory = move || {
        let n = next.fetch_add(1, Ordering::SeqCst);
        let registry = JsonDirRegistry::open(dir.path().join(format!("r{n}")))?;
        Ok(MarketplaceBuilder::in_memory()?.registry(Arc::new(registry)))
    };
    let report = client_suite(&factory, &capabilities())
        .await
        .named("jsondir-registry");
    println!("{report}");
    report.assert_passed();
}

#[tokio::test]
async fn state_survives_reopening() {
    use marketplace_core::{ContentHash, PackageMetadata, Registry};
    let dir = tempfile::tempdir().unwrap();
    let id: marketplace_core::PackageId = "tp/kept@1.0.0".parse().unwrap();
    let hash = ContentHash::sha256(b"kept");
    {
        let registry = JsonDirRegistry::open(dir.path()).unwrap();
        let metadata = PackageMetadata::new(id.clone(), "Kept across restarts", hash.clone(), 4);
        registry.register(metadata, hash).await.unwrap();
        registry.yank(&id, "testing").await.unwrap();
        registry.record_download(&id).await.unwrap();
    }
    let registry = JsonDirRegistry::open(dir.path()).unwrap();
    assert!(registry.is_yanked(&id).await.unwrap());
    assert_eq!(registry.get_stats(&id).await.unwrap().version_downloads, 1);
    assert_eq!(registry.events_since(0, 10).await.unwrap().len(), 2);
}
