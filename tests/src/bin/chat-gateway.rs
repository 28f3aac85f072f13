//! A chat gateway node as its own process, so a test can SIGKILL it (no goodbye: its registry
//! entries stay until they expire).
//!
//! Configured by environment: `CHAT_PREFIX` (topics and keys, see
//! `sixfold_tests::chat::test_settings`), `CHAT_GATEWAY_ID`, `CHAT_LISTEN` (address),
//! `CHAT_SQLITE` (store file), `CHAT_MEDIA_DIR`, `CHAT_REGISTRY_URL`, plus
//! `SIXFOLD__KAFKA__BROKERS` and `SIXFOLD__REDIS__URL`.

use anyhow::{Context, Result};
use sixfold_runtime::shutdown;
use sixfold_runtime::telemetry::{LogSettings, init};
use sixfold_tests::chat::{ChatNode, test_settings};

fn var(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

#[tokio::main]
async fn main() -> Result<()> {
    init(&LogSettings::default());
    let mut settings = test_settings(&var("CHAT_PREFIX")?, var("CHAT_MEDIA_DIR")?.as_ref());
    settings.gateway_id = var("CHAT_GATEWAY_ID")?;
    let listener = tokio::net::TcpListener::bind(var("CHAT_LISTEN")?).await?;
    let sqlite = var("CHAT_SQLITE")?;
    let node = ChatNode::start(
        listener,
        settings,
        sqlite.as_ref(),
        &var("CHAT_REGISTRY_URL")?,
        std::env::var("CHAT_REDIS_CLUSTER").is_ok_and(|v| v == "1"),
    )
    .await?;
    shutdown::on_signal().cancelled().await;
    drop(node);
    Ok(())
}
