//! User notifications end to end through `wsstack dev` with `auth: {secret: generated}`: tokens from
//! `wsstack token`, real WebSocket clients, `wsstack send-event --user-id`, the rule, the queue, dev's
//! poller and the real push handler process. Every connection of the user gets the frame; another
//! user's connection, even one subscribed to an entity of the same name, gets nothing; a connection
//! of the user that was away gets what it missed with `resume`.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;

use std::time::Duration;

use common::{Env, USER_NOTIFICATION};
use harness::{all_connection_ids, connect, next_message, send, subscribe, wait_for_subscribers, Dev};
use serde_json::json;

const STACK: &str = "userpush";

/// The shipped stack file with `auth:` turned on.
const WITH_AUTH: (&str, &str) = ("# Who may connect.", "auth:\n  secret: generated\n\n# Who may connect.");

async fn token(env: &Env, user_id: &str) -> String {
    let path = env.dir.path().join(format!("{STACK}.yaml"));
    // Every entity: bob subscribes to one below (a token without the claim may subscribe to none).
    let run = env
        .run(
            &path,
            &["token", "--user-id", user_id, "--all-entities", "--ttl", "10m"],
        )
        .await;
    assert_eq!(run.code, 0, "wsstack token: {}", run.stderr);
    run.stdout.trim().to_string()
}

async fn send_event(env: &Env, args: &[&str]) -> common::Run {
    let path = env.dir.path().join(format!("{STACK}.yaml"));
    env.run(&path, &[&["send-event"], args].concat()).await
}

#[tokio::test]
async fn a_user_notification_reaches_every_connection_of_the_user_and_no_one_else() {
    let env = Env::start().await;
    let dev = Dev::start(&env, STACK, &[WITH_AUTH]).await;
    let table = dev.table();
    let (alice, bob) = (token(&env, "alice").await, token(&env, "bob").await);

    // Alice on two devices, one sending the token in the protocol header, one in the query.
    let (mut alice_phone, _) = connect(&dev.url, Some(&format!("websocket, {alice}"))).await;
    let (mut alice_laptop, _) = connect(&format!("{}?access_token={alice}", dev.url), None).await;
    // Bob, subscribed to an entity that happens to be named like alice.
    let (mut bob_phone, _) = connect(&dev.url, Some(&format!("websocket, {bob}"))).await;
    subscribe(&mut bob_phone, "alice").await;
    wait_for_subscribers(&env, &table, "alice", 1).await;
    assert_eq!(all_connection_ids(&env, &table).await.len(), 3);

    let run = send_event(&env, &USER_NOTIFICATION).await;
    assert_eq!(run.code, 0, "{run}");

    // The stack keeps history (the default): the user's first notification is number 1.
    let expected =
        json!({"type": "User Push Notification", "message": "Your order shipped", "callback": "orders/42", "seq": 1});
    for (who, socket) in [("phone", &mut alice_phone), ("laptop", &mut alice_laptop)] {
        let frame = next_message(socket, Duration::from_secs(30)).await;
        assert_eq!(frame, Some(expected.clone()), "alice's {who}");
    }
    // Both of alice's frames came through the same push; a frame for bob would have come with them.
    assert_eq!(next_message(&mut bob_phone, Duration::from_secs(3)).await, None, "bob");
    for (who, socket) in [("phone", &mut alice_phone), ("laptop", &mut alice_laptop)] {
        assert_eq!(
            next_message(socket, Duration::from_millis(500)).await,
            None,
            "alice's {who}: one frame"
        );
    }

    // Without a callback the frame has none.
    let run = send_event(&env, &["--user-id", "alice", "--message", "again"]).await;
    assert_eq!(run.code, 0, "{run}");
    let again = json!({"type": "User Push Notification", "message": "again", "seq": 2});
    for socket in [&mut alice_phone, &mut alice_laptop] {
        assert_eq!(next_message(socket, Duration::from_secs(30)).await, Some(again.clone()));
    }

    // The laptop goes away; two notifications come meanwhile (the phone gets them as they come).
    // Back, it resumes from the last number it saw: both, in order, then the acknowledgement.
    alice_laptop.close(None).await.unwrap();
    drop(alice_laptop);
    for message in ["missed 1", "missed 2"] {
        let run = send_event(&env, &["--user-id", "alice", "--message", message]).await;
        assert_eq!(run.code, 0, "{run}");
        let frame = next_message(&mut alice_phone, Duration::from_secs(30)).await;
        assert_eq!(frame.map(|f| f["message"].clone()), Some(json!(message)));
    }
    let (mut laptop_back, _) = connect(&format!("{}?access_token={alice}", dev.url), None).await;
    send(&mut laptop_back, json!({"action": "resume", "since": 2})).await;
    let mut answers = Vec::new();
    while let Some(frame) = next_message(&mut laptop_back, Duration::from_secs(30)).await {
        answers.push(frame);
        if answers.len() == 3 {
            break;
        }
    }
    assert_eq!(
        answers,
        [
            json!({"type": "User Push Notification", "message": "missed 1", "seq": 3}),
            json!({"type": "User Push Notification", "message": "missed 2", "seq": 4}),
            json!({"type": "resumed", "userId": "alice", "seq": 4}),
        ]
    );
    // Bob's connection was there all along and has no notifications; with no `since` it learns
    // where his stream stands.
    send(&mut bob_phone, json!({"action": "resume"})).await;
    assert_eq!(
        next_message(&mut bob_phone, Duration::from_secs(30)).await,
        Some(json!({"type": "resumed", "userId": "bob", "seq": 0}))
    );
}
