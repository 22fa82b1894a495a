//! What every conformance test starts from: a `wsstack dev` whose every function (`$connect`,
//! `$disconnect`, the routes, the authorizer) runs `handler.rs`, the events it recorded, clients
//! that send their own headers, and a management API client built the way a handler builds one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::common::Env;
use crate::harness::{next_message, send, Dev, Socket};

/// How long an answer may take: a handler process may be starting.
pub const WITHIN: Duration = Duration::from_secs(20);

/// The user agent every test client sends, to find it again in the events.
pub const USER_AGENT: &str = "conformance-client/1.0";

const BUNDLED: &str = "routes:\n  - subscribe\n  - unsubscribe\n";

/// What the stack declares besides the `probe` route that every test has.
#[derive(Default, Clone, Copy)]
pub struct Declared {
    /// A `$default` route.
    pub default_route: bool,
    /// `auth:`, which puts a REQUEST authorizer on `$connect` (here: the conformance handler).
    pub authorizer: bool,
    /// `probe` is two-way (`replies: true`: a route response sends its integration's body back).
    pub two_way: bool,
}

/// Fields drop in declaration order: `dev` stops while `env`'s emulator still answers its
/// `$disconnect`s. The other way round its shutdown outlives the harness's grace, it is killed, and
/// its folder of handler binaries is left behind in the temporary directory.
pub struct Local {
    pub dev: Dev,
    pub env: Env,
    pub stack: String,
    record: PathBuf,
}

impl Local {
    /// `wsstack dev` for stack `stack`, every function running the conformance handler: the
    /// bundled ones through `WSSTACK_HANDLERS_ZIP`, the own routes through `bootstrap:`.
    pub async fn start(stack: &str, declared: Declared) -> Local {
        let env = Env::start().await;
        let record = env.dir.path().join("events.jsonl");
        let bootstrap = build_handler(env.dir.path(), &record);
        let zip = env.dir.path().join("handlers.zip");
        let package = wsstack_handlers::package::zip_bootstrap(&std::fs::read(&bootstrap).unwrap()).unwrap();
        std::fs::write(&zip, package).unwrap();

        let own = format!("    bootstrap: {}\n", bootstrap.display());
        let mut routes = format!("{BUNDLED}  - name: probe\n{own}");
        if declared.two_way {
            routes.push_str("    replies: true\n");
        }
        if declared.default_route {
            routes.push_str(&format!("  - name: $default\n{own}"));
        }
        let mut edits = vec![(BUNDLED, routes.as_str())];
        if declared.authorizer {
            edits.push(("# Who may connect.", "auth:\n  secret: generated\n\n# Who may connect."));
        }
        let zip_text = zip.display().to_string();
        let dev = Dev::start_with(&env, stack, &edits, &[("WSSTACK_HANDLERS_ZIP", &zip_text)]).await;
        Local {
            env,
            dev,
            stack: stack.to_string(),
            record,
        }
    }

    /// `host:port` of the gateway.
    pub fn address(&self) -> String {
        let rest = self.dev.url.trim_start_matches("ws://");
        rest.split('/').next().unwrap().to_string()
    }

    /// The stack's WebSocket API id in the emulator, which events carry as `apiId`.
    pub async fn api_id(&self) -> String {
        crate::common::apis_of(&self.env, &self.stack).await[0]
            .api_id()
            .unwrap()
            .to_string()
    }

    /// Every event the functions got so far, in order.
    pub fn recorded(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a recorded event"))
            .collect()
    }

    /// The events of `connection_id` of `kind` (`CONNECT`, `MESSAGE`, `DISCONNECT`, or
    /// `AUTHORIZER` for the authorizer's REQUEST events).
    pub fn events_of(&self, connection_id: &str, kind: &str) -> Vec<Value> {
        self.recorded()
            .into_iter()
            .filter(|event| event["requestContext"]["connectionId"] == connection_id)
            .filter(|event| kind_of(event) == kind)
            .collect()
    }

