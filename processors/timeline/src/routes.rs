//! The timeline's HTTP routes: post and delete tweets, follow and unfollow (API key), read
//! home timelines and users' tweets.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sixfold_ingress::{ApiError, JsonBody, QueryParams, SystemRoutes};
use sixfold_runtime::failure::now_ms;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::events::{FollowAction, FollowChanged, TweetDeleted};
use crate::id::{cursor_after, parse_cursor};
use crate::model::{Invalid, Tweet, check_follow, check_user_id};
use crate::read::Page;
use crate::{PostError, Timeline};

#[derive(OpenApi)]
#[openapi(
    paths(post_tweet, delete_tweet, follow, unfollow, home, user_tweets, user),
    components(schemas(NewTweet, Tweet, Accepted, FollowEdge, TweetPage, UserSummary)),
    tags((name = "timeline", description = "Home timeline (news feed)"))
)]
struct TimelineDoc;

/// The routes, for the ingress.
pub fn routes(timeline: Arc<Timeline>) -> SystemRoutes {
    SystemRoutes {
        public: Router::new()
            .route("/v1/users/{user_id}/tweets", get(user_tweets))
            .route("/v1/users/{user_id}", get(user))
            .with_state(timeline.clone()),
        protected: Router::new()
            .route("/v1/tweets", post(post_tweet))
            .route("/v1/tweets/{id}", delete(delete_tweet))
            .route("/v1/follows", post(follow).delete(unfollow))
            .route("/v1/timeline/{user_id}", get(home))
            .with_state(timeline),
        openapi: TimelineDoc::openapi(),
    }
}

/// `POST /v1/tweets` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTweet {
    /// Author's user id (1–64 of `[A-Za-z0-9_-]`).
    author_id: String,
    /// Text, 1–280 characters.
    content: String,
    /// Up to 4 http(s) media URLs.
    #[serde(default)]
    media_urls: Vec<String>,
}

/// `202` answer: the event is in the log; views follow shortly.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// Always `accepted`.
    pub status: String,
}

/// `POST`/`DELETE /v1/follows` body.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowEdge {
    /// Who follows.
    pub follower_id: String,
    /// Who is followed.
    pub followee_id: String,
}

