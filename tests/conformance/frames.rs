//! What the gateway does with frames it does not route: a message over API Gateway's size limit,
//! and binary frames.

use bytes::Bytes;
use futures::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::Socket;
use crate::support::{close_code, connection_id, echo, Declared, Local};

/// One text message of `size` bytes in frames of at most 30 KB (API Gateway's frame limit is 32 KB,
/// so a bigger message must be split): a JSON frame for `probe` padded to the size.
async fn send_split(client: &mut Socket, size: usize) {
    let head = r#"{"action":"probe","do":"conformance-echo","pad":""#;
    let mut text = head.to_string();
    text.push_str(&"p".repeat(size - head.len() - 2));
    text.push_str("\"}");
    assert_eq!(text.len(), size);
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(30 * 1024).collect();
    for (n, chunk) in chunks.iter().enumerate() {
        let opcode = if n == 0 { Data::Text } else { Data::Continue };
        let last = n + 1 == chunks.len();
        let frame = Frame::message(Bytes::copy_from_slice(chunk), OpCode::Data(opcode), last);
        if client.send(Message::Frame(frame)).await.is_err() {
            return;
        }
    }
}

/// A message over 128 KB closes the connection with 1009 and reaches no route; one just under it,
/// split into frames under 32 KB, is routed whole. "Message payload size: 128 KB ... Because of the
/// WebSocket frame-size quota of 32 KB, a message larger than 32 KB must be split into multiple
/// frames ... If a larger message (or larger frame size) is received, the connection is closed with
/// code 1009"
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html).
#[tokio::test]
async fn a_message_over_128_kb_closes_with_1009() {
    let local = Local::start("cfbig", Declared::default()).await;
    let mut client = local.client("", &[]).await;
    let id = connection_id(&mut client).await;

    // 127 KB: routed, the body whole.
    send_split(&mut client, 127 * 1024).await;
    let event = crate::harness::next_message(&mut client, crate::support::WITHIN)
        .await
        .expect("the big message's echo");
    assert_eq!(event["body"].as_str().unwrap().len(), 127 * 1024);

    // 129 KB: closed with 1009, and $disconnect hears 1009.
    send_split(&mut client, 129 * 1024).await;
    assert_eq!(close_code(&mut client).await, Some(1009));
    let event = local.wait_for(&id, "DISCONNECT").await;
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1009);
    assert_eq!(
        local.events_of(&id, "MESSAGE").len(),
        2,
        "the probe and the 127 KB message only"
    );

    // A single frame over 32 KB is closed the same way.
    let mut client = local.client("", &[]).await;
    let id = connection_id(&mut client).await;
    client.send(Message::Text("x".repeat(40 * 1024).into())).await.unwrap();
    assert_eq!(close_code(&mut client).await, Some(1009));
    assert_eq!(
        local.wait_for(&id, "DISCONNECT").await["requestContext"]["disconnectStatusCode"],
        1009
    );
}

/// A binary frame closes the connection with 1003 and is routed nowhere: "API Gateway WebSocket APIs
/// don't currently support binary frames in incoming message payloads. If a client app sends a
/// binary frame, API Gateway rejects it and disconnects the client with code 1003"
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-binary-media-types.html).
#[tokio::test]
async fn a_binary_frame_closes_with_1003_and_routes_nothing() {
    let local = Local::start("cfbinary", Declared::default()).await;
    let mut client = local.client("", &[]).await;
    let id = connection_id(&mut client).await;

    let frame = json!({"action": "probe", "do": "conformance-echo"}).to_string();
    client.send(Message::Binary(Bytes::from(frame))).await.unwrap();
    assert_eq!(close_code(&mut client).await, Some(1003));
    let event = local.wait_for(&id, "DISCONNECT").await;
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1003);
    assert_eq!(local.events_of(&id, "MESSAGE").len(), 1, "only the probe was routed");

    // Text frames still work on other connections.
    let mut other = local.client("", &[]).await;
    echo(&mut other, json!({"action": "probe"})).await;
}
