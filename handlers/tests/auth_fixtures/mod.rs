//! Fixtures of the auth tests: `$connect` authorizer events as API Gateway sends them, tokens signed
//! with the stack secret or the PEM keys in `tests/keys/`, a JWKS served over real HTTP on loopback
//! (its content changeable, its fetches counted), and a capture of the handlers' log output.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::common::serve::{serve, Loopback};

pub const SECRET: &str = "kX3v9-stack-secret-for-tests-only-Qm7pL2zR8wN4";
pub const METHOD_ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/test/$connect";
pub const ISSUER: &str = "https://issuer.example.com/pool-1";
pub const AUDIENCE: &str = "wsstack-client";

pub use testkit::unix_seconds as now;

/// The stack secret in Secrets Manager (moto) as `wsstack up` stores it; its ARN.
pub async fn create_stack_secret(secrets: &aws_sdk_secretsmanager::Client) -> String {
    let created = secrets
        .create_secret()
        .name("wsstack-test-auth")
        .secret_string(SECRET)
        .send()
        .await
        .expect("creating the secret");
    created.arn().unwrap().to_string()
}

/// A `$connect` REQUEST authorizer event with these headers and query parameters.
pub fn authorizer_event(
    headers: &[(&str, &str)],
    query: &[(&str, &str)],
) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    let mut all_headers = vec![
        ("Host", "abc123.execute-api.us-east-1.amazonaws.com"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
        ("X-Forwarded-For", "203.0.113.7"),
    ];
    all_headers.extend_from_slice(headers);
    let single = |pairs: &[(&str, &str)]| -> serde_json::Map<String, Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect()
    };
    let multi = |pairs: &[(&str, &str)]| -> serde_json::Map<String, Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), json!([v]))).collect()
    };
    let mut event = json!({
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": single(&all_headers),
        "multiValueHeaders": multi(&all_headers),
        "stageVariables": {},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "extendedRequestId": "Qy4kRFWxoAMFWcQ=",
            "requestTime": "26/Nov/2026:00:55:00 +0000",
            "messageDirection": "IN",
            "stage": "test",
            "connectedAt": 1_764_118_500_123_i64,
            "requestTimeEpoch": 1_764_118_500_456_i64,
            "identity": { "sourceIp": "203.0.113.7", "userAgent": "wsstack-test" },
            "requestId": "Qy4kRFWxoAMFWcQ=",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "connectionId": "Qy4kRcNxoAMCJgA=",
            "apiId": "abc123"
        }
    });
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(single(query));
        event["multiValueQueryStringParameters"] = Value::Object(multi(query));
    }
    serde_json::from_value(event).expect("a valid authorizer event fixture")
}

/// The event of a browser that offers `websocket, <token>`.
pub fn event_with_protocol_token(token: &str) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    authorizer_event(&[("Sec-WebSocket-Protocol", &format!("websocket, {token}"))], &[])
}

/// An HS256 token with these claims, signed with `secret`.
pub fn hs256(secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// Claims valid for an hour from now for `sub`, with more fields merged in.
pub fn claims(sub: &str, extra: Value) -> Value {
    let mut claims = json!({ "sub": sub, "iat": now(), "exp": now() + 3600 });
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    claims
}

/// One of the PEM key pairs in `tests/keys/`.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    key: EncodingKey,
}

impl SigningKey {
    pub fn rsa(file: &str, kid: &str) -> SigningKey {
        SigningKey::from_pem(file, kid, Algorithm::RS256, EncodingKey::from_rsa_pem)
    }

    pub fn ec(file: &str, kid: &str) -> SigningKey {
        SigningKey::from_pem(file, kid, Algorithm::ES256, EncodingKey::from_ec_pem)
    }

    fn from_pem(
        file: &str,
        kid: &str,
        alg: Algorithm,
        decode: fn(&[u8]) -> jsonwebtoken::errors::Result<EncodingKey>,
    ) -> SigningKey {
        let pem = std::fs::read(format!("{}/tests/keys/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        SigningKey {
            kid: kid.to_string(),
            alg,
            key: decode(&pem).unwrap(),
        }
    }

    /// A token signed with this key, naming its kid.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, self.alg, claims)
    }

    /// A token signed with this key, claiming another kid or algorithm.
    pub fn sign_as(&self, kid: &str, alg: Algorithm, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    /// The public half, as the issuer publishes it.
    pub fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        jwk
    }
}

/// A JWKS served over HTTP on a loopback port; what it serves can change, and every GET is counted.
pub struct JwksServer {
    pub url: String,
    keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<Mutex<usize>>,
    broken: Arc<Mutex<bool>>,
    _server: Loopback,
}

impl JwksServer {
    pub async fn start(keys: Vec<Jwk>) -> JwksServer {
        let keys = Arc::new(Mutex::new(keys));
        let fetches = Arc::new(Mutex::new(0));
        let broken = Arc::new(Mutex::new(false));
        let (served, counted, failing) = (keys.clone(), fetches.clone(), broken.clone());
        let server = serve(move |request: Request<hyper::body::Incoming>| {
            let (keys, fetches, broken) = (served.clone(), counted.clone(), failing.clone());
            async move {
                if request.uri().path() != "/.well-known/jwks.json" {
                    return Response::builder().status(404).body(Full::new(Bytes::new())).unwrap();
                }
                *fetches.lock().unwrap() += 1;
                if *broken.lock().unwrap() {
                    return Response::builder()
                        .status(503)
                        .body(Full::new(Bytes::from("down")))
                        .unwrap();
                }
                let set = JwkSet {
                    keys: keys.lock().unwrap().clone(),
                };
                let body = serde_json::to_vec(&set).unwrap();
                Response::builder()
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap()
            }
        })
        .await;
        JwksServer {
            url: format!("http://{}/.well-known/jwks.json", server.addr),
            keys,
            fetches,
            broken,
            _server: server,
        }
    }

    /// Answer 503 from now on (or again serve the keys).
    pub fn set_broken(&self, broken: bool) {
        *self.broken.lock().unwrap() = broken;
    }

    /// Publish this key set from now on.
    pub fn publish(&self, keys: Vec<Jwk>) {
        *self.keys.lock().unwrap() = keys;
    }

    /// How many times the key set was fetched.
    pub fn fetches(&self) -> usize {
        *self.fetches.lock().unwrap()
    }
}

/// Everything the handlers log while a [`LogCapture`] is installed on this thread, in the JSON
/// format of the `bootstrap` binary.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Captures every level on the current thread until the guard drops (tests run on a
    /// current-thread runtime, so the handler's awaits stay on it).
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
