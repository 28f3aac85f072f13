//! Chat through real WebSockets on two gateway nodes, with its processor on the real broker,
//! Redis and a shared SQLite store: ordered delivery in both directions with acks and receipts,
//! offline inbox and sync, a group of 50 across both gateways (through `chat.fanout`), a
//! gateway killed with SIGKILL, membership checks, malformed frames, attachments, redelivered
//! events and the DLQ.

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sixfold_chat::events::{AvroContentType, ChatSent, new_event_id};
use sixfold_chat::{ChatSettings, events};
use sixfold_runtime::codec::EventSchema;
use sixfold_runtime::consumer::RuntimeContext;
use sixfold_runtime::failure::{H_ERROR_CLASS, dlq_topic, now_ms};
use sixfold_runtime::{ProcessorConfig, run_processor};
use sixfold_tests::chat::{CHAT_TEST_KEY, ChatNode, test_settings};
use sixfold_tests::{TestRegistry, create_topics, kafka, redis_conn, redis_url, unique, wait_for};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::harness::{header, read_records};

const PATIENCE: Duration = Duration::from_secs(30);

/// A chat cluster: topics, registry, store file, node A in this process running the
/// processor, and optionally node B as its own process.
struct Cluster {
    prefix: String,
    settings: ChatSettings,
    registry: Arc<TestRegistry>,
    a: ChatNode,
    group: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
    /// Whether the gateways use the Redis Cluster instead of the single node.
    redis_cluster: bool,
}

impl Cluster {
    async fn start(tune: impl FnOnce(&mut ChatSettings)) -> Result<Self> {
        Self::start_on(false, tune).await
    }

    /// [`Cluster::start`] on the single Redis or (`redis_cluster`) the Redis Cluster.
    async fn start_on(redis_cluster: bool, tune: impl FnOnce(&mut ChatSettings)) -> Result<Self> {
        let prefix = unique("chat");
        let dir = tempfile::tempdir()?;
        let mut settings = test_settings(&prefix, &dir.path().join("media"));
        tune(&mut settings);
        create_topics(&[
            (&settings.sent_topic, 2),
            (&settings.receipt_topic, 2),
            (&settings.fanout_topic, 2),
            (&settings.membership_topic, 2),
        ])
        .await?;
        let registry = Arc::new(TestRegistry::start().await?);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut a_settings = settings.clone();
        a_settings.gateway_id = format!("{prefix}-a");
        let a = ChatNode::start(
            listener,
            a_settings,
            &dir.path().join("store.db"),
            &registry.url,
            redis_cluster,
        )
        .await?;
        let group = unique("chat-group");
        create_topics(&[(&dlq_topic(&group), 1)]).await?;
        let config = ProcessorConfig {
            name: group.clone(),
            topics: a.chat.input_topics(),
            retry_delays: vec![],
            ..ProcessorConfig::default()
        };
        let context = RuntimeContext {
            kafka: kafka(),
            codec: a.codec.clone(),
            producer: a.producer.clone(),
            metrics: a.metrics.clone(),
        };
        tokio::spawn(run_processor(
            Arc::new(a.chat.processor()),
            config,
            context,
            a.shutdown.clone(),
        ));
        Ok(Self {
            prefix,
            settings,
            registry,
            a,
            group,
            http: reqwest::Client::new(),
            dir,
            redis_cluster,
        })
    }

