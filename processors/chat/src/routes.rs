//! Chat's HTTP routes: tokens, conversations and members, history and attachments (API key),
//! the WebSocket (chat token) and attachment downloads (public, by content hash).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sixfold_ingress::{ApiError, JsonBody, QueryParams, SystemRoutes};
use sixfold_runtime::failure::now_ms;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::Chat;
use crate::conversation::{
    ConversationError, ConversationKind, Membership, Role, direct_conversation_id,
    is_valid_conversation_id, new_group_id,
};
use crate::events::{ChatMembership, MembershipAction, new_event_id};
use crate::media::{MediaError, MediaStoreError};
use crate::protocol::{ContentType, Media};
use crate::storage::StoredMessage;
use crate::token::TokenError;
use crate::user::is_valid_user_id;

/// How long a membership route waits for the processor to store the change.
const MATERIALIZE_WAIT: Duration = Duration::from_secs(5);

#[derive(OpenApi)]
#[openapi(
    paths(issue_token, create_conversation, list_conversations, conversation, add_member,
        remove_member, set_role, transfer, messages, upload_media, download_media, websocket),
    components(schemas(TokenRequest, TokenAnswer, NewConversation, ConversationView, MemberView,
        ConversationList, ListItem, NewMember, NewRole, NewOwner, MessagePage, MessageView, Media, ContentType)),
    tags((name = "chat", description = "Chat: conversations, history, attachments, WebSocket gateway"))
)]
struct ChatDoc;

/// The routes, for the ingress.
pub fn routes(chat: Arc<Chat>) -> SystemRoutes {
    let upload_limit = chat.settings.max_media_bytes + 1;
    SystemRoutes {
        public: Router::new()
            .route("/v1/chat/ws", get(websocket))
            .route("/v1/chat/media/{hash}", get(download_media))
            .with_state(chat.clone()),
        protected: Router::new()
            .route("/v1/chat/tokens", post(issue_token))
            .route(
                "/v1/chat/conversations",
                post(create_conversation).get(list_conversations),
            )
            .route("/v1/chat/conversations/{id}", get(conversation))
            .route("/v1/chat/conversations/{id}/members", post(add_member))
            .route(
                "/v1/chat/conversations/{id}/members/{user_id}",
                delete(remove_member).put(set_role),
            )
            .route("/v1/chat/conversations/{id}/owner", put(transfer))
            .route("/v1/chat/conversations/{id}/messages", get(messages))
            .route(
                "/v1/chat/media",
                post(upload_media).layer(DefaultBodyLimit::max(upload_limit)),
            )
            .with_state(chat),
        openapi: ChatDoc::openapi(),
    }
}

/// `POST /v1/chat/tokens` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The user the token lets connect.
    user_id: String,
}

/// A chat token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenAnswer {
    /// Bearer token for `GET /v1/chat/ws` (header `Authorization: Bearer`, or `?token=`).
    pub token: String,
    /// Whose token it is.
    pub user_id: String,
    /// When it stops working, ms since the epoch.
    pub expires_at: i64,
}

/// `POST /v1/chat/conversations` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    /// Members, creator first: two make a 1:1 conversation, 3–500 a group owned by the first.
    members: Vec<String>,
    /// The group's name (groups only).
    #[serde(default)]
    name: Option<String>,
}

/// A conversation and its members.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationView {
    /// Its id.
    pub conversation_id: String,
    /// `direct` or `group`.
    pub kind: String,
    /// Group name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Members and roles.
    pub members: Vec<MemberView>,
    /// False when it was already there (a 1:1 pair asked for again), or when the processor
    /// had not stored it within 5 s (status 202).
    pub created: bool,
}

/// One member.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    /// The user.
    pub user_id: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
}

/// `GET /v1/chat/conversations` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Whose conversations.
    user_id: String,
    /// How many, 1–100 (default 20).
    limit: Option<usize>,
}

/// A user's conversations, newest message first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationList {
    /// Whose list.
    pub user_id: String,
    /// The conversations.
    pub conversations: Vec<ListItem>,
}

/// One entry of a conversation list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ListItem {
    /// The conversation.
    pub conversation_id: String,
    /// `direct` or `group`.
    pub kind: String,
    /// Group name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Sequence number of the newest message (0: none yet).
    pub last_seq: u64,
    /// When it was sent, ms since the epoch.
    pub last_message_at: i64,
    /// Preview of it.
    pub last_preview: String,
    /// Who sent it.
    pub last_sender_id: String,
    /// Messages after the user's read position.
    pub unread: u64,
    /// The user's delivered position.
    pub delivered_up_to: u64,
    /// The user's read position.
    pub read_up_to: u64,
}

