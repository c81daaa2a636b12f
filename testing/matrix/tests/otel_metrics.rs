//! The metrics suite on `OtelMetrics`, the client's OpenTelemetry collector. Its report is named
//! `otel`, the matrix's metrics column.

use marketplace_client::OtelMetrics;
use marketplace_conformance::{Capabilities, metrics_suite};

#[tokio::test]
async fn metrics_suite_on_opentelemetry() {
    let metrics = OtelMetrics::new();
    let report = metrics_suite(&metrics, &Capabilities::default())
        .await
        .named("otel");
    println!("{report}");
    report.assert_passed();
}
