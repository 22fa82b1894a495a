//! The `@connections` management API, called as handlers call it: an AWS SDK client whose endpoint
//! is the callback URL (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}` on AWS).
//! POST sends, GET describes, DELETE closes; a connection that is gone is 410 GoneException
//! (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-how-to-call-websocket-api-connections.html,
//! https://docs.aws.amazon.com/apigatewaymanagementapi/latest/APIReference/connections-connectionid.html).

use std::time::{Duration, SystemTime};

use aws_sdk_apigatewaymanagement::primitives::{Blob, DateTime};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{close_code, connection_id, echo, raw_http, Declared, Local, USER_AGENT, WITHIN};

fn seconds(time: &DateTime) -> f64 {
    time.as_secs_f64()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The next text frame the client gets, as it is.
async fn next_text(client: &mut crate::harness::Socket) -> String {
    use futures::StreamExt;
    loop {
        match tokio::time::timeout(WITHIN, client.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return text.to_string(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no text frame: {other:?}"),
        }
    }
}

/// GetConnection describes the connection (ConnectedAt, Identity.SourceIp and UserAgent,
/// LastActiveAt, which a message moves on), PostToConnection reaches the client as a text frame,
/// DeleteConnection closes it and the client sees the close.
#[tokio::test]
async fn the_sdk_gets_posts_to_and_deletes_a_connection() {
    let local = Local::start("cfmanage", Declared::default()).await;
    let management = local.management();
    let before = now();
    let mut client = local.client("", &[]).await;
    let id = connection_id(&mut client).await;

    let described = management
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("GetConnection");
    let connected_at = seconds(described.connected_at().expect("ConnectedAt"));
    assert!(before - 1.0 <= connected_at && connected_at <= now(), "{described:?}");
    let identity = described.identity().expect("Identity");
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));
    assert_eq!(identity.user_agent(), Some(USER_AGENT));
    let last_active = seconds(described.last_active_at().expect("LastActiveAt"));
    assert!(connected_at <= last_active, "{described:?}");
    // The event's connectedAt (ms) is the same instant as GetConnection's.
    let event = local.wait_for(&id, "CONNECT").await;
    let event_connected = event["requestContext"]["connectedAt"].as_f64().unwrap() / 1000.0;
    assert!(
        (event_connected - connected_at).abs() < 0.002,
        "{event_connected} vs {connected_at}"
    );

    tokio::time::sleep(Duration::from_millis(50)).await;
    echo(&mut client, json!({"action": "probe"})).await;
    let later = management.get_connection().connection_id(&id).send().await.unwrap();
    assert!(
        seconds(later.last_active_at().unwrap()) > last_active,
        "a message is activity"
    );
    assert_eq!(later.connected_at(), described.connected_at());

    management
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("hello from the SDK"))
        .send()
        .await
        .expect("PostToConnection");
    assert_eq!(next_text(&mut client).await, "hello from the SDK");

    management
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("DeleteConnection");
    assert!(close_code(&mut client).await.is_some(), "the client sees a close frame");
    let event = local.wait_for(&id, "DISCONNECT").await;
    assert!(event["requestContext"]["disconnectStatusCode"].is_number(), "{event}");
}

/// On a connection that is gone, each of GetConnection, PostToConnection and DeleteConnection is
/// 410 GoneException, typed so that the SDK reports it as such.
#[tokio::test]
async fn a_closed_connection_is_gone_for_every_call() {
    let local = Local::start("cfgone", Declared::default()).await;
    let management = local.management();
    let mut client = local.client("", &[]).await;
    let id = connection_id(&mut client).await;
    client
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }))
        .await
        .unwrap();
    local.wait_for(&id, "DISCONNECT").await;

    let get = management.get_connection().connection_id(&id).send().await.unwrap_err();
    assert!(get.as_service_error().is_some_and(|e| e.is_gone_exception()), "{get:?}");
    let post = management
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("late"))
        .send()
        .await
        .unwrap_err();
    assert!(
        post.as_service_error().is_some_and(|e| e.is_gone_exception()),
        "{post:?}"
    );
    let delete = management
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap_err();
    assert!(
        delete.as_service_error().is_some_and(|e| e.is_gone_exception()),
        "{delete:?}"
    );
    for status in [get.raw_response(), post.raw_response(), delete.raw_response()] {
        assert_eq!(status.map(|r| r.status().as_u16()), Some(410));
    }
}

/// The URL forms: AWS documents the `@` of `@connections` URL-encoded (`/prod/%40connections/
/// R0oXAdfD0kwCH6w%3D`, the awscurl example) as well as plain; both reach the connection. Without
/// the stage in the path there is no management API: 403, as on AWS (aws-facts.md: "without the
/// stage path every call is 403").
#[tokio::test]
async fn the_documented_url_forms_reach_the_connection() {
    let local = Local::start("cfurls", Declared::default()).await;
    let address = local.address();
    let mut client = local.client("", &[]).await;
    let id = connection_id(&mut client).await;
    let encoded = urlencoding::encode(&id).into_owned();

    for (path, text) in [
        (format!("/dev/@connections/{encoded}"), "plain"),
        (format!("/dev/%40connections/{encoded}"), "encoded at"),
    ] {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
            local.authorization(),
            text.len()
        );
        let (status, answer) = raw_http(&address, &request);
        assert_eq!(status, 200, "{path}: {answer}");
        assert_eq!(next_text(&mut client).await, text, "{path}");
    }

    let stageless = local.management_at(&format!("http://{address}"));
    let error = stageless.get_connection().connection_id(&id).send().await.unwrap_err();
    assert_eq!(
        error.raw_response().map(|r| r.status().as_u16()),
        Some(403),
        "{error:?}"
    );
    // The SDK's own form, with the stage, still works after all that.
    let described = local.management().get_connection().connection_id(&id).send().await;
    assert!(described.is_ok(), "{described:?}");
}
