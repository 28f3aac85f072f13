//! The pipeline picture's numbers: per processor its input topics, outputs, rates, lag, retries
//! and dead letters, computed from metric samples taken about a second apart.
//!
//! Everything comes from the metrics the processes already export (`sixfold_consumed_total`,
//! `sixfold_materialized_total`, `sixfold_delivered_total`, `sixfold_consumer_lag`,
//! `sixfold_retried_total`, `sixfold_dead_lettered_total`, `sixfold_http_requests_total`, and a
//! few system metrics); the console keeps no counts of its own.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::samples::Sample;

/// How long a processor stays "failing" after its DLQ grew, or "retrying" after a retry.
pub const ALERT_HOLD: Duration = Duration::from_secs(60);
/// Lag (records) above which a processor is drawn as lagging.
pub const LAG_WARN: f64 = 1000.0;

/// What the picture draws for one processor: its name and its input topics.
#[derive(Debug, Clone, Serialize)]
pub struct Shape {
    /// Processor (consumer group) name.
    pub processor: String,
    /// Topics it consumes, without its retry topics.
    pub inputs: Vec<String>,
}

/// A processor's colour in the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Nothing read or waiting for a minute.
    Idle,
    /// Reading, no retries or dead letters in the last minute, lag small.
    Ok,
    /// More than [`LAG_WARN`] records behind.
    Lagging,
    /// A record went to a retry tier in the last minute.
    Retrying,
    /// A record went to the DLQ in the last minute.
    Failing,
}

/// A flow with its total and its rate over the last interval.
#[derive(Debug, Clone, Serialize)]
pub struct Flow {
    /// Topic, view or channel name.
    pub name: String,
    /// Count since the process started.
    pub total: f64,
    /// Per second over the last interval (0 on the first sample).
    pub per_s: f64,
}

/// One processor in the picture.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessorView {
    /// Processor name.
    pub name: String,
    /// Records read per input topic.
    pub inputs: Vec<Flow>,
    /// Views written (`view:<name>`) and deliveries (`channel:<name>`).
    pub outputs: Vec<Flow>,
    /// Records behind the high watermarks, all partitions.
    pub lag: f64,
    /// Records handed to a retry tier.
    pub retried: Flow,
    /// Records handed to the DLQ.
    pub dead_lettered: Flow,
    /// Mean time to handle a record over the last interval, ms (None without records).
    pub mean_ms: Option<f64>,
    /// Colour.
    pub health: Health,
}

/// The HTTP front door.
#[derive(Debug, Clone, Serialize)]
pub struct IngressView {
    /// Requests answered.
    pub requests: Flow,
    /// Of those, refused by the rate limiter (429).
    pub limited: Flow,
    /// Of those, server errors (5xx).
    pub errors: Flow,
}

/// Crawl progress.
#[derive(Debug, Clone, Serialize)]
pub struct CrawlerView {
    /// Pages fetched.
    pub fetched: Flow,
    /// URLs waiting per host (the largest 12).
    pub frontier: Vec<(String, f64)>,
}

/// One picture of the pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct Pipeline {
    /// When the samples were taken, ms since the epoch.
    pub at_ms: i64,
    /// The ingress.
    pub ingress: IngressView,
    /// Every processor, in the order of the shapes.
    pub processors: Vec<ProcessorView>,
    /// Records produced per topic.
    pub topics: Vec<Flow>,
    /// The crawler's progress.
    pub crawler: CrawlerView,
    /// Notification outcomes by `channel/status`.
    pub notifications: BTreeMap<String, f64>,
}

/// Turns successive sample sets into pictures with rates; one per watcher.
pub struct Tracker {
    shapes: Vec<Shape>,
    previous: Option<(Instant, HashMap<String, f64>)>,
    last_dead_letter: HashMap<String, Instant>,
    last_retry: HashMap<String, Instant>,
    last_activity: HashMap<String, Instant>,
}

