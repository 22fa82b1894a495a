//! One WebSocket connection of the gateway, from the handshake (the authorizer and `$connect`
//! decide) to `$disconnect`. Its task reads frames and routes them one at a time, in order,
//! pausing the socket when too many wait; a writer task drains the bounded outbox to the socket.
//! It must not spawn per frame nor let a slow client hold memory beyond its outbox.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::stage_settings::Access;
use super::{error_response, json_response, Connection, Gateway, MAX_FRAME, MAX_MESSAGE, OUTBOX_FRAMES};
use crate::dev::events::{self, Authorization, Client, ConnectVerdict};
use crate::dev::runtime::InvokeError;

/// Frames read but not yet routed, per connection; past that the socket is not read (TCP pushes
/// back on the client).
const PENDING_FRAMES: usize = 16;
/// How long a closing connection waits for its writer to flush, and for a route in flight.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// API Gateway's size limits, and a small read buffer: tungstenite's default allocates 128 KiB per
/// connection up front, which made 5,000 idle connections cost 750 MB.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_FRAME))
}

/// An id shaped like API Gateway's: 11 random bytes in base64, 16 characters ending in one `=`
/// (e.g. `L0SM9cOFvHcCIhw=`).
pub(super) fn new_connection_id() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    base64::engine::general_purpose::STANDARD.encode(&bytes[..11])
}

/// The answer to a request for the stage that is no WebSocket upgrade.
fn upgrade_required() -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::UPGRADE_REQUIRED)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"message":"Upgrade Required"}"#)))
        .expect("static response")
}

/// How a connection ended, as `$disconnect` hears it and the client's close frame says.
struct Ending {
    code: u16,
    reason: &'static str,
    /// The close frame we send; none when the peer is gone.
    close: Option<CloseFrame>,
}

impl Ending {
    fn closing(code: u16, reason: &'static str, frame_reason: &'static str) -> Ending {
        Ending {
            code,
            reason,
            close: Some(CloseFrame {
                code: CloseCode::from(code),
                reason: frame_reason.into(),
            }),
        }
    }
}

