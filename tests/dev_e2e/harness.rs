//! The harness of the `wsstack dev` end-to-end tests: the real binary as a child process, real
//! WebSocket clients, and reads of the connections table straight from moto.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::{stack_text, Env};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A running `wsstack dev` against the test's moto, stopped (SIGINT, then SIGKILL) when dropped.
pub struct Dev {
    child: Child,
    pub url: String,
    stack: String,
    stage: String,
    /// The stack file it runs.
    pub path: std::path::PathBuf,
}

impl Dev {
    pub async fn start(env: &Env, stack: &str, edits: &[(&str, &str)]) -> Dev {
        Dev::start_with(env, stack, edits, &[]).await
    }

    /// `start`, with these environment variables for `wsstack dev` (e.g. `WSSTACK_HANDLERS_ZIP`).
    pub async fn start_with(env: &Env, stack: &str, edits: &[(&str, &str)], variables: &[(&str, &str)]) -> Dev {
        Dev::start_stage(env, stack, "dev", edits, variables).await
    }

    /// `start_with` for another stage of the stack, from the file `{stack}-{stage}.yaml` (`{stack}.yaml`
    /// for `dev`, the shipped file's stage).
    pub async fn start_stage(
        env: &Env,
        stack: &str,
        stage: &str,
        edits: &[(&str, &str)],
        variables: &[(&str, &str)],
    ) -> Dev {
        let (file, staged) = if stage == "dev" {
            (format!("{stack}.yaml"), stack_text(stack, edits))
        } else {
            let staged = format!("stage: {stage}\n");
            let edits: Vec<(&str, &str)> = [("stage: dev\n", staged.as_str())]
                .into_iter()
                .chain(edits.iter().copied())
                .collect();
            (format!("{stack}-{stage}.yaml"), stack_text(stack, &edits))
        };
        let path = env.write_stack(&file, &staged);
        let mut command = env.command(&path, &["dev", "--port", "0", "--quiet-handlers", "-q"]);
        command.envs(variables.iter().copied());
        // Straight to moto: the proxy's call log is not needed here.
        command
            .env("AWS_ENDPOINT_URL", env.moto.endpoint())
            .stderr(Stdio::inherit());
        let (child, url) = spawn_serving(command).await;
        Dev {
            child,
            url,
            stack: stack.to_string(),
            stage: stage.to_string(),
            path,
        }
    }

    /// The access key id and secret of this dev session, from its note beside the stack file,
    /// which holds them for its owner.
    pub fn session_credentials(&self) -> (String, String) {
        let dir = self.path.parent().expect("the stack file is in a folder");
        let note = dir.join(format!(".wsstack/{}-{}.dev.json", self.stack, self.stage));
        let note: Value =
            serde_json::from_str(&std::fs::read_to_string(&note).expect("dev's session note")).expect("a JSON note");
        let field = |name: &str| note["management"][name].as_str().expect(name).to_string();
        (field("access_key_id"), field("secret_access_key"))
    }

    /// A management API client built as a handler builds one: the SDK, the callback URL dev
    /// gives its handlers (`http://host:port/{stage}`) as its endpoint, the region it has and the
    /// session's credentials.
    pub fn management(&self, env: &Env) -> aws_sdk_apigatewaymanagement::Client {
        self.management_at(env, &self.url.replacen("ws://", "http://", 1))
    }

    pub fn management_at(&self, env: &Env, endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
        let (key, secret) = self.session_credentials();
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(&env.config)
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new(
                key,
                secret,
                None,
                None,
                "wsstack dev session note",
            ))
            .build();
        aws_sdk_apigatewaymanagement::Client::from_conf(config)
    }

    pub fn table(&self) -> String {
        format!("{}-{}-connections", self.stack, self.stage)
    }

    /// Ctrl-C, and the exit code.
    pub fn interrupt(&mut self) -> i32 {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "wsstack dev did not stop on SIGINT");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Spawn `command`, a `wsstack dev`, and wait for the address it serves (its `wsstack dev:
/// serving` line). Its stdout is drained afterwards, so that dev never blocks on a full pipe.
pub async fn spawn_serving(mut command: std::process::Command) -> (Child, String) {
    command.stdout(Stdio::piped());
    let mut child = command.spawn().expect("start wsstack dev");
    let stdout = child.stdout.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.expect("dev stdout");
            if let Some(url) = line.strip_prefix("wsstack dev: serving ") {
                std::thread::spawn(move || for _ in lines {});
                return url.trim().to_string();
            }
        }
        panic!("wsstack dev exited before serving");
    })
    .await
    .unwrap();
    (child, url)
}

impl Drop for Dev {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
            for _ in 0..100 {
                if self.child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub async fn connect(url: &str, protocol: Option<&str>) -> (Socket, Option<String>) {
    let mut request = url.into_client_request().unwrap();
    if let Some(protocol) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    }
    let (socket, response) = tokio_tungstenite::connect_async(request).await.expect("connect");
    let chosen = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_string());
    (socket, chosen)
}

