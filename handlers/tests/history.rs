//! History (issue 24): the push handler numbers each event of a stream once, keeps it for the
//! window, and `subscribe` with `since` (an entity's events) and `resume` (the signed-in user's
//! notifications) replay what a client missed, against DynamoDB in moto and the management API
//! stand-in.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use serde_json::{json, Value};
use wsstack_handlers::auth::Identity;
use wsstack_handlers::history::{self, Stream};
use wsstack_handlers::records::{PK, SK, TTL};
use wsstack_handlers::{push, routes, App, PushSettings};

const WINDOW: Duration = Duration::from_secs(300);

async fn app_with_history(stack: &Stack, push: PushSettings) -> App {
    let mut app = stack.app(None, push).await;
    app.config.history_window = Some(WINDOW);
    app
}

/// An entity update with EventBridge id `id`.
fn event(id: &str, entity_id: &str, message: &str) -> String {
    let mut envelope: Value = serde_json::from_str(&eventbridge_body(entity_id, message)).unwrap();
    envelope["id"] = json!(id);
    envelope.to_string()
}

/// The `seq` of every post, by message.
fn seqs_by_message(gateway: &Gateway) -> BTreeMap<String, BTreeSet<u64>> {
    let mut seqs: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for post in gateway.posts() {
        let frame: Value = serde_json::from_slice(&post.body).unwrap();
        let message = frame["message"].as_str().unwrap().to_string();
        seqs.entry(message)
            .or_default()
            .insert(frame["seq"].as_u64().expect("a numbered frame"));
    }
    seqs
}