/// `POST /v1/chat/conversations/{id}/members` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// Who adds (the owner or an admin).
    actor_id: String,
    /// Who is added.
    user_id: String,
}

/// `PUT /v1/chat/conversations/{id}/members/{user_id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    /// Who changes it (the owner).
    actor_id: String,
    /// `admin` or `member`.
    role: String,
}

/// `PUT /v1/chat/conversations/{id}/owner` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOwner {
    /// The current owner (who stays as an admin).
    actor_id: String,
    /// The member who becomes the owner.
    user_id: String,
}

/// `DELETE /v1/chat/conversations/{id}/members/{user_id}` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    /// Who removes (the user themself to leave, or the owner or an admin).
    actor_id: String,
}

/// `GET /v1/chat/conversations/{id}/messages` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Who reads (must be a member).
    user_id: String,
    /// Messages before this sequence number (default: the newest).
    before: Option<u64>,
    /// How many, 1–100 (default 50).
    limit: Option<usize>,
}

/// A page of history, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessagePage {
    /// The conversation.
    pub conversation_id: String,
    /// Messages, oldest first.
    pub messages: Vec<MessageView>,
    /// Pass as `before` for the older page; absent on the first page of the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}

/// One message of the history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageView {
    /// Its id.
    pub message_id: String,
    /// Its sequence number.
    pub seq: u64,
    /// Who sent it.
    pub sender_id: String,
    /// When, ms since the epoch.
    pub sent_at: i64,
    /// Text or caption.
    pub content: String,
    /// Kind.
    pub content_type: ContentType,
    /// Attachment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Media>,
}

/// `POST /v1/chat/media` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Original file name, shown by clients.
    file_name: Option<String>,
}

/// `GET /v1/chat/ws` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SocketQuery {
    /// The chat token, for clients that cannot set headers (browsers).
    token: Option<String>,
}

fn invalid_user(field: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_user_id",
        format!("{field} must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'"),
    )
}

fn conversation_error(error: ConversationError) -> ApiError {
    use ConversationError as E;
    let message = error.to_string();
    match error {
        E::InvalidUserId(_) | E::SameUser | E::TooFewMembers { .. } | E::TooManyMembers { .. } => {
            ApiError::bad_request("invalid_members", message)
        }
        E::NotMember(_) => ApiError::new(StatusCode::NOT_FOUND, "not_member", message),
        E::AlreadyMember(_) => ApiError::conflict("already_member", message),
        E::Inconsistent(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message),
        E::ActorNotMember(_)
        | E::NotAdmin(_)
        | E::OnlyOwnerRemovesAdmin
        | E::OwnerCannotBeRemoved
        | E::NotOwner(_)
        | E::OwnershipByTransferOnly
        | E::DirectIsFixed => ApiError::new(StatusCode::FORBIDDEN, "forbidden", message),
    }
}

fn check_conversation_id(id: &str) -> Result<(), ApiError> {
    if is_valid_conversation_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_conversation_id",
            "not a conversation id (d-… or g-… with 32 hex digits)",
        ))
    }
}

fn view(
    conversation_id: &str,
    kind: ConversationKind,
    name: Option<String>,
    m: &Membership,
    created: bool,
) -> ConversationView {
    ConversationView {
        conversation_id: conversation_id.to_owned(),
        kind: match kind {
            ConversationKind::Direct => "direct".into(),
            ConversationKind::Group => "group".into(),
        },
        name,
        members: m
            .members()
            .map(|(user_id, role)| MemberView {
                user_id: user_id.to_owned(),
                role: role.as_str().to_owned(),
            })
            .collect(),
        created,
    }
}

impl Chat {
    /// The stored membership, 404 if the conversation does not exist.
    async fn stored_membership(&self, conv: &str) -> Result<Membership, ApiError> {
        self.store
            .membership(conv, self.settings.max_group_members)
            .await
            .map_err(|e| ApiError::dependency_failed("read the conversation", e))?
            .ok_or_else(|| ApiError::not_found("no such conversation"))
    }

