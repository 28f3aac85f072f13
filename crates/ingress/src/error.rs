//! JSON errors for every route: `{"error": "<code>", "message": "<what went wrong>"}` with the
//! right status, and a JSON body extractor whose rejections are such errors too (a malformed
//! body, an unknown field or a wrong content type is a 4xx, never a 500).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An error answer. `error` is a stable machine-readable code, `message` is for people.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    /// Stable error code, e.g. `invalid_url`, `alias_taken`.
    pub error: &'static str,
    /// What went wrong, in words.
    pub message: String,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error,
            message: message.into(),
        }
    }

    /// 400: the request is malformed or fails validation.
    pub fn bad_request(error: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, message)
    }

    /// 404: nothing by that name.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: the name is taken.
    pub fn conflict(error: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, error, message)
    }

    /// 503: a dependency is down; the client may try again.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 503 for a request that failed on a dependency (store, Redis, broker) at `step`: the
    /// answer names the step but not the internals; the error itself goes to the log.
    pub fn dependency_failed(step: &str, error: impl std::fmt::Display) -> Self {
        tracing::warn!(%error, step, "request failed on a dependency");
        Self::unavailable(format!("could not {step}; try again shortly"))
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, error = self.error, message = %self.message, "request failed");
        }
        (self.status, axum::Json(self)).into_response()
    }
}

/// A JSON request body whose rejections are [`ApiError`]s: 400 for malformed JSON or a body
/// that does not fit the type (unknown fields included, with `deny_unknown_fields`), 413 for a
/// body over the limit, 415 for a non-JSON content type.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(from_rejection(rejection)),
        }
    }
}

fn from_rejection(rejection: JsonRejection) -> ApiError {
    let message = rejection.body_text();
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(_) if rejection_is_too_large(&message) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "request body is larger than the limit",
        ),
        JsonRejection::JsonSyntaxError(_) => ApiError::bad_request("malformed_json", message),
        JsonRejection::JsonDataError(_) => ApiError::bad_request("invalid_body", message),
        _ => ApiError::bad_request("invalid_body", message),
    }
}

fn rejection_is_too_large(message: &str) -> bool {
    message.contains("length limit")
}

/// Query parameters whose rejections are [`ApiError`]s: 400 `invalid_query` naming the
/// parameter that did not parse (use `deny_unknown_fields` to refuse unknown ones too).
#[derive(Debug, Clone, Copy, Default)]
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(QueryParams(value)),
            Err(rejection) => Err(ApiError::bad_request(
                "invalid_query",
                rejection.body_text(),
            )),
        }
    }
}

/// Answers unknown routes with a JSON 404.
pub async fn fallback() -> ApiError {
    ApiError::not_found("no such route")
}