#[tokio::test]
async fn each_event_gets_the_next_number_once_and_a_redelivery_keeps_it() {
    let stack = Stack::start().await;
    let app = app_with_history(&stack, quick_retries()).await;
    stack.put_items(subscribers(0, 3, "order-1")).await;
    let bodies: Vec<String> = (1..=3)
        .map(|n| event(&format!("ev-{n}"), "order-1", &format!("m{n}")))
        .collect();
    let records: Vec<(String, &str)> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| (format!("msg-{i}"), b.as_str()))
        .collect();
    let records: Vec<(&str, &str)> = records.iter().map(|(id, body)| (id.as_str(), *body)).collect();
    let response = push::push(&app, sqs_event(&records), in_a_minute()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let seqs = seqs_by_message(&stack.gateway);
    // One batch: the three are numbered in the order of the batch, each once for all subscribers.
    let numbers: BTreeSet<u64> = seqs.values().flatten().copied().collect();
    assert_eq!(numbers, BTreeSet::from([1, 2, 3]), "{seqs:?}");
    assert!(seqs.values().all(|s| s.len() == 1), "one number per event: {seqs:?}");

    // SQS delivers the second again (another message id, the same event): same number, no new one.
    stack.gateway.clear();
    let response = push::push(&app, sqs_event(&[("msg-again", bodies[1].as_str())]), in_a_minute()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let again = seqs_by_message(&stack.gateway);
    assert_eq!(again["m2"], seqs["m2"], "the redelivery keeps its number");
    assert_eq!(history::latest(&app, Stream::Entity("order-1")).await.unwrap(), 3);

    // Another stream counts on its own.
    stack.put_items(subscribers(10, 1, "order-2")).await;
    stack.gateway.clear();
    let other = event("ev-other", "order-2", "elsewhere");
    push::push(&app, sqs_event(&[("msg-o", other.as_str())]), in_a_minute()).await;
    assert_eq!(seqs_by_message(&stack.gateway)["elsewhere"], BTreeSet::from([1]));
}

#[tokio::test]
async fn a_chunked_event_carries_one_number_to_every_chunk() {
    let stack = Stack::start().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&stack.moto.endpoint()).await);
    // The queue sqs_event's records name as their source: chunks go back to it.
    let queue = sqs.create_queue().queue_name("wsstack-test-push").send().await.unwrap();
    let queue_url = queue.queue_url().unwrap().to_string();
    let app = app_with_history(
        &stack,
        PushSettings {
            chunk_size: Some(2),
            ..quick_retries()
        },
    )
    .await;
    stack.put_items(subscribers(0, 7, "order-9")).await;
    for n in 1..=2 {
        let body = event(&format!("big-{n}"), "order-9", &format!("big {n}"));
        let response = push::push(&app, sqs_event(&[("msg", body.as_str())]), in_a_minute()).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    // Both events went on as chunks (7 subscribers, chunks of 2): post them as the queue delivers them.
    let mut chunks = Vec::new();
    while chunks.len() < 8 {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = received.messages();
        assert!(!messages.is_empty(), "8 chunks, {} found", chunks.len());
        chunks.extend(
            messages
                .iter()
                .map(|m| (m.message_id().unwrap().to_string(), m.body().unwrap().to_string())),
        );
    }
    for (id, body) in &chunks {
        let response = push::push(&app, sqs_event(&[(id.as_str(), body.as_str())]), in_a_minute()).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    let seqs = seqs_by_message(&stack.gateway);
    assert_eq!(seqs["big 1"], BTreeSet::from([1]), "{seqs:?}");
    assert_eq!(seqs["big 2"], BTreeSet::from([2]), "{seqs:?}");
    assert_eq!(stack.gateway.posts().len(), 14, "7 subscribers, 2 events");
}

/// Subscribe `connection` to `entity`, with `since` when given; the route's answer.
async fn subscribe(app: &App, connection: &str, entity: &str, since: Option<u64>) -> Value {
    let mut frame = json!({"action": "subscribe", "entityId": entity});
    if let Some(since) = since {
        frame["since"] = json!(since);
    }
    let response = routes::subscribe(app, ws_event("subscribe", connection, Some(&frame.to_string()), &[]))
        .await
        .unwrap();
    body_json(&response)
}

/// Push `count` events of `entity`, ids `{prefix}-{n}`, messages `{prefix} {n}`, one batch of ten
/// at a time.
async fn publish(app: &App, entity: &str, prefix: &str, count: usize) {
    let bodies: Vec<String> = (1..=count)
        .map(|n| event(&format!("{prefix}-{n}"), entity, &format!("{prefix} {n}")))
        .collect();
    for batch in bodies.chunks(10) {
        let ids: Vec<String> = (0..batch.len()).map(|i| format!("m{i}")).collect();
        let records: Vec<(&str, &str)> = ids
            .iter()
            .map(String::as_str)
            .zip(batch.iter().map(String::as_str))
            .collect();
        let response = push::push(app, sqs_event(&records), in_a_minute()).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
}

#[tokio::test]
async fn a_subscribe_since_replays_what_was_missed_in_order_then_acknowledges() {
    let stack = Stack::start().await;
    let app = app_with_history(&stack, quick_retries()).await;
    publish(&app, "order-5", "ev", 5).await;
    stack.put_items(vec![connection_record("back=", FAR_TTL)]).await;

    let ack = subscribe(&app, "back=", "order-5", Some(2)).await;
    assert_eq!(ack, json!({"type": "subscribed", "entityId": "order-5", "seq": 5}));
    let replayed: Vec<Value> = stack
        .gateway
        .posts()
        .iter()
        .filter(|p| p.connection_id == "back=")
        .map(|p| serde_json::from_slice(&p.body).unwrap())
        .collect();
    let seqs: Vec<u64> = replayed.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![3, 4, 5], "after 2, in order");
    // The five came in one batch, numbered as its records were worked (at once): which message
    // got which number is the batch's business, but each is replayed once.
    let messages: BTreeSet<&str> = replayed.iter().map(|f| f["message"].as_str().unwrap()).collect();
    assert_eq!(messages.len(), 3, "{replayed:?}");

    // Up to date: nothing replayed; without since: nothing replayed, the latest acknowledged.
    stack.gateway.clear();
    assert_eq!(subscribe(&app, "back=", "order-5", Some(5)).await["seq"], 5);
    assert_eq!(subscribe(&app, "back=", "order-5", None).await["seq"], 5);
    assert!(stack.gateway.posts().is_empty());
    // A number from before the stream started again (or made up): resync.
    assert_eq!(
        subscribe(&app, "back=", "order-5", Some(9)).await,
        json!({"type": "resync", "entityId": "order-5", "seq": 5})
    );
    // A bad since is refused, nothing written.
    let frame = r#"{"action":"subscribe","entityId":"order-5","since":"two"}"#;
    let response = routes::subscribe(&app, ws_event("subscribe", "back=", Some(frame), &[]))
        .await
        .unwrap();
    assert_eq!(response.status_code, 400);
}

#[tokio::test]
async fn history_past_its_window_is_ignored_even_before_ttl_deletes_it() {
    let stack = Stack::start().await;
    let app = app_with_history(&stack, quick_retries()).await;
    publish(&app, "order-7", "ev", 3).await;
    // Event 2 left the window a second ago; DynamoDB's TTL has not deleted it yet.
    stack
        .dynamodb
        .update_item()
        .table_name(TABLE)
        .key(PK, AttributeValue::S(Stream::Entity("order-7").partition()))
        .key(SK, AttributeValue::S(history::history_sk(2)))
        .update_expression("SET #e = :past, #t = :past")
        .expression_attribute_names("#e", history::EXPIRES_AT)
        .expression_attribute_names("#t", TTL)
        .expression_attribute_values(":past", AttributeValue::N((now_seconds() - 1).to_string()))
        .send()
        .await
        .unwrap();
    stack.put_items(vec![connection_record("late=", FAR_TTL)]).await;
    assert_eq!(
        subscribe(&app, "late=", "order-7", Some(1)).await,
        json!({"type": "resync", "entityId": "order-7", "seq": 3}),
        "2 is gone: no partial replay"
    );
    assert!(stack.gateway.posts().iter().all(|p| p.connection_id != "late="));
    // After the expired one, the rest is whole.
    assert_eq!(subscribe(&app, "late=", "order-7", Some(2)).await["type"], "subscribed");
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Issue 24's measurement: what replaying 1,000 missed events costs in DynamoDB reads.
#[tokio::test]
async fn replaying_a_thousand_missed_events_takes_a_bounded_number_of_reads() {
    let stack = Stack::start().await;
    let app = app_with_history(&stack, quick_retries()).await;
    publish(&app, "order-k", "ev", 1000).await;
    stack.put_items(vec![connection_record("slow=", FAR_TTL)]).await;
    let (queries, gets) = (stack.calls("Query"), stack.calls("GetItem"));
    let started = std::time::Instant::now();
    let ack = subscribe(&app, "slow=", "order-k", Some(0)).await;
    let took = started.elapsed();
    assert_eq!(ack["seq"], 1000, "{ack}");
    let posted: Vec<u64> = stack
        .gateway
        .posts()
        .iter()
        .filter(|p| p.connection_id == "slow=")
        .map(|p| {
            serde_json::from_slice::<Value>(&p.body).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(posted, (1..=1000).collect::<Vec<_>>(), "all, in order, once");
    let (queries, gets) = (stack.calls("Query") - queries, stack.calls("GetItem") - gets);
    eprintln!("replay of 1,000 events: {queries} Query pages, {gets} GetItem, {took:?}");
    assert_eq!(gets, 1, "the head, once");
    assert!(queries <= 2, "{queries} Query pages for 1,000 small events (1 MB each)");
}

/// A user notification for `user` with EventBridge id `id`.
fn notification(id: &str, user: &str, message: &str) -> String {
    let detail = json!({"userId": user, "message": message});
    let mut envelope: Value =
        serde_json::from_str(&eventbridge_envelope("Send User Push Notification", detail)).unwrap();
    envelope["id"] = json!(id);
    envelope.to_string()
}

/// Push `count` notifications of `user`, ids `{prefix}-{n}`, messages `{prefix} {n}`, one batch
/// each: numbered in the order sent.
async fn notify(app: &App, user: &str, prefix: &str, count: usize) {
    for n in 1..=count {
        let body = notification(&format!("{prefix}-{n}"), user, &format!("{prefix} {n}"));
        let response = push::push(app, sqs_event(&[("m", body.as_str())]), in_a_minute()).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
}

/// `resume` on `connection`, signed in as `user` (`None`: a stack without `auth:`), with `since`
/// when given: the route's status and answer.
async fn resume(app: &App, connection: &str, user: Option<&str>, since: Option<u64>) -> (i64, Value) {
    let mut frame = json!({"action": "resume"});
    if let Some(since) = since {
        frame["since"] = json!(since);
    }
    let mut event = ws_event("resume", connection, Some(&frame.to_string()), &[]);
    if let Some(user) = user {
        let identity = Identity {
            user_id: user.to_string(),
            entities: Vec::new(),
        };
        event.request_context.authorizer.fields = identity.context().into_iter().collect();
    }
    let response = routes::resume(app, event).await.unwrap();
    (response.status_code, body_json(&response))
}

/// The frames posted to `connection`, in order.
fn posted_to(gateway: &Gateway, connection: &str) -> Vec<Value> {
    gateway
        .posts()
        .iter()
        .filter(|p| p.connection_id == connection)
        .map(|p| serde_json::from_slice(&p.body).unwrap())
        .collect()
}

#[tokio::test]
async fn a_resume_since_replays_the_users_missed_notifications_in_order_then_acknowledges() {
    let stack = Stack::start().await;
    let app = app_with_history(&stack, quick_retries()).await;
    // Nobody connected meanwhile: the notifications are kept all the same.
    notify(&app, "alice", "alice", 5).await;
    notify(&app, "bob", "bob", 2).await;
    stack
        .put_items(vec![user_connection_record("back=", "alice", FAR_TTL)])
        .await;

    let (status, ack) = resume(&app, "back=", Some("alice"), Some(2)).await;
    assert_eq!(
        (status, ack),
        (200, json!({"type": "resumed", "userId": "alice", "seq": 5}))
    );
    assert_eq!(
        posted_to(&stack.gateway, "back="),
        (3..=5)
            .map(|n| json!({"type": "User Push Notification", "message": format!("alice {n}"), "seq": n}))
            .collect::<Vec<_>>(),
        "after 2, in order, alice's only"
    );

    // Up to date: nothing replayed. Without since: nothing replayed, the latest acknowledged.
    stack.gateway.clear();
    assert_eq!(resume(&app, "back=", Some("alice"), Some(5)).await.1["seq"], 5);
    assert_eq!(
        resume(&app, "back=", Some("alice"), None).await,
        (200, json!({"type": "resumed", "userId": "alice", "seq": 5}))
    );
    assert!(stack.gateway.posts().is_empty());
    // A user who never had a notification is at 0.
    assert_eq!(resume(&app, "back=", Some("carol"), None).await.1["seq"], 0);
    // A number the stream never reached: resync.
    assert_eq!(
        resume(&app, "back=", Some("alice"), Some(9)).await,
        (200, json!({"type": "resync", "userId": "alice", "seq": 5}))
    );
    // A bad since is refused.
    let frame = r#"{"action":"resume","since":"two"}"#;
    let mut event = ws_event("resume", "back=", Some(frame), &[]);
    event.request_context.authorizer.fields = Identity {
        user_id: "alice".into(),
        entities: Vec::new(),
    }
    .context()
    .into_iter()
    .collect();
    let response = routes::resume(&app, event).await.unwrap();
    assert_eq!(response.status_code, 400);
    assert_eq!(body_json(&response)["type"], "error");
    assert!(stack.gateway.posts().is_empty());
}

#[tokio::test]
async fn a_resume_past_the_window_is_a_resync_with_nothing_replayed() {
    let stack = Stack::start().await;
    let app = app_with_history(&stack, quick_retries()).await;
    notify(&app, "alice", "n", 3).await;
    // Notification 2 left the window; DynamoDB's TTL has not deleted it yet.
    stack
        .dynamodb
        .update_item()
        .table_name(TABLE)
        .key(PK, AttributeValue::S(Stream::User("alice").partition()))
        .key(SK, AttributeValue::S(history::history_sk(2)))
        .update_expression("SET #e = :past")
        .expression_attribute_names("#e", history::EXPIRES_AT)
        .expression_attribute_values(":past", AttributeValue::N((now_seconds() - 1).to_string()))
        .send()
        .await
        .unwrap();
    stack
        .put_items(vec![user_connection_record("late=", "alice", FAR_TTL)])
        .await;
    assert_eq!(
        resume(&app, "late=", Some("alice"), Some(1)).await,
        (200, json!({"type": "resync", "userId": "alice", "seq": 3}))
    );
    assert!(posted_to(&stack.gateway, "late=").is_empty(), "no partial replay");
    // More missed than a replay carries: resync too.
    let mut small = app_with_history(&stack, quick_retries()).await;
    small.config.max_replay = 1;
    assert_eq!(
        resume(&small, "late=", Some("alice"), Some(1)).await.1["type"],
        "resync"
    );
    assert_eq!(resume(&app, "late=", Some("alice"), Some(2)).await.1["type"], "resumed");
}

#[tokio::test]
async fn a_resume_without_a_user_or_without_history_is_an_error_frame() {
    let stack = Stack::start().await;
    let app = app_with_history(&stack, quick_retries()).await;
    notify(&app, "alice", "n", 2).await;
    stack.put_items(vec![connection_record("anonymous=", FAR_TTL)]).await;
    let (status, answer) = resume(&app, "anonymous=", None, Some(0)).await;
    assert_eq!(status, 403);
    assert_eq!(
        answer,
        json!({"type": "error", "message": "resume needs a signed-in connection: user notifications follow the token's user"})
    );
    assert!(stack.gateway.posts().is_empty(), "nobody's notifications replayed");

    let mut without = app_with_history(&stack, quick_retries()).await;
    without.config.history_window = None;
    let (status, answer) = resume(&without, "anonymous=", Some("alice"), Some(0)).await;
    assert_eq!(status, 400);
    assert_eq!(
        answer,
        json!({"type": "error", "message": "this stack keeps no history (history.window_seconds is 0)"})
    );
    assert!(stack.gateway.posts().is_empty());
}
