//! Consumer lag (high watermark − position per assigned partition) and the poll interval a
//! sleeping retry tier needs.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use tokio_util::sync::CancellationToken;

use super::GroupConsumer;
use crate::metrics::Metrics;

/// How often consumer lag is sampled.
const LAG_INTERVAL: Duration = Duration::from_secs(10);
/// The first sample comes sooner, once partitions are likely assigned.
const FIRST_LAG_SAMPLE: Duration = Duration::from_secs(2);

/// librdkafka's default, raised above the longest retry delay.
pub(super) fn max_poll_interval(delays: &[Duration]) -> Duration {
    let longest = delays.iter().max().copied().unwrap_or_default();
    (longest + Duration::from_secs(60)).max(Duration::from_secs(300))
}

/// Publishes `high watermark − position` per assigned partition every [`LAG_INTERVAL`].
pub(super) async fn sample_lag(
    consumer: Arc<GroupConsumer>,
    processor: String,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let mut wait = FIRST_LAG_SAMPLE;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = LAG_INTERVAL;
        let consumer = consumer.clone();
        // Watermark queries are blocking broker round trips.
        let sampled =
            tokio::task::spawn_blocking(move || lag_by_partition(consumer.as_ref())).await;
        let Ok(lags) = sampled else { return };
        for (topic, partition, lag) in &lags {
            metrics
                .consumer_lag
                .with_label_values(&[processor.as_str(), topic, &partition.to_string()])
                .set(*lag);
        }
    }
}

fn lag_by_partition(consumer: &GroupConsumer) -> Vec<(String, i32, i64)> {
    let Ok(positions) = consumer.position() else {
        return Vec::new();
    };
    let mut lags = Vec::new();
    for element in positions.elements() {
        let Ok((_, high)) =
            consumer.fetch_watermarks(element.topic(), element.partition(), Duration::from_secs(2))
        else {
            continue;
        };
        let lag = match element.offset() {
            Offset::Offset(position) => (high - position).max(0),
            // Nothing consumed yet in this session: everything up to the watermark is pending.
            _ => high,
        };
        lags.push((element.topic().to_string(), element.partition(), lag));
    }
    lags
}
