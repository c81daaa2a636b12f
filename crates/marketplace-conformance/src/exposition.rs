//! A strict parser of the Prometheus text exposition format (version 0.0.4), for the metrics
//! suite and for tests of any collector's export: what a scraper would refuse, or read
//! wrongly, is an error here.
//!
//! Checked: line syntax (metric and label names, quoted label values with only `\\`, `\"` and
//! `\n` escapes, values in Go's float syntax: `+Inf`, `-Inf`, `NaN`, decimals), at most one
//! `# TYPE` and one `# HELP` per family, `# TYPE` before the family's samples, each family's
//! samples together and after it (every family is typed), no series twice, counters not negative, and histograms whole: `le`
//! buckets ascending and cumulative, a `+Inf` bucket equal to `_count`, and a `_sum`.

use std::collections::{BTreeMap, BTreeSet};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (a histogram's carry `_bucket`, `_sum` or `_count`).
    pub name: String,
    /// Its labels, unescaped.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// A parsed exposition: each family's type and every sample in order.
#[derive(Debug, Default)]
pub struct Exposition {
    /// Family name → `counter`, `gauge`, `histogram`, `summary` or `untyped`.
    pub types: BTreeMap<String, String>,
    /// Every sample, in the order of the text.
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// The value of the series `name` with exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == labels)
            .map(|s| s.value)
    }
}

/// Parses and validates `text`; the error names the line and the rule it breaks.
pub fn parse(text: &str) -> Result<Exposition, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the exposition does not end with a newline".into());
    }
    let mut out = Exposition::default();
    let mut helps = BTreeSet::new();
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut series = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |why: String| format!("line {}: {why}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    check_metric_name(name).map_err(at)?;
                    if !matches!(
                        kind,
                        "counter" | "gauge" | "histogram" | "summary" | "untyped"
                    ) {
                        return Err(at(format!("unknown type {kind:?}")));
                    }
                    if out.types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        return Err(at(format!("a second TYPE line for {name}")));
                    }
                    if finished.contains(name) || current.as_deref() == Some(name) {
                        return Err(at(format!("the TYPE of {name} comes after its samples")));
                    }
                }
                (Some("HELP"), Some(name), _) => {
                    check_metric_name(name).map_err(at)?;
                    if !helps.insert(name.to_owned()) {
                        return Err(at(format!("a second HELP line for {name}")));
                    }
                }
                _ => {}
            }
            continue;
        }
        let sample = parse_sample(line).map_err(at)?;
        let family = family_of(&sample.name, &out.types);
        if !out.types.contains_key(&family) {
            return Err(at(format!(
                "a sample of {family} without a TYPE line before it"
            )));
        }
        if current.as_deref() != Some(family.as_str()) {
            if finished.contains(&family) {
                return Err(at(format!("the samples of {family} are not together")));
            }
            if let Some(previous) = current.replace(family.clone()) {
                finished.insert(previous);
            }
        }
        let key = (sample.name.clone(), sample.labels.clone());
        if !series.insert(key) {
            return Err(at("the same series twice".into()));
        }
        if out.types.get(&family).map(String::as_str) == Some("counter")
            && (sample.value.is_nan() || sample.value < 0.0)
        {
            return Err(at(format!("a counter at {}", sample.value)));
        }
        out.samples.push(sample);
    }
    check_histograms(&out)?;
    Ok(out)
}

/// The family a sample belongs to: histogram and summary samples carry a suffix.
fn family_of(name: &str, types: &BTreeMap<String, String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && matches!(
                types.get(base).map(String::as_str),
                Some("histogram" | "summary")
            )
        {
            return base.to_owned();
        }
    }
    name.to_owned()
}

/// A series' labels without `le`, in order.
type SeriesLabels = Vec<(String, String)>;

