//! Clicks: the ingress records them off the response path; the processor counts them per code
//! and per day.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use prometheus::IntCounter;
use serde::{Deserialize, Serialize};
use sixfold_runtime::applied::AppliedOffsets;
use sixfold_runtime::codec::{AvroCodec, EventSchema};
use sixfold_runtime::producer::{Outgoing, Producer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::events::UrlClicked;

/// Days of per-day counts kept per code.
const DAYS_KEPT: usize = 90;
/// Clicks taken from the buffer in one go. Kept small, with a yield after each batch, so
/// encoding never holds a worker thread long enough to delay redirects.
const BATCH: usize = 64;
/// Clicks handed to the producer and not yet acknowledged, at most.
const MAX_IN_FLIGHT: usize = 20_000;

/// Click counts of one code, as stored.
///
/// All clicks of a code share a partition (key = code) and one consumer applies them in
/// offset order, so the count is a single-row read-modify-write by one writer. `offsets`
/// remembers the last applied offset per partition, which makes applying a click twice (a
/// redelivery after a crash) a no-op.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickCounts {
    /// Clicks ever counted.
    pub total: u64,
    /// Clicks per UTC day (`YYYY-MM-DD`), the last 90 days.
    pub by_day: BTreeMap<String, u64>,
    /// Last applied offset per partition of `url.clicked`.
    #[serde(default)]
    pub offsets: AppliedOffsets,
}

impl ClickCounts {
    /// Counts the click at `partition`/`offset` on `day`; false if it was already counted.
    pub fn apply(&mut self, partition: i32, offset: i64, day: &str) -> bool {
        if !self.offsets.advance(partition, offset) {
            return false;
        }
        self.total += 1;
        *self.by_day.entry(day.to_string()).or_default() += 1;
        while self.by_day.len() > DAYS_KEPT {
            let oldest = self.by_day.keys().next().cloned();
            if let Some(oldest) = oldest {
                self.by_day.remove(&oldest);
            }
        }
        true
    }
}

/// The UTC day (`YYYY-MM-DD`) of a time in ms since the epoch.
pub fn utc_day(ms: i64) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Hands clicks to a background task that produces `url.clicked` in batches, so a redirect
/// never waits on the broker. When the buffer is full (the broker is down for long), clicks
/// are dropped and counted in `sixfold_urls_clicks_dropped_total`.
#[derive(Clone)]
pub struct ClickRecorder {
    sender: mpsc::Sender<UrlClicked>,
    dropped: IntCounter,
}

impl ClickRecorder {
    /// Starts the producing task; it drains what is buffered when `shutdown` is cancelled.
    pub fn spawn(
        producer: Producer,
        codec: Arc<AvroCodec>,
        topic: String,
        buffer: usize,
        dropped: IntCounter,
        shutdown: CancellationToken,
    ) -> Result<Self, sixfold_runtime::codec::CodecError> {
        let schema = EventSchema::parse(crate::events::URL_CLICKED_SCHEMA)?;
        let (sender, receiver) = mpsc::channel(buffer.max(1));
        tokio::spawn(produce_clicks(
            receiver, producer, codec, schema, topic, shutdown,
        ));
        Ok(Self { sender, dropped })
    }

    /// Records a click without waiting.
    pub fn record(&self, click: UrlClicked) {
        if self.sender.try_send(click).is_err() {
            self.dropped.inc();
        }
    }
}

async fn produce_clicks(
    mut receiver: mpsc::Receiver<UrlClicked>,
    producer: Producer,
    codec: Arc<AvroCodec>,
    schema: EventSchema,
    topic: String,
    shutdown: CancellationToken,
) {
    let send = |click: UrlClicked| {
        let (producer, codec, schema, topic) = (&producer, &codec, &schema, &topic);
        async move {
            let payload = codec
                .encode(topic, schema, &click)
                .await
                .map_err(|e| e.to_string())?;
            producer
                .send(Outgoing {
                    topic,
                    key: Some(click.short_code.as_bytes()),
                    payload: Some(&payload),
                    headers: &[],
                })
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(())
        }
    };
    // Sends awaiting their acknowledgement; many at once, so throughput is bounded by CPU rather
    // than by one broker round trip per batch.
    let mut in_flight = FuturesUnordered::new();
    let mut batch = Vec::with_capacity(BATCH);
    let mut open = true;
    let mut closing = false;
    while open || !in_flight.is_empty() {
        tokio::select! {
            received = receiver.recv_many(&mut batch, BATCH), if open && in_flight.len() < MAX_IN_FLIGHT => {
                if received == 0 {
                    open = false;
                }
                in_flight.extend(batch.drain(..).map(send));
                // Encoding happens as the sends are polled; give redirects a turn between batches.
                tokio::task::yield_now().await;
            }
            Some(result) = in_flight.next(), if !in_flight.is_empty() => {
                if let Err(error) = result {
                    tracing::warn!(%error, "click not recorded");
                }
            }
            _ = shutdown.cancelled(), if open && !closing => {
                // Stop taking new clicks; what is buffered is still sent.
                receiver.close();
                closing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_offset_once() {
        let mut counts = ClickCounts::default();
        assert!(counts.apply(0, 10, "2026-11-27"));
        assert!(counts.apply(0, 11, "2026-11-27"));
        assert!(!counts.apply(0, 11, "2026-11-27"), "redelivery");
        assert!(!counts.apply(0, 5, "2026-11-27"), "older offset");
        assert!(counts.apply(1, 3, "2026-11-28"), "other partition");
        assert_eq!(counts.total, 3);
        assert_eq!(counts.by_day["2026-11-27"], 2);
        assert_eq!(counts.by_day["2026-11-28"], 1);
    }

    #[test]
    fn keeps_ninety_days() {
        let mut counts = ClickCounts::default();
        for day in 0..100 {
            counts.apply(0, day, &utc_day(day * 86_400_000));
        }
        assert_eq!(counts.by_day.len(), DAYS_KEPT);
        assert_eq!(counts.total, 100);
        assert!(!counts.by_day.contains_key("1970-01-01"));
    }

    #[test]
    fn formats_days_in_utc() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(1_795_000_000_000), "2026-11-18");
    }
}