type Routing = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Gateway {
    pub(super) async fn handshake(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Full<Bytes>> {
        let headers = request.headers();
        let is_upgrade = headers
            .get("upgrade")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        // A plain HTTP request is told to upgrade (RFC 9110 section 15.5.22: 426 with the protocol
        // to upgrade to), as serverless-offline's e2e suite, run against AWS too, sees API Gateway
        // answer; a broken upgrade is a bad request (RFC 6455 section 4.2.1).
        if !is_upgrade {
            return upgrade_required();
        }
        let Some(key) = headers.get("sec-websocket-key").map(|k| k.as_bytes().to_vec()) else {
            return json_response(StatusCode::BAD_REQUEST, r#"{"message":"WebSocket upgrade expected"}"#);
        };
        if request.method() != Method::GET {
            return json_response(StatusCode::BAD_REQUEST, r#"{"message":"WebSocket upgrade expected"}"#);
        }
        // Held by the connection's task until its $disconnect ran; a refused handshake frees it.
        let Some(slot) = self.slots.take() else {
            return self.over_cap();
        };
        let mut client = Client {
            connection_id: new_connection_id(),
            connected_at: SystemTime::now(),
            source_ip: peer.ip().to_string(),
            user_agent: headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .map(String::from),
            authorizer: None,
        };
        let header_pairs = || {
            headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.to_str().unwrap_or_default()))
        };
        // The handshake's access log line, however it ends.
        let access_request = events::Request::fresh();
        // API Gateway throttles `$connect` like any route, before the authorizer runs.
        if !self.admit("$connect") {
            tracing::info!(connection_id = %client.connection_id, "$connect throttled: 429");
            let message = super::stage_settings::TOO_MANY_REQUESTS;
            self.access(connect_access(&client, &access_request, 429, Some(message), None));
            return error_response(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", message);
        }

        if let Some(authorizer) = &self.config.authorizer {
            let event = events::authorizer_event(
                &self.stage,
                &authorizer.target,
                &client,
                header_pairs(),
                request.uri().query(),
                &events::Request::fresh(),
            );
            let started = Instant::now();
            let answer = authorizer.function.invoke(Bytes::from(event.to_string())).await;
            let latency_ms = started.elapsed().as_millis() as u64;
            let verdict = match answer {
                Ok(answer) => events::authorization(&answer, &authorizer.target.method_arn(&self.stage), latency_ms),
                Err(InvokeError::Function { message, .. }) if message == "Unauthorized" => Authorization::Refuse(401),
                Err(error) => {
                    tracing::warn!(connection_id = %client.connection_id, %error, "the $connect authorizer failed");
                    Authorization::Refuse(500)
                }
            };
            match verdict {
                Authorization::Allow(context) => client.authorizer = Some(context),
                Authorization::Refuse(status) => {
                    tracing::info!(connection_id = %client.connection_id, status, "the authorizer refused the connection");
                    let message = match status {
                        401 => "Unauthorized",
                        403 => "Forbidden",
                        _ => "Internal server error",
                    };
                    self.access(connect_access(
                        &client,
                        &access_request,
                        status,
                        Some(message),
                        Some(message),
                    ));
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    return json_response(status, serde_json::json!({ "message": message }).to_string());
                }
            }
        }

        // $connect decides; without a $connect route every connection is accepted.
        let mut response_headers = Vec::new();
        if let Some(function) = self.config.routes.get("$connect") {
            let event = events::connect_event(
                &self.stage,
                &client,
                header_pairs(),
                request.uri().query(),
                &events::Request::fresh(),
            );
            match function.invoke(Bytes::from(event.to_string())).await {
                Ok(answer) => match events::connect_verdict(&answer) {
                    ConnectVerdict::Accept { headers } => response_headers = headers,
                    ConnectVerdict::Refuse(status) => {
                        tracing::info!(connection_id = %client.connection_id, status, "$connect refused the connection");
                        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                        let message = if status == StatusCode::BAD_GATEWAY {
                            "Internal server error"
                        } else {
                            "Forbidden"
                        };
                        self.access(connect_access(
                            &client,
                            &access_request,
                            status.as_u16(),
                            Some(message),
                            None,
                        ));
                        return json_response(status, serde_json::json!({ "message": message }).to_string());
                    }
                },
                Err(error) => {
                    tracing::warn!(connection_id = %client.connection_id, %error, "$connect failed");
                    // "If the Lambda API rejects the invocation request, API Gateway returns a 500
                    // error code. If the function runs but returns an error ... API Gateway returns
                    // a 502" (docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html).
                    let status = match error {
                        InvokeError::Throttled { .. } | InvokeError::ShuttingDown => StatusCode::INTERNAL_SERVER_ERROR,
                        _ => StatusCode::BAD_GATEWAY,
                    };
                    let failure = error.to_string();
                    let mut access = connect_access(
                        &client,
                        &access_request,
                        status.as_u16(),
                        Some("Internal server error"),
                        None,
                    );
                    access.integration_error = Some(&failure);
                    self.access(access);
                    return json_response(status, r#"{"message":"Internal server error"}"#);
                }
            }
        }

        let mut builder = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-accept", derive_accept_key(&key));
        for (name, value) in &response_headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        self.access(connect_access(&client, &access_request, 200, None, None));
        let (outbox, outgoing) = mpsc::channel(OUTBOX_FRAMES);
        let connection = Arc::new(Connection {
            client,
            outbox,
            close_request: Mutex::new(None),
            close_requested: Notify::new(),
            last_active: Mutex::new(SystemTime::now()),
        });
        let upgrade = hyper::upgrade::on(request);
        let gateway = self.clone();
        self.tasks.spawn(async move {
            let _slot = slot;
            match upgrade.await {
                Ok(upgraded) => {
                    let socket =
                        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(socket_config()))
                            .await;
                    gateway.run_connection(socket, connection, outgoing).await;
                }
                Err(error) => tracing::warn!(%error, "WebSocket upgrade failed"),
            }
        });
        builder.body(Full::new(Bytes::new())).expect("upgrade response")
    }

    async fn run_connection<S>(
        self: Arc<Self>,
        socket: WebSocketStream<S>,
        connection: Arc<Connection>,
        outgoing: mpsc::Receiver<Message>,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let id = connection.client.connection_id.clone();
        let (sink, mut stream) = socket.split();
        self.connections.lock().unwrap().insert(id.clone(), connection.clone());
        let (close, closing) = oneshot::channel();
        let writer = self.tasks.spawn(write_frames(sink, outgoing, closing));
        tracing::debug!(connection_id = %id, "connected");

        let started = Instant::now();
        let max_end = started + self.config.max_connection;
        let mut idle_end = started + self.config.idle_timeout;
        let mut pending: VecDeque<String> = VecDeque::new();
        let mut routing: Option<Routing> = None;
        let ending = loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break Ending::closing(1001, "Going away", "Going away"),
                _ = connection.close_requested.notified() => {
                    let (code, _) = connection.close_request.lock().unwrap().clone().unwrap_or((1000, String::new()));
                    break Ending::closing(code, "Closed by the management API", "");
                }
                _ = tokio::time::sleep_until(idle_end) => break Ending::closing(1001, "Idle timeout", "Going away"),
                _ = tokio::time::sleep_until(max_end) => {
                    break Ending::closing(1001, "Connection duration exceeded", "Going away")
                }
                _ = async { routing.as_mut().expect("guarded").await }, if routing.is_some() => {
                    routing = pending.pop_front().map(|body| self.clone().route(connection.clone(), body));
                }
                frame = stream.next(), if pending.len() < PENDING_FRAMES => {
                    let body = match frame {
                        Some(Ok(Message::Text(text))) => text.to_string(),
                        // "If a client app sends a binary frame, API Gateway rejects it and
                        // disconnects the client with code 1003" (API Gateway developer guide,
                        // websocket-api-develop-binary-media-types.html): nothing is routed.
                        Some(Ok(Message::Binary(_))) => {
                            tracing::info!(connection_id = %id, "binary frame; closing with 1003");
                            break Ending::closing(1003, "Binary frame", "Binary frames are not supported");
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let code = frame.as_ref().map(|f| u16::from(f.code)).unwrap_or(1005);
                            break Ending { code, reason: "Client closed", close: Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }) };
                        }
                        Some(Ok(_)) => {
                            idle_end = Instant::now() + self.config.idle_timeout;
                            continue;
                        }
                        Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                            tracing::info!(connection_id = %id, size, max_size, "message too big; closing with 1009");
                            break Ending::closing(1009, "Message too big", "Message too big");
                        }
                        Some(Err(_)) | None => break Ending { code: 1006, reason: "Connection lost", close: None },
                    };
                    idle_end = Instant::now() + self.config.idle_timeout;
                    *connection.last_active.lock().unwrap() = SystemTime::now();
                    if routing.is_none() {
                        routing = Some(self.clone().route(connection.clone(), body));
                    } else {
                        pending.push_back(body);
                    }
                }
            }
        };
        // No more posts; the route in flight may still answer, the frames waiting are dropped.
        self.connections.lock().unwrap().remove(&id);
        if let Some(routing) = routing {
            let _ = tokio::time::timeout(CLOSE_GRACE, routing).await;
        }
        let Ending {
            code,
            reason,
            close: frame,
        } = ending;
        let _ = close.send(frame);
        let client = connection.client.clone();
        drop(connection);
        let mut writer = writer;
        if tokio::time::timeout(CLOSE_GRACE, &mut writer).await.is_err() {
            tracing::debug!(connection_id = %id, "the client does not read; dropping its socket");
            writer.abort();
        }
        tracing::debug!(connection_id = %id, code, reason, "disconnected");
        self.disconnect(&client, code, reason).await;
    }

    /// A message the gateway refuses itself, no integration run: its access line, and the error
    /// frame `message` for the client.
    async fn refuse(
        &self,
        connection: &Connection,
        request: &events::Request,
        route: &str,
        status: u16,
        message: &str,
    ) {
        let client = &connection.client;
        self.access(message_access(
            client,
            request,
            route,
            status,
            Some(message),
            None,
            None,
        ));
        let frame = events::error_frame(message, &client.connection_id, request);
        let _ = connection.outbox.send(Message::Text(frame.into())).await;
    }

    /// Route one client message and, for a two-way route, queue the integration's answer for the
    /// client.
    fn route(self: Arc<Self>, connection: Arc<Connection>, body: String) -> Routing {
        Box::pin(async move {
            let client = &connection.client;
            let request = events::Request::fresh();
            let Some(route_key) = events::select_route(&body, |key| self.config.routes.contains_key(key)) else {
                tracing::debug!(connection_id = %client.connection_id, frame = %body, "frame matched no route: Forbidden");
                self.refuse(&connection, &request, "-", 403, events::FORBIDDEN).await;
                return;
            };
            if !self.admit(&route_key) {
                tracing::info!(route_key, connection_id = %client.connection_id, "message throttled");
                let message = super::stage_settings::TOO_MANY_REQUESTS;
                self.refuse(&connection, &request, &route_key, 429, message).await;
                return;
            }
            let function = self.config.routes[&route_key].clone();
            let event = events::message_event(&self.stage, client, &route_key, &body, &request);
            let started = Instant::now();
            let invoked = function.invoke(Bytes::from(event.to_string())).await;
            let latency = Some(started.elapsed().as_millis());
            let frame = match invoked {
                Ok(answer) if self.config.two_way.contains(&route_key) => {
                    self.access(message_access(client, &request, &route_key, 200, None, None, latency));
                    events::reply_frame(&answer)
                }
                Ok(_) => {
                    self.access(message_access(client, &request, &route_key, 200, None, None, latency));
                    None
                }
                Err(error) => {
                    tracing::warn!(route_key, connection_id = %client.connection_id, %error, "route integration failed");
                    let failure = error.to_string();
                    let error_message = Some("Internal server error");
                    let access = message_access(
                        client,
                        &request,
                        &route_key,
                        500,
                        error_message,
                        Some(&failure),
                        latency,
                    );
                    self.access(access);
                    Some(events::internal_error_frame(&client.connection_id, &request))
                }
            };
            // For dev's console: what each frame did (a subscribe's answer says whether it was refused).
            tracing::debug!(
                route_key,
                connection_id = %client.connection_id,
                frame = %body,
                answer = frame.as_deref().unwrap_or(""),
                "frame routed"
            );
            if let Some(frame) = frame {
                let _ = connection.outbox.send(Message::Text(frame.into())).await;
            }
        })
    }

    async fn disconnect(&self, client: &Client, status: u16, reason: &str) {
        let request = events::Request::fresh();
        self.access(Access {
            client,
            request: &request,
            route_key: "$disconnect",
            event_type: "DISCONNECT",
            status: 200,
            error: None,
            integration_error: None,
            authorizer_error: None,
            integration_latency_ms: None,
        });
        let Some(function) = self.config.routes.get("$disconnect") else {
            return;
        };
        let event = events::disconnect_event(&self.stage, client, status, reason, &request);
        if let Err(error) = function.invoke(Bytes::from(event.to_string())).await {
            if error != InvokeError::ShuttingDown {
                tracing::warn!(connection_id = %client.connection_id, %error, "$disconnect failed");
            }
        }
    }
}