    /// Produces a membership event and waits until `done` holds for the stored members.
    async fn change_membership(
        &self,
        event: ChatMembership,
        done: impl Fn(&Membership) -> bool,
    ) -> Result<Option<Membership>, ApiError> {
        let conv = event.conversation_id.clone();
        self.produce(
            &self.settings.membership_topic,
            &self.schemas.membership,
            &conv,
            &event,
        )
        .await
        .map_err(|e| ApiError::dependency_failed("record the change", e))?;
        let started = Instant::now();
        while started.elapsed() < MATERIALIZE_WAIT {
            if let Ok(Some(m)) = self
                .store
                .membership(&conv, self.settings.max_group_members)
                .await
                && done(&m)
            {
                return Ok(Some(m));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(None)
    }
}

/// Issue a chat token.
#[utoipa::path(post, path = "/v1/chat/tokens", tag = "chat", request_body = TokenRequest,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "A token for the user's WebSocket", body = TokenAnswer),
        (status = 400, description = "Invalid user id", body = ApiError)))]
async fn issue_token(
    State(chat): State<Arc<Chat>>,
    JsonBody(body): JsonBody<TokenRequest>,
) -> Result<(StatusCode, Json<TokenAnswer>), ApiError> {
    let now = SystemTime::now();
    let token = chat
        .tokens
        .issue(&body.user_id, now)
        .map_err(|_| invalid_user("user_id"))?;
    let expires_at = now_ms() + chat.tokens.ttl().as_millis() as i64;
    Ok((
        StatusCode::CREATED,
        Json(TokenAnswer {
            token,
            user_id: body.user_id,
            expires_at,
        }),
    ))
}

/// Create a conversation (or find the 1:1 of a pair).
#[utoipa::path(post, path = "/v1/chat/conversations", tag = "chat", request_body = NewConversation,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Created and stored", body = ConversationView),
        (status = 200, description = "The pair's existing 1:1 conversation", body = ConversationView),
        (status = 202, description = "Recorded; not yet stored by the processor", body = ConversationView),
        (status = 400, description = "Invalid members or name", body = ApiError),
        (status = 503, description = "Store or broker unavailable", body = ApiError)))]
async fn create_conversation(
    State(chat): State<Arc<Chat>>,
    JsonBody(body): JsonBody<NewConversation>,
) -> Result<(StatusCode, Json<ConversationView>), ApiError> {
    let Some((creator, others)) = body.members.split_first() else {
        return Err(ApiError::bad_request("invalid_members", "members is empty"));
    };
    let max = chat.settings.max_group_members;
    let (conv, planned) = if body.members.len() == 2 {
        let conv = direct_conversation_id(creator, &others[0]).map_err(conversation_error)?;
        let planned = Membership::new_direct(creator, &others[0]).map_err(conversation_error)?;
        if body.name.is_some() {
            return Err(ApiError::bad_request(
                "invalid_name",
                "a 1:1 conversation has no name",
            ));
        }
        if let Some(existing) = chat
            .store
            .membership(&conv, max)
            .await
            .map_err(|e| ApiError::dependency_failed("read the conversation", e))?
        {
            let view = view(&conv, ConversationKind::Direct, None, &existing, false);
            return Ok((StatusCode::OK, Json(view)));
        }
        (conv, planned)
    } else {
        if let Some(name) = &body.name
            && (name.trim().is_empty() || name.chars().count() > 100)
        {
            return Err(ApiError::bad_request(
                "invalid_name",
                "name must be 1-100 characters",
            ));
        }
        let planned = Membership::new_group(creator, others, max).map_err(conversation_error)?;
        (new_group_id(), planned)
    };
    let kind = planned.kind();
    let event = ChatMembership {
        event_id: new_event_id(),
        occurred_at: now_ms(),
        conversation_id: conv.clone(),
        action: MembershipAction::Created,
        actor_id: creator.clone(),
        user_ids: others.to_vec(),
        role: None,
        name: body.name.clone(),
    };
    let stored = chat.change_membership(event, |_| true).await?;
    let (status, members) = match &stored {
        Some(m) => (StatusCode::CREATED, m),
        None => (StatusCode::ACCEPTED, &planned),
    };
    Ok((
        status,
        Json(view(&conv, kind, body.name, members, stored.is_some())),
    ))
}

/// A user's conversations.
#[utoipa::path(get, path = "/v1/chat/conversations", tag = "chat", params(ListQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Newest message first, with unread counts", body = ConversationList),
        (status = 400, description = "Invalid user id or limit", body = ApiError)))]
