//! Retry tiers and the dead-letter topic (Uber's reprocessing pattern).
//!
//! A record whose processing failed transiently is written, unchanged, to
//! `<processor>.retry.<n>` with a due time; that tier's consumer waits until the record is due
//! and hands it back to the processor. After the last tier, or at once for a permanent failure,
//! the record goes to `<processor>.dlq`. Key and value are kept as they were; the headers below
//! say where the record came from and why it failed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::producer::{Outgoing, ProduceError, Producer};

/// Header: topic the record was first written to.
pub const H_ORIGINAL_TOPIC: &str = "sixfold.original.topic";
/// Header: partition of the original record.
pub const H_ORIGINAL_PARTITION: &str = "sixfold.original.partition";
/// Header: offset of the original record.
pub const H_ORIGINAL_OFFSET: &str = "sixfold.original.offset";
/// Header: processor that failed.
pub const H_PROCESSOR: &str = "sixfold.processor";
/// Header: stable error class (see [`crate::Classify::class`]).
pub const H_ERROR_CLASS: &str = "sixfold.error.class";
/// Header: the error message.
pub const H_ERROR_MESSAGE: &str = "sixfold.error.message";
/// Header: how many attempts have failed so far.
pub const H_ATTEMPTS: &str = "sixfold.attempts";
/// Header: first failure time, milliseconds since the epoch.
pub const H_FIRST_FAILURE_MS: &str = "sixfold.first-failure-ms";
/// Header: when a retry record is due, milliseconds since the epoch.
pub const H_DUE_MS: &str = "sixfold.due-ms";

/// Error class for records whose bytes could not be decoded at all.
pub const CLASS_DECODE: &str = "decode";

/// The retry topic of `processor` for tier `tier` (1-based).
pub fn retry_topic(processor: &str, tier: usize) -> String {
    format!("{processor}.retry.{tier}")
}

/// The dead-letter topic of `processor`.
pub fn dlq_topic(processor: &str) -> String {
    format!("{processor}.dlq")
}

/// Where a failed record goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To retry tier `tier` (1-based), not before `delay` has passed.
    Retry {
        /// Tier number, 1-based.
        tier: usize,
        /// How long the tier waits before handing the record back.
        delay: Duration,
    },
    /// To the dead-letter topic.
    DeadLetter,
}

/// Decides the next stop of a record after `attempts` failed attempts (1 after the first).
pub fn route(delays: &[Duration], attempts: u32, transient: bool) -> Route {
    let tier = attempts as usize;
    match delays.get(tier.wrapping_sub(1)) {
        Some(delay) if transient && tier >= 1 => Route::Retry {
            tier,
            delay: *delay,
        },
        _ => Route::DeadLetter,
    }
}

/// Where a record originally came from and how it has fared, carried in headers across tiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Topic first written to.
    pub topic: String,
    /// Partition of the original record.
    pub partition: i32,
    /// Offset of the original record.
    pub offset: i64,
    /// Attempts that already failed before this delivery (0 on a first delivery).
    pub failed_attempts: u32,
    /// First failure, ms since the epoch, if any.
    pub first_failure_ms: Option<i64>,
    /// When this delivery is due, ms since the epoch (retry topics only).
    pub due_ms: Option<i64>,
}

impl Origin {
    /// The origin of a record read from `topic`: its own coordinates, unless retry headers say
    /// it came from elsewhere.
    pub fn from_headers<'a>(
        topic: &str,
        partition: i32,
        offset: i64,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Self {
        let mut origin = Origin {
            topic: topic.to_string(),
            partition,
            offset,
            failed_attempts: 0,
            first_failure_ms: None,
            due_ms: None,
        };
        for (name, value) in headers {
            let text = std::str::from_utf8(value).unwrap_or_default();
            match name {
                H_ORIGINAL_TOPIC => origin.topic = text.to_string(),
                H_ORIGINAL_PARTITION => origin.partition = text.parse().unwrap_or(partition),
                H_ORIGINAL_OFFSET => origin.offset = text.parse().unwrap_or(offset),
                H_ATTEMPTS => origin.failed_attempts = text.parse().unwrap_or(0),
                H_FIRST_FAILURE_MS => origin.first_failure_ms = text.parse().ok(),
                H_DUE_MS => origin.due_ms = text.parse().ok(),
                _ => {}
            }
        }
        origin
    }
}

