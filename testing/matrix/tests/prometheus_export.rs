//! After a publish / install / search round trip, the client's `OtelMetrics::export_prometheus`
//! is valid Prometheus text exposition format (read by the conformance kit's strict parser) and
//! holds the operation counters and latency histograms; the snapshot's JSON parses back to it.
//! (Here, not in the client crate: the client may not depend on the kit, even for tests.)

use std::sync::Arc;

use marketplace_client::{
    ArchiveLimits, BACKEND_SECONDS, MarketplaceBuilder, OPERATION_SECONDS, OPERATIONS_TOTAL,
    OtelMetrics, pack_dir,
};
use marketplace_conformance::exposition;
use marketplace_core::{MetricsCollector, MetricsSnapshot, SearchQuery, TrustLevel};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_export_after_a_round_trip() {
    let metrics = Arc::new(OtelMetrics::new());
    let client = MarketplaceBuilder::in_memory()
        .unwrap()
        .metrics(metrics.clone())
        .build()
        .unwrap();
    let key = client.crypto().generate_keypair().await.unwrap();
    client
        .crypto()
        .add_trusted_key(&key.public_key, TrustLevel::Full)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(
        src.join("marketplace.toml"),
        "[package]\nname = \"metered\"\nversion = \"1.0.0\"\ndescription = \"Counts \\\"quoted\\\" things\"\nlicense = \"MIT\"\n",
    )
    .unwrap();
    std::fs::write(src.join("lib.txt"), "x").unwrap();
    let packed = pack_dir(&src, &ArchiveLimits::default()).unwrap();
    client
        .publish(packed.archive().clone(), &key.private_key)
        .await
        .unwrap();
    client
        .install(
            &"metered".parse().unwrap(),
            &"^1".parse().unwrap(),
            &dir.path().join("dest"),
        )
        .await
        .unwrap();
    client.search(&SearchQuery::text("metered")).await.unwrap();
    client.search(&SearchQuery::text("absent")).await.unwrap();

    let text = metrics.export_prometheus().unwrap();
    let parsed = exposition::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let (types, samples) = (parsed.types, parsed.samples);
    assert_eq!(
        types.get(OPERATIONS_TOTAL).map(String::as_str),
        Some("counter")
    );
    assert_eq!(
        types.get(OPERATION_SECONDS).map(String::as_str),
        Some("histogram")
    );
    assert_eq!(
        types.get(BACKEND_SECONDS).map(String::as_str),
        Some("histogram")
    );
    let count = |operation: &str| {
        samples
            .iter()
            .find(|s| {
                s.name == OPERATIONS_TOTAL
                    && s.labels.get("operation").map(String::as_str) == Some(operation)
                    && s.labels.get("outcome").map(String::as_str) == Some("ok")
            })
            .map(|s| s.value)
    };
    assert_eq!(count("publish"), Some(1.0));
    assert_eq!(count("install"), Some(1.0));
    assert_eq!(count("search"), Some(2.0));
    let backend_ops: Vec<_> = samples
        .iter()
        .filter(|s| s.name == format!("{BACKEND_SECONDS}_count"))
        .filter_map(|s| {
            Some(format!(
                "{}.{}",
                s.labels.get("backend")?,
                s.labels.get("operation")?
            ))
        })
        .collect();
    for op in [
        "store.store",
        "registry.register",
        "search.apply_feed",
        "crypto.sign",
    ] {
        assert!(
            backend_ops.iter().any(|o| o == op),
            "no latency for {op}: {backend_ops:?}"
        );
    }
    let json = serde_json::to_string(&metrics.snapshot()).unwrap();
    let parsed: MetricsSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed, metrics.snapshot());
}
