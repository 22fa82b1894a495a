//! A local WebSocket gateway that behaves like an API Gateway WebSocket API stage:
//!
//! - `GET /{stage}` with an upgrade runs the `$connect` integration with an APIGW proxy event; a
//!   non-2xx answer rejects the handshake, its headers (Sec-WebSocket-Protocol) are applied;
//! - each text frame is routed on `$request.body.action` to a route's integration, else to
//!   `$default`, else answered with the error frame AWS sends; an integration's body is sent back;
//! - a close from either side, the idle timeout or the maximum duration run `$disconnect`;
//! - `/{stage}/@connections/{id}` is the management API: POST sends, GET describes, DELETE closes;
//!   an unknown id is 410 with `x-amzn-ErrorType: GoneException`.
//!
//! One task per connection reads frames, one writes them (fed by a channel, so the management API
//! and route answers never contend for the socket). Shutdown closes every socket with a close frame.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::runtime::FunctionHost;

/// Largest message and frame API Gateway accepts from a client.
const MAX_MESSAGE: usize = 128 * 1024;
const MAX_FRAME: usize = 32 * 1024;

/// API Gateway's size limits, and a small read buffer: tungstenite's default allocates 128 KiB per
/// connection up front, which made 5,000 idle connections cost 750 MB.
fn socket_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_FRAME))
}

/// What the gateway serves: the stage, and each route key's function.
pub struct GatewayConfig {
    pub api_id: String,
    pub stage: String,
    pub routes: HashMap<String, Arc<FunctionHost>>,
    pub idle_timeout: Duration,
    pub max_connection: Duration,
}

enum Outgoing {
    Frame(Message),
    Close(CloseCode, String),
}

struct Connection {
    sender: mpsc::UnboundedSender<Outgoing>,
    connected_at: SystemTime,
    source_ip: String,
    user_agent: Option<String>,
    last_active: Mutex<SystemTime>,
}

pub struct Gateway {
    config: GatewayConfig,
    domain: String,
    connections: Mutex<HashMap<String, Arc<Connection>>>,
    shutdown: watch::Receiver<bool>,
    /// Connection tasks still running (for a clean shutdown).
    tasks: Mutex<tokio::task::JoinSet<()>>,
}

fn epoch_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn request_time(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time)
        .format("%d/%b/%Y:%H:%M:%S %z")
        .to_string()
}

fn iso(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An id shaped like API Gateway's (12 random bytes, base64: e.g. `L0SM9cOFvHcCIhw=`).
fn new_connection_id() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    base64::engine::general_purpose::STANDARD.encode(&bytes[..10])
}

fn text_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .expect("static response")
}

fn gone(connection_id: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::GONE)
        .header("content-type", "application/json")
        .header("x-amzn-errortype", "GoneException")
        .body(Full::new(Bytes::from(
            json!({"message": format!("connection {connection_id} is gone")}).to_string(),
        )))
        .expect("static response")
}

impl Gateway {
    pub fn new(config: GatewayConfig, address: SocketAddr, shutdown: watch::Receiver<bool>) -> Arc<Gateway> {
        Arc::new(Gateway {
            config,
            domain: address.to_string(),
            connections: Mutex::new(HashMap::new()),
            shutdown,
            tasks: Mutex::new(tokio::task::JoinSet::new()),
        })
    }

    pub fn connection_count(&self) -> usize {
        self.connections.lock().unwrap().len()
    }