async fn list_conversations(
    State(chat): State<Arc<Chat>>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<ConversationList>, ApiError> {
    if !is_valid_user_id(&query.user_id) {
        return Err(invalid_user("user_id"));
    }
    let limit = page_limit(query.limit, 20, chat.settings.max_page)?;
    let entries = chat
        .store
        .conversations_of(&query.user_id, limit)
        .await
        .map_err(|e| ApiError::dependency_failed("read the conversations", e))?;
    let conversations = entries
        .into_iter()
        .map(|e| ListItem {
            kind: e.meta.kind.clone(),
            name: e.meta.name,
            unread: e.state.last_seq.saturating_sub(e.positions.read_up_to),
            last_seq: e.state.last_seq,
            last_message_at: e.state.last_message_at_ms,
            last_preview: e.state.last_preview,
            last_sender_id: e.state.last_sender_id,
            delivered_up_to: e.positions.delivered_up_to,
            read_up_to: e.positions.read_up_to,
            conversation_id: e.conversation_id,
        })
        .collect();
    Ok(Json(ConversationList {
        user_id: query.user_id,
        conversations,
    }))
}

fn page_limit(limit: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(default.min(max));
    if limit == 0 || limit > max {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be 1-{max}"),
        ));
    }
    Ok(limit)
}

/// A conversation's members.
#[utoipa::path(get, path = "/v1/chat/conversations/{id}", tag = "chat",
    params(("id" = String, Path, description = "Conversation id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The conversation", body = ConversationView),
        (status = 404, description = "No such conversation", body = ApiError)))]
async fn conversation(
    State(chat): State<Arc<Chat>>,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, ApiError> {
    check_conversation_id(&id)?;
    let meta = chat
        .store
        .meta(&id)
        .await
        .map_err(|e| ApiError::dependency_failed("read the conversation", e))?
        .ok_or_else(|| ApiError::not_found("no such conversation"))?;
    let membership = chat.stored_membership(&id).await?;
    Ok(Json(view(&id, meta.kind(), meta.name, &membership, false)))
}

/// Add a member to a group.
#[utoipa::path(post, path = "/v1/chat/conversations/{id}/members", tag = "chat", request_body = NewMember,
    params(("id" = String, Path, description = "Conversation id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Added and stored", body = ConversationView),
        (status = 202, description = "Recorded; not yet stored", body = ConversationView),
        (status = 403, description = "The actor may not add members", body = ApiError),
        (status = 404, description = "No such conversation", body = ApiError),
        (status = 409, description = "Already a member", body = ApiError)))]
async fn add_member(
    State(chat): State<Arc<Chat>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NewMember>,
) -> Result<(StatusCode, Json<ConversationView>), ApiError> {
    check_conversation_id(&id)?;
    let mut planned = chat.stored_membership(&id).await?;
    planned
        .add(&body.actor_id, &body.user_id)
        .map_err(conversation_error)?;
    let event = ChatMembership {
        event_id: new_event_id(),
        occurred_at: now_ms(),
        conversation_id: id.clone(),
        action: MembershipAction::Added,
        actor_id: body.actor_id,
        user_ids: vec![body.user_id.clone()],
        role: None,
        name: None,
    };
    membership_answer(&chat, &id, event, planned, move |m| {
        m.contains(&body.user_id)
    })
    .await
}

/// Remove a member (or leave).
#[utoipa::path(delete, path = "/v1/chat/conversations/{id}/members/{user_id}", tag = "chat",
    params(("id" = String, Path, description = "Conversation id"),
        ("user_id" = String, Path, description = "Member to remove"), RemoveQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Removed and stored", body = ConversationView),
        (status = 202, description = "Recorded; not yet stored", body = ConversationView),
        (status = 403, description = "The actor may not remove this member", body = ApiError),
        (status = 404, description = "No such conversation or member", body = ApiError)))]
async fn remove_member(
    State(chat): State<Arc<Chat>>,
    Path((id, user_id)): Path<(String, String)>,
    QueryParams(query): QueryParams<RemoveQuery>,
) -> Result<(StatusCode, Json<ConversationView>), ApiError> {
    check_conversation_id(&id)?;
    let mut planned = chat.stored_membership(&id).await?;
    planned
        .remove(&query.actor_id, &user_id)
        .map_err(conversation_error)?;
    let event = ChatMembership {
        event_id: new_event_id(),
        occurred_at: now_ms(),
        conversation_id: id.clone(),
        action: MembershipAction::Removed,
        actor_id: query.actor_id,
        user_ids: vec![user_id.clone()],
        role: None,
        name: None,
    };
    membership_answer(&chat, &id, event, planned, move |m| !m.contains(&user_id)).await
}

