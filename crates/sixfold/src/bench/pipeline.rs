//! `sixfold bench pipeline`: what the broker and the processor runtime cost on their own.
//!
//! One fresh topic of 4 partitions gets `records` small Avro records (Confluent framing) from
//! the runtime's bulk producer; then a raw `rdkafka` consumer reads them all, and then a
//! pass-through processor (`run_processor`, whose `process` only counts) reads them all in a
//! group of its own. The two reads see the same records on the same broker, so their ratio is
//! the runtime's bare cost: decoding, per-key lanes, metrics and offset storage. The topic is
//! left in place (deleting topics has broken the local broker's later produces).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use futures::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use sixfold_runtime::codec::EventSchema;
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_runtime::{Classify, Processor, ProcessorConfig, Record, run_processor};

use crate::Clients;
use crate::settings::Settings;

/// The benchmark's record: a counter and 64 bytes of padding (about 80 bytes framed).
const SCHEMA: &str = r#"{"type":"record","name":"Ping","namespace":"sixfold.bench",
  "fields":[{"name":"n","type":"long"},{"name":"pad","type":"string"}]}"#;

#[derive(serde::Serialize)]
struct Ping {
    n: i64,
    pad: String,
}

/// Never produced: the pass-through processor does not fail.
#[derive(Debug, thiserror::Error)]
#[error("unreachable")]
struct Never;

impl Classify for Never {
    fn is_transient(&self) -> bool {
        false
    }
    fn class(&self) -> &'static str {
        "never"
    }
}

/// Counts records and says when it has seen `expected`.
struct PassThrough {
    seen: AtomicUsize,
    expected: usize,
    done: CancellationToken,
}

#[async_trait]
impl Processor for PassThrough {
    type Error = Never;

    async fn process(&self, _record: &Record) -> Result<(), Never> {
        if self.seen.fetch_add(1, Ordering::Relaxed) + 1 >= self.expected {
            self.done.cancel();
        }
        Ok(())
    }
}

/// Prints `pipeline <records> <produced/s> <raw consumer/s> <pass-through processor/s>`.
pub async fn pipeline(settings: &Settings, records: usize) -> Result<()> {
    let clients = Clients::connect(settings, Metrics::new()).await?;
    let run = std::process::id();
    let topic = format!("bench.passthrough.{run}");
    let admin: AdminClient<DefaultClientContext> = settings.kafka.client_config().create()?;
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 4, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?;
    for result in created {
        result.map_err(|(topic, code)| anyhow::anyhow!("create {topic}: {code}"))?;
    }

    let schema = EventSchema::parse(SCHEMA)?;
    let started = Instant::now();
    let keys: Vec<String> = (0..records).map(|n| format!("k{}", n % 1000)).collect();
    let pings: Vec<Ping> = (0..records)
        .map(|n| Ping {
            n: n as i64,
            // Two UUIDs: compression does not make the records smaller than they are.
            pad: format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
        })
        .collect();
    let mut deliveries = Vec::with_capacity(records);
    for (key, ping) in keys.iter().zip(&pings) {
        let delivery = clients
            .bulk_producer
            .enqueue_event(&clients.codec, &topic, &schema, key, ping)
            .await?;
        deliveries.push(delivery);
    }
    for delivery in deliveries {
        delivery.await?;
    }
    let produced = records as f64 / started.elapsed().as_secs_f64();

    // The raw consumer: counts records, nothing else.
    let mut config = settings.kafka.client_config();
    config
        .set("group.id", format!("bench-raw-{run}"))
        // The same fetch wait as the runtime's consumers.
        .set(
            "fetch.wait.max.ms",
            settings.kafka.fetch_wait.as_millis().to_string(),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    let consumer: StreamConsumer = config.create()?;
    consumer.subscribe(&[topic.as_str()])?;
    let mut stream = consumer.stream();
    let first = stream.next().await.context("raw consumer ended")??;
    drop(first);
    let started = Instant::now();
    let mut seen = 1;
    while seen < records {
        let next = tokio::time::timeout(Duration::from_secs(60), stream.next())
            .await
            .with_context(|| format!("raw consumer stalled at {seen} of {records}"))?;
        next.context("raw consumer ended")??;
        seen += 1;
    }
    let raw = (records - 1) as f64 / started.elapsed().as_secs_f64();
    drop(stream);
    drop(consumer);

    let done = CancellationToken::new();
    let processor = Arc::new(PassThrough {
        seen: AtomicUsize::new(0),
        expected: records,
        done: done.clone(),
    });
    let config = ProcessorConfig {
        name: format!("bench-passthrough-{run}"),
        topics: vec![topic.clone()],
        retry_delays: Vec::new(),
        ..ProcessorConfig::default()
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_processor(
        processor.clone(),
        config,
        clients.context(settings),
        shutdown.clone(),
    ));
    // The clock starts at the first record, as for the raw consumer (the group join is apart).
    while processor.seen.load(Ordering::Relaxed) == 0 {
        if task.is_finished() {
            bail!("the pass-through processor stopped");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    let counted_from = processor.seen.load(Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(300), done.cancelled())
        .await
        .context("the pass-through processor did not see every record")?;
    let passed = (records - counted_from) as f64 / started.elapsed().as_secs_f64();
    shutdown.cancel();
    let _ = task.await;
    println!("pipeline {records} {produced:.0} {raw:.0} {passed:.0}");
    Ok(())
}
