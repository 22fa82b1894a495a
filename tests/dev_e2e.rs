//! `wsstack dev` end to end: real WebSocket clients against the local gateway, the real handler
//! binaries run by the local Lambda runtime, events through EventBridge and SQS in moto.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use common::Env;
use futures::{SinkExt, StreamExt};
use harness::{
    all_connection_ids, connect, next_message, records_of, send, send_event, subscribe, subscribed_clients,
    unsubscribe, wait_for_subscribers, Dev,
};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn the_articles_flow_pushes_hello_world_to_the_subscriber() {
    let env = Env::start().await;
    let mut dev = Dev::start(&env, "article", &[]).await;
    let (mut client, protocol) = connect(&dev.url, Some("websocket")).await;
    assert_eq!(
        protocol.as_deref(),
        Some("websocket"),
        "$connect echoes the sub-protocol"
    );
    subscribe(&mut client, "myTestEntityId").await;
    wait_for_subscribers(&env, &dev.table(), "myTestEntityId", 1).await;

    send_event(&env, "article", "myTestEntityId", "Hello world").await;
    let push = next_message(&mut client, Duration::from_secs(20))
        .await
        .expect("the push arrives");
    assert_eq!(
        push,
        json!({"type": "Entity Updated", "entityId": "myTestEntityId", "message": "Hello world", "seq": 1})
    );

    // Ctrl-C: the client gets a close frame, $disconnect cleans up, dev exits 0.
    let code = tokio::task::spawn_blocking(move || {
        let code = dev.interrupt();
        (code, dev)
    })
    .await
    .unwrap();
    assert_eq!(code.0, 0);
    let mut closed = false;
    while let Ok(Some(frame)) = tokio::time::timeout(Duration::from_secs(5), client.next()).await {
        if let Ok(Message::Close(frame)) = frame {
            assert_eq!(frame.map(|f| u16::from(f.code)), Some(1001));
            closed = true;
            break;
        }
    }
    assert!(closed, "the client got a close frame");
    assert!(
        all_connection_ids(&env, "article-dev-connections").await.is_empty(),
        "$disconnect ran on shutdown"
    );
}

#[tokio::test]
async fn each_client_gets_only_its_entities_until_it_unsubscribes() {
    let env = Env::start().await;
    let dev = Dev::start(&env, "two", &[]).await;
    let (mut orders, _) = connect(&dev.url, None).await;
    let (mut users, _) = connect(&dev.url, None).await;
    subscribe(&mut orders, "order-42").await;
    subscribe(&mut users, "user-7").await;
    wait_for_subscribers(&env, &dev.table(), "order-42", 1).await;
    wait_for_subscribers(&env, &dev.table(), "user-7", 1).await;

    send_event(&env, "two", "order-42", "shipped").await;
    send_event(&env, "two", "user-7", "renamed").await;
    let got = next_message(&mut orders, Duration::from_secs(20)).await.unwrap();
    assert_eq!(got["entityId"], "order-42");
    assert_eq!(got["message"], "shipped");
    let got = next_message(&mut users, Duration::from_secs(20)).await.unwrap();
    assert_eq!(got["entityId"], "user-7");
    assert!(
        next_message(&mut orders, Duration::from_millis(800)).await.is_none(),
        "orders saw only its own"
    );

    unsubscribe(&mut orders, "order-42").await;
    wait_for_subscribers(&env, &dev.table(), "order-42", 0).await;
    send_event(&env, "two", "order-42", "delivered").await;
    send_event(&env, "two", "user-7", "again").await;
    let got = next_message(&mut users, Duration::from_secs(20)).await.unwrap();
    assert_eq!(got["message"], "again");
    assert!(
        next_message(&mut orders, Duration::from_secs(1)).await.is_none(),
        "no push after unsubscribe"
    );
}

