//! The `MetricsCollector` suite.

use std::time::Duration;

use marketplace_core::{ErrorKind, MetricValue, MetricsCollector, MetricsSnapshot};

use crate::Capabilities;
use crate::exposition;
use crate::report::{CheckResult, Context, SuiteReport, ensure, ensure_eq};

/// One synchronous metrics check.
type Check = fn(&dyn MetricsCollector) -> CheckResult;

/// Runs every `MetricsCollector` check against `metrics`. The suite calls `reset` between
/// checks, so the collector must not be shared with live traffic.
///
/// Checks: counters add up, labels make separate series, gauges keep the last value,
/// histograms summarise, timings are seconds, errors count by kind, the Prometheus text format
/// (types, labels with escaping, buckets/sum/count) read by a strict parser of the exposition
/// format (one TYPE per family, cumulative buckets, valid names and values for every instrument
/// kind), JSON export equals the snapshot, reset forgets, and invalid names never panic or
/// corrupt the export.
pub async fn metrics_suite(metrics: &dyn MetricsCollector, caps: &Capabilities) -> SuiteReport {
    let _ = caps;
    let m = metrics;
    let mut report = SuiteReport::new("metrics", caps);
    let checks: [(&str, Check); 11] = [
        ("counters_accumulate", counters),
        ("labels_make_series", labels),
        ("gauge_keeps_last_value", gauges),
        ("histogram_summary", histograms),
        ("timing_in_seconds", timing),
        ("errors_count_by_kind", errors),
        ("prometheus_text_format", prometheus),
        ("prometheus_text_is_valid_exposition", exposition),
        ("json_export_matches_snapshot", json),
        ("reset_forgets_everything", reset),
        ("invalid_names_are_harmless", invalid_names),
    ];
    for (name, check) in checks {
        m.reset();
        report.run(name, async { check(m) }).await;
    }
    m.reset();
    report
}

fn value<'a>(
    snapshot: &'a MetricsSnapshot,
    name: &str,
    labels: &[(&str, &str)],
) -> Result<&'a MetricValue, String> {
    snapshot
        .get(name, labels)
        .ok_or_else(|| format!("series {name}{labels:?} missing from the snapshot: {snapshot:?}"))
}

fn counters(m: &dyn MetricsCollector) -> CheckResult {
    m.counter("kit_publish_total", 2, &[]);
    m.counter("kit_publish_total", 3, &[]);
    ensure_eq!(
        value(&m.snapshot(), "kit_publish_total", &[])?,
        &MetricValue::Counter { value: 5 },
        "2 + 3"
    );
    Ok(())
}

fn labels(m: &dyn MetricsCollector) -> CheckResult {
    m.counter(
        "kit_ops_total",
        1,
        &[("operation", "publish"), ("outcome", "ok")],
    );
    m.counter(
        "kit_ops_total",
        1,
        &[("outcome", "ok"), ("operation", "publish")],
    );
    m.counter(
        "kit_ops_total",
        1,
        &[("operation", "install"), ("outcome", "ok")],
    );
    let s = m.snapshot();
    ensure_eq!(
        value(
            &s,
            "kit_ops_total",
            &[("operation", "publish"), ("outcome", "ok")]
        )?,
        &MetricValue::Counter { value: 2 },
        "label order does not matter"
    );
    ensure_eq!(
        value(
            &s,
            "kit_ops_total",
            &[("operation", "install"), ("outcome", "ok")]
        )?,
        &MetricValue::Counter { value: 1 },
        "other labels, other series"
    );
    Ok(())
}

fn gauges(m: &dyn MetricsCollector) -> CheckResult {
    m.gauge("kit_queue_depth", 7.0, &[]);
    m.gauge("kit_queue_depth", 3.5, &[]);
    ensure_eq!(
        value(&m.snapshot(), "kit_queue_depth", &[])?,
        &MetricValue::Gauge { value: 3.5 },
        "the last value wins"
    );
    Ok(())
}

