//! The `$connect` REQUEST authorizer: finds the token (`Sec-WebSocket-Protocol: websocket, <token>`
//! or `?access_token=`), verifies it, and answers an Allow policy with the identity as context, or
//! the error "Unauthorized" that makes API Gateway answer 401. It never logs a token or a secret.
//!
//! With the stack's secret it trusts Secrets Manager's AWSCURRENT version, and AWSPREVIOUS for one
//! maximum token lifetime after the rotation that retired it (the current version's CreatedDate),
//! so `wsstack rotate-secret` logs nobody out and a leaked old key stops working after that window.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use aws_lambda_events::http::HeaderMap;
use aws_types::SdkConfig;
use serde_json::{json, Value};

use crate::auth::jwks::{KeySet, RefreshPolicy};
use crate::auth::token::{self, Claims, Expectations, Refusal, SecretVerifier, StackKeys};
use crate::auth::{ClaimNames, Identity};
use crate::config::{AuthorizerConfig, TokenRules, TrustConfig};

/// The sub-protocol a browser client offers next to its token, and the one `$connect` echoes.
pub const WEBSOCKET_PROTOCOL: &str = "websocket";
/// The query parameter that may carry the token instead.
pub const TOKEN_QUERY_PARAMETER: &str = "access_token";
const PROTOCOL_HEADER: &str = "sec-websocket-protocol";

/// The refusal API Gateway turns into 401: for a Lambda REQUEST authorizer that is a function error
/// whose message is exactly `Unauthorized` (a Deny policy would be 403, any other error 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unauthorized")
    }
}

impl std::error::Error for Unauthorized {}

impl From<Unauthorized> for lambda_runtime::Diagnostic {
    fn from(_: Unauthorized) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "Unauthorized".to_string(),
            error_message: "Unauthorized".to_string(),
        }
    }
}

/// Least time between two reads of the stack secret: a flood of badly signed tokens costs at most
/// one read (two GetSecretValue calls) per this much per process.
const MIN_KEY_REFETCH: Duration = Duration::from_secs(2);
/// Longest a process trusts the keys it read, or the maximum token lifetime if shorter: until it
/// reads again, the key a rotation retired is still its current key, with no window ending.
const MAX_KEY_AGE: Duration = Duration::from_secs(300);

/// Where the stack's keys are read again from; `None` for fixed keys (tests).
struct SecretSource {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

struct CachedKeys {
    keys: StackKeys,
    fetched_at: Instant,
    attempted_at: Instant,
}

/// The stack's keys, cached per process and read again when old or when a token's signature
/// fails (a rotation since the last read: the token may be signed with the new key).
struct StackSecret {
    source: Option<SecretSource>,
    cache: tokio::sync::Mutex<CachedKeys>,
}

impl StackSecret {
    fn new(keys: StackKeys, source: Option<SecretSource>) -> StackSecret {
        let now = Instant::now();
        StackSecret {
            source,
            cache: tokio::sync::Mutex::new(CachedKeys {
                keys,
                fetched_at: now,
                attempted_at: now,
            }),
        }
    }

    async fn verify(&self, token: &str, max_lifetime_seconds: u64) -> Result<Claims, Refusal> {
        let now = jsonwebtoken::get_current_timestamp();
        let mut cache = self.cache.lock().await;
        let Some(source) = &self.source else {
            return cache.keys.verify(token, now);
        };
        let max_age = MAX_KEY_AGE.min(Duration::from_secs(max_lifetime_seconds));
        let min_refetch = MIN_KEY_REFETCH.min(max_age);
        if cache.fetched_at.elapsed() >= max_age && cache.attempted_at.elapsed() >= min_refetch {
            refresh(source, &mut cache, max_lifetime_seconds).await;
        }
        match cache.keys.verify(token, now) {
            Err(Refusal::BadSignature) if cache.attempted_at.elapsed() >= min_refetch => {
                refresh(source, &mut cache, max_lifetime_seconds).await;
                cache.keys.verify(token, now)
            }
            other => other,
        }
    }
}

/// Reads the keys again; on failure keeps those it had (a Secrets Manager hiccup must not lock
/// everyone out) and says so in the log.
async fn refresh(source: &SecretSource, cache: &mut CachedKeys, max_lifetime_seconds: u64) {
    cache.attempted_at = Instant::now();
    match read_keys(&source.client, &source.secret_id, max_lifetime_seconds).await {
        Ok(keys) => {
            tracing::info!(rotated = keys.previous.is_some(), "read the stack keys");
            cache.keys = keys;
            cache.fetched_at = Instant::now();
        }
        Err(error) => {
            tracing::warn!(error = format!("{error:#}"), "could not read the stack keys again");
        }
    }
}

// Both caches boxed: they differ in size, and the enum need not be as large as the larger.
enum Trust {
    Secret(Box<StackSecret>),
    Issuer { expect: Expectations, keys: Box<KeySet> },
}

/// A verifier, the claim names and the token rules, built once per process.
pub struct Authorizer {
    trust: Trust,
    claims: ClaimNames,
    rules: TokenRules,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let trust = match &self.trust {
            Trust::Secret(_) => "stack secret (HS256)".to_string(),
            Trust::Issuer { keys, .. } => format!("issuer keys {keys:?}"),
        };
        f.debug_struct("Authorizer")
            .field("trust", &trust)
            .field("claims", &self.claims)
            .field("rules", &self.rules)
            .finish()
    }
}