#[tokio::test]
async fn closed_and_vanished_clients_leave_no_records() {
    let env = Env::start().await;
    let dev = Dev::start(&env, "gone", &[]).await;
    let table = dev.table();

    // A clean close: $disconnect removes the connection and its subscriptions.
    let (mut client, _) = connect(&dev.url, None).await;
    subscribe(&mut client, "e1").await;
    subscribe(&mut client, "e2").await;
    wait_for_subscribers(&env, &table, "e2", 1).await;
    let ids = all_connection_ids(&env, &table).await;
    assert_eq!(ids.len(), 1);
    assert_eq!(records_of(&env, &table, &ids[0]).await, 3);
    client.close(None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while records_of(&env, &table, &ids[0]).await > 0 {
        assert!(Instant::now() < deadline, "records of a closed connection remain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A client killed without a close frame: the TCP connection just drops.
    let (client, _) = connect(&dev.url, None).await;
    let mut client = client;
    subscribe(&mut client, "e3").await;
    wait_for_subscribers(&env, &table, "e3", 1).await;
    drop(client);
    wait_for_subscribers(&env, &table, "e3", 0).await;

    // A connection whose $disconnect never came (best effort in AWS): its records are still there,
    // the gateway answers the push with 410 Gone, and the push handler removes them.
    let stale = "c3RhbGVjb25uZWN0aW9u";
    for (sk, extra) in [("connection#", None), ("subscription#e4", Some("e4"))] {
        let mut put = env
            .dynamodb()
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(stale.into()))
            .item("sk", AttributeValue::S(sk.into()))
            .item("ttl", AttributeValue::N("4102444800".into()));
        if let Some(entity) = extra {
            put = put
                .item("GSI1PK", AttributeValue::S(entity.into()))
                .item("GSI1SK", AttributeValue::S("subscription#".into()));
        }
        put.send().await.unwrap();
    }
    let (mut live, _) = connect(&dev.url, None).await;
    subscribe(&mut live, "e4").await;
    wait_for_subscribers(&env, &table, "e4", 2).await;
    send_event(&env, "gone", "e4", "to both").await;
    assert_eq!(
        next_message(&mut live, Duration::from_secs(20)).await.unwrap()["message"],
        "to both"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while records_of(&env, &table, stale).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the stale connection's records remain after a 410"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_subscribers(&env, &table, "e4", 1).await;
}

#[tokio::test]
async fn bad_frames_get_an_error_and_the_connection_keeps_working() {
    let env = Env::start().await;
    let dev = Dev::start(&env, "frames", &[]).await;
    let (mut client, _) = connect(&dev.url, None).await;
    let (mut other, _) = connect(&dev.url, None).await;
    subscribe(&mut other, "calm").await;

    // No route for the action: the gateway's own error frame, as AWS sends it.
    send(&mut client, json!({"action": "dance"})).await;
    let error = next_message(&mut client, Duration::from_secs(10)).await.unwrap();
    assert_eq!(error["message"], "Forbidden", "{error}");
    // Routed, but not a valid subscription: the handler's error reply.
    let routed_but_bad = [
        json!({"action": "subscribe"}),
        json!({"action": "subscribe", "entityId": ""}),
        json!({"action": "subscribe", "entityId": 42}),
        json!({"action": "subscribe", "entityId": null}),
        json!({"action": "subscribe", "entityId": ["a"]}),
        json!({"action": "subscribe", "entityId": {"id": "a"}}),
        json!({"action": "subscribe", "entityId": "x".repeat(5000)}),
        json!({"action": "subscribe", "entityId": "tab\there"}),
        json!({"action": "subscribe", "entityId": "new\nline"}),
        json!({"action": "subscribe", "entityId": "\u{0}"}),
        json!({"action": "subscribe", "entityId": "   "}),
        json!({"action": "unsubscribe"}),
        json!({"action": "unsubscribe", "entityId": 7}),
        json!({"action": "unsubscribe", "entityId": ""}),
    ];
    for frame in &routed_but_bad {
        send(&mut client, frame.clone()).await;
        let reply = next_message(&mut client, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no reply to {frame}"));
        assert_eq!(reply["type"], "error", "{frame} -> {reply}");
    }
    // Not routable at all: the gateway answers as API Gateway does.
    let unroutable = [
        "not json at all",
        "",
        "{",
        "[1,2,3]",
        "{\"action\": 5}",
        "{\"Action\": \"subscribe\"}",
    ];
    for frame in unroutable {
        client.send(Message::Text(frame.into())).await.unwrap();
        let reply = next_message(&mut client, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no reply to {frame:?}"));
        assert_eq!(reply["message"], "Forbidden", "{frame:?} -> {reply}");
    }
    assert!(
        routed_but_bad.len() + unroutable.len() + 1 >= 20,
        "at least 20 malformed frames"
    );

    // Still connected and working, and so is the other client.
    subscribe(&mut client, "calm").await;
    wait_for_subscribers(&env, &dev.table(), "calm", 2).await;
    send_event(&env, "frames", "calm", "still here").await;
    assert_eq!(
        next_message(&mut client, Duration::from_secs(20)).await.unwrap()["message"],
        "still here"
    );
    assert_eq!(
        next_message(&mut other, Duration::from_secs(20)).await.unwrap()["message"],
        "still here"
    );
    let ids = all_connection_ids(&env, &dev.table()).await;
    assert_eq!(ids.len(), 2, "nothing was written for the bad frames: {ids:?}");
}

#[tokio::test]
async fn a_failing_connect_integration_rejects_the_handshake() {
    let env = Env::start().await;
    let dev = Dev::start(&env, "reject", &[]).await;
    // The table is gone: $connect cannot store the connection and fails, so the handshake must
    // fail too rather than accept a connection nobody can reach.
    env.dynamodb()
        .delete_table()
        .table_name(dev.table())
        .send()
        .await
        .unwrap();
    let request = dev.url.as_str().into_client_request().unwrap();
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert!(
                response.status().is_server_error() || response.status().is_client_error(),
                "{}",
                response.status()
            )
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("the handshake was accepted"),
    }
}

#[tokio::test]
async fn two_hundred_clients_get_all_fifty_events() {
    let env = Env::start().await;
    let dev = Dev::start(&env, "many", &[]).await;
    let clients = 200;
    let events = 50;
    let sockets = subscribed_clients(&env, &dev, "hot", clients).await;

    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                let mut seen: HashMap<String, usize> = HashMap::new();
                // Room for one redelivery: on a loaded machine a push invocation can outlive its
                // 10 s timeout, and its batch comes back after the queue's visibility timeout (60 s).
                let deadline = Instant::now() + Duration::from_secs(240);
                while seen.len() < events {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        break;
                    };
                    match tokio::time::timeout(left, socket.next()).await {
                        Ok(Some(Ok(Message::Text(text)))) => {
                            let message: Value = serde_json::from_str(&text).unwrap();
                            *seen
                                .entry(message["message"].as_str().unwrap().to_string())
                                .or_default() += 1;
                        }
                        Ok(Some(Ok(_))) => {}
                        other => {
                            eprintln!("reader ended after {} events: {other:?}", seen.len());
                            break;
                        }
                    }
                }
                seen
            })
        })
        .collect();
    let bus = env.events();
    for batch in 0..events / 10 {
        let mut request = bus.put_events();
        for i in 0..10 {
            let n = batch * 10 + i;
            request = request.entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source("wsstack.many.dev")
                    .detail_type("Entity Updated")
                    .detail(json!({"entityId": "hot", "message": format!("event-{n}")}).to_string())
                    .build(),
            );
        }
        let output = request.send().await.unwrap();
        assert_eq!(output.failed_entry_count(), 0);
    }
    let mut duplicates = 0;
    for reader in readers {
        let seen = reader.await.unwrap();
        assert_eq!(seen.len(), events, "a client missed events: got {}", seen.len());
        duplicates += seen.values().map(|n| n - 1).sum::<usize>();
    }
    // SQS is at-least-once: report duplicates rather than hide them.
    eprintln!("200 clients x 50 events: {duplicates} duplicate deliveries");
    assert!(duplicates <= clients * events / 10, "too many duplicates: {duplicates}");
}

