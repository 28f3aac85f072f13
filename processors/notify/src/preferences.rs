//! Per-user notification preferences, quiet hours and the delivery addresses a user registered
//! (devices for push, an email address and a phone number).
//!
//! Everything here is pure: no I/O and no clock. [`quiet_until`] takes the current instant as
//! an argument so that callers (and tests) decide what "now" is.
//!
//! Time zones come from the IANA database bundled into the binary by `jiff`, not from the
//! host's `/usr/share/zoneinfo`, so every machine (a developer's laptop, CI, a container with no
//! tzdata) computes the same quiet-hour boundaries.
//!
//! The row this mirrors is `notification_preferences(user_id, push_enabled default true,
//! email_enabled default true, sms_enabled default false, quiet_hours_start TIME,
//! quiet_hours_end TIME, frequency_limit INT default 10 per hour)` plus the user's time zone.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use jiff::Timestamp;
use jiff::civil::{DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone, TimeZoneDatabase};
use serde::{Deserialize, Serialize};

/// Highest accepted `hourly_limit`; anything above it is almost certainly a typo and would make
/// the frequency cap meaningless.
pub const MAX_HOURLY_LIMIT: u32 = 1000;

/// The bundled copy of the IANA database, loaded once per process.
static TZDB: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

/// Why preferences, a device or a contact were rejected, or why quiet hours could not be
/// computed. Every variant is a permanent error: retrying the same input fails the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreferencesError {
    /// The time zone is not an IANA name known to the bundled database.
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    /// `hourly_limit` is above [`MAX_HOURLY_LIMIT`].
    #[error("hourly limit {0} is above the maximum of {MAX_HOURLY_LIMIT}")]
    HourlyLimitTooHigh(u32),
    /// Quiet hours start and end at the same minute, which would be either an empty window or a
    /// whole day; neither is something a user means to set.
    #[error("quiet hours start and end at the same time ({0})")]
    EmptyQuietHours(TimeOfDay),
    /// A time of day is not `HH:MM` with `00 <= HH <= 23` and `00 <= MM <= 59`.
    #[error("invalid time of day {0:?}: expected HH:MM")]
    InvalidTimeOfDay(String),
    /// The instant given to [`quiet_until`] is outside the range the time library supports.
    #[error("timestamp {0} ms is out of range")]
    TimestampOutOfRange(i64),
    /// The time library failed to resolve a local time in the user's zone.
    #[error("cannot resolve local time in {zone}: {message}")]
    LocalTime {
        /// IANA name of the zone.
        zone: String,
        /// What the time library reported.
        message: String,
    },
    /// The device id is empty, longer than 64 characters or has a character outside
    /// `[A-Za-z0-9_.:-]`.
    #[error("invalid device id {0:?}")]
    InvalidDeviceId(String),
    /// The push token does not have the shape of a token for the device's platform.
    #[error("invalid {platform} push token: {reason}")]
    InvalidPushToken {
        /// Platform the token was registered for.
        platform: Platform,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The app version is empty, longer than 64 characters or contains control characters.
    #[error("invalid app version {0:?}")]
    InvalidAppVersion(String),
    /// The email address does not look like `local@domain.tld` or is longer than 254 characters.
    #[error("invalid email address {0:?}")]
    InvalidEmail(String),
    /// The phone number is not E.164 (`+` and 8 to 15 digits, not starting with 0).
    #[error("invalid phone number {0:?}: expected E.164 such as +14155550100")]
    InvalidPhone(String),
}

/// A delivery channel a user can switch on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// Push notifications through APNs, FCM or web push.
    Push,
    /// Email over SMTP.
    Email,
    /// Text messages through Twilio.
    Sms,
}

impl ChannelKind {
    /// Every channel, in a fixed order (for iterating over a user's choices).
    pub const ALL: [ChannelKind; 3] = [ChannelKind::Push, ChannelKind::Email, ChannelKind::Sms];

    /// The lowercase name used in events, metrics labels and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Push => "push",
            ChannelKind::Email => "email",
            ChannelKind::Sms => "sms",
        }
    }

    /// Parses the lowercase name written by [`ChannelKind::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "push" => Some(ChannelKind::Push),
            "email" => Some(ChannelKind::Email),
            "sms" => Some(ChannelKind::Sms),
            _ => None,
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A wall-clock time of day with minute precision, written `HH:MM` (24-hour clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeOfDay {
    hour: u8,
    minute: u8,
}

impl TimeOfDay {
    /// Builds a time of day, or `None` unless `hour < 24` and `minute < 60`.
    pub fn new(hour: u8, minute: u8) -> Option<Self> {
        (hour < 24 && minute < 60).then_some(TimeOfDay { hour, minute })
    }

    /// Hour, 0 to 23.
    pub fn hour(self) -> u8 {
        self.hour
    }

    /// Minute, 0 to 59.
    pub fn minute(self) -> u8 {
        self.minute
    }

    /// Minutes since local midnight, 0 to 1439.
    pub fn minutes_since_midnight(self) -> u16 {
        u16::from(self.hour) * 60 + u16::from(self.minute)
    }

    fn to_civil(self) -> Result<Time, jiff::Error> {
        // Both fields were range-checked on construction, so the casts cannot wrap.
        Time::new(self.hour as i8, self.minute as i8, 0, 0)
    }
}

impl FromStr for TimeOfDay {
    type Err = PreferencesError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || PreferencesError::InvalidTimeOfDay(s.to_owned());
        let bytes = s.as_bytes();
        if bytes.len() != 5 || bytes[2] != b':' {
            return Err(invalid());
        }
        let two_digits = |hi: u8, lo: u8| {
            (hi.is_ascii_digit() && lo.is_ascii_digit()).then(|| (hi - b'0') * 10 + (lo - b'0'))
        };
        let hour = two_digits(bytes[0], bytes[1]).ok_or_else(invalid)?;
        let minute = two_digits(bytes[3], bytes[4]).ok_or_else(invalid)?;
        TimeOfDay::new(hour, minute).ok_or_else(invalid)
    }
}