fn histograms(m: &dyn MetricsCollector) -> CheckResult {
    for v in [0.5, 2.0, 0.25] {
        m.histogram("kit_size", v, &[("backend", "x")]);
    }
    match value(&m.snapshot(), "kit_size", &[("backend", "x")])? {
        MetricValue::Histogram {
            count,
            sum,
            min,
            max,
        } => {
            ensure_eq!(
                (*count, *sum, *min, *max),
                (3, 2.75, 0.25, 2.0),
                "(count, sum, min, max)"
            );
        }
        other => return Err(format!("a histogram reported {other:?}")),
    }
    Ok(())
}

fn timing(m: &dyn MetricsCollector) -> CheckResult {
    m.timing("kit_latency_seconds", Duration::from_millis(1500), &[]);
    match value(&m.snapshot(), "kit_latency_seconds", &[])? {
        MetricValue::Histogram { count: 1, sum, .. } => {
            ensure!((sum - 1.5).abs() <= 1e-9, "1500 ms recorded as {sum} s");
        }
        other => return Err(format!("a timing reported {other:?}")),
    }
    Ok(())
}

fn errors(m: &dyn MetricsCollector) -> CheckResult {
    m.error("publish", ErrorKind::Integrity);
    m.error("publish", ErrorKind::Integrity);
    m.error("install", ErrorKind::NotFound);
    let s = m.snapshot();
    ensure_eq!(
        value(
            &s,
            "marketplace_errors_total",
            &[("operation", "publish"), ("kind", "integrity")]
        )?,
        &MetricValue::Counter { value: 2 },
        "publish integrity errors"
    );
    ensure_eq!(
        value(
            &s,
            "marketplace_errors_total",
            &[("operation", "install"), ("kind", "not_found")]
        )?,
        &MetricValue::Counter { value: 1 },
        "install not-found errors"
    );
    Ok(())
}

fn prometheus(m: &dyn MetricsCollector) -> CheckResult {
    m.counter("kit_requests_total", 4, &[("path", "a\"b\\c\nd")]);
    m.gauge("kit_temperature", 21.5, &[]);
    m.histogram("kit_latency_seconds", 0.003, &[("op", "get")]);
    let text = m.export_prometheus().ctx("export_prometheus")?;
    for needle in [
        "# TYPE kit_requests_total counter",
        r#"kit_requests_total{path="a\"b\\c\nd"} 4"#,
        "# TYPE kit_temperature gauge",
        "kit_temperature 21.5",
        "# TYPE kit_latency_seconds histogram",
        r#"kit_latency_seconds_bucket{op="get",le="+Inf"} 1"#,
        r#"kit_latency_seconds_count{op="get"} 1"#,
        r#"kit_latency_seconds_sum{op="get"} 0.003"#,
    ] {
        ensure!(
            text.lines().any(|l| l == needle),
            "the Prometheus export lacks the line {needle:?}:\n{text}"
        );
    }
    Ok(())
}

/// Every instrument kind, several series each, values at the edges: the export parses as a
/// scraper reads it, and says what the snapshot says.
fn exposition(m: &dyn MetricsCollector) -> CheckResult {
    for (op, n) in [("publish", 3), ("install", 0), ("get \"x\"\n", 7)] {
        m.counter("kit_calls_total", n, &[("op", op)]);
    }
    m.gauge("kit_level", -2.5, &[("pool", "a")]);
    m.gauge("kit_level", f64::INFINITY, &[("pool", "b")]);
    m.gauge("kit_level", f64::NEG_INFINITY, &[("pool", "c")]);
    m.gauge("kit_ratio", 1e-12, &[]);
    for (i, v) in [0.000_1, 0.004, 0.02, 0.3, 2.0, 45.0, 900.0, 1e6]
        .iter()
        .enumerate()
    {
        m.histogram(
            "kit_bytes",
            *v,
            &[("kind", if i % 2 == 0 { "even" } else { "odd" })],
        );
    }
    m.timing("kit_wait_seconds", Duration::from_micros(250), &[]);
    m.timing("kit_wait_seconds", Duration::from_secs(3), &[]);
    m.error("publish", ErrorKind::Invalid);
    let text = m.export_prometheus().ctx("export_prometheus")?;
    let parsed = exposition::parse(&text)
        .map_err(|e| format!("the Prometheus export does not parse: {e}\n{text}"))?;
    for (family, kind) in [
        ("kit_calls_total", "counter"),
        ("kit_level", "gauge"),
        ("kit_ratio", "gauge"),
        ("kit_bytes", "histogram"),
        ("kit_wait_seconds", "histogram"),
        ("marketplace_errors_total", "counter"),
    ] {
        ensure_eq!(
            parsed.types.get(family).map(String::as_str),
            Some(kind),
            "the TYPE of {family}"
        );
    }
    for sample in &m.snapshot().samples {
        let labels: Vec<(&str, &str)> = sample
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let name = &sample.name;
        let exported = |suffix: &str| parsed.value(&format!("{name}{suffix}"), &labels);
        let same = |a: Option<f64>, b: f64| {
            a.is_some_and(|a| a == b || (a - b).abs() <= 1e-9 * b.abs().max(1.0))
        };
        match &sample.value {
            MetricValue::Counter { value } => {
                ensure!(
                    same(exported(""), *value as f64),
                    "{name}{labels:?}: the export says {:?}, the snapshot {value}",
                    exported("")
                );
            }
            MetricValue::Gauge { value } => {
                ensure!(
                    same(exported(""), *value),
                    "{name}{labels:?}: the export says {:?}, the snapshot {value}",
                    exported("")
                );
            }
            MetricValue::Histogram { count, sum, .. } => {
                ensure!(
                    same(exported("_count"), *count as f64) && same(exported("_sum"), *sum),
                    "{name}{labels:?}: the export says count {:?} sum {:?}, the snapshot {count} and {sum}",
                    exported("_count"),
                    exported("_sum")
                );
            }
        }
    }
    Ok(())
}

