//! The push handler's user notifications against DynamoDB in moto and a management API stand-in:
//! every open connection of the user (GSI2, across query pages) and nobody else, 410 clean-up,
//! the configured detail-types decide, an unknown one is dropped and a malformed one reported alone.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Value};
use wsstack_handlers::frames::DetailTypes;
use wsstack_handlers::records::CONNECTION_SK;
use wsstack_handlers::{push, PushSettings};

fn user_notification(detail: Value) -> String {
    eventbridge_envelope("Send User Push Notification", detail)
}

/// The payloads each connection received, of the posts answered 200.
fn received(gateway: &Gateway) -> BTreeMap<String, Vec<Value>> {
    let mut received: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for post in gateway.delivered() {
        received
            .entry(post.connection_id)
            .or_default()
            .push(serde_json::from_slice(&post.body).unwrap());
    }
    received
}

#[tokio::test]
async fn a_user_notification_reaches_every_connection_of_that_user_and_nobody_else() {
    let stack = Stack::start().await;
    // Pages of one record: the user's connections take several GSI2 pages.
    let app = stack.app(Some(1), quick_retries()).await;
    stack
        .put_items(vec![
            user_connection_record("alice-phone=", "alice", FAR_TTL),
            user_connection_record("alice-laptop=", "alice", FAR_TTL),
            user_connection_record("alice-tablet=", "alice", FAR_TTL),
            user_connection_record("bob-phone=", "bob", FAR_TTL),
            // A user id that shares alice's prefix, and an anonymous connection watching "alice".
            user_connection_record("alice2-phone=", "alice2", FAR_TTL),
            connection_record("anonymous=", FAR_TTL),
            subscription_record("anonymous=", "alice", FAR_TTL),
        ])
        .await;

    let with_callback =
        user_notification(json!({"userId": "alice", "message": "your order shipped", "callback": "orders/42"}));
    let without = user_notification(json!({"userId": "alice", "message": {"unread": 3}}));
    let response = push::push(
        &app,
        sqs_event(&[("msg-1", &with_callback), ("msg-2", &without)]),
        in_a_minute(),
    )
    .await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let received = received(&stack.gateway);
    assert_eq!(
        received.keys().map(String::as_str).collect::<Vec<_>>(),
        ["alice-laptop=", "alice-phone=", "alice-tablet="],
        "alice's connections, nobody else"
    );
    for (connection_id, payloads) in &received {
        let mut payloads = payloads.clone();
        payloads.sort_by_key(|payload| payload.to_string());
        assert_eq!(
            payloads,
            vec![
                json!({"type": "User Push Notification", "message": "your order shipped", "callback": "orders/42"}),
                json!({"type": "User Push Notification", "message": {"unread": 3}}),
            ],
            "{connection_id}"
        );
    }
    assert_eq!(stack.gateway.posts().len(), 6, "no failed or extra posts");
}

#[tokio::test]
async fn a_gone_connection_of_the_user_loses_its_records_and_the_rest_stay() {
    let stack = Stack::start().await;
    let app = stack.app(Some(2), quick_retries()).await;
    stack
        .put_items(vec![
            user_connection_record("alice-old=", "alice", FAR_TTL),
            subscription_record("alice-old=", "order-1", FAR_TTL),
            subscription_record("alice-old=", "order-2", FAR_TTL),
            user_connection_record("alice-new=", "alice", FAR_TTL),
            subscription_record("alice-new=", "order-1", FAR_TTL),
            user_connection_record("bob=", "bob", FAR_TTL),
        ])
        .await;
    stack.gateway.set_gone(["alice-old=".to_string()]);

    let body = user_notification(json!({"userId": "alice", "message": "hello"}));
    let response = push::push(&app, sqs_event(&[("msg-1", &body)]), in_a_minute()).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "410 is not a failure: {response:?}"
    );

    let keys = stack.keys().await;
    assert!(
        keys.iter().all(|(pk, _)| pk != "alice-old="),
        "records of the gone connection remain: {keys:?}"
    );
    assert!(keys.contains(&("alice-new=".to_string(), CONNECTION_SK.to_string())));
    assert!(keys.contains(&("bob=".to_string(), CONNECTION_SK.to_string())));
    assert_eq!(keys.len(), 3, "alice-new's two records and bob's");
    assert_eq!(
        received(&stack.gateway).into_keys().collect::<Vec<_>>(),
        ["alice-new="],
        "delivered to the live connection only"
    );
}

#[tokio::test]
async fn the_configured_detail_types_decide_and_others_are_dropped_not_retried() {
    let stack = Stack::start().await;
    let app = stack
        .app(
            None,
            PushSettings {
                detail_types: DetailTypes {
                    entity: "Order Changed".into(),
                    user: "Notify Customer".into(),
                },
                ..quick_retries()
            },
        )
        .await;
    stack
        .put_items(vec![
            user_connection_record("alice=", "alice", FAR_TTL),
            subscription_record("alice=", "order-7", FAR_TTL),
        ])
        .await;

    let response = push::push(
        &app,
        sqs_event(&[
            // The defaults mean nothing to a stack that renamed both kinds.
            (
                "default-user",
                &user_notification(json!({"userId": "alice", "message": "a"})),
            ),
            (
                "default-entity",
                &eventbridge_envelope("Entity Updated", json!({"entityId": "order-7", "message": "b"})),
            ),
            (
                "user",
                &eventbridge_envelope("Notify Customer", json!({"userId": "alice", "message": "c"})),
            ),
            (
                "entity",
                &eventbridge_envelope("Order Changed", json!({"entityId": "order-7", "message": "d"})),
            ),
            // Malformed: a user notification without its user.
            (
                "malformed",
                &eventbridge_envelope("Notify Customer", json!({"message": "e"})),
            ),
        ]),
        in_a_minute(),
    )
    .await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["malformed"], "only the malformed record goes back to SQS");

    let mut payloads = received(&stack.gateway).remove("alice=").unwrap_or_default();
    payloads.sort_by_key(|payload| payload.to_string());
    assert_eq!(
        payloads,
        vec![
            json!({"type": "Order Changed", "entityId": "order-7", "message": "d"}),
            json!({"type": "User Push Notification", "message": "c"}),
        ]
    );
}