/// A failed attempt, as the runtime routes it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Stable class for headers and metrics.
    pub class: &'static str,
    /// Human-readable reason.
    pub message: String,
    /// Whether a retry may succeed.
    pub transient: bool,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Writes a failed record to its next stop (retry tier or DLQ) and waits for the broker's
/// acknowledgement. Returns where it went.
pub async fn hand_off(
    producer: &Producer,
    processor: &str,
    delays: &[Duration],
    origin: &Origin,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    failure: &Failure,
) -> Result<Route, ProduceError> {
    let attempts = origin.failed_attempts.saturating_add(1);
    let next = route(delays, attempts, failure.transient);
    let now = now_ms();
    let (topic, due) = match &next {
        Route::Retry { tier, delay } => (
            retry_topic(processor, *tier),
            Some(now + delay.as_millis() as i64),
        ),
        Route::DeadLetter => (dlq_topic(processor), None),
    };
    // Keep DLQ headers readable: cap the message, which may embed a whole payload.
    let message: String = failure.message.chars().take(2000).collect();
    let partition = origin.partition.to_string();
    let offset = origin.offset.to_string();
    let attempts_text = attempts.to_string();
    let first = origin.first_failure_ms.unwrap_or(now).to_string();
    let due_text = due.map(|d| d.to_string());
    let mut headers: Vec<(&str, &[u8])> = vec![
        (H_ORIGINAL_TOPIC, origin.topic.as_bytes()),
        (H_ORIGINAL_PARTITION, partition.as_bytes()),
        (H_ORIGINAL_OFFSET, offset.as_bytes()),
        (H_PROCESSOR, processor.as_bytes()),
        (H_ERROR_CLASS, failure.class.as_bytes()),
        (H_ERROR_MESSAGE, message.as_bytes()),
        (H_ATTEMPTS, attempts_text.as_bytes()),
        (H_FIRST_FAILURE_MS, first.as_bytes()),
    ];
    if let Some(due) = &due_text {
        headers.push((H_DUE_MS, due.as_bytes()));
    }
    producer
        .send(Outgoing {
            topic: &topic,
            key,
            payload,
            headers: &headers,
        })
        .await?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAYS: [Duration; 3] = [
        Duration::from_secs(1),
        Duration::from_secs(10),
        Duration::from_secs(60),
    ];

    #[test]
    fn transient_failures_climb_the_tiers_then_dead_letter() {
        assert_eq!(
            route(&DELAYS, 1, true),
            Route::Retry {
                tier: 1,
                delay: DELAYS[0]
            }
        );
        assert_eq!(
            route(&DELAYS, 3, true),
            Route::Retry {
                tier: 3,
                delay: DELAYS[2]
            }
        );
        assert_eq!(route(&DELAYS, 4, true), Route::DeadLetter);
    }

    #[test]
    fn permanent_failures_and_no_tiers_dead_letter_at_once() {
        assert_eq!(route(&DELAYS, 1, false), Route::DeadLetter);
        assert_eq!(route(&[], 1, true), Route::DeadLetter);
        assert_eq!(route(&DELAYS, 0, true), Route::DeadLetter);
    }

    #[test]
    fn origin_prefers_headers_over_own_coordinates() {
        let plain = Origin::from_headers("t", 2, 7, []);
        assert_eq!(
            (plain.topic.as_str(), plain.partition, plain.offset),
            ("t", 2, 7)
        );
        assert_eq!(plain.failed_attempts, 0);
        let headers: Vec<(&str, &[u8])> = vec![
            (H_ORIGINAL_TOPIC, b"url.created"),
            (H_ORIGINAL_PARTITION, b"3"),
            (H_ORIGINAL_OFFSET, b"42"),
            (H_ATTEMPTS, b"2"),
            (H_FIRST_FAILURE_MS, b"1000"),
            (H_DUE_MS, b"2000"),
        ];
        let retried = Origin::from_headers("urls.retry.2", 0, 5, headers);
        assert_eq!(retried.topic, "url.created");
        assert_eq!((retried.partition, retried.offset), (3, 42));
        assert_eq!(retried.failed_attempts, 2);
        assert_eq!(retried.first_failure_ms, Some(1000));
        assert_eq!(retried.due_ms, Some(2000));
    }
}
