//! Chat's tables in the store. The store is the truth for messages, members and positions;
//! Redis only holds who is connected where.
//!
//! Every table is a [`KvStore`] namespace, which on ScyllaDB is one partition clustered by
//! key — the partitioning of the seed's Cassandra tables (messages partitioned by conversation,
//! clustered by sequence number):
//!
//! | namespace | key → value | partition (ScyllaDB) |
//! |---|---|---|
//! | `<p>.conv:<conv>` | `meta` → [`ConversationMeta`], `state` → [`StoredState`], `members` → user → role (JSON) | one conversation |
//! | `<p>.members:<conv>` | user → role name | index of the members, for one-read membership checks |
//! | `<p>.positions:<conv>` | user → [`Positions`] | delivered/read positions |
//! | `<p>.messages:<conv>` | seq (20 digits) → [`StoredMessage`] | one conversation's history |
//! | `<p>.msgkeys:<conv>` | `<sender>:<client_msg_id>` → seq | idempotency keys |
//! | `<p>.convs:<user>` | conversation → empty | one user's conversations |
//! | `<s>.inbox:<user>` | conversation → first missed seq | offline inbox |
//! | `<s>.media` | content hash → [`MediaMeta`] | uploaded attachments |
//!
//! `<p>` is the views' prefix, `<s>` the state's ([`ChatStore::with_state_prefix`]; the same
//! unless a rebuild moved the views): inboxes (pending deliveries) and media (uploads) cannot
//! be rebuilt from topics.
//!
//! Sequence numbers are claimed by inserting the message row with `put_if_absent`, so two
//! writers (a retried record beside the main lane, an old owner during a rebalance) can never
//! give two messages one number, and because rows are claimed in order there are no gaps. The
//! conversation's `state` may lag behind the rows (a crash between the writes, or two writers
//! racing); appends and [`ChatStore::last_seq`] probe forward from it, so it is a hint.
//!
//! The members are one value (`members` in the conversation's namespace), written in one put,
//! so a failure half-way through a change never leaves two owners; the per-user rows are an
//! index rebuilt from it on every change.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sixfold_store::json;
use sixfold_store::{KvStore, MAX_LIST_LIMIT, Store};

use crate::conversation::{ConversationKind, Membership, Role};
use crate::protocol::{ContentType, Media, MessageFrame};
use crate::sequence::{ConversationState, MemberState, message_id, message_key};

/// Why a store read or write failed.
pub use sixfold_store::json::ViewError as StorageError;

/// What a conversation is, written once when it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationMeta {
    /// `direct` or `group`.
    pub kind: String,
    /// The group's display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// When, ms since the epoch.
    pub created_at_ms: i64,
}

impl ConversationMeta {
    /// The conversation's kind.
    pub fn kind(&self) -> ConversationKind {
        if self.kind == "group" {
            ConversationKind::Group
        } else {
            ConversationKind::Direct
        }
    }
}

/// [`ConversationState`] as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredState {
    /// Newest sequence number.
    pub last_seq: u64,
    /// When the newest message was sent.
    pub last_message_at_ms: i64,
    /// Its preview.
    pub last_preview: String,
    /// Its sender.
    pub last_sender_id: String,
}

impl From<StoredState> for ConversationState {
    fn from(s: StoredState) -> Self {
        Self {
            last_seq: s.last_seq,
            last_message_at_ms: s.last_message_at_ms,
            last_preview: s.last_preview,
            last_sender_id: s.last_sender_id,
        }
    }
}

impl From<&ConversationState> for StoredState {
    fn from(s: &ConversationState) -> Self {
        Self {
            last_seq: s.last_seq,
            last_message_at_ms: s.last_message_at_ms,
            last_preview: s.last_preview.clone(),
            last_sender_id: s.last_sender_id.clone(),
        }
    }
}

/// A member's positions as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Positions {
    /// Delivered up to this sequence number.
    pub delivered_up_to: u64,
    /// Read up to this sequence number.
    pub read_up_to: u64,
}

