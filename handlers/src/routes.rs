//! The WebSocket route handlers: `$connect`, `$disconnect`, `subscribe`, `unsubscribe`, `resume`.
//! Each takes the API Gateway event and answers with a status code; all but the first two also with
//! one frame as the body, which their route response sends back to the client (no
//! PostToConnection): the acknowledgement once the record is written (and a replay posted), or for
//! a bad or refused frame `{"type":"error",...}`, having written nothing. Only storage failures and
//! events that are not WebSocket route events are errors, typed by whether another attempt may pass.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue};

use crate::auth::Identity;
use crate::authorizer::WEBSOCKET_PROTOCOL;
use crate::error::HandlerError;
use crate::management::{self, PostOutcome};
use crate::{frames, history, store, App};

const PROTOCOL_HEADER: &str = "sec-websocket-protocol";

fn response(status_code: i64) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status_code;
    response
}

/// `status` with `frame` as the body, which the route response sends to the client.
fn answer(status: i64, frame: String) -> ApiGatewayProxyResponse {
    let mut response = response(status);
    response.body = Some(Body::Text(frame));
    response
}

/// 200 with `{"type": kind, "entityId": ..., "seq": ...}` (`seq` on a stack with history).
fn acknowledged(kind: &str, entity_id: &str, seq: Option<u64>) -> ApiGatewayProxyResponse {
    answer(200, frames::acknowledgement(kind, entity_id, seq))
}

/// `status` (400: a bad frame, 403: not allowed) with `{"type":"error","message":...}`.
fn refused(status: i64, message: &str) -> ApiGatewayProxyResponse {
    answer(status, frames::error_payload(message))
}

type Result<T> = std::result::Result<T, HandlerError>;

fn connection_id(request: &ApiGatewayWebsocketProxyRequest) -> Result<&str> {
    request
        .request_context
        .connection_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| HandlerError::invalid_event(anyhow::anyhow!("the request has no requestContext.connectionId")))
}

/// The sub-protocol `$connect` echoes from the client's `Sec-WebSocket-Protocol` (a comma-separated
/// list), or browsers drop the connection: `websocket` when offered (the token convention
/// `websocket, <token>`), else the first one; never one of an authenticated client's other
/// values, which may be its token.
pub fn chosen_protocol(headers: &HeaderMap, authenticated: bool) -> Option<HeaderValue> {
    let offered: Vec<&str> = headers
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|protocol| !protocol.is_empty())
        .collect();
    // The echo is the client's own spelling: browsers compare it with what they offered.
    let chosen = match offered
        .iter()
        .find(|protocol| protocol.eq_ignore_ascii_case(WEBSOCKET_PROTOCOL))
    {
        Some(websocket) => Some(*websocket),
        None if authenticated => None,
        None => offered.first().copied(),
    };
    chosen.and_then(|protocol| HeaderValue::from_str(protocol).ok())
}

/// Who the authorizer said this connection belongs to; `None` on a stack without `auth:`.
fn identity(request: &ApiGatewayWebsocketProxyRequest) -> Option<Identity> {
    Identity::from_context(&request.request_context.authorizer.fields)
}

/// `$connect`: stores the connection record (with its user, on a stack with `auth:`) and accepts
/// the connection.
pub async fn connect(app: &App, request: ApiGatewayWebsocketProxyRequest) -> Result<ApiGatewayProxyResponse> {
    let connection_id = connection_id(&request)?;
    let context = &request.request_context;
    let connected_at = if context.connected_at > 0 {
        context.connected_at
    } else {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|now| now.as_millis() as i64)
            .unwrap_or_default()
    };
    let identity = identity(&request);
    let user_id = identity.as_ref().map(|identity| identity.user_id.as_str());
    store::put_connection(
        app,
        connection_id,
        context.identity.source_ip.as_deref(),
        connected_at,
        user_id,
    )
    .await?;
    tracing::info!(connection_id, user_id, "connected");
    let mut accepted = response(200);
    if let Some(protocol) = chosen_protocol(&request.headers, identity.is_some()) {
        accepted.headers.insert(PROTOCOL_HEADER, protocol);
    }
    Ok(accepted)
}

/// `$disconnect`: deletes the connection and all its subscriptions.
pub async fn disconnect(app: &App, request: ApiGatewayWebsocketProxyRequest) -> Result<ApiGatewayProxyResponse> {
    let connection_id = connection_id(&request)?;
    let deleted = store::delete_connection_records(app, connection_id).await?;
    tracing::info!(connection_id, deleted, "disconnected");
    Ok(response(200))
}

