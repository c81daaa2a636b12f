//! `MemoryMetrics`: the reference `MetricsCollector`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use marketplace_core::{
    Labels, MetricSample, MetricValue, MetricsCollector, MetricsSnapshot, Result,
    is_valid_metric_name,
};

use super::lock;

/// Histogram bucket bounds used by the Prometheus export (seconds-friendly, like Prometheus'
/// client defaults).
pub(crate) const BUCKETS: &[f64] = &[
    0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

type SeriesKey = (String, BTreeMap<String, String>);

#[derive(Clone)]
enum Series {
    Counter(u64),
    Gauge(f64),
    Histogram { values: Vec<f64> },
}

/// The reference [`MetricsCollector`]: a map of series behind one mutex.
#[derive(Default)]
pub struct MemoryMetrics {
    series: Mutex<BTreeMap<SeriesKey, Series>>,
}

impl MemoryMetrics {
    /// No series yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn record(
        &self,
        name: &str,
        labels: Labels<'_>,
        apply: impl FnOnce(Option<&mut Series>) -> Option<Series>,
    ) {
        if !is_valid_metric_name(name) || labels.iter().any(|(k, _)| !is_valid_metric_name(k)) {
            return;
        }
        let key = (
            name.to_owned(),
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        let mut series = lock(&self.series);
        let current = series.get_mut(&key);
        if let Some(new) = apply(current) {
            series.insert(key, new);
        }
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_text(labels: &BTreeMap<String, String>, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

impl MetricsCollector for MemoryMetrics {
    fn counter(&self, name: &str, value: u64, labels: Labels<'_>) {
        self.record(name, labels, |s| match s {
            Some(Series::Counter(total)) => {
                *total += value;
                None
            }
            _ => Some(Series::Counter(value)),
        });
    }

    fn gauge(&self, name: &str, value: f64, labels: Labels<'_>) {
        self.record(name, labels, |_| Some(Series::Gauge(value)));
    }

    fn histogram(&self, name: &str, value: f64, labels: Labels<'_>) {
        self.record(name, labels, |s| match s {
            Some(Series::Histogram { values }) => {
                values.push(value);
                None
            }
            _ => Some(Series::Histogram {
                values: vec![value],
            }),
        });
    }

    fn snapshot(&self) -> MetricsSnapshot {
        let series = lock(&self.series);
        MetricsSnapshot::new(
            series
                .iter()
                .map(|((name, labels), s)| {
                    MetricSample::new(
                        name.clone(),
                        labels.clone(),
                        match s {
                            Series::Counter(v) => MetricValue::Counter { value: *v },
                            Series::Gauge(v) => MetricValue::Gauge { value: *v },
                            Series::Histogram { values } => MetricValue::Histogram {
                                count: values.len() as u64,
                                sum: values.iter().sum(),
                                min: values.iter().copied().fold(f64::INFINITY, f64::min),
                                max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                            },
                        },
                    )
                })
                .collect(),
        )
    }

    fn reset(&self) {
        lock(&self.series).clear();
    }

    fn export_prometheus(&self) -> Result<String> {
        let series = lock(&self.series);
        let mut out = String::new();
        let mut typed: Option<&str> = None;
        for ((name, labels), s) in series.iter() {
            let kind = match s {
                Series::Counter(_) => "counter",
                Series::Gauge(_) => "gauge",
                Series::Histogram { .. } => "histogram",
            };
            if typed != Some(name.as_str()) {
                let _ = writeln!(out, "# TYPE {name} {kind}");
                typed = Some(name.as_str());
            }
            match s {
                Series::Counter(v) => {
                    let _ = writeln!(out, "{name}{} {v}", label_text(labels, None));
                }
                Series::Gauge(v) => {
                    let _ = writeln!(
                        out,
                        "{name}{} {}",
                        label_text(labels, None),
                        marketplace_core::prometheus_number(*v)
                    );
                }
                Series::Histogram { values } => {
                    for bound in BUCKETS {
                        let n = values.iter().filter(|v| **v <= *bound).count();
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {n}",
                            label_text(labels, Some(("le", bound.to_string())))
                        );
                    }
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {}",
                        label_text(labels, Some(("le", "+Inf".into()))),
                        values.len()
                    );
                    let _ = writeln!(
                        out,
                        "{name}_sum{} {}",
                        label_text(labels, None),
                        marketplace_core::prometheus_number(values.iter().sum::<f64>())
                    );
                    let _ = writeln!(
                        out,
                        "{name}_count{} {}",
                        label_text(labels, None),
                        values.len()
                    );
                }
            }
        }
        Ok(out)
    }
}
