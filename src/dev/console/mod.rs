//! `wsstack dev`'s console: a page at `http://127.0.0.1:PORT/`, on the gateway's own address, with
//! the live connections and most watched entities (`state`), a live stream of what dev does
//! (`activity`), a form that puts an event on the bus (through `send-event`'s code), and a client
//! pane that connects to the stage like any client (with a token minted through `token`'s code for
//! a stack with `auth:`). Plain HTML, CSS and JavaScript compiled into the binary.
//!
//! Security: the console can put events on the bus and mint tokens, so a web page open in the
//! developer's browser must not reach it (dev was hardened against exactly that: the management
//! API wants the session's SigV4 key and no CORS is granted). Every console request is checked:
//! - `Host` must be `127.0.0.1:PORT` or `localhost:PORT`: a DNS-rebinding page (its own name
//!   resolving to 127.0.0.1) sends its own name and gets 403, so it never reads the page or its key;
//! - the API (`/__console/api/...`) wants this session's random key (in the page, which another
//!   origin cannot read: no CORS header is ever sent) in `x-wsstack-console-key`, or in `?key=`
//!   for the stream's WebSocket, where a page cannot set headers;
//! - an API request's `Origin`, when sent, must be the console's own; POSTs and the stream's WebSocket must send it
//!   (browsers always do): a cross-site form POST or a cross-origin WebSocket is refused even
//!   before its missing key would be. POSTs also need `content-type: application/json`, which a
//!   form cannot send, and an API request's `Sec-Fetch-Site`, when sent, must say same-origin;
//! - the responses forbid framing (no clickjacking of the send button) and carry a CSP that allows
//!   only the page's own scripts and connections to this address.
//!
//! Another user of the same machine can load the page as the developer can; the console gives them
//! nothing the emulator (unauthenticated, on loopback) does not already: the bus, the secret.

pub mod activity;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{broadcast, Semaphore};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use crate::aws::Aws;
use crate::commands::{send_event, token};
use crate::dev::gateway::Gateway;
use crate::stack::{Stack, Trust};
pub use activity::Activity;

const PREFIX: &str = "/__console/";
const PAGE: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/console.js");
const STYLE: &str = include_str!("page/console.css");
/// The header (and, for the stream's WebSocket, query parameter) that carries the session's key.
const KEY_HEADER: &str = "x-wsstack-console-key";
/// Largest body of a console POST: an event's detail, a token request.
const MAX_BODY: usize = 64 * 1024;
/// Pages streaming at once; each costs a socket and a table scan per refresh.
const MAX_STREAMS: usize = 16;
/// How long after a connect, a frame or a disconnect the connections are read again (several
/// together make one read), and how often anyway (TTL expiries, records written by others).
const REFRESH_AFTER_CHANGE: Duration = Duration::from_millis(250);
const REFRESH_EVERY: Duration = Duration::from_secs(5);
/// How often the dead-letter queue's depth is read.
const DEAD_LETTER_POLL: Duration = Duration::from_secs(2);

/// The JavaScript client (clients/js/wsstack.js), served at [`CLIENT_PATH`] byte for byte.
const CLIENT: &str = include_str!("../../../clients/js/wsstack.js");
pub const CLIENT_PATH: &str = "/client.js";

/// Whether a path is the console's (the gateway asks before answering 403).
pub fn serves(path: &str) -> bool {
    path == "/" || path == CLIENT_PATH || path.starts_with(PREFIX)
}

/// The client module, for any page: the team's own app on another local port imports it
/// (`import { WsstackClient } from "http://127.0.0.1:PORT/client.js"`), which a module script may
/// only do with CORS. Public code, the same for everyone: no key, no Host check, nothing to protect.
fn client_module() -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/javascript; charset=utf-8")
        .header("access-control-allow-origin", "*")
        .header("cross-origin-resource-policy", "cross-origin")
        .header("x-content-type-options", "nosniff")
        .header("cache-control", "no-cache")
        .body(Full::new(Bytes::from_static(CLIENT.as_bytes())))
        .expect("client module response")
}

pub struct Console {
    aws: Aws,
    stack: Stack,
    activity: Activity,
    port: u16,
    /// This session's key: random, in the page only.
    key: String,
    streams: Arc<Semaphore>,
}