impl Authorizer {
    /// Builds the authorizer from its configuration, reading the stack's keys from Secrets Manager
    /// (and again after a rotation, see [`StackSecret`]).
    pub async fn from_config(config: &AuthorizerConfig, sdk: &SdkConfig) -> Result<Authorizer> {
        let authorizer = match &config.trust {
            TrustConfig::Secret { secret_arn } => {
                let client = aws_sdk_secretsmanager::Client::new(sdk);
                let keys = read_keys(&client, secret_arn, config.rules.max_lifetime_seconds)
                    .await
                    .with_context(|| format!("the secret in {secret_arn}"))?;
                let source = SecretSource {
                    client,
                    secret_id: secret_arn.clone(),
                };
                Authorizer {
                    trust: Trust::Secret(Box::new(StackSecret::new(keys, Some(source)))),
                    claims: config.claims.clone(),
                    rules: TokenRules::default(),
                }
            }
            TrustConfig::Issuer {
                issuer,
                audience,
                jwks_url,
            } => Authorizer::with_issuer(
                issuer,
                audience.as_deref(),
                jwks_url,
                RefreshPolicy::default(),
                config.claims.clone(),
            )?,
        };
        Ok(authorizer.with_rules(config.rules))
    }

    /// Trusts HS256 tokens signed with `secret` (a fixed key: no rotation), with the default rules.
    pub fn with_secret(secret: &[u8], claims: ClaimNames) -> Result<Authorizer> {
        let keys = StackKeys {
            current: SecretVerifier::new(secret, Expectations::default())?,
            previous: None,
        };
        Ok(Authorizer {
            trust: Trust::Secret(Box::new(StackSecret::new(keys, None))),
            claims,
            rules: TokenRules::default(),
        })
    }

    /// The same authorizer demanding `rules` of every token.
    pub fn with_rules(self, rules: TokenRules) -> Authorizer {
        Authorizer { rules, ..self }
    }

    /// Trusts RS256/ES256 tokens from `issuer` (and for `audience`), keys from `jwks_url`.
    pub fn with_issuer(
        issuer: &str,
        audience: Option<&str>,
        jwks_url: &str,
        policy: RefreshPolicy,
        claims: ClaimNames,
    ) -> Result<Authorizer> {
        let expect = Expectations {
            issuer: Some(issuer.to_string()),
            audience: audience.map(str::to_string),
        };
        Ok(Authorizer {
            trust: Trust::Issuer {
                expect,
                keys: Box::new(KeySet::new(jwks_url, policy)?),
            },
            claims,
            rules: TokenRules::default(),
        })
    }

    /// The identity of a valid token: well signed, not expired, living no longer than the rules
    /// allow.
    pub async fn verify(&self, token: &str) -> Result<Identity, Refusal> {
        let max_lifetime = self.rules.max_lifetime_seconds;
        let claims = match &self.trust {
            Trust::Secret(secret) => secret.verify(token, max_lifetime).await?,
            Trust::Issuer { expect, keys } => {
                let header = token::read_header(token)?;
                if header.alg == jsonwebtoken::Algorithm::HS256 {
                    return Err(Refusal::AlgorithmRefused("HS256".to_string()));
                }
                let key = keys.key(&header).await?;
                token::verify(token, header.alg, &key, expect)?
            }
        };
        token::check_lifetime(&claims, max_lifetime, jsonwebtoken::get_current_timestamp())?;
        Identity::from_claims(&claims, &self.claims, self.rules.unclaimed_entities)
    }
}

