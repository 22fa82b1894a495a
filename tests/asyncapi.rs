//! `wsstack asyncapi` writes a document that the official AsyncAPI 3.0 JSON Schema (package
//! @asyncapi/specs, fetched by scripts/setup) accepts, checked with the reference Python validator,
//! and that follows the stack file: a route added or removed appears or disappears.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The official schema, in its form with local references (scripts/setup fetches it).
fn official_schema() -> PathBuf {
    let specs = testkit::repo_root().join(".venv/asyncapi-specs");
    let found = std::fs::read_dir(&specs).ok().and_then(|versions| {
        versions
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.path().join("package/schemas/3.0.0-without-$id.json"))
            .find(|path| path.is_file())
    });
    found.unwrap_or_else(|| panic!("no AsyncAPI 3.0.0 schema under {}: run scripts/setup", specs.display()))
}

fn validate(document: &Path) -> (bool, String) {
    let output = Command::new(testkit::repo_root().join(".venv/bin/python"))
        .arg(testkit::repo_root().join("tests/tools/validate_json_schema.py"))
        .arg(official_schema())
        .arg(document)
        .output()
        .expect("running the schema validator (scripts/setup makes .venv)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Runs `wsstack asyncapi --out` on `stack` and returns the document's path and JSON.
fn generate(dir: &Path, stack: &Path, name: &str) -> (PathBuf, Value) {
    let out = dir.join(name);
    let output = Command::new(env!("CARGO_BIN_EXE_wsstack"))
        .args(["asyncapi", "-f"])
        .arg(stack)
        .arg("--out")
        .arg(&out)
        // Offline: no region from the environment or a profile is needed.
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "wsstack asyncapi failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    (out, document)
}

/// [`generate`] for a stack file `{name}.yaml` written with `text`, into `{name}.json`.
fn generate_from(dir: &Path, name: &str, text: &str) -> (PathBuf, Value) {
    let stack = dir.join(format!("{name}.yaml"));
    std::fs::write(&stack, text).unwrap();
    generate(dir, &stack, &format!("{name}.json"))
}

#[test]
fn the_shipped_stack_gives_a_valid_asyncapi_3_document() {
    let dir = tempfile::tempdir().unwrap();
    let (path, document) = generate(dir.path(), &testkit::repo_root().join("stack.yaml"), "shipped.json");
    let (valid, report) = validate(&path);
    assert!(valid, "{report}");
    assert_eq!(document["asyncapi"], "3.0.0");
    for route in ["subscribe", "unsubscribe", "resume"] {
        assert_eq!(document["operations"][route]["action"], "receive", "{route}");
    }
    let event = &document["components"]["messages"]["entityUpdatedEvent"]["payload"]["properties"];
    assert_eq!(event["DetailType"]["const"], "Entity Updated");
}

#[test]
fn the_document_follows_the_routes_of_the_stack_file() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.yaml");
    std::fs::write(&one, "name: demo\nregion: eu-west-1\nroutes: [subscribe]\n").unwrap();
    let (path, document) = generate(dir.path(), &one, "one.json");
    assert!(validate(&path).0);
    assert!(document["operations"].get("subscribe").is_some());
    assert!(document["operations"].get("unsubscribe").is_none());
    assert!(document["components"]["messages"].get("unsubscribe").is_none());

    let (_, document) = generate_from(
        dir.path(),
        "both",
        "name: demo\nregion: eu-west-1\nroutes: [subscribe, unsubscribe]\n",
    );
    assert!(document["operations"].get("unsubscribe").is_some());
    assert_eq!(
        document["servers"]["websocket"]["variables"]["region"]["default"],
        "eu-west-1"
    );
}

#[test]
fn own_routes_are_operations_with_their_schema_and_default_takes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bootstrap"), b"#!/bin/sh\n").unwrap();
    let (path, document) = generate_from(dir.path(), "own", "name: demo\nregion: eu-west-1\nroutes:\n  - subscribe\n  - name: sendMessage\n    bootstrap: ./bootstrap\n    schema: {type: object, required: [text], properties: {text: {type: string}}}\n  - name: shout\n    bootstrap: ./bootstrap\n    replies: true\n  - name: $default\n    bootstrap: ./bootstrap\n");
    let (valid, report) = validate(&path);
    assert!(valid, "{report}");
    let messages = &document["components"]["messages"];
    let payload = &messages["sendMessage"]["payload"];
    assert_eq!(payload["allOf"][0]["properties"]["action"]["const"], "sendMessage");
    assert_eq!(payload["allOf"][1]["required"], serde_json::json!(["text"]));
    // Without a schema: an open object with the route's action.
    assert_eq!(messages["shout"]["payload"]["properties"]["action"]["const"], "shout");
    assert!(messages["shout"]["payload"].get("additionalProperties").is_none());
    let default = &document["operations"]["defaultRoute"];
    assert_eq!(default["x-wsstack-route-key"], "$default");
    assert!(
        default["summary"].as_str().unwrap().contains("no other route"),
        "{default}"
    );
    for operation in ["subscribe", "sendMessage", "shout", "defaultRoute"] {
        assert_eq!(document["operations"][operation]["action"], "receive", "{operation}");
    }
    // Two-way routes have a reply on the same connection: the acknowledgements of `subscribe`
    // (`subscribed`, or `resync` on a stack with history) or its refusal, and the body of `shout`
    // (`replies: true`); one-way routes have none.
    let reply = |operation: &str| document["operations"][operation]["reply"]["messages"][0]["$ref"].clone();
    assert_eq!(reply("subscribe"), "#/channels/connection/messages/subscribed");
    let replies = &document["operations"]["subscribe"]["reply"]["messages"];
    assert_eq!(replies[1]["$ref"], "#/channels/connection/messages/resync");
    assert_eq!(replies[2]["$ref"], "#/channels/connection/messages/error");
    assert_eq!(
        messages["subscribed"]["payload"]["properties"]["type"]["const"],
        "subscribed"
    );
    assert_eq!(reply("shout"), "#/channels/connection/messages/shoutReply");
    assert!(document["operations"]["sendMessage"].get("reply").is_none());
    assert!(document["operations"]["defaultRoute"].get("reply").is_none());
}

