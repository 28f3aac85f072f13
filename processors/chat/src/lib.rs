//! Chat (issue 6): WhatsApp/Slack-style messaging over WebSocket gateways, with ordered
//! persistence per conversation, delivered/read receipts, presence and offline sync.
//!
//! # Status
//! Only the pure building blocks exist so far; the gateway (WebSocket, Redis registry and
//! pub/sub), the `chat.sent` / `chat.receipt` / `chat.fanout` processor, the HTTP routes
//! (`/v1/chat/tokens`, `/v1/chat/conversations`, `/v1/chat/media`) and the store tables are not
//! written yet. When they are, this comment grows the processor's sections (topics, keys,
//! state, idempotency, delivery guarantee, failure behaviour).
//!
//! # Layout
//! - [`protocol`]: the JSON frames a client and a gateway exchange, and the strict parser for
//!   client frames.
//! - [`token`]: HMAC-signed per-user tokens that authenticate a WebSocket.
//! - [`conversation`]: conversation ids (1:1 derived from the pair, groups UUIDv7),
//!   membership and roles, and the direct/batched fan-out plan.
//! - [`sequence`]: sequence numbers, conversation-list state, delivered/read positions,
//!   message ids and the idempotency key of a sent message.
//! - [`user`]: the user id rule shared with the other systems.
//!
//! Field names and meanings follow `schemas/avro/chat.sent.avsc`, `chat.receipt.avsc` and
//! `chat.fanout.avsc`.

#![warn(missing_docs)]

pub mod conversation;
pub mod protocol;
pub mod sequence;
pub mod token;
pub mod user;
