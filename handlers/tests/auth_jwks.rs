//! The `$connect` authorizer trusting an OpenID issuer: RS256 and ES256 tokens verified against a
//! JWKS served over real HTTP on loopback, keys chosen by `kid`, a rotated key picked up, refetches
//! bounded whatever `kid`s forged tokens name, and every issuer/audience/algorithm mismatch refused.

mod auth_fixtures;
// The loopback server the JWKS stand-in runs on.
mod common;

use std::time::Duration;

use auth_fixtures::*;
use jsonwebtoken::Algorithm;
use serde_json::json;
use wsstack_handlers::auth::jwks::RefreshPolicy;
use wsstack_handlers::auth::{ClaimNames, Refusal};
use wsstack_handlers::authorizer::{self, Authorizer, Unauthorized};

fn issuer_authorizer(server: &JwksServer, min_refresh: Duration) -> Authorizer {
    let policy = RefreshPolicy {
        min_refresh,
        ..RefreshPolicy::default()
    };
    Authorizer::with_issuer(ISSUER, Some(AUDIENCE), &server.url, policy, ClaimNames::default()).unwrap()
}

/// The issuer's JWKS publishing an RSA key and an EC key, with those keys.
async fn issuer_with_rsa_and_ec_keys() -> (SigningKey, SigningKey, JwksServer) {
    let rsa = SigningKey::rsa("rsa-1.pem", "rsa-1");
    let ec = SigningKey::ec("ec-1.pem", "ec-1");
    let server = JwksServer::start(vec![rsa.jwk(), ec.jwk()]).await;
    (rsa, ec, server)
}

fn issued(sub: &str) -> serde_json::Value {
    claims(sub, json!({ "iss": ISSUER, "aud": AUDIENCE }))
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_against_the_issuers_keys() {
    let (rsa, ec, server) = issuer_with_rsa_and_ec_keys().await;
    let authorizer = issuer_authorizer(&server, Duration::from_secs(60));

    let by_rsa = rsa.sign(&issued("alice"));
    let answer = authorizer::authorize(&authorizer, event_with_protocol_token(&by_rsa))
        .await
        .unwrap();
    assert_eq!(answer["principalId"], "alice");
    // An OpenID token without the entities claim may subscribe to nothing (the stack's default).
    assert_eq!(answer["context"]["entities"], "[]");

    let by_ec = ec.sign(&claims(
        "bob",
        json!({ "iss": ISSUER, "aud": [AUDIENCE, "other"], "entities": ["order-*"] }),
    ));
    let answer = authorizer::authorize(&authorizer, authorizer_event(&[], &[("access_token", &by_ec)]))
        .await
        .unwrap();
    assert_eq!(answer["principalId"], "bob");
    assert_eq!(answer["context"]["entities"], r#"["order-*"]"#);
    assert_eq!(
        server.fetches(),
        1,
        "both keys came from one fetch, then from the cache"
    );
}

#[tokio::test]
async fn a_key_published_after_the_cache_was_filled_is_fetched_for_its_kid() {
    let old = SigningKey::rsa("rsa-1.pem", "2026-11-a");
    let new = SigningKey::rsa("rsa-2.pem", "2026-11-b");
    let server = JwksServer::start(vec![old.jwk()]).await;
    let authorizer = issuer_authorizer(&server, Duration::from_millis(300));
    assert_eq!(authorizer.verify(&old.sign(&issued("u1"))).await.unwrap().user_id, "u1");
    assert_eq!(server.fetches(), 1);

    // The issuer rotates: the new key is published next to the old one.
    server.publish(vec![old.jwk(), new.jwk()]);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let answer = authorizer::authorize(&authorizer, event_with_protocol_token(&new.sign(&issued("u2")))).await;
    assert_eq!(answer.unwrap()["principalId"], "u2");
    assert_eq!(server.fetches(), 2, "one refetch for the unknown kid");
    assert_eq!(authorizer.verify(&old.sign(&issued("u1"))).await.unwrap().user_id, "u1");
    assert_eq!(server.fetches(), 2);

    // The old key is withdrawn: once the set is refetched, its tokens no longer verify.
    server.publish(vec![new.jwk()]);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let unknown = SigningKey::rsa("rsa-1.pem", "never-published");
    assert_eq!(
        authorizer.verify(&unknown.sign(&issued("u3"))).await,
        Err(Refusal::UnknownKey)
    );
    assert_eq!(server.fetches(), 3);
    assert_eq!(
        authorizer.verify(&old.sign(&issued("u1"))).await,
        Err(Refusal::UnknownKey)
    );
}

#[tokio::test]
async fn unknown_kids_cannot_make_every_request_refetch_the_keys() {
    let key = SigningKey::rsa("rsa-1.pem", "real");
    let server = JwksServer::start(vec![key.jwk()]).await;
    let authorizer = issuer_authorizer(&server, Duration::from_secs(60));
    assert!(authorizer.verify(&key.sign(&issued("u"))).await.is_ok());
    let forger = SigningKey::ec("ec-1.pem", "unused");
    for n in 0..50 {
        // Signed with an EC key: cheaper in debug builds, and the kid is unknown either way.
        let forged = forger.sign_as(&format!("forged-{n}"), Algorithm::ES256, &issued("u"));
        assert_eq!(authorizer.verify(&forged).await, Err(Refusal::UnknownKey));
    }
    assert_eq!(server.fetches(), 1, "no refetch within min_refresh");
    assert!(
        authorizer.verify(&key.sign(&issued("u"))).await.is_ok(),
        "known keys still work"
    );
}

#[tokio::test]
async fn issuer_audience_and_algorithm_mismatches_are_refused() {
    let (rsa, ec, server) = issuer_with_rsa_and_ec_keys().await;
    let authorizer = issuer_authorizer(&server, Duration::from_secs(60));

    let rsa_public_jwk = serde_json::to_vec(&rsa.jwk()).unwrap();
    let cases = vec![
        (
            "wrong issuer",
            rsa.sign(&claims(
                "u",
                json!({"iss": "https://evil.example.com", "aud": AUDIENCE}),
            )),
            Refusal::WrongIssuer,
        ),
        (
            "no issuer",
            rsa.sign(&claims("u", json!({"aud": AUDIENCE}))),
            Refusal::WrongIssuer,
        ),
        (
            "wrong audience",
            rsa.sign(&claims("u", json!({"iss": ISSUER, "aud": "another-app"}))),
            Refusal::WrongAudience,
        ),
        (
            "no audience",
            rsa.sign(&claims("u", json!({"iss": ISSUER}))),
            Refusal::WrongAudience,
        ),
        (
            "expired",
            rsa.sign(&claims(
                "u",
                json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now() - 300}),
            )),
            Refusal::Expired,
        ),
        (
            "not yet valid",
            ec.sign(&claims(
                "u",
                json!({"iss": ISSUER, "aud": AUDIENCE, "nbf": now() + 300}),
            )),
            Refusal::NotYetValid,
        ),
        // The classic confusion: HS256 keyed with the issuer's public key.
        (
            "HS256 with the public key as secret",
            {
                let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
                header.kid = Some("rsa-1".into());
                jsonwebtoken::encode(
                    &header,
                    &issued("u"),
                    &jsonwebtoken::EncodingKey::from_secret(&rsa_public_jwk),
                )
                .unwrap()
            },
            Refusal::AlgorithmRefused("HS256".into()),
        ),
        (
            "ES256 header on an RSA kid",
            ec.sign_as("rsa-1", Algorithm::ES256, &issued("u")),
            Refusal::KeyMismatch,
        ),
        (
            "RS256 header on an EC kid",
            rsa.sign_as("ec-1", Algorithm::RS256, &issued("u")),
            Refusal::KeyMismatch,
        ),
        (
            "signed by another RSA key",
            SigningKey::rsa("rsa-2.pem", "x").sign_as("rsa-1", Algorithm::RS256, &issued("u")),
            Refusal::BadSignature,
        ),
        (
            "no kid",
            {
                let header = jsonwebtoken::Header::new(Algorithm::RS256);
                let pem = std::fs::read(format!("{}/tests/keys/rsa-1.pem", env!("CARGO_MANIFEST_DIR"))).unwrap();
                jsonwebtoken::encode(
                    &header,
                    &issued("u"),
                    &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
                )
                .unwrap()
            },
            Refusal::Malformed("header has no kid"),
        ),
    ];
    for (case, token, refusal) in cases {
        assert_eq!(authorizer.verify(&token).await, Err(refusal), "{case}");
        let answer = authorizer::authorize(&authorizer, event_with_protocol_token(&token)).await;
        assert_eq!(answer, Err(Unauthorized), "{case}");
    }
}