impl From<Positions> for MemberState {
    fn from(p: Positions) -> Self {
        Self {
            delivered_up_to: p.delivered_up_to,
            read_up_to: p.read_up_to,
        }
    }
}

impl From<MemberState> for Positions {
    fn from(m: MemberState) -> Self {
        Self {
            delivered_up_to: m.delivered_up_to,
            read_up_to: m.read_up_to,
        }
    }
}

/// A persisted message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Sequence number in the conversation.
    pub seq: u64,
    /// Sender.
    pub sender_id: String,
    /// The sender's id for it (idempotency).
    pub client_msg_id: String,
    /// When it was accepted, ms since the epoch.
    pub sent_at_ms: i64,
    /// Text or caption.
    pub content: String,
    /// Kind.
    pub content_type: ContentType,
    /// Attachment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Media>,
}

impl StoredMessage {
    /// The `message` frame of this message in `conversation_id`.
    pub fn frame(&self, conversation_id: &str) -> MessageFrame {
        MessageFrame {
            conversation_id: conversation_id.to_owned(),
            message_id: message_id(conversation_id, self.seq),
            seq: self.seq,
            sender_id: self.sender_id.clone(),
            sent_at: self.sent_at_ms,
            content: self.content.clone(),
            content_type: self.content_type,
            media: self.media.clone(),
        }
    }
}

/// An uploaded attachment's description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaMeta {
    /// Content type it was uploaded with (and checked against).
    pub mime_type: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Where the blob is in the content store.
    pub location: String,
}

/// One entry of a user's conversation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// The conversation.
    pub conversation_id: String,
    /// What it is.
    pub meta: ConversationMeta,
    /// Its newest message.
    pub state: StoredState,
    /// The user's positions in it.
    pub positions: Positions,
}

/// The outcome of appending a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The message as stored (for a redelivery, the one stored the first time).
    pub message: StoredMessage,
    /// False when the message was already stored (a redelivered or resent event).
    pub new: bool,
}

/// Chat's tables.
#[derive(Clone)]
pub struct ChatStore {
    store: Arc<dyn Store>,
    prefix: String,
    /// Prefix of the inboxes and media (state, not views).
    state_prefix: String,
}

impl ChatStore {
    /// Tables under the namespace prefix `prefix`.
    pub fn new(store: Arc<dyn Store>, prefix: &str) -> Self {
        Self {
            store,
            prefix: prefix.to_owned(),
            state_prefix: prefix.to_owned(),
        }
    }

    /// The same tables with the inboxes and media under `prefix` (they are state, not views,
    /// and stay where they are when a rebuild moves the views).
    pub fn with_state_prefix(mut self, prefix: &str) -> Self {
        self.state_prefix = prefix.to_owned();
        self
    }

    fn state_ns(&self, table: &str, id: &str) -> String {
        format!("{}.{table}:{id}", self.state_prefix)
    }

    fn kv(&self) -> &dyn KvStore {
        self.store.kv()
    }

    fn ns(&self, table: &str, id: &str) -> String {
        format!("{}.{table}:{id}", self.prefix)
    }

    /// The conversation's description, if it exists.
    pub async fn meta(&self, conv: &str) -> Result<Option<ConversationMeta>, StorageError> {
        json::get(self.kv(), &self.ns("conv", conv), "meta").await
    }

    /// Writes the description unless one exists; true if this call created it.
    pub async fn create(&self, conv: &str, meta: &ConversationMeta) -> Result<bool, StorageError> {
        let value = json::encode(meta)?;
        Ok(self
            .kv()
            .put_if_absent(&self.ns("conv", conv), "meta", value)
            .await?)
    }

    /// The conversation's newest-message state (default before the first message).
    pub async fn state(&self, conv: &str) -> Result<StoredState, StorageError> {
        Ok(json::get(self.kv(), &self.ns("conv", conv), "state")
            .await?
            .unwrap_or_default())
    }

    async fn put_state(&self, conv: &str, state: &StoredState) -> Result<(), StorageError> {
        self.kv()
            .put(&self.ns("conv", conv), "state", json::encode(state)?)
            .await?;
        Ok(())
    }