impl TryFrom<String> for TimeOfDay {
    type Error = PreferencesError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TimeOfDay> for String {
    fn from(t: TimeOfDay) -> String {
        t.to_string()
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// A daily window, in the user's local time, during which notifications are held back.
///
/// `start` is inclusive and `end` exclusive. When `end` is earlier than `start` the window wraps
/// midnight: `22:00`–`08:00` covers the night.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// First quiet minute.
    pub start: TimeOfDay,
    /// First minute that is no longer quiet.
    pub end: TimeOfDay,
}

impl QuietHours {
    /// Whether `local` (minutes since local midnight) falls inside the window.
    fn contains(self, local: u16) -> bool {
        let (start, end) = (
            self.start.minutes_since_midnight(),
            self.end.minutes_since_midnight(),
        );
        if start <= end {
            start <= local && local < end
        } else {
            local >= start || local < end
        }
    }
}

/// What a user chose about being notified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Preferences {
    /// Push notifications on (default true).
    pub push: bool,
    /// Email on (default true).
    pub email: bool,
    /// Text messages on (default false: they cost money and need an explicit opt-in).
    pub sms: bool,
    /// Daily window during which nothing is delivered; `None` means never quiet.
    pub quiet_hours: Option<QuietHours>,
    /// IANA time zone the quiet hours are expressed in (default `UTC`).
    pub time_zone: String,
    /// Most notifications per hour across channels (default 10); 0 means no limit.
    pub hourly_limit: u32,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            push: true,
            email: true,
            sms: false,
            quiet_hours: None,
            time_zone: "UTC".to_owned(),
            hourly_limit: 10,
        }
    }
}

impl Preferences {
    /// Whether the user accepts notifications on `channel`.
    pub fn enabled(&self, channel: ChannelKind) -> bool {
        match channel {
            ChannelKind::Push => self.push,
            ChannelKind::Email => self.email,
            ChannelKind::Sms => self.sms,
        }
    }

    /// Checks what serde cannot: the zone exists, the limit is sane and the quiet window is not
    /// empty.
    pub fn validate(&self) -> Result<(), PreferencesError> {
        time_zone(&self.time_zone)?;
        if self.hourly_limit > MAX_HOURLY_LIMIT {
            return Err(PreferencesError::HourlyLimitTooHigh(self.hourly_limit));
        }
        if let Some(quiet) = self.quiet_hours
            && quiet.start == quiet.end
        {
            return Err(PreferencesError::EmptyQuietHours(quiet.start));
        }
        Ok(())
    }
}

/// Looks an IANA zone name up in the bundled database.
fn time_zone(name: &str) -> Result<TimeZone, PreferencesError> {
    match TZDB.get(name) {
        Ok(tz) if !tz.is_unknown() => Ok(tz),
        _ => Err(PreferencesError::UnknownTimeZone(name.to_owned())),
    }
}

/// If `now_ms` (Unix epoch milliseconds) falls inside the user's quiet hours, returns the epoch
/// milliseconds at which the window ends, so that the caller can defer delivery until then.
/// Returns `None` when the user has no quiet hours or is not in them.
///
/// The end is the wall-clock `end` time on the right local day: today for a window that does not
/// wrap or when it is already past midnight, tomorrow when a wrapping window was entered before
/// midnight. Where that local time does not exist (it falls into a daylight-saving gap, such as
/// 02:30 in America/New_York on 2025-03-09) the instant is resolved the way RFC 5545 and
/// Temporal call "compatible": the local time is pushed forward by the length of the gap
/// (03:30 EDT). Where it exists twice (a fall-back fold) the earlier instant is used unless it is
/// not after `now`, in which case the later one is.
///
/// The returned instant is always after `now_ms`. At that instant the user is normally no longer
/// quiet; the exception is a window so long that a daylight-saving jump swallows the whole
/// non-quiet part of the day, and then asking again gives the next day's end.
pub fn quiet_until(prefs: &Preferences, now_ms: i64) -> Result<Option<i64>, PreferencesError> {
    let Some(quiet) = prefs.quiet_hours else {
        return Ok(None);
    };
    let tz = time_zone(&prefs.time_zone)?;
    let now = Timestamp::from_millisecond(now_ms)
        .map_err(|_| PreferencesError::TimestampOutOfRange(now_ms))?;
    let local = tz.to_datetime(now);
    let minutes = u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute()))
        .map_err(|_| PreferencesError::TimestampOutOfRange(now_ms))?;
    if !quiet.contains(minutes) {
        return Ok(None);
    }

    let wraps = quiet.end < quiet.start;
    let end_date = if wraps && minutes >= quiet.start.minutes_since_midnight() {
        local
            .date()
            .tomorrow()
            .map_err(|e| local_time_error(&prefs.time_zone, &e))?
    } else {
        local.date()
    };
    let end = quiet
        .end
        .to_civil()
        .and_then(|end| resolve_after(&tz, end_date.to_datetime(end), now))
        .map_err(|e| local_time_error(&prefs.time_zone, &e))?;
    Ok(Some(end.as_millisecond()))
}

