//! Attachments: checked on upload, stored in the content store under their SHA-256, served
//! back by hash. Messages carry the URL `POST /v1/chat/media` returns.

use bytes::Bytes;

use crate::Chat;
use crate::protocol::Media;
use crate::storage::MediaMeta;

/// Prefix of attachments in the content store.
const MEDIA_PREFIX: &str = "chat-media";

/// Why an upload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// Nothing was uploaded.
    #[error("the body is empty")]
    Empty,
    /// Over the size limit.
    #[error("the attachment is {size} bytes; the limit is {max}")]
    TooLarge {
        /// Size of the body.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A content type the settings do not allow.
    #[error("content type {0:?} is not accepted; allowed: {1}")]
    TypeNotAllowed(String, String),
    /// The bytes are not what the content type says.
    #[error("the body is not {0}")]
    Mismatch(String),
}

/// Checks an upload: non-empty, at most `max` bytes, a content type in `allowed`, and bytes
/// that match it (image and PDF signatures, UTF-8 for `text/plain`).
pub fn check_upload(
    content_type: &str,
    body: &[u8],
    allowed: &[String],
    max: usize,
) -> Result<(), MediaError> {
    if body.is_empty() {
        return Err(MediaError::Empty);
    }
    if body.len() > max {
        return Err(MediaError::TooLarge {
            size: body.len(),
            max,
        });
    }
    if !allowed.iter().any(|t| t == content_type) {
        return Err(MediaError::TypeNotAllowed(
            content_type.to_owned(),
            allowed.join(", "),
        ));
    }
    let matches = match content_type {
        "image/png" => body.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => body.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/gif" => body.starts_with(b"GIF87a") || body.starts_with(b"GIF89a"),
        "image/webp" => body.len() >= 12 && &body[..4] == b"RIFF" && &body[8..12] == b"WEBP",
        "application/pdf" => body.starts_with(b"%PDF-"),
        "text/plain" => std::str::from_utf8(body).is_ok(),
        _ => true,
    };
    if matches {
        Ok(())
    } else {
        Err(MediaError::Mismatch(content_type.to_owned()))
    }
}

/// The essence of a `Content-Type` header: `image/png; charset=x` → `image/png`.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Why an upload or download failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaStoreError {
    /// Refused.
    #[error(transparent)]
    Invalid(#[from] MediaError),
    /// The content store failed.
    #[error("content store: {0}")]
    Blobs(#[from] object_store::Error),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

impl Chat {
    /// Checks and stores an attachment; the [`Media`] to put in a message.
    pub async fn upload_media(
        &self,
        content_type: &str,
        body: Bytes,
        file_name: Option<String>,
    ) -> Result<Media, MediaStoreError> {
        let s = &self.settings;
        let content_type = essence(content_type);
        check_upload(&content_type, &body, &s.media_types, s.max_media_bytes)?;
        let size = body.len() as u64;
        let stored = self.blobs.put(MEDIA_PREFIX, body).await?;
        self.store
            .put_media(
                &stored.hash,
                &MediaMeta {
                    mime_type: content_type.clone(),
                    size_bytes: size,
                    location: stored.location,
                },
            )
            .await?;
        Ok(Media {
            url: format!(
                "{}/v1/chat/media/{}",
                self.public_url.trim_end_matches('/'),
                stored.hash
            ),
            mime_type: content_type,
            size_bytes: size,
            file_name,
        })
    }

    /// The content hash in an attachment URL this ingress returned
    /// (`<public_url>/v1/chat/media/<sha256>`), if it is one.
    pub fn media_hash<'a>(&self, url: &'a str) -> Option<&'a str> {
        let prefix = format!("{}/v1/chat/media/", self.public_url.trim_end_matches('/'));
        let hash = url.strip_prefix(&prefix)?;
        (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hash)
    }

    /// An attachment by hash: its content type and bytes.
    pub async fn download_media(
        &self,
        hash: &str,
    ) -> Result<Option<(String, Bytes)>, MediaStoreError> {
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let Some(meta) = self.store.media(hash).await? else {
            return Ok(None);
        };
        Ok(self
            .blobs
            .get(&meta.location)
            .await?
            .map(|body| (meta.mime_type, body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        ["image/png", "image/jpeg", "text/plain", "application/pdf"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn accepts_matching_bodies() {
        assert_eq!(
            check_upload("image/png", b"\x89PNG\r\n\x1a\n....", &allowed(), 100),
            Ok(())
        );
        assert_eq!(
            check_upload("image/jpeg", &[0xFF, 0xD8, 0xFF, 0xE0], &allowed(), 100),
            Ok(())
        );
        assert_eq!(
            check_upload("text/plain", "안녕".as_bytes(), &allowed(), 100),
            Ok(())
        );
        assert_eq!(
            check_upload("application/pdf", b"%PDF-1.7", &allowed(), 100),
            Ok(())
        );
    }

    #[test]
    fn refuses_the_rest() {
        assert_eq!(
            check_upload("image/png", b"", &allowed(), 100),
            Err(MediaError::Empty)
        );
        assert!(matches!(
            check_upload("image/png", &[0; 101], &allowed(), 100),
            Err(MediaError::TooLarge {
                size: 101,
                max: 100
            })
        ));
        assert!(matches!(
            check_upload("application/x-msdownload", b"MZ", &allowed(), 100),
            Err(MediaError::TypeNotAllowed(..))
        ));
        assert_eq!(
            check_upload("image/png", b"GIF89a", &allowed(), 100),
            Err(MediaError::Mismatch("image/png".into()))
        );
        assert!(check_upload("text/plain", &[0xFF, 0xFE], &allowed(), 100).is_err());
    }

    #[test]
    fn essence_drops_parameters() {
        assert_eq!(essence("Text/Plain; charset=utf-8"), "text/plain");
        assert_eq!(essence("image/png"), "image/png");
    }
}
