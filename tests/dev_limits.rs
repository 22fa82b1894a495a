//! `wsstack dev` at its limits, end to end with the real binary: an oversize message is closed
//! with 1009 as API Gateway does, and a second dev for the same stack file is refused.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Env;
use futures::{SinkExt, StreamExt};
use harness::{connect, subscribe, wait_for_subscribers, Dev};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn an_oversize_message_is_closed_with_1009_and_its_records_go() {
    let env = Env::start().await;
    let dev = Dev::start(&env, "oversize", &[]).await;
    let (mut client, _) = connect(&dev.url, None).await;
    subscribe(&mut client, "big").await;
    wait_for_subscribers(&env, &dev.table(), "big", 1).await;

    // 40 KB in one text frame: over API Gateway's 32 KB frame limit.
    let big = json!({"action": "subscribe", "entityId": "x".repeat(40 * 1024)}).to_string();
    client.send(Message::Text(big.into())).await.unwrap();
    let mut code = None;
    while let Ok(Some(frame)) = tokio::time::timeout(Duration::from_secs(10), client.next()).await {
        match frame {
            Ok(Message::Close(frame)) => {
                code = frame.map(|f| u16::from(f.code));
                break;
            }
            Ok(_) => continue,
            Err(error) => panic!("the connection broke without a close frame: {error}"),
        }
    }
    assert_eq!(code, Some(1009), "message too big");
    // $disconnect ran for it.
    wait_for_subscribers(&env, &dev.table(), "big", 0).await;
}

#[tokio::test]
async fn a_second_dev_for_the_same_stack_is_refused_whatever_its_endpoint() {
    let env = Env::start().await;
    let mut dev = Dev::start(&env, "twice", &[]).await;
    let note = env.dir.path().join(".wsstack/twice-dev.dev.json");
    let before = std::fs::read_to_string(&note).expect("the first dev's note");
    // The note says which of the emulator's event sources dev paused (for the other commands):
    // the events queue's and the chunk queue's.
    let session: Value = serde_json::from_str(&before).unwrap();
    assert_eq!(
        session["paused_event_sources"].as_array().map(Vec::len),
        Some(2),
        "{session}"
    );

    let path = env.dir.path().join("twice.yaml");
    let mut second = env.command(
        &path,
        &["dev", "--port", "0", "-q", "--endpoint-url", &env.moto.endpoint()],
    );
    second.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut second = second.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!("the second `wsstack dev` runs");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("already running"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&note).ok().as_deref(),
        Some(before.as_str()),
        "the first dev's note is untouched"
    );

    // The first one still serves, and removes its own note when it stops.
    let (mut client, _) = connect(&dev.url, None).await;
    subscribe(&mut client, "still").await;
    wait_for_subscribers(&env, &dev.table(), "still", 1).await;
    let code = tokio::task::spawn_blocking(move || dev.interrupt()).await.unwrap();
    assert_eq!(code, 0);
    assert!(!note.exists(), "the first dev removed its note");
}

#[tokio::test]
async fn status_and_up_in_another_terminal_leave_the_event_source_dev_paused() {
    let env = Env::start().await;
    let _dev = Dev::start(&env, "aware", &[]).await;
    let mappings = env.event_source_mappings("aware-dev-push").await;
    assert_eq!(mappings.len(), 2, "events and chunks");
    for mapping in &mappings {
        assert_eq!(
            mapping.state(),
            Some("Disabled"),
            "dev pauses the emulator's own pollers"
        );
    }
    let uuids: Vec<&str> = mappings.iter().map(|m| m.uuid().unwrap()).collect();

    // Another terminal, same stack file: dev's pause is no drift...
    let stack = env.dir.path().join("aware.yaml");
    let status = env.run(&stack, &["status"]).await;
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    assert!(!status.stdout.contains("Disabled"), "{}", status.stdout);

    // ...and `up` writes nothing, so the emulator's poller (which, without Docker, sends every
    // message to the DLQ) stays paused.
    env.proxy.clear();
    let up = env.run(&stack, &["up"]).await;
    assert_eq!(up.code, 0, "{}{}", up.stdout, up.stderr);
    let writes: Vec<String> = env.proxy.writes().iter().map(|c| c.operation.clone()).collect();
    assert!(writes.is_empty(), "up wrote {writes:?}");
    let after = env.event_source_mappings("aware-dev-push").await;
    assert_eq!(after.iter().map(|m| m.uuid().unwrap()).collect::<Vec<_>>(), uuids);
    assert!(after.iter().all(|m| m.state() == Some("Disabled")), "{after:?}");
}
