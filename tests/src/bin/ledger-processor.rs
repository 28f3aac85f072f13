//! The ledger test processor as its own process, so a test can SIGKILL it mid-stream.
//!
//! Configured by environment: `LEDGER_NAME` (processor name and consumer group), `LEDGER_TOPIC`,
//! `LEDGER_REGISTRY_URL`, `LEDGER_PREFIX` (Redis keys and store namespace), `LEDGER_SQLITE`
//! (store file), `LEDGER_DELAY_MS`, `LEDGER_INSTANCE`, plus `SIXFOLD__KAFKA__BROKERS` and
//! `SIXFOLD__REDIS__URL`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use sixfold_runtime::codec::AvroCodec;
use sixfold_runtime::consumer::RuntimeContext;
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::producer::Producer;
use sixfold_runtime::telemetry::{LogSettings, init};
use sixfold_runtime::{ProcessorConfig, run_processor, shutdown};
use sixfold_store::StoreSettings;
use sixfold_tests::ledger::{LedgerKeys, LedgerProcessor};

fn var(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

#[tokio::main]
async fn main() -> Result<()> {
    init(&LogSettings::default());
    let kafka = sixfold_tests::kafka();
    let metrics = Metrics::new();
    let store = sixfold_store::connect(&StoreSettings {
        sqlite_path: var("LEDGER_SQLITE")?.into(),
        ..StoreSettings::default()
    })
    .await?;
    let redis = redis::Client::open(sixfold_tests::redis_url())?;
    let redis = redis::aio::ConnectionManager::new(redis).await?;
    let processor = LedgerProcessor::new(
        redis,
        store,
        LedgerKeys::new(&var("LEDGER_PREFIX")?),
        &var("LEDGER_INSTANCE")?,
        Duration::from_millis(var("LEDGER_DELAY_MS")?.parse()?),
    );
    let context = RuntimeContext {
        codec: Arc::new(AvroCodec::new(&var("LEDGER_REGISTRY_URL")?)?),
        producer: Producer::new(&kafka, metrics.clone())?,
        kafka,
        metrics,
    };
    let config = ProcessorConfig {
        name: var("LEDGER_NAME")?,
        topics: vec![var("LEDGER_TOPIC")?],
        retry_delays: vec![],
        ..ProcessorConfig::default()
    };
    run_processor(Arc::new(processor), config, context, shutdown::on_signal()).await?;
    Ok(())
}