#[test]
fn the_validator_refuses_a_broken_document() {
    // Proves the check above can fail: the same document with an operation action AsyncAPI 3.0
    // does not have and a server without its protocol.
    let dir = tempfile::tempdir().unwrap();
    let (_, mut document) = generate(dir.path(), &testkit::repo_root().join("stack.yaml"), "good.json");
    document["operations"]["subscribe"]["action"] = Value::from("publish");
    document["servers"]["websocket"]
        .as_object_mut()
        .unwrap()
        .remove("protocol");
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, document.to_string()).unwrap();
    let (valid, report) = validate(&broken);
    assert!(!valid, "{report}");
    assert!(report.contains("/operations/subscribe"), "{report}");
}

#[test]
fn a_stack_with_auth_has_a_valid_security_section_and_an_open_one_none() {
    let dir = tempfile::tempdir().unwrap();
    let (path, document) = generate_from(dir.path(), "guarded", "name: demo\nregion: eu-west-1\nauth:\n  issuer: https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf\n  audience: my-app-client-id\n");
    let (valid, report) = validate(&path);
    assert!(valid, "{report}");
    let schemes = document["components"]["securitySchemes"].as_object().unwrap();
    let placements: Vec<(&str, &str, &str)> = schemes
        .values()
        .map(|scheme| {
            (
                scheme["type"].as_str().unwrap(),
                scheme["in"].as_str().unwrap(),
                scheme["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        placements,
        [
            ("httpApiKey", "header", "Sec-WebSocket-Protocol"),
            ("httpApiKey", "query", "access_token"),
        ]
    );
    let server_security: Vec<&str> = document["servers"]["websocket"]["security"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reference| reference["$ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        server_security,
        [
            "#/components/securitySchemes/accessTokenQuery",
            "#/components/securitySchemes/accessTokenProtocol"
        ]
    );
    // The user notification and its event are in the document with or without auth.
    assert!(document["operations"].get("pushUserNotification").is_some());
    assert_eq!(
        document["components"]["messages"]["userNotificationEvent"]["payload"]["properties"]["DetailType"]["const"],
        "Send User Push Notification"
    );

    let open = dir.path().join("open.yaml");
    std::fs::write(&open, "name: demo\nregion: eu-west-1\n").unwrap();
    let (path, document) = generate(dir.path(), &open, "open.json");
    assert!(validate(&path).0);
    assert!(document["components"].get("securitySchemes").is_none());
    assert!(document["servers"]["websocket"].get("security").is_none());
    assert!(document["operations"].get("pushUserNotification").is_some());
}