/// `subscribe`: stores the subscription and refreshes the connection's ttl. On a stack with
/// `auth:`, an entity outside the token's patterns gets an error frame and writes nothing, and so
/// does a subscription past the connection's maximum (`MAX_SUBSCRIPTIONS`).
pub async fn subscribe(app: &App, request: ApiGatewayWebsocketProxyRequest) -> Result<ApiGatewayProxyResponse> {
    subscribe_until(app, request, tokio::time::Instant::now() + REPLAY_TIME_UNBOUNDED).await
}

/// [`subscribe`] in an invocation that ends at `deadline`: a replay that cannot be posted in time
/// stops and answers `resync` (the client refetches), rather than being cut off unanswered.
pub async fn subscribe_until(
    app: &App,
    request: ApiGatewayWebsocketProxyRequest,
    deadline: tokio::time::Instant,
) -> Result<ApiGatewayProxyResponse> {
    let connection_id = connection_id(&request)?;
    let entity_id = match valid_frame(&request, connection_id, "subscribe") {
        Ok(entity_id) => entity_id,
        Err(reason) => return Ok(refused(400, &reason)),
    };
    let since = match frames::since_of(request.body.as_deref()) {
        Ok(since) => since,
        Err(reason) => return Ok(refused(400, &reason.0)),
    };
    if let Some(identity) = identity(&request).filter(|identity| !identity.allows(&entity_id)) {
        let refusal = format!("not allowed to subscribe to {entity_id:?}");
        tracing::info!(
            connection_id,
            user_id = identity.user_id,
            entity_id,
            "refused a subscription"
        );
        return Ok(refused(403, &refusal));
    }
    let max = app.config.max_subscriptions;
    if let store::Subscribed::AtLimit(held) = store::put_subscription(app, connection_id, &entity_id, max).await? {
        tracing::info!(
            connection_id,
            entity_id,
            held,
            "refused a subscription over the maximum"
        );
        let refusal = format!(
            "not subscribed to {entity_id:?}: this connection holds {held} subscriptions, the most it may; unsubscribe from one first"
        );
        return Ok(refused(403, &refusal));
    }
    tracing::info!(connection_id, entity_id, since, "subscribed");
    if app.config.history_window.is_none() {
        return Ok(acknowledged("subscribed", &entity_id, None));
    }
    Ok(
        match catch_up(app, connection_id, history::Stream::Entity(&entity_id), since, deadline).await? {
            Resumed::UpTo(latest) => acknowledged("subscribed", &entity_id, Some(latest)),
            Resumed::Resync(latest) => acknowledged("resync", &entity_id, Some(latest)),
        },
    )
}

/// `resume`: replays the notifications the connection's user missed after the frame's `since`,
/// then answers `{"type":"resumed","userId":...,"seq":...}` (or `resync`); without `since`,
/// replays nothing and answers the user's latest `seq`. The user is the token's (the authorizer
/// context's, which `$connect` indexed the connection under): a connection without one, or a
/// stack without history, gets an error frame.
pub async fn resume(app: &App, request: ApiGatewayWebsocketProxyRequest) -> Result<ApiGatewayProxyResponse> {
    resume_until(app, request, tokio::time::Instant::now() + REPLAY_TIME_UNBOUNDED).await
}

/// [`resume`] in an invocation that ends at `deadline` (see [`subscribe_until`]).
pub async fn resume_until(
    app: &App,
    request: ApiGatewayWebsocketProxyRequest,
    deadline: tokio::time::Instant,
) -> Result<ApiGatewayProxyResponse> {
    let connection_id = connection_id(&request)?;
    let since = match frames::parse_resume_frame(request.body.as_deref(), request.is_base64_encoded) {
        Ok(since) => since,
        Err(refusal) => {
            tracing::info!(connection_id, reason = %refusal, "refused a frame");
            return Ok(refused(400, &refusal.0));
        }
    };
    let Some(identity) = identity(&request) else {
        tracing::info!(connection_id, "refused a resume without a user");
        return Ok(refused(
            403,
            "resume needs a signed-in connection: user notifications follow the token's user",
        ));
    };
    if app.config.history_window.is_none() {
        return Ok(refused(
            400,
            "this stack keeps no history (history.window_seconds is 0)",
        ));
    }
    let user_id = identity.user_id.as_str();
    let resumed = catch_up(app, connection_id, history::Stream::User(user_id), since, deadline).await?;
    tracing::info!(connection_id, user_id, since, ?resumed, "resumed");
    Ok(match resumed {
        Resumed::UpTo(latest) => answer(200, frames::user_acknowledgement("resumed", user_id, latest)),
        Resumed::Resync(latest) => answer(200, frames::user_acknowledgement("resync", user_id, latest)),
    })
}