    /// Accept connections until shutdown, then close every WebSocket and wait for their
    /// `$disconnect` invocations (bounded).
    pub async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) {
        let mut shutdown = self.shutdown.clone();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let gateway = self.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let gateway = gateway.clone();
                            async move { Ok::<_, Infallible>(gateway.handle(request, peer).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .with_upgrades()
                            .await;
                    });
                }
                _ = shutdown.changed() => break,
            }
        }
        let open: Vec<Arc<Connection>> = self.connections.lock().unwrap().values().cloned().collect();
        for connection in open {
            let _ = connection
                .sender
                .send(Outgoing::Close(CloseCode::Away, "Going away".into()));
        }
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_string();
        let stage_path = format!("/{}", self.config.stage);
        if path == stage_path || path == format!("{stage_path}/") {
            return self.handshake(request, peer).await;
        }
        if let Some(id) = path.strip_prefix(&format!("{stage_path}/@connections/")) {
            let id = urlencoding::decode(id)
                .map(|s| s.into_owned())
                .unwrap_or_else(|_| id.to_string());
            return self.manage(request, &id).await;
        }
        text_response(StatusCode::FORBIDDEN, r#"{"message":"Forbidden"}"#)
    }

    /// The management API a handler reaches through CALLBACK_URL.
    async fn manage(&self, request: Request<Incoming>, id: &str) -> Response<Full<Bytes>> {
        let method = request.method().clone();
        let connection = self.connections.lock().unwrap().get(id).cloned();
        let Some(connection) = connection else { return gone(id) };
        match method {
            Method::POST => {
                let body = match request.into_body().collect().await {
                    Ok(body) => body.to_bytes(),
                    Err(_) => return text_response(StatusCode::BAD_REQUEST, r#"{"message":"unreadable body"}"#),
                };
                if body.len() > MAX_MESSAGE {
                    return text_response(StatusCode::PAYLOAD_TOO_LARGE, r#"{"message":"Message too long"}"#);
                }
                let frame = match String::from_utf8(body.to_vec()) {
                    Ok(text) => Message::Text(text.into()),
                    Err(_) => Message::Binary(body),
                };
                if connection.sender.send(Outgoing::Frame(frame)).is_err() {
                    return gone(id);
                }
                text_response(StatusCode::OK, "")
            }
            Method::GET => {
                let last_active = *connection.last_active.lock().unwrap();
                let mut identity = Map::new();
                identity.insert("SourceIp".into(), json!(connection.source_ip));
                if let Some(agent) = &connection.user_agent {
                    identity.insert("UserAgent".into(), json!(agent));
                }
                text_response(
                    StatusCode::OK,
                    json!({"ConnectedAt": iso(connection.connected_at), "Identity": identity, "LastActiveAt": iso(last_active)}).to_string(),
                )
            }
            Method::DELETE => {
                let _ = connection
                    .sender
                    .send(Outgoing::Close(CloseCode::Normal, String::new()));
                Response::builder()
                    .status(StatusCode::NO_CONTENT)
                    .body(Full::new(Bytes::new()))
                    .expect("static response")
            }
            _ => text_response(StatusCode::METHOD_NOT_ALLOWED, r#"{"message":"Method not allowed"}"#),
        }
    }

    fn request_context(
        &self,
        route_key: &str,
        event_type: &str,
        connection_id: &str,
        connected_at: SystemTime,
        identity: Value,
    ) -> Value {
        let now = SystemTime::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut context = json!({
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": request_time(now),
            "messageDirection": "IN",
            "stage": self.config.stage,
            "connectedAt": epoch_ms(connected_at),
            "requestTimeEpoch": epoch_ms(now),
            "identity": identity,
            "requestId": request_id,
            "domainName": self.domain,
            "connectionId": connection_id,
            "apiId": self.config.api_id,
        });
        if event_type == "MESSAGE" {
            context["messageId"] = json!(uuid::Uuid::new_v4().simple().to_string()[..16].to_string());
        }
        context
    }

    async fn handshake(self: Arc<Self>, request: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let headers = request.headers();
        let is_upgrade = headers
            .get("upgrade")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let Some(key) = headers.get("sec-websocket-key").map(|k| k.as_bytes().to_vec()) else {
            return text_response(StatusCode::BAD_REQUEST, r#"{"message":"WebSocket upgrade expected"}"#);
        };
        if !is_upgrade || request.method() != Method::GET {
            return text_response(StatusCode::BAD_REQUEST, r#"{"message":"WebSocket upgrade expected"}"#);
        }
        let connection_id = new_connection_id();
        let connected_at = SystemTime::now();
        let source_ip = peer.ip().to_string();
        let user_agent = headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let mut single = Map::new();
        let mut multi: Map<String, Value> = Map::new();
        for (name, value) in headers {
            let value = value.to_str().unwrap_or_default().to_string();
            // API Gateway presents header names as the client sent them; hyper lowercases them.
            let name = canonical_header(name.as_str());
            single.insert(name.clone(), json!(value));
            multi
                .entry(name)
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .unwrap()
                .push(json!(value));
        }
        let (query, multi_query) = query_parameters(request.uri().query());
        let identity = json!({"sourceIp": source_ip, "userAgent": user_agent});
        let mut event = json!({
            "headers": single,
            "multiValueHeaders": multi,
            "requestContext": self.request_context("$connect", "CONNECT", &connection_id, connected_at, identity),
            "isBase64Encoded": false,
        });
        if !query.is_empty() {
            event["queryStringParameters"] = Value::Object(query);
            event["multiValueQueryStringParameters"] = Value::Object(multi_query);
        }

        // $connect decides; without a $connect route every connection is accepted.
        let mut response_headers: Vec<(String, String)> = Vec::new();
        if let Some(function) = self.config.routes.get("$connect") {
            match function.invoke(Bytes::from(event.to_string())).await {
                Ok(body) => {
                    let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let status = answer["statusCode"].as_u64().unwrap_or(200) as u16;
                    if !(200..300).contains(&status) {
                        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
                        return text_response(status, json!({"message": "Forbidden"}).to_string());
                    }
                    if let Some(map) = answer["headers"].as_object() {
                        for (name, value) in map {
                            if let Some(value) = value.as_str() {
                                response_headers.push((name.clone(), value.to_string()));
                            }
                        }
                    }
                }
                Err(error) => {
                    eprintln!("gateway: $connect failed: {error}");
                    return text_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        r#"{"message":"Internal server error"}"#,
                    );
                }
            }
        }

        let accept = derive_accept_key(&key);
        let mut builder = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-accept", accept);
        for (name, value) in &response_headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        // Frames for this connection queue here until the socket is up; the writer drains them.
        let (sender, outgoing) = mpsc::unbounded_channel::<Outgoing>();
        let connection = Arc::new(Connection {
            sender,
            connected_at,
            source_ip,
            user_agent,
            last_active: Mutex::new(connected_at),
        });
        let gateway = self.clone();
        let upgrade = hyper::upgrade::on(request);
        let task = async move {
            match upgrade.await {
                Ok(upgraded) => {
                    let socket =
                        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(socket_config()))
                            .await;
                    gateway
                        .run_connection(socket, connection_id, connection, outgoing)
                        .await;
                }
                Err(error) => eprintln!("gateway: upgrade failed: {error}"),
            }
        };
        self.tasks.lock().unwrap().spawn(task);
        builder.body(Full::new(Bytes::new())).expect("upgrade response")
    }

    async fn run_connection<S>(
        self: Arc<Self>,
        socket: WebSocketStream<S>,
        connection_id: String,
        connection: Arc<Connection>,
        mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sink, mut stream) = socket.split();
        self.connections
            .lock()
            .unwrap()
            .insert(connection_id.clone(), connection.clone());

        // The writer: frames from route answers and the management API, and the close.
        let writer = tokio::spawn(async move {
            while let Some(item) = outgoing.recv().await {
                match item {
                    Outgoing::Frame(frame) => {
                        if sink.send(frame).await.is_err() {
                            break;
                        }
                    }
                    Outgoing::Close(code, reason) => {
                        let _ = sink
                            .send(Message::Close(Some(CloseFrame {
                                code,
                                reason: reason.into(),
                            })))
                            .await;
                        break;
                    }
                }
            }
            let _ = sink.close().await;
        });

        let started = Instant::now();
        let mut shutdown = self.shutdown.clone();
        let (status, reason) = loop {
            let idle_left = self.config.idle_timeout;
            let max_left = self.config.max_connection.saturating_sub(started.elapsed());
            let frame = tokio::select! {
                frame = stream.next() => frame,
                _ = tokio::time::sleep(idle_left) => {
                    let _ = connection.sender.send(Outgoing::Close(CloseCode::Away, "Going away".into()));
                    break (1001, "Idle timeout");
                }
                _ = tokio::time::sleep(max_left) => {
                    let _ = connection.sender.send(Outgoing::Close(CloseCode::Away, "Going away".into()));
                    break (1001, "Connection duration exceeded");
                }
                _ = shutdown.changed() => {
                    let _ = connection.sender.send(Outgoing::Close(CloseCode::Away, "Going away".into()));
                    break (1001, "Going away");
                }
            };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    *connection.last_active.lock().unwrap() = SystemTime::now();
                    let gateway = self.clone();
                    let id = connection_id.clone();
                    let connection = connection.clone();
                    tokio::spawn(async move { gateway.route_message(&id, &connection, text.to_string()).await });
                }
                Some(Ok(Message::Binary(data))) => {
                    *connection.last_active.lock().unwrap() = SystemTime::now();
                    let gateway = self.clone();
                    let id = connection_id.clone();
                    let connection = connection.clone();
                    let text = String::from_utf8_lossy(&data).into_owned();
                    tokio::spawn(async move { gateway.route_message(&id, &connection, text).await });
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.as_ref().map(|f| u16::from(f.code)).unwrap_or(1005);
                    let _ = connection
                        .sender
                        .send(Outgoing::Close(CloseCode::Normal, String::new()));
                    break (code, "Client closed");
                }
                Some(Ok(_)) => {} // ping/pong: answered by the protocol layer
                Some(Err(_)) | None => break (1006, "Connection lost"),
            }
        };
        self.connections.lock().unwrap().remove(&connection_id);
        let (connected_at, source_ip) = (connection.connected_at, connection.source_ip.clone());
        // The writer ends once every sender is gone (route answers still in flight hold one).
        drop(connection);
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
        self.disconnect(&connection_id, connected_at, &source_ip, status, reason)
            .await;
    }

    /// Route a client's message as API Gateway does on `$request.body.action`.
    async fn route_message(&self, connection_id: &str, connection: &Connection, body: String) {
        let action = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(String::from));
        let route_key = match action {
            Some(action) if self.config.routes.contains_key(&action) && !action.starts_with('$') => action,
            _ if self.config.routes.contains_key("$default") => "$default".to_string(),
            _ => {
                let request_id = uuid::Uuid::new_v4().to_string();
                let error = json!({"message": "Forbidden", "connectionId": connection_id, "requestId": request_id});
                let _ = connection
                    .sender
                    .send(Outgoing::Frame(Message::Text(error.to_string().into())));
                return;
            }
        };
        let function = self.config.routes[&route_key].clone();
        let identity = json!({"sourceIp": connection.source_ip, "userAgent": connection.user_agent});
        let event = json!({
            "requestContext": self.request_context(&route_key, "MESSAGE", connection_id, connection.connected_at, identity),
            "body": body,
            "isBase64Encoded": false,
        });
        match function.invoke(Bytes::from(event.to_string())).await {
            Ok(answer) => {
                let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
                if let Some(body) = answer.get("body").and_then(|b| b.as_str()).filter(|b| !b.is_empty()) {
                    let _ = connection
                        .sender
                        .send(Outgoing::Frame(Message::Text(body.to_string().into())));
                }
            }
            Err(error) => {
                eprintln!("gateway: {route_key} for {connection_id} failed: {error}");
                let request_id = uuid::Uuid::new_v4().to_string();
                let message =
                    json!({"message": "Internal server error", "connectionId": connection_id, "requestId": request_id});
                let _ = connection
                    .sender
                    .send(Outgoing::Frame(Message::Text(message.to_string().into())));
            }
        }
    }

    async fn disconnect(
        &self,
        connection_id: &str,
        connected_at: SystemTime,
        source_ip: &str,
        status: u16,
        reason: &str,
    ) {
        let Some(function) = self.config.routes.get("$disconnect") else {
            return;
        };
        let mut context = self.request_context(
            "$disconnect",
            "DISCONNECT",
            connection_id,
            connected_at,
            json!({"sourceIp": source_ip}),
        );
        context["disconnectStatusCode"] = json!(status);
        context["disconnectReason"] = json!(reason);
        let event = json!({
            "headers": {"Host": self.domain, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""},
            "multiValueHeaders": {},
            "requestContext": context,
            "isBase64Encoded": false,
        });
        if let Err(error) = function.invoke(Bytes::from(event.to_string())).await {
            if error != super::runtime::InvokeError::ShuttingDown {
                eprintln!("gateway: $disconnect for {connection_id} failed: {error}");
            }
        }
    }
}

