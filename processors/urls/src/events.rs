//! The URL shortener's events, as serde types matching `schemas/avro/url.*.avsc`.

use serde::{Deserialize, Serialize};

use crate::link::{Link, RedirectStatus};

/// `schemas/avro/url.created.avsc`.
pub const URL_CREATED_SCHEMA: &str = include_str!("../../../schemas/avro/url.created.avsc");
/// `schemas/avro/url.clicked.avsc`.
pub const URL_CLICKED_SCHEMA: &str = include_str!("../../../schemas/avro/url.clicked.avsc");

/// A link was created (key: short code).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UrlCreated {
    /// Idempotency key.
    pub event_id: String,
    /// Creation time, ms since the epoch.
    pub occurred_at: i64,
    /// Short code or alias.
    pub short_code: String,
    /// Target.
    pub long_url: String,
    /// Whether the code is a custom alias.
    pub custom_alias: bool,
    /// Redirect status.
    pub redirect: RedirectStatus,
    /// Expiry, ms since the epoch.
    pub expires_at: Option<i64>,
    /// Creator.
    pub created_by: Option<String>,
}

impl UrlCreated {
    /// The event announcing `link`.
    pub fn of(link: &Link) -> Self {
        Self {
            event_id: uuid::Uuid::new_v4().to_string(),
            occurred_at: link.created_at_ms,
            short_code: link.code.clone(),
            long_url: link.long_url.clone(),
            custom_alias: link.custom,
            redirect: link.redirect,
            expires_at: link.expires_at_ms,
            created_by: link.created_by.clone(),
        }
    }

    /// The link this event creates.
    pub fn link(&self) -> Link {
        Link {
            code: self.short_code.clone(),
            long_url: self.long_url.clone(),
            created_at_ms: self.occurred_at,
            expires_at_ms: self.expires_at,
            redirect: self.redirect,
            custom: self.custom_alias,
            created_by: self.created_by.clone(),
        }
    }
}

/// A redirect was served (key: short code).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UrlClicked {
    /// Idempotency key.
    pub event_id: String,
    /// When the redirect was served, ms since the epoch.
    pub occurred_at: i64,
    /// The code followed.
    pub short_code: String,
    /// `Referer` header.
    pub referrer: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// Client address.
    pub ip: Option<String>,
    /// Client country, when known.
    pub country: Option<String>,
}