#[tokio::test]
async fn a_poison_event_ends_in_the_dead_letter_queue_and_good_events_still_arrive() {
    let env = Env::start().await;
    // Short visibility and two receives, so the poison goes to the DLQ in seconds.
    let dev = Dev::start(
        &env,
        "poison",
        &[
            ("visibility_timeout_seconds: 60", "visibility_timeout_seconds: 10"),
            ("max_receive_count: 5", "max_receive_count: 2"),
        ],
    )
    .await;
    let (mut client, _) = connect(&dev.url, None).await;
    subscribe(&mut client, "p").await;
    wait_for_subscribers(&env, &dev.table(), "p", 1).await;

    send_event(&env, "poison", "p", "before").await;
    // An event with no entityId (through EventBridge) and a body that is not JSON (straight into SQS).
    env.events()
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source("wsstack.poison.dev")
                .detail_type("Entity Updated")
                .detail(json!({"message": "no entity"}).to_string())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let queue = env.queue_url("poison-dev-events");
    env.sqs()
        .send_message()
        .queue_url(&queue)
        .message_body("this is not json")
        .send()
        .await
        .unwrap();
    send_event(&env, "poison", "p", "after").await;

    let mut got = Vec::new();
    while got.len() < 2 {
        let message = next_message(&mut client, Duration::from_secs(20))
            .await
            .expect("the good events arrive");
        got.push(message["message"].as_str().unwrap().to_string());
    }
    got.sort();
    assert_eq!(got, vec!["after", "before"]);

    let dead_letters = env.queue_url("poison-dev-events-dlq");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut bodies = Vec::new();
    while bodies.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the poison did not reach the DLQ: {bodies:?}"
        );
        let received = env
            .sqs()
            .receive_message()
            .queue_url(&dead_letters)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for message in received.messages() {
            bodies.push(message.body().unwrap_or_default().to_string());
            env.sqs()
                .delete_message()
                .queue_url(&dead_letters)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(bodies.iter().any(|b| b == "this is not json"), "{bodies:?}");
    assert!(bodies.iter().any(|b| b.contains("no entity")), "{bodies:?}");
    assert!(
        next_message(&mut client, Duration::from_millis(500)).await.is_none(),
        "no push for the poison"
    );
}

