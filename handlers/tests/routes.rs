//! The WebSocket route handlers against DynamoDB in moto and a management API stand-in: what each
//! route writes and deletes, record by record, and that bad frames get an error reply and write nothing.

mod common;

use common::*;
use serde_json::json;
use wsstack_handlers::records::{self, CONNECTION_SK, GSI1PK, GSI1SK, TTL};
use wsstack_handlers::{routes, PushSettings};

fn key(pk: &str, sk: &str) -> (String, String) {
    (pk.to_string(), sk.to_string())
}

#[tokio::test]
async fn connect_stores_the_connection_record_and_echoes_one_protocol() {
    let stack = Stack::start().await;
    let app = stack.app(None, PushSettings::default()).await;

    let event = ws_event(
        "$connect",
        "Qy4kRcNxoAMCJgA=",
        None,
        &[("Sec-WebSocket-Protocol", "wsstack.v1, chat")],
    );
    let response = routes::connect(&app, event).await.unwrap();
    assert_eq!(response.status_code, 200);
    assert_eq!(response.headers.get("sec-websocket-protocol").unwrap(), "wsstack.v1");

    let plain = ws_event("$connect", "Qy4kRdNxoAMCJgB=", None, &[]);
    let response = routes::connect(&app, plain).await.unwrap();
    assert_eq!(response.status_code, 200);
    assert!(response.headers.get("sec-websocket-protocol").is_none());

    let items = stack.items().await;
    assert_eq!(
        items.keys().cloned().collect::<Vec<_>>(),
        vec![
            key("Qy4kRcNxoAMCJgA=", CONNECTION_SK),
            key("Qy4kRdNxoAMCJgB=", CONNECTION_SK)
        ]
    );
    let record = &items[&key("Qy4kRcNxoAMCJgA=", CONNECTION_SK)];
    assert_eq!(string(record, records::IP_ADDRESS), "203.0.113.7");
    assert_eq!(number(record, records::CONNECTED_AT), 1_764_118_500_123);
    // TTL_HOURS is 3 in these tests.
    let ttl = number(record, TTL);
    assert!((ttl - (testkit::unix_seconds() + 3 * 3600)).abs() <= 5, "ttl {ttl}");
    assert_eq!(record.len(), 5, "no attributes beyond the layout: {record:?}");
}

#[tokio::test]
async fn subscribe_writes_the_subscription_and_refreshes_the_connection_ttl() {
    let stack = Stack::start().await;
    let app = stack.app(None, PushSettings::default()).await;
    stack
        .put_items(vec![
            connection_record("conn-a=", 1000),
            connection_record("conn-b=", 1000),
        ])
        .await;

    let frame = r#"{"action":"subscribe","entityId":"order-42"}"#;
    for _ in 0..2 {
        let response = routes::subscribe(&app, ws_event("subscribe", "conn-a=", Some(frame), &[]))
            .await
            .unwrap();
        assert_eq!(response.status_code, 200);
        assert_eq!(
            body_json(&response),
            json!({"type": "subscribed", "entityId": "order-42"})
        );
    }

    let items = stack.items().await;
    assert_eq!(
        items.keys().cloned().collect::<Vec<_>>(),
        vec![
            key("conn-a=", CONNECTION_SK),
            key("conn-a=", "subscription#order-42"),
            key("conn-b=", CONNECTION_SK),
        ]
    );
    let subscription = &items[&key("conn-a=", "subscription#order-42")];
    assert_eq!(string(subscription, GSI1PK), "order-42");
    assert_eq!(string(subscription, GSI1SK), "subscription#");
    assert!((number(subscription, TTL) - (testkit::unix_seconds() + 3 * 3600)).abs() <= 5);
    assert_eq!(subscription.len(), 5, "{subscription:?}");
    let connection = &items[&key("conn-a=", CONNECTION_SK)];
    assert!((number(connection, TTL) - (testkit::unix_seconds() + 3 * 3600)).abs() <= 5);
    assert_eq!(string(connection, records::IP_ADDRESS), "203.0.113.9");
    // The other connection is untouched.
    assert_eq!(number(&items[&key("conn-b=", CONNECTION_SK)], TTL), 1000);
    assert!(stack.gateway.posts().is_empty(), "no error replies");
}