impl Console {
    pub fn new(aws: Aws, stack: Stack, activity: Activity, address: SocketAddr) -> Arc<Console> {
        Arc::new(Console {
            aws,
            stack,
            activity,
            port: address.port(),
            key: uuid::Uuid::new_v4().simple().to_string(),
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub async fn handle(self: Arc<Self>, request: Request<Incoming>, gateway: Arc<Gateway>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_string();
        if path == CLIENT_PATH && matches!(*request.method(), Method::GET | Method::HEAD) {
            return client_module();
        }
        let api = path.starts_with(&format!("{PREFIX}api/"));
        let query_key = request.uri().query().and_then(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(name, _)| name == "key")
                .map(|(_, value)| value.into_owned())
        });
        let admission = Admission {
            port: self.port,
            key: &self.key,
        };
        let checked = admission.check(request.method(), request.headers(), api, query_key.as_deref());
        if let Err(refusal) = checked {
            tracing::info!(path, reason = refusal, "console request refused");
            return self.respond(
                StatusCode::FORBIDDEN,
                "application/json",
                json!({ "message": refusal }).to_string(),
            );
        }
        match (request.method(), path.as_str()) {
            (&Method::GET, "/") => self.respond(StatusCode::OK, "text/html; charset=utf-8", self.page()),
            (&Method::GET, "/__console/console.js") => {
                self.respond(StatusCode::OK, "text/javascript; charset=utf-8", SCRIPT)
            }
            (&Method::GET, "/__console/console.css") => self.respond(StatusCode::OK, "text/css; charset=utf-8", STYLE),
            (&Method::GET, "/__console/api/state") => {
                let state = state::snapshot(&self.aws, &gateway).await;
                self.json(StatusCode::OK, state)
            }
            (&Method::GET, "/__console/api/stream") => self.clone().stream(request, gateway),
            (&Method::POST, "/__console/api/send") => match read_json::<SendRequest>(request).await {
                Ok(send) => self.send(send).await,
                Err(message) => self.json(StatusCode::BAD_REQUEST, json!({ "message": message })),
            },
            (&Method::POST, "/__console/api/token") => match read_json::<TokenRequest>(request).await {
                Ok(asked) => self.token(asked).await,
                Err(message) => self.json(StatusCode::BAD_REQUEST, json!({ "message": message })),
            },
            _ => self.json(StatusCode::NOT_FOUND, json!({ "message": "Not found" })),
        }
    }

    /// The page, with what its script needs to know in `<meta>` tags.
    fn page(&self) -> String {
        let auth = match self.stack.auth.as_ref().map(|auth| auth.trust()) {
            None => "none",
            Some(Trust::Secret) => "secret",
            Some(Trust::Issuer { .. }) => "issuer",
        };
        PAGE.replace("{{KEY}}", &escape(&self.key))
            .replace("{{STACK}}", &escape(&self.stack.name))
            .replace("{{STAGE}}", &escape(&self.stack.stage))
            .replace("{{AUTH}}", auth)
    }

    fn respond(&self, status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
        let port = self.port;
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .header(
                "content-security-policy",
                format!(
                    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                     connect-src 'self' ws://127.0.0.1:{port} ws://localhost:{port}; \
                     form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
                ),
            )
            .header("x-frame-options", "DENY")
            .header("x-content-type-options", "nosniff")
            .header("referrer-policy", "no-referrer")
            .header("cross-origin-resource-policy", "same-origin")
            .header("cross-origin-opener-policy", "same-origin")
            .header("cache-control", "no-store")
            .body(Full::new(body.into()))
            .expect("console response")
    }

    fn json(&self, status: StatusCode, body: Value) -> Response<Full<Bytes>> {
        self.respond(status, "application/json", body.to_string())
    }

    /// Put an entity update or a user notification on the bus, as `wsstack send-event` does.
    async fn send(&self, send: SendRequest) -> Response<Full<Bytes>> {
        let recipient = match send.kind.as_str() {
            "entity" => send_event::Recipient::entity(&send.id, &self.stack),
            "user" => send_event::Recipient::user(&send.id, &self.stack),
            other => {
                return self.json(
                    StatusCode::BAD_REQUEST,
                    json!({ "message": format!("kind `{other}`: entity or user") }),
                )
            }
        };
        fn given(text: &Option<String>) -> Option<&str> {
            text.as_deref().filter(|text| !text.is_empty())
        }
        let detail = match send_event::event_detail(
            &recipient,
            given(&send.message),
            given(&send.callback),
            given(&send.detail),
        ) {
            Ok(detail) => detail,
            Err(error) => return self.json(StatusCode::BAD_REQUEST, json!({ "message": error.to_string() })),
        };
        let warning = (send.kind == "user" && self.stack.auth.is_none()).then_some(send_event::NO_USERS_WITHOUT_AUTH);
        match send_event::put_event(&self.aws.events, &self.stack, &recipient, &detail).await {
            Ok(event_id) => {
                tracing::info!(
                    event_id,
                    detail_type = recipient.detail_type(),
                    detail = %detail,
                    "put an event on the bus"
                );
                self.json(
                    StatusCode::OK,
                    json!({
                        "eventId": event_id,
                        "detailType": recipient.detail_type(),
                        "detail": detail,
                        "warning": warning,
                    }),
                )
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "the console could not put an event on the bus"
                );
                self.json(StatusCode::BAD_GATEWAY, json!({ "message": format!("{error:#}") }))
            }
        }
    }

