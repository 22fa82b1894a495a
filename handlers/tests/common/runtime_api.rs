//! The `bootstrap` binary as Lambda runs it: a stand-in for the Lambda Runtime API on a loopback
//! port that hands out events and records what the binary sends back, and the function's
//! environment for the child process.

use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;
use tokio::sync::mpsc;

use super::serve::{serve, Loopback};

/// The path a runtime asks for its next event on.
pub const NEXT: &str = "/2018-06-01/runtime/invocation/next";

/// A request the runtime API stand-in received: when, what, with which body.
#[derive(Debug)]
pub struct RuntimeRequest {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

/// The Lambda Runtime API on a loopback port: hands out `events` one per `next`, then keeps the
/// next `next` waiting (as Lambda does between invocations); records everything.
pub struct RuntimeApi {
    pub addr: std::net::SocketAddr,
    pub requests: mpsc::UnboundedReceiver<RuntimeRequest>,
    _server: Loopback,
}

type Events = Arc<Mutex<std::iter::Enumerate<std::vec::IntoIter<Value>>>>;

impl RuntimeApi {
    pub async fn start(events: Vec<Value>) -> RuntimeApi {
        let (sender, requests) = mpsc::unbounded_channel();
        let events: Events = Arc::new(Mutex::new(events.into_iter().enumerate()));
        let server = serve(move |request| answer(request, sender.clone(), events.clone())).await;
        RuntimeApi {
            addr: server.addr,
            requests,
            _server: server,
        }
    }

    pub async fn next_request(&mut self) -> RuntimeRequest {
        tokio::time::timeout(Duration::from_secs(20), self.requests.recv())
            .await
            .expect("the bootstrap made no runtime API request within 20 s")
            .expect("the runtime API stand-in stopped")
    }
}

async fn answer(
    request: Request<Incoming>,
    sender: mpsc::UnboundedSender<RuntimeRequest>,
    events: Events,
) -> Response<Full<Bytes>> {
    let at = Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let body = request.into_body().collect().await.unwrap().to_bytes().to_vec();
    let is_next = method == "GET" && path == NEXT;
    let _ = sender.send(RuntimeRequest { at, method, path, body });
    if !is_next {
        return Response::builder()
            .status(202)
            .body(Full::new(Bytes::from_static(b"{\"status\":\"OK\"}")))
            .unwrap();
    }
    let event = events.lock().unwrap().next();
    let Some((index, event)) = event else {
        // No more work: hold the request open like Lambda does while the function is frozen.
        std::future::pending::<()>().await;
        unreachable!();
    };
    let deadline = testkit::since_epoch().as_millis() + 30_000;
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", format!("request-{index}"))
        .header("lambda-runtime-deadline-ms", deadline.to_string())
        .header(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:wsstack-test",
        )
        .header(
            "lambda-runtime-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .body(Full::new(Bytes::from(event.to_string())))
        .unwrap()
}

/// `binary` with the environment Lambda gives function `wsstack-test-{handler}` (and nothing
/// else), its runtime API at `runtime_api` and AWS at `aws_endpoint`; a test adds the handler's
/// own configuration and chooses what happens to the output.
pub fn lambda_command(binary: &Path, runtime_api: std::net::SocketAddr, handler: &str, aws_endpoint: &str) -> Command {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", format!("wsstack-test-{handler}"))
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/wsstack-test-{handler}"),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/26/[$LATEST]0123456789abcdef")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_SESSION_TOKEN", "testing")
        .env("AWS_ENDPOINT_URL", aws_endpoint)
        .env("WSSTACK_HANDLER", handler);
    command
}

/// A child process killed (and reaped) when the test lets go of it.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
