//! The WebSocket gateway: one per ingress process. It authenticates sockets, keeps the
//! sockets of its users, registers them in Redis, turns client frames into events, and
//! writes what arrives on its pub/sub channel to the right sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::FuturesOrdered;
use futures::{SinkExt, StreamExt};
use sixfold_runtime::failure::now_ms;
use sixfold_runtime::producer::EventSendError;
use tokio::sync::mpsc;

use crate::Chat;
use crate::directory::Delivery;
use crate::events::{AvroContentType, ChatReceipt, ChatSent, new_event_id};
use crate::protocol::{
    ClientFrame, ErrorFrame, Media, PresenceFrame, PresenceStatus, ReceiptFrame, SendFrame,
    ServerFrame, SyncFrame, SyncedFrame, parse_client_frame,
};

/// Close code "going away" (RFC 6455): the gateway is stopping.
const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code "policy violation": the client stopped answering or fell too far behind.
const CLOSE_POLICY: u16 = 1008;

/// A socket's outbound queue.
type Outbound = mpsc::Sender<Arc<str>>;
/// A handle on a socket's queue that does not keep it open.
type WeakOutbound = mpsc::WeakSender<Arc<str>>;
/// A `chat.sent` or `chat.receipt` queued on the producer: resolves to the error frame for the
/// client if the broker did not take it.
type Pending = futures::future::BoxFuture<'static, Option<ServerFrame>>;
/// Most records one socket keeps in flight before it stops reading frames.
const MAX_IN_FLIGHT: usize = 256;

/// The sockets this gateway holds, by user.
pub struct Gateway {
    id: String,
    sockets: Mutex<HashMap<String, Vec<(u64, Outbound)>>>,
    next_socket: AtomicU64,
}

impl Gateway {
    /// An empty gateway with registry id `id`.
    pub fn new(id: String) -> Self {
        Self {
            id,
            sockets: Mutex::new(HashMap::new()),
            next_socket: AtomicU64::new(1),
        }
    }

    /// The gateway's id in the registry.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn add(&self, user: &str, outbound: Outbound) -> u64 {
        let id = self.next_socket.fetch_add(1, Ordering::Relaxed);
        let mut sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        sockets
            .entry(user.to_owned())
            .or_default()
            .push((id, outbound));
        id
    }

    /// Forgets a socket; true if it was the user's last one here.
    fn remove(&self, user: &str, socket: u64) -> bool {
        let mut sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = sockets.get_mut(user) else {
            return true;
        };
        list.retain(|(id, _)| *id != socket);
        if list.is_empty() {
            sockets.remove(user);
            true
        } else {
            false
        }
    }

    /// Users with at least one socket here.
    pub fn users(&self) -> Vec<String> {
        let sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        sockets.keys().cloned().collect()
    }

    /// Queues `frame` on every socket of `user`; returns how many took it. A socket whose
    /// queue is full is dropped from the table (its loop closes it).
    fn send(&self, user: &str, frame: &Arc<str>) -> usize {
        let mut sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = sockets.get_mut(user) else {
            return 0;
        };
        let mut sent = 0;
        list.retain(|(_, outbound)| match outbound.try_send(frame.clone()) {
            Ok(()) => {
                sent += 1;
                true
            }
            Err(_) => false,
        });
        if list.is_empty() {
            sockets.remove(user);
        }
        sent
    }
}