    /// A token signed with the stack's secret, as `wsstack token` mints it; only for the page.
    async fn token(&self, asked: TokenRequest) -> Response<Full<Bytes>> {
        let bad = |message: String| self.json(StatusCode::BAD_REQUEST, json!({ "message": message }));
        let auth = match self.stack.auth.as_ref() {
            Some(auth) if auth.trust() == Trust::Secret => auth,
            Some(_) => return bad("the stack trusts an OpenID issuer: get a token from it".into()),
            None => return bad("the stack has no `auth:`: connect without a token".into()),
        };
        if asked.user_id.trim().is_empty() {
            return bad("a user id is needed".into());
        }
        let entities = match token::entity_patterns(&asked.entities) {
            Ok(entities) => entities,
            Err(error) => return bad(error.to_string()),
        };
        let max = u64::from(auth.max_token_lifetime_seconds);
        let seconds = asked.ttl_seconds.unwrap_or(token::DEFAULT_TTL_SECONDS.min(max));
        if seconds == 0 || seconds > max {
            return bad(format!(
                "the lifetime must be between 1 and {max} s (auth.max_token_lifetime_seconds)"
            ));
        }
        let secret = self.aws.names.secret();
        let ttl = Duration::from_secs(seconds);
        match token::mint(
            &self.aws.secrets,
            &self.stack,
            &secret,
            auth,
            &asked.user_id,
            &entities,
            ttl,
        )
        .await
        {
            Ok(minted) => {
                tracing::info!(user_id = asked.user_id, entities = ?entities, seconds, "minted a token");
                self.json(StatusCode::OK, json!({ "token": minted, "expiresIn": seconds }))
            }
            Err(failure) => {
                let status = if failure.code == 2 {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::BAD_GATEWAY
                };
                self.json(status, json!({ "message": format!("{:#}", failure.error) }))
            }
        }
    }

