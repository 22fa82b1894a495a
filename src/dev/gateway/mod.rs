//! A local WebSocket gateway that behaves like an API Gateway WebSocket API stage:
//!
//! - `GET /{stage}` with an upgrade asks `$connect`'s authorizer, if any (401, 403 or 500 refuse;
//!   an Allow's context becomes every later event's `requestContext.authorizer`), then runs the
//!   `$connect` integration; a non-2xx or malformed answer refuses the handshake (a failed
//!   invocation with 502), its headers (Sec-WebSocket-Protocol) are applied; without the upgrade
//!   the answer is 426;
//! - each text frame is routed on `$request.body.action` (see `events`), one at a time per
//!   connection, in order; a two-way route's integration body (one with a route response) is
//!   sent back;
//! - a close from either side, the idle timeout, the maximum duration, an oversize message
//!   (1009) or a binary frame (1003, never routed) run `$disconnect` with the close code;
//! - `/{stage}/@connections/{id}` (also `%40connections`) is the management API: POST sends
//!   (429 when the connection's outbox is full, as API Gateway throttles; 413 past 128 KB, told
//!   before the body is read), GET describes, DELETE closes; an unknown id is 410. Only for calls
//!   signed with this dev session's credentials (those of its handlers): anything else is 403, as
//!   API Gateway answers a call without IAM credentials, so that a web page open in the
//!   developer's browser cannot post to, read or close a connection (it cannot send an
//!   `Authorization` header without a CORS preflight, and no preflight is granted);
//! - `/` and `/__console/...` are dev's console page and its API (`dev::console`, which checks
//!   Host, Origin and its session key itself: a web page of another origin gets 403); any other
//!   path is 403;
//! - at most `max_connections` WebSocket connections at once, counted from the handshake until
//!   their `$disconnect` ran: past it a handshake is refused with 429 `LimitExceededException`,
//!   the status API Gateway answers when one of its limits is hit (API Gateway has no such cap of
//!   its own; this one keeps a local machine's memory and open files bounded);
//! - besides those, at most `OTHER_HTTP_CONNECTIONS` HTTP connections at once (handshakes under
//!   way, management API calls), each given `header_read_timeout` to send its request's headers:
//!   a client that opens connections and trickles bytes cannot hold the gateway. Past the cap a
//!   connection is answered 503 and closed without being read.
//!
//! Shaped like tokio-rs/mini-redis's server: the listener backs off on accept errors, a semaphore
//! bounds the connections, every connection is one tracked task that forgets itself when done,
//! and shutdown is one token that every task watches; `serve` returns once their `$disconnect`
//! ran (bounded).

mod connection;
pub mod stage_settings;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Map};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::backoff::Backoff;
use super::credentials::SessionCredentials;
use super::events::{self, Client, Stage};
use super::runtime::FunctionHost;

/// Largest message and frame API Gateway accepts from a client.
const MAX_MESSAGE: usize = wsstack_handlers::frames::MAX_MESSAGE_BYTES;
const MAX_FRAME: usize = 32 * 1024;
/// Frames waiting for a slow client, per connection; past that, posts answer 429.
const OUTBOX_FRAMES: usize = 128;
/// How long shutdown waits for connections to close and their `$disconnect` to run.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// HTTP connections at once that are not (yet) WebSockets: handshakes under way and management
/// API calls. The handlers' posts need the most: up to 64 at once per push instance (the push
/// concurrency), 8 instances by default.
pub const OTHER_HTTP_CONNECTIONS: usize = 1024;
/// How long a refused connection is given to read its 503 before it is closed.
const REFUSAL_GRACE: Duration = Duration::from_secs(1);

/// A CUSTOM (Lambda REQUEST) authorizer on `$connect`.
pub struct ConnectAuthorizer {
    pub function: Arc<FunctionHost>,
    pub target: events::AuthorizerTarget,
}

/// What the gateway serves: the stage, each route key's function, and `$connect`'s authorizer.
pub struct GatewayConfig {
    pub api_id: String,
    pub stage: String,
    pub routes: HashMap<String, Arc<FunctionHost>>,
    /// The route keys whose integration's body goes back to the client: those with a route
    /// response, as on API Gateway; the other routes are one-way.
    pub two_way: HashSet<String>,
    pub authorizer: Option<ConnectAuthorizer>,
    pub idle_timeout: Duration,
    pub max_connection: Duration,
    /// WebSocket connections at once at most (`wsstack dev --max-connections`).
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, or a management API call's body.
    pub header_read_timeout: Duration,
    /// The credentials the management API asks for: the session's, which its handlers sign with.
    pub management: SessionCredentials,
}

