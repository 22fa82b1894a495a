//! The push handler against DynamoDB in moto and a management API stand-in: fan-out to every
//! subscriber across query pages and nobody else, 410 clean-up, retries and batchItemFailures for
//! failing deliveries, malformed records reported alone.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use wsstack_handlers::frames::{EntityEvent, PushEvent};
use wsstack_handlers::records::CONNECTION_SK;
use wsstack_handlers::{push, PushSettings};

#[tokio::test]
async fn push_reaches_every_subscriber_across_query_pages_and_nobody_else() {
    let stack = Stack::start().await;
    // Pages of 400: 2,500 subscribers take 7 query pages of GSI1.
    let app = stack.app(Some(400), quick_retries()).await;
    let mut fixtures = subscribers(0, 2500, "hot-entity");
    // Every tenth of them follows another entity too.
    fixtures.extend(
        (0..2500)
            .step_by(10)
            .map(|n| subscription_record(&connection_id(n), "cold-entity", FAR_TTL)),
    );
    // Connections that follow other entities only, including one whose id is a prefix match.
    fixtures.extend(subscribers(2500, 100, "cold-entity"));
    fixtures.extend((2500..2600).map(|n| subscription_record(&connection_id(n), "hot-entity-2", FAR_TTL)));
    stack.put_items(fixtures).await;
    let hot_subscribers: BTreeSet<String> = (0..2500).map(connection_id).collect();

    let body = eventbridge_body("hot-entity", "price changed");
    let response = push::push(&app, sqs_event(&[("msg-1", &body)]), in_a_minute()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(stack.calls("Query"), 7, "2,500 subscribers in pages of 400");

    let counts = stack.gateway.delivered_counts();
    assert_eq!(counts.len(), 2500, "every subscriber, nobody else");
    assert_eq!(counts.keys().cloned().collect::<BTreeSet<_>>(), hot_subscribers);
    assert!(counts.values().all(|&count| count == 1), "each exactly once");
    assert_eq!(stack.gateway.posts().len(), 2500, "no failed or extra posts");
    let expected = json!({"type":"Entity Updated","entityId":"hot-entity","message":"price changed"});
    for post in stack.gateway.posts() {
        let payload: Value = serde_json::from_slice(&post.body).unwrap();
        assert_eq!(payload, expected);
    }
}

#[tokio::test]
async fn gone_connections_lose_all_their_records_and_the_rest_stay() {
    let stack = Stack::start().await;
    let app = stack.app(Some(3), quick_retries()).await;
    let mut fixtures = subscribers(0, 10, "e1");
    fixtures.extend((0..10).map(|n| subscription_record(&connection_id(n), "e2", FAR_TTL)));
    stack.put_items(fixtures).await;
    let gone: BTreeSet<String> = [2, 5, 7].iter().map(|&n| connection_id(n)).collect();
    stack.gateway.set_gone(gone.clone());

    let body = eventbridge_body("e1", "hello");
    let response = push::push(&app, sqs_event(&[("msg-1", &body)]), in_a_minute()).await;
    assert!(response.batch_item_failures.is_empty(), "410 is not a failure");

    let keys = stack.keys().await;
    assert_eq!(keys.len(), 7 * 3, "only the 7 live connections keep records");
    for (pk, _) in &keys {
        assert!(!gone.contains(pk), "records of gone connection {pk} remain");
    }
    for n in 0..10 {
        let id = connection_id(n);
        if !gone.contains(&id) {
            assert!(keys.contains(&(id.clone(), CONNECTION_SK.to_string())));
            assert!(keys.contains(&(id.clone(), "subscription#e2".to_string())));
        }
    }
    // A gone connection is posted to once: 410 is not retried.
    for id in &gone {
        assert_eq!(stack.gateway.posts_to(id), 1);
    }
    assert_eq!(stack.gateway.delivered_counts().len(), 7);
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_lands_in_batch_item_failures() {
    let stack = Stack::start().await;
    let app = stack.app(None, quick_retries()).await;
    let mut fixtures = subscribers(0, 3, "flaky");
    fixtures.extend(subscribers(3, 3, "healthy"));
    stack.put_items(fixtures).await;
    let broken = connection_id(1);
    stack.gateway.set_failing([broken.clone()]);

    let flaky = eventbridge_body("flaky", "one");
    let healthy = eventbridge_body("healthy", "two");
    let response = push::push(
        &app,
        sqs_event(&[("msg-flaky", &flaky), ("msg-healthy", &healthy)]),
        in_a_minute(),
    )
    .await;
    assert_eq!(failed_ids(&response), BTreeSet::from(["msg-flaky".to_string()]));

    let attempts = stack.gateway.posts_to(&broken);
    assert_eq!(
        attempts as u32,
        PushSettings::default().max_attempts,
        "retried, then given up"
    );
    // Everyone else got their update; the failing connection's records are kept (500 is not 410).
    let counts = stack.gateway.delivered_counts();
    assert_eq!(counts.len(), 5);
    assert!(!counts.contains_key(&broken));
    assert_eq!(stack.keys().await.len(), 12);
}

#[tokio::test]
async fn malformed_records_fail_alone_and_the_others_are_delivered() {
    let stack = Stack::start().await;
    let app = stack.app(None, quick_retries()).await;
    stack
        .put_items(vec![
            connection_record("conn-a=", FAR_TTL),
            subscription_record("conn-a=", "e1", FAR_TTL),
            connection_record("conn-b=", FAR_TTL),
            subscription_record("conn-b=", "e2", FAR_TTL),
        ])
        .await;

    let good_one = eventbridge_body("e1", "first");
    let good_two = eventbridge_body("e2", "second");
    let too_long = eventbridge_body(&"x".repeat(500), "m");
    let response = push::push(
        &app,
        sqs_event(&[
            ("good-1", &good_one),
            ("not-json", "this is not an event"),
            ("no-detail", r#"{"detail-type":"Entity Updated","source":"app"}"#),
            ("no-detail-type", r#"{"detail":{"entityId":"e1","message":"m"}}"#),
            (
                "no-entity",
                r#"{"detail-type":"Entity Updated","detail":{"message":"m"}}"#,
            ),
            (
                "bad-entity",
                r#"{"detail-type":"Entity Updated","detail":{"entityId":7,"message":"m"}}"#,
            ),
            ("long-entity", &too_long),
            (
                "no-message",
                r#"{"detail-type":"Entity Updated","detail":{"entityId":"e1"}}"#,
            ),
            ("good-2", &good_two),
        ]),
        in_a_minute(),
    )
    .await;
    let expected: BTreeSet<String> = [
        "not-json",
        "no-detail",
        "no-detail-type",
        "no-entity",
        "bad-entity",
        "long-entity",
        "no-message",
    ]
    .iter()
    .map(|id| id.to_string())
    .collect();
    assert_eq!(failed_ids(&response), expected);
    let posts = stack.gateway.posts();
    assert_eq!(posts.len(), 2, "only the good records were pushed");
    let bodies: BTreeMap<String, Value> = posts
        .iter()
        .map(|post| (post.connection_id.clone(), serde_json::from_slice(&post.body).unwrap()))
        .collect();
    assert_eq!(bodies["conn-a="]["message"], "first");
    assert_eq!(bodies["conn-b="]["message"], "second");
}

#[tokio::test]
async fn an_entity_nobody_follows_is_a_success() {
    let stack = Stack::start().await;
    let app = stack.app(None, quick_retries()).await;
    let body = eventbridge_body("lonely", "anyone?");
    let response = push::push(&app, sqs_event(&[("msg-1", &body)]), in_a_minute()).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(stack.gateway.posts().is_empty());
}

/// Measurement, not a proof: posts per second to 1,000 subscribers against the local stand-in, for
/// several concurrency limits, with the stand-in answering at once and after 10 ms (a typical
/// round trip from Lambda to the management API). Run with
/// `cargo test -p wsstack-handlers --release --test push -- --ignored --nocapture fan_out_throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn fan_out_throughput() {
    for latency in [0, 10] {
        println!("stand-in latency {latency} ms");
        fan_out_throughput_at(Duration::from_millis(latency)).await;
    }
}

async fn fan_out_throughput_at(latency: Duration) {
    let stack = Stack::start().await;
    stack.gateway.set_latency(latency);
    let mut fixtures = Vec::new();
    for n in 0..1000 {
        let id = connection_id(n);
        fixtures.push(subscription_record(&id, "bench", FAR_TTL));
    }
    stack.put_items(fixtures).await;
    let event = PushEvent::Entity(EntityEvent {
        detail_type: "Entity Updated".into(),
        entity_id: "bench".into(),
        message: json!("x".repeat(200)),
    });
    for concurrency in [1, 4, 16, 32, 64, 128, 256] {
        let app = stack
            .app(
                None,
                PushSettings {
                    concurrency,
                    ..PushSettings::default()
                },
            )
            .await;
        // Warm-up (connection pool, subscriber query), then three timed runs.
        push::Invocation::new(&app, in_a_minute())
            .fan_out(&event)
            .await
            .unwrap();
        let mut rates = Vec::new();
        for _ in 0..3 {
            stack.gateway.clear();
            let started = Instant::now();
            let outcome = push::Invocation::new(&app, in_a_minute())
                .fan_out(&event)
                .await
                .unwrap();
            let elapsed = started.elapsed();
            assert_eq!(outcome.delivered, 1000);
            rates.push((1000.0 / elapsed.as_secs_f64(), stack.gateway.post_rate()));
        }
        rates.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        println!(
            "concurrency {concurrency:>3}: median {:>6.0} posts/s including the GSI1 query, {:>6.0} posts/s first to last post",
            rates[1].0, rates[1].1
        );
    }
}

/// A push API Gateway would refuse (over 128 KB) is refused once for the event: no subscriber is
/// read or posted to (before, each of them was posted to and answered 413), the record fails alone
/// (and so reaches the DLQ after its receives), and the batch's other events are delivered.
#[tokio::test]
async fn a_push_larger_than_api_gateway_carries_is_refused_once_and_posted_to_no_one() {
    let stack = Stack::start().await;
    let app = stack.app(None, quick_retries()).await;
    let mut records = vec![
        connection_record("conn-s=", FAR_TTL),
        subscription_record("conn-s=", "small", FAR_TTL),
    ];
    for connection in ["conn-1=", "conn-2=", "conn-3="] {
        records.push(connection_record(connection, FAR_TTL));
        records.push(subscription_record(connection, "big", FAR_TTL));
    }
    stack.put_items(records).await;
    let huge = eventbridge_body("big", &"x".repeat(wsstack_handlers::frames::MAX_MESSAGE_BYTES));
    let small = eventbridge_body("small", "fits");
    let queries_before = stack.calls("Query");
    let response = push::push(&app, sqs_event(&[("huge", &huge), ("small", &small)]), in_a_minute()).await;
    assert_eq!(failed_ids(&response), BTreeSet::from(["huge".to_string()]));
    let posts = stack.gateway.posts();
    assert_eq!(posts.len(), 1, "only the small event was posted");
    assert_eq!(posts[0].connection_id, "conn-s=");
    assert_eq!(
        stack.calls("Query") - queries_before,
        1,
        "the big event's subscribers were never read"
    );
}
