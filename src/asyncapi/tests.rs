//! Unit tests of the AsyncAPI document's pieces (the whole document is validated in tests/asyncapi.rs).

use super::*;

fn stack(text: &str) -> Stack {
    crate::stack::parse(std::path::Path::new("stack.yaml"), text).unwrap()
}

fn template() -> Address {
    Address::Template {
        dns_suffix: "amazonaws.com".into(),
    }
}

/// Every `$ref` in the document points at something in it.
fn assert_references_resolve(document: &Value, node: &Value) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let pointer = target.strip_prefix('#').expect("local reference");
                assert!(document.pointer(pointer).is_some(), "{target} does not resolve");
            }
            map.values().for_each(|v| assert_references_resolve(document, v));
        }
        Value::Array(items) => items.iter().for_each(|v| assert_references_resolve(document, v)),
        _ => {}
    }
}

#[test]
fn every_route_of_the_stack_is_an_operation_and_nothing_else_is() {
    let both = document(&stack("name: demo\n"), Some("eu-west-1"), &template());
    assert!(both.pointer("/operations/subscribe").is_some());
    assert!(both.pointer("/operations/unsubscribe").is_some());
    assert!(both.pointer("/operations/resume").is_some());
    let one = document(
        &stack("name: demo\nroutes: [subscribe]\n"),
        Some("eu-west-1"),
        &template(),
    );
    assert!(one.pointer("/operations/subscribe").is_some());
    assert!(one.pointer("/operations/unsubscribe").is_none());
    assert!(one.pointer("/components/messages/unsubscribe").is_none());
    assert!(one.pointer("/channels/connection/messages/unsubscribe").is_none());
}

#[test]
fn resume_and_the_seq_of_every_stream_are_documented_when_the_stack_keeps_history() {
    let doc = document(&stack("name: demo\n"), Some("eu-west-1"), &template());
    assert_references_resolve(&doc, &doc);
    let replies: Vec<&str> = doc["operations"]["resume"]["reply"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["$ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        replies,
        [
            "#/channels/connection/messages/resumed",
            "#/channels/connection/messages/userResync",
            "#/channels/connection/messages/error"
        ]
    );
    let messages = &doc["components"]["messages"];
    assert_eq!(
        messages["userResync"]["payload"]["properties"]["type"]["const"],
        "resync"
    );
    assert!(messages["resume"]["payload"]["properties"]["since"].is_object());
    assert!(messages["subscribe"]["payload"]["properties"]["since"].is_object());
    for numbered in ["entityUpdated", "userNotification", "subscribed", "resync", "resumed"] {
        let payload = &messages[numbered]["payload"];
        assert!(payload["properties"]["seq"].is_object(), "{numbered}");
        assert!(
            payload["required"].as_array().unwrap().contains(&json!("seq")),
            "{numbered}"
        );
    }

    // Without history nothing is numbered, and resume only refuses.
    let off = document(
        &stack("name: demo\nhistory:\n  window_seconds: 0\n"),
        Some("eu-west-1"),
        &template(),
    );
    assert_references_resolve(&off, &off);
    let messages = &off["components"]["messages"];
    for unnumbered in ["entityUpdated", "userNotification", "subscribed"] {
        assert!(
            messages[unnumbered]["payload"]["properties"].get("seq").is_none(),
            "{unnumbered}"
        );
    }
    assert!(messages.get("resumed").is_none() && messages.get("resync").is_none());
    assert_eq!(
        off["operations"]["resume"]["reply"]["messages"],
        json!([{"$ref": "#/channels/connection/messages/error"}])
    );
}

#[test]
fn references_resolve_and_operations_name_messages_of_their_channel() {
    let doc = document(
        &stack("name: demo\nevents:\n  source: orders\n"),
        Some("eu-west-1"),
        &template(),
    );
    assert_references_resolve(&doc, &doc);
    for (name, operation) in doc["operations"].as_object().unwrap() {
        let channel = operation["channel"]["$ref"].as_str().unwrap();
        for message in operation["messages"].as_array().unwrap() {
            let target = message["$ref"].as_str().unwrap();
            assert!(
                target.starts_with(&format!("{channel}/messages/")),
                "operation {name}: {target} is not a message of {channel}"
            );
        }
    }
}

#[test]
fn events_follow_the_stack_file() {
    let doc = document(
        &stack("name: demo\nevents:\n  bus: orders-bus\n  detail_type: Order Changed\n  source: orders\n"),
        Some("eu-west-1"),
        &template(),
    );
    let event = &doc["components"]["messages"]["entityUpdatedEvent"]["payload"]["properties"];
    assert_eq!(event["DetailType"]["const"], "Order Changed");
    assert_eq!(event["Source"]["const"], "orders");
    assert_eq!(event["EventBusName"]["const"], "orders-bus");
    assert_eq!(doc["channels"]["entityUpdatedEvents"]["address"], "orders-bus");
    let push = &doc["components"]["messages"]["entityUpdated"]["payload"]["properties"];
    assert_eq!(push["type"]["const"], "Order Changed");
}

#[test]
fn a_known_host_replaces_the_template() {
    let address = Address::Host {
        host: "abc123.execute-api.eu-west-1.amazonaws.com".into(),
        pathname: "/prod".into(),
        tls: true,
    };
    let doc = document(&stack("name: demo\nstage: prod\n"), Some("eu-west-1"), &address);
    let server = &doc["servers"]["websocket"];
    assert_eq!(server["host"], "abc123.execute-api.eu-west-1.amazonaws.com");
    assert_eq!(server["pathname"], "/prod");
    assert_eq!(server["protocol"], "wss");
    assert!(server.get("variables").is_none());
    let templated = document(&stack("name: demo\nstage: prod\n"), Some("eu-west-1"), &template());
    assert_eq!(
        templated["servers"]["websocket"]["host"],
        "{apiId}.execute-api.{region}.amazonaws.com"
    );
    assert_eq!(
        templated["servers"]["websocket"]["variables"]["region"]["default"],
        "eu-west-1"
    );
}

#[test]
fn route_keys_become_map_keys() {
    assert_eq!(identifier("subscribe"), "subscribe");
    assert_eq!(identifier("$default"), "default");
    assert_eq!(identifier("send.message"), "send_message");
}
