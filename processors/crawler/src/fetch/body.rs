//! Reading a response body without ever holding more than the limit.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::Response;

/// How reading a body ended.
#[derive(Debug)]
pub(crate) enum BodyRead {
    /// The whole body, or its first `limit` bytes when cutting was asked for.
    Complete(Bytes),
    /// More than `limit` bytes, and cutting was not asked for. The rest was not read.
    TooLarge,
}

/// Reads the (decoded) body of `response`, at most `limit` bytes of it. With `truncate`, a
/// longer body is cut at `limit`; without, it is [`BodyRead::TooLarge`]. Stops reading as soon
/// as the limit is passed: dropping the response closes the connection instead of
/// downloading the rest.
pub(crate) async fn read_body(
    response: Response,
    limit: usize,
    truncate: bool,
) -> Result<BodyRead, reqwest::Error> {
    // A declared length over the limit fails before any byte is read. Compressed responses
    // declare no decoded length, so the loop below still has to count.
    let declared = response
        .content_length()
        .and_then(|len| usize::try_from(len).ok());
    if !truncate && declared.is_some_and(|len| len > limit) {
        return Ok(BodyRead::TooLarge);
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        let room = limit - body.len();
        if chunk.len() > room {
            if !truncate {
                return Ok(BodyRead::TooLarge);
            }
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(BodyRead::Complete(body.freeze()))
}
