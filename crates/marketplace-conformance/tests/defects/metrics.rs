//! Metrics collectors with one defect each, mostly in the exposition text: what a scraper
//! would refuse or misread, caught by the kit's strict parser of the format.

use std::sync::Arc;

use marketplace_conformance::layer::{Layered, MetricsOverride};
use marketplace_conformance::reference::MemoryMetrics;
use marketplace_conformance::{Capabilities, SuiteReport, metrics_suite};
use marketplace_core::{Labels, MetricsCollector, Result};

use crate::common::defect;

async fn metrics<O: MetricsOverride + 'static>(fault: O) -> SuiteReport {
    let inner: Arc<dyn MetricsCollector> = Arc::new(MemoryMetrics::new());
    metrics_suite(
        &Layered::new(inner).with_override(fault),
        &Capabilities::default(),
    )
    .await
}

/// The reference export with `edit` applied to its text.
struct EditedExport(fn(&str) -> String);

impl MetricsOverride for EditedExport {
    fn export_prometheus(&self, inner: &dyn MetricsCollector) -> Result<String> {
        Ok((self.0)(&inner.export_prometheus()?))
    }
}

/// Buckets as per-bucket counts: each `_bucket` line counts only the values in its own range.
fn per_bucket_counts(text: &str) -> String {
    let mut out = String::new();
    let mut previous: Option<(String, u64)> = None;
    for line in text.lines() {
        if let Some((series, count)) = bucket(line) {
            let own = match &previous {
                Some((s, before)) if *s == series => count - before,
                _ => count,
            };
            previous = Some((series, count));
            let (head, _) = line.rsplit_once(' ').expect("a sample has a value");
            out.push_str(&format!("{head} {own}\n"));
        } else {
            previous = None;
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `(the series without le, count)` of a `_bucket` line.
fn bucket(line: &str) -> Option<(String, u64)> {
    let (head, value) = line.rsplit_once(' ')?;
    if !head.contains("_bucket{") {
        return None;
    }
    let series = head.split("le=").next()?.to_owned();
    Some((series, value.parse().ok()?))
}

defect!(
    histogram_buckets_not_cumulative,
    metrics(EditedExport(per_bucket_counts)),
    ["metrics::prometheus_text_is_valid_exposition"]
);

/// A TYPE line before every series instead of once per family.
fn type_per_series(text: &str) -> String {
    let mut out = String::new();
    let mut kind: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            kind = Some(rest.to_owned());
            continue;
        }
        if let Some(k) = &kind
            && !line.contains("_bucket{")
            && !line.contains("_sum")
            && !line.contains("_count")
        {
            out.push_str(&format!("# TYPE {k}\n"));
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

defect!(
    a_type_line_per_series,
    metrics(EditedExport(type_per_series)),
    ["metrics::prometheus_text_is_valid_exposition"]
);

/// Names exported as recorded: a dotted or dashed name reaches the text.
struct KeepsInvalidNames;

impl MetricsOverride for KeepsInvalidNames {
    fn gauge(&self, inner: &dyn MetricsCollector, name: &str, value: f64, labels: Labels<'_>) {
        inner.gauge(&name.replace('-', "__dash__"), value, labels);
    }

    fn export_prometheus(&self, inner: &dyn MetricsCollector) -> Result<String> {
        Ok(inner.export_prometheus()?.replace("__dash__", "-"))
    }
}
defect!(
    invalid_names_exported,
    metrics(KeepsInvalidNames),
    ["metrics::invalid_names_are_harmless"]
);

// Infinity printed the way Rust prints it.
defect!(
    infinity_printed_as_rust_prints_it,
    metrics(EditedExport(|text| text
        .replace(" +Inf\n", " inf\n")
        .replace(" -Inf\n", " -inf\n"))),
    ["metrics::prometheus_text_is_valid_exposition"]
);

// Label values written without escaping quotes and backslashes.
defect!(
    label_values_not_escaped,
    metrics(EditedExport(|text| text.replace("\\\"", "\""))),
    ["metrics::prometheus_text_is_valid_exposition"]
);

// `_sum` lines left out of histograms.
defect!(
    histogram_sums_missing,
    metrics(EditedExport(|text| text
        .lines()
        .filter(|l| !l.contains("_sum"))
        .map(|l| format!("{l}\n"))
        .collect())),
    ["metrics::prometheus_text_is_valid_exposition"]
);

/// Gauges that add up like counters.
struct GaugesAdd;

impl MetricsOverride for GaugesAdd {
    fn gauge(&self, inner: &dyn MetricsCollector, name: &str, value: f64, labels: Labels<'_>) {
        let before = match inner.snapshot().get(name, labels) {
            Some(marketplace_core::MetricValue::Gauge { value }) => *value,
            _ => 0.0,
        };
        inner.gauge(name, before + value, labels);
    }
}
defect!(
    gauges_add_up,
    metrics(GaugesAdd),
    ["metrics::gauge_keeps_last_value"]
);

/// A reset that forgets the snapshot but keeps exporting what was cached.
struct ResetKeepsTheExport {
    cached: std::sync::Mutex<Option<String>>,
}

impl MetricsOverride for ResetKeepsTheExport {
    fn export_prometheus(&self, inner: &dyn MetricsCollector) -> Result<String> {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        let text = inner.export_prometheus()?;
        let shown = match cached.as_ref() {
            Some(old) if text.len() < old.len() => old.clone(),
            _ => text,
        };
        *cached = Some(shown.clone());
        Ok(shown)
    }
}
defect!(
    reset_keeps_the_export,
    metrics(ResetKeepsTheExport {
        cached: std::sync::Mutex::new(None)
    }),
    ["metrics::reset_forgets_everything"]
);
