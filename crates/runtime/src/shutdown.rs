//! Graceful shutdown: one [`CancellationToken`] for the whole process.
//!
//! Every long-running task selects on the token; on cancel a consumer stops fetching, finishes
//! the record in hand, commits its stored offsets and returns.

use std::time::Duration;

pub use tokio_util::sync::CancellationToken;

/// How long a process waits for its tasks after shutdown was requested before it exits anyway.
pub const GRACE_PERIOD: Duration = Duration::from_secs(20);

/// Returns a token that is cancelled on the first SIGTERM or Ctrl-C.
///
/// Must be called inside a Tokio runtime.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        cancel.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops this process");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
