//! The notification provider stand-ins as one process for `make run`: APNs, FCM, Twilio and
//! SMTP on fixed loopback ports, with development credentials generated at every start.
//!
//! Configured by environment:
//! - `STANDINS_APNS_ADDR` (default `127.0.0.1:18401`), `STANDINS_FCM_ADDR` (`127.0.0.1:18402`),
//!   `STANDINS_TWILIO_ADDR` (`127.0.0.1:18403`), `STANDINS_SMTP_ADDR` (`127.0.0.1:2525`);
//! - `STANDINS_MAILBOX` (`var/mailbox`): where received emails are written as `.eml` files;
//! - `STANDINS_DIR` (`var/standins`): where the credentials go;
//! - `STANDINS_APNS_TOPIC` (`dev.sixfold.app`) and `STANDINS_FCM_PROJECT_ID` (`sixfold-dev`).
//!
//! Files written to `STANDINS_DIR`:
//! - `apns-key.p8`: a fresh P-256 key (PKCS#8 PEM) like Apple's, for key id `DEVKEY0001` and
//!   team id `DEVTEAM001`;
//! - `fcm-service-account.json`: a Google service-account key file with a fresh RSA key and a
//!   `token_uri` at the FCM stand-in;
//! - `twilio.env`: the account SID, auth token and sender number (fixed development values
//!   unless `STANDINS_TWILIO_SID` / `STANDINS_TWILIO_TOKEN` say otherwise);
//! - `standins.env`: `SIXFOLD__NOTIFY__...` overrides that point the `notify.apns`,
//!   `notify.fcm`, `notify.sms` and `notify.email` settings at the stand-ins
//!   (`set -a; . var/standins/standins.env; set +a`).
//!
//! Prints one line per stand-in with its URL, then runs until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;
use sixfold_runtime::shutdown;
use sixfold_runtime::telemetry::{LogSettings, init};
use sixfold_tests::standins::apns::{ApnsConfig, ApnsStandIn};
use sixfold_tests::standins::credentials;
use sixfold_tests::standins::fcm::{FcmConfig, FcmStandIn};
use sixfold_tests::standins::smtp::{SmtpConfig, SmtpStandIn};
use sixfold_tests::standins::twilio::{TwilioConfig, TwilioStandIn};

/// APNs key id of the development key.
/// Development Twilio account SID (`STANDINS_TWILIO_SID` overrides it).
const DEV_TWILIO_SID: &str = "AC00000000000000000000000000000000";
/// Development Twilio auth token (`STANDINS_TWILIO_TOKEN` overrides it).
const DEV_TWILIO_TOKEN: &str = "sixfold-dev-twilio-token";
const APNS_KEY_ID: &str = "DEVKEY0001";
/// APNs team id of the development key.
const APNS_TEAM_ID: &str = "DEVTEAM001";
/// Sender number of the development Twilio account (Twilio's "valid" magic test number).
const TWILIO_FROM: &str = "+15005550006";