    /// The members and roles, checked ([`Membership::restore`]); `None` if the conversation
    /// does not exist or its members are not written yet.
    pub async fn membership(
        &self,
        conv: &str,
        max_group: usize,
    ) -> Result<Option<Membership>, StorageError> {
        let Some(meta) = self.meta(conv).await? else {
            return Ok(None);
        };
        let ns = self.ns("conv", conv);
        let Some(members) =
            json::get::<BTreeMap<String, String>>(self.kv(), &ns, "members").await?
        else {
            return Ok(None);
        };
        let members = members
            .into_iter()
            .map(|(user, role)| {
                Role::from_name(&role)
                    .map(|role| (user, role))
                    .ok_or_else(|| StorageError::Corrupt(format!("{ns}: role {role:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Membership::restore(meta.kind(), members, max_group)
            .map(Some)
            .map_err(|e| StorageError::Corrupt(format!("{ns}: {e}")))
    }

    /// Whether `user` belongs to the conversation (one read of the member index).
    pub async fn is_member(&self, conv: &str, user: &str) -> Result<bool, StorageError> {
        Ok(self
            .kv()
            .get(&self.ns("members", conv), user)
            .await?
            .is_some())
    }

    /// Stores `membership` as the conversation's members (one put), then brings the member
    /// index and the users' conversation lists in line with it, and with `clear_inboxes` takes
    /// the conversation out of the inboxes of those removed (not in a replay: the inboxes are
    /// today's pending deliveries, not the past's). Repeating it after a failure half-way
    /// finishes the job.
    pub async fn put_membership(
        &self,
        conv: &str,
        membership: &Membership,
        clear_inboxes: bool,
    ) -> Result<(), StorageError> {
        let members: BTreeMap<&str, &str> = membership
            .members()
            .map(|(user, role)| (user, role.as_str()))
            .collect();
        self.kv()
            .put(&self.ns("conv", conv), "members", json::encode(&members)?)
            .await?;
        let index = self.ns("members", conv);
        for (user, role) in &members {
            self.kv()
                .put(&index, user, role.as_bytes().to_vec())
                .await?;
            self.kv()
                .put(&self.ns("convs", user), conv, Vec::new())
                .await?;
        }
        let indexed = self.kv().list(&index, None, MAX_LIST_LIMIT).await?;
        for (user, _) in indexed {
            if !membership.contains(&user) {
                self.kv().delete(&index, &user).await?;
                self.kv().delete(&self.ns("convs", &user), conv).await?;
                if clear_inboxes {
                    self.kv()
                        .delete(&self.state_ns("inbox", &user), conv)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Stores a message under the next free sequence number, unless the sender's
    /// `client_msg_id` is already stored in this conversation, and moves the conversation's
    /// state to it. `message.seq` is ignored.
    pub async fn append(
        &self,
        conv: &str,
        message: StoredMessage,
    ) -> Result<Appended, StorageError> {
        let keys = self.ns("msgkeys", conv);
        let key = message_key(&message.sender_id, &message.client_msg_id);
        if let Some(seq) = self.kv().get(&keys, &key).await? {
            let seq = parse_seq(&seq).ok_or_else(|| StorageError::Corrupt(keys.clone()))?;
            let stored = self
                .message(conv, seq)
                .await?
                .ok_or_else(|| StorageError::Corrupt(format!("{keys}: {key} → missing {seq}")))?;
            let state = self.state(conv).await?;
            self.advance_state(conv, state, &stored).await?;
            return Ok(Appended {
                message: stored,
                new: false,
            });
        }
        let rows = self.ns("messages", conv);
        let state = self.state(conv).await?;
        let mut seq = state.last_seq + 1;
        let (message, new) = loop {
            let candidate = StoredMessage {
                seq,
                ..message.clone()
            };
            if self
                .kv()
                .put_if_absent(&rows, &seq_key(seq), json::encode(&candidate)?)
                .await?
            {
                break (candidate, true);
            }
            // Taken: by this very message (stored before a crash, its key not yet), or by
            // another one while the state lagged.
            let taken = self
                .message(conv, seq)
                .await?
                .ok_or_else(|| StorageError::Corrupt(format!("{rows}: {seq} vanished")))?;
            if taken.sender_id == message.sender_id && taken.client_msg_id == message.client_msg_id
            {
                break (taken, false);
            }
            // Another message whose key may be missing (its writer failed between the row and
            // the key and will be retried): record it, so that retry finds its number instead
            // of claiming a second one after this append moves the state past it.
            let taken_key = message_key(&taken.sender_id, &taken.client_msg_id);
            self.kv()
                .put_if_absent(&keys, &taken_key, seq.to_string().into_bytes())
                .await?;
            seq += 1;
        };
        self.kv()
            .put(&keys, &key, message.seq.to_string().into_bytes())
            .await?;
        self.advance_state(conv, state, &message).await?;
        Ok(Appended { message, new })
    }

    /// Moves the conversation's state to `message` if it is newer than the state as read
    /// before and as stored now (another writer may have moved it meanwhile).
    async fn advance_state(
        &self,
        conv: &str,
        state: StoredState,
        message: &StoredMessage,
    ) -> Result<(), StorageError> {
        if message.seq <= state.last_seq {
            return Ok(());
        }
        let mut state: ConversationState = self.state(conv).await?.into();
        if message.seq > state.last_seq {
            // Rows are claimed in order, so the state may jump past rows it never recorded.
            state.last_seq = message.seq - 1;
            state
                .record_message(
                    message.seq,
                    &message.sender_id,
                    message.sent_at_ms,
                    &message.content,
                    message.content_type,
                )
                .map_err(|e| StorageError::Corrupt(e.to_string()))?;
            self.put_state(conv, &(&state).into()).await?;
        }
        Ok(())
    }

    /// The conversation's newest sequence number: the stored state, probed forward over rows
    /// a lagging state has not recorded yet.
    pub async fn last_seq(&self, conv: &str) -> Result<u64, StorageError> {
        let mut last = self.state(conv).await?.last_seq;
        loop {
            let newer = self.messages_after(conv, last, MAX_LIST_LIMIT).await?;
            match newer.last() {
                Some(message) => last = message.seq,
                None => return Ok(last),
            }
        }
    }

    /// Message `seq`, if stored.
    pub async fn message(
        &self,
        conv: &str,
        seq: u64,
    ) -> Result<Option<StoredMessage>, StorageError> {
        json::get(self.kv(), &self.ns("messages", conv), &seq_key(seq)).await
    }

    /// Up to `limit` messages with sequence numbers after `after_seq`, oldest first.
    pub async fn messages_after(
        &self,
        conv: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StorageError> {
        let ns = self.ns("messages", conv);
        let after = seq_key(after_seq);
        let rows = self
            .kv()
            .list(&ns, Some(&after), limit.min(MAX_LIST_LIMIT))
            .await?;
        rows.iter().map(|(_, v)| json::decode(&ns, v)).collect()
    }

    /// Up to `limit` messages before `before_seq` (exclusive), oldest first. Sequence numbers
    /// have no gaps, so the page starts at `before_seq - limit`.
    pub async fn messages_before(
        &self,
        conv: &str,
        before_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StorageError> {
        let limit = limit.min(MAX_LIST_LIMIT) as u64;
        let first = before_seq.saturating_sub(limit).max(1);
        if before_seq <= first {
            return Ok(Vec::new());
        }
        let page = self
            .messages_after(conv, first - 1, (before_seq - first) as usize)
            .await?;
        Ok(page.into_iter().filter(|m| m.seq < before_seq).collect())
    }

    /// A member's positions.
    pub async fn positions(&self, conv: &str, user: &str) -> Result<Positions, StorageError> {
        Ok(json::get(self.kv(), &self.ns("positions", conv), user)
            .await?
            .unwrap_or_default())
    }

    /// Moves a member's stored positions forward to `positions`, merged with what is stored
    /// now (each position the larger of the two), so a writer that read an older value never
    /// moves one back.
    pub async fn advance_positions(
        &self,
        conv: &str,
        user: &str,
        positions: Positions,
    ) -> Result<(), StorageError> {
        let stored = self.positions(conv, user).await?;
        let merged = Positions {
            delivered_up_to: stored.delivered_up_to.max(positions.delivered_up_to),
            read_up_to: stored.read_up_to.max(positions.read_up_to),
        };
        if merged != stored {
            self.kv()
                .put(&self.ns("positions", conv), user, json::encode(&merged)?)
                .await?;
        }
        Ok(())
    }

    /// The user's conversations, newest message first, up to `limit` (at most 1,000).
    pub async fn conversations_of(
        &self,
        user: &str,
        limit: usize,
    ) -> Result<Vec<ListEntry>, StorageError> {
        let ids = self
            .kv()
            .list(&self.ns("convs", user), None, MAX_LIST_LIMIT)
            .await?;
        let mut entries = Vec::with_capacity(ids.len());
        for (conv, _) in ids {
            let Some(meta) = self.meta(&conv).await? else {
                continue;
            };
            entries.push(ListEntry {
                state: self.state(&conv).await?,
                positions: self.positions(&conv, user).await?,
                conversation_id: conv,
                meta,
            });
        }
        entries.sort_by(|a, b| {
            (
                b.state.last_message_at_ms,
                b.meta.created_at_ms,
                &b.conversation_id,
            )
                .cmp(&(
                    a.state.last_message_at_ms,
                    a.meta.created_at_ms,
                    &a.conversation_id,
                ))
        });
        entries.truncate(limit);
        Ok(entries)
    }

    /// Ids of the user's conversations (up to 1,000).
    pub async fn conversation_ids_of(&self, user: &str) -> Result<Vec<String>, StorageError> {
        let rows = self
            .kv()
            .list(&self.ns("convs", user), None, MAX_LIST_LIMIT)
            .await?;
        Ok(rows.into_iter().map(|(conv, _)| conv).collect())
    }

    /// Notes that `user` missed message `seq` of `conv` (keeps the first missed one).
    pub async fn inbox_add(&self, user: &str, conv: &str, seq: u64) -> Result<(), StorageError> {
        self.kv()
            .put_if_absent(
                &self.state_ns("inbox", user),
                conv,
                seq.to_string().into_bytes(),
            )
            .await?;
        Ok(())
    }

    /// The user's inbox: conversations with missed messages and the first missed seq.
    pub async fn inbox(&self, user: &str) -> Result<Vec<(String, u64)>, StorageError> {
        let ns = self.state_ns("inbox", user);
        let rows = self.kv().list(&ns, None, MAX_LIST_LIMIT).await?;
        rows.into_iter()
            .map(|(conv, seq)| {
                parse_seq(&seq)
                    .map(|seq| (conv, seq))
                    .ok_or_else(|| StorageError::Corrupt(ns.clone()))
            })
            .collect()
    }

    /// Clears one conversation from the user's inbox.
    pub async fn inbox_clear(&self, user: &str, conv: &str) -> Result<(), StorageError> {
        self.kv()
            .delete(&self.state_ns("inbox", user), conv)
            .await?;
        Ok(())
    }

    /// Records an uploaded attachment.
    pub async fn put_media(&self, hash: &str, meta: &MediaMeta) -> Result<(), StorageError> {
        self.kv()
            .put(
                &format!("{}.media", self.state_prefix),
                hash,
                json::encode(meta)?,
            )
            .await?;
        Ok(())
    }

    /// An uploaded attachment's description.
    pub async fn media(&self, hash: &str) -> Result<Option<MediaMeta>, StorageError> {
        json::get(self.kv(), &format!("{}.media", self.state_prefix), hash).await
    }
}

/// The row key of sequence number `seq`: 20 digits, so keys sort by number.
fn seq_key(seq: u64) -> String {
    format!("{seq:020}")
}

fn parse_seq(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}
