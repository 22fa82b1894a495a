//! The push handler when posts fail, against DynamoDB in moto and the management API stand-in over
//! real HTTP: a post that can never succeed costs nobody else a duplicate, connections API Gateway
//! does not know lose their records, throttling is waited out within the invocation's deadline, and
//! a deadline that comes first hands back exactly the records not yet delivered.

mod common;

use std::time::Duration;

use common::*;
use tokio::time::Instant;
use wsstack_handlers::records::CONNECTION_SK;
use wsstack_handlers::{push, App, PushSettings};

fn settings(concurrency: usize) -> PushSettings {
    PushSettings {
        concurrency,
        base_backoff: Duration::from_millis(20),
        ..PushSettings::default()
    }
}

/// One record's worth of SQS redelivery, as the event source mapping does it: the batch again while
/// a record comes back in `batchItemFailures`, at most `max_receive_count` receives in all.
async fn deliver_like_sqs(app: &App, message_id: &str, body: &str, max_receive_count: usize) -> usize {
    for receive in 1..=max_receive_count {
        let response = push::push(app, sqs_event(&[(message_id, body)]), in_a_minute()).await;
        if response.batch_item_failures.is_empty() {
            return receive;
        }
    }
    max_receive_count
}

#[tokio::test]
async fn one_poisoned_connection_among_100_costs_the_other_99_nothing() {
    for (poison, records_kept) in [
        (Answer::forbidden(), false),
        (Answer::bad_request(), true),
        (Answer::payload_too_large(), true),
    ] {
        let stack = Stack::start().await;
        let app = stack.app(None, settings(16)).await;
        stack.put_items(subscribers(0, 100, "hot")).await;
        let poisoned = connection_id(37);
        stack.gateway.set_answer([poisoned.clone()], poison.clone());

        let body = eventbridge_body("hot", "price changed");
        let receives = deliver_like_sqs(&app, "msg-1", &body, 3).await;
        assert_eq!(receives, 1, "answered {}: the record was redelivered", poison.status);

        let counts = stack.gateway.delivered_counts();
        assert_eq!(counts.len(), 99, "answered {}", poison.status);
        assert!(counts.values().all(|&count| count == 1), "a duplicate: {counts:?}");
        let to_poisoned = stack.gateway.posts_to(&poisoned);
        assert_eq!(to_poisoned, 1, "answered {}: retrying cannot fix it", poison.status);
        let kept = stack.keys().await.iter().any(|(pk, _)| pk == &poisoned);
        assert_eq!(
            kept, records_kept,
            "records of the connection answered {}",
            poison.status
        );
    }
}

#[tokio::test]
async fn connections_api_gateway_does_not_know_lose_their_records() {
    let stack = Stack::start().await;
    let app = stack.app(None, settings(8)).await;
    stack.put_items(subscribers(0, 10, "e1")).await;
    let gone_unparsable = connection_id(2);
    let gone_truncated = connection_id(4);
    let invalid = connection_id(5);
    stack
        .gateway
        .set_answer([gone_unparsable.clone()], Answer::gone_unparsable());
    stack
        .gateway
        .set_answer([gone_truncated.clone()], Answer::gone_truncated());
    stack
        .gateway
        .set_answer([invalid.clone()], Answer::invalid_connection_id(&invalid));

    let body = eventbridge_body("e1", "hello");
    let response = push::push(&app, sqs_event(&[("msg-1", &body)]), in_a_minute()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let keys = stack.keys().await;
    assert_eq!(
        keys.len(),
        7 * 2,
        "only the 7 known connections keep their records: {keys:?}"
    );
    for id in [&gone_unparsable, &gone_truncated, &invalid] {
        assert!(!keys.iter().any(|(pk, _)| pk == id), "records of {id} remain");
        let posts = stack.gateway.posts_to(id);
        assert_eq!(posts, 1, "{id} was posted to again");
    }
    assert!(keys.contains(&(connection_id(0), CONNECTION_SK.to_string())));
}

#[tokio::test]
async fn when_every_post_is_forbidden_no_record_is_deleted() {
    // A 403 for everyone says more about this function's permissions than about the connections.
    let stack = Stack::start().await;
    let app = stack.app(None, settings(8)).await;
    stack.put_items(subscribers(0, 20, "e1")).await;
    stack
        .gateway
        .answer_everyone_for(Answer::forbidden(), Duration::from_secs(600));

    let body = eventbridge_body("e1", "hello");
    let response = push::push(&app, sqs_event(&[("msg-1", &body)]), in_a_minute()).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "retrying cannot fix a 403: {response:?}"
    );
    assert_eq!(stack.gateway.posts().len(), 20, "one post each");
    assert_eq!(stack.keys().await.len(), 40, "every record kept");
}

#[tokio::test]
async fn a_throttled_endpoint_still_delivers_everything_within_the_function_timeout() {
    let stack = Stack::start().await;
    let app = stack.app(None, settings(32)).await;
    let mut fixtures = Vec::new();
    for (index, entity) in ["a", "b", "c"].iter().enumerate() {
        fixtures.extend(subscribers(index * 100, 100, entity));
    }
    stack.put_items(fixtures).await;
    let bodies: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|entity| eventbridge_body(entity, "m"))
        .collect();
    stack
        .gateway
        .answer_everyone_for(Answer::throttled(), Duration::from_millis(1500));

    let timeout = Duration::from_secs(10);
    let started = Instant::now();
    let response = push::push(
        &app,
        sqs_event(&[("msg-a", &bodies[0]), ("msg-b", &bodies[1]), ("msg-c", &bodies[2])]),
        started + timeout,
    )
    .await;
    let elapsed = started.elapsed();
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert!(elapsed < timeout, "took {elapsed:?}");
    let counts = stack.gateway.delivered_counts();
    assert_eq!(counts.len(), 300);
    assert!(counts.values().all(|&count| count == 1), "a duplicate");
    let throttled = stack.gateway.posts().iter().filter(|post| post.status == 429).count();
    assert!(throttled > 0, "the stand-in throttled nothing");
}

