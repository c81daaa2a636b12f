//! The one test file a backend author writes: the conformance kit on this backend — its own
//! trait's suite (with a second handle on the same directory, as a restart opens it), and the
//! end-to-end client suite with it composed into a marketplace of the kit's reference backends.
//! The kit is the only dev-dependency that Marketplace provides.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jsondir_registry::JsonDirRegistry;
use marketplace_conformance::reference;
use marketplace_conformance::{Capabilities, client_suite, registry_suite};
use marketplace_core::Registry;

fn capabilities() -> Capabilities {
    let mut caps = Capabilities::default();
    // register_batch is the trait's provided, non-transactional one.
    caps.atomic_batch = false;
    // Every write is a file and an fsync: give slow disks room before a check counts as hung.
    caps.check_timeout = Duration::from_secs(120);
    caps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_suite_passes() {
    let dir = tempfile::tempdir().unwrap();
    let registry = JsonDirRegistry::open(dir.path()).unwrap();
    let path = dir.path().to_owned();
    let caps = capabilities().with_registry_reopen(move || {
        JsonDirRegistry::open(&path)
            .map(|r| Arc::new(r) as Arc<dyn Registry>)
            .map_err(|e| e.to_string())
    });
    let report = registry_suite(&registry, &caps)
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
        Ok(reference::marketplace().registry(Arc::new(registry)))
    };
    let report = client_suite(&factory, &capabilities())
        .await
        .named("jsondir-registry");
    println!("{report}");
    report.assert_passed();
}
