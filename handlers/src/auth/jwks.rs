//! An OpenID issuer's signing keys: fetched from its JWKS URL, cached by `kid`, refetched when they
//! grow old or a token names an unknown `kid`, at most once per `min_refresh` whatever tokens
//! arrive. Only RSA and P-256 signature keys are kept; keys are never logged.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_lambda_events::http;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::token::{Refusal, TokenHeader};

/// Largest JWKS document read, in bytes.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// How often the key set may be fetched.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    /// Least time between two fetches, whatever `kid`s tokens name: bounds what forged tokens cost.
    pub min_refresh: Duration,
    /// Keys older than this are refetched before use (a revoked key drops out).
    pub max_age: Duration,
    /// Bound on one fetch, connection included.
    pub timeout: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            min_refresh: Duration::from_secs(60),
            max_age: Duration::from_secs(3600),
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Clone)]
struct CachedKey {
    key: DecodingKey,
    alg: Algorithm,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, CachedKey>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

enum HttpClient {
    Plain(Client<HttpConnector, Empty<Bytes>>),
    Tls(Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>),
}

/// The key set of one issuer.
pub struct KeySet {
    url: http::Uri,
    client: HttpClient,
    policy: RefreshPolicy,
    cache: tokio::sync::Mutex<Cache>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("url", &self.url).finish_non_exhaustive()
    }
}

/// Whether `host` names this machine (where plain http is acceptable).
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl KeySet {
    /// A key set read from `url`: https, or http to a loopback host. Nothing is fetched yet.
    pub fn new(url: &str, policy: RefreshPolicy) -> Result<KeySet> {
        let uri: http::Uri = url.parse().with_context(|| format!("JWKS URL {url:?} is not a URL"))?;
        let host = uri.host().with_context(|| format!("JWKS URL {url:?} has no host"))?;
        let client = match uri.scheme_str() {
            Some("https") => {
                // The provider named, not the process default: in a workspace build rustls may
                // have both ring and aws-lc compiled in, and then has no default.
                let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_native_roots(provider)
                    .context("loading the system's root certificates for the JWKS fetch")?
                    .https_only()
                    .enable_http1()
                    .build();
                HttpClient::Tls(Client::builder(TokioExecutor::new()).build(connector))
            }
            Some("http") if is_loopback(host) => HttpClient::Plain(Client::builder(TokioExecutor::new()).build_http()),
            _ => bail!("JWKS URL {url:?} must use https (plain http only to a loopback host)"),
        };
        Ok(KeySet {
            url: uri,
            client,
            policy,
            cache: tokio::sync::Mutex::new(Cache::default()),
        })
    }

    /// The key that verifies a token with this header.
    pub async fn key(&self, header: &TokenHeader) -> Result<DecodingKey, Refusal> {
        let kid = header.kid.as_deref().ok_or(Refusal::Malformed("header has no kid"))?;
        let mut cache = self.cache.lock().await;
        let stale = cache
            .fetched_at
            .is_none_or(|fetched| fetched.elapsed() >= self.policy.max_age);
        if stale && self.may_fetch(&cache) {
            self.refresh(&mut cache).await;
        }
        if !cache.keys.contains_key(kid) && self.may_fetch(&cache) {
            self.refresh(&mut cache).await;
        }
        match cache.keys.get(kid) {
            Some(cached) if cached.alg == header.alg => Ok(cached.key.clone()),
            Some(_) => Err(Refusal::KeyMismatch),
            None if cache.fetched_at.is_none() => Err(Refusal::KeysUnavailable("not fetched yet".into())),
            None => Err(Refusal::UnknownKey),
        }
    }

    fn may_fetch(&self, cache: &Cache) -> bool {
        cache
            .attempted_at
            .is_none_or(|attempted| attempted.elapsed() >= self.policy.min_refresh)
    }

    /// Fetches the set; on failure keeps the keys it had (an issuer's hiccup must not lock
    /// everyone out) and says so in the log.
    async fn refresh(&self, cache: &mut Cache) {
        cache.attempted_at = Some(Instant::now());
        match tokio::time::timeout(self.policy.timeout, self.fetch()).await {
            Ok(Ok(keys)) => {
                tracing::info!(url = %self.url, keys = keys.len(), "fetched the issuer's keys");
                cache.keys = keys;
                cache.fetched_at = Some(Instant::now());
            }
            Ok(Err(error)) => {
                tracing::warn!(url = %self.url, error = format!("{error:#}"), "could not fetch the issuer's keys");
            }
            Err(_) => {
                tracing::warn!(url = %self.url, timeout = ?self.policy.timeout, "fetching the issuer's keys timed out");
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, CachedKey>> {
        let request = http::Request::get(self.url.clone())
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .context("building the JWKS request")?;
        let response = match &self.client {
            HttpClient::Plain(client) => client.request(request).await,
            HttpClient::Tls(client) => client.request(request).await,
        }
        .with_context(|| format!("GET {}", self.url))?;
        let status = response.status();
        if !status.is_success() {
            bail!("GET {} answered {status}", self.url);
        }
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|error| anyhow::anyhow!("reading the JWKS from {}: {error}", self.url))?
            .to_bytes();
        parse_key_set(&body)
    }
}

/// The usable signature keys of a JWKS document, by `kid`. Keys of other kinds (encryption, HMAC,
/// other curves, unknown algorithms) are skipped, not fatal: issuers publish such keys too.
fn parse_key_set(body: &[u8]) -> Result<HashMap<String, CachedKey>> {
    let document: Value = serde_json::from_slice(body).context("the JWKS is not JSON")?;
    let Some(Value::Array(entries)) = document.get("keys") else {
        bail!("the JWKS has no \"keys\" array");
    };
    let mut keys = HashMap::new();
    for entry in entries {
        let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let alg = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
            _ => continue,
        };
        let declared = jwk.common.key_algorithm;
        let fits = match alg {
            Algorithm::RS256 => declared.is_none_or(|declared| declared == KeyAlgorithm::RS256),
            _ => declared.is_none_or(|declared| declared == KeyAlgorithm::ES256),
        };
        if !fits {
            continue;
        }
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            keys.insert(kid, CachedKey { key, alg });
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_urls_are_accepted() {
        assert!(KeySet::new("http://127.0.0.1:9/jwks.json", RefreshPolicy::default()).is_ok());
        assert!(KeySet::new("http://localhost:9/jwks.json", RefreshPolicy::default()).is_ok());
        assert!(KeySet::new("http://[::1]:9/jwks.json", RefreshPolicy::default()).is_ok());
        let error = KeySet::new("http://issuer.example.com/jwks.json", RefreshPolicy::default()).unwrap_err();
        assert!(error.to_string().contains("https"), "{error}");
        assert!(KeySet::new("ftp://127.0.0.1/jwks.json", RefreshPolicy::default()).is_err());
        // The TLS client builds from the SDK's rustls provider and the system roots, without I/O.
        assert!(KeySet::new(
            "https://issuer.example.com/.well-known/jwks.json",
            RefreshPolicy::default()
        )
        .is_ok());
    }

    #[test]
    fn keys_of_other_kinds_are_skipped() {
        let body = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "oaep", "alg": "RSA-OAEP", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "RS384", "n": "sXch", "e": "AQAB"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "good", "use": "sig", "alg": "RS256", "n": "sXch", "e": "AQAB"}
        ]});
        let keys = parse_key_set(body.to_string().as_bytes()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["good"]);
        assert!(parse_key_set(b"{}").is_err());
        assert!(parse_key_set(b"not json").is_err());
    }
}