#[tokio::test]
async fn a_deadline_that_comes_first_hands_back_exactly_the_undelivered_records() {
    let stack = Stack::start().await;
    let app = stack.app(None, settings(16)).await;
    let mut fixtures = subscribers(0, 20, "calm");
    fixtures.extend(subscribers(100, 20, "busy"));
    fixtures.extend(subscribers(200, 20, "quiet"));
    stack.put_items(fixtures).await;
    // One subscriber of "busy" is throttled for longer than the invocation lives.
    let throttled = connection_id(107);
    stack.gateway.set_answer([throttled.clone()], Answer::throttled());

    let calm = eventbridge_body("calm", "1");
    let busy = eventbridge_body("busy", "2");
    let quiet = eventbridge_body("quiet", "3");
    // Comes first whatever its length ("busy" is throttled for good); long enough that the reads
    // and the 59 other posts fit before it on a loaded machine running a debug build.
    let timeout = Duration::from_secs(8);
    let started = Instant::now();
    let response = push::push(
        &app,
        sqs_event(&[("msg-calm", &calm), ("msg-busy", &busy), ("msg-quiet", &quiet)]),
        started + timeout,
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(failed_ids(&response), BTreeSet::from(["msg-busy".to_string()]));
    assert!(elapsed < timeout, "answered after the deadline: {elapsed:?}");
    let retries = stack.gateway.posts_to(&throttled);
    assert!(retries > 3, "throttling is retried while time remains, {retries} posts");
    let counts = stack.gateway.delivered_counts();
    assert_eq!(counts.len(), 59);
    assert!(counts.values().all(|&count| count == 1));
}

#[tokio::test]
async fn a_short_deadline_under_throttling_hands_back_every_record_in_time() {
    let stack = Stack::start().await;
    let app = stack.app(None, settings(16)).await;
    let mut fixtures = subscribers(0, 30, "a");
    fixtures.extend(subscribers(100, 30, "b"));
    stack.put_items(fixtures).await;
    stack
        .gateway
        .answer_everyone_for(Answer::throttled(), Duration::from_secs(600));

    let a = eventbridge_body("a", "1");
    let b = eventbridge_body("b", "2");
    let timeout = Duration::from_secs(2);
    let started = Instant::now();
    let response = push::push(&app, sqs_event(&[("msg-a", &a), ("msg-b", &b)]), started + timeout).await;
    let elapsed = started.elapsed();
    assert_eq!(
        failed_ids(&response),
        BTreeSet::from(["msg-a".to_string(), "msg-b".to_string()])
    );
    assert!(elapsed < timeout, "answered after the deadline: {elapsed:?}");
}

#[tokio::test]
async fn records_of_a_batch_share_one_concurrency_bound() {
    let stack = Stack::start().await;
    stack.gateway.set_latency(Duration::from_millis(40));
    let app = stack.app(None, settings(24)).await;
    let entities = ["e0", "e1", "e2", "e3", "e4", "e5"];
    let mut fixtures = Vec::new();
    for (index, entity) in entities.iter().enumerate() {
        fixtures.extend(subscribers(index * 100, 10, entity));
    }
    stack.put_items(fixtures).await;
    let bodies: Vec<(String, String)> = entities
        .iter()
        .map(|entity| (format!("msg-{entity}"), eventbridge_body(entity, "m")))
        .collect();
    let records: Vec<(&str, &str)> = bodies.iter().map(|(id, body)| (id.as_str(), body.as_str())).collect();

    let response = push::push(&app, sqs_event(&records), in_a_minute()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(stack.gateway.delivered_counts().len(), 60);
    let max = stack.gateway.max_in_flight();
    // 10 subscribers per record: more than 10 at once means records were worked side by side.
    assert!(
        max > 10,
        "records were worked one after another: at most {max} posts at once"
    );
    assert!(max <= 24, "{max} posts at once, over the bound of 24");
}

#[tokio::test]
async fn a_post_that_hangs_is_cut_at_the_post_timeout_and_its_record_handed_back() {
    let stack = Stack::start().await;
    // Far longer than the invocation: only the post timeout can end these posts.
    stack.gateway.set_latency(Duration::from_secs(600));
    let app = stack
        .app(
            None,
            PushSettings {
                max_attempts: 2,
                post_timeout: Duration::from_millis(300),
                ..settings(4)
            },
        )
        .await;
    stack.put_items(subscribers(0, 3, "hot")).await;

    let body = eventbridge_body("hot", "price changed");
    let started = Instant::now();
    let response = push::push(&app, sqs_event(&[("msg-1", &body)]), in_a_minute()).await;
    let elapsed = started.elapsed();
    assert_eq!(failed_ids(&response), BTreeSet::from(["msg-1".to_string()]));
    // Two attempts of 0.3 s each and a pause; a loose bound that still tells them from the 5 s
    // default (two attempts: 10 s) and from the minute's deadline.
    assert!(
        elapsed < Duration::from_secs(8),
        "the posts were not cut at 0.3 s: {elapsed:?}"
    );
    assert!(stack.gateway.delivered().is_empty());
    // The connections may still be there: a timeout says nothing about them.
    assert_eq!(stack.keys().await.len(), subscribers(0, 3, "hot").len());
}