    /// Starts node B as its own process and waits until it answers.
    async fn spawn_b(&self) -> Result<(Child, String)> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        drop(listener);
        let child = Command::new(env!("CARGO_BIN_EXE_chat-gateway"))
            .env("CHAT_PREFIX", &self.prefix)
            .env("CHAT_GATEWAY_ID", format!("{}-b", self.prefix))
            .env("CHAT_LISTEN", address.to_string())
            .env("CHAT_SQLITE", self.dir.path().join("store.db"))
            .env("CHAT_MEDIA_DIR", self.dir.path().join("media"))
            .env("CHAT_REGISTRY_URL", &self.registry.url)
            .env("SIXFOLD__KAFKA__BROKERS", kafka().brokers)
            .env("SIXFOLD__REDIS__URL", redis_url())
            .env(
                "CHAT_REDIS_CLUSTER",
                if self.redis_cluster { "1" } else { "0" },
            )
            .spawn()
            .context("start chat-gateway")?;
        let base = format!("http://{address}");
        let http = self.http.clone();
        let health = format!("{base}/livez");
        wait_for("gateway B to answer", PATIENCE, || {
            let (http, health) = (http.clone(), health.clone());
            async move { http.get(&health).send().await.is_ok() }
        })
        .await?;
        Ok((child, base))
    }

    async fn post(&self, path: &str, body: Value) -> Result<(StatusCode, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.a.base))
            .bearer_auth(CHAT_TEST_KEY)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn get(&self, path: &str) -> Result<(StatusCode, Value)> {
        let response = self
            .http
            .get(format!("{}{path}", self.a.base))
            .bearer_auth(CHAT_TEST_KEY)
            .send()
            .await?;
        let status = response.status();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Creates a conversation and returns its id.
    async fn conversation(&self, members: &[&str]) -> Result<String> {
        let (status, body) = self
            .post("/v1/chat/conversations", json!({ "members": members }))
            .await?;
        ensure!(status == StatusCode::CREATED, "create: {status} {body}");
        Ok(body["conversation_id"].as_str().context("id")?.to_owned())
    }

    /// A client for `user` connected to the node at `base`.
    async fn connect(&self, base: &str, user: &str) -> Result<Client> {
        let (status, body) = self
            .post("/v1/chat/tokens", json!({ "user_id": user }))
            .await?;
        ensure!(status == StatusCode::CREATED, "token: {status} {body}");
        let token = body["token"].as_str().context("token")?;
        let url = format!(
            "{}/v1/chat/ws?token={token}",
            base.replace("http://", "ws://")
        );
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        let client = Client {
            user: user.to_owned(),
            ws,
            seen: Vec::new(),
        };
        // Registered once the gateway has written the route (right after the upgrade).
        let routes = format!("{}:route:{{{user}}}", self.prefix);
        let redis = redis_conn(self.redis_cluster).await?;
        wait_for("the route to be registered", PATIENCE, || {
            let (routes, mut redis) = (routes.clone(), redis.clone());
            async move {
                let n: u64 = redis::cmd("ZCOUNT")
                    .arg(&routes)
                    .arg(now_ms())
                    .arg("+inf")
                    .query_async(&mut redis)
                    .await
                    .unwrap_or(0);
                n > 0
            }
        })
        .await?;
        Ok(client)
    }

    /// Live routes of `user` in the registry.
    async fn live_routes(&self, user: &str) -> Result<u64> {
        let mut redis = redis_conn(self.redis_cluster).await?;
        Ok(redis::cmd("ZCOUNT")
            .arg(format!("{}:route:{{{user}}}", self.prefix))
            .arg(now_ms())
            .arg("+inf")
            .query_async(&mut redis)
            .await?)
    }

    /// History as seen by `user`: (seq, sender, content).
    async fn history(&self, conv: &str, user: &str) -> Result<Vec<(u64, String, String)>> {
        let (status, body) = self
            .get(&format!(
                "/v1/chat/conversations/{conv}/messages?user_id={user}&limit=100"
            ))
            .await?;
        ensure!(status == StatusCode::OK, "history: {status} {body}");
        Ok(body["messages"]
            .as_array()
            .context("messages")?
            .iter()
            .map(|m| {
                (
                    m["seq"].as_u64().unwrap_or(0),
                    m["sender_id"].as_str().unwrap_or("").to_owned(),
                    m["content"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect())
    }

    /// Produces a `chat.sent` event as another system would.
    async fn produce_sent(&self, event: &ChatSent) -> Result<()> {
        let schema = EventSchema::parse(events::CHAT_SENT_SCHEMA)?;
        self.a
            .producer
            .send_event(
                &self.a.codec,
                &self.settings.sent_topic,
                &schema,
                &event.conversation_id,
                event,
            )
            .await?;
        Ok(())
    }
}

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A test's WebSocket client.
struct Client {
    user: String,
    ws: Socket,
    /// Every frame received, in order.
    seen: Vec<Value>,
}

impl Client {
    async fn send(&mut self, frame: Value) -> Result<()> {
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .await?;
        Ok(())
    }

    async fn send_text(&mut self, conv: &str, id: &str, text: &str) -> Result<()> {
        self.send(
            json!({"type": "send", "client_msg_id": id, "conversation_id": conv,
            "content": text, "content_type": "text"}),
        )
        .await
    }

    /// The next frame (skipping WebSocket control frames).
    async fn next(&mut self) -> Result<Value> {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .with_context(|| format!("{} waited {PATIENCE:?} for a frame", self.user))?
                .context("socket closed")??;
            if let Message::Text(text) = message {
                let frame: Value = serde_json::from_str(text.as_str())?;
                self.seen.push(frame.clone());
                return Ok(frame);
            }
        }
    }

    /// Reads frames until one of type `kind` satisfying `accept` arrives; returns it.
    async fn until(&mut self, kind: &str, accept: impl Fn(&Value) -> bool) -> Result<Value> {
        loop {
            let frame = self.next().await?;
            if frame["type"] == kind && accept(&frame) {
                return Ok(frame);
            }
        }
    }

    /// Sequence numbers of the `message` frames received for `conv`, in arrival order.
    fn message_seqs(&self, conv: &str) -> Vec<u64> {
        self.seen
            .iter()
            .filter(|f| f["type"] == "message" && f["conversation_id"] == conv)
            .filter_map(|f| f["seq"].as_u64())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_exchange_ordered_messages_with_acks_and_receipts() -> Result<()> {
    exchange_ordered_messages(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_exchange_ordered_messages_on_a_redis_cluster() -> Result<()> {
    exchange_ordered_messages(true).await
}

/// Two gateways (one its own process) exchange ordered messages with acks, receipts and
/// presence, with routes and presence on the single Redis or the Redis Cluster.
async fn exchange_ordered_messages(redis_cluster: bool) -> Result<()> {
    let cluster = Cluster::start_on(redis_cluster, |_| {}).await?;
    let (mut b_process, b) = cluster.spawn_b().await?;
    let result = async {
        let conv = cluster.conversation(&["alice", "bob"]).await?;
        let a_base = cluster.a.base.clone();
        let mut alice = cluster.connect(&a_base, "alice").await?;
        let mut bob = cluster.connect(&b, "bob").await?;

        for i in 1..=10 {
            alice
                .send_text(&conv, &format!("a{i}"), &format!("hello {i}"))
                .await?;
        }
        for i in 1..=10u64 {
            let ack = alice.until("ack", |_| true).await?;
            ensure!(
                ack["client_msg_id"] == format!("a{i}") && ack["seq"] == i,
                "ack {i}: {ack}"
            );
            // Acked means durable: the message is already in the history.
            let history = cluster.history(&conv, "alice").await?;
            ensure!(
                history.iter().any(|(seq, _, _)| *seq == i),
                "seq {i} acked before stored"
            );
        }
        for i in 1..=10u64 {
            let message = bob.until("message", |_| true).await?;
            ensure!(
                message["seq"] == i
                    && message["content"] == format!("hello {i}")
                    && message["sender_id"] == "alice",
                "bob's message {i}: {message}"
            );
        }
        // Bob read everything: alice hears about it.
        bob.send(
            json!({"type": "receipt", "conversation_id": conv, "kind": "read", "up_to_seq": 10}),
        )
        .await?;
        let receipt = alice
            .until("receipt", |f| f["user_id"] == "bob" && f["kind"] == "read")
            .await?;
        ensure!(receipt["up_to_seq"] == 10, "{receipt}");
        for i in 1..=5 {
            bob.send_text(&conv, &format!("b{i}"), &format!("reply {i}"))
                .await?;
        }
        for i in 11..=15u64 {
            let message = alice.until("message", |_| true).await?;
            ensure!(
                message["seq"] == i && message["sender_id"] == "bob",
                "alice's {i}: {message}"
            );
        }
        // Unread counts: alice has read up to her own last message (10), bob sent 11..15.
        wait_for("alice's unread count", PATIENCE, || async {
            let (_, list) = cluster
                .get("/v1/chat/conversations?user_id=alice")
                .await
                .unwrap_or_default();
            list["conversations"][0]["unread"] == 5 && list["conversations"][0]["last_seq"] == 15
        })
        .await?;
        // Bob's own messages moved his read position to 15.
        wait_for("bob's unread count", PATIENCE, || async {
            let (_, list) = cluster
                .get("/v1/chat/conversations?user_id=bob")
                .await
                .unwrap_or_default();
            list["conversations"][0]["unread"] == 0 && list["conversations"][0]["read_up_to"] == 15
        })
        .await?;
        let (_, list) = cluster.get("/v1/chat/conversations?user_id=bob").await?;
        ensure!(
            list["conversations"][0]["last_preview"] == "reply 5",
            "{list}"
        );
        // Presence: bob was told alice was online when he connected, and alice saw bob come
        // online (he connected after her).
        ensure!(
            bob.seen.iter().any(|f| f["type"] == "presence"
                && f["user"] == "alice"
                && f["status"] == "online"),
            "bob was not told alice is online: {:?}",
            bob.seen
        );
        ensure!(
            alice
                .seen
                .iter()
                .any(|f| f["type"] == "presence" && f["user"] == "bob" && f["status"] == "online"),
            "no presence for bob in {:?}",
            alice.seen
        );
        Ok(())
    }
    .await;
    let _ = b_process.kill();
    let _ = b_process.wait();
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offline_recipient_gets_the_missed_messages_on_reconnect_and_by_sync() -> Result<()> {
    let cluster = Cluster::start(|_| {}).await?;
    let conv = cluster.conversation(&["carol", "dave"]).await?;
    let base = cluster.a.base.clone();
    let mut carol = cluster.connect(&base, "carol").await?;
    for i in 1..=5 {
        carol
            .send_text(&conv, &format!("c{i}"), &format!("while you were out {i}"))
            .await?;
    }
    for _ in 1..=5 {
        carol.until("ack", |_| true).await?;
    }
    // Acked means stored; routing follows the ack. Dave connects once all five are routed to
    // his inbox, or a late one could reach him live before the inbox (clients order by seq).
    wait_for("the messages routed to dave's inbox", PATIENCE, || async {
        cluster.a.chat.deliveries("message", "inbox") >= 5
    })
    .await?;
    let mut dave = cluster.connect(&base, "dave").await?;
    for i in 1..=5u64 {
        let message = dave.until("message", |_| true).await?;
        ensure!(message["seq"] == i, "inbox message {i}: {message}");
    }
    // Sync from 2 gets exactly 3..5, then `synced`.
    dave.send(json!({"type": "sync", "conversation_id": conv, "after_seq": 2}))
        .await?;
    let before = dave.seen.len();
    dave.until("synced", |_| true).await?;
    let synced: Vec<u64> = dave.seen[before..]
        .iter()
        .filter(|f| f["type"] == "message")
        .filter_map(|f| f["seq"].as_u64())
        .collect();
    ensure!(synced == vec![3, 4, 5], "sync answered {synced:?}");
    ensure!(
        dave.seen
            .last()
            .is_some_and(|f| f["up_to_seq"] == 5 && f["more"] == false)
    );
    ensure!(
        dave.message_seqs(&conv) == vec![1, 2, 3, 4, 5, 3, 4, 5],
        "{:?}",
        dave.message_seqs(&conv)
    );
    // The inbox was cleared: reconnecting brings nothing.
    drop(dave);
    wait_for("dave to be gone", PATIENCE, || async {
        cluster.live_routes("dave").await.unwrap_or(1) == 0
    })
    .await?;
    // The inbox was cleared once its messages were queued: nothing is left to send again.
    ensure!(
        cluster.a.chat.store().inbox("dave").await?.is_empty(),
        "dave's inbox was not cleared"
    );
    let mut dave = cluster.connect(&base, "dave").await?;
    dave.send(json!({"type": "sync", "conversation_id": conv, "after_seq": 5}))
        .await?;
    dave.until("synced", |_| true).await?;
    ensure!(
        dave.message_seqs(&conv).is_empty(),
        "inbox sent again: {:?}",
        dave.seen
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_of_fifty_across_two_gateways_gets_each_message_once() -> Result<()> {
    // Small direct limit and batches so the group goes through chat.fanout.
    let cluster = Cluster::start(|s| {
        s.direct_fanout_max = 10;
        s.fanout_batch = 8;
    })
    .await?;
    let (mut b_process, b) = cluster.spawn_b().await?;
    let result = async {
        let users: Vec<String> = (0..50).map(|i| format!("member{i:02}")).collect();
        let refs: Vec<&str> = users.iter().map(String::as_str).collect();
        let conv = cluster.conversation(&refs).await?;
        let mut clients = Vec::new();
        for (i, user) in users.iter().enumerate() {
            let base = if i % 2 == 0 {
                cluster.a.base.clone()
            } else {
                b.clone()
            };
            clients.push(cluster.connect(&base, user).await?);
        }
        for i in 1..=4 {
            clients[0]
                .send_text(&conv, &format!("g{i}"), &format!("to all {i}"))
                .await?;
        }
        for client in clients.iter_mut().skip(1) {
            while client.message_seqs(&conv).len() < 4 {
                client.until("message", |_| true).await?;
            }
            ensure!(
                client.message_seqs(&conv) == vec![1, 2, 3, 4],
                "{} got {:?}",
                client.user,
                client.message_seqs(&conv)
            );
        }
        let acks = clients[0]
            .seen
            .iter()
            .filter(|f| f["type"] == "ack")
            .count();
        for _ in acks..4 {
            clients[0].until("ack", |_| true).await?;
        }
        ensure!(
            clients[0].message_seqs(&conv).is_empty(),
            "the sender got its own messages"
        );
        // No connected member got an inbox entry, on either gateway.
        for user in &users {
            ensure!(
                cluster.a.chat.store().inbox(user).await?.is_empty(),
                "{user} has an inbox entry"
            );
        }
        Ok(())
    }
    .await;
    let _ = b_process.kill();
    let _ = b_process.wait();
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_gateways_users_expire_and_their_messages_wait_in_the_inbox() -> Result<()> {
    let cluster = Cluster::start(|_| {}).await?;
    let (mut b_process, b) = cluster.spawn_b().await?;
    let conv = cluster.conversation(&["erin", "frank"]).await?;
    let a_base = cluster.a.base.clone();
    let mut erin = cluster.connect(&a_base, "erin").await?;
    let frank = cluster.connect(&b, "frank").await?;
    b_process.kill()?; // SIGKILL: gateway B never unregisters frank.
    b_process.wait()?;
    drop(frank);
    // presence_ttl (2 s) later the route has expired and erin hears frank went offline.
    erin.until("presence", |f| {
        f["user"] == "frank" && f["status"] == "offline"
    })
    .await?;
    ensure!(cluster.live_routes("frank").await? == 0);
    for i in 1..=3 {
        erin.send_text(&conv, &format!("e{i}"), &format!("are you there {i}"))
            .await?;
    }
    for _ in 1..=3 {
        erin.until("ack", |_| true).await?;
    }
    let mut frank = cluster.connect(&a_base, "frank").await?;
    for i in 1..=3u64 {
        let message = frank.until("message", |_| true).await?;
        ensure!(message["seq"] == i, "frank's inbox {i}: {message}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outsiders_malformed_frames_bad_tokens_and_bad_events_are_refused() -> Result<()> {
    let cluster = Cluster::start(|_| {}).await?;
    let conv = cluster.conversation(&["gina", "hank"]).await?;
    let base = cluster.a.base.clone();
    let mut intruder = cluster.connect(&base, "ivan").await?;
    intruder.send_text(&conv, "x1", "let me in").await?;
    let error = intruder.until("error", |_| true).await?;
    ensure!(
        error["code"] == "not_member" && error["client_msg_id"] == "x1",
        "{error}"
    );
    intruder
        .send(json!({"type": "sync", "conversation_id": conv, "after_seq": 0}))
        .await?;
    ensure!(intruder.until("error", |_| true).await?["code"] == "not_member");
    // Malformed frames get an error and the socket stays usable.
    for (text, code) in [
        ("not json", "malformed_frame"),
        (r#"{"type":"shout"}"#, "unknown_type"),
        (
            r#"{"type":"send","client_msg_id":"","conversation_id":"d-0","content":"x","content_type":"text"}"#,
            "invalid_field",
        ),
    ] {
        intruder.ws.send(Message::Text(text.into())).await?;
        let error = intruder.until("error", |_| true).await?;
        ensure!(error["code"] == code, "{text}: {error}");
    }
    intruder.send(json!({"type": "ping"})).await?;
    intruder.until("pong", |_| true).await?;

    // Tokens: missing and forged ones are refused with a JSON 401.
    let ws = base.replace("http://", "ws://");
    for url in [
        format!("{ws}/v1/chat/ws"),
        format!("{ws}/v1/chat/ws?token=v1.gina.9999999999.00"),
    ] {
        match tokio_tungstenite::connect_async(&url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                ensure!(response.status() == 401, "{url}: {}", response.status());
                let body: Value =
                    serde_json::from_slice(response.body().as_deref().unwrap_or_default())?;
                ensure!(body["error"].is_string(), "{body}");
            }
            other => bail!("{url} was not refused: {:?}", other.map(|_| ())),
        }
    }
    // HTTP: outsiders cannot read history; bad requests are JSON 4xx.
    let (status, _) = cluster
        .get(&format!(
            "/v1/chat/conversations/{conv}/messages?user_id=ivan"
        ))
        .await?;
    ensure!(status == StatusCode::FORBIDDEN);
    let (status, body) = cluster
        .post("/v1/chat/conversations", json!({"members": ["solo"]}))
        .await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && body["error"] == "invalid_members",
        "{body}"
    );
    let (status, body) = cluster
        .post(
            "/v1/chat/conversations",
            json!({"members": ["gina", "hank"]}),
        )
        .await?;
    ensure!(
        status == StatusCode::OK && body["conversation_id"] == conv && body["created"] == false,
        "{body}"
    );

    // Another system's events: a resent message is stored once, without skipping a number.
    let event = ChatSent {
        event_id: new_event_id(),
        occurred_at: now_ms(),
        conversation_id: conv.clone(),
        sender_id: "gina".into(),
        client_msg_id: "outside-1".into(),
        content: "from another system".into(),
        content_type: AvroContentType::Text,
        media: None,
        gateway_id: None,
    };
    cluster.produce_sent(&event).await?;
    cluster
        .produce_sent(&ChatSent {
            event_id: new_event_id(),
            ..event.clone()
        })
        .await?;
    cluster
        .produce_sent(&ChatSent {
            event_id: new_event_id(),
            client_msg_id: "outside-2".into(),
            content: "second".into(),
            ..event.clone()
        })
        .await?;
    // A sender who is not a member goes to the DLQ with the reason.
    cluster
        .produce_sent(&ChatSent {
            event_id: new_event_id(),
            sender_id: "ivan".into(),
            client_msg_id: "sneaky".into(),
            ..event.clone()
        })
        .await?;
    wait_for("both outside messages", PATIENCE, || async {
        cluster
            .history(&conv, "gina")
            .await
            .map(|h| h.len() == 2)
            .unwrap_or(false)
    })
    .await?;
    let history = cluster.history(&conv, "gina").await?;
    ensure!(
        history
            .iter()
            .map(|(s, _, c)| (*s, c.as_str()))
            .collect::<Vec<_>>()
            == vec![(1, "from another system"), (2, "second")],
        "{history:?}"
    );
    let dlq = read_records(&dlq_topic(&cluster.group), 1, PATIENCE).await?;
    ensure!(
        header(&dlq[0], H_ERROR_CLASS).as_deref() == Some("invalid_event"),
        "dlq class"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attachments_upload_check_and_travel_in_messages() -> Result<()> {
    let cluster = Cluster::start(|_| {}).await?;
    let conv = cluster.conversation(&["jade", "kim"]).await?;
    let png = b"\x89PNG\r\n\x1a\n-not-really-an-image-but-the-signature-matches".to_vec();
    let upload = |content_type: &'static str, body: Vec<u8>| {
        cluster
            .http
            .post(format!(
                "{}/v1/chat/media?file_name=cat.png",
                cluster.a.base
            ))
            .bearer_auth(CHAT_TEST_KEY)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = upload("image/png", png.clone()).await?;
    ensure!(
        response.status() == StatusCode::CREATED,
        "{}",
        response.status()
    );
    let media: Value = response.json().await?;
    ensure!(
        media["size_bytes"] == png.len() && media["mime_type"] == "image/png",
        "{media}"
    );
    let url = media["url"].as_str().context("url")?.to_owned();
    let fetched = cluster.http.get(&url).send().await?;
    ensure!(fetched.headers()["content-type"] == "image/png");
    ensure!(fetched.bytes().await?.as_ref() == png.as_slice());
    for (content_type, body, status) in [
        (
            "application/x-msdownload",
            b"MZ".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        ("image/png", b"GIF89a".to_vec(), StatusCode::BAD_REQUEST),
        (
            "image/png",
            vec![0; 10 * 1024 * 1024 + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let response = upload(content_type, body).await?;
        ensure!(
            response.status() == status,
            "{content_type}: {}",
            response.status()
        );
        let error: Value = response.json().await?;
        ensure!(error["error"].is_string(), "{error}");
    }
    let base = cluster.a.base.clone();
    let mut jade = cluster.connect(&base, "jade").await?;
    let mut kim = cluster.connect(&base, "kim").await?;
    jade.send(
        json!({"type": "send", "client_msg_id": "p1", "conversation_id": conv,
        "content": "look", "content_type": "image", "media": media}),
    )
    .await?;
    let message = kim.until("message", |_| true).await?;
    ensure!(
        message["media"]["url"] == url.as_str() && message["content_type"] == "image",
        "{message}"
    );
    // Only attachments uploaded here travel in messages.
    let mut foreign = media.clone();
    foreign["url"] = json!("https://tracker.example/pixel.png");
    jade.send(
        json!({"type": "send", "client_msg_id": "p2", "conversation_id": conv,
        "content": "", "content_type": "image", "media": foreign}),
    )
    .await?;
    let error = jade.until("error", |_| true).await?;
    ensure!(
        error["field"] == "media.url" && error["client_msg_id"] == "p2",
        "{error}"
    );
    let (_, list) = cluster.get("/v1/chat/conversations?user_id=kim").await?;
    ensure!(
        list["conversations"][0]["last_preview"] == "[image]",
        "{list}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_claim_gap_free_sequence_numbers_once_per_message() -> Result<()> {
    use sixfold_chat::protocol::ContentType;
    use sixfold_chat::storage::{ChatStore, StoredMessage};
    let dir = tempfile::tempdir()?;
    let prefix = unique("seq");
    let raw = sixfold_tests::sqlite_store(dir.path()).await?;
    let store = ChatStore::new(raw.clone(), &prefix);
    let conv = "d-00000000000000000000000000000001";
    let message = |sender: &str, id: usize| StoredMessage {
        seq: 0,
        sender_id: sender.to_owned(),
        client_msg_id: format!("m{id}"),
        sent_at_ms: now_ms(),
        content: format!("{sender} {id}"),
        content_type: ContentType::Text,
        media: None,
    };
    // Two writers (say, the main lane and a retry lane) each append 40 messages, and each
    // message is appended twice (a redelivery).
    let mut writers = Vec::new();
    for sender in ["u1", "u2"] {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for id in 0..40 {
                for _ in 0..2 {
                    seqs.push(store.append(conv, message(sender, id)).await?.message.seq);
                }
            }
            anyhow::Ok(seqs)
        }));
    }
    for writer in writers {
        let seqs = writer.await??;
        ensure!(
            seqs.chunks(2).all(|pair| pair[0] == pair[1]),
            "a redelivery got a new number"
        );
        ensure!(
            seqs.windows(2).all(|w| w[0] <= w[1]),
            "one writer's numbers went back"
        );
    }
    let stored = store.messages_after(conv, 0, 1000).await?;
    let seqs: Vec<u64> = stored.iter().map(|m| m.seq).collect();
    ensure!(
        seqs == (1..=80).collect::<Vec<u64>>(),
        "not 1..=80 without gaps: {seqs:?}"
    );
    let mut keys: Vec<(String, String)> = stored
        .iter()
        .map(|m| (m.sender_id.clone(), m.client_msg_id.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    ensure!(keys.len() == 80, "a message was stored twice");
    ensure!(store.last_seq(conv).await? == 80);

    // A writer that stored a row but failed before its idempotency key, overtaken by another
    // message, then retried: the retry finds its first number instead of taking a second one.
    let lost = StoredMessage {
        seq: 81,
        ..message("u3", 1)
    };
    raw.kv()
        .put(
            &format!("{prefix}.messages:{conv}"),
            &format!("{:020}", 81),
            serde_json::to_vec(&lost)?,
        )
        .await?;
    ensure!(store.append(conv, message("u4", 1)).await?.message.seq == 82);
    let retried = store.append(conv, message("u3", 1)).await?;
    ensure!(
        retried.message.seq == 81 && !retried.new,
        "retry got {retried:?}"
    );
    ensure!(store.last_seq(conv).await? == 82);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_members_and_roles_follow_the_rules() -> Result<()> {
    let cluster = Cluster::start(|_| {}).await?;
    let (status, group) = cluster
        .post(
            "/v1/chat/conversations",
            json!({"members": ["olga", "pete", "quinn"], "name": "team"}),
        )
        .await?;
    ensure!(
        status == StatusCode::CREATED && group["kind"] == "group",
        "{group}"
    );
    let conv = group["conversation_id"].as_str().context("id")?.to_owned();
    let roles = |view: &Value| -> BTreeMap<String, String> {
        view["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|m| {
                        (
                            m["user_id"].as_str().unwrap_or("").to_owned(),
                            m["role"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    ensure!(roles(&group)["olga"] == "owner" && roles(&group)["pete"] == "member");
    let members = format!("/v1/chat/conversations/{conv}/members");
    let put = |path: String, body: Value| {
        cluster
            .http
            .put(format!("{}{path}", cluster.a.base))
            .bearer_auth(CHAT_TEST_KEY)
            .json(&body)
            .send()
    };
    let delete = |path: String| {
        cluster
            .http
            .delete(format!("{}{path}", cluster.a.base))
            .bearer_auth(CHAT_TEST_KEY)
            .send()
    };
    // A plain member may not add; the owner makes pete an admin, who then may.
    let (status, body) = cluster
        .post(&members, json!({"actor_id": "pete", "user_id": "rosa"}))
        .await?;
    ensure!(
        status == StatusCode::FORBIDDEN && body["error"] == "forbidden",
        "{body}"
    );
    let response = put(
        format!("{members}/pete"),
        json!({"actor_id": "olga", "role": "admin"}),
    )
    .await?;
    ensure!(response.status() == StatusCode::OK, "{}", response.status());
    let (status, body) = cluster
        .post(&members, json!({"actor_id": "pete", "user_id": "rosa"}))
        .await?;
    ensure!(
        status == StatusCode::OK && roles(&body)["rosa"] == "member",
        "{status} {body}"
    );
    let (status, _) = cluster
        .post(&members, json!({"actor_id": "pete", "user_id": "rosa"}))
        .await?;
    ensure!(status == StatusCode::CONFLICT);
    // Nobody removes the owner; an admin removes a member; a member leaves by themself.
    let response = delete(format!("{members}/olga?actor_id=pete")).await?;
    ensure!(response.status() == StatusCode::FORBIDDEN);
    let response = delete(format!("{members}/quinn?actor_id=pete")).await?;
    ensure!(response.status() == StatusCode::OK, "{}", response.status());
    let response = delete(format!("{members}/rosa?actor_id=rosa")).await?;
    ensure!(response.status() == StatusCode::OK);
    // Ownership moves by transfer only; the old owner stays as an admin.
    let response = put(
        format!("/v1/chat/conversations/{conv}/owner"),
        json!({"actor_id": "olga", "user_id": "pete"}),
    )
    .await?;
    ensure!(response.status() == StatusCode::OK);
    let (_, view) = cluster
        .get(&format!("/v1/chat/conversations/{conv}"))
        .await?;
    ensure!(
        roles(&view)
            == BTreeMap::from([
                ("olga".into(), "admin".into()),
                ("pete".into(), "owner".into())
            ]),
        "{view}"
    );
    // A removed member's socket can no longer post into the group.
    let base = cluster.a.base.clone();
    let mut quinn = cluster.connect(&base, "quinn").await?;
    quinn.send_text(&conv, "q1", "still here?").await?;
    ensure!(quinn.until("error", |_| true).await?["code"] == "not_member");
    Ok(())
}