/// A live connection as the management API sees it.
struct Connection {
    client: Client,
    /// Frames for the client: route answers, posts, error frames.
    outbox: mpsc::Sender<Message>,
    /// A DELETE asks the connection's task to close with this code and reason.
    close_request: Mutex<Option<(u16, String)>>,
    close_requested: Notify,
    last_active: Mutex<SystemTime>,
}

impl Connection {
    fn request_close(&self, code: u16, reason: &str) {
        self.close_request
            .lock()
            .unwrap()
            .get_or_insert_with(|| (code, reason.to_string()));
        self.close_requested.notify_one();
    }
}

pub struct Gateway {
    config: GatewayConfig,
    stage: Stage,
    connections: Mutex<HashMap<String, Arc<Connection>>>,
    /// One permit per WebSocket connection, from its handshake until its `$disconnect` ran.
    slots: Cap,
    /// One permit per HTTP connection from its accept until it ends or becomes a WebSocket.
    http_slots: Cap,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// dev's console page (`/` and `/__console/...`), once attached; without it those paths are 403.
    console: std::sync::OnceLock<Arc<crate::dev::console::Console>>,
    /// The stage's throttling and access log, once read back from the emulator; until then (and
    /// in tests that set none) nothing is throttled or logged.
    stage_settings: std::sync::OnceLock<stage_settings::StageSettings>,
}

/// What the console shows of an open connection.
pub struct OpenConnection {
    pub connection_id: String,
    pub connected_at: SystemTime,
    pub last_active: SystemTime,
    pub source_ip: String,
    /// The authorizer's `principalId`, when the stage has an authorizer.
    pub principal: Option<String>,
}

/// A cap on connections of one kind: a permit per connection, and the refusal logged once per
/// episode (a warning when the cap is first reached, a note when there is room again).
struct Cap {
    max: usize,
    permits: Arc<Semaphore>,
    /// Set while connections are refused.
    refusing: AtomicBool,
    /// What is logged when the cap is reached, and when there is room again.
    reached: &'static str,
    room_again: &'static str,
}

impl Cap {
    fn new(max: usize, reached: &'static str, room_again: &'static str) -> Cap {
        Cap {
            max,
            permits: Arc::new(Semaphore::new(max)),
            refusing: AtomicBool::new(false),
            reached,
            room_again,
        }
    }

    /// A permit for one more connection; none at the cap.
    fn take(&self) -> Option<OwnedSemaphorePermit> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                if self.refusing.swap(false, Ordering::Relaxed) {
                    tracing::info!("{}", self.room_again);
                }
                Some(permit)
            }
            Err(_) => {
                if !self.refusing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(max = self.max, "{}", self.reached);
                }
                None
            }
        }
    }
}

fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .expect("static response")
}

/// An error answer of the management API, typed as the SDK expects (`x-amzn-ErrorType`).
fn error_response(status: StatusCode, error_type: &str, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-errortype", error_type)
        .body(Full::new(Bytes::from(json!({ "message": message }).to_string())))
        .expect("static response")
}

fn gone(connection_id: &str) -> Response<Full<Bytes>> {
    error_response(
        StatusCode::GONE,
        "GoneException",
        &format!("connection {connection_id} is gone"),
    )
}

impl Gateway {
    pub fn new(config: GatewayConfig, address: SocketAddr, shutdown: CancellationToken) -> Arc<Gateway> {
        let stage = Stage {
            api_id: config.api_id.clone(),
            stage: config.stage.clone(),
            domain: address.to_string(),
        };
        Arc::new(Gateway {
            slots: Cap::new(
                config.max_connections.max(1),
                "at the connection cap: refusing handshakes with 429 (raise it with --max-connections)",
                "below the connection cap again; accepting handshakes",
            ),
            config,
            stage,
            connections: Mutex::new(HashMap::new()),
            http_slots: Cap::new(
                OTHER_HTTP_CONNECTIONS,
                "at the cap of HTTP connections besides WebSockets: refusing connections with 503",
                "below the HTTP connection cap again; accepting connections",
            ),
            shutdown,
            tasks: TaskTracker::new(),
            console: std::sync::OnceLock::new(),
            stage_settings: std::sync::OnceLock::new(),
        })
    }

    /// Apply the stage's throttling and access log (see `stage_settings`).
    pub fn apply_stage_settings(&self, settings: stage_settings::StageSettings) {
        let _ = self.stage_settings.set(settings);
    }

    /// Whether a request on `route_key` is within the stage's throttling.
    fn admit(&self, route_key: &str) -> bool {
        self.stage_settings.get().is_none_or(|s| s.throttles.admit(route_key))
    }

    /// Write an access log line, if the stage has access logs.
    fn access(&self, access: stage_settings::Access<'_>) {
        if let Some(log) = self.stage_settings.get().and_then(|s| s.access_log.as_ref()) {
            log.write(&access);
        }
    }

