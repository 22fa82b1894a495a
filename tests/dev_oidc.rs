//! `wsstack dev` trusting an OpenID issuer (`auth: {issuer, audience, jwks_url}`): RS256 tokens
//! from the PEM keys in handlers/tests/keys, the issuer's key set served over real HTTP on
//! loopback, real WebSocket clients. A token signed with a key the issuer publishes later (a
//! rotation) is accepted once the set has it; wrong issuer, wrong audience, an unknown key and a
//! forged signature are refused with 401 before anything is written.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use common::Env;
use harness::{all_connection_ids, connect, refused, subscribe, wait_for_subscribers, Dev};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STACK: &str = "oidcdev";
const ISSUER: &str = "https://issuer.example.com/pool-1";
const AUDIENCE: &str = "wsstack-client";

struct Key {
    kid: &'static str,
    key: EncodingKey,
}

impl Key {
    fn rsa(file: &str, kid: &'static str) -> Key {
        let path = format!("{}/handlers/tests/keys/{file}", env!("CARGO_MANIFEST_DIR"));
        let pem = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Key {
            kid,
            key: EncodingKey::from_rsa_pem(&pem).unwrap(),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.to_string());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    /// The public half, as the issuer publishes it.
    fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.key, Algorithm::RS256).unwrap();
        jwk.common.key_id = Some(self.kid.to_string());
        jwk
    }
}

/// The issuer's key set on a loopback port: one HTTP/1.1 answer per connection, its content
/// replaceable while it runs, the time of its last fetch known.
struct KeySet {
    url: String,
    keys: Arc<Mutex<Vec<Jwk>>>,
    /// When the last request came in (None before the first).
    last_fetch: Arc<Mutex<Option<tokio::time::Instant>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for KeySet {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl KeySet {
    async fn serve(keys: Vec<Jwk>) -> KeySet {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
        let keys = Arc::new(Mutex::new(keys));
        let last_fetch = Arc::new(Mutex::new(None));
        let (served, fetched) = (keys.clone(), last_fetch.clone());
        let server = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                *fetched.lock().unwrap() = Some(tokio::time::Instant::now());
                let body = serde_json::to_vec(&JwkSet {
                    keys: served.lock().unwrap().clone(),
                })
                .unwrap();
                tokio::spawn(async move {
                    // The request's head fits one read; its content does not matter here.
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(&body).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        KeySet {
            url,
            keys,
            last_fetch,
            server,
        }
    }

    fn publish(&self, keys: Vec<Jwk>) {
        *self.keys.lock().unwrap() = keys;
    }

    fn last_fetch(&self) -> tokio::time::Instant {
        self.last_fetch.lock().unwrap().expect("the key set was fetched")
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn claims(sub: &str, issuer: &str, audience: &str) -> Value {
    json!({"sub": sub, "iss": issuer, "aud": audience, "iat": now(), "exp": now() + 600, "entities": ["order-*"]})
}

#[tokio::test]
async fn dev_trusts_the_issuers_keys_and_follows_a_rotation() {
    let first = Key::rsa("rsa-1.pem", "rsa-1");
    let rotated = Key::rsa("rsa-2.pem", "rsa-2");
    let keys = KeySet::serve(vec![first.jwk()]).await;
    let auth = format!(
        "auth:\n  issuer: {ISSUER}\n  audience: {AUDIENCE}\n  jwks_url: {}\n\n# Who may connect.",
        keys.url
    );
    let env = Env::start().await;
    let dev = Dev::start(&env, STACK, &[("# Who may connect.", auth.as_str())]).await;
    let table = dev.table();

    // Refused before `$connect` runs: nothing written. The first token makes the authorizer fetch
    // the key set; an unknown kid within a minute of that does not fetch again (bounded refetch).
    for (what, token) in [
        (
            "wrong issuer",
            first.sign(&claims("alice", "https://other.example.com", AUDIENCE)),
        ),
        ("wrong audience", first.sign(&claims("alice", ISSUER, "another-client"))),
        (
            "a key the issuer does not publish",
            rotated.sign(&claims("alice", ISSUER, AUDIENCE)),
        ),
        ("forged signature", {
            let genuine = first.sign(&claims("alice", ISSUER, AUDIENCE));
            let forged = rotated.sign(&claims("mallory", ISSUER, AUDIENCE));
            let (head_and_claims, _) = genuine.rsplit_once('.').unwrap();
            let (_, signature) = forged.rsplit_once('.').unwrap();
            format!("{head_and_claims}.{signature}")
        }),
    ] {
        assert_eq!(
            refused(&dev.url, Some(&format!("websocket, {token}"))).await,
            401,
            "{what}"
        );
    }
    assert!(
        all_connection_ids(&env, &table).await.is_empty(),
        "a refused handshake wrote to the table"
    );

    // An RS256 token of the published key: connected, limited to its `entities`.
    let valid = first.sign(&claims("alice", ISSUER, AUDIENCE));
    let (mut alice, protocol) = connect(&dev.url, Some(&format!("websocket, {valid}"))).await;
    assert_eq!(protocol.as_deref(), Some("websocket"));
    subscribe(&mut alice, "order-1").await;
    wait_for_subscribers(&env, &table, "order-1", 1).await;

    // The issuer rotates: the new key is published, and a token naming its kid is fetched for
    // once the authorizer's minimum time between two fetches (60 s) has passed. Counted from the
    // fetch the key set saw (which came after the authorizer started it), not from a time taken
    // before the handshakes: those sign tokens with RSA, slow in a debug build on a loaded machine.
    keys.publish(vec![first.jwk(), rotated.jwk()]);
    tokio::time::sleep_until(keys.last_fetch() + std::time::Duration::from_secs(61)).await;
    let after_rotation = rotated.sign(&claims("bob", ISSUER, AUDIENCE));
    let (mut bob, _) = connect(&format!("{}?access_token={after_rotation}", dev.url), None).await;
    subscribe(&mut bob, "order-2").await;
    wait_for_subscribers(&env, &table, "order-2", 1).await;
    assert_eq!(all_connection_ids(&env, &table).await.len(), 2);
}