/// `sec-websocket-protocol` -> `Sec-WebSocket-Protocol`, as browsers send it.
fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|part| match part {
            "websocket" => "WebSocket".to_string(),
            _ => {
                let mut chars = part.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                    None => String::new(),
                }
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn query_parameters(query: Option<&str>) -> (Map<String, Value>, Map<String, Value>) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = urlencoding::decode(key)
            .map(|k| k.into_owned())
            .unwrap_or_else(|_| key.to_string());
        let value = urlencoding::decode(value)
            .map(|v| v.into_owned())
            .unwrap_or_else(|_| value.to_string());
        single.insert(key.clone(), json!(value));
        multi
            .entry(key)
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap()
            .push(json!(value));
    }
    (single, multi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_canonical() {
        assert_eq!(canonical_header("sec-websocket-protocol"), "Sec-WebSocket-Protocol");
        assert_eq!(canonical_header("host"), "Host");
        assert_eq!(canonical_header("x-forwarded-for"), "X-Forwarded-For");
    }

    #[test]
    fn connection_ids_look_like_api_gateway_ones() {
        let id = new_connection_id();
        assert_eq!(id.len(), 16);
        assert!(id.ends_with('='));
        assert_ne!(id, new_connection_id());
    }

    #[test]
    fn query_strings_are_decoded() {
        let (single, multi) = query_parameters(Some("token=a%20b&x=1&x=2"));
        assert_eq!(single["token"], "a b");
        assert_eq!(multi["x"], json!(["1", "2"]));
    }
}