impl Tracker {
    /// A tracker for the processors in `shapes`.
    pub fn new(shapes: Vec<Shape>) -> Self {
        Self {
            shapes,
            previous: None,
            last_dead_letter: HashMap::new(),
            last_retry: HashMap::new(),
            last_activity: HashMap::new(),
        }
    }

    /// The picture for `samples` taken at `now` (`at_ms` on the wall clock).
    pub fn observe(&mut self, samples: &[Sample], now: Instant, at_ms: i64) -> Pipeline {
        let mut totals = HashMap::new();
        let previous = self.previous.take();
        let elapsed = previous
            .as_ref()
            .map(|(at, _)| now.saturating_duration_since(*at).as_secs_f64())
            .filter(|s| *s > 0.0);
        let mut flow = |key: String, name: &str, total: f64| {
            let per_s = match (&previous, elapsed) {
                (Some((_, before)), Some(seconds)) => {
                    // A restarted process starts its counters again from 0.
                    (total - before.get(&key).copied().unwrap_or(0.0)).max(0.0) / seconds
                }
                _ => 0.0,
            };
            totals.insert(key, total);
            Flow {
                name: name.to_owned(),
                total,
                per_s,
            }
        };

        let mut processors = Vec::new();
        for shape in &self.shapes {
            let p = shape.processor.as_str();
            let of = |name: &'static str| {
                let p = p.to_owned();
                move |s: &Sample| s.name == name && s.label("processor") == p
            };
            let inputs = shape
                .inputs
                .iter()
                .map(|topic| {
                    let total = sum(samples, |s| {
                        of("sixfold_consumed_total")(s) && s.label("topic") == topic
                    });
                    flow(format!("in|{p}|{topic}"), topic, total)
                })
                .collect::<Vec<_>>();
            let mut outputs = Vec::new();
            for (kind, metric, label) in [
                ("view", "sixfold_materialized_total", "view"),
                ("channel", "sixfold_delivered_total", "channel"),
            ] {
                for (name, total) in group(samples, of(metric), label) {
                    let name = format!("{kind}:{name}");
                    outputs.push(flow(format!("out|{p}|{name}"), &name, total));
                }
            }
            if p == sixfold_chat::PROCESSOR {
                // Chat messages leave through gateways (pub/sub) or wait in inboxes.
                let messages = |s: &Sample| {
                    s.name == "sixfold_chat_deliveries_total" && s.label("kind") == "message"
                };
                for (route, total) in group(samples, messages, "route") {
                    let name = format!("channel:{route}");
                    outputs.push(flow(format!("out|{p}|{name}"), &name, total));
                }
            }
            let consumed = flow(
                format!("consumed|{p}"),
                "consumed",
                sum(samples, of("sixfold_consumed_total")),
            );
            let retried = flow(
                format!("retried|{p}"),
                "retried",
                sum(samples, of("sixfold_retried_total")),
            );
            let dead_lettered = flow(
                format!("dlq|{p}"),
                "dead_lettered",
                sum(samples, of("sixfold_dead_lettered_total")),
            );
            let seconds = flow(
                format!("seconds|{p}"),
                "seconds",
                sum(samples, of("sixfold_processing_seconds_sum")),
            );
            let handled = flow(
                format!("handled|{p}"),
                "handled",
                sum(samples, of("sixfold_processing_seconds_count")),
            );
            let lag = sum(samples, of("sixfold_consumer_lag"));
            if dead_lettered.per_s > 0.0 {
                self.last_dead_letter.insert(p.to_owned(), now);
            }
            if retried.per_s > 0.0 {
                self.last_retry.insert(p.to_owned(), now);
            }
            if consumed.per_s > 0.0 || lag > 0.0 {
                self.last_activity.insert(p.to_owned(), now);
            }
            let recent = |seen: &HashMap<String, Instant>| {
                seen.get(p)
                    .is_some_and(|at| now.saturating_duration_since(*at) < ALERT_HOLD)
            };
            let health = health(
                recent(&self.last_dead_letter),
                recent(&self.last_retry),
                lag,
                recent(&self.last_activity),
            );
            processors.push(ProcessorView {
                name: p.to_owned(),
                inputs,
                outputs,
                lag,
                retried,
                dead_lettered,
                mean_ms: (handled.per_s > 0.0).then(|| seconds.per_s / handled.per_s * 1000.0),
                health,
            });
        }

