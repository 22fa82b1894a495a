//! The built `bootstrap` (from `handlers/build.sh`) as Lambda runs it: a child process with the
//! function's environment, talking to a local stand-in for the Lambda Runtime API. Proves that the
//! static binary starts, asks for its first event, serves a subscribe against moto, and measures the
//! time from process start to the first runtime API request. Skipped when the binary is absent,
//! unless `WSSTACK_REQUIRE_BOOTSTRAP` is set (as CI does after running build.sh).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::runtime_api::{lambda_command, Killed, RuntimeApi, NEXT};
use common::*;
use serde_json::{json, Value};

/// The binary `handlers/build.sh` writes; `WSSTACK_BOOTSTRAP` may name another one to measure
/// (e.g. an experimental build).
fn built_binary() -> Option<PathBuf> {
    let binary = std::env::var_os("WSSTACK_BOOTSTRAP")
        .map(PathBuf::from)
        .unwrap_or_else(|| testkit::repo_root().join("target/handlers/x86_64-unknown-linux-musl/lambda/bootstrap"));
    if binary.exists() {
        return Some(binary);
    }
    assert!(
        std::env::var_os("WSSTACK_REQUIRE_BOOTSTRAP").is_none(),
        "WSSTACK_REQUIRE_BOOTSTRAP is set but {} does not exist: run handlers/build.sh",
        binary.display()
    );
    eprintln!("skipped: {} does not exist (run handlers/build.sh)", binary.display());
    None
}

/// Starts the binary the way Lambda does: a clean environment with the function's variables.
fn spawn(
    binary: &std::path::Path,
    runtime_api: std::net::SocketAddr,
    handler: &str,
    moto: &str,
    callback: &str,
) -> Child {
    command(binary, runtime_api, handler, moto, callback)
        .spawn()
        .expect("starting bootstrap")
}

/// The command [`spawn`] runs, for a test to change a variable first.
fn command(
    binary: &std::path::Path,
    runtime_api: std::net::SocketAddr,
    handler: &str,
    moto: &str,
    callback: &str,
) -> Command {
    let mut command = lambda_command(binary, runtime_api, handler, moto);
    command
        .env("TABLE_NAME", TABLE)
        .env("TTL_HOURS", "3")
        .env("CALLBACK_URL", callback)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// A subscribe frame of `conn-a=` to `order-42`, as the runtime API hands it out.
fn subscribe_event() -> Value {
    serde_json::to_value(ws_event(
        "subscribe",
        "conn-a=",
        Some(r#"{"action":"subscribe","entityId":"order-42"}"#),
        &[],
    ))
    .unwrap()
}

#[tokio::test]
async fn the_built_bootstrap_serves_a_subscribe_through_the_runtime_api() {
    let Some(binary) = built_binary() else {
        return;
    };
    let stack = Stack::start().await;
    stack.put_items(vec![connection_record("conn-a=", 1000)]).await;
    let mut runtime = RuntimeApi::start(vec![subscribe_event()]).await;
    let mut child = Killed(spawn(
        &binary,
        runtime.addr,
        "subscribe",
        &stack.moto.endpoint(),
        &stack.gateway.callback_url(),
    ));
    let mut stderr = child.0.stderr.take().unwrap();

    let first = runtime.next_request().await;
    assert_eq!((first.method.as_str(), first.path.as_str()), ("GET", NEXT));
    let reply = runtime.next_request().await;
    assert_eq!(reply.method, "POST");
    assert_eq!(reply.path, "/2018-06-01/runtime/invocation/request-0/response");
    let response: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(response["statusCode"], json!(200), "{response}");
    let again = runtime.next_request().await;
    assert_eq!(again.path, NEXT, "asks for the next event");
    drop(child);
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut logs).unwrap();
    let subscribed = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["fields"]["message"] == "subscribed")
        .unwrap_or_else(|| panic!("no JSON log line for the subscription in:\n{logs}"));
    assert_eq!(subscribed["fields"]["entity_id"], "order-42", "{subscribed}");
    assert!(
        subscribed.to_string().contains("\"requestId\":\"request-0\""),
        "request id in {subscribed}"
    );

    let keys = stack.keys().await;
    assert!(
        keys.contains(&("conn-a=".to_string(), "subscription#order-42".to_string())),
        "{keys:?}"
    );
}