/// AWSCURRENT, and AWSPREVIOUS while its window lasts: one maximum lifetime from the current
/// version's creation, the rotation that retired the previous key. Without a CreatedDate the
/// window cannot be placed, and the previous key is not trusted.
async fn read_keys(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    max_lifetime_seconds: u64,
) -> Result<StackKeys> {
    let current = client
        .get_secret_value()
        .secret_id(secret_id)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .with_context(|| format!("reading secret {secret_id} (GetSecretValue AWSCURRENT)"))?;
    let current_key = SecretVerifier::new(&value_of(&current, secret_id)?, Expectations::default())?;
    let until = current
        .created_date()
        .and_then(|created| u64::try_from(created.secs()).ok())
        .map(|created| created.saturating_add(max_lifetime_seconds));
    let previous = match until {
        Some(until) if jsonwebtoken::get_current_timestamp() < until => {
            let answer = client
                .get_secret_value()
                .secret_id(secret_id)
                .version_stage("AWSPREVIOUS")
                .send()
                .await;
            match answer {
                Ok(previous) => Some((
                    SecretVerifier::new(&value_of(&previous, secret_id)?, Expectations::default())
                        .context("the previous version (AWSPREVIOUS)")?,
                    until,
                )),
                // Never rotated: no version has the stage.
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|error| error.is_resource_not_found_exception()) =>
                {
                    None
                }
                Err(error) => {
                    return Err(anyhow::Error::new(error)
                        .context(format!("reading secret {secret_id} (GetSecretValue AWSPREVIOUS)")))
                }
            }
        }
        _ => None,
    };
    Ok(StackKeys {
        current: current_key,
        previous,
    })
}

fn value_of(
    output: &aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput,
    secret_id: &str,
) -> Result<Vec<u8>> {
    if let Some(secret) = output.secret_string() {
        return Ok(secret.as_bytes().to_vec());
    }
    if let Some(secret) = output.secret_binary() {
        return Ok(secret.as_ref().to_vec());
    }
    bail!("secret {secret_id} has neither SecretString nor SecretBinary")
}

/// The token of a `$connect` request: the protocol offered next to `websocket` in
/// `Sec-WebSocket-Protocol`, else the `access_token` query parameter.
pub fn token_of(request: &ApiGatewayCustomAuthorizerRequestTypeRequest) -> Option<&str> {
    token_in_protocols(&request.headers)
        .or_else(|| request.query_string_parameters.first(TOKEN_QUERY_PARAMETER))
        .filter(|token| !token.is_empty())
}

fn token_in_protocols(headers: &HeaderMap) -> Option<&str> {
    let mut offered = headers
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|protocol| !protocol.is_empty());
    offered.find(|protocol| !protocol.eq_ignore_ascii_case(WEBSOCKET_PROTOCOL))
}

/// Authorizes one `$connect`: an Allow policy on the request's `methodArn` with the identity as
/// context, or [`Unauthorized`].
pub async fn authorize(
    authorizer: &Authorizer,
    request: ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Result<Value, Unauthorized> {
    let Some(method_arn) = request.method_arn.as_deref().filter(|arn| !arn.is_empty()) else {
        tracing::error!("the authorizer event has no methodArn; refusing");
        return Err(Unauthorized);
    };
    let identity = match token_of(&request) {
        None => Err(Refusal::Missing),
        Some(token) => authorizer.verify(token).await,
    };
    match identity {
        Ok(identity) => {
            tracing::info!(user_id = identity.user_id, "authorized");
            Ok(json!({
                "principalId": identity.user_id,
                "policyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Action": "execute-api:Invoke",
                        "Effect": "Allow",
                        "Resource": method_arn,
                    }],
                },
                "context": identity.context(),
            }))
        }
        Err(refusal) => {
            tracing::info!(reason = %refusal, "refused");
            Err(Unauthorized)
        }
    }
}