#[tokio::test]
async fn an_unreachable_issuer_refuses_new_tokens_but_keeps_the_keys_it_has() {
    // Nothing listens on the URL: the token is refused, the authorizer does not fail.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
    drop(listener);
    let authorizer =
        Authorizer::with_issuer(ISSUER, None, &url, RefreshPolicy::default(), ClaimNames::default()).unwrap();
    let key = SigningKey::rsa("rsa-1.pem", "k");
    assert!(matches!(
        authorizer.verify(&key.sign(&issued("u"))).await,
        Err(Refusal::KeysUnavailable(_))
    ));

    // Keys fetched once stay usable when the issuer fails after they grew old.
    let server = JwksServer::start(vec![key.jwk()]).await;
    let policy = RefreshPolicy {
        min_refresh: Duration::from_millis(100),
        max_age: Duration::from_millis(200),
        ..RefreshPolicy::default()
    };
    let authorizer = Authorizer::with_issuer(ISSUER, None, &server.url, policy, ClaimNames::default()).unwrap();
    assert!(authorizer.verify(&key.sign(&issued("u"))).await.is_ok());
    server.set_broken(true);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(authorizer.verify(&key.sign(&issued("u"))).await.is_ok());
    assert_eq!(
        server.fetches(),
        2,
        "the old set was due and refetched, and the failure kept it"
    );

    assert!(
        Authorizer::with_issuer(
            ISSUER,
            None,
            "http://issuer.example.com/jwks",
            RefreshPolicy::default(),
            ClaimNames::default()
        )
        .is_err(),
        "plain http to a remote host is refused at init"
    );
}
