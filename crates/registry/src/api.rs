//! The REST routes, with Confluent's paths, bodies and error codes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::compat::CompatibilityLevel;
use crate::error::ApiError;
use crate::registry::Registry;
use crate::state::{ParsedSchema, SubjectVersion, VersionSpec};

/// The content type of every answer.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The HTTP routes of the registry over `registry`.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { json_response(StatusCode::OK, &json!({})) }),
        )
        .route(
            "/schemas/types",
            get(|| async { json_response(StatusCode::OK, &["AVRO"]) }),
        )
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_of_id))
        .route("/schemas/ids/{id}/subjects", get(subjects_of_id))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(raw_version),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility),
        )
        .route("/config", get(global_config).put(set_global_config))
        .route(
            "/config/{subject}",
            get(subject_config).put(set_subject_config),
        )
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async {
            let body = json!({"error_code": 405, "message": "HTTP 405 Method Not Allowed"});
            json_response(StatusCode::METHOD_NOT_ALLOWED, &body)
        })
        .with_state(registry)
}

/// A JSON answer with the registry's content type.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (status, bytes).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            response
        }
        Err(error) => {
            tracing::error!(%error, "cannot encode response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

type Reply = Result<Response, ApiError>;
type Shared = State<Arc<Registry>>;

fn ok(body: &impl Serialize) -> Reply {
    Ok(json_response(StatusCode::OK, body))
}

/// A JSON request body. The content type is not checked: Confluent's clients send
/// `application/vnd.schemaregistry.v1+json`, others `application/json` or
/// `application/vnd.schemaregistry+json`, and `curl -d` without `-H` sends a form type; the
/// body is JSON in every case.
struct Body<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|error| ApiError::BadRequest(format!("Unrecognizable request body: {error}")))
    }
}

/// `{"schema": "...", "schemaType"?: "AVRO", "references"?: []}`; other fields Confluent
/// clients may send (`metadata`, `ruleSet`, …) are ignored.
#[derive(Deserialize)]
struct SchemaRequest {
    schema: Option<String>,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    references: Option<Vec<serde_json::Value>>,
}

impl SchemaRequest {
    fn parse(self) -> Result<ParsedSchema, ApiError> {
        if let Some(kind) = self.schema_type.filter(|k| !k.eq_ignore_ascii_case("AVRO")) {
            return Err(ApiError::InvalidSchema(format!(
                "schema type {kind} is not supported; this registry serves AVRO only"
            )));
        }
        if self.references.is_some_and(|r| !r.is_empty()) {
            return Err(ApiError::InvalidSchema(
                "schema references are not supported".to_owned(),
            ));
        }
        match self.schema {
            Some(text) if !text.trim().is_empty() => ParsedSchema::parse(&text),
            _ => Err(ApiError::InvalidSchema("Empty schema".to_owned())),
        }
    }
}

/// `{subject, version, id, schema}` as Confluent answers it (no `schemaType` for Avro).
#[derive(Serialize)]
struct VersionBody<'a> {
    subject: &'a str,
    version: u32,
    id: u32,
    schema: &'a str,
}

impl<'a> From<&'a SubjectVersion> for VersionBody<'a> {
    fn from(v: &'a SubjectVersion) -> Self {
        Self {
            subject: &v.subject,
            version: v.version,
            id: v.schema.id,
            schema: &v.schema.parsed.text,
        }
    }
}

/// Ids are positive integers; anything else names no route, as in Confluent.
fn schema_id(segment: &str) -> Result<u32, ApiError> {
    segment.parse().map_err(|_| ApiError::NoRoute)
}

async fn schema_by_id(State(registry): Shared, Path(id): Path<String>) -> Reply {
    let schema = registry.state().schema(schema_id(&id)?)?;
    ok(&json!({ "schema": schema.parsed.text }))
}

async fn raw_schema_by_id(State(registry): Shared, Path(id): Path<String>) -> Reply {
    let schema = registry.state().schema(schema_id(&id)?)?;
    raw_schema(&schema.parsed.text)
}

/// `.../schema` answers the schema itself rather than a string holding it.
fn raw_schema(text: &str) -> Reply {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|error| ApiError::InvalidSchema(error.to_string()))?;
    ok(&value)
}

async fn versions_of_id(State(registry): Shared, Path(id): Path<String>) -> Reply {
    let uses = registry.state().uses_of(schema_id(&id)?)?;
    let body: Vec<_> = uses
        .iter()
        .map(|(subject, version)| json!({"subject": subject, "version": version}))
        .collect();
    ok(&body)
}

