//! The JavaScript client (clients/js/wsstack.js) under Node 22 (scripts/setup puts it in .venv/)
//! against `wsstack dev`: tests/js_client/driver.mjs runs the client and reports what it sees as
//! JSON lines; this side plays the server's part with the real binary (tests/js_client/support.rs):
//! events through `send-event`, connections closed through dev's management API as a handler
//! closes them, tokens minted by `wsstack token`. The first test loads the module from dev's
//! `/client.js`, as a page on another origin does; tests/js_browser.rs runs it in Chromium.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;
#[path = "js_client/support.rs"]
mod support;

use common::Env;
use harness::{send_event, wait_for_subscribers, Dev};
use serde_json::{json, Value};
use support::{close_all, count, node, notify, root, token, Client, Probe, HISTORY, MAX_REPLAY, WITH_AUTH};
use tokio::process::Command;

/// The client under Node, from `module`: a `file://` URL, or `wsstack dev`'s `/client.js`.
fn node_client(url: &str, module: &str, options: Value) -> Client {
    let mut command = Command::new(node());
    command
        .arg(root().join("tests/js_client/driver.mjs"))
        .arg(url)
        .arg(options.to_string())
        .env("WSSTACK_CLIENT_MODULE", module);
    Client::spawn(command)
}

/// Closed by the server, the client reconnects by itself, resubscribes with the last seq it
/// presented, and presents what it missed once and in order; a gap longer than a replay is
/// reported as `resync`; frames it presented already, replayed again, are dropped.
#[tokio::test]
async fn the_client_reconnects_and_presents_what_it_missed_once_and_in_order() {
    const STACK: &str = "jsclient";
    let env = Env::start().await;
    let dev = Dev::start(&env, STACK, &[HISTORY]).await;
    // The module as a page on another origin gets it from dev: the file's bytes, with CORS.
    let served = dev.url.replacen("ws://", "http://", 1).replace("/dev", "/client.js");
    // A stack without `auth:` needs no token: the token function (answered with none) is there to
    // hold the reconnection while the test sends what the client is to miss.
    let options = json!({"tokens": true, "initialDelayMs": 100, "maxDelayMs": 1000});
    let mut client = node_client(&dev.url, &served, options);
    let module = client.expect_event("module").await;
    assert_eq!(module["status"], 200, "{}", module["status"]);
    assert_eq!(module["cors"], "*");
    let file = std::fs::read_to_string(root().join("clients/js/wsstack.js")).unwrap();
    assert!(
        module["text"] == file.as_str(),
        "dev serves clients/js/wsstack.js byte for byte"
    );
    client.expect_event("token?").await;
    client.give_token(None).await;
    client.expect_state("open").await;
    client.subscribe(&["order-1", "order-2"]).await;
    send_event(&env, STACK, "order-1", "before").await;
    client.expect_push("before").await;

    assert_eq!(close_all(&env, &dev).await, 1);
    client.expect_event("disconnected").await;
    client.expect_state("reconnecting").await;
    client.expect_event("token?").await;
    let mut probe = Probe::open(&dev, None, &["order-1", "order-2"]).await;
    for n in 1..=MAX_REPLAY {
        probe.send(&env, STACK, "order-1", &format!("missed {n}")).await;
    }
    // One more than a replay carries.
    for n in 1..=MAX_REPLAY + 1 {
        probe.send(&env, STACK, "order-2", &format!("gone {n}")).await;
    }
    client.give_token(None).await;
    client.expect_state("open").await;
    client
        .wait_until("order-1's acknowledgement and order-2's resync", |seen| {
            count(seen, "acknowledged", "order-1") == 2 && count(seen, "resync", "order-2") == 1
        })
        .await;
    let mut expected: Vec<(u64, String)> = (1..=MAX_REPLAY).map(|n| (n + 1, format!("missed {n}"))).collect();
    assert_eq!(
        probe.of("order-1"),
        expected,
        "the server numbered them as they were sent"
    );
    expected.insert(0, (1, "before".to_string()));
    assert_eq!(client.presented("order-1"), expected, "{:#?}", client.seen);
    let resync = client.seen.iter().find(|r| r["event"] == "resync").unwrap();
    assert_eq!(resync["detail"]["seq"], MAX_REPLAY + 1, "{resync}");
    assert_eq!(client.presented("order-2"), vec![], "{:#?}", client.seen);

    // Duplicates: a subscribe with `since` 1, sent as any frame, makes the server replay the ten
    // again; they arrive (the `frame` reports), and none is presented a second time.
    let since_one = json!({"action": "subscribe", "entityId": "order-1", "since": 1});
    client.command(json!({"cmd": "send", "frame": since_one})).await;
    client
        .wait_until("the acknowledgement of the second replay", |seen| {
            count(seen, "acknowledged", "order-1") == 3
        })
        .await;
    for seq in 2..=MAX_REPLAY + 1 {
        let arrivals = client
            .seen
            .iter()
            .filter(|r| r["event"] == "frame")
            .map(|r| &r["detail"]["data"])
            .filter(|frame| frame["type"] == "Entity Updated" && frame["entityId"] == "order-1")
            .filter(|frame| frame["seq"] == seq)
            .count();
        assert_eq!(arrivals, 2, "seq {seq} came replayed twice: {:#?}", client.seen);
    }
    // The next event follows the ten: nothing in between was presented again.
    let seq = probe.send(&env, STACK, "order-1", "after").await;
    client.expect_push("after").await;
    expected.push((seq, "after".to_string()));
    assert_eq!(client.presented("order-1"), expected, "{:#?}", client.seen);
    client.stop().await;
}