/// The value of `name`, or `default` when it is unset or empty.
fn setting(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The socket address in `name`, or `default`.
fn address(name: &str, default: &str) -> Result<SocketAddr> {
    let value = setting(name, default);
    value
        .parse()
        .with_context(|| format!("{name}={value:?} is not a socket address like 127.0.0.1:8080"))
}

/// Writes `contents` to `path`, readable by the owner only (it holds a key or a token).
fn write_secret(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[tokio::main]
async fn main() -> Result<()> {
    init(&LogSettings::default());
    let dir = std::path::absolute(setting("STANDINS_DIR", "var/standins"))
        .context("resolving STANDINS_DIR")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mailbox = std::path::absolute(setting("STANDINS_MAILBOX", "var/mailbox"))
        .context("resolving STANDINS_MAILBOX")?;
    let mut overrides = vec!["# Written by notify-standins; valid until it restarts.".to_owned()];

    let topic = setting("STANDINS_APNS_TOPIC", "dev.sixfold.app");
    let apns_key = credentials::apns_key()?;
    let apns = ApnsStandIn::start_at(
        address("STANDINS_APNS_ADDR", "127.0.0.1:18401")?,
        ApnsConfig {
            bundle_id: topic.clone(),
            key_id: APNS_KEY_ID.into(),
            team_id: APNS_TEAM_ID.into(),
            public_key_pem: apns_key.public_pem.clone(),
        },
    )
    .await
    .context("starting the APNs stand-in")?;
    let apns_key_path = dir.join("apns-key.p8");
    write_secret(&apns_key_path, &apns_key.private_pem)?;
    overrides.extend([
        format!("SIXFOLD__NOTIFY__APNS__ENDPOINT={}", apns.url()),
        format!("SIXFOLD__NOTIFY__APNS__TOPIC={topic}"),
        format!("SIXFOLD__NOTIFY__APNS__KEY_ID={APNS_KEY_ID}"),
        format!("SIXFOLD__NOTIFY__APNS__TEAM_ID={APNS_TEAM_ID}"),
        format!(
            "SIXFOLD__NOTIFY__APNS__KEY_PATH={}",
            apns_key_path.display()
        ),
    ]);

    let project_id = setting("STANDINS_FCM_PROJECT_ID", "sixfold-dev");
    let client_email = format!("notify@{project_id}.iam.gserviceaccount.com");
    let fcm_key = credentials::service_account_key()?;
    let fcm = FcmStandIn::start_at(
        address("STANDINS_FCM_ADDR", "127.0.0.1:18402")?,
        FcmConfig {
            project_id: project_id.clone(),
            client_email: client_email.clone(),
            public_key_pem: fcm_key.public_pem.clone(),
        },
    )
    .await
    .context("starting the FCM stand-in")?;
    let service_account = json!({
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": uuid::Uuid::new_v4().simple().to_string(),
        "private_key": fcm_key.private_pem,
        "client_email": client_email,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": fcm.token_uri(),
        "universe_domain": "googleapis.com",
    });
    let service_account_path = dir.join("fcm-service-account.json");
    write_secret(
        &service_account_path,
        &serde_json::to_string_pretty(&service_account)?,
    )?;
    overrides.extend([
        format!("SIXFOLD__NOTIFY__FCM__ENDPOINT={}", fcm.url()),
        format!("SIXFOLD__NOTIFY__FCM__PROJECT_ID={project_id}"),
        format!(
            "SIXFOLD__NOTIFY__FCM__SERVICE_ACCOUNT_PATH={}",
            service_account_path.display()
        ),
    ]);

    // Fixed development credentials (config/development.yaml uses them); override by env.
    let account_sid = setting("STANDINS_TWILIO_SID", DEV_TWILIO_SID);
    let auth_token = setting("STANDINS_TWILIO_TOKEN", DEV_TWILIO_TOKEN);
    let twilio = TwilioStandIn::start_at(
        address("STANDINS_TWILIO_ADDR", "127.0.0.1:18403")?,
        TwilioConfig {
            account_sid: account_sid.clone(),
            auth_token: auth_token.clone(),
            from_numbers: vec![TWILIO_FROM.into()],
        },
    )
    .await
    .context("starting the Twilio stand-in")?;
    let twilio_env = [
        format!("SIXFOLD__NOTIFY__SMS__ENDPOINT={}", twilio.url()),
        format!("SIXFOLD__NOTIFY__SMS__ACCOUNT_SID={account_sid}"),
        format!("SIXFOLD__NOTIFY__SMS__AUTH_TOKEN={auth_token}"),
        format!("SIXFOLD__NOTIFY__SMS__FROM={TWILIO_FROM}"),
    ];
    write_secret(&dir.join("twilio.env"), &(twilio_env.join("\n") + "\n"))?;
    overrides.extend(twilio_env);

    let smtp = SmtpStandIn::start_at(
        address("STANDINS_SMTP_ADDR", "127.0.0.1:2525")?,
        SmtpConfig {
            mailbox: Some(mailbox.clone()),
            ..SmtpConfig::default()
        },
    )
    .await
    .context("starting the SMTP stand-in")?;
    overrides.extend([
        format!("SIXFOLD__NOTIFY__EMAIL__HOST={}", smtp.address().ip()),
        format!("SIXFOLD__NOTIFY__EMAIL__PORT={}", smtp.address().port()),
        "SIXFOLD__NOTIFY__EMAIL__TLS=none".to_owned(),
    ]);
    write_secret(&dir.join("standins.env"), &(overrides.join("\n") + "\n"))?;

    println!(
        "apns    {}  topic {topic}, key id {APNS_KEY_ID}, team id {APNS_TEAM_ID}, key {}",
        apns.url(),
        apns_key_path.display()
    );
    println!(
        "fcm     {}  project {project_id}, service account {}",
        fcm.url(),
        service_account_path.display()
    );
    println!(
        "twilio  {}  account {account_sid}, from {TWILIO_FROM}",
        twilio.url()
    );
    println!("smtp    {}  mailbox {}", smtp.url(), mailbox.display());
    println!(
        "settings for Sixfold: {}",
        dir.join("standins.env").display()
    );

    shutdown::on_signal().cancelled().await;
    drop((apns, fcm, twilio, smtp));
    Ok(())
}