        let topics = group(samples, |s| s.name == "sixfold_produced_total", "topic")
            .into_iter()
            .map(|(topic, total)| flow(format!("produced|{topic}"), &topic, total))
            .collect();
        let http = |s: &Sample| s.name == "sixfold_http_requests_total";
        let ingress = IngressView {
            requests: flow("http".into(), "requests", sum(samples, http)),
            limited: flow(
                "http|429".into(),
                "429",
                sum(samples, |s| http(s) && s.label("status") == "429"),
            ),
            errors: flow(
                "http|5xx".into(),
                "5xx",
                sum(samples, |s| http(s) && s.label("status").starts_with('5')),
            ),
        };
        let mut frontier = group(
            samples,
            |s| s.name == "sixfold_crawler_frontier_queued",
            "host",
        );
        frontier.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        frontier.truncate(12);
        let crawler = CrawlerView {
            fetched: flow(
                "crawler|fetched".into(),
                "fetched",
                sum(samples, |s| {
                    s.name == "sixfold_crawler_fetches_total" && s.label("outcome") == "fetched"
                }),
            ),
            frontier,
        };
        let notifications = samples
            .iter()
            .filter(|s| s.name == "sixfold_notify_outcomes_total")
            .fold(BTreeMap::new(), |mut acc, s| {
                *acc.entry(format!("{}/{}", s.label("channel"), s.label("status")))
                    .or_insert(0.0) += s.value;
                acc
            });
        self.previous = Some((now, totals));
        Pipeline {
            at_ms,
            ingress,
            processors,
            topics,
            crawler,
            notifications,
        }
    }
}

/// The colour of a processor from what happened in the last [`ALERT_HOLD`].
pub fn health(dead_lettered: bool, retried: bool, lag: f64, active: bool) -> Health {
    if dead_lettered {
        Health::Failing
    } else if retried {
        Health::Retrying
    } else if lag > LAG_WARN {
        Health::Lagging
    } else if active {
        Health::Ok
    } else {
        Health::Idle
    }
}

fn sum(samples: &[Sample], keep: impl Fn(&Sample) -> bool) -> f64 {
    // Not `Iterator::sum`: that gives -0.0 for no samples.
    samples
        .iter()
        .filter(|s| keep(s))
        .fold(0.0, |total, s| total + s.value)
}

