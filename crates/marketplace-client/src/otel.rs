//! [`OtelMetrics`]: the [`MetricsCollector`] on the OpenTelemetry metrics SDK, with Prometheus
//! text and JSON exports read on demand.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Duration;

use marketplace_core::{
    Error, Labels, MetricKind, MetricSample, MetricValue, MetricsCollector, MetricsSnapshot,
    Result, is_valid_metric_name,
};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, MeterProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};

/// Bucket bounds for durations in seconds (names ending in `_seconds`): 100 µs to 30 s.
const SECONDS_BOUNDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Bucket bounds for sizes in bytes (names ending in `_bytes`): 1 KiB to 1 GiB.
const BYTES_BOUNDS: &[f64] = &[
    1024.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
    1_073_741_824.0,
];

/// A [`MetricsCollector`] on the OpenTelemetry metrics SDK.
///
/// Instruments are created on first use and cached by name; a name keeps the kind it was first
/// used with (a later use as another kind is dropped, so an export never mixes types). Names
/// and label keys that are not valid Prometheus names are ignored. The SDK aggregates
/// (cumulative temporality); [`OtelMetrics::snapshot`] and the exports read it on demand through
/// a manual reader, so nothing runs in the background. [`OtelMetrics::reset`] starts a new
/// meter provider.
///
/// ```
/// use marketplace_client::OtelMetrics;
/// use marketplace_core::MetricsCollector;
///
/// let metrics = OtelMetrics::new();
/// metrics.counter("tool_runs_total", 1, &[("outcome", "ok")]);
/// metrics.timing("tool_run_seconds", std::time::Duration::from_millis(20), &[]);
/// let text = metrics.export_prometheus().unwrap();
/// assert!(text.contains(r#"tool_runs_total{outcome="ok"} 1"#));
/// assert!(text.contains("# TYPE tool_run_seconds histogram"));
/// ```
pub struct OtelMetrics {
    state: RwLock<State>,
}

struct State {
    reader: Arc<ManualReader>,
    // Kept alive: dropping the provider shuts the pipeline down.
    _provider: SdkMeterProvider,
    meter: Meter,
    instruments: Mutex<HashMap<String, Instrument>>,
}

#[derive(Clone)]
enum Instrument {
    Counter(Counter<u64>),
    Gauge(Gauge<f64>),
    Histogram(Histogram<f64>),
}

impl Instrument {
    fn kind(&self) -> MetricKind {
        match self {
            Instrument::Counter(_) => MetricKind::Counter,
            Instrument::Gauge(_) => MetricKind::Gauge,
            Instrument::Histogram(_) => MetricKind::Histogram,
        }
    }
}

/// The SDK reader, shared so that the collector can read while the provider owns it.
#[derive(Debug)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

impl State {
    fn new() -> Self {
        let reader = Arc::new(ManualReader::builder().build());
        let provider = SdkMeterProvider::builder()
            .with_reader(SharedReader(Arc::clone(&reader)))
            .build();
        let meter = provider.meter("marketplace");
        State {
            reader,
            _provider: provider,
            meter,
            instruments: Mutex::new(HashMap::new()),
        }
    }

    fn instrument(&self, name: &str, kind: MetricKind) -> Option<Instrument> {
        let mut instruments = lock(&self.instruments);
        if let Some(existing) = instruments.get(name) {
            return (existing.kind() == kind).then(|| existing.clone());
        }
        let owned = name.to_owned();
        let created = match kind {
            MetricKind::Counter => Instrument::Counter(self.meter.u64_counter(owned).build()),
            MetricKind::Gauge => Instrument::Gauge(self.meter.f64_gauge(owned).build()),
            MetricKind::Histogram => {
                let builder = self.meter.f64_histogram(owned);
                let builder = if name.ends_with("_seconds") {
                    builder.with_boundaries(SECONDS_BOUNDS.to_vec())
                } else if name.ends_with("_bytes") {
                    builder.with_boundaries(BYTES_BOUNDS.to_vec())
                } else {
                    builder
                };
                Instrument::Histogram(builder.build())
            }
        };
        instruments.insert(name.to_owned(), created.clone());
        Some(created)
    }

    fn collect(&self) -> Result<Vec<Series>> {
        let mut rm = ResourceMetrics::default();
        self.reader
            .collect(&mut rm)
            .map_err(|e| Error::backend("opentelemetry", "collect metrics", e, false))?;
        let mut series = Vec::new();
        for scope in rm.scope_metrics() {
            for metric in scope.metrics() {
                convert(metric.name(), metric.data(), &mut series);
            }
        }
        series.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        Ok(series)
    }
}

/// One series as read from the SDK, with histogram buckets (which the snapshot does not carry).
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
    value: SeriesValue,
}

enum SeriesValue {
    Counter(u64),
    Gauge(f64),
    Histogram {
        count: u64,
        sum: f64,
        min: f64,
        max: f64,
        bounds: Vec<f64>,
        counts: Vec<u64>,
    },
}

fn labels_of<'a>(attributes: impl Iterator<Item = &'a KeyValue>) -> BTreeMap<String, String> {
    attributes
        .map(|kv| (kv.key.as_str().to_owned(), kv.value.as_str().into_owned()))
        .collect()
}

