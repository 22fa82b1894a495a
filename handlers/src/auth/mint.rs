//! Minting HS256 tokens with the stack's secret, for `wsstack token` and tests. The claims are the
//! ones [`super::identity`] reads back; nothing here knows where the secret is kept.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

use super::identity::{self, ClaimNames};
use super::token::MIN_SECRET_BYTES;

/// A token for `user_id`, valid from now for `ttl`, limited to `entities` when given (without,
/// the token has no entities claim: the authorizer then allows what the stack's
/// `entities_when_unclaimed` says, by default nothing), with the default claim names.
pub fn mint_hs256(secret: &[u8], user_id: &str, entities: Option<&[String]>, ttl: Duration) -> Result<String> {
    mint_hs256_with(secret, &ClaimNames::default(), user_id, entities, ttl)
}

/// [`mint_hs256`] for a stack that names its claims differently.
pub fn mint_hs256_with(
    secret: &[u8],
    names: &ClaimNames,
    user_id: &str,
    entities: Option<&[String]>,
    ttl: Duration,
) -> Result<String> {
    ensure!(
        secret.len() >= MIN_SECRET_BYTES,
        "the HS256 secret is {} bytes; at least {MIN_SECRET_BYTES} are required",
        secret.len()
    );
    if let Some(problem) = identity::user_id_problem(user_id) {
        anyhow::bail!("user id {user_id:?}: {problem}");
    }
    ensure!(
        ttl >= Duration::from_secs(1),
        "the token's lifetime must be at least one second"
    );
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = Map::new();
    claims.insert(names.user.clone(), Value::String(user_id.to_string()));
    if let Some(entities) = entities {
        identity::check_patterns(entities).map_err(|problem| anyhow::anyhow!("entities: {problem}"))?;
        claims.insert(names.entities.clone(), Value::from(entities.to_vec()));
    }
    claims.insert("iat".to_string(), Value::from(now));
    claims.insert("exp".to_string(), Value::from(now.saturating_add(ttl.as_secs())));
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .context("signing the token")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::identity::Identity;
    use crate::auth::token::{Expectations, Refusal, SecretVerifier};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_minted_token_verifies_and_carries_the_identity() {
        let entities = vec!["order-*".to_string(), "user-42".to_string()];
        let token = mint_hs256(SECRET, "user-42", Some(&entities), Duration::from_secs(3600)).unwrap();
        let claims = SecretVerifier::new(SECRET, Expectations::default())
            .unwrap()
            .verify(&token)
            .unwrap();
        let identity = Identity::from_claims(&claims, &ClaimNames::default(), Default::default()).unwrap();
        assert_eq!(identity.user_id, "user-42");
        assert_eq!(identity.entities, entities);
        let exp = claims["exp"].as_u64().unwrap();
        let iat = claims["iat"].as_u64().unwrap();
        assert_eq!(exp - iat, 3600);
    }

    #[test]
    fn another_secret_does_not_verify_it() {
        let token = mint_hs256(SECRET, "u", None, Duration::from_secs(60)).unwrap();
        let other = SecretVerifier::new(b"another secret of thirty-two b..", Expectations::default()).unwrap();
        assert_eq!(other.verify(&token), Err(Refusal::BadSignature));
    }

    #[test]
    fn bad_requests_are_refused_with_the_reason() {
        assert!(mint_hs256(b"short", "u", None, Duration::from_secs(60)).is_err());
        assert!(mint_hs256(SECRET, "", None, Duration::from_secs(60)).is_err());
        let empty = vec![String::new()];
        let error = mint_hs256(SECRET, "u", Some(&empty), Duration::from_secs(60)).unwrap_err();
        assert!(error.to_string().contains("entities"), "{error}");
    }
}
