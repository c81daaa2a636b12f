//! The end-to-end conformance suite on the embedded default, persisted and in memory, and the
//! metrics suite on `OtelMetrics`.

use std::sync::atomic::{AtomicUsize, Ordering};

use marketplace_client::{MarketplaceBuilder, OtelMetrics};
use marketplace_conformance::{Capabilities, client_suite, metrics_suite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_suite_on_local_directories() {
    let root = tempfile::tempdir().unwrap();
    let next = AtomicUsize::new(0);
    let factory = move || {
        let n = next.fetch_add(1, Ordering::SeqCst);
        MarketplaceBuilder::local(root.path().join(format!("market-{n}")))
    };
    let report = client_suite(&factory, &Capabilities::default()).await;
    println!("{report}");
    report.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_suite_in_memory() {
    let report = client_suite(&MarketplaceBuilder::in_memory, &Capabilities::default()).await;
    println!("{report}");
    report.assert_passed();
}

#[tokio::test]
async fn metrics_suite_on_opentelemetry() {
    let metrics = OtelMetrics::new();
    let report = metrics_suite(&metrics, &Capabilities::default()).await;
    println!("{report}");
    report.assert_passed();
}
