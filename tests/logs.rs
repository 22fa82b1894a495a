//! `wsstack logs`: merged, ordered, readable handler logs read from CloudWatch Logs in moto, both
//! for lines put there through the SDK and for the lines `wsstack dev`'s handler processes ship.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use common::Env;
use futures::SinkExt;
use harness::Dev;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn put(env: &Env, group: &str, events: &[(i64, &str)]) {
    let logs = env.logs();
    let _ = logs
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name("test")
        .send()
        .await;
    let events = events
        .iter()
        .map(|(at, message)| {
            InputLogEvent::builder()
                .timestamp(*at)
                .message(*message)
                .build()
                .unwrap()
        })
        .collect();
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name("test")
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn logs_merge_the_handlers_in_time_order_and_render_json_lines() {
    let (env, stack) = Env::with_stack("lg").await;
    assert_eq!(env.run(&stack, &["up"]).await.code, 0);
    let t = now_ms() - 30_000;
    let info =
        r#"{"timestamp":"x","level":"INFO","fields":{"message":"connected","connection_id":"abc"},"target":"h"}"#;
    put(&env, "/aws/lambda/lg-dev-connect", &[(t, "START one"), (t + 20, info)]).await;
    put(
        &env,
        "/aws/lambda/lg-dev-push",
        &[(t + 10, "push line"), (t + 30, "push last")],
    )
    .await;
    // Older than --since: left out.
    put(&env, "/aws/lambda/lg-dev-subscribe", &[(t - 3_600_000, "an hour ago")]).await;

    let run = env
        .run(&stack, &["logs", "--since", "10m", "-o", "json"])
        .await
        .expect_exit(0);
    let lines: Vec<Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let seen: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["handler"].as_str().unwrap(), l["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("connect", "START one"),
            ("push", "push line"),
            ("connect", info),
            ("push", "push last")
        ]
    );

    let text = env.run(&stack, &["logs", "connect"]).await.expect_exit(0);
    let text_lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(text_lines.len(), 2, "{text}");
    assert!(
        text_lines[1].contains(" connect     INFO  connected connection_id=abc"),
        "{text}"
    );

    let hour = env.run(&stack, &["logs", "subscribe", "--since", "2h"]).await;
    hour.expect_stdout("an hour ago");

    let bad = env.run(&stack, &["logs", "nosuch"]).await.expect_exit(2);
    bad.expect_stderr("connect, disconnect, subscribe, unsubscribe, resume, push");
    env.run(&stack, &["logs", "--since", "ten"]).await.expect_exit(2);
}

/// A long-running `wsstack` (dev, logs --follow) against the test's moto; stopped with SIGINT (then
/// SIGKILL) when dropped.
struct Running(Child);

/// Starts `wsstack args` on `stack` straight against moto (the proxy's call log is not needed
/// here), with its stdout to read.
fn spawn_on_moto(env: &Env, stack: &Path, args: &[&str]) -> (Running, ChildStdout) {
    let mut command = env.command(stack, args);
    command
        .env("AWS_ENDPOINT_URL", env.moto.endpoint())
        .stdout(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    (Running(child), stdout)
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_some() {
            return;
        }
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        for _ in 0..100 {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn logs_follow_the_handlers_of_wsstack_dev() {
    let env = Env::start().await;
    let dev = Dev::start(&env, "follow", &[]).await;
    let (stack, url) = (dev.path.clone(), dev.url.clone());

    // `logs --follow` from before the first connection.
    let (follower, follower_out) = spawn_on_moto(&env, &stack, &["logs", "--follow", "-o", "json"]);
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(follower_out).lines().map_while(Result::ok) {
            let _ = sender.send(serde_json::from_str(&line).expect("JSON line"));
        }
    });

    let (mut client, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
    client
        .send(Message::Text(
            json!({"action": "subscribe", "entityId": "e1"}).to_string().into(),
        ))
        .await
        .unwrap();

    // The handlers' own lines (tracing JSON) arrive through dev's PutLogEvents.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines: Vec<Value> = Vec::new();
    let wanted = |lines: &[Value]| {
        ["connect", "subscribe"].iter().all(|h| {
            lines
                .iter()
                .any(|l| l["handler"] == *h && l["message"].as_str().unwrap().contains("\"level\""))
        })
    };
    while !wanted(&lines) {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("handler lines within 30 s");
        if let Ok(Some(line)) = tokio::time::timeout(left, received.recv()).await {
            lines.push(line);
        }
    }
    // A few more polls: nothing is shown twice.
    tokio::time::sleep(Duration::from_secs(5)).await;
    while let Ok(line) = received.try_recv() {
        lines.push(line);
    }
    let ids: HashSet<&str> = lines.iter().map(|l| l["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), lines.len(), "no event twice: {lines:#?}");
    // Across polls a late line of another handler may follow a newer one; one handler's lines
    // are shipped in order, so they are shown in order.
    for handler in ["connect", "subscribe"] {
        let times: Vec<i64> = lines
            .iter()
            .filter(|l| l["handler"] == handler)
            .map(|l| l["timestamp"].as_i64().unwrap())
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "{handler} in time order: {times:?}"
        );
    }

    // Ctrl-C ends the follower with exit 0.
    let mut follower = follower;
    unsafe { libc::kill(follower.0.id() as i32, libc::SIGINT) };
    let status = tokio::task::spawn_blocking(move || follower.0.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// FilterLogEvents throttled for longer than the SDK's retries last (its quota is low and shared):
/// `logs --follow` says so, slows down and goes on, and shows what was logged meanwhile.
#[tokio::test]
async fn a_follower_outlasts_throttling() {
    let (env, stack) = Env::with_stack("lt").await;
    assert_eq!(env.run(&stack, &["up"]).await.code, 0);
    // Five handlers read at once, each call tried 8 times: 60 throttles fail at least one poll.
    env.proxy.inject(testkit::Fault::new(
        "logs",
        "FilterLogEvents",
        60,
        400,
        "ThrottlingException",
        "Rate exceeded",
    ));
    let mut command = env.command(&stack, &["logs", "--follow", "-o", "json"]);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let follower = Running(child);
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
    let said = sender.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(format!("out {line}"));
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = said.send(format!("err {line}"));
        }
    });

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lines = Vec::new();
    let mut logged = false;
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("no line logged after the throttling within 120 s: {lines:#?}"));
        let Ok(Some(line)) = tokio::time::timeout(left, received.recv()).await else {
            continue;
        };
        if !logged && line.starts_with("err ") && line.contains("FilterLogEvents has a low quota") {
            // The throttling has been seen through to the end: log a line for the follower.
            while env.proxy.pending_faults() > 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            put(&env, "/aws/lambda/lt-dev-push", &[(now_ms(), "after the throttling")]).await;
            logged = true;
        }
        let done = line.starts_with("out ") && line.contains("after the throttling");
        lines.push(line);
        if done {
            break;
        }
    }
    assert!(logged, "the follower never said it was throttled: {lines:#?}");
    let mut follower = follower;
    assert!(
        follower.0.try_wait().unwrap().is_none(),
        "the follower ended: {lines:#?}"
    );
}