    /// Serve `console` on this gateway's address, beside the stage.
    pub fn attach_console(&self, console: Arc<crate::dev::console::Console>) {
        let _ = self.console.set(console);
    }

    /// The WebSocket connections open now, oldest first.
    pub fn open_connections(&self) -> Vec<OpenConnection> {
        let mut open: Vec<OpenConnection> = self
            .connections
            .lock()
            .unwrap()
            .values()
            .map(|connection| OpenConnection {
                connection_id: connection.client.connection_id.clone(),
                connected_at: connection.client.connected_at,
                last_active: *connection.last_active.lock().unwrap(),
                source_ip: connection.client.source_ip.clone(),
                principal: connection
                    .client
                    .authorizer
                    .as_ref()
                    .and_then(|context| context.get("principalId"))
                    .and_then(|id| id.as_str())
                    .map(String::from),
            })
            .collect();
        open.sort_by_key(|connection| connection.connected_at);
        open
    }

    /// Run `task` as one of the gateway's tasks: shutdown waits for it (bounded); it should end
    /// when `shutdown_token` is cancelled.
    pub fn spawn_tracked<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub fn connection_count(&self) -> usize {
        self.connections.lock().unwrap().len()
    }

    /// The whole answer (status line to body) to a connection over the HTTP connection cap.
    fn over_http_cap(&self) -> String {
        let body = json!({
            "message": format!(
                "Service Unavailable: this wsstack dev serves at most {OTHER_HTTP_CONNECTIONS} HTTP connections at \
                 once besides its WebSocket connections (at most {}, --max-connections); try again later",
                self.config.max_connections
            )
        })
        .to_string();
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
    }

