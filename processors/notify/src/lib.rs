//! Notifications (issue 8): per-user preferences and quiet hours, templates per channel and
//! locale, frequency caps through the rate limiter, and one worker pool per channel (APNs, FCM,
//! email over SMTP, SMS through Twilio).
//!
//! # Status
//! Only pure building blocks exist so far: template rendering with locale-aware number and
//! currency formatting ([`template`]), preferences and quiet-hour deferral ([`preferences`]),
//! the classification of provider answers ([`provider`]) and APNs provider tokens
//! ([`apns_token`]). The `notify` processor, the channel workers, the HTTP routes and the store
//! tables are not written yet.

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
