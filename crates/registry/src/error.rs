//! The two error types: [`RegistryError`] for starting and running the server, and
//! [`ApiError`] for a request, answered with Confluent's status, `error_code` and message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde::Serialize;

use crate::api::json_response;
use crate::compat::INVALID_LEVEL_MESSAGE;

/// Why the registry could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address from the settings.
        addr: std::net::SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("HTTP server failed")]
    Serve(#[source] std::io::Error),
    /// A Kafka client call failed.
    #[error("kafka: cannot {action}")]
    Kafka {
        /// What was being done, e.g. "read watermarks of the schemas topic".
        action: &'static str,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
    /// The broker refused to create the schemas topic.
    #[error("cannot create schemas topic {topic}: {code}")]
    CreateTopic {
        /// The topic name.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
    /// Reading the schemas topic made no progress for too long.
    #[error("reading schemas topic {topic} stalled at offset {reached} of {end}")]
    ReadStalled {
        /// The topic name.
        topic: String,
        /// The next offset that would have been read.
        reached: i64,
        /// The end (high watermark) being read up to.
        end: i64,
    },
    /// A record could not be encoded (should not happen: the types are plain JSON).
    #[error("cannot encode a schemas-topic record")]
    Encode(#[from] serde_json::Error),
    /// A blocking Kafka task panicked or was cancelled.
    #[error("schemas-topic reader task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// A request that cannot be answered as asked, with the error code Confluent uses for it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 40401.
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// 40402.
    #[error("Version {0} not found.")]
    VersionNotFound(u32),
    /// 40403, by id.
    #[error("Schema {0} not found")]
    SchemaIdNotFound(u32),
    /// 40403, by content (lookup under a subject).
    #[error("Schema not found")]
    SchemaNotFound,
    /// 40408.
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectLevelNotConfigured(String),
    /// 409: the schema breaks the subject's compatibility level.
    #[error(
        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
        .problems.join(", ")
    )]
    Incompatible {
        /// The subject registered under.
        subject: String,
        /// One line per problem found.
        problems: Vec<String>,
    },
    /// 42201.
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    /// 42202.
    #[error(
        "The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion(String),
    /// 42203.
    #[error("{INVALID_LEVEL_MESSAGE}")]
    InvalidLevel,
    /// 400: the body is not the JSON expected.
    #[error("{0}")]
    BadRequest(String),
    /// 404 for a path this registry does not serve.
    #[error("HTTP 404 Not Found")]
    NoRoute,
    /// 50001: the schemas topic could not be written or read.
    #[error("Error in the backend data store: {0}")]
    Store(#[from] RegistryError),
}

impl ApiError {
    /// The HTTP status and Confluent's `error_code`.
    pub fn codes(&self) -> (StatusCode, u32) {
        match self {
            ApiError::SubjectNotFound(_) => (StatusCode::NOT_FOUND, 40401),
            ApiError::VersionNotFound(_) => (StatusCode::NOT_FOUND, 40402),
            ApiError::SchemaIdNotFound(_) | ApiError::SchemaNotFound => {
                (StatusCode::NOT_FOUND, 40403)
            }
            ApiError::SubjectLevelNotConfigured(_) => (StatusCode::NOT_FOUND, 40408),
            ApiError::Incompatible { .. } => (StatusCode::CONFLICT, 409),
            ApiError::InvalidSchema(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42201),
            ApiError::InvalidVersion(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42202),
            ApiError::InvalidLevel => (StatusCode::UNPROCESSABLE_ENTITY, 42203),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, 400),
            ApiError::NoRoute => (StatusCode::NOT_FOUND, 404),
            ApiError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, 50001),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error_code: u32,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error_code) = self.codes();
        if let ApiError::Store(error) = &self {
            tracing::error!(%error, "schema registry backend failed");
        }
        let message = match &self {
            // The chain of a backend error is worth showing: it names the Kafka failure.
            ApiError::Store(error) => format!("{self}: {}", chain(error)),
            _ => self.to_string(),
        };
        json_response(
            status,
            &ErrorBody {
                error_code,
                message,
            },
        )
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    parts.join(": ")
}
