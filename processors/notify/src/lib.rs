//! Notifications (issue 8): per-user preferences and quiet hours, templates per channel and
//! locale, frequency caps through the rate limiter, and one worker pool per channel (APNs, FCM,
//! email over SMTP, SMS through Twilio).
//!
//! # Status
//! Works end to end against local provider stand-ins: the `notify` processor ([`processor`]:
//! dedup, `send_at` and quiet hours held in the store and released by the scheduler,
//! preferences, the hourly cap through the rate limiter, rendering with [`template`]), the
//! routes ([`routes`]), the channel clients ([`channels`]) and the channel workers
//! ([`workers`]). Not done: the benchmark, a killed-worker test, purging old notification ids.
//!
//! The rate limiter is used through its library API (`sixfold_ratelimit::RateLimiter::
//! check_key`), the one allowed dependency of one processor crate on another.

#![warn(missing_docs)]

pub mod apns_token;
pub mod channels;
pub mod events;
pub mod preferences;
pub mod processor;
pub mod provider;
pub mod routes;
pub mod service;
pub mod storage;
pub mod template;
pub mod workers;

pub use processor::NotifyProcessor;
pub use service::{Notify, NotifyDeps, NotifySettings, NotifyStartError, PROCESSOR};
