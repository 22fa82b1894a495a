//! The gateway in process, with real WebSocket clients and real handler processes (the bash
//! bootstrap of `test_support`, which records the events it gets): handshake verdicts, oversize
//! messages, order of a connection's frames, the bounded outbox, the connection cap, shutdown,
//! the management API's credential and body bound, the header timeout, the HTTP connection cap.

use std::io::{Read, Write};

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;

use super::*;
use crate::dev::test_support::{fake_bootstrap, fake_host};

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A gateway on a free port whose routes run the fake bootstrap with the given environment.
struct Local {
    address: SocketAddr,
    /// The `Authorization` header line of a call signed with the gateway's session credentials.
    signed: String,
    shutdown: CancellationToken,
    served: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Local {
    async fn start(routes: &[(&str, &[(&str, &str)])]) -> Local {
        Local::start_in(tempfile::tempdir().unwrap(), routes).await
    }

    /// `dir` holds the bootstrap and whatever the routes record.
    async fn start_in(dir: tempfile::TempDir, routes: &[(&str, &[(&str, &str)])]) -> Local {
        Local::start_authorized(dir, None, routes).await
    }

    /// Also a `$connect` authorizer running the fake bootstrap with `authorizer`'s environment.
    async fn start_authorized(
        dir: tempfile::TempDir,
        authorizer: Option<&[(&str, &str)]>,
        routes: &[(&str, &[(&str, &str)])],
    ) -> Local {
        Local::start_with(dir, authorizer, 20_000, routes).await
    }

    /// No routes but `$connect` (accepting), clients given `header_read_timeout` for their headers.
    async fn start_timed(header_read_timeout: Duration) -> Local {
        let dir = tempfile::tempdir().unwrap();
        Local::start_configured(dir, None, 20_000, header_read_timeout, &[("$connect", &[])]).await
    }

    /// At most `max_connections` WebSocket connections at once.
    async fn start_with(
        dir: tempfile::TempDir,
        authorizer: Option<&[(&str, &str)]>,
        max_connections: usize,
        routes: &[(&str, &[(&str, &str)])],
    ) -> Local {
        Local::start_configured(dir, authorizer, max_connections, Duration::from_secs(10), routes).await
    }

    async fn start_configured(
        dir: tempfile::TempDir,
        authorizer: Option<&[(&str, &str)]>,
        max_connections: usize,
        header_read_timeout: Duration,
        routes: &[(&str, &[(&str, &str)])],
    ) -> Local {
        let binary = fake_bootstrap(dir.path());
        let runtime = CancellationToken::new();
        let authorizer = authorizer.map(|environment| ConnectAuthorizer {
            function: fake_host(binary.clone(), Duration::from_secs(5), 2, environment, runtime.clone()),
            target: events::AuthorizerTarget {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
        });
        // Every route answers its client here, as routes with a route response do.
        let two_way = routes.iter().map(|(key, _)| key.to_string()).collect();
        let routes = routes
            .iter()
            .map(|(key, environment)| {
                let host = fake_host(binary.clone(), Duration::from_secs(5), 2, environment, runtime.clone());
                (key.to_string(), host)
            })
            .collect();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let management = SessionCredentials::generate();
        let signed = format!(
            "Authorization: AWS4-HMAC-SHA256 Credential={}/20260101/us-east-1/execute-api/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=0\r\n",
            management.access_key_id
        );
        let config = GatewayConfig {
            api_id: "abc123".into(),
            stage: "dev".into(),
            routes,
            two_way,
            authorizer,
            idle_timeout: Duration::from_secs(600),
            max_connection: Duration::from_secs(7200),
            max_connections,
            header_read_timeout,
            management,
        };
        let gateway = Gateway::new(config, address, shutdown.clone());
        let served = tokio::spawn(gateway.serve(listener));
        Local {
            address,
            signed,
            shutdown,
            served,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/dev", self.address)
    }

    async fn connect(&self) -> Client {
        tokio_tungstenite::connect_async(self.url()).await.expect("handshake").0
    }
}

/// The events a route's process recorded, one JSON value per line.
fn recorded(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a recorded event"))
        .collect()
}

async fn wait_for_records(path: &std::path::Path, count: usize) -> Vec<Value> {
    for _ in 0..500 {
        let events = recorded(path);
        if events.len() >= count {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} events recorded, expected {count}", recorded(path).len());
}

/// The close code the client gets next, skipping data frames.
async fn close_code(client: &mut Client) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(Some(frame)) = tokio::time::timeout_at(deadline, client.next()).await {
        match frame {
            Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// One management API call over a fresh HTTP connection, with `headers` (each line ending in
/// CRLF; e.g. `Local::signed`): the status code.
fn post(address: SocketAddr, headers: &str, connection_id: &str, body: &[u8]) -> u16 {
    status_of(&post_answer(address, headers, connection_id, body))
}

/// The whole answer to a management API POST.
fn post_answer(address: SocketAddr, headers: &str, connection_id: &str, body: &[u8]) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let id = urlencoding::encode(connection_id);
    write!(
        stream,
        "POST /dev/@connections/{id} HTTP/1.1\r\nHost: {address}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn connection_ids_look_like_api_gateway_ones() {
    // API Gateway's ids are 11 bytes in base64: 16 characters, exactly one `=` of padding.
    for _ in 0..100 {
        let id = connection::new_connection_id();
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.ends_with('=') && !id.ends_with("=="), "{id}");
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &id).unwrap();
        assert_eq!(bytes.len(), 11, "{id}");
    }
    assert_ne!(connection::new_connection_id(), connection::new_connection_id());
}

#[tokio::test]
async fn a_connect_status_that_is_no_http_status_refuses_the_handshake() {
    for (answer, expected) in [
        (r#"{"statusCode":-1}"#, 502),
        (r#"{"statusCode":700}"#, 502),
        // 65736 is 200 once cut to 16 bits.
        (r#"{"statusCode":65736}"#, 502),
        (r#"{"statusCode":403}"#, 403),
    ] {
        let local = Local::start(&[("$connect", &[("ANSWER", answer)])]).await;
        match tokio_tungstenite::connect_async(local.url()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), expected, "{answer}")
            }
            Err(other) => panic!("{answer}: unexpected error {other}"),
            Ok(_) => panic!("{answer}: the handshake was accepted"),
        }
    }
    let local = Local::start(&[("$connect", &[("ANSWER", r#"{"statusCode":200}"#)])]).await;
    local.connect().await;
}

#[tokio::test]
async fn an_oversize_frame_or_message_closes_with_1009_and_disconnect_hears_it() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("disconnects");
    let record_text = record.to_str().unwrap();
    let local = Local::start_in(dir, &[("$disconnect", &[("RECORD", record_text)])]).await;

    // One 40 KB frame: over the 32 KB frame limit.
    let mut client = local.connect().await;
    client.send(Message::Text("x".repeat(40 * 1024).into())).await.unwrap();
    assert_eq!(close_code(&mut client).await, Some(1009));
    let events = wait_for_records(&record, 1).await;
    assert_eq!(events[0]["requestContext"]["disconnectStatusCode"], 1009);

    // Five 30 KB frames of one message: each frame is fine, the 150 KB message is not.
    let mut client = local.connect().await;
    let chunk = || Bytes::from("y".repeat(30 * 1024));
    client
        .send(Message::Frame(Frame::message(chunk(), OpCode::Data(Data::Text), false)))
        .await
        .unwrap();
    for last in [false, false, false, true] {
        if client
            .send(Message::Frame(Frame::message(
                chunk(),
                OpCode::Data(Data::Continue),
                last,
            )))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(close_code(&mut client).await, Some(1009));
    let events = wait_for_records(&record, 2).await;
    assert_eq!(events[1]["requestContext"]["disconnectStatusCode"], 1009);
}

#[tokio::test]
async fn a_connections_frames_are_routed_one_at_a_time_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("messages");
    let record_text = record.to_str().unwrap();
    let answer = r#"{"statusCode":200,"body":"done"}"#;
    let local = Local::start_in(dir, &[("$default", &[("RECORD", record_text), ("ANSWER", answer)])]).await;
    let mut client = local.connect().await;
    let count = 30;
    for n in 0..count {
        client.send(Message::Text(format!("frame {n}").into())).await.unwrap();
    }
    let mut answers = 0;
    while answers < count {
        match tokio::time::timeout(Duration::from_secs(10), client.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "done" => answers += 1,
            other => panic!("after {answers} answers: {other:?}"),
        }
    }
    let bodies: Vec<String> = recorded(&record)
        .iter()
        .map(|event| event["body"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..count).map(|n| format!("frame {n}")).collect();
    assert_eq!(bodies, expected);
}

#[tokio::test]
async fn posts_to_a_client_that_does_not_read_are_throttled_with_429_and_the_rest_arrive_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("connects");
    let record_text = record.to_str().unwrap();
    let local = Local::start_in(dir, &[("$connect", &[("RECORD", record_text)])]).await;
    let mut client = local.connect().await;
    let events = wait_for_records(&record, 1).await;
    let id = events[0]["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_string();

    // The client reads nothing: the socket's buffers fill, then the outbox, then posts get 429.
    let (address, signed) = (local.address, local.signed.clone());
    let statuses = tokio::task::spawn_blocking(move || {
        let mut statuses = Vec::new();
        for n in 0..2000 {
            let body = format!("{n:06}").repeat(100 * 1024 / 6);
            let status = post(address, &signed, &id, body.as_bytes());
            statuses.push(status);
            if status != 200 {
                break;
            }
        }
        statuses
    })
    .await
    .unwrap();
    assert_eq!(
        statuses.last(),
        Some(&429),
        "{} posts, last {:?}",
        statuses.len(),
        statuses.last()
    );
    let delivered = statuses.len() - 1;
    assert!(delivered >= OUTBOX_FRAMES, "{delivered} posts accepted");

    // Every accepted post arrives, in order.
    for n in 0..delivered {
        match tokio::time::timeout(Duration::from_secs(10), client.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => assert!(text.starts_with(&format!("{n:06}")), "post {n}"),
            other => panic!("post {n}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn shutdown_closes_every_connection_with_1001_and_runs_its_disconnect() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("disconnects");
    let record_text = record.to_str().unwrap();
    let local = Local::start_in(dir, &[("$disconnect", &[("RECORD", record_text)])]).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(local.connect().await);
    }
    local.shutdown.cancel();
    for client in &mut clients {
        assert_eq!(close_code(client).await, Some(1001));
    }
    tokio::time::timeout(Duration::from_secs(15), local.served)
        .await
        .expect("serve returns once its connections are done")
        .unwrap();
    // serve returned after every $disconnect ran.
    let events = recorded(&record);
    assert_eq!(events.len(), 3);
    assert!(events
        .iter()
        .all(|e| e["requestContext"]["disconnectStatusCode"] == 1001));
}

#[tokio::test]
async fn past_the_connection_cap_a_handshake_gets_429_until_a_connection_has_ended() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("disconnects");
    let record_text = record.to_str().unwrap();
    let local = Local::start_with(dir, None, 2, &[("$disconnect", &[("RECORD", record_text)])]).await;
    let mut first = local.connect().await;
    let _second = local.connect().await;

    match tokio_tungstenite::connect_async(local.url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 429);
            assert_eq!(
                response.headers().get("x-amzn-errortype").map(|v| v.to_str().unwrap()),
                Some("LimitExceededException")
            );
            if let Some(body) = response.body() {
                let body = String::from_utf8_lossy(body);
                assert!(body.contains("at most 2 (--max-connections)"), "{body}");
            }
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a third connection was accepted over a cap of 2"),
    }
    // The management API is no WebSocket connection: it still answers at the cap.
    let (address, signed) = (local.address, local.signed.clone());
    let status = tokio::task::spawn_blocking(move || post(address, &signed, "unknown", b"hello"))
        .await
        .unwrap();
    assert_eq!(status, 410);

    // A connection that ends gives its place back once its $disconnect ran.
    first.close(None).await.unwrap();
    wait_for_records(&record, 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio_tungstenite::connect_async(local.url()).await {
            Ok(_) => break,
            Err(tokio_tungstenite::tungstenite::Error::Http(response))
                if response.status().as_u16() == 429 && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(other) => panic!("after a connection ended: {other}"),
        }
    }
}

#[path = "auth_tests.rs"]
mod auth;

#[path = "security_tests.rs"]
mod security;
