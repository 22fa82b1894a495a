//! The proxy events a function gets: MESSAGE, CONNECT and DISCONNECT, every `requestContext` field
//! API Gateway documents for WebSocket APIs
//! (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-mapping-template-reference.html:
//! connectionId, connectedAt, domainName, eventType, messageId "only when the eventType is MESSAGE",
//! routeKey, requestId "same as extendedRequestId", apiId, stage, requestTime, requestTimeEpoch,
//! identity.sourceIp and userAgent, disconnectStatusCode and disconnectReason) and the event's own
//! fields (headers and query strings on `$connect`, body, isBase64Encoded).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::support::{absent, connection_id, echo, Declared, Local, USER_AGENT};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The fields every event of a connection has, whatever its type.
fn assert_common_context(local: &Local, context: &Value, api_id: &str, connection: &str, route_key: &str) {
    assert_eq!(context["routeKey"], route_key, "{context}");
    assert_eq!(context["messageDirection"], "IN", "{context}");
    assert_eq!(context["stage"], "dev", "{context}");
    assert_eq!(context["apiId"], api_id, "{context}");
    assert_eq!(context["connectionId"], connection, "{context}");
    // API Gateway's domainName is the host clients and handlers call (`{api-id}.execute-api.{region}
    // .amazonaws.com`, or the custom domain): handlers build `https://{domainName}/{stage}` from it.
    // dev's host is `127.0.0.1:port`, so that is its domainName.
    assert_eq!(context["domainName"], local.address(), "{context}");
    let request_id = context["requestId"].as_str().expect("a requestId");
    assert!(!request_id.is_empty());
    assert_eq!(context["extendedRequestId"], request_id, "{context}");
    assert_eq!(context["identity"]["sourceIp"], "127.0.0.1", "{context}");

    let epoch = context["requestTimeEpoch"].as_i64().expect("requestTimeEpoch in ms");
    let connected = context["connectedAt"].as_i64().expect("connectedAt in ms");
    assert!(connected <= epoch && epoch <= now_ms(), "{context}");
    // requestTime is the CLF time of requestTimeEpoch, e.g. `13/Dec/2020:10:17:47 +0000`.
    let time = context["requestTime"].as_str().expect("requestTime");
    let parsed = chrono::DateTime::parse_from_str(time, "%d/%b/%Y:%H:%M:%S %z").expect("a CLF time");
    assert_eq!(parsed.timestamp(), epoch / 1000, "{context}");
}

/// A message's event: the route's key, a fresh requestId and messageId per message, the
/// connection's connectedAt on every one, the frame as `body`, not base64-encoded.
#[tokio::test]
async fn message_events_carry_every_documented_field() {
    let local = Local::start("cfmessage", Declared::default()).await;
    let api_id = local.api_id().await;
    let before = now_ms();
    let mut client = local.client("", &[]).await;

    let first = echo(&mut client, json!({"action": "probe", "n": 1})).await;
    let context = &first["requestContext"];
    let connection = context["connectionId"].as_str().unwrap().to_string();
    assert_common_context(&local, context, &api_id, &connection, "probe");
    assert_eq!(context["eventType"], "MESSAGE");
    assert!(context["connectedAt"].as_i64().unwrap() >= before - 1000, "{context}");
    assert!(
        context["messageId"].as_str().is_some_and(|id| !id.is_empty()),
        "{context}"
    );
    assert_eq!(context["identity"]["userAgent"], USER_AGENT, "{context}");
    assert_eq!(first["isBase64Encoded"], false);
    let body: Value = serde_json::from_str(first["body"].as_str().expect("the frame as body")).unwrap();
    assert_eq!(body, json!({"action": "probe", "n": 1, "do": "conformance-echo"}));

    let second = echo(&mut client, json!({"action": "probe", "n": 2})).await;
    let next = &second["requestContext"];
    assert_eq!(
        next["connectedAt"], context["connectedAt"],
        "connectedAt is the connection's"
    );
    assert_ne!(next["requestId"], context["requestId"], "a requestId per message");
    assert_ne!(next["messageId"], context["messageId"], "a messageId per message");
    assert!(next["requestTimeEpoch"].as_i64() >= context["requestTimeEpoch"].as_i64());
}

