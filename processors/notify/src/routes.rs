//! The notification service's HTTP routes (API key): requests, preferences, devices, contact.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sixfold_ingress::{ApiError, JsonBody, SystemRoutes};
use sixfold_runtime::failure::now_ms;
use utoipa::{OpenApi, ToSchema};

use crate::events::{AvroChannel, NotifyRequested, Priority, new_event_id};
use crate::preferences::{Contact, Device, Preferences};
use crate::processor::{check_request, data_to_strings};
use crate::service::Notify;
use crate::template::{Channel, TemplateError};

#[derive(OpenApi)]
#[openapi(
    paths(request_notification, get_preferences, put_preferences, list_devices, add_device,
        remove_device, get_contact, put_contact),
    components(schemas(NewNotification, Accepted)),
    tags((name = "notify", description = "Notifications: requests, preferences, devices"))
)]
struct NotifyDoc;

/// The routes, for the ingress.
pub fn routes(notify: Arc<Notify>) -> SystemRoutes {
    SystemRoutes {
        public: Router::new(),
        protected: Router::new()
            .route("/v1/notifications", post(request_notification))
            .route(
                "/v1/users/{user_id}/preferences",
                get(get_preferences).put(put_preferences),
            )
            .route(
                "/v1/users/{user_id}/devices",
                get(list_devices).post(add_device),
            )
            .route(
                "/v1/users/{user_id}/devices/{device_id}",
                delete(remove_device),
            )
            .route(
                "/v1/users/{user_id}/contact",
                get(get_contact).put(put_contact),
            )
            .with_state(notify),
        openapi: NotifyDoc::openapi(),
    }
}

/// `POST /v1/notifications` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNotification {
    /// Your id for the notification (1–128 printable ASCII); a repeat within 24 h is sent at
    /// most once.
    notification_id: String,
    /// Recipient.
    user_id: String,
    /// Template to render (a folder under `templates/`).
    template_id: String,
    /// `push`, `email`, `sms`; empty or absent: every channel the template has.
    #[serde(default)]
    channels: Vec<String>,
    /// Template variables: strings, numbers, booleans.
    #[serde(default)]
    #[schema(value_type = Object)]
    data: serde_json::Map<String, serde_json::Value>,
    /// `low`, `normal` (default) or `high`.
    #[serde(default)]
    priority: Option<String>,
    /// Send no earlier than this (ms since the epoch).
    #[serde(default)]
    send_at: Option<i64>,
    /// Locale for rendering, e.g. `ko-KR`.
    #[serde(default)]
    locale: Option<String>,
}

/// `202` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// The notification.
    pub notification_id: String,
    /// Always `accepted`: the request is in the log; `notify.status` says what happened.
    pub status: String,
}

fn bad(error: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(error, message)
}

fn check_user(user: &str) -> Result<(), ApiError> {
    let valid = !user.is_empty()
        && user.len() <= 64
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(bad(
            "invalid_user_id",
            "user_id must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'",
        ))
    }
}

/// Ask for a notification.
#[utoipa::path(post, path = "/v1/notifications", tag = "notify", request_body = NewNotification,
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Accepted: the request is durable; outcomes follow on notify.status", body = Accepted),
        (status = 400, description = "Invalid ids, channel, priority, unknown template or a missing variable", body = ApiError),
        (status = 503, description = "Broker unavailable", body = ApiError)))]
async fn request_notification(
    State(notify): State<Arc<Notify>>,
    JsonBody(body): JsonBody<NewNotification>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let mut channels = Vec::new();
    for name in &body.channels {
        let channel: Channel = name
            .parse()
            .map_err(|_| bad("invalid_channel", format!("unknown channel {name:?}")))?;
        channels.push(channel);
    }
    let priority = match body.priority.as_deref() {
        None | Some("normal") => Priority::Normal,
        Some("low") => Priority::Low,
        Some("high") => Priority::High,
        Some(other) => {
            return Err(bad(
                "invalid_priority",
                format!("priority must be low, normal or high, not {other:?}"),
            ));
        }
    };
    let data = data_to_strings(&body.data).map_err(|e| bad("invalid_data", e))?;
    let request = NotifyRequested {
        event_id: new_event_id(),
        occurred_at: now_ms(),
        notification_id: body.notification_id,
        user_id: body.user_id,
        template_id: body.template_id,
        channels: channels.iter().copied().map(AvroChannel::from).collect(),
        data,
        priority,
        send_at: body.send_at,
        locale: body.locale,
    };
    check_request(&request).map_err(|e| bad("invalid_request", e.to_string()))?;
    // Render now, so a caller hears about an unknown template or a missing variable at once.
    let values = serde_json::to_value(&request.data).unwrap_or_default();
    let to_try = if channels.is_empty() {
        vec![Channel::Push, Channel::Email, Channel::Sms]
    } else {
        channels.clone()
    };
    let mut renders = 0;
    for channel in to_try {
        match notify.templates.render(
            &request.template_id,
            channel,
            request.locale.as_deref(),
            &values,
        ) {
            Ok(_) => renders += 1,
            Err(TemplateError::NotFound { .. }) if channels.is_empty() => {}
            Err(error) => return Err(bad("invalid_template", error.to_string())),
        }
    }
    if renders == 0 {
        return Err(bad(
            "invalid_template",
            format!("no template {:?}", request.template_id),
        ));
    }
    notify
        .enqueue(&request)
        .await
        .map_err(|e| ApiError::dependency_failed("record the notification", e))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            notification_id: request.notification_id,
            status: "accepted".into(),
        }),
    ))
}