/// Brings a connection up to date on `stream`: replays what it missed after `since` and returns
/// where the stream stands; without `since`, only the latest seq. The replay stops a tenth of the
/// time before `deadline` (the answer itself needs a moment after it) and ends in a resync rather
/// than being cut off unanswered.
async fn catch_up(
    app: &App,
    connection_id: &str,
    stream: history::Stream<'_>,
    since: Option<u64>,
    deadline: tokio::time::Instant,
) -> Result<Resumed> {
    let Some(since) = since else {
        return Ok(Resumed::UpTo(history::latest(app, stream).await?));
    };
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let stop_at = deadline - (left / 10).min(std::time::Duration::from_secs(1));
    match tokio::time::timeout_at(stop_at, replay(app, connection_id, stream, since)).await {
        Ok(replayed) => replayed,
        Err(_) => {
            tracing::warn!(connection_id, %stream, since, "no time left to replay everything; answered resync");
            Ok(Resumed::Resync(history::latest(app, stream).await?))
        }
    }
}

/// How a replay ended.
#[derive(Debug)]
enum Resumed {
    /// Everything after the client's `since` was posted, up to this seq.
    UpTo(u64),
    /// The client must refetch: events after its `since` are gone, or could not all be posted.
    Resync(u64),
}

/// Posts what the connection missed of `stream` after `since`, in order, one post at a time (two
/// posts in flight at once may arrive in either order), before the route answers: the
/// acknowledgement comes after the replay.
async fn replay(app: &App, connection_id: &str, stream: history::Stream<'_>, since: u64) -> Result<Resumed> {
    let (frames, latest) = match history::since(app, stream, since, app.config.max_replay).await? {
        history::Since::Replay { frames, latest } => (frames, latest),
        history::Since::Resync { latest } => return Ok(Resumed::Resync(latest)),
    };
    let count = frames.len();
    for (index, frame) in frames.into_iter().enumerate() {
        let mut attempt = 0;
        loop {
            match management::post(app, connection_id, frame.clone().into_bytes()).await {
                PostOutcome::Delivered => break,
                PostOutcome::Throttled(why) | PostOutcome::Retryable(why) if attempt < REPLAY_ATTEMPTS => {
                    tracing::debug!(connection_id, %stream, why, "replay post failed; trying again");
                    attempt += 1;
                    tokio::time::sleep(REPLAY_BACKOFF * 2u32.pow(attempt)).await;
                }
                other => {
                    tracing::warn!(connection_id, %stream, posted = index, of = count, outcome = ?other, "replay stopped");
                    return Ok(Resumed::Resync(latest));
                }
            }
        }
    }
    tracing::info!(connection_id, %stream, since, replayed = count, latest, "replayed");
    Ok(Resumed::UpTo(latest))
}

/// The time [`subscribe`] and [`resume`] give a replay when no invocation deadline is known (tests).
const REPLAY_TIME_UNBOUNDED: std::time::Duration = std::time::Duration::from_secs(3600);

/// Attempts per replayed frame beyond the first (throttling, 5xx), and the first pause.
const REPLAY_ATTEMPTS: u32 = 3;
const REPLAY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// `unsubscribe`: deletes the subscription; not being subscribed is fine.
pub async fn unsubscribe(app: &App, request: ApiGatewayWebsocketProxyRequest) -> Result<ApiGatewayProxyResponse> {
    let connection_id = connection_id(&request)?;
    let entity_id = match valid_frame(&request, connection_id, "unsubscribe") {
        Ok(entity_id) => entity_id,
        Err(reason) => return Ok(refused(400, &reason)),
    };
    store::delete_subscription(app, connection_id, &entity_id).await?;
    tracing::info!(connection_id, entity_id, "unsubscribed");
    Ok(acknowledged("unsubscribed", &entity_id, None))
}

/// The entity id of a valid frame; for a bad one, why it is refused.
fn valid_frame(
    request: &ApiGatewayWebsocketProxyRequest,
    connection_id: &str,
    action: &str,
) -> std::result::Result<String, String> {
    frames::parse_client_frame(request.body.as_deref(), request.is_base64_encoded, action).map_err(|refusal| {
        tracing::info!(connection_id, reason = %refusal, "refused a frame");
        refusal.0
    })
}