/// The `$connect` event: the upgrade request's headers (single and multi-valued), its query string
/// (single and multi-valued, decoded), the connection's context, and no messageId.
///
/// A repeated query parameter: API Gateway's proxy format gives every value in the multi-valued map
/// and one in the single map; the documentation says which only for REST APIs, "the last one"
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html):
/// dev does the same here.
#[tokio::test]
async fn connect_events_carry_headers_query_strings_and_context() {
    let local = Local::start("cfconnect", Declared::default()).await;
    let api_id = local.api_id().await;
    let query = "?color=blue&tag=a&tag=b&note=hello%20world";
    let mut client = local.client(query, &[("X-Conformance", "yes")]).await;
    let connection = connection_id(&mut client).await;
    let message = local.events_of(&connection, "MESSAGE").remove(0);
    let event = local.wait_for(&connection, "CONNECT").await;

    let context = &event["requestContext"];
    assert_common_context(&local, context, &api_id, &connection, "$connect");
    assert!(absent(&context["messageId"]), "{context}");
    assert_eq!(context["connectedAt"], message["requestContext"]["connectedAt"]);
    assert_ne!(context["requestId"], message["requestContext"]["requestId"]);
    assert_eq!(context["identity"]["userAgent"], USER_AGENT, "{context}");
    assert_eq!(event["isBase64Encoded"], false);

    // Header names as clients send them (API Gateway passes them through; hyper lowercases them,
    // dev restores the usual capitalisation).
    let headers = &event["headers"];
    assert_eq!(headers["Host"], local.address(), "{headers}");
    assert_eq!(headers["X-Conformance"], "yes", "{headers}");
    assert_eq!(headers["User-Agent"], USER_AGENT, "{headers}");
    assert_eq!(headers["Sec-WebSocket-Version"], "13", "{headers}");
    assert!(headers["Sec-WebSocket-Key"].is_string(), "{headers}");
    let multi = &event["multiValueHeaders"];
    for (name, value) in headers.as_object().unwrap() {
        assert_eq!(multi[name], json!([value]), "{name}: {multi}");
    }

    assert_eq!(
        event["queryStringParameters"],
        json!({"color": "blue", "tag": "b", "note": "hello world"})
    );
    assert_eq!(
        event["multiValueQueryStringParameters"],
        json!({"color": ["blue"], "tag": ["a", "b"], "note": ["hello world"]})
    );

    // Without a query string there are no query parameters at all, as serverless-offline's e2e
    // suite (run against AWS as well) expects.
    let mut plain = local.client("", &[]).await;
    let plain_id = connection_id(&mut plain).await;
    let plain_event = local.wait_for(&plain_id, "CONNECT").await;
    assert!(absent(&plain_event["queryStringParameters"]), "{plain_event}");
    assert!(absent(&plain_event["multiValueQueryStringParameters"]), "{plain_event}");
}

/// The `$disconnect` event: the close code the client sent as `disconnectStatusCode` (1006 when the
/// connection was dropped without a close frame, RFC 6455's "abnormal closure"), a
/// `disconnectReason`, the connection's connectedAt, and no messageId.
#[tokio::test]
async fn disconnect_events_carry_the_close_code_and_the_connections_context() {
    let local = Local::start("cfdisconnect", Declared::default()).await;
    let api_id = local.api_id().await;

    let mut client = local.client("", &[]).await;
    let connection = connection_id(&mut client).await;
    let connect = local.wait_for(&connection, "CONNECT").await;
    client
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .await
        .unwrap();
    let event = local.wait_for(&connection, "DISCONNECT").await;
    let context = &event["requestContext"];
    assert_common_context(&local, context, &api_id, &connection, "$disconnect");
    assert_eq!(context["eventType"], "DISCONNECT");
    assert_eq!(context["disconnectStatusCode"], 1000, "{context}");
    assert!(context["disconnectReason"].is_string(), "{context}");
    assert!(absent(&context["messageId"]), "{context}");
    assert_eq!(context["connectedAt"], connect["requestContext"]["connectedAt"]);
    assert_ne!(context["requestId"], connect["requestContext"]["requestId"]);
    assert_eq!(event["isBase64Encoded"], false);

    // A client that vanishes without a close frame.
    let mut dropped = local.client("", &[]).await;
    let dropped_id = connection_id(&mut dropped).await;
    drop(dropped);
    let event = local.wait_for(&dropped_id, "DISCONNECT").await;
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1006, "{event}");
}
