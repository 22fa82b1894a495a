//! Chunked fan-out through `wsstack dev`: with a chunk size of 5, one event to 23 real WebSocket
//! clients is split by the push handler into chunk messages on the stack's chunk queue (SQS in
//! moto), taken up by the dev pollers of its event source (one per unit of the mapping's maximum
//! concurrency, one chunk each) and posted through the local gateway: every client gets it exactly
//! once. And an event to one client is not held behind a large fan-out's chunks.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use common::Env;
use harness::{next_message, send_event, subscribed_clients, Dev};
use serde_json::json;

#[tokio::test]
async fn chunks_of_five_reach_each_of_23_clients_exactly_once() {
    let env = Env::start().await;
    let dev = Dev::start(&env, "chunky", &[("chunk_size: 1000", "chunk_size: 5")]).await;
    let clients = 23;
    let mut sockets = subscribed_clients(&env, &dev, "hot", clients).await;
    send_event(&env, "chunky", "hot", "split").await;
    for socket in &mut sockets {
        let push = next_message(socket, Duration::from_secs(30))
            .await
            .expect("every client gets the event");
        assert_eq!(
            push,
            json!({"type": "Entity Updated", "entityId": "hot", "message": "split", "seq": 1})
        );
    }
    // Nothing more comes: no chunk was delivered twice.
    for socket in &mut sockets {
        assert_eq!(next_message(socket, Duration::from_millis(300)).await, None);
    }
    // And it did go through chunks: the push function's log, shipped by dev to CloudWatch Logs.
    let log = "/aws/lambda/chunky-dev-push";
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let events = env
            .logs()
            .filter_log_events()
            .log_group_name(log)
            .send()
            .await
            .map(|output| output.events.unwrap_or_default())
            .unwrap_or_default();
        let handed_on = events
            .iter()
            .filter_map(|event| event.message())
            .find(|message| message.contains("handed on as chunks") && message.contains("\"subscribers\":23"));
        if let Some(line) = handed_on {
            assert!(line.contains("\"chunks\":5"), "{line}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no \"handed on as chunks\" in {log}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn an_event_to_one_client_is_not_held_behind_a_large_fan_out() {
    let env = Env::start().await;
    // 100 posts/s for the stack: 19 posts/s for each of the five chunk invocations, so the 200
    // subscribers of "hot" (ten chunks of 20, two rounds of five) take about two seconds; an
    // invocation of the events queue posts one connection itself at 1 post/s.
    let edits = [
        ("chunk_size: 1000", "chunk_size: 20"),
        ("max_posts_per_second: 2000", "max_posts_per_second: 100"),
    ];
    let dev = Dev::start(&env, "behind", &edits).await;
    let hot = subscribed_clients(&env, &dev, "hot", 200).await;
    let mut solo = subscribed_clients(&env, &dev, "solo", 1).await.remove(0);
    let receipts = hot
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                let push = next_message(&mut socket, Duration::from_secs(60)).await;
                assert_eq!(push.expect("every hot client gets the event")["message"], "big");
                Instant::now()
            })
        })
        .collect::<Vec<_>>();
    send_event(&env, "behind", "hot", "big").await;
    send_event(&env, "behind", "solo", "small").await;
    let push = next_message(&mut solo, Duration::from_secs(30)).await;
    let solo_at = Instant::now();
    assert_eq!(push.expect("the one client gets its event")["message"], "small");
    let mut hot_at = Vec::new();
    for receipt in receipts {
        hot_at.push(receipt.await.expect("a hot client's task"));
    }
    let later = hot_at.iter().filter(|at| **at > solo_at).count();
    // Behind the chunks on one queue, it would come after the last of them. Its own way takes a
    // few hundred milliseconds, the fan-out two seconds: it comes before at least the last quarter
    // of the fan-out even on a slow machine (the fan-out's time is its pace, not the machine's).
    assert!(
        later >= 50,
        "the one client's event came after {} of the 200 of the large fan-out",
        200 - later
    );
    println!("{later} of 200 hot clients got their event after the one client got its own");
}
