//! The registry against the real broker (`SIXFOLD__KAFKA__BROKERS`, default 127.0.0.1:9092):
//! each test uses its own random topic and binds port 0.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sixfold_registry::{RegistryError, RegistrySettings};
use sixfold_runtime::settings::KafkaSettings;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

const V1: &str = r#"{"type":"record","name":"Click","namespace":"sixfold.test","fields":[{"name":"code","type":"string"}]}"#;
const V2: &str = r#"{"type":"record","name":"Click","namespace":"sixfold.test","fields":[{"name":"code","type":"string"},{"name":"referrer","type":"string","default":""}]}"#;
const V3_NO_DEFAULT: &str = r#"{"type":"record","name":"Click","namespace":"sixfold.test","fields":[{"name":"code","type":"string"},{"name":"referrer","type":"string","default":""},{"name":"ip","type":"string"}]}"#;

fn kafka() -> KafkaSettings {
    KafkaSettings {
        brokers: std::env::var("SIXFOLD__KAFKA__BROKERS")
            .unwrap_or_else(|_| "127.0.0.1:9092".into()),
        client_id: "sixfold-registry-test".into(),
        ..KafkaSettings::default()
    }
}

fn random_topic() -> String {
    format!("_schemas_test_{}", uuid::Uuid::new_v4().simple())
}

/// A registry serving on a free loopback port until stopped.
struct Server {
    base: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), RegistryError>>,
}