/// Resolves a local date-time to an instant, choosing among the candidates of a fold the first
/// one that is after `now`.
fn resolve_after(tz: &TimeZone, local: DateTime, now: Timestamp) -> Result<Timestamp, jiff::Error> {
    let ambiguous = tz.to_ambiguous_timestamp(local);
    let is_fold = matches!(ambiguous.offset(), AmbiguousOffset::Fold { .. });
    let compatible = ambiguous.compatible()?;
    if is_fold && compatible <= now {
        tz.to_ambiguous_timestamp(local).later()
    } else {
        Ok(compatible)
    }
}

fn local_time_error(zone: &str, error: &jiff::Error) -> PreferencesError {
    PreferencesError::LocalTime {
        zone: zone.to_owned(),
        message: error.to_string(),
    }
}

/// The push platform of a registered device; it decides which provider and token format apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// iPhone and iPad, through APNs.
    Ios,
    /// Android, through FCM.
    Android,
    /// Browsers, through FCM web push.
    Web,
}

impl Platform {
    /// The lowercase name used in the store and in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Ios => "ios",
            Platform::Android => "android",
            Platform::Web => "web",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A device a user registered for push notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Client-chosen identifier, stable across token rotations (1–64 of `[A-Za-z0-9_.:-]`).
    pub device_id: String,
    /// Which push service the token belongs to.
    pub platform: Platform,
    /// APNs device token (hex) or FCM registration token.
    pub push_token: String,
    /// App version that registered, for support and targeting.
    #[serde(default)]
    pub app_version: Option<String>,
}

impl Device {
    /// Checks the id and that the token has the shape its platform's provider issues.
    ///
    /// APNs tokens are 32 bytes shown as 64 hex digits today; Apple says their length may grow,
    /// so up to 200 hex digits are accepted. FCM registration tokens (Android and web) are opaque
    /// strings of up to 4096 characters from `[A-Za-z0-9_:.-]`.
    pub fn validate(&self) -> Result<(), PreferencesError> {
        let id_ok = (1..=64).contains(&self.device_id.len())
            && self
                .device_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
        if !id_ok {
            return Err(PreferencesError::InvalidDeviceId(self.device_id.clone()));
        }
        let token = self.push_token.as_str();
        let bad_token = |reason| PreferencesError::InvalidPushToken {
            platform: self.platform,
            reason,
        };
        match self.platform {
            Platform::Ios => {
                if !(64..=200).contains(&token.len()) {
                    return Err(bad_token("expected 64 to 200 hex digits"));
                }
                if !token.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad_token("not hexadecimal"));
                }
            }
            Platform::Android | Platform::Web => {
                if !(1..=4096).contains(&token.len()) {
                    return Err(bad_token("expected 1 to 4096 characters"));
                }
                if !token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_:.-".contains(&b))
                {
                    return Err(bad_token("unexpected character"));
                }
            }
        }
        if let Some(version) = &self.app_version
            && (version.is_empty() || version.len() > 64 || version.chars().any(char::is_control))
        {
            return Err(PreferencesError::InvalidAppVersion(version.clone()));
        }
        Ok(())
    }
}

/// Where a user can be reached by email and text message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Contact {
    /// Email address, `local@domain.tld`, at most 254 characters.
    pub email: Option<String>,
    /// Phone number in E.164 form, such as `+14155550100`.
    pub phone: Option<String>,
}

impl Contact {
    /// Checks the shape of the address and number. This catches typos, not undeliverable
    /// addresses: only a delivery attempt can tell those.
    pub fn validate(&self) -> Result<(), PreferencesError> {
        if let Some(email) = &self.email
            && !is_email(email)
        {
            return Err(PreferencesError::InvalidEmail(email.clone()));
        }
        if let Some(phone) = &self.phone
            && !is_e164(phone)
        {
            return Err(PreferencesError::InvalidPhone(phone.clone()));
        }
        Ok(())
    }
}

/// A deliberately loose `local@domain.tld` check (RFC 5321 lengths, no whitespace, one `@`,
/// a dotted domain with non-empty labels).
fn is_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
}

/// E.164: `+`, then 8 to 15 digits, the first of which (the country code) is not 0.
fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

#[cfg(test)]
mod tests;
