//! The `$connect` authorizer with the stack secret (HS256): a valid token by header and by query
//! is allowed with the identity as context; every kind of bad token is refused with the error API
//! Gateway turns into 401; the secret comes from Secrets Manager (moto); nothing logs a secret.

mod auth_fixtures;
mod common;

use std::time::Duration;

use auth_fixtures::*;
use serde_json::{json, Value};
use wsstack_handlers::auth::{mint_hs256, ClaimNames, Refusal, UnclaimedEntities};
use wsstack_handlers::authorizer::{self, Authorizer, Unauthorized};
use wsstack_handlers::config::{AuthorizerConfig, TokenRules, TrustConfig};

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

    // A token without the entities claim: connected, but no entity (user notifications follow
    // the user id); any entity only where the stack opts in.
    let minted = mint_hs256(SECRET.as_bytes(), "user-7", None, Duration::from_secs(600)).unwrap();
    let answer = authorizer::authorize(&authorizer, authorizer_event(&[], &[("access_token", &minted)]))
        .await
        .unwrap();
    assert_allowed(&answer, "user-7", "[]");
    let opted_in = stack_authorizer().with_rules(TokenRules {
        unclaimed_entities: UnclaimedEntities::All,
        ..TokenRules::default()
    });
    let answer = authorizer::authorize(&opted_in, authorizer_event(&[], &[("access_token", &minted)]))
        .await
        .unwrap();
    assert_allowed(&answer, "user-7", r#"["*"]"#);
}

#[tokio::test]
async fn tokens_living_longer_than_the_maximum_or_with_crit_are_refused() {
    let authorizer = stack_authorizer();
    let secret = SECRET.as_bytes();
    // What `wsstack token --ttl 36500d` minted before the cap: well signed, a hundred years.
    let century = mint_hs256(secret, "user-1", None, Duration::from_secs(36_500 * 86_400)).unwrap();
    assert!(matches!(authorizer.verify(&century).await, Err(Refusal::Lifetime(_))));
    assert_eq!(
        authorizer::authorize(&authorizer, event_with_protocol_token(&century)).await,
        Err(Unauthorized)
    );
    let day = mint_hs256(secret, "user-1", None, Duration::from_secs(86_400)).unwrap();
    assert!(authorizer.verify(&day).await.is_ok(), "the default maximum is a day");
    let short = stack_authorizer().with_rules(TokenRules {
        max_lifetime_seconds: 600,
        ..TokenRules::default()
    });
    assert!(matches!(short.verify(&day).await, Err(Refusal::Lifetime(_))));
    let no_iat = hs256(secret, &json!({"sub": "user-1", "exp": now() + 60}));
    assert!(matches!(authorizer.verify(&no_iat).await, Err(Refusal::BadClaims(_))));

    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.crit = Some(vec!["b64".to_string()]);
    let critical = jsonwebtoken::encode(
        &header,
        &claims("user-1", json!({})),
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap();
    assert_eq!(authorizer.verify(&critical).await, Err(Refusal::CriticalHeader));
    assert_eq!(
        authorizer::authorize(&authorizer, event_with_protocol_token(&critical)).await,
        Err(Unauthorized)
    );
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
            hs256(secret, &json!({"iat": now(), "exp": now() + 60})),
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
        rules: TokenRules::default(),
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

/// A rotation in Secrets Manager (moto), as `wsstack rotate-secret` does it with PutSecretValue:
/// a warm authorizer picks the new key up on the first token signed with it, keeps accepting the
/// previous key for one maximum lifetime after the rotation, and never the key before that.
#[tokio::test(flavor = "current_thread")]
async fn a_rotated_secret_keeps_the_previous_key_for_one_lifetime_only() {
    const KEY_2: &str = "second-stack-key-for-tests-only-7Hq2nV0xKp3L";
    const KEY_3: &str = "third-stack-key-for-tests-only-Zt5wR1yMb8cD2";
    // Short, so that the window can end within the test; the cache follows it (at most this old).
    const LIFETIME: u64 = 6;
    let moto = testkit::Moto::start().expect("starting moto");
    let sdk = common::sdk_config(&moto.endpoint()).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let arn = create_stack_secret(&secrets).await;
    let config = AuthorizerConfig {
        trust: TrustConfig::Secret {
            secret_arn: arn.clone(),
        },
        claims: ClaimNames::default(),
        rules: TokenRules {
            max_lifetime_seconds: LIFETIME,
            ..TokenRules::default()
        },
    };
    let authorizer = Authorizer::from_config(&config, &sdk).await.unwrap();
    let by = |key: &str| mint_hs256(key.as_bytes(), "user-1", None, Duration::from_secs(LIFETIME)).unwrap();
    let rotate = |key: &'static str| {
        let secrets = secrets.clone();
        let arn = arn.clone();
        async move {
            secrets
                .put_secret_value()
                .secret_id(&arn)
                .secret_string(key)
                .send()
                .await
                .unwrap();
            // Past the refetch rate limit of the authorizer's last read.
            tokio::time::sleep(Duration::from_millis(2_100)).await;
        }
    };
    assert!(authorizer.verify(&by(SECRET)).await.is_ok());
    let too_long = mint_hs256(SECRET.as_bytes(), "user-1", None, Duration::from_secs(LIFETIME + 1)).unwrap();
    assert!(matches!(authorizer.verify(&too_long).await, Err(Refusal::Lifetime(_))));

    rotate(KEY_2).await;
    assert!(
        authorizer.verify(&by(KEY_2)).await.is_ok(),
        "the new key, picked up warm"
    );
    assert!(
        authorizer.verify(&by(SECRET)).await.is_ok(),
        "the previous key, within its window"
    );

    rotate(KEY_3).await;
    assert!(authorizer.verify(&by(KEY_3)).await.is_ok());
    assert!(
        authorizer.verify(&by(KEY_2)).await.is_ok(),
        "the previous key, within its window"
    );
    assert_eq!(
        authorizer.verify(&by(SECRET)).await,
        Err(Refusal::BadSignature),
        "the key before the previous one"
    );

    // Once the window since the last rotation has passed (CreatedDate has whole seconds).
    tokio::time::sleep(Duration::from_secs(LIFETIME + 1)).await;
    assert_eq!(
        authorizer.verify(&by(KEY_2)).await,
        Err(Refusal::BadSignature),
        "the previous key after its window"
    );
    assert!(authorizer.verify(&by(KEY_3)).await.is_ok());
    // A cold start reads the same.
    let cold = Authorizer::from_config(&config, &sdk).await.unwrap();
    assert_eq!(cold.verify(&by(KEY_2)).await, Err(Refusal::BadSignature));
    assert!(cold.verify(&by(KEY_3)).await.is_ok());
}