/// Make a member an admin or a plain member.
#[utoipa::path(put, path = "/v1/chat/conversations/{id}/members/{user_id}", tag = "chat", request_body = NewRole,
    params(("id" = String, Path, description = "Conversation id"),
        ("user_id" = String, Path, description = "Member whose role changes")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Changed and stored", body = ConversationView),
        (status = 202, description = "Recorded; not yet stored", body = ConversationView),
        (status = 400, description = "Not a role (admin or member)", body = ApiError),
        (status = 403, description = "Only the owner changes roles; ownership moves by transfer", body = ApiError),
        (status = 404, description = "No such conversation or member", body = ApiError)))]
async fn set_role(
    State(chat): State<Arc<Chat>>,
    Path((id, user_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<NewRole>,
) -> Result<(StatusCode, Json<ConversationView>), ApiError> {
    check_conversation_id(&id)?;
    let role = match body.role.as_str() {
        "admin" => Role::Admin,
        "member" => Role::Member,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_role",
                "role must be admin or member",
            ));
        }
    };
    let mut planned = chat.stored_membership(&id).await?;
    planned
        .set_role(&body.actor_id, &user_id, role)
        .map_err(conversation_error)?;
    let event = ChatMembership {
        event_id: new_event_id(),
        occurred_at: now_ms(),
        conversation_id: id.clone(),
        action: MembershipAction::RoleChanged,
        actor_id: body.actor_id,
        user_ids: vec![user_id.clone()],
        role: Some(body.role),
        name: None,
    };
    membership_answer(&chat, &id, event, planned, move |m| {
        m.role(&user_id) == Some(role)
    })
    .await
}

/// Hand a group's ownership to another member.
#[utoipa::path(put, path = "/v1/chat/conversations/{id}/owner", tag = "chat", request_body = NewOwner,
    params(("id" = String, Path, description = "Conversation id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Transferred and stored", body = ConversationView),
        (status = 202, description = "Recorded; not yet stored", body = ConversationView),
        (status = 403, description = "The actor is not the owner", body = ApiError),
        (status = 404, description = "No such conversation or member", body = ApiError)))]
async fn transfer(
    State(chat): State<Arc<Chat>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NewOwner>,
) -> Result<(StatusCode, Json<ConversationView>), ApiError> {
    check_conversation_id(&id)?;
    let mut planned = chat.stored_membership(&id).await?;
    planned
        .transfer(&body.actor_id, &body.user_id)
        .map_err(conversation_error)?;
    let new_owner = body.user_id.clone();
    let event = ChatMembership {
        event_id: new_event_id(),
        occurred_at: now_ms(),
        conversation_id: id.clone(),
        action: MembershipAction::Transferred,
        actor_id: body.actor_id,
        user_ids: vec![body.user_id],
        role: None,
        name: None,
    };
    membership_answer(&chat, &id, event, planned, move |m| {
        m.role(&new_owner) == Some(Role::Owner)
    })
    .await
}

async fn membership_answer(
    chat: &Chat,
    id: &str,
    event: ChatMembership,
    planned: Membership,
    done: impl Fn(&Membership) -> bool,
) -> Result<(StatusCode, Json<ConversationView>), ApiError> {
    let meta = chat
        .store
        .meta(id)
        .await
        .map_err(|e| ApiError::dependency_failed("read the conversation", e))?
        .ok_or_else(|| ApiError::not_found("no such conversation"))?;
    let stored = chat.change_membership(event, done).await?;
    let (status, members) = match &stored {
        Some(m) => (StatusCode::OK, m),
        None => (StatusCode::ACCEPTED, &planned),
    };
    Ok((
        status,
        Json(view(id, meta.kind(), meta.name, members, false)),
    ))
}

/// A page of a conversation's history.
#[utoipa::path(get, path = "/v1/chat/conversations/{id}/messages", tag = "chat",
    params(("id" = String, Path, description = "Conversation id"), HistoryQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Messages before `before`, oldest first", body = MessagePage),
        (status = 403, description = "The user is not a member", body = ApiError),
        (status = 404, description = "No such conversation", body = ApiError)))]