    /// The first event of `connection_id` of `kind`, once recorded.
    pub async fn wait_for(&self, connection_id: &str, kind: &str) -> Value {
        let deadline = Instant::now() + WITHIN;
        loop {
            if let Some(event) = self.events_of(connection_id, kind).into_iter().next() {
                return event;
            }
            assert!(Instant::now() < deadline, "no {kind} event of {connection_id}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A client with the test user agent and these extra headers, at `dev`'s URL + `suffix`.
    pub async fn client(&self, suffix: &str, headers: &[(&str, &str)]) -> Socket {
        let mut request = format!("{}{suffix}", self.dev.url).into_client_request().unwrap();
        request.headers_mut().insert("User-Agent", USER_AGENT.parse().unwrap());
        for (name, value) in headers {
            request.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        tokio_tungstenite::connect_async(request).await.expect("handshake").0
    }

    /// The handshake's refusal: its status and body; panics when it is accepted.
    pub async fn refusal(&self, suffix: &str) -> (u16, String) {
        let request = format!("{}{suffix}", self.dev.url).into_client_request().unwrap();
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response.body().clone().unwrap_or_default();
                (response.status().as_u16(), String::from_utf8_lossy(&body).into_owned())
            }
            Err(other) => panic!("{suffix}: unexpected error {other}"),
            Ok(_) => panic!("{suffix}: the handshake was accepted"),
        }
    }

    /// A management API client built as a handler builds one (see [`Dev::management`]).
    pub fn management(&self) -> aws_sdk_apigatewaymanagement::Client {
        self.dev.management(&self.env)
    }

    pub fn management_at(&self, endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
        self.dev.management_at(&self.env, endpoint)
    }

    pub fn session_credentials(&self) -> (String, String) {
        self.dev.session_credentials()
    }

    /// The `Authorization` header line (CRLF included) of a hand-made management API call: the
    /// session's access key id, which is what dev checks.
    pub fn authorization(&self) -> String {
        let (key, _) = self.session_credentials();
        format!(
            "Authorization: AWS4-HMAC-SHA256 Credential={key}/20260101/us-east-1/execute-api/aws4_request, \
             SignedHeaders=host, Signature=0\r\n"
        )
    }
}

/// The kind of a recorded event: its `eventType`, or `AUTHORIZER` for a REQUEST authorizer's.
pub fn kind_of(event: &Value) -> &str {
    if event["type"] == "REQUEST" {
        return "AUTHORIZER";
    }
    event["requestContext"]["eventType"].as_str().unwrap_or_default()
}

/// Compile `handler.rs` into `dir`, recording into `record`.
fn build_handler(dir: &Path, record: &Path) -> PathBuf {
    let source = testkit::repo_root().join("tests/conformance/handler.rs");
    let out = dir.join("bootstrap-conformance");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let status = std::process::Command::new(rustc)
        .args(["--edition", "2021", "-C", "debuginfo=0", "-o"])
        .arg(&out)
        .arg(&source)
        .env("CONFORMANCE_RECORD", record)
        .status()
        .expect("run rustc");
    assert!(status.success(), "the conformance handler compiles");
    out
}

/// Send `frame` (a JSON frame with the echo marker added) and return the event the route got,
/// which the handler posts back.
pub async fn echo(client: &mut Socket, mut frame: Value) -> Value {
    frame["do"] = json!("conformance-echo");
    send(client, frame).await;
    next_message(client, WITHIN).await.expect("the echoed event")
}

/// Send a text frame as it is.
pub async fn send_text(client: &mut Socket, text: &str) {
    use futures::SinkExt;
    client.send(Message::Text(text.into())).await.unwrap();
}

/// The connection id of `client`: what its `probe` route hears.
pub async fn connection_id(client: &mut Socket) -> String {
    let event = echo(client, json!({"action": "probe"})).await;
    event["requestContext"]["connectionId"].as_str().unwrap().to_string()
}

/// The close code the client gets next, skipping data frames; none when the socket just ends.
pub async fn close_code(client: &mut Socket) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    while let Ok(Some(frame)) = tokio::time::timeout_at(deadline, client.next()).await {
        match frame {
            Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// One raw HTTP/1.1 request on a fresh connection: the status line's code and the whole answer.
pub fn raw_http(address: &str, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(WITHIN)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// A value of `requestContext` that API Gateway documents as absent for this event type: dev may
/// omit it or, as API Gateway's own events show, give it as null.
pub fn absent(value: &Value) -> bool {
    value.is_null()
}