impl Chat {
    /// Runs the gateway's background work until shutdown: the subscription to its pub/sub
    /// channel, the heartbeat that refreshes its users' routes and presence, and the sweep
    /// that announces users whose presence ran out (a crashed gateway's users).
    pub async fn run_gateway(self: Arc<Self>) {
        let subscriber = tokio::spawn(self.clone().subscribe());
        let mut tick = tokio::time::interval(self.settings.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = tick.tick() => {
                    if let Err(error) = self.heartbeat().await {
                        tracing::warn!(%error, "chat gateway heartbeat failed");
                    }
                    if let Err(error) = self.sweep_offline().await {
                        tracing::warn!(%error, "chat presence sweep failed");
                    }
                }
            }
        }
        subscriber.abort();
        // Leave the registry at once rather than after presence_ttl.
        for user in self.gateway.users() {
            let _ = self
                .directory
                .unregister(self.gateway.id(), &user, now_ms())
                .await;
        }
    }

    /// Reads the gateway's channel, reconnecting after Redis failures, to the next node of
    /// `redis_urls` each time.
    async fn subscribe(self: Arc<Self>) {
        let channel = self.directory.channel(self.gateway.id());
        for attempt in 0.. {
            let url = &self.redis_urls[attempt % self.redis_urls.len().max(1)];
            match self.subscribe_once(url, &channel).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, %url, "chat gateway subscription lost; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn subscribe_once(&self, url: &str, channel: &str) -> redis::RedisResult<()> {
        let client = redis::Client::open(url)?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let payload: String = message.get_payload()?;
            match serde_json::from_str::<Delivery>(&payload) {
                Ok(delivery) => self.hand_out(delivery).await,
                Err(error) => tracing::warn!(%error, "unreadable chat delivery"),
            }
        }
        Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "pub/sub connection closed",
        )))
    }

    /// Writes a delivery to local sockets; a message for a user with no socket here any more
    /// goes to their inbox.
    async fn hand_out(&self, delivery: Delivery) {
        let frame: Arc<str> = Arc::from(delivery.frame);
        for user in &delivery.users {
            if self.gateway.send(user, &frame) > 0 {
                self.count("frame", "socket", 1);
            } else if let Some((conv, seq)) = &delivery.missed {
                if let Err(error) = self.store.inbox_add(user, conv, *seq).await {
                    tracing::warn!(%error, user, "could not keep a missed message in the inbox");
                }
                self.count("message", "inbox", 1);
            }
        }
    }

    async fn heartbeat(&self) -> Result<(), crate::processor::ChatError> {
        let users = self.gateway.users();
        let now = now_ms();
        let newly_online = self
            .directory
            .register(
                self.gateway.id(),
                &users,
                now,
                now + self.settings.presence_ttl.as_millis() as i64,
                self.settings.presence_ttl.as_secs(),
            )
            .await?;
        for user in newly_online {
            self.announce(&user, PresenceStatus::Online, None).await?;
        }
        Ok(())
    }

    /// Announces users whose last heartbeat is older than `presence_ttl` and who have no live
    /// route: their gateway is gone without saying goodbye.
    async fn sweep_offline(&self) -> Result<(), crate::processor::ChatError> {
        let now = now_ms();
        let cutoff = now - self.settings.presence_ttl.as_millis() as i64;
        for (user, last_seen) in self.directory.stale_online(cutoff).await? {
            let routes = self
                .directory
                .routes(std::slice::from_ref(&user), now)
                .await?;
            if routes.first().is_some_and(|r| !r.is_empty()) {
                continue;
            }
            if self.directory.mark_offline(&user).await? {
                self.announce(&user, PresenceStatus::Offline, Some(last_seen))
                    .await?;
            }
        }
        Ok(())
    }

    /// The other members of the user's 1:1 conversations: whose presence they see.
    async fn contacts(&self, user: &str) -> Result<Vec<String>, crate::processor::ChatError> {
        let mut contacts = Vec::new();
        for conv in self.store.conversation_ids_of(user).await? {
            if !conv.starts_with(crate::conversation::DIRECT_PREFIX) {
                continue;
            }
            if let Some(membership) = self.store.membership(&conv, 2).await? {
                contacts.extend(
                    membership
                        .user_ids()
                        .filter(|u| *u != user)
                        .map(str::to_owned),
                );
            }
        }
        Ok(contacts)
    }

    /// Tells a newly connected user which of their contacts are online now (changes after
    /// this come as they happen).
    async fn send_contacts_presence(&self, user: &str, outbound: &Outbound) {
        let contacts = match self.contacts(user).await {
            Ok(contacts) => contacts,
            Err(error) => {
                tracing::warn!(%error, user, "contacts' presence not sent");
                return;
            }
        };
        for contact in contacts {
            if let Ok(Some(_)) = self.directory.presence(&contact).await {
                let frame = ServerFrame::Presence(PresenceFrame {
                    user: contact,
                    status: PresenceStatus::Online,
                    last_seen: None,
                });
                if outbound.send(frame.to_text().into()).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Pushes a presence change to the user's 1:1 partners who are connected.
    async fn announce(
        &self,
        user: &str,
        status: PresenceStatus,
        last_seen: Option<i64>,
    ) -> Result<(), crate::processor::ChatError> {
        let contacts = self.contacts(user).await?;
        if contacts.is_empty() {
            return Ok(());
        }
        let frame = ServerFrame::Presence(PresenceFrame {
            user: user.to_owned(),
            status,
            last_seen,
        });
        self.deliver_live("presence", &contacts, &frame).await
    }

    /// Serves one authenticated socket until it closes or the gateway stops.
    pub async fn serve_socket(self: Arc<Self>, user: String, socket: WebSocket) {
        let (outbound, mut queue) = mpsc::channel::<Arc<str>>(self.settings.send_queue);
        let socket_id = self.gateway.add(&user, outbound.clone());
        self.counters.sockets.inc();
        let now = now_ms();
        match self
            .directory
            .register(
                self.gateway.id(),
                std::slice::from_ref(&user),
                now,
                now + self.settings.presence_ttl.as_millis() as i64,
                self.settings.presence_ttl.as_secs(),
            )
            .await
        {
            Ok(newly) if !newly.is_empty() => {
                if let Err(error) = self.announce(&user, PresenceStatus::Online, None).await {
                    tracing::warn!(%error, "presence not announced");
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, user, "socket not registered; retried on the next heartbeat")
            }
        }
        // The inbox, after registering: a message routed before the registration is in the
        // inbox by now or will be found by the next read; one routed after comes live.
        let drain = tokio::spawn(self.clone().drain_inbox(user.clone(), outbound.downgrade()));
        drop(outbound);

        let (mut sink, mut stream) = socket.split();
        // A client that stops reading must not hold the socket open: every write gives up
        // after one heartbeat.
        let within = self.settings.heartbeat;
        let mut tick = tokio::time::interval(self.settings.heartbeat);
        tick.tick().await;
        let mut last_heard = Instant::now();
        let mut in_flight: FuturesOrdered<Pending> = FuturesOrdered::new();
        let close = loop {
            tokio::select! {
                Some(refused) = in_flight.next(), if !in_flight.is_empty() => {
                    if let Some(frame) = refused
                        && !write(&mut sink, text_message(&frame), within).await
                    {
                        break None;
                    }
                }
                _ = self.shutdown.cancelled() => break Some((CLOSE_GOING_AWAY, "gateway stopping")),
                frame = queue.recv() => match frame {
                    Some(text) => {
                        if !write(&mut sink, Message::Text(text.as_ref().into()), within).await {
                            break None;
                        }
                    }
                    // Every sender is gone: the table dropped this socket for falling behind.
                    None => break Some((CLOSE_POLICY, "too far behind; reconnect and sync")),
                },
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        last_heard = Instant::now();
                        let mut replies = Vec::new();
                        // Back-pressure: a client sending faster than the broker acknowledges
                        // waits here.
                        while in_flight.len() >= MAX_IN_FLIGHT {
                            if let Some(Some(frame)) = in_flight.next().await {
                                replies.push(frame);
                            }
                        }
                        let (answers, pending) = self.handle_text(&user, text.as_str()).await;
                        in_flight.extend(pending);
                        replies.extend(answers);
                        let mut written = true;
                        for reply in &replies {
                            written = write(&mut sink, text_message(reply), within).await;
                            if !written {
                                break;
                            }
                        }
                        if !written {
                            break None;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        last_heard = Instant::now();
                        let error = error_frame("malformed_frame", "frames are JSON text", None);
                        if !write(&mut sink, text_message(&error), within).await {
                            break None;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => last_heard = Instant::now(),
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break None,
                },
                _ = tick.tick() => {
                    if last_heard.elapsed() > self.settings.presence_ttl {
                        break Some((CLOSE_POLICY, "no heartbeat"));
                    }
                    if !write(&mut sink, Message::Ping(Vec::new().into()), within).await {
                        break None;
                    }
                }
            }
        };
        drain.abort();
        if let Some((code, reason)) = close {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            write(&mut sink, Message::Close(Some(frame)), within).await;
        }
        self.counters.sockets.dec();
        if self.gateway.remove(&user, socket_id) {
            self.leave(&user).await;
        }
    }

    /// The user's last socket here closed: drop the route, and if no gateway holds them any
    /// more, announce them offline.
    async fn leave(&self, user: &str) {
        let now = now_ms();
        let left = match self
            .directory
            .unregister(self.gateway.id(), user, now)
            .await
        {
            Ok(left) => left,
            Err(error) => {
                tracing::warn!(%error, user, "route not removed; it expires by itself");
                return;
            }
        };
        if left == 0
            && matches!(self.directory.mark_offline(user).await, Ok(true))
            && let Err(error) = self
                .announce(user, PresenceStatus::Offline, Some(now))
                .await
        {
            tracing::warn!(%error, "presence not announced");
        }
    }

    /// Sends who of the user's contacts is online, then the user's missed messages,
    /// conversation by conversation in sequence order, clearing each conversation's inbox entry
    /// once its messages are queued.
    async fn drain_inbox(self: Arc<Self>, user: String, outbound: WeakOutbound) {
        // A weak handle: a socket the table dropped for falling behind closes without waiting
        // for the drain to end.
        let Some(strong) = outbound.upgrade() else {
            return;
        };
        self.send_contacts_presence(&user, &strong).await;
        drop(strong);
        let inbox = match self.store.inbox(&user).await {
            Ok(inbox) => inbox,
            Err(error) => {
                tracing::warn!(%error, user, "inbox not read; the client can sync");
                return;
            }
        };
        for (conv, first) in inbox {
            // An entry written for a member who has been removed since is dropped unread.
            match self.store.is_member(&conv, &user).await {
                Ok(true) => {}
                Ok(false) => {
                    let _ = self.store.inbox_clear(&user, &conv).await;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, user, "inbox not sent; the client can sync");
                    return;
                }
            }
            let mut after = first.saturating_sub(1);
            loop {
                let page = match self
                    .store
                    .messages_after(&conv, after, self.settings.sync_batch)
                    .await
                {
                    Ok(page) => page,
                    Err(error) => {
                        tracing::warn!(%error, user, "inbox not sent; the client can sync");
                        return;
                    }
                };
                let full = page.len() == self.settings.sync_batch;
                for message in page {
                    after = message.seq;
                    let text: Arc<str> =
                        ServerFrame::Message(message.frame(&conv)).to_text().into();
                    let Some(queue) = outbound.upgrade() else {
                        return;
                    };
                    if queue.send(text).await.is_err() {
                        return;
                    }
                    self.count("message", "inbox_drain", 1);
                }
                if !full {
                    break;
                }
            }
            if let Err(error) = self.store.inbox_clear(&user, &conv).await {
                tracing::warn!(%error, user, "inbox entry not cleared; sent again next time");
            }
        }
    }

    /// Answers one text frame: the replies to write to the socket now, in order, and the
    /// record it queued, if any.
    async fn handle_text(&self, user: &str, text: &str) -> (Vec<ServerFrame>, Option<Pending>) {
        let frame = match parse_client_frame(text) {
            Ok(frame) => frame,
            Err(error) => return (vec![error.to_server_frame()], None),
        };
        match frame {
            ClientFrame::Ping => (vec![ServerFrame::Pong], None),
            ClientFrame::Send(send) => match self.handle_send(user, send).await {
                Ok(pending) => (Vec::new(), Some(pending)),
                Err(refusal) => (vec![refusal], None),
            },
            ClientFrame::Receipt(receipt) => match self.handle_receipt(user, receipt).await {
                Ok(pending) => (Vec::new(), Some(pending)),
                Err(refusal) => (vec![refusal], None),
            },
            ClientFrame::Sync(sync) => (self.handle_sync(user, sync).await, None),
        }
    }

    /// Checks membership; a refusal as an error frame.
    async fn check_member(
        &self,
        user: &str,
        conv: &str,
        client_msg_id: Option<&str>,
    ) -> Result<(), ServerFrame> {
        match self.store.is_member(conv, user).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(error_frame(
                "not_member",
                &format!("you are not a member of {conv}"),
                client_msg_id,
            )),
            Err(error) => {
                tracing::warn!(%error, "membership not read");
                Err(error_frame(
                    "unavailable",
                    "could not check membership; try again",
                    client_msg_id,
                ))
            }
        }
    }

    /// Queues the `chat.sent` event of a `send` frame (in the order the frames came); the ack
    /// comes from the processor once the message is durable.
    async fn handle_send(&self, user: &str, mut send: SendFrame) -> Result<Pending, ServerFrame> {
        let id = send.client_msg_id.clone();
        self.check_member(user, &send.conversation_id, Some(&id))
            .await?;
        if let Some(media) = &mut send.media {
            self.check_uploaded(media, &id).await?;
        }
        let event = ChatSent {
            event_id: new_event_id(),
            occurred_at: now_ms(),
            conversation_id: send.conversation_id.clone(),
            sender_id: user.to_owned(),
            client_msg_id: send.client_msg_id.clone(),
            content: send.content,
            content_type: AvroContentType::from(send.content_type),
            media: send.media.as_ref().map(Into::into),
            gateway_id: Some(self.gateway.id().to_owned()),
        };
        let refused = move |error: EventSendError| {
            tracing::warn!(%error, "chat.sent not produced");
            error_frame(
                "unavailable",
                "message not accepted; send it again with the same client_msg_id",
                Some(&id),
            )
        };
        let delivery = self
            .producer
            .enqueue_event(
                &self.codec,
                &self.settings.sent_topic,
                &self.schemas.sent,
                &send.conversation_id,
                &event,
            )
            .await
            .map_err(&refused)?;
        Ok(Box::pin(async move { delivery.await.err().map(refused) }))
    }

    /// Accepts only attachments uploaded here (`POST /v1/chat/media`), and takes their type and
    /// size from the upload rather than from the client.
    async fn check_uploaded(
        &self,
        media: &mut Media,
        client_msg_id: &str,
    ) -> Result<(), ServerFrame> {
        let refuse = |message: &str| {
            ServerFrame::Error(ErrorFrame {
                code: "invalid_field".to_owned(),
                message: message.to_owned(),
                field: Some("media.url".to_owned()),
                client_msg_id: Some(client_msg_id.to_owned()),
            })
        };
        let Some(hash) = self.media_hash(&media.url) else {
            return Err(refuse(
                "media.url must be a URL returned by POST /v1/chat/media",
            ));
        };
        match self.store.media(hash).await {
            Ok(Some(meta)) => {
                media.mime_type = meta.mime_type;
                media.size_bytes = meta.size_bytes;
                Ok(())
            }
            Ok(None) => Err(refuse("no attachment was uploaded at media.url")),
            Err(error) => {
                tracing::warn!(%error, "attachment not read");
                Err(error_frame(
                    "unavailable",
                    "could not check the attachment; try again",
                    Some(client_msg_id),
                ))
            }
        }
    }

    /// Queues the `chat.receipt` event of a `receipt` frame.
    async fn handle_receipt(
        &self,
        user: &str,
        receipt: ReceiptFrame,
    ) -> Result<Pending, ServerFrame> {
        self.check_member(user, &receipt.conversation_id, None)
            .await?;
        let event = ChatReceipt {
            event_id: new_event_id(),
            occurred_at: now_ms(),
            conversation_id: receipt.conversation_id.clone(),
            user_id: user.to_owned(),
            kind: receipt.kind.into(),
            up_to_seq: receipt.up_to_seq as i64,
        };
        let refused = |error: EventSendError| {
            tracing::warn!(%error, "chat.receipt not produced");
            error_frame("unavailable", "receipt not accepted; send it again", None)
        };
        let delivery = self
            .producer
            .enqueue_event(
                &self.codec,
                &self.settings.receipt_topic,
                &self.schemas.receipt,
                &receipt.conversation_id,
                &event,
            )
            .await
            .map_err(refused)?;
        Ok(Box::pin(async move { delivery.await.err().map(refused) }))
    }

    async fn handle_sync(&self, user: &str, sync: SyncFrame) -> Vec<ServerFrame> {
        let conv = &sync.conversation_id;
        if let Err(refusal) = self.check_member(user, conv, None).await {
            return vec![refusal];
        }
        let batch = self.settings.sync_batch;
        match self.store.messages_after(conv, sync.after_seq, batch).await {
            Ok(page) => {
                let more = page.len() == batch;
                let up_to_seq = page.last().map_or(sync.after_seq, |m| m.seq);
                let mut frames: Vec<ServerFrame> = page
                    .into_iter()
                    .map(|m| ServerFrame::Message(m.frame(conv)))
                    .collect();
                frames.push(ServerFrame::Synced(SyncedFrame {
                    conversation_id: conv.clone(),
                    up_to_seq,
                    more,
                }));
                frames
            }
            Err(error) => {
                tracing::warn!(%error, "history not read");
                vec![error_frame(
                    "unavailable",
                    "could not read the conversation; sync again",
                    None,
                )]
            }
        }
    }
}

/// Writes one message to a socket, giving up after `within`; false if it was not written.
async fn write<S>(sink: &mut S, message: Message, within: Duration) -> bool
where
    S: futures::Sink<Message> + Unpin,
{
    matches!(
        tokio::time::timeout(within, sink.send(message)).await,
        Ok(Ok(()))
    )
}

fn text_message(frame: &ServerFrame) -> Message {
    Message::Text(frame.to_text().into())
}

fn error_frame(code: &str, message: &str, client_msg_id: Option<&str>) -> ServerFrame {
    ServerFrame::Error(ErrorFrame {
        code: code.to_owned(),
        message: message.to_owned(),
        field: None,
        client_msg_id: client_msg_id.map(str::to_owned),
    })
}
