//! Metric samples the console reads: this process's Prometheus registry, and the `/metrics`
//! pages of other Sixfold processes (`console.metrics_urls`) in the text exposition format.
//!
//! Both become the same flat [`Sample`] list, so the pipeline picture is computed one way
//! whether everything runs in one process (`sixfold run`) or in many.

use std::collections::BTreeMap;

use prometheus::proto::MetricType;

/// One value of one metric with its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (for histograms, `<name>_count` and `<name>_sum`).
    pub name: String,
    /// Label name → value.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, or "" when absent.
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map(String::as_str).unwrap_or("")
    }
}

/// Counters and gauges of a registry's families (histograms as `_count` and `_sum`).
pub fn from_registry(registry: &prometheus::Registry) -> Vec<Sample> {
    let mut samples = Vec::new();
    for family in registry.gather() {
        for metric in family.get_metric() {
            let labels: BTreeMap<String, String> = metric
                .get_label()
                .iter()
                .map(|l| (l.name().to_owned(), l.value().to_owned()))
                .collect();
            let mut push = |name: String, value: f64| {
                samples.push(Sample {
                    name,
                    labels: labels.clone(),
                    value,
                })
            };
            match family.get_field_type() {
                MetricType::COUNTER => {
                    push(family.name().to_owned(), metric.get_counter().get_value())
                }
                MetricType::GAUGE => push(family.name().to_owned(), metric.get_gauge().get_value()),
                MetricType::HISTOGRAM => {
                    let histogram = metric.get_histogram();
                    push(
                        format!("{}_count", family.name()),
                        histogram.get_sample_count() as f64,
                    );
                    push(format!("{}_sum", family.name()), histogram.get_sample_sum());
                }
                _ => {}
            }
        }
    }
    samples
}

/// Samples of a `/metrics` page in the Prometheus text format; lines it cannot read are
/// skipped (comments, and anything malformed).
pub fn parse_text(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, rest) = match line.find(['{', ' ']) {
        Some(at) => line.split_at(at),
        None => return None,
    };
    let (labels, rest) = if let Some(inner) = rest.strip_prefix('{') {
        parse_labels(inner)?
    } else {
        (BTreeMap::new(), rest)
    };
    // `value [timestamp]`
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Reads `a="x",b="y"}` and returns the labels and what follows the closing brace.
fn parse_labels(mut text: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    loop {
        text = text.trim_start_matches([',', ' ']);
        if let Some(rest) = text.strip_prefix('}') {
            return Some((labels, rest));
        }
        let eq = text.find('=')?;
        let name = text[..eq].trim().to_owned();
        let mut chars = text[eq + 1..].char_indices();
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        let mut end = None;
        let mut escaped = false;
        for (at, c) in chars {
            match (escaped, c) {
                (true, 'n') => value.push('\n'),
                (true, c) => value.push(c),
                (false, '\\') => {
                    escaped = true;
                    continue;
                }
                (false, '"') => {
                    end = Some(eq + 1 + at + 1);
                    break;
                }
                (false, c) => value.push(c),
            }
            escaped = false;
        }
        labels.insert(name, value);
        text = &text[end?..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_text_format_with_escaped_label_values() {
        let text = "# HELP x help\n# TYPE x counter\n\
                    sixfold_consumed_total{processor=\"urls\",topic=\"url.created\"} 42\n\
                    up 1 1700000000000\n\
                    odd{path=\"a\\\"b,c}\\\\\"} 3.5\n\
                    broken{x=1} 2\n";
        let samples = parse_text(text);
        assert_eq!(samples.len(), 3, "{samples:?}");
        assert_eq!(samples[0].name, "sixfold_consumed_total");
        assert_eq!(samples[0].label("topic"), "url.created");
        assert_eq!(samples[0].value, 42.0);
        assert_eq!(samples[1].name, "up");
        assert!(samples[1].labels.is_empty());
        assert_eq!(samples[2].label("path"), "a\"b,c}\\");
        assert_eq!(samples[2].value, 3.5);
    }

    #[test]
    fn a_registry_gives_the_same_samples_as_its_text() {
        let metrics = sixfold_runtime::metrics::Metrics::new();
        metrics
            .consumed
            .with_label_values(&["urls", "url.created"])
            .inc_by(7);
        metrics
            .processing_seconds
            .with_label_values(&["urls", "url.created"])
            .observe(0.2);
        let direct = from_registry(metrics.registry());
        let parsed = parse_text(&metrics.render());
        for sample in &direct {
            assert!(
                parsed.contains(sample),
                "{sample:?} is not in the text form"
            );
        }
        assert!(
            direct
                .iter()
                .any(|s| s.name == "sixfold_processing_seconds_count")
        );
    }
}