impl Server {
    async fn start(topic: &str) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let settings = RegistrySettings {
            topic: topic.to_owned(),
            ..RegistrySettings::default()
        };
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            sixfold_registry::serve(listener, &settings, &kafka(), token).await
        });
        let server = Self {
            base,
            http: reqwest::Client::new(),
            shutdown,
            task,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if server.http.get(server.url("/")).send().await.is_ok() {
                return Ok(server);
            }
            if server.task.is_finished() || Instant::now() > deadline {
                bail!("registry did not start: {:?}", server.stop().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(self) -> Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .context("registry did not stop")??
            .context("registry failed")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request
                .header("content-type", CONTENT_TYPE)
                .body(body.to_string());
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(content_type, CONTENT_TYPE, "{path}");
        Ok((status, response.json().await?))
    }

    async fn get(&self, path: &str) -> Result<(u16, Value)> {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<(u16, Value)> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> Result<(u16, Value)> {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    async fn register(&self, subject: &str, schema: &str) -> Result<(u16, Value)> {
        self.post(
            &format!("/subjects/{subject}/versions"),
            json!({ "schema": schema }),
        )
        .await
    }
}

/// A setting of a topic as the broker reports it.
async fn topic_setting(topic: &str, name: &str) -> Result<Option<String>> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = kafka().client_config().create()?;
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await?;
    let resource = results
        .into_iter()
        .next()
        .context("no describe result")?
        .map_err(|code| anyhow::anyhow!("describe {topic}: {code}"))?;
    Ok(resource.get(name).and_then(|entry| entry.value.clone()))
}

fn error_code(body: &Value) -> u64 {
    body["error_code"].as_u64().unwrap_or_default()
}

#[tokio::test]
async fn registrations_evolve_under_compatibility_and_survive_a_restart() -> Result<()> {
    let topic = random_topic();
    let server = Server::start(&topic).await?;

    // Register, fetch by id, register again.
    let (status, body) = server.register("clicks-value", V1).await?;
    assert_eq!(status, 200, "{body}");
    let id1 = body["id"].as_u64().context("id")?;
    let (status, body) = server.get(&format!("/schemas/ids/{id1}")).await?;
    assert_eq!((status, body["schema"].as_str()), (200, Some(V1)));
    let spaced = V1.replace(',', " , ");
    let (_, again) = server.register("clicks-value", &spaced).await?;
    assert_eq!(again["id"].as_u64(), Some(id1), "same schema, same id");
    assert_eq!(
        server.get("/subjects/clicks-value/versions").await?.1,
        json!([1])
    );

    // The same schema under another subject keeps its global id.
    let (_, other) = server.register("other-value", V1).await?;
    assert_eq!(other["id"].as_u64(), Some(id1));

    // A compatible evolution is version 2 with a new id.
    let (status, body) = server.register("clicks-value", V2).await?;
    assert_eq!(status, 200, "{body}");
    let id2 = body["id"].as_u64().context("id")?;
    assert_ne!(id1, id2);
    let (status, latest) = server.get("/subjects/clicks-value/versions/latest").await?;
    assert_eq!(status, 200);
    assert_eq!(
        latest,
        json!({"subject": "clicks-value", "version": 2, "id": id2, "schema": V2})
    );

    // A field without default breaks BACKWARD (the default level).
    let check = json!({ "schema": V3_NO_DEFAULT });
    let (_, verdict) = server
        .post(
            "/compatibility/subjects/clicks-value/versions/latest?verbose=True",
            check.clone(),
        )
        .await?;
    assert_eq!(verdict["is_compatible"], json!(false), "{verdict}");
    assert!(
        !verdict["messages"]
            .as_array()
            .context("messages")?
            .is_empty()
    );
    let (status, body) = server.register("clicks-value", V3_NO_DEFAULT).await?;
    assert_eq!((status, error_code(&body)), (409, 409), "{body}");
    assert_eq!(
        server.get("/subjects/clicks-value/versions").await?.1,
        json!([1, 2])
    );

    // Levels: global and per subject; FORWARD lets the new field through.
    assert_eq!(
        server.get("/config").await?.1,
        json!({"compatibilityLevel": "BACKWARD"})
    );
    let (status, body) = server.get("/config/clicks-value").await?;
    assert_eq!((status, error_code(&body)), (404, 40408));
    let (_, body) = server
        .get("/config/clicks-value?defaultToGlobal=true")
        .await?;
    assert_eq!(body, json!({"compatibilityLevel": "BACKWARD"}));
    let (status, body) = server
        .put("/config/clicks-value", json!({"compatibility": "forward"}))
        .await?;
    assert_eq!((status, body), (200, json!({"compatibility": "FORWARD"})));
    let (status, body) = server
        .put("/config", json!({"compatibility": "FULL"}))
        .await?;
    assert_eq!((status, body), (200, json!({"compatibility": "FULL"})));
    let (status, body) = server
        .put("/config", json!({"compatibility": "SIDEWAYS"}))
        .await?;
    assert_eq!((status, error_code(&body)), (422, 42203));
    let (_, verdict) = server
        .post(
            "/compatibility/subjects/clicks-value/versions/latest",
            check,
        )
        .await?;
    assert_eq!(verdict, json!({"is_compatible": true}));
    let (status, body) = server.register("clicks-value", V3_NO_DEFAULT).await?;
    assert_eq!(status, 200, "{body}");
    let id3 = body["id"].as_u64().context("id")?;

    // Lookup of a registered schema, then the not-found codes.
    let (status, found) = server
        .post("/subjects/clicks-value", json!({"schema": V2}))
        .await?;
    assert_eq!(status, 200);
    assert_eq!(
        found,
        json!({"subject": "clicks-value", "version": 2, "id": id2, "schema": V2})
    );
    let unknown = r#"{"type":"record","name":"Nope","fields":[]}"#;
    let (status, body) = server
        .post("/subjects/clicks-value", json!({"schema": unknown}))
        .await?;
    assert_eq!((status, error_code(&body)), (404, 40403));
    let (status, body) = server
        .post("/subjects/missing", json!({"schema": V1}))
        .await?;
    assert_eq!((status, error_code(&body)), (404, 40401));
    assert_eq!(body["message"], json!("Subject 'missing' not found."));
    let (status, body) = server.get("/subjects/clicks-value/versions/9").await?;
    assert_eq!((status, error_code(&body)), (404, 40402));
    let (status, body) = server.get("/schemas/ids/999999").await?;
    assert_eq!((status, error_code(&body)), (404, 40403));

    server.stop().await?;
    assert_eq!(
        topic_setting(&topic, "cleanup.policy").await?.as_deref(),
        Some("compact")
    );

    // A new registry on the same topic knows everything.
    let server = Server::start(&topic).await?;
    let (_, subjects) = server.get("/subjects").await?;
    assert_eq!(subjects, json!(["clicks-value", "other-value"]));
    assert_eq!(
        server.get("/subjects/clicks-value/versions").await?.1,
        json!([1, 2, 3])
    );
    let (_, v2) = server.get("/subjects/clicks-value/versions/2").await?;
    assert_eq!(v2["id"].as_u64(), Some(id2));
    let (_, body) = server.get(&format!("/schemas/ids/{id3}")).await?;
    assert_eq!(body["schema"].as_str(), Some(V3_NO_DEFAULT));
    assert_eq!(
        server.get("/config").await?.1,
        json!({"compatibilityLevel": "FULL"})
    );
    assert_eq!(
        server.get("/config/clicks-value").await?.1,
        json!({"compatibilityLevel": "FORWARD"})
    );
    let (_, uses) = server.get(&format!("/schemas/ids/{id1}/versions")).await?;
    assert_eq!(
        uses,
        json!([{"subject": "clicks-value", "version": 1}, {"subject": "other-value", "version": 1}])
    );
    // Ids keep counting from where they were.
    let fresh = r#"{"type":"record","name":"Fresh","fields":[{"name":"x","type":"long"}]}"#;
    let (_, body) = server.register("fresh-value", fresh).await?;
    assert_eq!(body["id"].as_u64(), Some(id3 + 1));
    server.stop().await
}

#[tokio::test]
async fn bad_requests_get_confluent_error_codes() -> Result<()> {
    let server = Server::start(&random_topic()).await?;
    let (status, body) = server
        .register("s", r#"{"type":"record","name":"R"}"#)
        .await?;
    assert_eq!((status, error_code(&body)), (422, 42201), "{body}");
    let (status, body) = server
        .post(
            "/subjects/s/versions",
            json!({"schema": "{}", "schemaType": "PROTOBUF"}),
        )
        .await?;
    assert_eq!((status, error_code(&body)), (422, 42201), "{body}");
    let (status, body) = server.get("/subjects/s/versions/zero").await?;
    assert_eq!((status, error_code(&body)), (422, 42202));
    let (status, body) = server.get("/subjects/s/versions").await?;
    assert_eq!((status, error_code(&body)), (404, 40401));
    let (status, body) = server.get("/no/such/route").await?;
    assert_eq!((status, error_code(&body)), (404, 404));
    assert_eq!(server.get("/subjects").await?.1, json!([]));
    assert_eq!(server.get("/schemas/types").await?.1, json!(["AVRO"]));

    // Bodies are JSON whatever content type they are sent with (curl -d sends a form type).
    let content_types = [
        "application/json",
        "application/vnd.schemaregistry+json",
        "application/x-www-form-urlencoded",
    ];
    for content_type in content_types {
        let response = server
            .http
            .post(server.url("/subjects/s/versions"))
            .header("content-type", content_type)
            .body(json!({"schema": "\"string\""}).to_string())
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 200, "{content_type}");
    }
    let (status, body) = server
        .post("/config", json!(["not", "an", "object"]))
        .await?;
    assert_eq!((status, error_code(&body)), (405, 405));
    let (status, body) = server
        .put("/config", json!(["not", "an", "object"]))
        .await?;
    assert_eq!((status, error_code(&body)), (400, 400));
    server.stop().await
}

#[tokio::test]
async fn a_second_instance_catches_up_before_it_writes() -> Result<()> {
    let topic = random_topic();
    let first = Server::start(&topic).await?;
    let second = Server::start(&topic).await?;
    let (_, body) = first.register("a-value", V1).await?;
    assert_eq!(body["id"].as_u64(), Some(1));

    // The second instance reads what the first wrote before it picks an id or a version.
    let (_, body) = second.register("a-value", V2).await?;
    assert_eq!(body["id"].as_u64(), Some(2), "{body}");
    assert_eq!(
        second.get("/subjects/a-value/versions").await?.1,
        json!([1, 2])
    );
    let (_, body) = first.register("b-value", V1).await?;
    assert_eq!(body["id"].as_u64(), Some(1), "{body}");
    assert_eq!(
        first.get("/subjects/a-value/versions").await?.1,
        json!([1, 2])
    );

    first.stop().await?;
    second.stop().await
}