/// The handshake's HTTP status when refused; panics when it is accepted.
pub async fn refused(url: &str, protocol: Option<&str>) -> u16 {
    let mut request = url.into_client_request().unwrap();
    if let Some(protocol) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("the handshake was accepted"),
    }
}

pub async fn send(socket: &mut Socket, frame: Value) {
    socket.send(Message::Text(frame.to_string().into())).await.unwrap();
}

/// The next text message within `within`, as JSON.
pub async fn next_message(socket: &mut Socket, within: Duration) -> Option<Value> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(serde_json::from_str(&text).expect("JSON message")),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Wait until `entity` has `count` subscription records in the index.
pub async fn wait_for_subscribers(env: &Env, table: &str, entity: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut found = 0;
        let mut start = None;
        loop {
            let page = env
                .dynamodb()
                .query()
                .table_name(table)
                .index_name("GSI1")
                .key_condition_expression("GSI1PK = :e")
                .expression_attribute_values(":e", AttributeValue::S(entity.into()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            found += page.count() as usize;
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        if found == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{entity}: {found} subscribers, expected {count}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `count` clients, each subscribed to `entity`, once the table holds all their subscriptions.
pub async fn subscribed_clients(env: &Env, dev: &Dev, entity: &str, count: usize) -> Vec<Socket> {
    let mut sockets = Vec::new();
    for _ in 0..count {
        let (mut socket, _) = connect(&dev.url, None).await;
        send(&mut socket, json!({"action": "subscribe", "entityId": entity})).await;
        sockets.push(socket);
    }
    // Each answers once its subscription is stored.
    for socket in &mut sockets {
        expect_acknowledgement(socket, "subscribe", entity, Duration::from_secs(60)).await;
    }
    wait_for_subscribers(env, &dev.table(), entity, count).await;
    sockets
}

/// Subscribe to `entity` and wait for the acknowledgement, which comes once the subscription is
/// stored.
pub async fn subscribe(socket: &mut Socket, entity: &str) {
    acknowledged(socket, "subscribe", entity).await;
}

/// Unsubscribe from `entity` and wait for the acknowledgement.
pub async fn unsubscribe(socket: &mut Socket, entity: &str) {
    acknowledged(socket, "unsubscribe", entity).await;
}

async fn acknowledged(socket: &mut Socket, action: &str, entity: &str) {
    send(socket, json!({"action": action, "entityId": entity})).await;
    expect_acknowledgement(socket, action, entity, Duration::from_secs(30)).await;
}

/// The next message is the acknowledgement of `action` (`subscribe`: `{"type":"subscribed",...}`).
async fn expect_acknowledgement(socket: &mut Socket, action: &str, entity: &str, within: Duration) {
    let answer = next_message(socket, within).await;
    let kind = format!("{action}d");
    // On a stack with history (the default) `subscribed` also carries the entity's latest `seq`.
    let acknowledged = answer.as_ref().map(|a| (a["type"].clone(), a["entityId"].clone()));
    assert_eq!(
        acknowledged,
        Some((json!(kind), json!(entity))),
        "{action} {entity}: {answer:?}"
    );
}

pub async fn records_of(env: &Env, table: &str, connection_id: &str) -> usize {
    env.dynamodb()
        .query()
        .table_name(table)
        .key_condition_expression("pk = :c")
        .expression_attribute_values(":c", AttributeValue::S(connection_id.into()))
        .send()
        .await
        .unwrap()
        .count() as usize
}

pub async fn all_connection_ids(env: &Env, table: &str) -> Vec<String> {
    let items = env.dynamodb().scan().table_name(table).send().await.unwrap();
    let mut ids: Vec<String> = items
        .items()
        .iter()
        .filter(|item| item.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("connection#"))
        .filter_map(|item| item.get("pk").and_then(|v| v.as_s().ok()).cloned())
        .collect();
    ids.sort();
    ids
}

pub async fn send_event(env: &Env, stack: &str, entity: &str, message: &str) {
    let path = env.dir.path().join(format!("{stack}.yaml"));
    let mut command = env.command(
        &path,
        &["send-event", "--entity-id", entity, "--message", message, "-q"],
    );
    command.env("AWS_ENDPOINT_URL", env.moto.endpoint());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "send-event: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Debian's chromium package, which the browser tests drive through Playwright (no browser download).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The browser and its driver, or a failure that says how to get them: this test must not skip.
pub fn python_with_playwright() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/setup (it installs Debian's chromium package)"
    );
    let importable = std::process::Command::new(&python)
        .args(["-c", "import playwright.sync_api"])
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        importable,
        "Playwright's Python client is missing from {}: run scripts/setup",
        python.display()
    );
    python
}