fn check_histograms(exposition: &Exposition) -> Result<(), String> {
    for (family, kind) in &exposition.types {
        if kind != "histogram" {
            continue;
        }
        // Each series of the family: its labels without `le`.
        let mut buckets: BTreeMap<SeriesLabels, Vec<(f64, f64)>> = BTreeMap::new();
        let mut counts = BTreeMap::new();
        let mut sums = BTreeSet::new();
        for s in &exposition.samples {
            let mut labels = s.labels.clone();
            if s.name == format!("{family}_bucket") {
                let le = labels
                    .remove("le")
                    .ok_or(format!("a bucket of {family} without an le label"))?;
                let le = parse_value(&le).map_err(|e| format!("{family} le: {e}"))?;
                buckets
                    .entry(labels.into_iter().collect())
                    .or_default()
                    .push((le, s.value));
            } else if s.name == format!("{family}_count") {
                counts.insert(labels.into_iter().collect::<Vec<_>>(), s.value);
            } else if s.name == format!("{family}_sum") {
                sums.insert(labels.into_iter().collect::<Vec<_>>());
            }
        }
        for (labels, series) in &buckets {
            let shown = format!("{family}{labels:?}");
            if !series.windows(2).all(|w| w[0].0 < w[1].0) {
                return Err(format!(
                    "the buckets of {shown} are not in ascending le order"
                ));
            }
            if !series.windows(2).all(|w| w[0].1 <= w[1].1) {
                return Err(format!(
                    "the buckets of {shown} are not cumulative: {series:?}"
                ));
            }
            let Some(&(le, total)) = series.last() else {
                continue;
            };
            if le != f64::INFINITY {
                return Err(format!("{shown} has no +Inf bucket"));
            }
            if counts.get(labels) != Some(&total) {
                return Err(format!(
                    "the +Inf bucket of {shown} ({total}) differs from its _count ({:?})",
                    counts.get(labels)
                ));
            }
            if !sums.contains(labels) {
                return Err(format!("{shown} has no _sum"));
            }
        }
        if buckets.is_empty() && !counts.is_empty() {
            return Err(format!("{family} has a _count but no buckets"));
        }
    }
    Ok(())
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("a sample without a value")?;
    let name = &line[..name_end];
    check_metric_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let mut fields = rest.split(' ');
    let value = parse_value(fields.next().unwrap_or(""))?;
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| format!("a timestamp that is not an integer: {timestamp:?}"))?;
    }
    if fields.next().is_some() {
        return Err("text after the timestamp".into());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `name="value",…}` and returns what follows the closing brace.
fn parse_labels<'a>(
    mut rest: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, String> {
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let eq = rest.find('=').ok_or("a label without =")?;
        let name = &rest[..eq];
        check_label_name(name)?;
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("a label value without quotes")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("an unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("an unknown escape in a label value: {other:?}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("the label {name} twice"));
        }
        rest = &rest[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// A value in Go's float syntax, as Prometheus reads it (Rust's `inf` or `infinity` is not).
fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')) =>
        {
            text.parse::<f64>()
                .map_err(|_| format!("not a number: {text:?}"))
        }
        _ => Err(format!("not a number: {text:?}")),
    }
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if valid {
        Ok(())
    } else {
        Err(format!("an invalid metric name {name:?}"))
    }
}

fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!("an invalid label name {name:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_valid_exposition_parses() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\\n\"} 3\n# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\n# TYPE g gauge\ng -Inf\n";
        let parsed = parse(text).expect("valid");
        assert_eq!(parsed.value("a_total", &[("x", "q\"\\\n")]), Some(3.0));
        assert_eq!(parsed.value("g", &[]), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn what_a_scraper_refuses_is_refused() {
        for (text, why) in [
            ("# TYPE a counter\n# TYPE a counter\na 1\n", "second TYPE"),
            ("a 1\n# TYPE a counter\n", "without a TYPE"),
            (
                "# TYPE a gauge\n# TYPE b gauge\na{x=\"1\"} 1\nb 1\na{x=\"2\"} 1\n",
                "not together",
            ),
            ("# TYPE a gauge\na 1\na 2\n", "twice"),
            ("# TYPE a gauge\na inf\n", "not a number"),
            ("a.b 1\n", "invalid metric name"),
            ("# TYPE a gauge\na{x=\"\\t\"} 1\n", "unknown escape"),
            ("# TYPE a counter\na -1\n", "a counter at"),
            (
                "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
                "not cumulative",
            ),
            (
                "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
                "differs from its _count",
            ),
            (
                "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
                "no _sum",
            ),
            ("# TYPE a gauge\na 1", "newline"),
            ("# TYPE a gauge\na{x=1} 1\n", "without quotes"),
            ("# TYPE a gauge\na 1 2 3\n", "after the timestamp"),
        ] {
            let err = parse(text).expect_err(why);
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }
}