/// The token function is asked on every connection, and what it returns is what connects: after
/// the server closed the connection of user-7's token, the client connects with the token the
/// function gives then (user-8's here, so that the test can tell which one connected; a token
/// that expired is replaced the same way, as tests/js_browser.rs shows in Chromium).
#[tokio::test]
async fn each_connection_takes_a_fresh_token_from_the_token_function() {
    let env = Env::start().await;
    let dev = Dev::start(&env, "jsauth", &[WITH_AUTH]).await;
    let module = format!("file://{}", root().join("clients/js/wsstack.js").display());
    let mut client = node_client(
        &dev.url,
        &module,
        json!({"tokens": true, "initialDelayMs": 100, "maxDelayMs": 1000}),
    );
    client.expect_event("token?").await;
    let first = token(&env, &dev, "user-7", "order-1", "10m").await;
    client.give_token(Some(&first)).await;
    client.expect_state("open").await;
    client.subscribe(&["order-1"]).await;
    notify(&env, &dev, "user-7", "to seven").await;
    client
        .expect("user-7's notification", |r| {
            r["event"] == "user" && r["detail"]["message"] == "to seven"
        })
        .await;

    assert_eq!(close_all(&env, &dev).await, 1);
    client.expect_event("disconnected").await;
    client.expect_event("token?").await;
    let fresh = token(&env, &dev, "user-8", "order-1", "10m").await;
    client.give_token(Some(&fresh)).await;
    client.expect_state("open").await;
    client.expect_event("acknowledged").await;
    wait_for_subscribers(&env, &dev.table(), "order-1", 1).await;
    notify(&env, &dev, "user-7", "to seven again").await;
    notify(&env, &dev, "user-8", "to eight").await;
    client
        .expect("user-8's notification", |r| {
            r["event"] == "user" && r["detail"]["message"] == "to eight"
        })
        .await;
    send_event(&env, "jsauth", "order-1", "with the fresh token").await;
    client.expect_push("with the fresh token").await;
    let asked = client.seen.iter().filter(|r| r["event"] == "token?").count();
    assert_eq!(asked, 2, "one token per connection: {:#?}", client.seen);
    assert!(
        !client.seen.iter().any(|r| r["detail"]["message"] == "to seven again"),
        "the new connection is user-8's, not user-7's: {:#?}",
        client.seen
    );
    client.stop().await;
}
