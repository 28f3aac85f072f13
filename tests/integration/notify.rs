//! The notification service's `notify` processor and routes on the real broker, Redis (the
//! frequency cap) and SQLite: rendering per locale, preferences, dedup, quiet hours with the
//! scheduler releasing held sends, the cap, and bad input; the channel workers against the
//! provider stand-ins, and a push worker SIGKILLed in the middle of a batch.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use rdkafka::Message;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sixfold_ingress::{ApiKeyEntry, IngressSettings};
use sixfold_notify::channels::{
    ApnsClient, ApnsSettings, EmailClient, EmailSettings, FcmClient, FcmSettings, SmsClient,
    SmsSettings,
};
use sixfold_notify::events::{
    AvroChannel, DeliveryStatus, NotifyEmail, NotifyPush, NotifyRequested, NotifyStatus, Priority,
};
use sixfold_notify::template::Channel;
use sixfold_notify::workers::{ChannelWorker, Clients};
use sixfold_notify::{Notify, NotifyDeps, NotifySettings};
use sixfold_ratelimit::{RateLimitSettings, RateLimiter};
use sixfold_runtime::codec::AvroCodec;
use sixfold_runtime::consumer::RuntimeContext;
use sixfold_runtime::failure::{dlq_topic, now_ms};
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::producer::Producer;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_runtime::{ProcessorConfig, run_processor};
use sixfold_tests::standins::apns::{ApnsConfig, ApnsScriptedAnswer, ApnsStandIn};
use sixfold_tests::standins::credentials;
use sixfold_tests::standins::fcm::{FcmConfig, FcmStandIn};
use sixfold_tests::standins::smtp::{SmtpConfig, SmtpStandIn};
use sixfold_tests::standins::twilio::{TwilioConfig, TwilioStandIn};
use sixfold_tests::{
    TestRegistry, bind, create_topics, kafka, redis_url, serve_ingress, sqlite_store, unique,
    wait_for,
};

use crate::harness::read_records;

const KEY: &str = "integration-test-key";
const PATIENCE: Duration = Duration::from_secs(30);

