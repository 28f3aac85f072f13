//! `sixfold bench chat`: end-to-end delivery latency (a sender's `send` frame → the recipient's
//! socket) at stepped message rates, over real WebSockets to a gateway served in this process,
//! with the chat processor, broker, Redis and store of the configured settings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::run_processor;
use sixfold_runtime::shutdown::CancellationToken;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::settings::Settings;
use crate::{Clients, Systems, serve_ingress};

const BENCH_KEY: &str = "sixfold-bench-chat-key";
/// How long after a step's last send its deliveries may still arrive.
const DRAIN: Duration = Duration::from_secs(10);

/// Latencies of the current step, by step number (older steps' late arrivals are dropped).
struct Recorder {
    step: AtomicU64,
    latencies_ms: Mutex<Vec<f64>>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Runs the benchmark and prints one line per step:
/// `direct <msgs/s> <sent> <expected deliveries> <delivered> <p50 ms> <p99 ms> <max ms>` for
/// `pairs` 1:1 conversations (one sender each) at each rate of `rates`, then
/// `group <msgs/s> <deliveries/s> <expected> <delivered> <p50> <p99> <max>` for one group of
/// `group` members (one sender) at each rate of `group_rates`.
pub async fn chat(
    settings: &Settings,
    pairs: usize,
    group: usize,
    rates: &[u64],
    group_rates: &[u64],
    seconds: u64,
) -> Result<()> {
    let shutdown = CancellationToken::new();
    let mut settings = settings.clone();
    let free = std::net::TcpListener::bind("127.0.0.1:0")?;
    settings.ingress.listen = free.local_addr()?;
    drop(free);
    let base = format!("http://{}", settings.ingress.listen);
    let clients = Arc::new(Clients::connect(&settings, Metrics::new()).await?);
    let systems = Arc::new(Systems::new(&settings, &clients, shutdown.clone())?);
    let chat = systems.chat.clone();
    {
        let (s, c, sys, token) = (
            settings.clone(),
            clients.clone(),
            systems.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move { serve_ingress(&s, &c, &sys, Some(BENCH_KEY), token).await });
    }
    let mut config = sixfold_runtime::topics::Catalog::load(&settings.topics.file)?
        .processor(sixfold_chat::PROCESSOR)
        .context("topics.yaml has no chat processor")?;
    config.topics = chat.input_topics();
    let processor = tokio::spawn(run_processor(
        Arc::new(chat.processor()),
        config,
        clients.context(&settings),
        shutdown.clone(),
    ));
    crate::embedded::wait_until_answers("ingress", settings.ingress.listen).await?;
    let http = reqwest::Client::new();
    let run = std::process::id();
    let recorder = Arc::new(Recorder {
        step: AtomicU64::new(0),
        latencies_ms: Mutex::new(Vec::new()),
    });
    let mut step = 0;
    // Receivers' outbound queues, kept open so their sockets stay up.
    let mut receivers = Vec::new();

    // 1:1 conversations: the first of each pair sends, the second receives.
    let mut senders = Vec::new();
    for i in 0..pairs {
        let (a, b) = (format!("cb{run}a{i}"), format!("cb{run}b{i}"));
        let conv = create(&http, &base, &[&a, &b]).await?;
        senders.push((connect(&http, &base, &a, &recorder).await?, conv));
        receivers.push(connect(&http, &base, &b, &recorder).await?);
    }
    eprintln!("{pairs} pairs connected");
    for &rate in rates {
        step += 1;
        let (sent, delivered, lat) = run_step(&recorder, step, &senders, rate, seconds, 1).await;
        println!(
            "direct {rate} {sent} {sent} {delivered} {:.1} {:.1} {:.1}",
            lat.0, lat.1, lat.2
        );
    }

    // One group: member 0 sends, the others receive.
    let members: Vec<String> = (0..group).map(|i| format!("cb{run}g{i}")).collect();
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    let conv = create(&http, &base, &refs).await?;
    let group_sender = vec![(connect(&http, &base, &members[0], &recorder).await?, conv)];
    for member in &members[1..] {
        receivers.push(connect(&http, &base, member, &recorder).await?);
    }
    eprintln!("group of {group} connected");
    let fan = (group - 1) as u64;
    for &rate in group_rates {
        step += 1;
        let (sent, delivered, lat) =
            run_step(&recorder, step, &group_sender, rate, seconds, fan).await;
        println!(
            "group {rate} {} {} {delivered} {:.1} {:.1} {:.1}",
            rate * fan,
            sent * fan,
            lat.0,
            lat.1,
            lat.2
        );
    }
    drop(receivers);
    shutdown.cancel();
    let _ = processor.await;
    Ok(())
}

/// Sends at `rate` messages/s for `seconds`, round-robin over `senders`, then waits for the
/// deliveries (`fan` per message). Returns (sent, delivered, (p50, p99, max) ms).
async fn run_step(
    recorder: &Recorder,
    step: u64,
    senders: &[(mpsc::Sender<String>, String)],
    rate: u64,
    seconds: u64,
    fan: u64,
) -> (u64, u64, (f64, f64, f64)) {
    recorder.step.store(step, Ordering::SeqCst);
    recorder
        .latencies_ms
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    let started = Instant::now();
    let total = rate * seconds;
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    while sent < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while sent < due {
            let (outbound, conv) = &senders[(sent as usize) % senders.len()];
            let frame = json!({"type": "send", "client_msg_id": format!("s{step}-{sent}"),
                "conversation_id": conv, "content": format!("{step} {}", now_us()),
                "content_type": "text"});
            let _ = outbound.send(frame.to_string()).await;
            sent += 1;
        }
    }
    let expected = sent * fan;
    let deadline = Instant::now() + DRAIN;
    loop {
        let got = recorder
            .latencies_ms
            .lock()
            .map(|l| l.len() as u64)
            .unwrap_or(0);
        if got >= expected || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut latencies = recorder
        .latencies_ms
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    latencies.sort_by(f64::total_cmp);
    if latencies.is_empty() {
        return (sent, 0, (f64::NAN, f64::NAN, f64::NAN));
    }
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    (
        sent,
        latencies.len() as u64,
        (pick(0.5), pick(0.99), latencies[latencies.len() - 1]),
    )
}

async fn create(http: &reqwest::Client, base: &str, members: &[&str]) -> Result<String> {
    let response = http
        .post(format!("{base}/v1/chat/conversations"))
        .bearer_auth(BENCH_KEY)
        .json(&json!({ "members": members }))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        bail!("create conversation: {status} {body}");
    }
    Ok(body["conversation_id"]
        .as_str()
        .context("conversation id")?
        .to_owned())
}