#[tokio::test]
async fn unsubscribe_deletes_exactly_that_subscription_and_tolerates_absence() {
    let stack = Stack::start().await;
    let app = stack.app(None, PushSettings::default()).await;
    stack
        .put_items(vec![
            connection_record("conn-a=", FAR_TTL),
            subscription_record("conn-a=", "e1", FAR_TTL),
            subscription_record("conn-a=", "e2", FAR_TTL),
            connection_record("conn-b=", FAR_TTL),
            subscription_record("conn-b=", "e1", FAR_TTL),
        ])
        .await;
    let before = stack.keys().await;

    let frame = r#"{"action":"unsubscribe","entityId":"e1"}"#;
    let response = routes::unsubscribe(&app, ws_event("unsubscribe", "conn-a=", Some(frame), &[]))
        .await
        .unwrap();
    assert_eq!(response.status_code, 200);
    let mut expected = before.clone();
    expected.remove(&key("conn-a=", "subscription#e1"));
    assert_eq!(stack.keys().await, expected);

    // Not subscribed (any more, or ever): still fine, nothing changes.
    for entity in ["e1", "never-subscribed"] {
        let frame = format!(r#"{{"action":"unsubscribe","entityId":"{entity}"}}"#);
        let response = routes::unsubscribe(&app, ws_event("unsubscribe", "conn-a=", Some(&frame), &[]))
            .await
            .unwrap();
        assert_eq!(response.status_code, 200);
        assert_eq!(
            body_json(&response),
            json!({"type": "unsubscribed", "entityId": entity})
        );
    }
    assert_eq!(stack.keys().await, expected);
    assert!(stack.gateway.posts().is_empty());
}

#[tokio::test]
async fn disconnect_deletes_the_connection_and_all_its_subscriptions_across_pages() {
    let stack = Stack::start().await;
    // Pages of 7 records: 61 records take 9 query pages and 3 BatchWriteItem calls.
    let app = stack.app(Some(7), PushSettings::default()).await;
    let mut fixtures = vec![
        connection_record("leaving=", FAR_TTL),
        connection_record("staying=", FAR_TTL),
    ];
    for n in 0..60 {
        fixtures.push(subscription_record("leaving=", &format!("entity-{n}"), FAR_TTL));
    }
    for n in 0..5 {
        fixtures.push(subscription_record("staying=", &format!("entity-{n}"), FAR_TTL));
    }
    stack.put_items(fixtures).await;
    assert_eq!(stack.keys().await.len(), 67);

    let response = routes::disconnect(&app, ws_event("$disconnect", "leaving=", None, &[]))
        .await
        .unwrap();
    assert_eq!(response.status_code, 200);

    let keys = stack.keys().await;
    let mut expected = BTreeSet::from([key("staying=", CONNECTION_SK)]);
    for n in 0..5 {
        expected.insert(key("staying=", &format!("subscription#entity-{n}")));
    }
    assert_eq!(keys, expected);
    assert_eq!(stack.calls("Query"), 9, "61 records in pages of 7");
    assert_eq!(stack.calls("BatchWriteItem"), 3, "61 deletes in batches of 25");

    // A second $disconnect (API Gateway may retry) finds nothing and is fine.
    let response = routes::disconnect(&app, ws_event("$disconnect", "leaving=", None, &[]))
        .await
        .unwrap();
    assert_eq!(response.status_code, 200);
    assert_eq!(stack.keys().await, expected);
}

/// Frames that must be refused, with the route they are sent on.
fn bad_frames() -> Vec<(&'static str, Option<String>, bool)> {
    let long = "x".repeat(129);
    let frames: Vec<(&str, Option<String>)> = vec![
        ("subscribe", None),
        ("subscribe", Some(String::new())),
        ("subscribe", Some("   ".into())),
        ("subscribe", Some("subscribe me".into())),
        ("subscribe", Some(r#"{"action":"subscribe","entityId":"a""#.into())),
        ("subscribe", Some("[]".into())),
        ("subscribe", Some(r#""order-42""#.into())),
        ("subscribe", Some("42".into())),
        ("subscribe", Some("null".into())),
        ("subscribe", Some("{}".into())),
        ("subscribe", Some(r#"{"action":"subscribe"}"#.into())),
        ("subscribe", Some(r#"{"action":"subscribe","entityId":null}"#.into())),
        ("subscribe", Some(r#"{"action":"subscribe","entityId":42}"#.into())),
        ("subscribe", Some(r#"{"action":"subscribe","entityId":["a"]}"#.into())),
        (
            "subscribe",
            Some(r#"{"action":"subscribe","entityId":{"id":"a"}}"#.into()),
        ),
        ("subscribe", Some(r#"{"action":"subscribe","entityId":""}"#.into())),
        (
            "subscribe",
            Some(format!(r#"{{"action":"subscribe","entityId":"{long}"}}"#)),
        ),
        (
            "subscribe",
            Some(r#"{"action":"subscribe","entityId":"a\u0000b"}"#.into()),
        ),
        (
            "subscribe",
            Some(r#"{"action":"subscribe","entityId":"line\nbreak"}"#.into()),
        ),
        (
            "subscribe",
            Some(r#"{"action":"subscribe","entityId":"tab\there"}"#.into()),
        ),
        (
            "subscribe",
            Some(r#"{"action":"subscribe","entityId":" padded "}"#.into()),
        ),
        (
            "subscribe",
            Some(r#"{"action":"subscribe","entityId":"a\u2028b"}"#.into()),
        ),
        ("subscribe", Some(r#"{"action":"unsubscribe","entityId":"e1"}"#.into())),
        ("subscribe", Some(r#"{"action":7,"entityId":"e1"}"#.into())),
        (
            "subscribe",
            Some(format!(
                r#"{{"action":"subscribe","entityId":"e1","pad":"{}"}}"#,
                "p".repeat(33 * 1024)
            )),
        ),
        ("unsubscribe", Some("not json".into())),
        ("unsubscribe", Some(r#"{"action":"unsubscribe","entityId":""}"#.into())),
        ("unsubscribe", Some(r#"{"action":"unsubscribe"}"#.into())),
    ];
    let mut frames: Vec<(&str, Option<String>, bool)> =
        frames.into_iter().map(|(route, body)| (route, body, false)).collect();
    // A binary frame (API Gateway base64-encodes it), even if it decodes to a valid frame.
    frames.push((
        "subscribe",
        Some("eyJhY3Rpb24iOiJzdWJzY3JpYmUiLCJlbnRpdHlJZCI6ImUxIn0=".into()),
        true,
    ));
    frames
}

#[tokio::test]
async fn every_bad_frame_gets_an_error_reply_and_writes_nothing() {
    let stack = Stack::start().await;
    let app = stack.app(None, PushSettings::default()).await;
    let frames = bad_frames();
    assert!(frames.len() >= 15);
    let mut fixtures = Vec::new();
    for n in 0..frames.len() {
        let id = connection_id(n);
        fixtures.push(connection_record(&id, 1000));
        fixtures.push(subscription_record(&id, "e1", 1000));
    }
    stack.put_items(fixtures).await;
    let before = stack.items().await;

    for (n, (route, body, binary)) in frames.iter().enumerate() {
        let id = connection_id(n);
        let mut event = ws_event(route, &id, body.as_deref(), &[]);
        event.is_base64_encoded = *binary;
        let response = match *route {
            "subscribe" => routes::subscribe(&app, event).await,
            _ => routes::unsubscribe(&app, event).await,
        }
        .unwrap_or_else(|error| panic!("frame {n} {body:?} made the handler fail: {error:#}"));
        assert_eq!(response.status_code, 400, "frame {n} {body:?}");
        // The error frame is the answer's body, which the route response sends the client.
        let reply = body_json(&response);
        assert_eq!(reply["type"], "error", "frame {n}");
        let message = reply["message"].as_str().unwrap();
        assert!(!message.is_empty(), "frame {n}: a reason");
        assert_eq!(reply.as_object().unwrap().len(), 2, "frame {n}: {reply}");
    }
    assert!(stack.gateway.posts().is_empty(), "no PostToConnection");
    assert!(stack.proxy.writes().is_empty(), "no DynamoDB write was even attempted");
    // Nothing written, nothing deleted, no ttl refreshed.
    assert_eq!(stack.items().await, before);
}

#[tokio::test]
async fn failures_say_whether_another_attempt_can_help() {
    use wsstack_handlers::error::FailureKind;
    let stack = Stack::start().await;
    let mut app = stack.app(None, PushSettings::default()).await;
    app.config.table_name = "no-such-table".to_string();
    let frame = Some(r#"{"action":"subscribe","entityId":"order-42"}"#);

    let error = routes::subscribe(&app, ws_event("subscribe", "conn-a=", frame, &[]))
        .await
        .unwrap_err();
    assert_eq!(error.kind, FailureKind::Permanent, "{error}");
    assert!(error.to_string().contains("table no-such-table"), "{error}");

    let error = routes::disconnect(&app, ws_event("$disconnect", "", None, &[]))
        .await
        .unwrap_err();
    assert_eq!(error.kind, FailureKind::InvalidEvent, "{error}");

    // Nothing answers where DynamoDB should be.
    let unreachable = sdk_config("http://127.0.0.1:9").await;
    let app = wsstack_handlers::App::new(&unreachable, app.config.clone());
    let error = routes::subscribe(&app, ws_event("subscribe", "conn-a=", frame, &[]))
        .await
        .unwrap_err();
    assert_eq!(error.kind, FailureKind::Retryable, "{error}");
}

/// The clients speak TLS through the one stack the handlers carry (rustls with ring): an HTTPS
/// endpoint gets a TLS ClientHello. Nothing here reaches AWS: the listener only reads the first
/// bytes and hangs up.
#[tokio::test]
async fn the_clients_open_https_connections_with_the_one_tls_stack() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("https://localhost:{}", listener.local_addr().unwrap().port());
    let hello = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut header = [0u8; 5];
        stream.read_exact(&mut header).await.unwrap();
        header
    });
    let sdk = sdk_config(&endpoint).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let result = dynamodb.list_tables().send().await;
    assert!(result.is_err(), "the listener never answers");
    let header = hello.await.unwrap();
    // A TLS record of type handshake (22), protocol major version 3.
    assert_eq!((header[0], header[1]), (22, 3), "not a TLS ClientHello: {header:?}");
}
