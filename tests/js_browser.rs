//! The JavaScript client (clients/js/wsstack.js) in real Chromium against `wsstack dev`, used as a
//! web app on its own origin uses it: tests/js_browser/page.py serves a page on another port, which
//! imports the module from dev's /client.js (cross-origin, so only with dev's CORS header) and runs
//! tests/js_client/drive.mjs; this side plays the server's part (tests/js_client/support.rs).
//!
//! One dev (a stack with `auth:` that keeps each stream's events for 30 s) and one reconnection
//! show what issue 24 promises a page: the events it missed come back once and in order, a gap
//! longer than the window is reported as `resync`, and a token that expired meanwhile is replaced
//! through the token function. (A gap longer than a replay carries: tests/js_client.rs.)

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;
#[path = "js_client/support.rs"]
mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use common::Env;
use harness::{python_with_playwright, send_event, Dev};
use serde_json::json;
use support::{close_all, count, notify, root, token, Client, Probe, MAX_REPLAY, WITH_AUTH};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const STACK: &str = "jsbrowser";

/// Each stream keeps its events this long: the wait for the page's first token to expire (31 s)
/// outlasts it, so what is sent before that wait has left the window when the page comes back,
/// and what is sent after it has not.
const WINDOW: Duration = Duration::from_secs(30);
const HISTORY: (&str, &str) = (
    "# Tags added to every resource",
    "history:\n  window_seconds: 30\n  max_replay: 10\n\n# Tags added to every resource",
);
/// Events of order-2 sent while the page is away, then left to expire: fewer than a replay
/// carries, so only the window can make them a resync.
const EXPIRING: u64 = 3;

/// Whether dev's handshake accepts `token` now (an accepted probe is closed at once).
async fn accepts(url: &str, token: &str) -> bool {
    let mut request = url.into_client_request().unwrap();
    let protocol = format!("websocket, {token}").parse().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", protocol);
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut socket, _)) => {
            let _ = socket.close(None).await;
            true
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401, "an expired token is refused as unauthorized");
            false
        }
        Err(other) => panic!("the handshake failed: {other}"),
    }
}

#[tokio::test]
async fn a_page_gets_what_it_missed_once_and_in_order_a_resync_past_the_window_and_a_fresh_token() {
    let python = python_with_playwright();
    let started = Instant::now();
    let env = Env::start().await;
    let dev = Dev::start(&env, STACK, &[WITH_AUTH, HISTORY]).await;
    // The page's first token lives one second (and the authorizer's 30 s of clock-skew leeway):
    // minted first, so that waiting for it to expire overlaps the rest of the scenario.
    let short_lived = token(&env, &dev, "user-1", "order-*", "1s").await;
    let dev_origin = dev.url.replacen("ws://", "http://", 1).replace("/dev", "");
    let mut command = Command::new(python);
    command
        .arg(root().join("tests/js_browser/page.py"))
        .arg(&dev.url)
        .arg(format!("{dev_origin}/client.js"))
        .arg(json!({"tokens": true, "initialDelayMs": 100, "maxDelayMs": 1000}).to_string());
    let mut page = Client::spawn(command);
    page.expect_event("token?").await;
    let ready = page.expect_event("page ready").await;
    assert!(
        ready["origin"].as_str().is_some_and(|origin| origin != dev_origin),
        "the page imported the module from another origin than its own: {ready}"
    );
    page.give_token(Some(&short_lived)).await;
    page.expect_state("open").await;
    page.subscribe(&["order-1", "order-2"]).await;
    send_event(&env, STACK, "order-1", "before").await;
    page.expect_push("before").await;

    assert_eq!(close_all(&env, &dev).await, 1, "the page's connection is closed");
    page.expect_event("disconnected").await;
    // The page stays offline while the token function waits for the test's answer.
    page.expect_event("token?").await;
    let probe_token = token(&env, &dev, "probe", "order-*", "10m").await;
    let mut probe = Probe::open(&dev, Some(&probe_token), &["order-1", "order-2"]).await;
    // order-2's events first: by the time the page is back they have left the window (the
    // history records say so themselves; DynamoDB's TTL would delete them much later).
    for n in 1..=EXPIRING {
        probe.send(&env, STACK, "order-2", &format!("gone {n}")).await;
    }
    let expired = Instant::now() + WINDOW + Duration::from_secs(1);
    let deadline = Instant::now() + Duration::from_secs(120);
    while accepts(&dev.url, &short_lived).await {
        assert!(
            Instant::now() < deadline,
            "dev still accepts a token minted with --ttl 1s"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep_until(expired.into()).await;
    // order-1's ten, sent last: within the window when the page comes back.
    for n in 1..=MAX_REPLAY {
        probe.send(&env, STACK, "order-1", &format!("missed {n}")).await;
    }
    // The token function's second answer: another user's, so that what arrives tells which connected.
    let fresh = token(&env, &dev, "user-2", "order-*", "10m").await;
    page.give_token(Some(&fresh)).await;
    page.expect_state("open").await;
    page.wait_until("order-1's acknowledgement and order-2's resync", |seen| {
        count(seen, "acknowledged", "order-1") == 2 && count(seen, "resync", "order-2") == 1
    })
    .await;

    // (a) The ten events of its absence, after the one before it, each once, in order.
    let mut missed: Vec<(u64, String)> = (1..=MAX_REPLAY).map(|n| (n + 1, format!("missed {n}"))).collect();
    assert_eq!(
        probe.of("order-1"),
        missed,
        "the server numbered them as they were sent"
    );
    missed.insert(0, (1, "before".to_string()));
    assert_eq!(page.presented("order-1"), missed, "{:#?}", page.seen);
    // (b) order-2's three, gone from the window: a resync at its latest seq, nothing presented.
    let resync = page.seen.iter().find(|r| r["event"] == "resync").unwrap();
    assert_eq!(resync["detail"]["seq"], EXPIRING, "{resync}");
    assert_eq!(page.presented("order-2"), vec![], "{:#?}", page.seen);
    // (c) The token function was asked once per connection, and the second connection is user-2's:
    // the first token was refused by then, and user-2's notification reaches the page.
    let asked = page.seen.iter().filter(|r| r["event"] == "token?").count();
    assert_eq!(asked, 2, "one token per connection: {:#?}", page.seen);
    notify(&env, &dev, "user-2", "to two").await;
    page.expect("user-2's notification", |r| {
        r["event"] == "user" && r["detail"]["message"] == "to two"
    })
    .await;
    page.stop().await;
    // Straight to stderr, past the test harness's capture: CI's log shows what the test costs.
    let _ = writeln!(
        std::io::stderr(),
        "js_browser: the test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
