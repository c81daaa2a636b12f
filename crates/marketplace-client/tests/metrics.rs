//! After a publish / install / search round trip, `export_prometheus` is valid Prometheus text
//! exposition format (checked line by line by a strict parser here) and holds the operation
//! counters and latency histograms; the snapshot's JSON parses back to it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use marketplace_client::{
    ArchiveLimits, BACKEND_SECONDS, MarketplaceBuilder, OPERATION_SECONDS, OPERATIONS_TOTAL,
    OtelMetrics, pack_dir,
};
use marketplace_core::{MetricsCollector, MetricsSnapshot, SearchQuery, TrustLevel};

/// One sample line: name, labels, value.
#[derive(Debug)]
struct Line {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_name(s: &str, colons: bool) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || (colons && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':'))
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// Parses `name{a="x",b="y"} value` strictly, escapes included.
fn parse_sample(line: &str) -> Result<Line, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value in {line:?}"))?;
    let name = &line[..name_end];
    if !is_name(name, true) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        loop {
            // label name
            let start = chars.peek().map(|(i, _)| *i).ok_or("unterminated labels")?;
            let mut end = start;
            while let Some((i, c)) = chars.peek().copied() {
                if c == '=' {
                    end = i;
                    break;
                }
                chars.next();
            }
            let key = &body[start..end];
            if !is_name(key, false) {
                return Err(format!("bad label name {key:?} in {line:?}"));
            }
            chars.next(); // '='
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("label value not quoted in {line:?}"));
            }
            let mut value = String::new();
            loop {
                match chars.next().ok_or("unterminated label value")?.1 {
                    '\\' => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        c => return Err(format!("bad escape \\{c} in {line:?}")),
                    },
                    '"' => break,
                    '\n' => return Err("raw newline in a label value".into()),
                    c => value.push(c),
                }
            }
            if labels.insert(key.to_owned(), value).is_some() {
                return Err(format!("label {key} twice in {line:?}"));
            }
            match chars.next().ok_or("unterminated labels")? {
                (_, ',') => continue,
                (i, '}') => {
                    rest = &body[i + 1..];
                    break;
                }
                (_, c) => return Err(format!("unexpected {c:?} in labels of {line:?}")),
            }
        }
    }
    let value = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("no space before the value in {line:?}"))?;
    Ok(Line {
        name: name.to_owned(),
        labels,
        value: parse_value(value)?,
    })
}

/// Parses a whole exposition and checks families: TYPE before samples, once each; histograms
/// with cumulative buckets, a `+Inf` bucket equal to `_count`, and a `_sum`.
fn parse_exposition(text: &str) -> Result<(HashMap<String, String>, Vec<Line>), String> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (Some(name), Some(kind), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("bad TYPE line {line:?}"));
            };
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(format!("unknown type in {line:?}"));
            }
            if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                return Err(format!("TYPE for {name} twice"));
            }
        } else if line.starts_with('#') || line.is_empty() {
            continue;
        } else {
            let sample = parse_sample(line)?;
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    let base = sample.name.strip_suffix(s)?;
                    (types.get(base).map(String::as_str) == Some("histogram")).then_some(base)
                })
                .unwrap_or(&sample.name);
            if !types.contains_key(family) {
                return Err(format!("sample {} before its TYPE line", sample.name));
            }
            samples.push(sample);
        }
    }
    // Histogram consistency.
    for (family, kind) in &types {
        if kind != "histogram" {
            continue;
        }
        // Labels without `le` → (le, cumulative count) per bucket.
        type Buckets = BTreeMap<Vec<(String, String)>, Vec<(f64, f64)>>;
        let mut series = Buckets::new();
        for s in samples
            .iter()
            .filter(|s| s.name == format!("{family}_bucket"))
        {
            let le = parse_value(s.labels.get("le").ok_or("bucket without le")?)?;
            let key: Vec<_> = s
                .labels
                .iter()
                .filter(|(k, _)| *k != "le")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            series.entry(key).or_default().push((le, s.value));
        }
        for (labels, buckets) in series {
            let mut last = (f64::NEG_INFINITY, 0.0);
            for &(le, count) in &buckets {
                if le <= last.0 || count < last.1 {
                    return Err(format!("{family}{labels:?}: buckets not cumulative"));
                }
                last = (le, count);
            }
            if last.0 != f64::INFINITY {
                return Err(format!("{family}{labels:?}: no +Inf bucket"));
            }
            let labels: BTreeMap<_, _> = labels.into_iter().collect();
            let find = |suffix: &str| {
                samples
                    .iter()
                    .find(|s| s.name == format!("{family}{suffix}") && s.labels == labels)
                    .map(|s| s.value)
            };
            if find("_count") != Some(last.1) {
                return Err(format!(
                    "{family}{labels:?}: _count differs from the +Inf bucket"
                ));
            }
            if find("_sum").is_none() {
                return Err(format!("{family}{labels:?}: no _sum"));
            }
        }
    }
    Ok((types, samples))
}

#[test]
fn the_strict_parser_rejects_broken_text() {
    for bad in [
        "no_type 1",
        "# TYPE x counter\nx{a=\"1\"",
        "# TYPE x counter\nx{a=1} 1",
        "# TYPE x counter\nx 1 2 3",
        "# TYPE x counter\n9x 1",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 2",
    ] {
        assert!(parse_exposition(bad).is_err(), "accepted {bad:?}");
    }
    parse_exposition("# TYPE x counter\nx{a=\"q\\\"\\n\\\\\"} 1\n").unwrap();
}

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
    let (types, samples) = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
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