/// Send the outbox's frames to the socket until the connection closes; then flush what is
/// already queued and send the close frame.
async fn write_frames<S>(
    mut sink: futures::stream::SplitSink<WebSocketStream<S>, Message>,
    mut outgoing: mpsc::Receiver<Message>,
    mut closing: oneshot::Receiver<Option<CloseFrame>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let close = loop {
        tokio::select! {
            close = &mut closing => break close.ok().flatten(),
            frame = outgoing.recv() => match frame {
                Some(frame) => {
                    if sink.send(frame).await.is_err() {
                        return;
                    }
                }
                None => break (&mut closing).await.ok().flatten(),
            },
        }
    };
    outgoing.close();
    while let Ok(frame) = outgoing.try_recv() {
        if sink.feed(frame).await.is_err() {
            return;
        }
    }
    if let Some(frame) = close {
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
    let _ = sink.close().await;
}

/// A MESSAGE's access log line.
fn message_access<'a>(
    client: &'a Client,
    request: &'a events::Request,
    route_key: &'a str,
    status: u16,
    error: Option<&'a str>,
    integration_error: Option<&'a str>,
    integration_latency_ms: Option<u128>,
) -> Access<'a> {
    Access {
        client,
        request,
        route_key,
        event_type: "MESSAGE",
        status,
        error,
        integration_error,
        authorizer_error: None,
        integration_latency_ms,
    }
}

/// A CONNECT's access log line.
fn connect_access<'a>(
    client: &'a Client,
    request: &'a events::Request,
    status: u16,
    error: Option<&'a str>,
    authorizer_error: Option<&'a str>,
) -> Access<'a> {
    Access {
        client,
        request,
        route_key: "$connect",
        event_type: "CONNECT",
        status,
        error,
        integration_error: None,
        authorizer_error,
        integration_latency_ms: None,
    }
}
