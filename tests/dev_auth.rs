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
    // Well signed with the stack's key, but a hundred years long (what `--ttl 36500d` minted),
    // or with iat far ahead to hide it, or with a `crit` extension nobody here understands.
    let century = signed(
        secret.as_bytes(),
        json!({"sub": "user-42", "entities": ["*"], "iat": now(), "exp": now() + 36_500 * 86_400}),
    );
    let iat_ahead = signed(
        secret.as_bytes(),
        json!({"sub": "user-42", "iat": now() + 36_500 * 86_400, "exp": now() + 36_500 * 86_400 + 60}),
    );
    let no_iat = signed(secret.as_bytes(), json!({"sub": "user-42", "exp": now() + 600}));
    let mut critical_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    critical_header.crit = Some(vec!["b64".to_string()]);
    let critical = jsonwebtoken::encode(
        &critical_header,
        &json!({"sub": "user-42", "iat": now(), "exp": now() + 600}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    for (what, protocol) in [
        ("expired", Some(format!("websocket, {expired}"))),
        ("not yet valid", Some(format!("websocket, {not_yet_valid}"))),
        ("malformed", Some("websocket, not-a.jwt".to_string())),
        ("bad signature", Some(format!("websocket, {forged}"))),
        ("alg none", Some(format!("websocket, {alg_none}"))),
        ("a hundred years long", Some(format!("websocket, {century}"))),
        ("issued a hundred years ahead", Some(format!("websocket, {iat_ahead}"))),
        ("no iat", Some(format!("websocket, {no_iat}"))),
        ("crit header", Some(format!("websocket, {critical}"))),
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

    // A token without the entities claim (as OpenID issuers mint them): connected, user
    // notifications arrive, but no entity may be subscribed to, not even one named like the user.
    let unclaimed = signed(
        secret.as_bytes(),
        json!({"sub": "user-77", "iat": now(), "exp": now() + 600}),
    );
    let (mut unclaimed, _) = connect(&dev.url, Some(&format!("websocket, {unclaimed}"))).await;
    for entity in ["order-9", "user-77"] {
        send(&mut unclaimed, json!({"action": "subscribe", "entityId": entity})).await;
        let refusal = next_message(&mut unclaimed, Duration::from_secs(20))
            .await
            .expect("the error frame");
        assert_eq!(refusal["type"], "error", "{refusal}");
        assert!(refusal["message"].as_str().unwrap().contains(entity), "{refusal}");
        wait_for_subscribers(&env, &table, entity, 0).await;
    }
    let path = env.dir.path().join(format!("{STACK}.yaml"));
    let run = env
        .run(&path, &["send-event", "--user-id", "user-77", "--message", "for you"])
        .await;
    assert_eq!(run.code, 0, "{run}");
    let notification = next_message(&mut unclaimed, Duration::from_secs(30)).await;
    assert_eq!(
        notification,
        Some(json!({"type": "User Push Notification", "message": "for you", "seq": 1}))
    );

    // `wsstack token` mints neither: it wants the entities said, and a lifetime within the stack's.
    let run = env.run(&path, &["token", "--user-id", "user-42"]).await;
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stderr.contains("--entities") && run.stderr.contains("--all-entities"),
        "{run}"
    );
    let run = env
        .run(
            &path,
            &["token", "--user-id", "user-42", "--all-entities", "--ttl", "36500d"],
        )
        .await;
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("max_token_lifetime_seconds"), "{run}");
    assert!(run.stdout.is_empty(), "{run}");
    let everything = env
        .run(
            &path,
            &["token", "--user-id", "user-42", "--all-entities", "--ttl", "1d"],
        )
        .await;
    assert_eq!(everything.code, 0, "{everything}");
    let (mut everything, _) = connect(&dev.url, Some(&format!("websocket, {}", everything.stdout.trim()))).await;
    subscribe(&mut everything, "invoice-3").await;
}

/// The shipped stack file with `auth:` and a short maximum token lifetime, so that the window the
/// previous key keeps after a rotation ends within the test.
const SHORT_LIVED: (&str, &str) = (
    "# Who may connect.",
    "auth:\n  secret: generated\n  max_token_lifetime_seconds: 20\n\n# Who may connect.",
);
const LIFETIME: u64 = 20;

/// The key of the running dev's authorizer has not been read again for its refetch rate limit
/// (2 s) once this has passed since its last read.
async fn past_the_refetch_limit() {
    tokio::time::sleep(Duration::from_millis(2_100)).await;
}

async fn connects(dev: &Dev, token: &str) -> bool {
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(dev.url.as_str()).unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", format!("websocket, {token}").parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => true,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) if response.status() == 401 => false,
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[tokio::test]
async fn rotate_secret_logs_nobody_out_and_retires_the_old_key_after_one_lifetime() {
    let env = Env::start().await;
    let dev = Dev::start(&env, STACK, &[SHORT_LIVED]).await;
    let path = env.dir.path().join(format!("{STACK}.yaml"));
    let wsstack_token = |ttl: &'static str| {
        let (env, path) = (&env, path.clone());
        async move {
            let run = env
                .run(
                    &path,
                    &["token", "--user-id", "user-42", "--all-entities", "--ttl", ttl],
                )
                .await;
            assert_eq!(run.code, 0, "wsstack token: {run}");
            run.stdout.trim().to_string()
        }
    };
    let by = |key: &str| {
        signed(
            key.as_bytes(),
            json!({"sub": "user-42", "iat": now(), "exp": now() + LIFETIME}),
        )
    };
    let run = env
        .run(&path, &["token", "--user-id", "u", "--all-entities", "--ttl", "21s"])
        .await;
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("20 s"), "{run}");

    let key_1 = stack_secret(&env).await;
    let before = wsstack_token("20s").await;
    assert!(connects(&dev, &before).await, "a token of the first key");

    let run = env.run(&path, &["rotate-secret"]).await;
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("accepted until"), "{run}");
    let key_2 = stack_secret(&env).await;
    assert_ne!(key_1, key_2);
    assert!(!run.stdout.contains(&key_2) && !run.stderr.contains(&key_2) && !run.stdout.contains(&key_1));
    past_the_refetch_limit().await;
    assert!(
        connects(&dev, &wsstack_token("20s").await).await,
        "the new key, on a warm authorizer"
    );
    assert!(connects(&dev, &before).await, "the old token after the rotation");

    // A second rotation within the window only on purpose; then the first key is refused at once.
    let run = env.run(&path, &["rotate-secret"]).await;
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("--force"), "{run}");
    assert_eq!(stack_secret(&env).await, key_2, "nothing rotated");
    env.run(&path, &["rotate-secret", "--force"]).await.expect_exit(0);
    let key_3 = stack_secret(&env).await;
    past_the_refetch_limit().await;
    assert!(connects(&dev, &by(&key_3)).await);
    assert!(!connects(&dev, &by(&key_1)).await, "the key before the previous one");
    assert!(connects(&dev, &by(&key_2)).await, "the previous key within its window");

    // A leaked previous key stops working once the window since the rotation has passed.
    tokio::time::sleep(Duration::from_secs(LIFETIME + 1)).await;
    assert!(!connects(&dev, &by(&key_2)).await, "the previous key after its window");
    assert!(connects(&dev, &by(&key_3)).await);
}
