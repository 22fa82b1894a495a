//! `wsstack dev` behind a `$connect` REQUEST authorizer, as API Gateway runs one: the stack is `up`
//! in moto, then the test adds the stack secret, the authorizer function (the handlers' binary
//! with WSSTACK_HANDLER=authorizer) and CUSTOM authorization on `$connect`, the way `auth:` will.
//! Real WebSocket clients, real handler processes, the connections table read from moto.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_apigatewayv2::types::{AuthorizationType, AuthorizerType};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime};
use base64::Engine as _;
use common::{apis_of, Env, REGION};
use harness::{all_connection_ids, connect, next_message, send, wait_for_subscribers, Dev};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const STACK: &str = "authdev";
const SECRET: &str = "a-stack-secret-of-more-than-32-bytes!";

/// `up`, then what `auth:` declares, created with the SDK.
async fn authorized_stack(env: &Env) {
    let path = env.write_stack(&format!("{STACK}.yaml"), &common::stack_text(STACK, &[]));
    let run = env.run(&path, &["up", "-q"]).await;
    assert_eq!(run.code, 0, "up: {}", run.stderr);

    let secret = aws_sdk_secretsmanager::Client::new(&env.config)
        .create_secret()
        .name(format!("{STACK}-dev-auth"))
        .secret_string(SECRET)
        .send()
        .await
        .unwrap();
    let lambda = env.lambda();
    let role = lambda
        .get_function_configuration()
        .function_name(format!("{STACK}-dev-connect"))
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    let zip = std::fs::read(testkit::repo_root().join("target/handlers/bootstrap.zip")).expect("the handlers zip");
    let function = lambda
        .create_function()
        .function_name(format!("{STACK}-dev-authorizer"))
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role)
        .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
        .environment(
            Environment::builder()
                .variables("WSSTACK_HANDLER", "authorizer")
                .variables("AUTH_SECRET_ARN", secret.arn.unwrap())
                .build(),
        )
        .send()
        .await
        .unwrap();

    let api = apis_of(env, STACK).await.remove(0).api_id.unwrap();
    let apigateway = env.apigateway();
    let authorizer = apigateway
        .create_authorizer()
        .api_id(&api)
        .name(format!("{STACK}-dev-authorizer"))
        .authorizer_type(AuthorizerType::Request)
        .authorizer_uri(format!(
            "arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{}/invocations",
            function.function_arn.unwrap()
        ))
        .send()
        .await
        .unwrap();
    let routes = apigateway.get_routes().api_id(&api).send().await.unwrap();
    let connect_route = routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some("$connect"))
        .expect("a $connect route");
    apigateway
        .update_route()
        .api_id(&api)
        .route_id(connect_route.route_id().unwrap())
        .authorization_type(AuthorizationType::Custom)
        .authorizer_id(authorizer.authorizer_id.unwrap())
        .send()
        .await
        .unwrap();
}

fn token(entities: &[&str]) -> String {
    let entities: Vec<String> = entities.iter().map(|e| e.to_string()).collect();
    wsstack_handlers::auth::mint_hs256(SECRET.as_bytes(), "user-42", Some(&entities), Duration::from_secs(600)).unwrap()
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

/// The handshake's HTTP status when refused; panics when it is accepted.
async fn refused(url: &str, protocol: Option<&str>) -> u16 {
    let mut request = url.into_client_request().unwrap();
    if let Some(protocol) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("the handshake was accepted"),
    }
}

#[tokio::test]
async fn dev_authorizes_the_handshake_like_api_gateway() {
    let env = Env::start().await;
    authorized_stack(&env).await;
    let dev = Dev::start(&env, STACK, &[]).await;
    let table = dev.table();

    // Refusals: 401, nothing written.
    let base64url =
        |value: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let expired = signed(
        SECRET.as_bytes(),
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
    for (what, protocol) in [
        ("expired", Some(format!("websocket, {expired}"))),
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
    let valid = token(&["order-*"]);
    let (mut by_header, protocol) = connect(&dev.url, Some(&format!("websocket, {valid}"))).await;
    assert_eq!(protocol.as_deref(), Some("websocket"));
    send(&mut by_header, json!({"action": "subscribe", "entityId": "order-1"})).await;
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
    send(&mut by_query, json!({"action": "subscribe", "entityId": "order-2"})).await;
    wait_for_subscribers(&env, &table, "order-2", 1).await;
    assert_eq!(all_connection_ids(&env, &table).await.len(), 2);
}