#[tokio::test]
async fn connect_subscribe_says_subscribed_once_acknowledged_and_prints_the_acknowledgement() {
    use tokio::io::AsyncBufReadExt;
    let env = Env::start().await;
    let dev = Dev::start(&env, "cli", &[]).await;
    let mut client = tokio::process::Command::new(env!("CARGO_BIN_EXE_wsstack"))
        // Named twice: subscribed once, acknowledged once.
        .args([
            "connect",
            &dev.url,
            "--subscribe",
            "order-7",
            "--subscribe",
            "order-7",
            "--count",
            "1",
            "--timeout",
            "120",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(client.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    while !said.iter().any(|line| line == "subscribed to order-7") {
        let line = tokio::time::timeout(Duration::from_secs(60), stderr.next_line()).await;
        match line {
            Ok(Ok(Some(line))) => said.push(line),
            other => panic!("no `subscribed to order-7` ({other:?}) after: {said:?}"),
        }
    }
    // Said once the subscription is stored: the connection's record and the subscription's.
    let ids = all_connection_ids(&env, &dev.table()).await;
    assert_eq!(ids.len(), 1);
    assert_eq!(records_of(&env, &dev.table(), &ids[0]).await, 2);

    send_event(&env, "cli", "order-7", "packed").await;
    let output = tokio::time::timeout(Duration::from_secs(60), client.wait_with_output())
        .await
        .expect("connect exits after one message (the acknowledgement not counted)")
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            json!({"type": "subscribed", "entityId": "order-7", "seq": 0}),
            json!({"type": "Entity Updated", "entityId": "order-7", "message": "packed", "seq": 1}),
        ]
    );
}

/// Two stages of one stack file against one emulator each take only the events addressed to them
/// (the rule's pattern names the stage's source, which `send-event` puts on the event); before, both
/// rules matched the detail-types alone and `send-event` for `dev` reached `prod`'s clients. A third
/// stack whose rule would take `dev`'s events is refused by `up`, naming `dev`'s stack, unless its
/// file says the sharing is intended.
#[tokio::test]
async fn stages_never_hear_each_others_events_and_an_overlapping_rule_is_refused() {
    let env = Env::start().await;
    let dev = Dev::start(&env, "iso", &[]).await;
    let prod = Dev::start_stage(&env, "iso", "prod", &[], &[]).await;
    let (mut dev_client, _) = connect(&dev.url, None).await;
    subscribe(&mut dev_client, "order-42").await;
    let (mut prod_client, _) = connect(&prod.url, None).await;
    subscribe(&mut prod_client, "order-42").await;

    let send = |path: std::path::PathBuf, message: &'static str| {
        let env = &env;
        async move {
            let run = env
                .run(
                    &path,
                    &["send-event", "--entity-id", "order-42", "--message", message, "-q"],
                )
                .await;
            assert_eq!(run.code, 0, "{run}");
        }
    };
    // moto delivers to every matching rule's queue within PutEvents: had `prod`'s rule taken
    // `dev`'s event, it would be in `prod`'s queue before `prod`'s own, and its client's first push.
    send(dev.path.clone(), "for dev").await;
    let pushed = next_message(&mut dev_client, Duration::from_secs(30)).await;
    assert_eq!(pushed.expect("dev's client gets dev's event")["message"], "for dev");
    send(prod.path.clone(), "for prod").await;
    let pushed = next_message(&mut prod_client, Duration::from_secs(30)).await;
    assert_eq!(pushed.expect("prod's client gets prod's event")["message"], "for prod");
    send(dev.path.clone(), "for dev again").await;
    let pushed = next_message(&mut dev_client, Duration::from_secs(30)).await;
    assert_eq!(
        pushed.expect("dev's client gets dev's event")["message"],
        "for dev again"
    );
    for (client, stage) in [(&mut dev_client, "dev"), (&mut prod_client, "prod")] {
        let stray = next_message(client, Duration::from_secs(2)).await;
        assert!(stray.is_none(), "{stage}'s client got another stage's event: {stray:?}");
    }

    // A stack whose producers emit dev's source: its rule would take dev's events.
    let poacher = env.write_stack(
        "poacher.yaml",
        &common::stack_text(
            "poacher",
            &[("  # source: orders.service", "  source: wsstack.iso.dev")],
        ),
    );
    let refused = env.run(&poacher, &["up"]).await;
    assert_eq!(refused.code, 1, "{refused}");
    refused
        .expect_stderr("would take the same events as rule iso-dev-entity-updated of wsstack stack `iso` stage `dev`");
    refused.expect_stderr("events.shared: true");
    let rules = env.events().list_rules().send().await.unwrap();
    let names: Vec<&str> = rules.rules().iter().filter_map(|r| r.name()).collect();
    assert!(!names.contains(&"poacher-dev-entity-updated"), "{names:?}");
    // Said to be intended: created, and both stacks' rules take the event.
    let sharing = env.write_stack(
        "poacher.yaml",
        &common::stack_text(
            "poacher",
            &[(
                "  # source: orders.service",
                "  source: wsstack.iso.dev\n  shared: true",
            )],
        ),
    );
    let run = env.run(&sharing, &["up", "-q"]).await;
    assert_eq!(run.code, 0, "{run}");
}