    /// The live stream, a WebSocket: the connections (`state`) whenever they may have changed, and
    /// every activity entry (the recent ones first).
    fn stream(self: Arc<Self>, request: Request<Incoming>, gateway: Arc<Gateway>) -> Response<Full<Bytes>> {
        let headers = request.headers();
        let is_upgrade = headers
            .get("upgrade")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let Some(key) = headers.get("sec-websocket-key").filter(|_| is_upgrade).cloned() else {
            return self.json(
                StatusCode::UPGRADE_REQUIRED,
                json!({ "message": "a WebSocket upgrade" }),
            );
        };
        let Ok(permit) = self.streams.clone().try_acquire_owned() else {
            return self.json(
                StatusCode::TOO_MANY_REQUESTS,
                json!({ "message": format!("at most {MAX_STREAMS} console pages at once") }),
            );
        };
        let upgrade = hyper::upgrade::on(request);
        let shutdown = gateway.shutdown_token();
        let console = self.clone();
        gateway.clone().spawn_tracked(async move {
            let _permit = permit;
            match upgrade.await {
                Ok(upgraded) => {
                    let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
                    console.run_stream(socket, gateway, shutdown).await;
                }
                Err(error) => tracing::debug!(%error, "console stream upgrade failed"),
            }
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
            .body(Full::new(Bytes::new()))
            .expect("upgrade response")
    }

    async fn run_stream<S>(&self, socket: WebSocketStream<S>, gateway: Arc<Gateway>, shutdown: CancellationToken)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let (mut sink, mut incoming) = socket.split();
        let (recent, mut entries) = self.activity.watch();
        let mut last_state = state::snapshot(&self.aws, &gateway).await;
        let first = [
            json!({"type": "state", "state": last_state}).to_string(),
            activity_message(&recent),
        ];
        for message in first {
            if sink.send(Message::Text(message.into())).await.is_err() {
                return;
            }
        }
        let mut every = tokio::time::interval(REFRESH_EVERY);
        every.reset();
        let mut refresh_at: Option<tokio::time::Instant> = None;
        loop {
            let refresh_due = async {
                match refresh_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let outgoing = tokio::select! {
                _ = shutdown.cancelled() => {
                    let close = CloseFrame { code: 1001.into(), reason: "Going away".into() };
                    let _ = sink.send(Message::Close(Some(close))).await;
                    return;
                }
                received = incoming.next() => match received {
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    Some(Ok(_)) => continue,
                },
                entry = entries.recv() => match entry {
                    Ok(entry) => {
                        let changes_connections = matches!(
                            entry["kind"].as_str(),
                            Some("connect" | "disconnect" | "subscribe" | "unsubscribe" | "frame")
                        );
                        if changes_connections && refresh_at.is_none() {
                            refresh_at = Some(tokio::time::Instant::now() + REFRESH_AFTER_CHANGE);
                        }
                        activity_message(&[entry])
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        json!({"type": "missed", "count": missed}).to_string()
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = refresh_due => {
                    refresh_at = None;
                    last_state = state::snapshot(&self.aws, &gateway).await;
                    json!({"type": "state", "state": last_state}).to_string()
                }
                _ = every.tick() => {
                    let state = state::snapshot(&self.aws, &gateway).await;
                    let unchanged = state["connections"] == last_state["connections"]
                        && state["tableError"] == last_state["tableError"];
                    last_state = state;
                    if unchanged {
                        continue;
                    }
                    json!({"type": "state", "state": last_state}).to_string()
                }
            };
            if sink.send(Message::Text(outgoing.into())).await.is_err() {
                return;
            }
        }
    }
}

/// `{"type": "activity", "entries": [...]}`; the entries are shared, not copied, until written.
fn activity_message(entries: &[activity::Entry]) -> String {
    let entries: Vec<String> = entries.iter().map(|entry| entry.to_string()).collect();
    format!(r#"{{"type":"activity","entries":[{}]}}"#, entries.join(","))
}

/// Watch the dead-letter queue's depth until `shutdown`, and say when messages arrive in it (the
/// console's stream shows the warning; so does dev's terminal).
pub async fn watch_dead_letters(aws: Aws, shutdown: CancellationToken) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let name = aws.names.dead_letter_queue();
    let mut url = None;
    let mut last: Option<u64> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(DEAD_LETTER_POLL) => {}
            _ = shutdown.cancelled() => return,
        }
        if url.is_none() {
            url = aws
                .sqs
                .get_queue_url()
                .queue_name(&name)
                .send()
                .await
                .ok()
                .and_then(|found| found.queue_url);
        }
        let Some(queue_url) = &url else { continue };
        let depth = aws
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .ok()
            .and_then(|answer| {
                answer
                    .attributes()
                    .and_then(|attributes| attributes.get(&QueueAttributeName::ApproximateNumberOfMessages))
                    .and_then(|n| n.parse::<u64>().ok())
            });
        let Some(depth) = depth else { continue };
        if let Some(before) = last.filter(|before| depth > *before) {
            tracing::warn!(
                queue = name,
                arrived = depth - before,
                waiting = depth,
                "messages arrived in the dead-letter queue"
            );
        }
        last = Some(depth);
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendRequest {
    /// `entity` or `user`.
    kind: String,
    id: String,
    message: Option<String>,
    callback: Option<String>,
    /// A JSON object, as text (send-event's `--detail`).
    detail: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TokenRequest {
    user_id: String,
    /// Comma-separated globs, as `wsstack token --entities`.
    entities: String,
    ttl_seconds: Option<u64>,
}

async fn read_json<T: serde::de::DeserializeOwned>(request: Request<Incoming>) -> Result<T, String> {
    let body = Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|error| format!("the body could not be read (at most {MAX_BODY} bytes): {error}"))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|error| format!("the body is not the expected JSON: {error}"))
}

/// Who may use the console: see the module's doc.
struct Admission<'a> {
    port: u16,
    key: &'a str,
}

impl Admission<'_> {
    /// `Ok`, or why the request is refused. `api`: the path is under `/__console/api/`.
    fn check(
        &self,
        method: &Method,
        headers: &HeaderMap,
        api: bool,
        query_key: Option<&str>,
    ) -> Result<(), &'static str> {
        let port = self.port;
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let host = header("host").unwrap_or_default().to_ascii_lowercase();
        if host != format!("127.0.0.1:{port}") && host != format!("localhost:{port}") {
            return Err("the console answers requests for 127.0.0.1 or localhost at this port only (Host)");
        }
        if !api {
            // The page itself may be opened from anywhere (a link on another site): a navigation
            // shows it to the user, never to that site, and no other site can frame it.
            return Ok(());
        }
        if let Some(site) = header("sec-fetch-site") {
            if site != "same-origin" && site != "none" {
                return Err("the console answers its own page only (Sec-Fetch-Site)");
            }
        }
        let upgrade = headers.contains_key("upgrade");
        match header("origin") {
            Some(origin) => {
                let origin = origin.to_ascii_lowercase();
                if origin != format!("http://127.0.0.1:{port}") && origin != format!("http://localhost:{port}") {
                    return Err("the console answers its own page only (Origin)");
                }
            }
            None if method != Method::GET || upgrade => {
                return Err("the console wants the Origin header a browser sends");
            }
            None => {}
        }
        if method == Method::POST
            && !header("content-type").is_some_and(|value| value.to_ascii_lowercase().starts_with("application/json"))
        {
            return Err("the console's API takes application/json only");
        }
        let given = header(KEY_HEADER).or(query_key).unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), self.key.as_bytes()) {
            return Err("the console's API wants this session's key (it is in the console's page)");
        }
        Ok(())
    }
}