/// Opens a socket for `user`; returns its outbound queue. Every `message` frame it receives
/// is timed into `recorder`.
async fn connect(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    recorder: &Arc<Recorder>,
) -> Result<mpsc::Sender<String>> {
    let response = http
        .post(format!("{base}/v1/chat/tokens"))
        .bearer_auth(BENCH_KEY)
        .json(&json!({ "user_id": user }))
        .send()
        .await?;
    let body: Value = response.json().await?;
    let token = body["token"].as_str().context("token")?;
    let url = format!(
        "{}/v1/chat/ws?token={token}",
        base.replace("http://", "ws://")
    );
    let (socket, _) = tokio_tungstenite::connect_async(url).await?;
    let (mut sink, mut stream) = socket.split();
    let (outbound, mut queue) = mpsc::channel::<String>(4096);
    tokio::spawn(async move {
        while let Some(text) = queue.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
    });
    let recorder = recorder.clone();
    tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            record(&recorder, text.as_str());
        }
    });
    Ok(outbound)
}

/// Times a `message` frame whose content is `<step> <sent at, µs since the epoch>`.
fn record(recorder: &Recorder, text: &str) {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if frame["type"] != "message" {
        return;
    }
    let Some((step, sent_us)) = frame["content"]
        .as_str()
        .and_then(|c| c.split_once(' '))
        .and_then(|(s, t)| Some((s.parse::<u64>().ok()?, t.parse::<u64>().ok()?)))
    else {
        return;
    };
    if step != recorder.step.load(Ordering::SeqCst) {
        return;
    }
    let latency = now_us().saturating_sub(sent_us) as f64 / 1000.0;
    if let Ok(mut latencies) = recorder.latencies_ms.lock() {
        latencies.push(latency);
    }
}
