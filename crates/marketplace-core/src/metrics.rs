//! The `MetricsCollector` trait: observability.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, Result};

/// The counter [`MetricsCollector::error`] records into, labelled `operation` and `kind`.
pub const ERRORS_TOTAL: &str = "marketplace_errors_total";

/// Metric labels, e.g. `[("operation", "publish"), ("outcome", "ok")]`.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

/// The type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// A monotonically increasing count.
    Counter,
    /// A value that goes up and down; the last value recorded wins.
    Gauge,
    /// A distribution of values.
    Histogram,
}

/// The current value of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MetricValue {
    /// A counter's total.
    Counter {
        /// The total.
        value: u64,
    },
    /// A gauge's last value.
    Gauge {
        /// The value.
        value: f64,
    },
    /// A histogram's summary.
    Histogram {
        /// Number of observations.
        count: u64,
        /// Sum of observations.
        sum: f64,
        /// Smallest observation.
        min: f64,
        /// Largest observation.
        max: f64,
    },
}

/// One series: a name, its labels and its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MetricSample {
    /// The metric name (`marketplace_publish_total`, …).
    pub name: String,
    /// Its labels, sorted by key.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: MetricValue,
}

impl MetricSample {
    /// One sample.
    pub fn new(name: String, labels: BTreeMap<String, String>, value: MetricValue) -> Self {
        MetricSample {
            name,
            labels,
            value,
        }
    }
}

/// Every series at one moment, sorted by name then labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// The series.
    pub samples: Vec<MetricSample>,
}

impl MetricsSnapshot {
    /// A snapshot of `samples`.
    pub fn new(samples: Vec<MetricSample>) -> Self {
        MetricsSnapshot { samples }
    }

    /// The value of the series `name` with exactly `labels`, if recorded.
    pub fn get(&self, name: &str, labels: Labels<'_>) -> Option<&MetricValue> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == wanted)
            .map(|s| &s.value)
    }
}

/// Records counters, gauges and histograms, and exports them.
///
/// Unlike the other traits this one is synchronous: recording sits on every hot path and must
/// never await. Names follow Prometheus rules (`[a-zA-Z_:][a-zA-Z0-9_:]*`); recording under an
/// invalid name is ignored by the recorder rather than failing the operation being measured.
pub trait MetricsCollector: Send + Sync {
    /// Adds `value` to a counter.
    fn counter(&self, name: &str, value: u64, labels: Labels<'_>);

    /// Sets a gauge.
    fn gauge(&self, name: &str, value: f64, labels: Labels<'_>);

    /// Records one observation in a histogram.
    fn histogram(&self, name: &str, value: f64, labels: Labels<'_>);

    /// Records a duration in seconds in the histogram `name`.
    fn timing(&self, name: &str, duration: Duration, labels: Labels<'_>) {
        self.histogram(name, duration.as_secs_f64(), labels);
    }

    /// Counts one error of `kind` during `operation` in the counter
    /// [`ERRORS_TOTAL`]`{operation, kind}`.
    fn error(&self, operation: &str, kind: ErrorKind) {
        self.counter(
            ERRORS_TOTAL,
            1,
            &[("operation", operation), ("kind", kind.as_str())],
        );
    }

    /// Every series now, sorted by name then labels. Its serde form is the JSON export: callers
    /// serialise the typed value themselves.
    fn snapshot(&self) -> MetricsSnapshot;

    /// Forgets every series.
    fn reset(&self);

    /// The Prometheus text exposition format (`# TYPE` lines, one line per series; histograms
    /// as `_bucket`, `_sum` and `_count`).
    fn export_prometheus(&self) -> Result<String>;
}

/// Whether `name` is a valid Prometheus metric name.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A number as the Prometheus text format writes it: Go's float syntax (`+Inf`, `-Inf`, `NaN`;
/// Rust would print `inf`, which scrapers refuse).
pub fn prometheus_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        v.to_string()
    }
}
