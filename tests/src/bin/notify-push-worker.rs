//! The notification push worker as its own process, so a test can SIGKILL it in the middle of
//! a batch (no goodbye: the batch's offsets are not committed, and its records come back).
//!
//! Configured by environment: `NOTIFY_PREFIX` (store namespace and topics `<prefix>.push`,
//! `<prefix>.status`, …, as the integration test names them), `NOTIFY_GROUP` (consumer group),
//! `NOTIFY_SQLITE` (store file), `NOTIFY_REGISTRY_URL`, `NOTIFY_APNS_ENDPOINT`,
//! `NOTIFY_APNS_KEY_PATH` (the team's `.p8` key; key id `TESTKEY001`, team `TESTTEAM01`, topic
//! `dev.sixfold.app`), plus `SIXFOLD__KAFKA__BROKERS`.

use std::sync::Arc;

use anyhow::{Context, Result};
use sixfold_notify::channels::{ApnsClient, ApnsSettings};
use sixfold_notify::template::Channel;
use sixfold_notify::workers::{ChannelWorker, Clients};
use sixfold_notify::{Notify, NotifyDeps, NotifySettings};
use sixfold_ratelimit::RateLimiter;
use sixfold_runtime::codec::AvroCodec;
use sixfold_runtime::consumer::RuntimeContext;
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::producer::Producer;
use sixfold_runtime::telemetry::{LogSettings, init};
use sixfold_runtime::{ProcessorConfig, run_processor, shutdown};
use sixfold_store::StoreSettings;
use sixfold_tests::kafka;

fn var(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

#[tokio::main]
async fn main() -> Result<()> {
    init(&LogSettings::default());
    let prefix = var("NOTIFY_PREFIX")?;
    let settings = NotifySettings {
        templates_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../templates").into(),
        namespace: prefix.clone(),
        requested_topic: format!("{prefix}.requested"),
        push_topic: format!("{prefix}.push"),
        email_topic: format!("{prefix}.email"),
        sms_topic: format!("{prefix}.sms"),
        status_topic: format!("{prefix}.status"),
        ..NotifySettings::default()
    };
    let store = sixfold_store::connect(&StoreSettings {
        sqlite_path: var("NOTIFY_SQLITE")?.into(),
        ..StoreSettings::default()
    })
    .await?;
    let metrics = Metrics::new();
    let producer = Producer::new(&kafka(), metrics.clone())?;
    let codec = Arc::new(AvroCodec::new(&var("NOTIFY_REGISTRY_URL")?)?);
    let shutdown = shutdown::on_signal();
    let notify = Notify::new(
        settings,
        NotifyDeps {
            store,
            limiter: RateLimiter::disabled(),
            producer: producer.clone(),
            codec: codec.clone(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
        },
    )?;
    let clients = Clients {
        apns: Some(ApnsClient::new(&ApnsSettings {
            endpoint: var("NOTIFY_APNS_ENDPOINT")?,
            topic: "dev.sixfold.app".into(),
            key_id: "TESTKEY001".into(),
            team_id: "TESTTEAM01".into(),
            key_path: var("NOTIFY_APNS_KEY_PATH")?.into(),
            ..ApnsSettings::default()
        })?),
        fcm: None,
        email: None,
        sms: None,
    };
    let worker = ChannelWorker::new(notify, Arc::new(clients), Channel::Push);
    let config = ProcessorConfig {
        name: var("NOTIFY_GROUP")?,
        topics: vec![worker.input_topic()],
        retry_delays: vec![],
        ..ProcessorConfig::default()
    };
    let context = RuntimeContext {
        kafka: kafka(),
        codec,
        producer,
        metrics,
    };
    run_processor(Arc::new(worker), config, context, shutdown).await?;
    Ok(())
}
