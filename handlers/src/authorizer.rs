//! The `$connect` REQUEST authorizer: finds the token (`Sec-WebSocket-Protocol: websocket, <token>`
//! or `?access_token=`), verifies it, and answers an Allow policy with the identity as context, or
//! the error "Unauthorized" that makes API Gateway answer 401. It never logs a token or a secret.

use anyhow::{bail, Context, Result};
use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use aws_lambda_events::http::HeaderMap;
use aws_types::SdkConfig;
use serde_json::{json, Value};

use crate::auth::jwks::{KeySet, RefreshPolicy};
use crate::auth::token::{self, Expectations, Refusal, SecretVerifier};
use crate::auth::{ClaimNames, Identity};
use crate::config::{AuthorizerConfig, TrustConfig};

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

enum Trust {
    Secret(SecretVerifier),
    // Boxed: the key set's cache is far larger than the secret verifier.
    Issuer { expect: Expectations, keys: Box<KeySet> },
}

/// A verifier and the claim names, built once per process.
pub struct Authorizer {
    trust: Trust,
    claims: ClaimNames,
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
            .finish()
    }
}

impl Authorizer {
    /// Builds the authorizer from its configuration, reading the stack secret from Secrets Manager
    /// (once: a rotated secret takes effect on the next cold start).
    pub async fn from_config(config: &AuthorizerConfig, sdk: &SdkConfig) -> Result<Authorizer> {
        match &config.trust {
            TrustConfig::Secret { secret_arn } => {
                let secret = read_secret(sdk, secret_arn).await?;
                Authorizer::with_secret(&secret, config.claims.clone())
                    .with_context(|| format!("the secret in {secret_arn}"))
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
            ),
        }
    }

    /// Trusts HS256 tokens signed with `secret`.
    pub fn with_secret(secret: &[u8], claims: ClaimNames) -> Result<Authorizer> {
        Ok(Authorizer {
            trust: Trust::Secret(SecretVerifier::new(secret, Expectations::default())?),
            claims,
        })
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
        })
    }

    /// The identity of a valid token.
    pub async fn verify(&self, token: &str) -> Result<Identity, Refusal> {
        let claims = match &self.trust {
            Trust::Secret(verifier) => verifier.verify(token)?,
            Trust::Issuer { expect, keys } => {
                let header = token::read_header(token)?;
                if header.alg == jsonwebtoken::Algorithm::HS256 {
                    return Err(Refusal::AlgorithmRefused("HS256".to_string()));
                }
                let key = keys.key(&header).await?;
                token::verify(token, header.alg, &key, expect)?
            }
        };
        Identity::from_claims(&claims, &self.claims)
    }
}

async fn read_secret(sdk: &SdkConfig, secret_arn: &str) -> Result<Vec<u8>> {
    let output = aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(secret_arn)
        .send()
        .await
        .with_context(|| format!("reading secret {secret_arn} (GetSecretValue)"))?;
    if let Some(secret) = output.secret_string() {
        return Ok(secret.as_bytes().to_vec());
    }
    if let Some(secret) = output.secret_binary() {
        return Ok(secret.as_ref().to_vec());
    }
    bail!("secret {secret_arn} has neither SecretString nor SecretBinary")
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
