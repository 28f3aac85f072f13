//! Per-conversation ordering and read state, without I/O: the sequence numbers the `chat.sent`
//! processor assigns, the conversation-list entry it keeps, each member's delivered and read
//! positions, and the ids and idempotency keys of messages.
//!
//! Sequence numbers start at 1 and have no gaps, so a position `n` covers messages `1..=n`
//! and 0 means "none".

use crate::protocol::{ContentType, ReceiptKind};

/// Most characters of a conversation-list preview.
pub const MAX_PREVIEW_CHARS: usize = 80;
/// Digits of the sequence number in a message id: enough for any `u64`, so ids sort by
/// sequence number as strings.
pub const MESSAGE_ID_SEQ_DIGITS: usize = 20;

/// Why a message cannot be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    /// The sequence number skips ahead: recording it would leave a gap.
    #[error("sequence gap: expected {expected}, got {got}")]
    Gap {
        /// The next sequence number.
        expected: u64,
        /// The one offered.
        got: u64,
    },
}

/// A conversation's position: its last sequence number and what its list entry shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationState {
    /// Sequence number of the newest message; 0 before the first.
    pub last_seq: u64,
    /// When the newest message was sent, ms since the Unix epoch (0 before the first).
    pub last_message_at_ms: i64,
    /// Preview of the newest message ([`preview`]).
    pub last_preview: String,
    /// Sender of the newest message (empty before the first).
    pub last_sender_id: String,
}

impl ConversationState {
    /// The sequence number the next message gets.
    pub fn next_seq(&self) -> u64 {
        self.last_seq.saturating_add(1)
    }

    /// Records message `seq` as the newest. Returns `Ok(false)` and changes nothing for a
    /// sequence number already recorded (a replay), `Ok(true)` for [`Self::next_seq`], and an
    /// error for one further ahead.
    pub fn record_message(
        &mut self,
        seq: u64,
        sender_id: &str,
        sent_at_ms: i64,
        content: &str,
        content_type: ContentType,
    ) -> Result<bool, SequenceError> {
        if seq <= self.last_seq {
            return Ok(false);
        }
        if seq != self.next_seq() {
            return Err(SequenceError::Gap {
                expected: self.next_seq(),
                got: seq,
            });
        }
        self.last_seq = seq;
        self.last_message_at_ms = sent_at_ms;
        self.last_preview = preview(content, content_type);
        sender_id.clone_into(&mut self.last_sender_id);
        Ok(true)
    }
}

/// One member's positions in a conversation.
///
/// Invariant kept by [`MemberState::apply_receipt`]: `read_up_to <= delivered_up_to`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct MemberState {
    /// Every message up to this sequence number reached the member's device.
    pub delivered_up_to: u64,
    /// Every message up to this sequence number was seen by the member.
    pub read_up_to: u64,
}

impl MemberState {
    /// Messages the member has not read, given the conversation's last sequence number.
    ///
    /// The processor marks a sender's own message read for the sender (a read receipt at its
    /// sequence number), so unread counts only others' messages; like in the common chat
    /// apps, posting also marks what came before as read.
    pub fn unread(&self, last_seq: u64) -> u64 {
        last_seq.saturating_sub(self.read_up_to)
    }

    /// Moves a position forward to `up_to_seq`, capped at `last_seq` (no receipt for a message
    /// that does not exist yet). Positions never move back, so receipts may arrive in any
    /// order and repeat; a read receipt also moves the delivered position. Returns whether
    /// anything changed.
    pub fn apply_receipt(&mut self, kind: ReceiptKind, up_to_seq: u64, last_seq: u64) -> bool {
        let before = *self;
        let up_to = up_to_seq.min(last_seq);
        if kind == ReceiptKind::Read {
            self.read_up_to = self.read_up_to.max(up_to);
        }
        self.delivered_up_to = self.delivered_up_to.max(up_to).max(self.read_up_to);
        *self != before
    }
}

/// The conversation-list preview of a message: the first 80 characters of text (control
/// characters such as line breaks shown as spaces, so the preview stays on one line), or
/// `[image]` / `[file]` for media.
pub fn preview(content: &str, content_type: ContentType) -> String {
    match content_type {
        ContentType::Text => content
            .chars()
            .take(MAX_PREVIEW_CHARS)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
        ContentType::Image => "[image]".to_owned(),
        ContentType::File => "[file]".to_owned(),
    }
}

/// The idempotency key of a sent message: a redelivered or resent `chat.sent` with the same
/// sender and `client_msg_id` maps to the message already stored, with its sequence number.
///
/// `<sender_id>:<client_msg_id>`; user ids contain no `:`, so the key is unambiguous even when
/// the client's id does. The key is unique per sender, not globally: store it per
/// conversation (the processor owns a conversation through its partition), so that a client
/// reusing an id in another conversation is not mistaken for a resend.
pub fn message_key(sender_id: &str, client_msg_id: &str) -> String {
    format!("{sender_id}:{client_msg_id}")
}

/// The id of message `seq` of a conversation: `<conversation_id>:<seq as 20 digits>`, so
/// that ids sort by sequence number within a conversation (also as plain strings, e.g. in a
/// `before=` cursor).
pub fn message_id(conversation_id: &str, seq: u64) -> String {
    format!(
        "{conversation_id}:{seq:0width$}",
        width = MESSAGE_ID_SEQ_DIGITS
    )
}

/// Splits a message id written by [`message_id`] into conversation id and sequence number.
pub fn parse_message_id(message_id: &str) -> Option<(&str, u64)> {
    let (conversation_id, seq) = message_id.rsplit_once(':')?;
    if conversation_id.is_empty()
        || seq.len() != MESSAGE_ID_SEQ_DIGITS
        || !seq.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((conversation_id, seq.parse().ok()?))
}

#[cfg(test)]
mod tests;