/// A page of tweets, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TweetPage {
    /// Whose timeline or tweets.
    pub user_id: String,
    /// The tweets.
    pub tweets: Vec<Tweet>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /v1/users/{id}` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserSummary {
    /// The user.
    pub user_id: String,
    /// Followers.
    pub followers: u64,
    /// Users followed.
    pub following: u64,
    /// `push` (fan-out on write) or `pull` (merged on read: the user reached the threshold and
    /// the processor has moved them over).
    pub fanout: String,
}

/// Page parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Tweets per page, 1–100 (default 20).
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn invalid(error: Invalid) -> ApiError {
    let code = match error {
        Invalid::UserId(_) => "invalid_user_id",
        Invalid::Content { .. } => "invalid_content",
        Invalid::Media(_) => "invalid_media",
        Invalid::TweetId(_) => "invalid_tweet_id",
        Invalid::SelfFollow => "self_follow",
    };
    ApiError::bad_request(code, error.to_string())
}

impl Timeline {
    fn page_params(&self, query: &PageQuery) -> Result<(Option<i64>, usize), ApiError> {
        let max = self.settings.max_page;
        let limit = query.limit.unwrap_or(20.min(max));
        if limit == 0 || limit > max {
            return Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be 1-{max}"),
            ));
        }
        let before = match &query.cursor {
            None => None,
            Some(cursor) => Some(parse_cursor(cursor).ok_or_else(|| {
                ApiError::bad_request("invalid_cursor", "cursor is not one this API returned")
            })?),
        };
        Ok((before, limit))
    }
}

fn tweet_page(user_id: String, page: Page) -> TweetPage {
    TweetPage {
        user_id,
        tweets: page.tweets,
        next_cursor: page.next_before.map(cursor_after),
    }
}

/// Post a tweet.
#[utoipa::path(post, path = "/v1/tweets", tag = "timeline", request_body = NewTweet,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Posted: the event is durable; timelines update shortly", body = Tweet),
        (status = 400, description = "Invalid author, content or media", body = ApiError),
        (status = 401, description = "Missing or unknown API key", body = ApiError),
        (status = 503, description = "Broker unavailable", body = ApiError)))]
async fn post_tweet(
    State(timeline): State<Arc<Timeline>>,
    JsonBody(body): JsonBody<NewTweet>,
) -> Result<(StatusCode, Json<Tweet>), ApiError> {
    let tweet = timeline
        .post(body.author_id, body.content, body.media_urls)
        .await
        .map_err(|e| match e {
            PostError::Invalid(invalid_input) => invalid(invalid_input),
            PostError::Produce(failure) => ApiError::dependency_failed("record the tweet", failure),
        })?;
    Ok((StatusCode::CREATED, Json(tweet)))
}

/// Delete a tweet.
#[utoipa::path(delete, path = "/v1/tweets/{id}", tag = "timeline",
    params(("id" = i64, Path, description = "Tweet id")),
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Deletion recorded; timelines update shortly", body = Accepted),
        (status = 400, description = "Not a tweet id", body = ApiError),
        (status = 404, description = "No such tweet (or not yet stored)", body = ApiError),
        (status = 503, description = "Store or broker unavailable", body = ApiError)))]
async fn delete_tweet(
    State(timeline): State<Arc<Timeline>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let id: i64 = id
        .parse()
        .ok()
        .filter(|&id| crate::id::is_valid(id))
        .ok_or_else(|| invalid(Invalid::TweetId(0)))?;
    let tweet = timeline
        .store
        .tweet(id)
        .await
        .map_err(|e| ApiError::dependency_failed("read the tweet", e))?
        .ok_or_else(|| ApiError::not_found("no such tweet"))?;
    let event = TweetDeleted {
        event_id: uuid::Uuid::new_v4().to_string(),
        occurred_at: now_ms(),
        tweet_id: id,
        author_id: tweet.author_id.clone(),
    };
    let s = &timeline.settings;
    timeline
        .produce(
            &s.deleted_topic,
            &timeline.schemas.deleted,
            &tweet.author_id,
            &event,
        )
        .await
        .map_err(|e| ApiError::dependency_failed("record the deletion", e))?;
    Ok(accepted())
}

fn accepted() -> (StatusCode, Json<Accepted>) {
    (
        StatusCode::ACCEPTED,
        Json(Accepted {
            status: "accepted".into(),
        }),
    )
}

async fn change_follow(
    timeline: &Timeline,
    edge: FollowEdge,
    action: FollowAction,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    check_follow(&edge.follower_id, &edge.followee_id).map_err(invalid)?;
    let event = FollowChanged {
        event_id: uuid::Uuid::new_v4().to_string(),
        occurred_at: now_ms(),
        follower_id: edge.follower_id,
        followee_id: edge.followee_id,
        action,
    };
    let s = &timeline.settings;
    timeline
        .produce(
            &s.follow_topic,
            &timeline.schemas.follow,
            &event.followee_id,
            &event,
        )
        .await
        .map_err(|e| ApiError::dependency_failed("record the follow", e))?;
    Ok(accepted())
}

/// Follow a user.
#[utoipa::path(post, path = "/v1/follows", tag = "timeline", request_body = FollowEdge,
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Recorded; the follower's timeline is backfilled shortly", body = Accepted),
        (status = 400, description = "Invalid user ids or self-follow", body = ApiError),
        (status = 503, description = "Broker unavailable", body = ApiError)))]
async fn follow(
    State(timeline): State<Arc<Timeline>>,
    JsonBody(edge): JsonBody<FollowEdge>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    change_follow(&timeline, edge, FollowAction::Follow).await
}

/// Unfollow a user.
#[utoipa::path(delete, path = "/v1/follows", tag = "timeline", request_body = FollowEdge,
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Recorded; the followee's tweets leave the timeline shortly", body = Accepted),
        (status = 400, description = "Invalid user ids", body = ApiError),
        (status = 503, description = "Broker unavailable", body = ApiError)))]
async fn unfollow(
    State(timeline): State<Arc<Timeline>>,
    JsonBody(edge): JsonBody<FollowEdge>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    change_follow(&timeline, edge, FollowAction::Unfollow).await
}

/// A user's home timeline: their own tweets and those of whom they follow, newest first.
#[utoipa::path(get, path = "/v1/timeline/{user_id}", tag = "timeline",
    params(("user_id" = String, Path, description = "Reader"), PageQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "A page", body = TweetPage),
        (status = 400, description = "Invalid user id, limit or cursor", body = ApiError),
        (status = 503, description = "Store unavailable", body = ApiError)))]
async fn home(
    State(timeline): State<Arc<Timeline>>,
    Path(user_id): Path<String>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Json<TweetPage>, ApiError> {
    check_user_id(&user_id).map_err(invalid)?;
    let (before, limit) = timeline.page_params(&query)?;
    let page = timeline
        .home(&user_id, before, limit)
        .await
        .map_err(|e| ApiError::dependency_failed("read the timeline", e))?;
    Ok(Json(tweet_page(user_id, page)))
}

/// A user's own tweets, newest first.
#[utoipa::path(get, path = "/v1/users/{user_id}/tweets", tag = "timeline",
    params(("user_id" = String, Path, description = "Author"), PageQuery),
    responses(
        (status = 200, description = "A page", body = TweetPage),
        (status = 400, description = "Invalid user id, limit or cursor", body = ApiError),
        (status = 503, description = "Store unavailable", body = ApiError)))]
async fn user_tweets(
    State(timeline): State<Arc<Timeline>>,
    Path(user_id): Path<String>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Json<TweetPage>, ApiError> {
    check_user_id(&user_id).map_err(invalid)?;
    let (before, limit) = timeline.page_params(&query)?;
    let page = timeline
        .user_tweets(&user_id, before, limit)
        .await
        .map_err(|e| ApiError::dependency_failed("read the tweets", e))?;
    Ok(Json(tweet_page(user_id, page)))
}

/// A user's follower and following counts and fan-out path.
#[utoipa::path(get, path = "/v1/users/{user_id}", tag = "timeline",
    params(("user_id" = String, Path, description = "User")),
    responses(
        (status = 200, description = "Counts", body = UserSummary),
        (status = 400, description = "Invalid user id", body = ApiError),
        (status = 503, description = "Store unavailable", body = ApiError)))]
async fn user(
    State(timeline): State<Arc<Timeline>>,
    Path(user_id): Path<String>,
) -> Result<Json<UserSummary>, ApiError> {
    check_user_id(&user_id).map_err(invalid)?;
    let read = async {
        let followers = timeline.store.follower_count(&user_id).await?.count;
        let following = timeline.store.following_count(&user_id).await?;
        let celebrity = timeline.store.is_celebrity(&user_id).await?;
        Ok::<_, crate::storage::StorageError>((followers, following, celebrity))
    };
    let (followers, following, celebrity) = read
        .await
        .map_err(|e| ApiError::dependency_failed("read the counts", e))?;
    let fanout = if celebrity { "pull" } else { "push" };
    Ok(Json(UserSummary {
        user_id,
        followers,
        following,
        fanout: fanout.into(),
    }))
}
