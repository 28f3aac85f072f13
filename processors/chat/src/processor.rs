//! The `chat` processor: persists messages in order, routes them, applies receipts and
//! membership changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use sixfold_runtime::failure::now_ms;
use sixfold_runtime::{Classify, Processor, Record};

use crate::conversation::{
    ConversationError, ConversationKind, FanoutPlan, Membership, Role, direct_conversation_id,
    fanout_plan, is_valid_conversation_id,
};
use crate::directory::Delivery;
use crate::events::{
    AvroReceiptKind, ChatFanout, ChatMembership, ChatReceipt, ChatSent, MembershipAction,
    new_event_id,
};
use crate::protocol::{
    AckFrame, ContentType, MessageFrame, ReceiptKind, ReceiptNotice, SendFrame, ServerFrame,
    check_send,
};
use crate::sequence::{MemberState, message_id};
use crate::storage::{ConversationMeta, StorageError, StoredMessage};
use crate::user::is_valid_user_id;
use crate::{Chat, ProduceFailure};

/// Why a record could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The value is not a valid event of its topic.
    #[error("invalid event: {0}")]
    Invalid(String),
    /// A membership change the conversation's rules refuse.
    #[error("refused: {0}")]
    Refused(#[from] ConversationError),
    /// The record came from a topic this processor does not read.
    #[error("unexpected topic {0}")]
    UnknownTopic(String),
    /// The store failed, or holds a value that does not parse.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// An event could not be produced.
    #[error("produce: {0}")]
    Produce(#[from] ProduceFailure),
}

impl Classify for ChatError {
    fn is_transient(&self) -> bool {
        match self {
            ChatError::Invalid(_) | ChatError::Refused(_) | ChatError::UnknownTopic(_) => false,
            ChatError::Storage(e) => e.is_transient(),
            ChatError::Redis(_) => true,
            ChatError::Produce(e) => !e.permanent,
        }
    }

    fn class(&self) -> &'static str {
        match self {
            ChatError::Invalid(_) => "invalid_event",
            ChatError::Refused(_) => "refused",
            ChatError::UnknownTopic(_) => "unknown_topic",
            ChatError::Storage(StorageError::Corrupt(_)) => "corrupt_state",
            ChatError::Storage(e) if e.is_transient() => "store_unavailable",
            ChatError::Storage(_) => "store_rejected",
            ChatError::Redis(_) => "redis_unavailable",
            ChatError::Produce(e) if e.permanent => "produce_rejected",
            ChatError::Produce(_) => "broker_unavailable",
        }
    }
}

/// The processor.
pub struct ChatProcessor {
    chat: Arc<Chat>,
    /// Whether it delivers (acks, routing, fan-out items, the sender's read receipt), or only
    /// writes the views (a replay).
    deliver: bool,
}

impl ChatProcessor {
    /// The processor over chat's shared state.
    pub fn new(chat: Arc<Chat>) -> Self {
        Self {
            chat,
            deliver: true,
        }
    }