/// A user's notification preferences.
#[utoipa::path(get, path = "/v1/users/{user_id}/preferences", tag = "notify",
    params(("user_id" = String, Path, description = "User")),
    security(("api_key" = [])),
    responses((status = 200, description = "Preferences (the defaults when never set)")))]
async fn get_preferences(
    State(notify): State<Arc<Notify>>,
    Path(user): Path<String>,
) -> Result<Json<Preferences>, ApiError> {
    check_user(&user)?;
    let prefs = notify
        .store
        .preferences(&user)
        .await
        .map_err(|e| ApiError::dependency_failed("read the preferences", e))?;
    Ok(Json(prefs))
}

/// Replace a user's notification preferences.
#[utoipa::path(put, path = "/v1/users/{user_id}/preferences", tag = "notify",
    params(("user_id" = String, Path, description = "User")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Stored"),
        (status = 400, description = "Unknown time zone, bad quiet hours or limit", body = ApiError)))]
async fn put_preferences(
    State(notify): State<Arc<Notify>>,
    Path(user): Path<String>,
    JsonBody(prefs): JsonBody<Preferences>,
) -> Result<Json<Preferences>, ApiError> {
    check_user(&user)?;
    prefs
        .validate()
        .map_err(|e| bad("invalid_preferences", e.to_string()))?;
    notify
        .store
        .put_preferences(&user, &prefs)
        .await
        .map_err(|e| ApiError::dependency_failed("store the preferences", e))?;
    Ok(Json(prefs))
}

/// A user's devices.
#[utoipa::path(get, path = "/v1/users/{user_id}/devices", tag = "notify",
    params(("user_id" = String, Path, description = "User")),
    security(("api_key" = [])),
    responses((status = 200, description = "Devices")))]
async fn list_devices(
    State(notify): State<Arc<Notify>>,
    Path(user): Path<String>,
) -> Result<Json<Vec<Device>>, ApiError> {
    check_user(&user)?;
    let devices = notify
        .store
        .devices(&user)
        .await
        .map_err(|e| ApiError::dependency_failed("read the devices", e))?;
    Ok(Json(devices))
}

/// Register (or replace) a device.
#[utoipa::path(post, path = "/v1/users/{user_id}/devices", tag = "notify",
    params(("user_id" = String, Path, description = "User")),
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Stored"),
        (status = 400, description = "Bad device id, platform or push token", body = ApiError)))]
async fn add_device(
    State(notify): State<Arc<Notify>>,
    Path(user): Path<String>,
    JsonBody(device): JsonBody<Device>,
) -> Result<(StatusCode, Json<Device>), ApiError> {
    check_user(&user)?;
    device
        .validate()
        .map_err(|e| bad("invalid_device", e.to_string()))?;
    notify
        .store
        .put_device(&user, &device)
        .await
        .map_err(|e| ApiError::dependency_failed("store the device", e))?;
    Ok((StatusCode::CREATED, Json(device)))
}

/// Remove a device.
#[utoipa::path(delete, path = "/v1/users/{user_id}/devices/{device_id}", tag = "notify",
    params(("user_id" = String, Path, description = "User"),
        ("device_id" = String, Path, description = "Device")),
    security(("api_key" = [])),
    responses((status = 204, description = "Removed (or was not there)")))]
async fn remove_device(
    State(notify): State<Arc<Notify>>,
    Path((user, device_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    check_user(&user)?;
    notify
        .store
        .delete_device(&user, &device_id)
        .await
        .map_err(|e| ApiError::dependency_failed("remove the device", e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's email address and phone number.
#[utoipa::path(get, path = "/v1/users/{user_id}/contact", tag = "notify",
    params(("user_id" = String, Path, description = "User")),
    security(("api_key" = [])),
    responses((status = 200, description = "Contact")))]
async fn get_contact(
    State(notify): State<Arc<Notify>>,
    Path(user): Path<String>,
) -> Result<Json<Contact>, ApiError> {
    check_user(&user)?;
    let contact = notify
        .store
        .contact(&user)
        .await
        .map_err(|e| ApiError::dependency_failed("read the contact", e))?;
    Ok(Json(contact))
}

/// Replace a user's email address and phone number.
#[utoipa::path(put, path = "/v1/users/{user_id}/contact", tag = "notify",
    params(("user_id" = String, Path, description = "User")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Stored"),
        (status = 400, description = "Bad email address or phone number", body = ApiError)))]
async fn put_contact(
    State(notify): State<Arc<Notify>>,
    Path(user): Path<String>,
    JsonBody(contact): JsonBody<Contact>,
) -> Result<Json<Contact>, ApiError> {
    check_user(&user)?;
    contact
        .validate()
        .map_err(|e| bad("invalid_contact", e.to_string()))?;
    notify
        .store
        .put_contact(&user, &contact)
        .await
        .map_err(|e| ApiError::dependency_failed("store the contact", e))?;
    Ok(Json(contact))
}
