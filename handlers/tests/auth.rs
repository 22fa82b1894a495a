//! The `$connect` authorizer with the stack secret (HS256): a valid token by header and by query
//! is allowed with the identity as context; every kind of bad token is refused with the error API
//! Gateway turns into 401; the secret comes from Secrets Manager (moto); nothing logs a secret.

mod auth_fixtures;
mod common;

use std::time::Duration;

use auth_fixtures::*;
use serde_json::{json, Value};
use wsstack_handlers::auth::{mint_hs256, ClaimNames, Refusal};
use wsstack_handlers::authorizer::{self, Authorizer, Unauthorized};
use wsstack_handlers::config::{AuthorizerConfig, TrustConfig};

fn stack_authorizer() -> Authorizer {
    Authorizer::with_secret(SECRET.as_bytes(), ClaimNames::default()).unwrap()
}

fn assert_allowed(answer: &Value, user_id: &str, entities: &str) {
    assert_eq!(answer["principalId"], user_id);
    assert_eq!(
        answer["policyDocument"],
        json!({
            "Version": "2012-10-17",
            "Statement": [{ "Action": "execute-api:Invoke", "Effect": "Allow", "Resource": METHOD_ARN }]
        })
    );
    assert_eq!(answer["context"], json!({ "userId": user_id, "entities": entities }));
}