/// A failed invocation reaches Lambda as a typed error: `errorType` says whether trying again can
/// help, `errorMessage` says what failed and where.
#[tokio::test]
async fn the_built_bootstrap_reports_failures_by_kind() {
    let Some(binary) = built_binary() else {
        return;
    };
    let stack = Stack::start().await;
    let subscribe = subscribe_event();
    // A table that does not exist: DynamoDB refuses for good.
    let mut runtime = RuntimeApi::start(vec![subscribe.clone()]).await;
    let mut missing_table = command(
        &binary,
        runtime.addr,
        "subscribe",
        &stack.moto.endpoint(),
        &stack.gateway.callback_url(),
    );
    missing_table.env("TABLE_NAME", "no-such-table");
    let child = Killed(missing_table.spawn().unwrap());
    assert_eq!(runtime.next_request().await.path, NEXT);
    let reply = runtime.next_request().await;
    assert_eq!(reply.path, "/2018-06-01/runtime/invocation/request-0/error");
    let error: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(error["errorType"], "wsstack.Permanent", "{error}");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("no-such-table") && message.contains("ResourceNotFoundException"),
        "{message}"
    );
    drop(child);

    // Nothing listens where DynamoDB should be: another attempt may pass.
    let mut runtime = RuntimeApi::start(vec![subscribe]).await;
    let child = Killed(spawn(
        &binary,
        runtime.addr,
        "subscribe",
        "http://127.0.0.1:9",
        &stack.gateway.callback_url(),
    ));
    assert_eq!(runtime.next_request().await.path, NEXT);
    let reply = runtime.next_request().await;
    assert_eq!(reply.path, "/2018-06-01/runtime/invocation/request-0/error");
    let error: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(error["errorType"], "wsstack.Retryable", "{error}");
    drop(child);
}

#[tokio::test]
async fn the_built_bootstrap_refuses_to_start_without_its_configuration() {
    let Some(binary) = built_binary() else {
        return;
    };
    let mut runtime = RuntimeApi::start(vec![]).await;
    let output = Command::new(&binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime.addr.to_string())
        .env("WSSTACK_HANDLER", "teleport")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown handler \\\"teleport\\\"") || stderr.contains("unknown handler \"teleport\""),
        "{stderr}"
    );
    assert!(runtime.requests.try_recv().is_err(), "no runtime API request");
}