/// Compare without an early exit: how long a refusal takes says nothing of the key.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const OWN: [(&str, &str); 4] = [
        ("host", "127.0.0.1:4000"),
        ("origin", "http://127.0.0.1:4000"),
        ("content-type", "application/json"),
        (KEY_HEADER, "k3y"),
    ];

    #[test]
    fn the_own_page_is_admitted_and_other_origins_are_not() {
        let admission = Admission { port: 4000, key: "k3y" };
        let check = |method: Method, pairs: &[(&'static str, &str)], api: bool| {
            admission.check(&method, &headers(pairs), api, None)
        };
        assert_eq!(check(Method::POST, &OWN, true), Ok(()));
        assert_eq!(check(Method::GET, &[("host", "localhost:4000")], false), Ok(()));
        // A link from another site opens the page (its key reaches the user, not the site).
        let followed = [("host", "127.0.0.1:4000"), ("sec-fetch-site", "cross-site")];
        assert_eq!(check(Method::GET, &followed, false), Ok(()));
        // DNS rebinding: the attacker's name resolves to 127.0.0.1, the browser sends that name.
        assert!(check(Method::GET, &[("host", "evil.example:4000")], false).is_err());
        assert!(check(Method::GET, &[("host", "127.0.0.1:4001")], false).is_err());
        assert!(check(Method::GET, &[], false).is_err());
        let with = |name: &'static str, value: &'static str| {
            let mut pairs = OWN.to_vec();
            pairs.retain(|(n, _)| *n != name);
            pairs.push((name, value));
            pairs
        };
        // A cross-site form or fetch: its Origin, or Sec-Fetch-Site, gives it away.
        assert!(check(Method::POST, &with("origin", "https://evil.example"), true).is_err());
        assert!(check(Method::POST, &with("origin", "null"), true).is_err());
        assert!(check(Method::POST, &with("sec-fetch-site", "cross-site"), true).is_err());
        assert!(check(
            Method::POST,
            &with("content-type", "application/x-www-form-urlencoded"),
            true
        )
        .is_err());
        assert!(check(Method::POST, &with("content-type", "text/plain"), true).is_err());
        assert!(check(Method::POST, &with(KEY_HEADER, "guess"), true).is_err());
        let no_origin: Vec<_> = OWN.iter().copied().filter(|(n, _)| *n != "origin").collect();
        assert!(check(Method::POST, &no_origin, true).is_err());
        assert_eq!(check(Method::GET, &no_origin, true), Ok(()));
        let no_key: Vec<_> = OWN.iter().copied().filter(|(n, _)| *n != KEY_HEADER).collect();
        assert!(check(Method::GET, &no_key, true).is_err());
        // The stream's WebSocket: the key in the query, the Origin required.
        let upgrade = [
            ("host", "127.0.0.1:4000"),
            ("origin", "http://127.0.0.1:4000"),
            ("upgrade", "websocket"),
        ];
        assert_eq!(
            admission.check(&Method::GET, &headers(&upgrade), true, Some("k3y")),
            Ok(())
        );
        let without_origin = [upgrade[0], upgrade[2]];
        assert!(admission
            .check(&Method::GET, &headers(&without_origin), true, Some("k3y"))
            .is_err());
        assert!(admission
            .check(&Method::GET, &headers(&upgrade), true, Some("nope"))
            .is_err());
    }

    #[test]
    fn the_page_escapes_what_it_embeds() {
        assert_eq!(escape(r#"<a href="x">'&"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;");
    }
}