async fn subjects_of_id(State(registry): Shared, Path(id): Path<String>) -> Reply {
    let mut subjects: Vec<String> = registry
        .state()
        .uses_of(schema_id(&id)?)?
        .into_iter()
        .map(|(subject, _)| subject)
        .collect();
    subjects.dedup();
    ok(&subjects)
}

async fn subjects(State(registry): Shared) -> Reply {
    ok(&registry.state().subjects())
}

async fn versions(State(registry): Shared, Path(subject): Path<String>) -> Reply {
    ok(&registry.state().versions(&subject)?)
}

async fn version(State(registry): Shared, Path((subject, v)): Path<(String, String)>) -> Reply {
    let found = registry
        .state()
        .version(&subject, VersionSpec::parse(&v)?)?;
    ok(&VersionBody::from(&found))
}

async fn raw_version(State(registry): Shared, Path((subject, v)): Path<(String, String)>) -> Reply {
    let found = registry
        .state()
        .version(&subject, VersionSpec::parse(&v)?)?;
    raw_schema(&found.schema.parsed.text)
}

async fn register(
    State(registry): Shared,
    Path(subject): Path<String>,
    Body(request): Body<SchemaRequest>,
) -> Reply {
    let id = registry.register(&subject, request.parse()?).await?;
    ok(&json!({ "id": id }))
}

async fn lookup(
    State(registry): Shared,
    Path(subject): Path<String>,
    Body(request): Body<SchemaRequest>,
) -> Reply {
    let schema = request.parse()?;
    let found = registry.state().find(&subject, &schema)?;
    ok(&VersionBody::from(&found))
}

/// Query parameters, read leniently: Confluent's clients send flags as `true`, `True`, `False`.
type Params = Query<HashMap<String, String>>;

fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn compatibility_reply(problems: Vec<String>, verbose: bool) -> Reply {
    let mut body = json!({ "is_compatible": problems.is_empty() });
    if verbose {
        body["messages"] = json!(problems);
    }
    ok(&body)
}

async fn compatibility(
    State(registry): Shared,
    Path((subject, v)): Path<(String, String)>,
    Query(params): Params,
    Body(request): Body<SchemaRequest>,
) -> Reply {
    let spec = VersionSpec::parse(&v)?;
    let problems = registry.compatibility_problems(&subject, Some(spec), &request.parse()?)?;
    compatibility_reply(problems, flag(&params, "verbose"))
}

async fn compatibility_all(
    State(registry): Shared,
    Path(subject): Path<String>,
    Query(params): Params,
    Body(request): Body<SchemaRequest>,
) -> Reply {
    let problems = registry.compatibility_problems(&subject, None, &request.parse()?)?;
    compatibility_reply(problems, flag(&params, "verbose"))
}

/// `{"compatibility": "FULL"}`; the level is read leniently so a bad name answers 42203.
#[derive(Deserialize)]
struct ConfigRequest {
    compatibility: Option<String>,
}

impl ConfigRequest {
    fn level(&self) -> Result<CompatibilityLevel, ApiError> {
        let name = self
            .compatibility
            .as_deref()
            .ok_or(ApiError::InvalidLevel)?;
        name.parse().map_err(|_| ApiError::InvalidLevel)
    }
}

async fn global_config(State(registry): Shared) -> Reply {
    ok(&json!({ "compatibilityLevel": registry.state().global_level() }))
}

async fn set_global_config(State(registry): Shared, Body(request): Body<ConfigRequest>) -> Reply {
    let level = request.level()?;
    registry.set_level(None, level).await?;
    ok(&json!({ "compatibility": level }))
}

async fn subject_config(
    State(registry): Shared,
    Path(subject): Path<String>,
    Query(params): Params,
) -> Reply {
    let state = registry.state();
    let level = match state.subject_level(&subject) {
        Some(level) => level,
        None if flag(&params, "defaultToGlobal") => state.global_level(),
        None => return Err(ApiError::SubjectLevelNotConfigured(subject)),
    };
    ok(&json!({ "compatibilityLevel": level }))
}

async fn set_subject_config(
    State(registry): Shared,
    Path(subject): Path<String>,
    Body(request): Body<ConfigRequest>,
) -> Reply {
    let level = request.level()?;
    registry.set_level(Some(&subject), level).await?;
    ok(&json!({ "compatibility": level }))
}
