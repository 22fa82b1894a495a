//! Chunked fan-out through `wsstack dev`: with a chunk size of 5, one event to 23 real WebSocket
//! clients is split by the push handler into chunk messages on the stack's queue (SQS in moto),
//! taken up by the dev pollers (one per unit of the mapping's maximum concurrency) and posted
//! through the local gateway: every client gets it exactly once.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;

use std::time::Duration;

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