    /// A processor that only writes the views: messages, positions and membership are stored
    /// as the live processor stores them, and nothing is delivered or produced. For a replay,
    /// which must not push old messages to connected users or produce receipts that
    /// `chat.receipt` holds already.
    pub fn views_only(chat: Arc<Chat>) -> Self {
        Self {
            chat,
            deliver: false,
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(record: &Record) -> Result<T, ChatError> {
    record
        .decode()
        .map_err(|e| ChatError::Invalid(e.to_string()))
}

#[async_trait]
impl Processor for ChatProcessor {
    type Error = ChatError;

    async fn process(&self, record: &Record) -> Result<(), ChatError> {
        let c = &self.chat;
        let s = &c.settings;
        let deliver = self.deliver;
        if record.topic == s.sent_topic {
            c.apply_sent(&decode(record)?, deliver).await
        } else if record.topic == s.receipt_topic {
            c.apply_receipt(&decode(record)?, deliver).await
        } else if record.topic == s.fanout_topic {
            if !deliver {
                return Ok(());
            }
            c.apply_fanout(&decode(record)?).await
        } else if record.topic == s.membership_topic {
            c.apply_membership(&decode(record)?, deliver).await
        } else {
            Err(ChatError::UnknownTopic(record.topic.clone()))
        }
    }
}

fn check_user(field: &str, user: &str) -> Result<(), ChatError> {
    if is_valid_user_id(user) {
        Ok(())
    } else {
        Err(ChatError::Invalid(format!(
            "{field} must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'"
        )))
    }
}

fn check_conversation(id: &str) -> Result<(), ChatError> {
    if is_valid_conversation_id(id) {
        Ok(())
    } else {
        Err(ChatError::Invalid(format!(
            "invalid conversation id {id:?}"
        )))
    }
}

impl Chat {
    /// Stores a message; with `deliver`, acks, routes it and moves the sender's read position.
    async fn apply_sent(&self, event: &ChatSent, deliver: bool) -> Result<(), ChatError> {
        let conv = &event.conversation_id;
        let sender = &event.sender_id;
        check_user("sender_id", sender)?;
        let frame = SendFrame {
            client_msg_id: event.client_msg_id.clone(),
            conversation_id: conv.clone(),
            content: event.content.clone(),
            content_type: event.content_type.into(),
            media: event.media.as_ref().map(Into::into),
        };
        check_send(&frame).map_err(|e| ChatError::Invalid(e.to_string()))?;
        let membership = self.membership(conv).await?;
        if !membership.contains(sender) {
            return Err(ChatError::Invalid(format!(
                "{sender:?} is not a member of {conv}"
            )));
        }
        let appended = self
            .store
            .append(
                conv,
                StoredMessage {
                    seq: 0,
                    sender_id: sender.clone(),
                    client_msg_id: event.client_msg_id.clone(),
                    sent_at_ms: event.occurred_at,
                    content: frame.content,
                    content_type: frame.content_type,
                    media: frame.media,
                },
            )
            .await?;
        let message = appended.message;
        if appended.new {
            self.metrics
                .materialized
                .with_label_values(&["chat", "message"])
                .inc();
        }
        if !deliver {
            return Ok(());
        }
        // The ack first: the sender hears "durable" no later than any recipient sees it.
        if let Some(gateway) = &event.gateway_id {
            let ack = ServerFrame::Ack(AckFrame {
                client_msg_id: message.client_msg_id.clone(),
                conversation_id: conv.clone(),
                message_id: message_id(conv, message.seq),
                seq: message.seq,
                sent_at: message.sent_at_ms,
            });
            self.publish_to(gateway, vec![sender.clone()], &ack, None)
                .await?;
            self.count("ack", "gateway", 1);
        }
        let recipients: Vec<String> = membership
            .user_ids()
            .filter(|user| *user != sender.as_str())
            .map(str::to_owned)
            .collect();
        let frame = message.frame(conv);
        match fanout_plan(
            membership.len(),
            self.settings.direct_fanout_max,
            self.settings.fanout_batch,
        ) {
            FanoutPlan::Direct => self.deliver_message(&recipients, &frame).await?,
            FanoutPlan::Batched(_) => {
                for batch in recipients.chunks(self.settings.fanout_batch) {
                    let item = ChatFanout {
                        event_id: new_event_id(),
                        occurred_at: now_ms(),
                        conversation_id: conv.clone(),
                        message_id: frame.message_id.clone(),
                        seq: frame.seq as i64,
                        sender_id: frame.sender_id.clone(),
                        sent_at: frame.sent_at,
                        content: frame.content.clone(),
                        content_type: frame.content_type.into(),
                        media: frame.media.as_ref().map(Into::into),
                        recipient_ids: batch.to_vec(),
                    };
                    self.produce(
                        &self.settings.fanout_topic,
                        &self.schemas.fanout,
                        conv,
                        &item,
                    )
                    .await?;
                }
            }
        }
        // Posting marks what came before read for the sender, through chat.receipt so that
        // positions are only ever written by that topic's lane. Not awaited: the conversation's
        // next message need not wait for it, and a lost one only leaves the sender's own read
        // position behind until their next message or receipt.
        let receipt = ChatReceipt {
            event_id: new_event_id(),
            occurred_at: now_ms(),
            conversation_id: conv.clone(),
            user_id: sender.clone(),
            kind: AvroReceiptKind::Read,
            up_to_seq: message.seq as i64,
        };
        let (producer, codec) = (self.producer.clone(), self.codec.clone());
        let (topic, schema) = (
            self.settings.receipt_topic.clone(),
            self.schemas.receipt.clone(),
        );
        let key = conv.clone();
        tokio::spawn(async move {
            if let Err(error) = producer
                .send_event(&codec, &topic, &schema, &key, &receipt)
                .await
            {
                tracing::warn!(%error, "sender's read position not recorded");
            }
        });
        Ok(())
    }

    async fn apply_fanout(&self, event: &ChatFanout) -> Result<(), ChatError> {
        check_conversation(&event.conversation_id)?;
        check_user("sender_id", &event.sender_id)?;
        for user in &event.recipient_ids {
            check_user("recipient_ids", user)?;
        }
        let seq = u64::try_from(event.seq)
            .ok()
            .filter(|seq| *seq > 0)
            .ok_or_else(|| ChatError::Invalid(format!("invalid seq {}", event.seq)))?;
        let content_type: ContentType = event.content_type.into();
        let frame = MessageFrame {
            conversation_id: event.conversation_id.clone(),
            message_id: event.message_id.clone(),
            seq,
            sender_id: event.sender_id.clone(),
            sent_at: event.sent_at,
            content: event.content.clone(),
            content_type,
            media: event.media.as_ref().map(Into::into),
        };
        self.deliver_message(&event.recipient_ids, &frame).await
    }

    /// Moves a member's position; with `deliver`, tells the senders of the covered messages.
    async fn apply_receipt(&self, event: &ChatReceipt, deliver: bool) -> Result<(), ChatError> {
        let conv = &event.conversation_id;
        let user = &event.user_id;
        check_conversation(conv)?;
        check_user("user_id", user)?;
        let up_to = u64::try_from(event.up_to_seq)
            .map_err(|_| ChatError::Invalid(format!("invalid up_to_seq {}", event.up_to_seq)))?;
        if !self.store.is_member(conv, user).await? {
            return Err(ChatError::Invalid(format!(
                "{user:?} is not a member of {conv}"
            )));
        }
        let last_seq = self.store.last_seq(conv).await?;
        let before = self.store.positions(conv, user).await?;
        let mut state: MemberState = before.into();
        let kind: ReceiptKind = event.kind.into();
        if !state.apply_receipt(kind, up_to, last_seq) {
            return Ok(());
        }
        self.store
            .advance_positions(conv, user, state.into())
            .await?;
        if !deliver {
            return Ok(());
        }
        let old = match kind {
            ReceiptKind::Delivered => before.delivered_up_to,
            ReceiptKind::Read => before.read_up_to,
        };
        let new = match kind {
            ReceiptKind::Delivered => state.delivered_up_to,
            ReceiptKind::Read => state.read_up_to,
        };
        // Tell the senders of the newly covered messages (the newest 200 of them).
        let first = old.max(new.saturating_sub(200)) + 1;
        let covered = self
            .store
            .messages_after(conv, first - 1, (new + 1 - first) as usize)
            .await?;
        let mut senders: Vec<String> = covered
            .into_iter()
            .map(|m| m.sender_id)
            .filter(|sender| sender != user)
            .collect();
        senders.sort();
        senders.dedup();
        if senders.is_empty() {
            return Ok(());
        }
        let notice = ServerFrame::Receipt(ReceiptNotice {
            conversation_id: conv.clone(),
            user_id: user.clone(),
            kind,
            up_to_seq: new,
        });
        self.deliver_live("receipt", &senders, &notice).await
    }

    /// Applies a membership change; with `deliver`, removed members' inbox entries go too.
    async fn apply_membership(
        &self,
        event: &ChatMembership,
        deliver: bool,
    ) -> Result<(), ChatError> {
        let conv = &event.conversation_id;
        let kind = ConversationKind::of(conv)
            .ok_or_else(|| ChatError::Invalid(format!("invalid conversation id {conv:?}")))?;
        check_user("actor_id", &event.actor_id)?;
        for user in &event.user_ids {
            check_user("user_ids", user)?;
        }
        let actor = event.actor_id.as_str();
        let max = self.settings.max_group_members;
        if event.action == MembershipAction::Created {
            let membership = created_membership(kind, conv, event, max)?;
            let meta = ConversationMeta {
                kind: match kind {
                    ConversationKind::Direct => "direct".into(),
                    ConversationKind::Group => "group".into(),
                },
                name: event.name.clone(),
                created_by: actor.to_owned(),
                created_at_ms: event.occurred_at,
            };
            self.store.create(conv, &meta).await?;
            // Members are (re)written unless the conversation already has some (a redelivery
            // after a crash between the two writes finds none).
            if self
                .store
                .membership(conv, max)
                .await
                .ok()
                .flatten()
                .is_none()
            {
                self.store
                    .put_membership(conv, &membership, deliver)
                    .await?;
            }
            return Ok(());
        }
        let mut membership = self.membership(conv).await?;
        let target = event
            .user_ids
            .first()
            .ok_or_else(|| ChatError::Invalid("user_ids is empty".into()))?;
        match event.action {
            MembershipAction::Added => {
                for user in &event.user_ids {
                    match membership.add(actor, user) {
                        Ok(()) | Err(ConversationError::AlreadyMember(_)) => {}
                        Err(error) => return Err(error.into()),
                    }
                }
            }
            MembershipAction::Removed => {
                for user in &event.user_ids {
                    match membership.remove(actor, user) {
                        Ok(()) | Err(ConversationError::NotMember(_)) => {}
                        Err(error) => return Err(error.into()),
                    }
                }
            }
            MembershipAction::RoleChanged => {
                let role = event
                    .role
                    .as_deref()
                    .and_then(Role::from_name)
                    .ok_or_else(|| ChatError::Invalid("role must be admin or member".into()))?;
                membership.set_role(actor, target, role)?;
            }
            MembershipAction::Transferred => {
                // Redelivered: the target already owns it.
                if membership.role(target) != Some(Role::Owner) {
                    membership.transfer(actor, target)?;
                }
            }
            MembershipAction::Created | MembershipAction::Unknown => {
                return Err(ChatError::Invalid("unknown membership action".into()));
            }
        }
        self.store
            .put_membership(conv, &membership, deliver)
            .await?;
        Ok(())
    }

    /// The stored members of `conv`; an unknown conversation is an invalid event.
    async fn membership(&self, conv: &str) -> Result<Membership, ChatError> {
        self.store
            .membership(conv, self.settings.max_group_members)
            .await?
            .ok_or_else(|| ChatError::Invalid(format!("unknown conversation {conv}")))
    }

    /// Routes a message to `recipients`: through the gateways of those with a live route,
    /// into the inbox of the others.
    async fn deliver_message(
        &self,
        recipients: &[String],
        frame: &MessageFrame,
    ) -> Result<(), ChatError> {
        let text = ServerFrame::Message(frame.clone()).to_text();
        let missed = (frame.conversation_id.clone(), frame.seq);
        self.route("message", recipients, text, Some(missed)).await
    }

    /// Sends a frame to those of `users` who are connected (receipts, presence: nothing is
    /// kept for the others).
    pub(crate) async fn deliver_live(
        &self,
        kind: &str,
        users: &[String],
        frame: &ServerFrame,
    ) -> Result<(), ChatError> {
        self.route(kind, users, frame.to_text(), None).await
    }

    /// Publishes `text` once per gateway holding any of `users`; with `missed` (a message's
    /// conversation and sequence number), users with no live route get an inbox entry.
    async fn route(
        &self,
        kind: &str,
        users: &[String],
        text: String,
        missed: Option<(String, u64)>,
    ) -> Result<(), ChatError> {
        let mut routes = self.directory.routes(users, now_ms()).await?;
        let mut offline = Vec::new();
        if let Some((conv, seq)) = &missed {
            for (user, gateways) in users.iter().zip(&routes) {
                if gateways.is_empty() {
                    self.store.inbox_add(user, conv, *seq).await?;
                    offline.push(user.clone());
                }
            }
        }
        if !offline.is_empty() {
            // A user who connected between the route read and the inbox write may have drained
            // the inbox already: look again, and send to the routes that appeared (clients drop
            // a seq they have).
            let again = self.directory.routes(&offline, now_ms()).await?;
            let mut again = offline.iter().zip(again).collect::<BTreeMap<_, _>>();
            for (user, gateways) in users.iter().zip(routes.iter_mut()) {
                if let Some(found) = again.remove(user) {
                    *gateways = found;
                }
            }
        }
        let mut by_gateway: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (user, gateways) in users.iter().zip(&routes) {
            for gateway in gateways {
                by_gateway.entry(gateway).or_default().push(user.clone());
            }
        }
        let online = by_gateway.values().map(Vec::len).sum::<usize>();
        let items: Vec<(String, Delivery)> = by_gateway
            .into_iter()
            .map(|(gateway, users)| {
                let delivery = Delivery {
                    users,
                    frame: text.clone(),
                    missed: missed.clone(),
                };
                (gateway.to_owned(), delivery)
            })
            .collect();
        self.directory.publish(&items).await?;
        self.count(kind, "gateway", online as u64);
        self.count(kind, "inbox", offline.len() as u64);
        Ok(())
    }

    async fn publish_to(
        &self,
        gateway: &str,
        users: Vec<String>,
        frame: &ServerFrame,
        missed: Option<(String, u64)>,
    ) -> Result<(), ChatError> {
        let delivery = Delivery {
            users,
            frame: frame.to_text(),
            missed,
        };
        self.directory
            .publish(&[(gateway.to_owned(), delivery)])
            .await?;
        Ok(())
    }

    pub(crate) fn count(&self, kind: &str, route: &str, n: u64) {
        if n > 0 {
            self.counters
                .deliveries
                .with_label_values(&[kind, route])
                .inc_by(n);
        }
    }
}

/// The membership a CREATED event describes, checked against the conversation id.
fn created_membership(
    kind: ConversationKind,
    conv: &str,
    event: &ChatMembership,
    max: usize,
) -> Result<Membership, ChatError> {
    let actor = event.actor_id.as_str();
    match kind {
        ConversationKind::Direct => {
            let [other] = event.user_ids.as_slice() else {
                return Err(ChatError::Invalid(
                    "a 1:1 conversation has exactly one other member".into(),
                ));
            };
            if direct_conversation_id(actor, other)? != conv {
                return Err(ChatError::Invalid(format!(
                    "{conv} is not the 1:1 conversation of {actor:?} and {other:?}"
                )));
            }
            Ok(Membership::new_direct(actor, other)?)
        }
        ConversationKind::Group => Ok(Membership::new_group(actor, &event.user_ids, max)?),
    }
}