/// Sums of the samples `keep` selects, by the value of `label`, in label order.
fn group(samples: &[Sample], keep: impl Fn(&Sample) -> bool, label: &str) -> Vec<(String, f64)> {
    let mut groups: BTreeMap<String, f64> = BTreeMap::new();
    for sample in samples.iter().filter(|s| keep(s)) {
        *groups.entry(sample.label(label).to_owned()).or_insert(0.0) += sample.value;
    }
    groups.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
        }
    }

    fn urls_samples(consumed: f64, dead: f64, lag: f64) -> Vec<Sample> {
        vec![
            sample(
                "sixfold_consumed_total",
                &[("processor", "urls"), ("topic", "url.created")],
                consumed,
            ),
            sample(
                "sixfold_consumed_total",
                &[("processor", "urls"), ("topic", "urls.retry.1")],
                1.0,
            ),
            sample(
                "sixfold_consumed_total",
                &[("processor", "timeline"), ("topic", "url.created")],
                500.0,
            ),
            sample(
                "sixfold_materialized_total",
                &[("processor", "urls"), ("view", "link")],
                consumed,
            ),
            sample(
                "sixfold_dead_lettered_total",
                &[("processor", "urls"), ("error_class", "invalid")],
                dead,
            ),
            sample(
                "sixfold_consumer_lag",
                &[
                    ("processor", "urls"),
                    ("topic", "url.created"),
                    ("partition", "0"),
                ],
                lag,
            ),
            sample(
                "sixfold_http_requests_total",
                &[("route", "/v1/urls"), ("status", "429")],
                3.0,
            ),
            sample(
                "sixfold_http_requests_total",
                &[("route", "/v1/urls"), ("status", "201")],
                7.0,
            ),
        ]
    }

    #[test]
    fn rates_come_from_two_samples_and_only_the_processors_own_input() {
        let mut tracker = Tracker::new(vec![Shape {
            processor: "urls".into(),
            inputs: vec!["url.created".into()],
        }]);
        let start = Instant::now();
        let first = tracker.observe(&urls_samples(10.0, 0.0, 0.0), start, 0);
        assert_eq!(first.processors[0].inputs[0].total, 10.0);
        assert_eq!(first.processors[0].inputs[0].per_s, 0.0);
        assert_eq!(first.ingress.limited.total, 3.0);
        assert_eq!(first.ingress.requests.total, 10.0);
        let later = start + Duration::from_secs(2);
        let second = tracker.observe(&urls_samples(30.0, 0.0, 0.0), later, 2000);
        let urls = &second.processors[0];
        assert_eq!(urls.inputs[0].per_s, 10.0);
        assert_eq!(urls.outputs[0].name, "view:link");
        assert_eq!(urls.outputs[0].per_s, 10.0);
        assert_eq!(urls.health, Health::Ok);
    }

    #[test]
    fn a_dead_letter_colours_the_processor_for_a_minute() {
        let mut tracker = Tracker::new(vec![Shape {
            processor: "urls".into(),
            inputs: vec!["url.created".into()],
        }]);
        let start = Instant::now();
        tracker.observe(&urls_samples(10.0, 0.0, 0.0), start, 0);
        let failed = tracker.observe(
            &urls_samples(11.0, 1.0, 0.0),
            start + Duration::from_secs(1),
            0,
        );
        assert_eq!(failed.processors[0].health, Health::Failing);
        let still = tracker.observe(
            &urls_samples(11.0, 1.0, 0.0),
            start + Duration::from_secs(30),
            0,
        );
        assert_eq!(still.processors[0].health, Health::Failing);
        let calm = tracker.observe(
            &urls_samples(11.0, 1.0, 0.0),
            start + Duration::from_secs(100),
            0,
        );
        assert_eq!(calm.processors[0].health, Health::Idle);
    }

    #[test]
    fn a_restarted_process_gives_no_negative_rate() {
        let mut tracker = Tracker::new(vec![Shape {
            processor: "urls".into(),
            inputs: vec!["url.created".into()],
        }]);
        let start = Instant::now();
        tracker.observe(&urls_samples(100.0, 0.0, 0.0), start, 0);
        let after = tracker.observe(
            &urls_samples(5.0, 0.0, 5000.0),
            start + Duration::from_secs(1),
            0,
        );
        assert_eq!(after.processors[0].inputs[0].per_s, 0.0);
        assert_eq!(after.processors[0].health, Health::Lagging);
    }

    #[test]
    fn health_orders_failures_before_retries_before_lag() {
        assert_eq!(health(true, true, 5000.0, true), Health::Failing);
        assert_eq!(health(false, true, 5000.0, true), Health::Retrying);
        assert_eq!(health(false, false, 5000.0, true), Health::Lagging);
        assert_eq!(health(false, false, 0.0, true), Health::Ok);
        assert_eq!(health(false, false, 0.0, false), Health::Idle);
    }
}