/// Time from process start to the first runtime API request, median of 9 starts (printed; the
/// assertion is a loose bound that catches a hang or a blocking network call at init).
#[tokio::test]
async fn the_built_bootstrap_reaches_the_runtime_api_quickly() {
    let Some(binary) = built_binary() else {
        return;
    };
    let mut samples = Vec::new();
    for handler in ["push", "connect", "subscribe"].iter().cycle().take(9) {
        let mut runtime = RuntimeApi::start(vec![]).await;
        let started = Instant::now();
        let child = Killed(spawn(
            &binary,
            runtime.addr,
            handler,
            "http://127.0.0.1:9",
            "http://127.0.0.1:9/test",
        ));
        let first = runtime.next_request().await;
        samples.push(first.at - started);
        assert_eq!(first.path, NEXT);
        drop(child);
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    println!(
        "bootstrap start to first runtime API request: median {:.1} ms, min {:.1} ms, max {:.1} ms",
        median.as_secs_f64() * 1000.0,
        samples[0].as_secs_f64() * 1000.0,
        samples[samples.len() - 1].as_secs_f64() * 1000.0
    );
    assert!(median < Duration::from_millis(500), "median {median:?}");
}

/// Measurement, not a proof: start to first runtime API request of the built binary against a
/// baseline binary (`WSSTACK_BOOTSTRAP_BASELINE`), starts alternated one by one so that both see the
/// same machine load; prints median and minimum of each. Run with
/// `WSSTACK_BOOTSTRAP_BASELINE=path cargo test -p wsstack-handlers --test bootstrap_binary -- --ignored --nocapture init_against_a_baseline`.
#[tokio::test]
#[ignore]
async fn init_against_a_baseline() {
    let Some(binary) = built_binary() else {
        return;
    };
    let baseline = PathBuf::from(
        std::env::var_os("WSSTACK_BOOTSTRAP_BASELINE")
            .expect("WSSTACK_BOOTSTRAP_BASELINE names the binary to compare with"),
    );
    let mut samples: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for start in 0..62 {
        let which = start % 2;
        let path = if which == 0 { &binary } else { &baseline };
        let mut runtime = RuntimeApi::start(vec![]).await;
        let started = Instant::now();
        let child = Killed(spawn(
            path,
            runtime.addr,
            "push",
            "http://127.0.0.1:9",
            "http://127.0.0.1:9/test",
        ));
        let first = runtime.next_request().await;
        samples[which].push(first.at - started);
        drop(child);
    }
    for (name, mut samples) in ["built", "baseline"].into_iter().zip(samples) {
        samples.sort();
        println!(
            "{name:>8}: median {:.1} ms, min {:.1} ms over {} starts",
            samples[samples.len() / 2].as_secs_f64() * 1000.0,
            samples[0].as_secs_f64() * 1000.0,
            samples.len()
        );
    }
}

/// Measurement, not a proof: the built (musl) binary's push fan-out to 1,000 subscribers against the
/// local stand-in, posts per second between the first and the last post, for several concurrency
/// limits. Run with `cargo test -p wsstack-handlers --test bootstrap_binary -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn built_bootstrap_push_throughput() {
    let Some(binary) = built_binary() else {
        return;
    };
    let stack = Stack::start().await;
    let fixtures = (0..1000)
        .map(|n| subscription_record(&connection_id(n), "bench", FAR_TTL))
        .collect();
    stack.put_items(fixtures).await;
    let body = eventbridge_body("bench", &"x".repeat(200));
    let event = serde_json::to_value(sqs_event(&[("msg-1", &body)])).unwrap();
    for (latency, concurrency) in [0, 10]
        .into_iter()
        .flat_map(|latency| [1, 8, 32, 64, 128, 256].map(|concurrency| (latency, concurrency)))
    {
        stack.gateway.set_latency(Duration::from_millis(latency));
        let mut rates = Vec::new();
        for _ in 0..3 {
            stack.gateway.clear();
            let mut runtime = RuntimeApi::start(vec![event.clone()]).await;
            let mut command = command(
                &binary,
                runtime.addr,
                "push",
                &stack.moto.endpoint(),
                &stack.gateway.callback_url(),
            );
            command
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
                .env("PUSH_CONCURRENCY", concurrency.to_string())
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = Killed(command.spawn().unwrap());
            assert_eq!(runtime.next_request().await.path, NEXT);
            let reply = runtime.next_request().await;
            assert!(reply.path.ends_with("/response"), "{}", reply.path);
            let response: Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!(response["batchItemFailures"], json!([]));
            drop(child);
            assert_eq!(stack.gateway.delivered().len(), 1000);
            rates.push(stack.gateway.post_rate());
        }
        rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "built bootstrap, stand-in latency {latency:>2} ms, concurrency {concurrency:>3}: median {:>6.0} posts/s, runs {:?}",
            rates[1],
            rates.iter().map(|rate| rate.round()).collect::<Vec<_>>()
        );
    }
}
