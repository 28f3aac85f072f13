//! The timeline's data: tweets as stored and served, and the checks every input passes, the
//! same for the ingress and for events produced by other systems.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::id;

/// Longest user id, in bytes.
pub const MAX_USER_ID: usize = 64;
/// Longest media URL, in characters.
pub const MAX_MEDIA_URL: usize = 2048;

/// A tweet as stored, cached and returned by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tweet {
    /// Time-ordered id (see [`crate::id`]).
    pub id: i64,
    /// Author's user id.
    pub author_id: String,
    /// Text.
    pub content: String,
    /// Attached media URLs, in display order.
    #[serde(default)]
    pub media_urls: Vec<String>,
    /// Creation time, ms since the Unix epoch.
    pub created_at_ms: i64,
}

/// Why an input is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// A user id is empty, too long or has characters outside `[A-Za-z0-9_-]`.
    #[error("user id {0:?} must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'")]
    UserId(String),
    /// Tweet text is empty or too long.
    #[error("content must be 1-{max} characters, got {got}")]
    Content {
        /// Characters in the content.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// Too many media URLs, or one that is not http(s).
    #[error("media: {0}")]
    Media(String),
    /// A tweet id outside 1..2^53.
    #[error("tweet id {0} is not a valid id")]
    TweetId(i64),
    /// Following oneself.
    #[error("a user cannot follow themself")]
    SelfFollow,
}

/// Checks a user id. The character set keeps ids safe inside Redis keys (no `{`, `}` or `:`)
/// and store namespaces.
pub fn check_user_id(user: &str) -> Result<(), Invalid> {
    let ok = !user.is_empty()
        && user.len() <= MAX_USER_ID
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Invalid::UserId(user.chars().take(80).collect()))
    }
}

/// Limits on tweet content.
#[derive(Debug, Clone, Copy)]
pub struct ContentLimits {
    /// Most characters of text.
    pub max_chars: usize,
    /// Most media URLs.
    pub max_media: usize,
}

/// Checks a tweet before it is accepted or stored.
pub fn check_tweet(tweet: &Tweet, limits: ContentLimits) -> Result<(), Invalid> {
    if !id::is_valid(tweet.id) {
        return Err(Invalid::TweetId(tweet.id));
    }
    check_user_id(&tweet.author_id)?;
    let chars = tweet.content.chars().count();
    if chars == 0 || chars > limits.max_chars {
        return Err(Invalid::Content {
            got: chars,
            max: limits.max_chars,
        });
    }
    if tweet.media_urls.len() > limits.max_media {
        return Err(Invalid::Media(format!(
            "at most {} media URLs, got {}",
            limits.max_media,
            tweet.media_urls.len()
        )));
    }
    for media in &tweet.media_urls {
        let parsed =
            url::Url::parse(media).map_err(|e| Invalid::Media(format!("{media:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || media.chars().count() > MAX_MEDIA_URL {
            return Err(Invalid::Media(format!(
                "{:?} must be an http(s) URL of at most {MAX_MEDIA_URL} characters",
                media.chars().take(80).collect::<String>()
            )));
        }
    }
    Ok(())
}

/// Checks a follow edge.
pub fn check_follow(follower: &str, followee: &str) -> Result<(), Invalid> {
    check_user_id(follower)?;
    check_user_id(followee)?;
    if follower == followee {
        return Err(Invalid::SelfFollow);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ContentLimits = ContentLimits {
        max_chars: 280,
        max_media: 4,
    };

    fn tweet(content: &str, media: &[&str]) -> Tweet {
        Tweet {
            id: 42,
            author_id: "alice".into(),
            content: content.into(),
            media_urls: media.iter().map(|m| m.to_string()).collect(),
            created_at_ms: 0,
        }
    }

    #[test]
    fn user_ids() {
        assert!(check_user_id("alice_01-x").is_ok());
        for bad in ["", "a b", "a:b", "{a}", "ü", &"x".repeat(65)] {
            assert!(check_user_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tweets() {
        assert!(check_tweet(&tweet("hi", &["https://e.com/a.png"]), LIMITS).is_ok());
        // Characters, not bytes: 280 Hangul syllables are fine.
        assert!(check_tweet(&tweet(&"가".repeat(280), &[]), LIMITS).is_ok());
        assert!(check_tweet(&tweet(&"가".repeat(281), &[]), LIMITS).is_err());
        assert!(check_tweet(&tweet("", &[]), LIMITS).is_err());
        assert!(check_tweet(&tweet("x", &["ftp://e.com/a"]), LIMITS).is_err());
        assert!(check_tweet(&tweet("x", &["nope"]), LIMITS).is_err());
        assert!(check_tweet(&tweet("x", &["https://e.com/"; 5]), LIMITS).is_err());
        let mut t = tweet("x", &[]);
        t.id = 0;
        assert_eq!(check_tweet(&t, LIMITS), Err(Invalid::TweetId(0)));
    }

    #[test]
    fn follows() {
        assert!(check_follow("a", "b").is_ok());
        assert_eq!(check_follow("a", "a"), Err(Invalid::SelfFollow));
        assert!(check_follow("a", "").is_err());
    }
}
