//! The route handlers on a stack with `auth:`, against DynamoDB in moto: `$connect` keeps the user
//! from the authorizer's context on the connection record, in the user index (one Query finds a
//! user's connections), and echoes `websocket`; `subscribe` outside the token's patterns gets an
//! error frame and writes nothing. Without an authorizer context both behave as before.

mod common;

use std::collections::HashMap;

use common::*;
use serde_json::Value;
use wsstack_handlers::auth::Identity;
use wsstack_handlers::records::{self, CONNECTION_SK, GSI2PK, GSI2SK};
use wsstack_handlers::{routes, store, PushSettings};

fn with_identity(
    mut event: aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest,
    user_id: &str,
    entities: &[&str],
) -> aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest {
    let identity = Identity {
        user_id: user_id.to_string(),
        entities: entities.iter().map(|pattern| pattern.to_string()).collect(),
    };
    event.request_context.authorizer.fields = identity.context().into_iter().collect();
    event
}

#[tokio::test]
async fn connect_keeps_the_user_in_the_user_index_and_echoes_websocket() {
    let stack = Stack::start().await;
    let app = stack.app(Some(1), PushSettings::default()).await;
    let token_offer = [("Sec-WebSocket-Protocol", "websocket, eyJhbGciOiJIUzI1NiJ9.e30.c2ln")];
    for (connection_id, user_id) in [("conn-a=", "user-42"), ("conn-b=", "user-42"), ("conn-c=", "user-7")] {
        let event = with_identity(ws_event("$connect", connection_id, None, &token_offer), user_id, &["*"]);
        let response = routes::connect(&app, event).await.unwrap();
        assert_eq!(response.status_code, 200);
        assert_eq!(response.headers.get("sec-websocket-protocol").unwrap(), "websocket");
    }
    let spelled = [("Sec-WebSocket-Protocol", "WebSocket, eyJhbGciOiJIUzI1NiJ9.e30.c2ln")];
    let event = with_identity(ws_event("$connect", "conn-f=", None, &spelled), "user-9", &["*"]);
    let response = routes::connect(&app, event).await.unwrap();
    assert_eq!(
        response.headers.get("sec-websocket-protocol").unwrap(),
        "WebSocket",
        "the offered spelling"
    );
    // An authenticated client that offered only its token gets no protocol back, never the token.
    let only_token = [("Sec-WebSocket-Protocol", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln")];
    let event = with_identity(ws_event("$connect", "conn-d=", None, &only_token), "user-9", &["*"]);
    let response = routes::connect(&app, event).await.unwrap();
    assert!(response.headers.get("sec-websocket-protocol").is_none());
    // Without an authorizer context: today's record, no user index keys.
    let response = routes::connect(&app, ws_event("$connect", "conn-e=", None, &[]))
        .await
        .unwrap();
    assert_eq!(response.status_code, 200);

    let mut users = store::connections_of_user(&app, "user-42").await.unwrap();
    users.sort();
    assert_eq!(users, vec!["conn-a=", "conn-b="], "one Query (paged by 1) finds them");
    assert_eq!(
        store::connections_of_user(&app, "user-7").await.unwrap(),
        vec!["conn-c="]
    );
    assert!(store::connections_of_user(&app, "nobody").await.unwrap().is_empty());

    let items = stack.items().await;
    let item = |connection_id: &str| &items[&(connection_id.to_string(), CONNECTION_SK.to_string())];
    let record = item("conn-a=");
    assert_eq!(string(record, GSI2PK), "user-42");
    assert_eq!(string(record, GSI2SK), CONNECTION_SK);
    assert_eq!(string(record, records::IP_ADDRESS), "203.0.113.7");
    assert_eq!(record.len(), 7, "the seed layout plus the two index keys: {record:?}");
    let plain = item("conn-e=");
    assert_eq!(plain.len(), 5, "no user, no index keys: {plain:?}");
}

#[tokio::test]
async fn subscribe_outside_the_tokens_patterns_answers_an_error_and_writes_nothing() {
    let stack = Stack::start().await;
    let app = stack.app(None, PushSettings::default()).await;
    stack.put_items(vec![connection_record("conn-a=", FAR_TTL)]).await;
    let before: HashMap<_, _> = stack.items().await.into_iter().collect();
    stack.proxy.clear();

    let refused = [
        ("user-7", vec!["order-*", "user-42"]),
        ("orders-1", vec!["order-*"]),
        ("order-1", vec![]),
    ];
    for (entity, patterns) in &refused {
        let frame = format!(r#"{{"action":"subscribe","entityId":"{entity}"}}"#);
        let event = with_identity(ws_event("subscribe", "conn-a=", Some(&frame), &[]), "user-42", patterns);
        let response = routes::subscribe(&app, event).await.unwrap();
        assert_eq!(response.status_code, 403, "{entity}");
        // The error frame is the body, which the route response sends the client.
        let reply = body_json(&response);
        assert_eq!(reply["type"], "error");
        assert_eq!(reply["message"], format!("not allowed to subscribe to {entity:?}"));
    }
    // A context with a user but unreadable entities allows nothing.
    let mut damaged = ws_event(
        "subscribe",
        "conn-a=",
        Some(r#"{"action":"subscribe","entityId":"x"}"#),
        &[],
    );
    damaged.request_context.authorizer.fields = HashMap::from([("userId".to_string(), Value::from("user-42"))]);
    let response = routes::subscribe(&app, damaged).await.unwrap();
    assert_eq!(response.status_code, 403);
    assert_eq!(body_json(&response)["type"], "error");

    assert!(stack.gateway.posts().is_empty(), "no PostToConnection");
    assert_eq!(stack.proxy.writes().len(), 0, "no write reached DynamoDB");
    let after: HashMap<_, _> = stack.items().await.into_iter().collect();
    assert_eq!(after, before);

    // Inside the patterns, and on a stack without auth, the subscription is written as before.
    let frame = r#"{"action":"subscribe","entityId":"order-17"}"#;
    let event = with_identity(
        ws_event("subscribe", "conn-a=", Some(frame), &[]),
        "user-42",
        &["order-*"],
    );
    assert_eq!(routes::subscribe(&app, event).await.unwrap().status_code, 200);
    let frame = r#"{"action":"subscribe","entityId":"user-7"}"#;
    let open = ws_event("subscribe", "conn-a=", Some(frame), &[]);
    assert_eq!(routes::subscribe(&app, open).await.unwrap().status_code, 200);
    let keys = stack.keys().await;
    assert!(keys.contains(&("conn-a=".to_string(), records::subscription_sk("order-17"))));
    assert!(keys.contains(&("conn-a=".to_string(), records::subscription_sk("user-7"))));
    assert!(stack.gateway.posts().is_empty());
}
