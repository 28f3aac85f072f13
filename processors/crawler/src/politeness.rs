//! How long to wait before the next request to a host: the per-host delay policy.
//!
//! Pure arithmetic over durations; the frontier keeps, per host key, the time the host may be
//! fetched again and asks this module how far to push it after each response.

mod http_date;

use std::time::{Duration, SystemTime};

/// The delay policy, the same for every host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolitenessPolicy {
    /// Least time between two requests to one host.
    pub default_delay: Duration,
    /// Time to first byte above which the host counts as strained, and the delay grows to
    /// twice that time: a slow answer is the cheapest sign that we are a burden.
    pub slow_ttfb: Duration,
    /// Longest backoff after a 429 or 503, including a server's `Retry-After`: a host that
    /// asks for a day is retried after this, so a typo cannot park it forever.
    pub max_backoff: Duration,
}

impl Default for PolitenessPolicy {
    /// One second between requests, slow above one second, backoff at most ten minutes.
    fn default() -> Self {
        Self {
            default_delay: Duration::from_secs(1),
            slow_ttfb: Duration::from_secs(1),
            max_backoff: Duration::from_secs(600),
        }
    }
}

impl PolitenessPolicy {
    /// The wait before the next request to a host whose last response started arriving after
    /// `ttfb`, and whose robots.txt asks for `robots_delay` (`crawl-delay`) if anything.
    ///
    /// The larger of the default delay and the robots.txt delay (a site may ask for more than
    /// our default, never for less), and, if the host was slow, at least twice its ttfb.
    /// A robots.txt delay is honoured up to [`PolitenessPolicy::max_backoff`].
    pub fn next_delay(&self, robots_delay: Option<Duration>, ttfb: Duration) -> Duration {
        // Capped like a backoff: a hostile `Crawl-delay: 1e16` must not overflow a clock or
        // park the host for ever.
        let asked = robots_delay.unwrap_or_default().min(self.max_backoff);
        let delay = self.default_delay.max(asked);
        if ttfb > self.slow_ttfb {
            delay.max(ttfb.saturating_mul(2))
        } else {
            delay
        }
    }

    /// The wait after a 429 or 503 answer, given the backoff that preceded it (`None` for the
    /// first) and the response's `Retry-After`, if it had a valid one.
    ///
    /// `Retry-After` is honoured, but never below the default delay and never above
    /// [`PolitenessPolicy::max_backoff`]. Without it the backoff doubles, starting at twice the
    /// default delay, up to the same cap.
    pub fn backoff(&self, previous: Option<Duration>, retry_after: Option<Duration>) -> Duration {
        let first = self.default_delay.saturating_mul(2);
        let wanted = match retry_after {
            Some(retry_after) => retry_after.max(self.default_delay),
            None => previous.map_or(first, |previous| previous.saturating_mul(2).max(first)),
        };
        wanted.min(self.max_backoff)
    }
}

/// The wait a `Retry-After` header value asks for, read at time `now` (RFC 9110 section 10.2.3):
/// either delta-seconds (`120`) or an HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`, or one of
/// the two obsolete date formats recipients must still accept). A date in the past means no
/// wait. `None` for anything else.
///
/// Delta-seconds too large for a `u64` saturate, as RFC 9111 section 1.2.2 does for caches.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits, so parsing can only fail by overflow.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = http_date::parse(value, now)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn next_delay_table() {
        let policy = PolitenessPolicy::default();
        // (robots delay, ttfb, delay)
        let table = [
            (None, Duration::from_millis(100), secs(1)),
            (Some(secs(5)), Duration::from_millis(100), secs(5)),
            (Some(Duration::from_millis(200)), Duration::ZERO, secs(1)),
            // Exactly at the threshold is not slow.
            (None, secs(1), secs(1)),
            (None, Duration::from_millis(1500), secs(3)),
            (Some(secs(5)), secs(2), secs(5)),
            (Some(secs(5)), secs(4), secs(8)),
            // A robots.txt delay above the backoff cap (10 minutes) is capped.
            (Some(secs(3600)), secs(1), secs(600)),
            (Some(Duration::MAX), Duration::ZERO, secs(600)),
            (None, Duration::MAX, Duration::MAX),
        ];
        for (robots, ttfb, expected) in table {
            assert_eq!(
                policy.next_delay(robots, ttfb),
                expected,
                "robots {robots:?}, ttfb {ttfb:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = PolitenessPolicy::default();
        let mut delays = Vec::new();
        let mut previous = None;
        for _ in 0..12 {
            let delay = policy.backoff(previous, None);
            delays.push(delay.as_secs());
            previous = Some(delay);
        }
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600]);
        // A previous value below the start (policy changed) restarts at the start.
        assert_eq!(policy.backoff(Some(Duration::ZERO), None), secs(2));
        assert_eq!(policy.backoff(Some(Duration::MAX), None), secs(600));
    }

    #[test]
    fn backoff_honours_retry_after_within_bounds() {
        let policy = PolitenessPolicy::default();
        // (previous, retry-after, backoff)
        let table = [
            (None, Some(secs(30)), secs(30)),
            (Some(secs(512)), Some(secs(30)), secs(30)),
            (None, Some(secs(86_400)), secs(600)),
            (None, Some(Duration::ZERO), secs(1)),
            (None, Some(Duration::from_millis(10)), secs(1)),
            (None, Some(Duration::MAX), secs(600)),
        ];
        for (previous, retry_after, expected) in table {
            assert_eq!(
                policy.backoff(previous, retry_after),
                expected,
                "{previous:?} {retry_after:?}"
            );
        }
    }

    #[test]
    fn retry_after_values() {
        // 1994-11-06T08:49:37Z, the example date of RFC 9110.
        let date = SystemTime::UNIX_EPOCH + secs(784_111_777);
        let now = date - secs(90);
        // (header value, wait)
        let table = [
            ("120", Some(secs(120))),
            ("  0 ", Some(Duration::ZERO)),
            ("99999999999999999999999", Some(secs(u64::MAX))),
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(secs(90))),
            ("Sunday, 06-Nov-94 08:49:37 GMT", Some(secs(90))),
            ("Sun Nov  6 08:49:37 1994", Some(secs(90))),
            ("Sun, 06 Nov 1994 08:46:37 GMT", Some(Duration::ZERO)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(Duration::ZERO)),
            ("", None),
            ("-5", None),
            ("1.5", None),
            ("+5", None),
            ("soon", None),
            ("Sun, 06 Nov 1994 08:49:37 PST", None),
        ];
        for (value, expected) in table {
            assert_eq!(parse_retry_after(value, now), expected, "{value:?}");
        }
    }
}
