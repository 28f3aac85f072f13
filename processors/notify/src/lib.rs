//! Notifications (issue 8): per-user preferences and quiet hours, templates per channel and
//! locale, frequency caps through the rate limiter, and one worker pool per channel (APNs, FCM,
//! email over SMTP, SMS through Twilio).
//!
//! # Parts
//! The `notify` processor ([`processor`]: dedup, `send_at` and quiet hours held in the store and
//! released by the scheduler, preferences, the hourly cap through the rate limiter, rendering
//! with [`template`], and the purge of ids past the dedup window), the routes ([`routes`]), the
//! channel clients ([`channels`]) and the channel workers ([`workers`]). A replay rebuilds the
//! views from `notify.status` ([`restore`]) rather than deciding or sending again.
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
pub mod restore;
pub mod routes;
pub mod service;
pub mod storage;
pub mod template;
pub mod workers;

pub use processor::NotifyProcessor;
pub use service::{Notify, NotifyDeps, NotifySettings, NotifyStartError, PROCESSOR};
