//! Child processes of `sixfold run`: the broker, Redis and (for development) the notification
//! providers' stand-ins, started only when nothing answers at their configured addresses,
//! stopped when `sixfold run` stops.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

use crate::settings::Settings;

/// How long a child gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Processes started by `sixfold run`; dropping this kills them.
#[derive(Default)]
pub struct Children {
    children: Vec<(String, Child)>,
}

impl Children {
    /// Stops every child, waiting briefly for each.
    pub async fn stop(mut self) {
        for (name, child) in &mut self.children {
            if let Some(pid) = child.id() {
                // SIGTERM first so the broker and Redis flush; SIGKILL via kill_on_drop after.
                let _ = std::process::Command::new("kill")
                    .arg(pid.to_string())
                    .status();
            }
            match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                Ok(_) => tracing::info!(child = %name, "stopped"),
                Err(_) => tracing::warn!(child = %name, "did not stop in time; killing"),
            }
        }
    }
}

/// Starts the broker and Redis if they are not already answering.
pub async fn start_missing(settings: &Settings) -> Result<Children> {
    let mut children = Children::default();
    let data = &settings.embedded.data_dir;
    let broker = first_address(&settings.kafka.brokers)?;
    if settings.embedded.start_broker && !answers(broker).await {
        let dir = data.join("broker");
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let bin = broker_bin(settings.embedded.broker_bin.as_deref())?;
        let listener = format!("tcp://{broker}");
        let mut command = Command::new(&bin);
        // tansu resolves `sqlite://` paths against its working directory, even absolute ones.
        command.current_dir(&dir);
        command.args([
            "broker",
            "--listener-url",
            &listener,
            "--advertised-listener-url",
            &listener,
            "--storage-engine",
            "sqlite://tansu.db",
        ]);
        let log = dir.join("broker.log");
        children.spawn("broker", command, &log)?;
        wait_until_answers("broker", broker).await?;
    }
    // A Redis Cluster is never started here: it is there, or the connection fails clearly.
    let redis = redis_address(&settings.redis.url)?;
    if settings.embedded.start_redis && !settings.redis.cluster_mode() && !answers(redis).await {
        let dir = data.join("redis");
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let mut command = Command::new(&settings.embedded.redis_bin);
        command.args([
            "--bind",
            &redis.ip().to_string(),
            "--port",
            &redis.port().to_string(),
            "--dir",
            &absolute(&dir)?.display().to_string(),
            "--appendonly",
            "yes",
            "--save",
            "",
        ]);
        children.spawn("redis", command, &dir.join("redis.log"))?;
        wait_until_answers("redis", redis).await?;
    }
    if settings.embedded.start_standins
        && let Some(email) = &settings.notify.email
    {
        let smtp = format!("{}:{}", email.host, email.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .with_context(|| format!("resolve notify.email {}:{}", email.host, email.port))?;
        if !answers(smtp).await {
            let dir = data.join("standins");
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            let bin = match &settings.embedded.standins_bin {
                Some(bin) => bin.clone(),
                None => std::env::current_exe()
                    .context("locate this binary")?
                    .with_file_name("notify-standins"),
            };
            let mut command = Command::new(&bin);
            command
                .env("STANDINS_DIR", absolute(&dir)?)
                .env("STANDINS_MAILBOX", absolute(&data.join("mailbox"))?)
                .env("STANDINS_SMTP_ADDR", smtp.to_string());
            children.spawn("notify stand-ins", command, &dir.join("standins.log"))?;
            wait_until_answers("notify stand-ins", smtp).await?;
        }
    }
    Ok(children)
}

impl Children {
    fn spawn(&mut self, name: &str, mut command: Command, log: &Path) -> Result<()> {
        let file =
            std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
        let child = command
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {name} ({:?})", command.as_std().get_program()))?;
        tracing::info!(child = name, log = %log.display(), "started");
        self.children.push((name.to_string(), child));
        Ok(())
    }
}

fn broker_bin(configured: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = configured {
        return Ok(path.to_path_buf());
    }
    if let Some(home) = std::env::var_os("HOME") {
        let cached = PathBuf::from(home).join(".cache/sixfold/tansu/bin/tansu");
        if cached.exists() {
            return Ok(cached);
        }
    }
    // Fall back to PATH; spawning reports a clear error if it is not there either.
    Ok(PathBuf::from("tansu"))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolve {}", path.display()))
}

/// The first `host:port` of a comma-separated broker list.
pub fn first_address(brokers: &str) -> Result<SocketAddr> {
    let first = brokers.split(',').next().unwrap_or_default().trim();
    first
        .to_socket_addrs()
        .with_context(|| format!("resolve broker address {first:?}"))?
        .next()
        .with_context(|| format!("broker address {first:?} resolves to nothing"))
}

/// `host:port` of a `redis://` URL.
pub fn redis_address(url: &str) -> Result<SocketAddr> {
    let rest = url
        .strip_prefix("redis://")
        .with_context(|| format!("redis url {url:?} must start with redis://"))?;
    let host_port = rest.split('/').next().unwrap_or_default();
    let host_port = host_port.rsplit('@').next().unwrap_or_default();
    let with_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:6379")
    };
    with_port
        .to_socket_addrs()
        .with_context(|| format!("resolve redis address {with_port:?}"))?
        .next()
        .with_context(|| format!("redis address {with_port:?} resolves to nothing"))
}

/// Whether something accepts TCP connections at `address`.
pub async fn answers(address: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(address)
        )
        .await,
        Ok(Ok(_))
    )
}

/// Waits until `address` accepts connections, or fails after [`START_TIMEOUT`].
pub async fn wait_until_answers(name: &str, address: SocketAddr) -> Result<()> {
    let started = Instant::now();
    while !answers(address).await {
        if started.elapsed() > START_TIMEOUT {
            bail!("{name} did not start listening on {address} within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        assert_eq!(
            first_address("127.0.0.1:9092,127.0.0.1:9093").unwrap(),
            "127.0.0.1:9092".parse().unwrap()
        );
        assert_eq!(
            redis_address("redis://127.0.0.1/0").unwrap(),
            "127.0.0.1:6379".parse().unwrap()
        );
        assert_eq!(
            redis_address("redis://:secret@127.0.0.1:7000/").unwrap(),
            "127.0.0.1:7000".parse().unwrap()
        );
        assert!(redis_address("http://x").is_err());
    }
}