fn json(m: &dyn MetricsCollector) -> CheckResult {
    m.counter("kit_b_total", 1, &[("x", "z")]);
    m.counter("kit_b_total", 1, &[("x", "y")]);
    m.histogram("kit_a", 1.0, &[]);
    let snapshot = m.snapshot();
    let keys: Vec<(String, Vec<(String, String)>)> = snapshot
        .samples
        .iter()
        .map(|s| (s.name.clone(), s.labels.clone().into_iter().collect()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    ensure_eq!(keys, sorted, "the snapshot is sorted by name, then labels");
    let text = serde_json::to_string(&snapshot).map_err(|e| format!("serialise: {e}"))?;
    let parsed: MetricsSnapshot = serde_json::from_str(&text)
        .map_err(|e| format!("the snapshot's JSON does not parse back: {e}: {text}"))?;
    ensure_eq!(
        parsed,
        snapshot,
        "the JSON export parses back to the snapshot"
    );
    Ok(())
}

fn reset(m: &dyn MetricsCollector) -> CheckResult {
    m.counter("kit_gone_total", 1, &[]);
    m.reset();
    ensure!(m.snapshot().samples.is_empty(), "reset left series behind");
    ensure!(
        !m.export_prometheus()
            .ctx("export_prometheus")?
            .contains("kit_gone_total"),
        "reset left the series in the export"
    );
    m.histogram("kit_again", 2.0, &[]);
    let text = m.export_prometheus().ctx("export_prometheus")?;
    let parsed = exposition::parse(&text)
        .map_err(|e| format!("after a reset, the export does not parse: {e}\n{text}"))?;
    ensure_eq!(
        parsed.value("kit_again_count", &[]),
        Some(1.0),
        "a histogram recorded after a reset counts from zero"
    );
    Ok(())
}

fn invalid_names(m: &dyn MetricsCollector) -> CheckResult {
    m.counter("", 1, &[]);
    m.counter("has space", 1, &[]);
    m.counter("9starts_with_digit", 1, &[]);
    m.counter("kit_ok_total", 1, &[("bad label", "v")]);
    m.counter("kit.dotted_total", 1, &[]);
    m.gauge("kit-dashed", 1.0, &[]);
    m.histogram("kit_h", 1.0, &[("9label", "v")]);
    m.timing("kit/slash_seconds", Duration::from_secs(1), &[]);
    let text = m.export_prometheus().ctx("export_prometheus")?;
    ensure!(
        !text.contains("has space") && !text.contains("9starts") && !text.contains("bad label"),
        "invalid names reached the export:\n{text}"
    );
    exposition::parse(&text).map_err(|e| {
        format!("with invalid names recorded, the export does not parse: {e}\n{text}")
    })?;
    Ok(())
}
