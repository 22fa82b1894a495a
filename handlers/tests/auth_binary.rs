//! The authorizer as Lambda runs it: the `bootstrap` binary of this build (host target) as a child
//! process with `WSSTACK_HANDLER=authorizer` and the secret's ARN, reading the secret from moto and
//! answering a local Lambda Runtime API stand-in. Proves the wire answers (an Allow policy; the
//! error message `Unauthorized` that API Gateway turns into 401) and that its stderr, the function's
//! log, never shows the secret or a token.

mod auth_fixtures;
mod common;

use std::io::Read;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_fixtures::*;
use common::runtime_api::{lambda_command, Killed, RuntimeApi};
use serde_json::{json, Value};

#[tokio::test]
async fn the_authorizer_binary_allows_refuses_with_401_and_never_logs_secrets() {
    let moto = testkit::Moto::start().expect("starting moto");
    let sdk = common::sdk_config(&moto.endpoint()).await;
    let secret_arn = create_stack_secret(&aws_sdk_secretsmanager::Client::new(&sdk)).await;
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
    let mut runtime = RuntimeApi::start(events).await;

    let child = lambda_command(
        std::path::Path::new(env!("CARGO_BIN_EXE_bootstrap")),
        runtime.addr,
        "authorizer",
        &moto.endpoint(),
    )
    .env("RUST_LOG", "trace")
    .env("AUTH_SECRET_ARN", secret_arn)
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
        let Ok(Some(request)) = tokio::time::timeout(Duration::from_secs(30), runtime.requests.recv()).await else {
            panic!("the bootstrap did not answer all four events within 30 s");
        };
        if request.method == "POST" {
            answers.push((request.path, serde_json::from_slice::<Value>(&request.body).unwrap()));
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
    // RUST_LOG=trace reaches the debug lines (trace is compiled out of the Lambda build only), so
    // what follows checks every line the most verbose level writes.
    assert!(
        output.contains(r#""level":"DEBUG""#),
        "no debug line at RUST_LOG=trace:\n{output}"
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