async fn messages(
    State(chat): State<Arc<Chat>>,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    check_conversation_id(&id)?;
    if !is_valid_user_id(&query.user_id) {
        return Err(invalid_user("user_id"));
    }
    let limit = page_limit(query.limit, 50, chat.settings.max_page)?;
    let membership = chat.stored_membership(&id).await?;
    if !membership.contains(&query.user_id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_member",
            format!("{:?} is not a member of {id}", query.user_id),
        ));
    }
    let before = match query.before {
        Some(before) => before,
        None => {
            chat.store
                .last_seq(&id)
                .await
                .map_err(|e| ApiError::dependency_failed("read the conversation", e))?
                + 1
        }
    };
    let page = chat
        .store
        .messages_before(&id, before, limit)
        .await
        .map_err(|e| ApiError::dependency_failed("read the history", e))?;
    let next_before = page.first().map(|m| m.seq).filter(|seq| *seq > 1);
    Ok(Json(MessagePage {
        conversation_id: id.clone(),
        messages: page.into_iter().map(|m| message_view(&id, m)).collect(),
        next_before,
    }))
}

fn message_view(conv: &str, m: StoredMessage) -> MessageView {
    let frame = m.frame(conv);
    MessageView {
        message_id: frame.message_id,
        seq: frame.seq,
        sender_id: frame.sender_id,
        sent_at: frame.sent_at,
        content: frame.content,
        content_type: frame.content_type,
        media: frame.media,
    }
}

/// Upload an attachment (the raw bytes, with their `Content-Type`).
#[utoipa::path(post, path = "/v1/chat/media", tag = "chat", params(UploadQuery),
    request_body(content = Vec<u8>, description = "The file's bytes", content_type = "application/octet-stream"),
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Stored; put the answer in a message's `media`", body = Media),
        (status = 400, description = "Empty, or the bytes do not match the content type", body = ApiError),
        (status = 413, description = "Over the size limit", body = ApiError),
        (status = 415, description = "Content type not accepted", body = ApiError)))]
async fn upload_media(
    State(chat): State<Arc<Chat>>,
    QueryParams(query): QueryParams<UploadQuery>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Media>), ApiError> {
    let max = chat.settings.max_media_bytes;
    let body = body.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("attachments are at most {max} bytes"),
        )
    })?;
    if let Some(name) = &query.file_name
        && (name.is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            "invalid_file_name",
            "file_name must be 1-255 characters without control characters",
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream");
    match chat.upload_media(content_type, body, query.file_name).await {
        Ok(media) => Ok((StatusCode::CREATED, Json(media))),
        Err(MediaStoreError::Invalid(error)) => Err(match error {
            MediaError::TooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                error.to_string(),
            ),
            MediaError::TypeNotAllowed(..) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                error.to_string(),
            ),
            MediaError::Empty | MediaError::Mismatch(_) => {
                ApiError::bad_request("invalid_media", error.to_string())
            }
        }),
        Err(error) => Err(ApiError::dependency_failed("store the attachment", error)),
    }
}

/// Download an attachment.
#[utoipa::path(get, path = "/v1/chat/media/{hash}", tag = "chat",
    params(("hash" = String, Path, description = "SHA-256 from the upload's URL")),
    responses(
        (status = 200, description = "The bytes, with the uploaded content type"),
        (status = 404, description = "No such attachment", body = ApiError)))]
async fn download_media(
    State(chat): State<Arc<Chat>>,
    Path(hash): Path<String>,
) -> Result<Response, ApiError> {
    match chat.download_media(&hash).await {
        Ok(Some((mime, body))) => Ok((
            [
                (header::CONTENT_TYPE, mime),
                (
                    header::CACHE_CONTROL,
                    "public, max-age=31536000, immutable".into(),
                ),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
            ],
            body,
        )
            .into_response()),
        Ok(None) => Err(ApiError::not_found("no such attachment")),
        Err(error) => Err(ApiError::dependency_failed("read the attachment", error)),
    }
}

/// Open a chat WebSocket (see the frame protocol in the README).
#[utoipa::path(get, path = "/v1/chat/ws", tag = "chat", params(SocketQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket"),
        (status = 401, description = "Missing, malformed, expired or forged token", body = ApiError),
        (status = 426, description = "Not a WebSocket upgrade request", body = ApiError)))]
async fn websocket(
    State(chat): State<Arc<Chat>>,
    QueryParams(query): QueryParams<SocketQuery>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let Some(token) = bearer.or(query.token) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "send a chat token as Authorization: Bearer <token> or ?token=<token>",
        ));
    };
    let user = chat
        .tokens
        .verify(&token, SystemTime::now())
        .map_err(|e: TokenError| {
            ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", e.to_string())
        })?;
    let upgrade = upgrade.map_err(|e| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            e.body_text(),
        )
    })?;
    Ok(upgrade
        .max_message_size(crate::protocol::MAX_FRAME_BYTES * 2)
        .on_upgrade(move |socket| chat.serve_socket(user, socket)))
}