struct Service {
    base: String,
    http: reqwest::Client,
    notify: Arc<Notify>,
    codec: Arc<AvroCodec>,
    producer: Producer,
    settings: NotifySettings,
    shutdown: CancellationToken,
    _registry: TestRegistry,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Service {
    async fn start() -> Result<Self> {
        let prefix = unique("notify");
        let dir = tempfile::tempdir()?;
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
        let group = unique("notify-group");
        create_topics(&[
            (&settings.requested_topic, 2),
            (&settings.push_topic, 1),
            (&settings.email_topic, 1),
            (&settings.sms_topic, 1),
            (&settings.status_topic, 1),
            (&dlq_topic(&group), 1),
        ])
        .await?;
        let registry = TestRegistry::start().await?;
        let store = sqlite_store(dir.path()).await?;
        let metrics = Metrics::new();
        let producer = Producer::new(&kafka(), metrics.clone())?;
        let codec = Arc::new(AvroCodec::new(&registry.url)?);
        let rules = dir.path().join("rules.yaml");
        std::fs::write(&rules, "rules: []\n")?;
        let limiter = RateLimiter::new(
            &RateLimitSettings {
                enabled: true,
                rules_file: rules,
                key_prefix: prefix.clone(),
                redis_url: Some(redis_url()),
                ..RateLimitSettings::default()
            },
            metrics.registry(),
        )
        .await?;
        let shutdown = CancellationToken::new();
        let notify = Notify::new(
            settings.clone(),
            NotifyDeps {
                store: store.clone(),
                limiter,
                producer: producer.clone(),
                codec: codec.clone(),
                metrics: metrics.clone(),
                shutdown: shutdown.clone(),
            },
        )?;
        let (listener, base) = bind().await?;
        let ingress = IngressSettings {
            api_keys: vec![ApiKeyEntry {
                name: "tests".into(),
                sha256: sixfold_ingress::auth::digest_hex(KEY),
            }],
            ..IngressSettings::default()
        };
        serve_ingress(
            listener,
            &ingress,
            &registry.url,
            &redis_url(),
            store,
            metrics.clone(),
            RateLimiter::disabled(),
            vec![sixfold_notify::routes::routes(notify.clone())],
            shutdown.clone(),
        )?;
        let config = ProcessorConfig {
            name: group,
            topics: notify.input_topics(),
            retry_delays: vec![],
            ..ProcessorConfig::default()
        };
        let context = RuntimeContext {
            kafka: kafka(),
            codec: codec.clone(),
            producer: producer.clone(),
            metrics,
        };
        tokio::spawn(run_processor(
            Arc::new(sixfold_notify::NotifyProcessor::new(notify.clone())),
            config,
            context,
            shutdown.clone(),
        ));
        Ok(Self {
            base,
            http: reqwest::Client::new(),
            notify,
            codec,
            producer,
            settings,
            shutdown,
            _registry: registry,
            _dir: dir,
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<(StatusCode, Value)> {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// The first `count` records of `topic`, decoded.
    async fn events<T: DeserializeOwned>(&self, topic: &str, count: usize) -> Result<Vec<T>> {
        let mut events = Vec::new();
        for record in read_records(topic, count, PATIENCE).await? {
            let value = self.codec.decode(record.payload()).await?;
            events.push(apache_avro::from_value(&value)?);
        }
        Ok(events)
    }

    async fn user(&self, user: &str, prefs: Value) -> Result<()> {
        let put = reqwest::Method::PUT;
        let (status, body) = self
            .send(put.clone(), &format!("/v1/users/{user}/preferences"), prefs)
            .await?;
        ensure!(status == StatusCode::OK, "preferences: {status} {body}");
        let contact = json!({"email": format!("{user}@example.com"), "phone": "+821012345678"});
        let (status, body) = self
            .send(put, &format!("/v1/users/{user}/contact"), contact)
            .await?;
        ensure!(status == StatusCode::OK, "contact: {status} {body}");
        let device =
            json!({"device_id": "phone-1", "platform": "ios", "push_token": "a".repeat(64)});
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                &format!("/v1/users/{user}/devices"),
                device,
            )
            .await?;
        ensure!(status == StatusCode::CREATED, "device: {status} {body}");
        Ok(())
    }

    async fn request(&self, body: Value) -> Result<(StatusCode, Value)> {
        self.send(reqwest::Method::POST, "/v1/notifications", body)
            .await
    }
}

fn statuses(events: &[NotifyStatus], id: &str) -> Vec<(Option<String>, DeliveryStatus)> {
    let mut found: Vec<(Option<String>, DeliveryStatus)> = events
        .iter()
        .filter(|e| e.notification_id == id)
        .map(|e| (e.channel.map(|c| format!("{c:?}").to_lowercase()), e.status))
        .collect();
    found.sort_by_key(|(c, s)| (c.clone(), format!("{s:?}")));
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_render_per_locale_respect_preferences_and_are_sent_once() -> Result<()> {
    let service = Service::start().await?;
    service.user("minji", json!({"sms": false})).await?;
    let order = json!({"notification_id": "order-1", "user_id": "minji", "template_id": "order_confirmed",
        "channels": ["push", "email", "sms"], "data": {"order_id": "ORD456", "amount": 50000}, "locale": "ko-KR"});
    let (status, body) = service.request(order.clone()).await?;
    ensure!(status == StatusCode::ACCEPTED, "{status} {body}");
    // The same id again is accepted and not sent again.
    let (status, _) = service.request(order).await?;
    ensure!(status == StatusCode::ACCEPTED);

    let s = &service.settings;
    let pushes: Vec<NotifyPush> = service.events(&s.push_topic, 1).await?;
    ensure!(
        pushes[0].body == "주문 ORD456가 확인되었습니다. 금액: 50,000원",
        "{:?}",
        pushes[0]
    );
    let emails: Vec<NotifyEmail> = service.events(&s.email_topic, 1).await?;
    ensure!(emails[0].to == "minji@example.com" && !emails[0].subject.is_empty());
    // push queued, email queued, sms dropped by preference, and the repeat a duplicate.
    let events: Vec<NotifyStatus> = service.events(&s.status_topic, 4).await?;
    let found = statuses(&events, "order-1");
    ensure!(
        found
            == vec![
                (None, DeliveryStatus::Duplicate),
                (Some("email".into()), DeliveryStatus::Queued),
                (Some("push".into()), DeliveryStatus::Queued),
                (Some("sms".into()), DeliveryStatus::DroppedByPreference),
            ],
        "{found:?}"
    );
    ensure!(
        service.notify.outcomes("push", "queued") == 1,
        "pushed twice"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quiet_hours_defer_until_the_window_ends_and_the_scheduler_releases() -> Result<()> {
    let service = Service::start().await?;
    // A quiet window around now, in Seoul time.
    let seoul_hour = ((now_ms() / 3_600_000 + 9) % 24) as u32;
    let start = format!("{:02}:00", (seoul_hour + 23) % 24);
    let end = format!("{:02}:00", (seoul_hour + 2) % 24);
    service
        .user(
            "jun",
            json!({"quiet_hours": {"start": start, "end": end}, "time_zone": "Asia/Seoul"}),
        )
        .await?;
    let (status, body) = service
        .request(
            json!({"notification_id": "late-1", "user_id": "jun", "template_id": "welcome",
            "channels": ["push"], "data": {"name": "Jun"}}),
        )
        .await?;
    ensure!(status == StatusCode::ACCEPTED, "{status} {body}");
    let s = &service.settings;
    let deferred: Vec<NotifyStatus> = service.events(&s.status_topic, 1).await?;
    ensure!(
        deferred[0].status == DeliveryStatus::Deferred,
        "{:?}",
        deferred[0]
    );
    let until = deferred[0].deferred_until.context("deferred_until")?;
    ensure!(
        until > now_ms() && until <= now_ms() + 3 * 3_600_000,
        "until {until}"
    );
    // Nothing is due yet; at the window's end the held send goes back to notify.requested.
    ensure!(service.notify.release_due(now_ms()).await? == 0);
    ensure!(service.notify.release_due(until).await? == 1);
    ensure!(
        service.notify.release_due(until).await? == 0,
        "released twice"
    );
    let requests: Vec<NotifyRequested> = service.events(&s.requested_topic, 2).await?;
    let released = &requests[1];
    ensure!(
        released.notification_id == "late-1" && released.send_at.is_none(),
        "{released:?}"
    );
    // The processor applies it at the window's end (here called with that time, as the
    // processor's clock would read then): sent.
    service.notify.handle(released, until).await?;
    let pushes: Vec<NotifyPush> = service.events(&s.push_topic, 1).await?;
    ensure!(pushes[0].notification_id == "late-1");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_hourly_cap_and_bad_requests() -> Result<()> {
    let service = Service::start().await?;
    service.user("ara", json!({"hourly_limit": 2})).await?;
    for i in 0..3 {
        let (status, _) = service
            .request(json!({"notification_id": format!("w-{i}"), "user_id": "ara", "template_id": "welcome",
                "channels": ["push"], "data": {"name": "Ara"}}))
            .await?;
        ensure!(status == StatusCode::ACCEPTED);
    }
    let events: Vec<NotifyStatus> = service.events(&service.settings.status_topic, 3).await?;
    let limited: Vec<&str> = events
        .iter()
        .filter(|e| e.status == DeliveryStatus::RateLimited)
        .map(|e| e.notification_id.as_str())
        .collect();
    ensure!(limited.len() == 1, "{events:?}");

    for (body, error) in [
        (
            json!({"notification_id": "x", "user_id": "ara", "template_id": "welcome", "channels": ["push"], "data": {}}),
            "invalid_template",
        ),
        (
            json!({"notification_id": "x", "user_id": "ara", "template_id": "nope", "data": {}}),
            "invalid_template",
        ),
        (
            json!({"notification_id": "x", "user_id": "ara", "template_id": "welcome", "channels": ["fax"]}),
            "invalid_channel",
        ),
        (
            json!({"notification_id": "", "user_id": "ara", "template_id": "welcome", "data": {"name": "A"}}),
            "invalid_request",
        ),
        (
            json!({"notification_id": "x", "user_id": "ara", "template_id": "welcome", "priority": "urgent"}),
            "invalid_priority",
        ),
    ] {
        let (status, answer) = service.request(body.clone()).await?;
        ensure!(
            status == StatusCode::BAD_REQUEST && answer["error"] == error,
            "{body}: {status} {answer}"
        );
    }
    let (status, answer) = service
        .send(
            reqwest::Method::PUT,
            "/v1/users/ara/preferences",
            json!({"time_zone": "Mars/Olympus"}),
        )
        .await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && answer["error"] == "invalid_preferences",
        "{answer}"
    );
    Ok(())
}

/// The four provider stand-ins and channel clients pointed at them.
struct Providers {
    apns: ApnsStandIn,
    fcm: FcmStandIn,
    smtp: SmtpStandIn,
    twilio: TwilioStandIn,
    clients: Arc<Clients>,
}

impl Providers {
    async fn start(dir: &std::path::Path) -> Result<Self> {
        let apns_key = credentials::apns_key()?;
        let apns = ApnsStandIn::start(ApnsConfig {
            bundle_id: "dev.sixfold.app".into(),
            key_id: "TESTKEY001".into(),
            team_id: "TESTTEAM01".into(),
            public_key_pem: apns_key.public_pem.clone(),
        })
        .await?;
        let key_path = dir.join("apns.p8");
        std::fs::write(&key_path, &apns_key.private_pem)?;
        let fcm_key = credentials::service_account_key()?;
        let client_email = "notify@sixfold-test.iam.gserviceaccount.com".to_owned();
        let fcm = FcmStandIn::start(FcmConfig {
            project_id: "sixfold-test".into(),
            client_email: client_email.clone(),
            public_key_pem: fcm_key.public_pem.clone(),
        })
        .await?;
        let account_path = dir.join("fcm.json");
        let account = json!({"type": "service_account", "project_id": "sixfold-test",
            "private_key_id": "k1", "private_key": fcm_key.private_pem, "client_email": client_email,
            "client_id": "1", "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": fcm.token_uri()});
        std::fs::write(&account_path, account.to_string())?;
        let smtp = SmtpStandIn::start(SmtpConfig::default()).await?;
        let twilio = TwilioStandIn::start(TwilioConfig {
            account_sid: format!("AC{}", "0".repeat(32)),
            auth_token: "test-auth-token".into(),
            from_numbers: vec![],
        })
        .await?;
        let clients = Clients {
            apns: Some(ApnsClient::new(&ApnsSettings {
                endpoint: apns.url(),
                topic: "dev.sixfold.app".into(),
                key_id: "TESTKEY001".into(),
                team_id: "TESTTEAM01".into(),
                key_path,
                ..ApnsSettings::default()
            })?),
            fcm: Some(
                FcmClient::new(&FcmSettings {
                    endpoint: fcm.url(),
                    project_id: Some("sixfold-test".into()),
                    service_account_path: account_path,
                    ..FcmSettings::default()
                })
                .await?,
            ),
            email: Some(EmailClient::new(&EmailSettings {
                host: "127.0.0.1".into(),
                port: smtp.address().port(),
                ..EmailSettings::default()
            })?),
            sms: Some(SmsClient::new(&SmsSettings {
                endpoint: twilio.url(),
                account_sid: format!("AC{}", "0".repeat(32)),
                auth_token: "test-auth-token".to_owned().into(),
                from: Some("+15005550006".into()),
                ..SmsSettings::default()
            })?),
        };
        Ok(Self {
            apns,
            fcm,
            smtp,
            twilio,
            clients: Arc::new(clients),
        })
    }
}

impl Service {
    /// Runs the three channel workers; returns their DLQ topics by channel name.
    async fn run_workers(&self, providers: &Providers) -> Result<Vec<(String, String)>> {
        let mut dlqs = Vec::new();
        for channel in [Channel::Push, Channel::Email, Channel::Sms] {
            let worker =
                ChannelWorker::new(self.notify.clone(), providers.clients.clone(), channel);
            let group = unique(&ChannelWorker::name(channel));
            create_topics(&[
                (&dlq_topic(&group), 1),
                (&sixfold_runtime::failure::retry_topic(&group, 1), 1),
            ])
            .await?;
            let config = ProcessorConfig {
                name: group.clone(),
                topics: vec![worker.input_topic()],
                retry_delays: vec![Duration::from_millis(300)],
                ..ProcessorConfig::default()
            };
            let context = RuntimeContext {
                kafka: kafka(),
                codec: self.codec.clone(),
                producer: self.producer.clone(),
                metrics: Metrics::new(),
            };
            tokio::spawn(run_processor(
                Arc::new(worker),
                config,
                context,
                self.shutdown.clone(),
            ));
            dlqs.push((channel.as_str().to_owned(), dlq_topic(&group)));
        }
        Ok(dlqs)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_deliver_to_every_device_and_the_mailbox_and_handle_provider_errors() -> Result<()>
{
    let service = Service::start().await?;
    let providers = Providers::start(service._dir.path()).await?;
    let dlqs = service.run_workers(&providers).await?;
    service.user("minji", json!({"sms": false})).await?;
    let devices = [
        json!({"device_id": "tablet-1", "platform": "android", "push_token": "fcm-token-tablet"}),
        json!({"device_id": "old-phone", "platform": "ios", "push_token": "b".repeat(64)}),
    ];
    for device in devices {
        let (status, body) = service
            .send(reqwest::Method::POST, "/v1/users/minji/devices", device)
            .await?;
        ensure!(status == StatusCode::CREATED, "{body}");
    }
    providers.apns.unregister(&"b".repeat(64));
    // The first send to the phone answers 503: the record goes through the retry topic.
    providers.apns.script(
        &"a".repeat(64),
        vec![ApnsScriptedAnswer::new(503, "ServiceUnavailable")],
    );
    let (status, body) = service
        .request(json!({"notification_id": "order-9", "user_id": "minji", "template_id": "order_confirmed",
            "channels": ["push", "email", "sms"], "data": {"order_id": "ORD456", "amount": 50000}, "locale": "ko-KR"}))
        .await?;
    ensure!(status == StatusCode::ACCEPTED, "{body}");

    let delivered = wait_for("the push to the phone and the tablet", PATIENCE, || async {
        providers.apns.accepted().len() == 1 && providers.fcm.accepted().len() == 1
    })
    .await;
    if let Err(error) = delivered {
        let statuses: Vec<NotifyStatus> = service
            .events(&service.settings.status_topic, 1)
            .await
            .unwrap_or_default();
        anyhow::bail!(
            "{error}: apns accepted {:?} rejected {:?}; fcm accepted {:?} rejected {:?}; first status {statuses:?}",
            providers.apns.accepted(),
            providers.apns.rejected(),
            providers.fcm.accepted(),
            providers.fcm.rejected()
        );
    }
    let push = &providers.apns.accepted()[0];
    ensure!(push.device_token == "a".repeat(64), "{push:?}");
    ensure!(
        push.payload["aps"]["alert"]["body"] == "주문 ORD456가 확인되었습니다. 금액: 50,000원",
        "{}",
        push.payload
    );
    wait_for("the email", PATIENCE, || async {
        providers.smtp.accepted().len() == 1
    })
    .await?;
    let mail = &providers.smtp.accepted()[0];
    ensure!(
        mail.recipients == vec!["minji@example.com".to_owned()],
        "{:?}",
        mail.recipients
    );
    ensure!(
        mail.subject().is_some_and(|s| s.contains("ORD456")),
        "{:?}",
        mail.subject()
    );
    ensure!(
        mail.bodies().html.is_some_and(|h| h.contains("50,000")),
        "no html part"
    );
    // SMS is off for this user; the unregistered phone was removed.
    ensure!(providers.twilio.accepted().is_empty());
    wait_for("the dead device to be pruned", PATIENCE, || async {
        service
            .notify
            .store()
            .devices("minji")
            .await
            .map(|d| d.iter().all(|d| d.device_id != "old-phone"))
            .unwrap_or(false)
    })
    .await?;
    // Each went out once, even though the push record was processed twice.
    ensure!(providers.apns.accepted().len() == 1 && providers.fcm.accepted().len() == 1);

    // A permanent refusal ends in the push worker's DLQ.
    providers.apns.script(
        &"a".repeat(64),
        vec![ApnsScriptedAnswer::new(400, "BadCollapseId")],
    );
    let (status, _) = service
        .request(
            json!({"notification_id": "welcome-9", "user_id": "minji", "template_id": "welcome",
            "channels": ["push"], "data": {"name": "Minji"}}),
        )
        .await?;
    ensure!(status == StatusCode::ACCEPTED);
    let push_dlq = &dlqs
        .iter()
        .find(|(c, _)| c == "push")
        .context("push dlq")?
        .1;
    let dead = read_records(push_dlq, 1, PATIENCE).await?;
    ensure!(
        crate::harness::header(&dead[0], sixfold_runtime::failure::H_ERROR_CLASS).as_deref()
            == Some("provider_refused")
    );
    Ok(())
}

/// A push worker SIGKILLed in the middle of a batch: its replacement reads the whole batch
/// again (its offsets were never committed), and the sent markers keep it from sending what
/// APNs had already answered. The pushes that were in flight at the kill (accepted, answer not
/// yet received) go again with the same `apns-collapse-id`, so the device shows each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_push_worker_killed_mid_batch_still_delivers_each_notification_once() -> Result<()> {
    const USERS: usize = 30;
    const PER_USER: usize = 10;
    const TOTAL: usize = USERS * PER_USER;
    let service = Service::start().await?;
    let providers = Providers::start(service._dir.path()).await?;
    providers.apns.delay_answers(Duration::from_millis(100));
    let group = unique("notify-push-kill");
    create_topics(&[(&dlq_topic(&group), 1)]).await?;
    for user in 0..USERS {
        service.user(&format!("k{user}"), json!({})).await?;
    }
    for n in 0..TOTAL {
        let request = NotifyRequested {
            event_id: uuid::Uuid::new_v4().to_string(),
            occurred_at: now_ms(),
            notification_id: format!("kill-{n}"),
            user_id: format!("k{}", n % USERS),
            template_id: "welcome".into(),
            channels: vec![AvroChannel::Push],
            data: [("name".to_owned(), "Kim".to_owned())].into(),
            priority: Priority::Normal,
            send_at: None,
            locale: None,
        };
        service.notify.enqueue(&request).await?;
    }
    // Every push record is on the topic before the worker starts: one batch holds them all.
    let records = read_records(&service.settings.push_topic, TOTAL, PATIENCE).await?;
    ensure!(records.len() == TOTAL, "{} push records", records.len());

    let spawn_worker = || {
        Command::new(env!("CARGO_BIN_EXE_notify-push-worker"))
            .env("NOTIFY_PREFIX", &service.settings.namespace)
            .env("NOTIFY_GROUP", &group)
            .env("NOTIFY_SQLITE", service._dir.path().join("store.db"))
            .env("NOTIFY_REGISTRY_URL", &service._registry.url)
            .env("NOTIFY_APNS_ENDPOINT", providers.apns.url())
            .env("NOTIFY_APNS_KEY_PATH", service._dir.path().join("apns.p8"))
            .env("SIXFOLD__KAFKA__BROKERS", kafka().brokers)
            .spawn()
            .context("start notify-push-worker")
    };
    let mut first = spawn_worker()?;
    wait_for("a third of the pushes", PATIENCE, || async {
        providers.apns.accepted().len() >= TOTAL / 3
    })
    .await?;
    first.kill()?; // SIGKILL
    first.wait()?;
    let at_kill = providers.apns.accepted().len();
    ensure!(at_kill < TOTAL, "the worker finished before it was killed");

    let mut second = spawn_worker()?;
    let expected: std::collections::BTreeSet<String> =
        (0..TOTAL).map(|n| format!("kill-{n}")).collect();
    let collapse_ids = || -> std::collections::BTreeSet<String> {
        providers
            .apns
            .accepted()
            .into_iter()
            .filter_map(|push| push.collapse_id)
            .collect()
    };
    let delivered = wait_for("every notification on the device", PATIENCE, || async {
        collapse_ids() == expected
    })
    .await;
    second.kill()?;
    second.wait()?;
    delivered?;
    let accepted = providers.apns.accepted();
    ensure!(
        accepted.iter().all(|push| push.collapse_id.is_some()),
        "every push collapses by its notification id"
    );
    // Sent again: at most the pushes in flight at the kill, one per user (a worker handles a
    // user's records in order). Without the markers, everything APNs had answered before the
    // kill (at least a third) would go again.
    let repeats = accepted.len() - TOTAL;
    println!("{at_kill} of {TOTAL} accepted at the kill; {repeats} sent again after the restart");
    ensure!(
        repeats <= USERS,
        "{repeats} pushes sent twice ({at_kill} accepted at the kill)"
    );
    Ok(())
}