#[tokio::test]
async fn a_valid_token_is_allowed_by_protocol_header_and_by_query() {
    let authorizer = stack_authorizer();
    let token = hs256(
        SECRET.as_bytes(),
        &claims("user-42", json!({"entities": ["order-*", "user-42"]})),
    );

    let answer = authorizer::authorize(&authorizer, event_with_protocol_token(&token))
        .await
        .unwrap();
    assert_allowed(&answer, "user-42", r#"["order-*","user-42"]"#);

    let by_query = authorizer_event(&[], &[("access_token", &token)]);
    let answer = authorizer::authorize(&authorizer, by_query).await.unwrap();
    assert_allowed(&answer, "user-42", r#"["order-*","user-42"]"#);

    // The token minted for `wsstack token`, without entities: any entity.
    let minted = mint_hs256(SECRET.as_bytes(), "user-7", None, Duration::from_secs(600)).unwrap();
    let answer = authorizer::authorize(&authorizer, authorizer_event(&[], &[("access_token", &minted)]))
        .await
        .unwrap();
    assert_allowed(&answer, "user-7", r#"["*"]"#);
}

/// Every way a token can be wrong, each with the refusal the verifier must name.
fn bad_tokens() -> Vec<(&'static str, String, Refusal)> {
    let secret = SECRET.as_bytes();
    let header_none = base64url(&json!({"alg": "none", "typ": "JWT"}));
    let payload = base64url(&claims("user-1", json!({})));
    let valid = hs256(secret, &claims("user-1", json!({})));
    let (head, rest) = valid.split_once('.').unwrap();
    let (body, signature) = rest.split_once('.').unwrap();
    let flipped = altered(signature);
    let forged_body = base64url(&claims("admin", json!({})));
    vec![
        (
            "expired",
            hs256(secret, &claims("user-1", json!({"exp": now() - 120}))),
            Refusal::Expired,
        ),
        (
            "not yet valid",
            hs256(secret, &claims("user-1", json!({"nbf": now() + 600}))),
            Refusal::NotYetValid,
        ),
        (
            "no exp",
            hs256(secret, &json!({"sub": "user-1"})),
            Refusal::BadClaims("claim exp is missing".into()),
        ),
        (
            "other secret",
            hs256(b"another-secret-of-at-least-32-bytes!!", &claims("user-1", json!({}))),
            Refusal::BadSignature,
        ),
        (
            "altered signature",
            format!("{head}.{body}.{flipped}"),
            Refusal::BadSignature,
        ),
        (
            "altered claims",
            format!("{head}.{forged_body}.{signature}"),
            Refusal::BadSignature,
        ),
        (
            "alg none",
            format!("{header_none}.{payload}."),
            Refusal::AlgorithmRefused("none".into()),
        ),
        (
            "alg none with a signature",
            format!("{header_none}.{payload}.{signature}"),
            Refusal::AlgorithmRefused("none".into()),
        ),
        (
            "not a JWT",
            "hello".to_string(),
            Refusal::Malformed("not three dot-separated parts"),
        ),
        (
            "garbage parts",
            "a.b.c".to_string(),
            Refusal::Malformed("header is not base64url"),
        ),
        (
            "header not JSON",
            "bm90IGpzb24.e30.c2ln".to_string(),
            Refusal::Malformed("header is not JSON"),
        ),
        (
            "header without alg",
            "e30.e30.c2ln".to_string(),
            Refusal::Malformed("header has no alg"),
        ),
        (
            "no user",
            hs256(secret, &json!({"exp": now() + 60})),
            Refusal::BadClaims("claim sub is missing".into()),
        ),
        (
            "entities not a list",
            hs256(secret, &claims("u", json!({"entities": "order-*"}))),
            Refusal::BadClaims("claim entities must be a list of strings".into()),
        ),
    ]
}

fn base64url(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The signature with one bit of its first byte flipped, encoded again: still well-formed base64url
/// whatever the signature. (Changing the last character instead can set one of the padding bits a
/// 32-byte signature's last character must leave zero, which makes the token malformed, not badly
/// signed; whether it did depended on the second the token was minted in.)
fn altered(signature: &str) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut bytes = engine.decode(signature).expect("a base64url signature");
    bytes[0] ^= 0x01;
    engine.encode(bytes)
}

#[tokio::test]
async fn every_bad_or_missing_token_is_refused_as_unauthorized() {
    let authorizer = stack_authorizer();
    for (case, token, refusal) in bad_tokens() {
        assert_eq!(authorizer.verify(&token).await, Err(refusal), "{case}");
        for event in [
            event_with_protocol_token(&token),
            authorizer_event(&[], &[("access_token", &token)]),
        ] {
            let answer = authorizer::authorize(&authorizer, event).await;
            assert_eq!(answer, Err(Unauthorized), "{case}");
        }
    }
    for (case, event) in [
        ("no token at all", authorizer_event(&[], &[])),
        (
            "only websocket offered",
            authorizer_event(&[("Sec-WebSocket-Protocol", "websocket")], &[]),
        ),
        ("empty query token", authorizer_event(&[], &[("access_token", "")])),
    ] {
        assert_eq!(
            authorizer::authorize(&authorizer, event).await,
            Err(Unauthorized),
            "{case}"
        );
    }
}

#[test]
fn a_refusal_reaches_the_runtime_api_as_the_error_message_unauthorized() {
    // API Gateway answers 401 only for a function error whose errorMessage is "Unauthorized".
    let diagnostic = lambda_runtime::Diagnostic::from(Unauthorized);
    assert_eq!(diagnostic.error_message, "Unauthorized");
    assert_eq!(diagnostic.error_type, "Unauthorized");
}

#[tokio::test(flavor = "current_thread")]
async fn the_secret_is_read_from_secrets_manager_and_never_logged() {
    let moto = testkit::Moto::start().expect("starting moto");
    let sdk = common::sdk_config(&moto.endpoint()).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let arn = create_stack_secret(&secrets).await;
    let config = AuthorizerConfig {
        trust: TrustConfig::Secret {
            secret_arn: arn.clone(),
        },
        claims: ClaimNames::default(),
    };

    let logs = LogCapture::default();
    let guard = logs.install();
    let authorizer = Authorizer::from_config(&config, &sdk).await.unwrap();
    tracing::info!(?authorizer, "initialized");
    let token = mint_hs256(SECRET.as_bytes(), "user-9", None, Duration::from_secs(60)).unwrap();
    let answer = authorizer::authorize(&authorizer, event_with_protocol_token(&token)).await;
    assert_eq!(answer.unwrap()["principalId"], "user-9");
    let mut tokens = vec![token];
    for (_, bad, _) in bad_tokens() {
        assert_eq!(
            authorizer::authorize(&authorizer, authorizer_event(&[], &[("access_token", &bad)])).await,
            Err(Unauthorized)
        );
        tokens.push(bad);
    }
    drop(guard);

    let text = logs.text();
    assert!(
        text.contains(r#""message":"authorized""#) && text.contains(r#""message":"refused""#),
        "the log was captured: {text}"
    );
    assert!(!text.contains(SECRET), "the secret is in the log");
    for token in tokens.iter().filter(|token| token.len() > 8) {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!text.contains(token.as_str()), "a token is in the log: {token}");
        if signature.len() > 8 {
            assert!(!text.contains(signature), "a signature is in the log");
        }
    }

    // A short secret in Secrets Manager is a clear init error that does not quote it either.
    secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("too-short")
        .send()
        .await
        .unwrap();
    let error = Authorizer::from_config(&config, &sdk).await.unwrap_err();
    let error = format!("{error:#}");
    assert!(error.contains(&arn) && error.contains("at least 32"), "{error}");
    assert!(!error.contains("too-short"), "{error}");
}