fn convert(name: &str, data: &AggregatedMetrics, out: &mut Vec<Series>) {
    let series = |labels, value| Series {
        name: name.to_owned(),
        labels,
        value,
    };
    match data {
        AggregatedMetrics::U64(MetricData::Sum(sum)) => {
            for point in sum.data_points() {
                out.push(series(
                    labels_of(point.attributes()),
                    SeriesValue::Counter(point.value()),
                ));
            }
        }
        AggregatedMetrics::F64(MetricData::Gauge(gauge)) => {
            for point in gauge.data_points() {
                out.push(series(
                    labels_of(point.attributes()),
                    SeriesValue::Gauge(point.value()),
                ));
            }
        }
        AggregatedMetrics::F64(MetricData::Histogram(histogram)) => {
            for point in histogram.data_points() {
                out.push(series(
                    labels_of(point.attributes()),
                    SeriesValue::Histogram {
                        count: point.count(),
                        sum: point.sum(),
                        min: point.min().unwrap_or(0.0),
                        max: point.max().unwrap_or(0.0),
                        bounds: point.bounds().collect(),
                        counts: point.bucket_counts().collect(),
                    },
                ));
            }
        }
        // Only the three instrument types above are ever created.
        _ => {}
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn is_valid_label(key: &str) -> bool {
    is_valid_metric_name(key) && !key.contains(':') && !key.starts_with("__")
}

fn attributes(labels: Labels<'_>) -> Option<Vec<KeyValue>> {
    labels
        .iter()
        .map(|(k, v)| is_valid_label(k).then(|| KeyValue::new((*k).to_owned(), (*v).to_owned())))
        .collect()
}

impl OtelMetrics {
    /// A collector with nothing recorded.
    pub fn new() -> Self {
        OtelMetrics {
            state: RwLock::new(State::new()),
        }
    }

    fn record(&self, name: &str, kind: MetricKind, labels: Labels<'_>, value: f64, count: u64) {
        if !is_valid_metric_name(name) {
            return;
        }
        let Some(attrs) = attributes(labels) else {
            return;
        };
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        match state.instrument(name, kind) {
            Some(Instrument::Counter(c)) => c.add(count, &attrs),
            Some(Instrument::Gauge(g)) => g.record(value, &attrs),
            Some(Instrument::Histogram(h)) => h.record(value, &attrs),
            None => tracing::warn!(metric = name, "metric used as two kinds; dropped"),
        }
    }

    fn series(&self) -> Result<Vec<Series>> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .collect()
    }
}

impl Default for OtelMetrics {
    fn default() -> Self {
        OtelMetrics::new()
    }
}

impl fmt::Debug for OtelMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtelMetrics").finish_non_exhaustive()
    }
}

/// `{k="v",…}` with the Prometheus escapes, or nothing without labels.
fn label_text(labels: &BTreeMap<String, String>, extra: Option<(&str, &str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.extend(extra);
    if pairs.is_empty() {
        return String::new();
    }
    let mut out = String::from("{");
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

impl MetricsCollector for OtelMetrics {
    fn counter(&self, name: &str, value: u64, labels: Labels<'_>) {
        self.record(name, MetricKind::Counter, labels, 0.0, value);
    }

    fn gauge(&self, name: &str, value: f64, labels: Labels<'_>) {
        self.record(name, MetricKind::Gauge, labels, value, 0);
    }

    fn histogram(&self, name: &str, value: f64, labels: Labels<'_>) {
        self.record(name, MetricKind::Histogram, labels, value, 0);
    }

    fn snapshot(&self) -> MetricsSnapshot {
        // A collect error means the provider was shut down, which `OtelMetrics` never does.
        let series = self.series().unwrap_or_default();
        MetricsSnapshot::new(
            series
                .into_iter()
                .map(|s| {
                    let value = match s.value {
                        SeriesValue::Counter(value) => MetricValue::Counter { value },
                        SeriesValue::Gauge(value) => MetricValue::Gauge { value },
                        SeriesValue::Histogram {
                            count,
                            sum,
                            min,
                            max,
                            ..
                        } => MetricValue::Histogram {
                            count,
                            sum,
                            min,
                            max,
                        },
                    };
                    MetricSample::new(s.name, s.labels, value)
                })
                .collect(),
        )
    }

    fn reset(&self) {
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = State::new();
    }

    fn export_prometheus(&self) -> Result<String> {
        let mut out = String::new();
        let mut typed: Option<String> = None;
        for s in self.series()? {
            if typed.as_deref() != Some(s.name.as_str()) {
                let kind = match s.value {
                    SeriesValue::Counter(_) => "counter",
                    SeriesValue::Gauge(_) => "gauge",
                    SeriesValue::Histogram { .. } => "histogram",
                };
                let _ = writeln!(out, "# TYPE {} {kind}", s.name);
                typed = Some(s.name.clone());
            }
            let name = &s.name;
            let plain = label_text(&s.labels, None);
            match &s.value {
                SeriesValue::Counter(v) => {
                    let _ = writeln!(out, "{name}{plain} {v}");
                }
                SeriesValue::Gauge(v) => {
                    let _ = writeln!(
                        out,
                        "{name}{plain} {}",
                        marketplace_core::prometheus_number(*v)
                    );
                }
                SeriesValue::Histogram {
                    count,
                    sum,
                    bounds,
                    counts,
                    ..
                } => {
                    // OpenTelemetry counts per bucket; Prometheus buckets are cumulative.
                    let mut cumulative = 0;
                    for (bound, n) in bounds.iter().zip(counts) {
                        cumulative += n;
                        let le = marketplace_core::prometheus_number(*bound);
                        let labels = label_text(&s.labels, Some(("le", &le)));
                        let _ = writeln!(out, "{name}_bucket{labels} {cumulative}");
                    }
                    let inf = label_text(&s.labels, Some(("le", "+Inf")));
                    let _ = writeln!(out, "{name}_bucket{inf} {count}");
                    let _ = writeln!(
                        out,
                        "{name}_sum{plain} {}",
                        marketplace_core::prometheus_number(*sum)
                    );
                    let _ = writeln!(out, "{name}_count{plain} {count}");
                }
            }
        }
        Ok(out)
    }
}
