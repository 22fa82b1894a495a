//! `wsstack dev` behind the `$connect` REQUEST authorizer that `auth: {secret: generated}` declares,
//! as API Gateway runs one: dev's own `up` creates the stack secret, the authorizer function (the
//! handlers' binary with WSSTACK_HANDLER=authorizer) and CUSTOM authorization on `$connect`; dev
//! reads them back from the emulator. Real WebSocket clients, real handler processes, tokens from
//! `wsstack token`, the connections table read from moto.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::Env;
use harness::{all_connection_ids, connect, next_message, refused, send, subscribe, wait_for_subscribers, Dev};
use serde_json::json;

const STACK: &str = "authdev";

/// The shipped stack file with `auth:` turned on.
const WITH_AUTH: (&str, &str) = ("# Who may connect.", "auth:\n  secret: generated\n\n# Who may connect.");

/// The stack's secret, as the authorizer reads it (for tokens `wsstack token` refuses to mint).
async fn stack_secret(env: &Env) -> String {
    aws_sdk_secretsmanager::Client::new(&env.config)
        .get_secret_value()
        .secret_id(format!("wsstack/{STACK}-dev/auth-key"))
        .send()
        .await
        .expect("up made the stack secret")
        .secret_string
        .expect("a text secret")
}

/// `wsstack token` for user-42, limited to `entities`.
async fn token(env: &Env, entities: &str) -> String {
    let path = env.dir.path().join(format!("{STACK}.yaml"));
    let run = env
        .run(
            &path,
            &["token", "--user-id", "user-42", "--entities", entities, "--ttl", "10m"],
        )
        .await;
    assert_eq!(run.code, 0, "wsstack token: {}", run.stderr);
    run.stdout.trim().to_string()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn signed(secret: &[u8], claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test]
async fn dev_authorizes_the_handshake_like_api_gateway() {
    let env = Env::start().await;
    let dev = Dev::start(&env, STACK, &[WITH_AUTH]).await;
    let table = dev.table();
    let secret = stack_secret(&env).await;

    // Refusals: 401, nothing written.
    let base64url =
        |value: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let expired = signed(
        secret.as_bytes(),
        json!({"sub": "user-42", "iat": now() - 7200, "exp": now() - 3600}),
    );
    let forged = signed(
        b"another-secret-of-more-than-32-bytes!!",
        json!({"sub": "user-42", "exp": now() + 600}),
    );
    let alg_none = format!(
        "{}.{}.",
        base64url(json!({"alg": "none", "typ": "JWT"})),
        base64url(json!({"sub": "user-42", "exp": now() + 600}))
    );
    let not_yet_valid = signed(
        secret.as_bytes(),
        json!({"sub": "user-42", "nbf": now() + 3600, "exp": now() + 7200}),
    );
    for (what, protocol) in [
        ("expired", Some(format!("websocket, {expired}"))),
        ("not yet valid", Some(format!("websocket, {not_yet_valid}"))),
        ("malformed", Some("websocket, not-a.jwt".to_string())),
        ("bad signature", Some(format!("websocket, {forged}"))),
        ("alg none", Some(format!("websocket, {alg_none}"))),
        ("missing", Some("websocket".to_string())),
        ("missing, no protocol", None),
    ] {
        assert_eq!(refused(&dev.url, protocol.as_deref()).await, 401, "{what}");
    }
    assert_eq!(
        refused(&format!("{}?access_token={expired}", dev.url), None).await,
        401,
        "expired in the query"
    );
    assert!(
        all_connection_ids(&env, &table).await.is_empty(),
        "a refused handshake wrote to the table"
    );

    // A valid token in the protocol header: connected, `websocket` echoed, limited to its entities.
    let valid = token(&env, "order-*").await;
    let (mut by_header, protocol) = connect(&dev.url, Some(&format!("websocket, {valid}"))).await;
    assert_eq!(protocol.as_deref(), Some("websocket"));
    subscribe(&mut by_header, "order-1").await;
    wait_for_subscribers(&env, &table, "order-1", 1).await;
    send(&mut by_header, json!({"action": "subscribe", "entityId": "user-9"})).await;
    let refusal = next_message(&mut by_header, Duration::from_secs(20))
        .await
        .expect("the error frame");
    assert_eq!(refusal["type"], "error", "{refusal}");
    assert!(refusal["message"].as_str().unwrap().contains("user-9"), "{refusal}");
    wait_for_subscribers(&env, &table, "user-9", 0).await;

    // A valid token in the query string.
    let (mut by_query, _) = connect(&format!("{}?access_token={valid}", dev.url), None).await;
    subscribe(&mut by_query, "order-2").await;
    wait_for_subscribers(&env, &table, "order-2", 1).await;
    assert_eq!(all_connection_ids(&env, &table).await.len(), 2);
}
