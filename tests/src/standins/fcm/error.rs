//! Errors of the FCM stand-in in Google's `google.rpc.Status` format, and the scripted FCM
//! errors they are made from.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::FcmScriptedAnswer;
use crate::standins::json_answer;

impl FcmScriptedAnswer {
    /// The Google error this answer stands for.
    pub(super) fn into_error(self) -> GoogleError {
        let fcm = |status, message: &str, code| GoogleError {
            fcm_error_code: Some(code),
            ..GoogleError::new(status, message)
        };
        match self {
            Self::Unregistered => fcm(
                StatusCode::NOT_FOUND,
                "Requested entity was not found.",
                "UNREGISTERED",
            ),
            Self::InvalidToken => GoogleError {
                field: Some("message.token".into()),
                ..fcm(
                    StatusCode::BAD_REQUEST,
                    "The registration token is not a valid FCM registration token",
                    "INVALID_ARGUMENT",
                )
            },
            Self::SenderIdMismatch => fcm(
                StatusCode::FORBIDDEN,
                "SenderId mismatch",
                "SENDER_ID_MISMATCH",
            ),
            Self::QuotaExceeded { retry_after } => GoogleError {
                retry_after: Some(retry_after),
                ..fcm(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Quota exceeded for sending messages to this device.",
                    "QUOTA_EXCEEDED",
                )
            },
            Self::Unavailable { retry_after } => GoogleError {
                retry_after,
                ..fcm(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is currently unavailable.",
                    "UNAVAILABLE",
                )
            },
            Self::Internal => fcm(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error encountered.",
                "INTERNAL",
            ),
            Self::ThirdPartyAuthError => fcm(
                StatusCode::UNAUTHORIZED,
                "Auth error from APNS or Web Push Service",
                "THIRD_PARTY_AUTH_ERROR",
            ),
        }
    }
}

/// An error in Google's `google.rpc.Status` format.
pub(super) struct GoogleError {
    pub(super) status: StatusCode,
    pub(super) message: String,
    pub(super) fcm_error_code: Option<&'static str>,
    /// Field named in a `google.rpc.BadRequest` detail.
    pub(super) field: Option<String>,
    pub(super) retry_after: Option<u64>,
}

impl GoogleError {
    pub(super) fn new(status: StatusCode, message: &str) -> Self {
        Self {
            status,
            message: message.to_owned(),
            fcm_error_code: None,
            field: None,
            retry_after: None,
        }
    }

    pub(super) fn invalid_argument(message: &str, field: &str) -> Self {
        Self {
            fcm_error_code: Some("INVALID_ARGUMENT"),
            field: (!field.is_empty()).then(|| field.to_owned()),
            ..Self::new(StatusCode::BAD_REQUEST, message)
        }
    }

    /// The `google.rpc.Code` name for the HTTP status.
    fn status_name(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            409 => "ABORTED",
            429 => "RESOURCE_EXHAUSTED",
            500 => "INTERNAL",
            503 => "UNAVAILABLE",
            504 => "DEADLINE_EXCEEDED",
            _ => "UNKNOWN",
        }
    }

    /// What the journal records: the FCM error code, else the status name.
    pub(super) fn reason(&self) -> &'static str {
        self.fcm_error_code.unwrap_or_else(|| self.status_name())
    }

    pub(super) fn into_response(self) -> Response {
        let mut details = Vec::new();
        if let Some(code) = self.fcm_error_code {
            details.push(json!({
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": code,
            }));
        }
        if let Some(field) = &self.field {
            details.push(json!({
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{ "field": field, "description": self.message }],
            }));
        }
        let mut error = json!({
            "code": self.status.as_u16(),
            "message": self.message,
            "status": self.status_name(),
        });
        if !details.is_empty() {
            error["details"] = Value::Array(details);
        }
        let mut response = json_answer(self.status, &json!({ "error": error }), self.retry_after);
        if self.status == StatusCode::UNAUTHORIZED && self.fcm_error_code.is_none() {
            response.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
            );
        }
        response
    }
}
