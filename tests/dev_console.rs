//! `wsstack dev`'s console page, end to end: one `wsstack dev` (a stack with `auth:`, so the client
//! pane mints a token), its console driven in real Chromium by tests/dev_console/console.py
//! (Playwright's Python client with Debian's chromium; scripts/setup installs both), and the
//! console's refusals of other origins checked on the wire as well: a page of another site, a
//! DNS-rebinding host name, a cross-site form POST must not put anything on the bus.
//!
//! The screenshot the browser takes is kept under target/dev-console/ (the path is printed);
//! `WSSTACK_README_SCREENSHOT=1` also writes docs/console.png, the README's.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Env;
use futures::StreamExt;
use harness::{python_with_playwright, Dev};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const WITH_AUTH: (&str, &str) = ("# Who may connect.", "auth:\n  secret: generated\n\n# Who may connect.");

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One HTTP/1.1 request on a fresh connection; the status and the body.
fn http(port: u16, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to dev");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

fn post(port: u16, origin: &str, content_type: &str, key: &str, body: &str) -> (u16, String) {
    http(
        port,
        &format!(
            "POST /__console/api/send HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {origin}\r\n\
             Content-Type: {content_type}\r\nx-wsstack-console-key: {key}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[tokio::test]
async fn the_console_shows_connections_sends_events_and_refuses_other_origins() {
    let python = python_with_playwright();
    let started = Instant::now();
    let env = Env::start().await;
    let dev = Dev::start(&env, "console", &[WITH_AUTH]).await;
    let port: u16 = dev
        .url
        .trim_start_matches("ws://127.0.0.1:")
        .split('/')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("dev's address");
    let console = format!("http://127.0.0.1:{port}/");

    // On the wire: the page, and its key, only for this address.
    let (status, page) = http(
        port,
        &format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 200, "{page}");
    let key = page
        .split("name=\"wsstack-key\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries the session's key")
        .to_string();
    let (status, _) = http(
        port,
        &format!("GET / HTTP/1.1\r\nHost: rebind.example:{port}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 403, "a DNS-rebinding Host gets no page (and no key)");
    let send = r#"{"kind":"entity","id":"nobody-watches","message":"from the test"}"#;
    // What a cross-site form can send (no key: it cannot read the page), and even with the key.
    let form = "kind=entity&id=nobody-watches";
    let refused = [
        ("https://evil.example", "application/x-www-form-urlencoded", "", form),
        ("https://evil.example", "text/plain", key.as_str(), send),
        ("https://evil.example", "application/json", key.as_str(), send),
        ("null", "application/json", key.as_str(), send),
        (console.trim_end_matches('/'), "text/plain", key.as_str(), send),
        (console.trim_end_matches('/'), "application/json", "not-the-key", send),
    ];
    for (origin, content_type, key, body) in refused {
        let (status, answer) = post(port, origin, content_type, key, body);
        assert_eq!(status, 403, "{origin} {content_type}: {answer}");
    }
    // The same request from the page's own origin is served: the refusals above were not an outage.
    let (status, answer) = post(port, console.trim_end_matches('/'), "application/json", &key, send);
    assert_eq!(status, 200, "{answer}");
    // The stream's WebSocket from another origin.
    let mut request = format!("ws://127.0.0.1:{port}/__console/api/stream?key={key}")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("a cross-origin stream was not refused: {:?}", other.map(|_| ())),
    }

    // In Chromium.
    let artifacts = repository().join("target/dev-console");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("console.png");
    let mut command = Command::new(&python);
    command
        .arg(repository().join("tests/dev_console/console.py"))
        .arg(&console)
        .arg(&screenshot);
    if std::env::var_os("WSSTACK_README_SCREENSHOT").is_some() {
        command.arg(repository().join("docs/console.png"));
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("run tests/dev_console/console.py");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the browser test failed:\n{report}");
    // Straight to stderr, past the test harness's capture: CI's log names the artifact.
    let _ = writeln!(
        std::io::stderr(),
        "dev_console: screenshot kept at {} (the test took {:.1} s)",
        screenshot.display(),
        started.elapsed().as_secs_f64()
    );

    // The stream as the page reads it, from here: a handler's error and a DLQ arrival show up.
    let mut request = format!("ws://127.0.0.1:{port}/__console/api/stream?key={key}")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", console.trim_end_matches('/').parse().unwrap());
    let (mut stream, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the console's stream");
    let first = next_json(&mut stream).await;
    assert_eq!(first["type"], "state", "{first}");
    assert!(first["state"]["connections"].is_array(), "{first}");
    let sqs = env.sqs();
    for (queue, body) in [
        ("console-dev-events", "not an EventBridge event"),
        ("console-dev-events-dlq", "dead"),
    ] {
        let sent = sqs
            .send_message()
            .queue_url(env.queue_url(queue))
            .message_body(body)
            .send();
        sent.await.expect("send to the queue");
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(seen.contains(&"handler-error".to_string()) && seen.contains(&"dlq".to_string())) {
        assert!(
            Instant::now() < deadline,
            "no handler error and DLQ arrival in the stream; saw {seen:?}"
        );
        let message = next_json(&mut stream).await;
        for entry in message["entries"].as_array().into_iter().flatten() {
            seen.push(entry["kind"].as_str().unwrap_or_default().to_string());
        }
    }
    drop(dev);
}

async fn next_json<S>(stream: &mut S) -> serde_json::Value
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), stream.next()).await;
        match next
            .expect("the console's stream is silent")
            .expect("the stream is open")
            .unwrap()
        {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON from the stream"),
            _ => continue,
        }
    }
}
