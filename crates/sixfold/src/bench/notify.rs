//! `sixfold bench notify`: notifications per minute and request → delivery latency through
//! the whole notification path in this process (the `notify` processor, the push and email
//! workers) into the provider stand-ins that `notify.apns` and `notify.email` point at.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use sixfold_notify::events::{
    AvroChannel, DeliveryStatus, NotifyRequested, NotifyStatus, Priority,
};
use sixfold_notify::preferences::{Contact, Device, Platform, Preferences};
use sixfold_notify::template::Channel;
use sixfold_notify::workers::{ChannelWorker, Clients as ChannelClients};
use sixfold_runtime::failure::now_ms;
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::run_processor;
use sixfold_runtime::shutdown::CancellationToken;

use crate::settings::Settings;
use crate::{Clients, Systems};

/// Requests in flight at once while producing.
const IN_FLIGHT: usize = 256;

/// Sends `notifications` notifications (push and email each) to `users` users with one iOS
/// device each, all at once or at `rate` per second, and prints `notify <notifications> <deliveries> <seconds> <p50_ms> <p99_ms>
/// <max_ms>`: deliveries are provider-accepted sends, seconds run from the first request to
/// the last delivery, latency from a request's `occurred_at` to its `SENT` status.
/// With `rate`, requests are sent at that many per second (open loop) instead of all at once.
pub async fn notify(
    settings: &Settings,
    users: usize,
    notifications: usize,
    rate: Option<f64>,
) -> Result<()> {
    let shutdown = CancellationToken::new();
    let clients = Clients::connect(settings, Metrics::new()).await?;
    let systems = Systems::new(settings, &clients, shutdown.clone())?;
    let notify = systems.notify.clone();
    let run = std::process::id();
    let user_ids: Vec<String> = (0..users).map(|i| format!("nb{run}u{i}")).collect();
    for (i, user) in user_ids.iter().enumerate() {
        let store = notify.store();
        let prefs = Preferences {
            hourly_limit: 0,
            ..Preferences::default()
        };
        store.put_preferences(user, &prefs).await?;
        let contact = Contact {
            email: Some(format!("{user}@bench.example")),
            phone: None,
        };
        store.put_contact(user, &contact).await?;
        let device = Device {
            device_id: "phone".into(),
            platform: Platform::Ios,
            push_token: format!("{i:064x}"),
            app_version: None,
        };
        store.put_device(user, &device).await?;
    }

    // Statuses, read from now on.
    let mut config = settings.kafka.client_config();
    config
        .set("group.id", format!("bench-notify-{run}"))
        .set("auto.offset.reset", "latest")
        .set("enable.auto.commit", "false");
    let statuses: StreamConsumer = config.create()?;
    statuses.subscribe(&[notify.settings().status_topic.as_str()])?;
    wait_for_assignment(&statuses).await?;

    let catalog = sixfold_runtime::topics::Catalog::load(&settings.topics.file)?;
    let mut tasks = Vec::new();
    let mut processor = catalog
        .processor(sixfold_notify::PROCESSOR)
        .context("topics.yaml has no notify processor")?;
    processor.topics = notify.input_topics();
    tasks.push(tokio::spawn(run_processor(
        Arc::new(sixfold_notify::NotifyProcessor::new(notify.clone())),
        processor,
        clients.context(settings),
        shutdown.clone(),
    )));
    let channel_clients = Arc::new(ChannelClients::from_settings(&settings.notify).await);
    for channel in [Channel::Push, Channel::Email] {
        let worker = ChannelWorker::new(notify.clone(), channel_clients.clone(), channel);
        let mut config = catalog
            .processor(&ChannelWorker::name(channel))
            .context("topics.yaml has no worker")?;
        config.topics = vec![worker.input_topic()];
        tasks.push(tokio::spawn(run_processor(
            Arc::new(worker),
            config,
            clients.context(settings),
            shutdown.clone(),
        )));
    }

    let started = Instant::now();
    let sent_at: HashMap<String, i64> = futures::stream::iter(0..notifications)
        .map(|i| {
            let notify = notify.clone();
            let user = user_ids[i % users].clone();
            let due = rate.map(|rate| started + Duration::from_secs_f64(i as f64 / rate));
            async move {
                if let Some(due) = due {
                    tokio::time::sleep_until(due.into()).await;
                }
                let request = NotifyRequested {
                    event_id: uuid::Uuid::new_v4().to_string(),
                    occurred_at: now_ms(),
                    notification_id: format!("nb{run}-{i}"),
                    user_id: user,
                    template_id: "welcome".into(),
                    channels: vec![AvroChannel::Push, AvroChannel::Email],
                    data: BTreeMap::from([("name".to_owned(), "Bench".to_owned())]),
                    priority: Priority::Normal,
                    send_at: None,
                    locale: None,
                };
                notify.enqueue(&request).await?;
                anyhow::Ok((request.notification_id, request.occurred_at))
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;

    let expected = notifications * 2;
    let mut latencies = Vec::with_capacity(expected);
    let mut failed = 0;
    let mut stream = statuses.stream();
    let deadline = Duration::from_secs(600);
    while latencies.len() + failed < expected {
        let next = tokio::time::timeout(deadline.saturating_sub(started.elapsed()), stream.next())
            .await
            .with_context(|| format!("{} of {expected} deliveries", latencies.len()))?;
        let Some(message) = next else {
            bail!("status stream ended")
        };
        let message = message?;
        let value = clients.codec.decode(message.payload()).await?;
        let status: NotifyStatus = apache_avro::from_value(&value)?;
        let Some(requested) = sent_at.get(&status.notification_id) else {
            continue;
        };
        match status.status {
            DeliveryStatus::Sent => latencies.push((status.occurred_at - requested) as f64),
            DeliveryStatus::Failed => failed += 1,
            _ => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if failed > 0 {
        bail!("{failed} of {expected} deliveries failed");
    }
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "notify {notifications} {} {seconds:.3} {:.1} {:.1} {:.1}",
        latencies.len(),
        pick(0.5),
        pick(0.99),
        latencies[latencies.len() - 1]
    );
    shutdown.cancel();
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}

async fn wait_for_assignment(consumer: &StreamConsumer) -> Result<()> {
    let started = Instant::now();
    loop {
        // Polling drives the group join; nothing is produced yet, so nothing is lost.
        let _ = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await;
        if consumer
            .assignment()
            .map(|a| a.count() > 0)
            .unwrap_or(false)
        {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the status consumer got no partitions");
        }
    }
}
