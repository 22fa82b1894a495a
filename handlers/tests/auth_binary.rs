//! The authorizer as Lambda runs it: the `bootstrap` binary of this build (host target) as a child
//! process with `WSSTACK_HANDLER=authorizer` and the secret's ARN, reading the secret from moto and
//! answering a local Lambda Runtime API stand-in. Proves the wire answers (an Allow policy; the
//! error message `Unauthorized` that API Gateway turns into 401) and that its stderr, the function's
//! log, never shows the secret or a token.

mod auth_fixtures;
mod common;

use std::convert::Infallible;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_fixtures::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::mpsc;

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

/// What the binary sent to the runtime API: method, path, body.
type Sent = (String, String, Vec<u8>);

/// A Lambda Runtime API on loopback that hands out `events` one per `next`, then holds `next`.
async fn runtime_api(events: Vec<Value>) -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Sent>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sender, received) = mpsc::unbounded_channel();
    let events = Arc::new(Mutex::new(events.into_iter().enumerate()));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (sender, events) = (sender.clone(), events.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let (sender, events) = (sender.clone(), events.clone());
                    async move {
                        let method = request.method().to_string();
                        let path = request.uri().path().to_string();
                        let body = request.into_body().collect().await.unwrap().to_bytes().to_vec();
                        let is_next = method == "GET" && path == NEXT;
                        let _ = sender.send((method, path, body));
                        if !is_next {
                            let accepted = Response::builder()
                                .status(202)
                                .body(Full::new(Bytes::from_static(b"{}")));
                            return Ok::<_, Infallible>(accepted.unwrap());
                        }
                        let next = events.lock().unwrap().next();
                        let Some((index, event)) = next else {
                            std::future::pending::<()>().await;
                            unreachable!();
                        };
                        let deadline = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_millis()
                            + 30_000;
                        let response = Response::builder()
                            .header("content-type", "application/json")
                            .header("lambda-runtime-aws-request-id", format!("request-{index}"))
                            .header("lambda-runtime-deadline-ms", deadline.to_string())
                            .header(
                                "lambda-runtime-invoked-function-arn",
                                "arn:aws:lambda:us-east-1:123456789012:function:wsstack-test-authorizer",
                            )
                            .body(Full::new(Bytes::from(event.to_string())));
                        Ok(response.unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, received)
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_authorizer_binary_allows_refuses_with_401_and_never_logs_secrets() {
    let moto = testkit::Moto::start().expect("starting moto");
    let sdk = common::sdk_config(&moto.endpoint()).await;
    let created = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name("wsstack-test-auth")
        .secret_string(SECRET)
        .send()
        .await
        .expect("creating the secret");
    let valid = hs256(SECRET.as_bytes(), &claims("user-42", json!({"entities": ["order-*"]})));
    let expired = hs256(SECRET.as_bytes(), &claims("user-42", json!({"exp": now() - 120})));
    let forged = hs256(b"not-the-stack-secret-but-as-long-as-it", &claims("admin", json!({})));
    let events = [
        event_with_protocol_token(&valid),
        authorizer_event(&[], &[("access_token", &expired)]),
        event_with_protocol_token(&forged),
        authorizer_event(&[], &[]),
    ]
    .iter()
    .map(|event| serde_json::to_value(event).unwrap())
    .collect();
    let (addr, mut sent) = runtime_api(events).await;

    let child = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "wsstack-test-authorizer")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("RUST_LOG", "trace")
        .env("WSSTACK_HANDLER", "authorizer")
        .env("AUTH_SECRET_ARN", created.arn().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting bootstrap");
    let mut child = Killed(child);
    // Drain both pipes while it runs: a full pipe would block the process on its next log line.
    let log = Arc::new(Mutex::new(String::new()));
    let readers: Vec<_> = [
        Box::new(child.0.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.0.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|mut pipe| {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            log.lock().unwrap().push_str(&text);
        })
    })
    .collect();

    let mut answers = Vec::new();
    while answers.len() < 4 {
        let Ok(Some((method, path, body))) = tokio::time::timeout(Duration::from_secs(30), sent.recv()).await else {
            panic!("the bootstrap did not answer all four events within 30 s");
        };
        if method == "POST" {
            answers.push((path, serde_json::from_slice::<Value>(&body).unwrap()));
        }
    }
    let (path, allow) = &answers[0];
    assert_eq!(path, "/2018-06-01/runtime/invocation/request-0/response");
    assert_eq!(allow["principalId"], "user-42");
    assert_eq!(allow["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(allow["policyDocument"]["Statement"][0]["Resource"], METHOD_ARN);
    assert_eq!(
        allow["context"],
        json!({"userId": "user-42", "entities": r#"["order-*"]"#})
    );
    for (index, (path, error)) in answers.iter().enumerate().skip(1) {
        assert_eq!(path, &format!("/2018-06-01/runtime/invocation/request-{index}/error"));
        assert_eq!(error["errorMessage"], "Unauthorized", "{error}");
    }

    drop(child);
    for reader in readers {
        reader.join().unwrap();
    }
    let output = log.lock().unwrap().clone();
    assert!(
        output.contains(r#""message":"refused""#),
        "the log was captured:\n{output}"
    );
    assert!(!output.contains(SECRET), "the secret is in the log");
    for token in [&valid, &expired, &forged] {
        assert!(
            !output.contains(token.as_str()),
            "a token is in the log:\n{}",
            output
                .lines()
                .filter(|line| line.contains(token.as_str()))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            !output.contains(token.rsplit('.').next().unwrap()),
            "a signature is in the log"
        );
    }
}