/// One connection cannot write subscription records without end: past the stack's
/// `handlers.max_subscriptions_per_connection` its `subscribe` gets an error frame and writes
/// nothing; subscribing again to an entity it holds takes no second place, and an unsubscribe
/// gives its place back. Before, every subscribe was stored.
#[tokio::test]
async fn a_connection_holds_at_most_the_stacks_maximum_of_subscriptions() {
    let env = Env::start().await;
    let dev = Dev::start(
        &env,
        "most",
        &[(
            "max_subscriptions_per_connection: 200",
            "max_subscriptions_per_connection: 3",
        )],
    )
    .await;
    let (mut client, _) = connect(&dev.url, None).await;
    for entity in ["a", "b", "c", "b"] {
        subscribe(&mut client, entity).await;
    }
    let over = |entity: &str| json!({"action": "subscribe", "entityId": entity});
    send(&mut client, over("d")).await;
    let refusal = next_message(&mut client, Duration::from_secs(30))
        .await
        .expect("an answer");
    assert_eq!(refusal["type"], "error", "{refusal}");
    let message = refusal["message"].as_str().unwrap();
    assert!(message.contains("\"d\"") && message.contains("holds 3"), "{message}");
    let connection = all_connection_ids(&env, &dev.table()).await.remove(0);
    // The connection record and three subscriptions.
    assert_eq!(records_of(&env, &dev.table(), &connection).await, 4);

    unsubscribe(&mut client, "a").await;
    subscribe(&mut client, "d").await;
    send(&mut client, over("e")).await;
    let refusal = next_message(&mut client, Duration::from_secs(30))
        .await
        .expect("an answer");
    assert_eq!(refusal["type"], "error", "{refusal}");
    assert_eq!(records_of(&env, &dev.table(), &connection).await, 4);
    // The frames after a refusal are still served.
    send_event(&env, "most", "d", "still here").await;
    let pushed = next_message(&mut client, Duration::from_secs(30))
        .await
        .expect("a push");
    assert_eq!(pushed["message"], "still here");
}