    /// The answer to a handshake over the cap.
    fn over_cap(&self) -> Response<Full<Bytes>> {
        let max = self.config.max_connections;
        error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            &format!("Too many connections: this wsstack dev holds at most {max} (--max-connections)"),
        )
    }

    /// Accept connections until shutdown, then wait (bounded) for every connection to close with
    /// a close frame and for its `$disconnect`.
    pub async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) {
        // Accept fails for reasons that pass (out of file descriptors): wait, ever longer, rather
        // than spin on the error.
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = self.shutdown.cancelled() => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => {
                    backoff.succeeded();
                    accepted
                }
                Err(error) => {
                    let delay = backoff.failed();
                    tracing::warn!(%error, ?delay, "accepting a connection failed; backing off");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => continue,
                        _ = self.shutdown.cancelled() => break,
                    }
                }
            };
            let _ = stream.set_nodelay(true);
            match self.http_slots.take() {
                Some(slot) => self.tasks.spawn(self.clone().serve_http(stream, peer, slot)),
                None => self.tasks.spawn(refuse_connection(stream, self.over_http_cap())),
            };
        }
        drop(listener);
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tasks.wait()).await.is_err() {
            tracing::warn!(
                open = self.connection_count(),
                tasks = self.tasks.len(),
                "connections or their $disconnect still running after {SHUTDOWN_GRACE:?}; leaving them"
            );
        }
    }

    /// One HTTP connection: a handshake (then the WebSocket runs in its own task, which holds a
    /// slot of its own) or management API calls; `_slot` is held until then. On shutdown an idle
    /// keep-alive connection is closed, a request in flight finishes. A client that does not send
    /// a request's headers within `header_read_timeout` is disconnected (hyper's timer: without
    /// one hyper applies no timeout at all); an idle keep-alive connection is closed after as long.
    async fn serve_http(self: Arc<Self>, stream: tokio::net::TcpStream, peer: SocketAddr, _slot: OwnedSemaphorePermit) {
        let gateway = self.clone();
        let service = hyper::service::service_fn(move |request| {
            let gateway = gateway.clone();
            async move { Ok::<_, Infallible>(gateway.handle(request, peer).await) }
        });
        let http = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.config.header_read_timeout)
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        tokio::pin!(http);
        tokio::select! {
            _ = http.as_mut() => {}
            _ = self.shutdown.cancelled() => {
                http.as_mut().graceful_shutdown();
                let _ = http.await;
            }
        }
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_string();
        let stage_path = format!("/{}", self.config.stage);
        if path == stage_path || path == format!("{stage_path}/") {
            return self.handshake(request, peer).await;
        }
        // AWS documents the path with `@` percent-encoded too (`/prod/%40connections/{id}`, the
        // awscurl example of apigateway-how-to-call-websocket-api-connections.html).
        let managed = ["@connections/", "%40connections/"]
            .iter()
            .find_map(|prefix| path.strip_prefix(&format!("{stage_path}/{prefix}")));
        if let Some(id) = managed {
            let id = urlencoding::decode(id)
                .map(|s| s.into_owned())
                .unwrap_or_else(|_| id.to_string());
            return self.manage(request, &id).await;
        }
        if let Some(console) = self.console.get().filter(|_| crate::dev::console::serves(&path)) {
            return console.clone().handle(request, self.clone()).await;
        }
        json_response(StatusCode::FORBIDDEN, r#"{"message":"Forbidden"}"#)
    }

    /// The management API a handler reaches through CALLBACK_URL, for calls signed with this
    /// session's credentials; checked before anything else, so that an unsigned caller learns
    /// nothing, not even whether a connection exists.
    async fn manage(&self, request: Request<Incoming>, id: &str) -> Response<Full<Bytes>> {
        if let Err(refusal) = self.config.management.check(request.headers().get(AUTHORIZATION)) {
            let (error_type, message) = refusal.error();
            tracing::debug!(connection_id = id, error_type, "management API call refused");
            return error_response(StatusCode::FORBIDDEN, error_type, message);
        }
        let method = request.method().clone();
        let connection = self.connections.lock().unwrap().get(id).cloned();
        let Some(connection) = connection else { return gone(id) };
        match method {
            Method::POST => {
                let body = match self.read_message(request).await {
                    Ok(body) => body,
                    Err(refused) => return refused,
                };
                let frame = match String::from_utf8(body.to_vec()) {
                    Ok(text) => Message::Text(text.into()),
                    Err(_) => Message::Binary(body),
                };
                // A clone shares the frame's bytes: the log line costs nothing unless it is kept.
                let posted = frame.clone();
                match connection.outbox.try_send(frame) {
                    Ok(()) => {
                        tracing::debug!(
                            connection_id = id,
                            frame = posted.to_text().unwrap_or("(binary)"),
                            "posted to the connection"
                        );
                        json_response(StatusCode::OK, "")
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::debug!(connection_id = id, "outbox full; post throttled");
                        error_response(StatusCode::TOO_MANY_REQUESTS, "LimitExceededException", "Rate exceeded")
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => gone(id),
                }
            }
            Method::GET => {
                let last_active = *connection.last_active.lock().unwrap();
                // The wire names of the service model (apigatewaymanagementapi-2018-11-29, rest-json:
                // locationName connectedAt, identity.sourceIp, ...), which the SDKs read.
                let mut identity = Map::new();
                identity.insert("sourceIp".into(), json!(connection.client.source_ip));
                if let Some(agent) = &connection.client.user_agent {
                    identity.insert("userAgent".into(), json!(agent));
                }
                json_response(
                    StatusCode::OK,
                    json!({
                        "connectedAt": events::iso(connection.client.connected_at),
                        "identity": identity,
                        "lastActiveAt": events::iso(last_active),
                    })
                    .to_string(),
                )
            }
            Method::DELETE => {
                connection.request_close(1000, "");
                Response::builder()
                    .status(StatusCode::NO_CONTENT)
                    .body(Full::new(Bytes::new()))
                    .expect("static response")
            }
            _ => json_response(StatusCode::METHOD_NOT_ALLOWED, r#"{"message":"Method not allowed"}"#),
        }
    }

    /// A POST's body, at most `MAX_MESSAGE` bytes: a larger one is refused from its Content-Length
    /// before any of it is read, or as soon as more than that has come; a body that does not come
    /// within `header_read_timeout` is refused too. Nothing past the limit is ever held.
    async fn read_message(&self, request: Request<Incoming>) -> Result<Bytes, Response<Full<Bytes>>> {
        let too_large = || {
            error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLargeException",
                "Message too long",
            )
        };
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > MAX_MESSAGE as u64) {
            return Err(too_large());
        }
        let reading = Limited::new(request.into_body(), MAX_MESSAGE).collect();
        match tokio::time::timeout(self.config.header_read_timeout, reading).await {
            Ok(Ok(body)) => Ok(body.to_bytes()),
            Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
            Ok(Err(_)) => Err(json_response(
                StatusCode::BAD_REQUEST,
                r#"{"message":"unreadable body"}"#,
            )),
            Err(_) => Err(json_response(
                StatusCode::REQUEST_TIMEOUT,
                r#"{"message":"the body did not arrive in time"}"#,
            )),
        }
    }
}

/// Answer a connection over the HTTP connection cap with `answer` without reading its request,
/// then close it. The write side is closed first and what the client still sends is drained for
/// a moment, so that the client can read the answer before the socket goes (closing a socket
/// with unread input resets it, and a reset may discard the answer at the client).
async fn refuse_connection(mut stream: tokio::net::TcpStream, answer: String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(REFUSAL_GRACE, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < 64 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                read => drained += read,
            }
        }
        std::io::Result::Ok(())
    })
    .await;
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
