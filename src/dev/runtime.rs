//! A Lambda Runtime API host: runs a function's `bootstrap` as child processes that speak the
//! Runtime API (next, response, error, init error) to a loopback server of ours, the way Lambda's
//! own runtime environment does.
//!
//! Each instance is one process with its own Runtime API server, so that a timeout or crash is
//! pinned to the instance that had the invocation. Invocations queue per function; a new instance
//! starts when none is idle (up to a limit), so overlapping invocations run in parallel. A timed-out
//! invocation kills its instance, as Lambda does. Handler output is shown prefixed with the function.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, oneshot, watch};

/// Why an invocation gave no response.
#[derive(Debug, Clone, PartialEq)]
pub enum InvokeError {
    /// The handler reported an error (`/invocation/{id}/error`).
    Function {
        error_type: String,
        message: String,
    },
    /// No response within the function's timeout; the instance was stopped.
    Timeout(Duration),
    /// The process died or could not start.
    Runtime(String),
    ShuttingDown,
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvokeError::Function { error_type, message } => write!(f, "{error_type}: {message}"),
            InvokeError::Timeout(after) => write!(f, "Task timed out after {:.2} seconds", after.as_secs_f64()),
            InvokeError::Runtime(why) => write!(f, "Runtime error: {why}"),
            InvokeError::ShuttingDown => write!(f, "shutting down"),
        }
    }
}

type Reply = oneshot::Sender<Result<Bytes, InvokeError>>;

struct Job {
    request_id: String,
    payload: Bytes,
    reply: Reply,
}

/// How a function runs: what `up` configured, read back from the emulator.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    pub name: String,
    pub arn: String,
    pub memory_mb: i32,
    pub timeout: Duration,
    /// The process environment, the function's configured variables included.
    pub environment: BTreeMap<String, String>,
    pub binary: PathBuf,
}

/// The running instances of one function and its invocation queue.
pub struct FunctionHost {
    pub config: FunctionConfig,
    jobs: mpsc::UnboundedSender<Job>,
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>,
    queued: AtomicUsize,
    idle: AtomicUsize,
    instances: AtomicUsize,
    max_instances: usize,
    next_instance: AtomicUsize,
    shutdown: watch::Receiver<bool>,
    log: LogSink,
}

/// Where handler output goes.
#[derive(Clone)]
pub struct LogSink {
    pub quiet: bool,
    /// The emulator's CloudWatch Logs, where `wsstack logs` reads them.
    pub cloudwatch: Option<super::logs::LogShipper>,
}

impl LogSink {
    fn line(&self, function: &str, line: &str) {
        if let Some(cloudwatch) = &self.cloudwatch {
            cloudwatch.line(function, line);
        }
        if !self.quiet {
            eprintln!("[{function}] {line}");
        }
    }
}

impl FunctionHost {
    pub fn new(
        config: FunctionConfig,
        max_instances: usize,
        shutdown: watch::Receiver<bool>,
        log: LogSink,
    ) -> Arc<FunctionHost> {
        let (jobs, queue) = mpsc::unbounded_channel();
        Arc::new(FunctionHost {
            config,
            jobs,
            queue: Arc::new(tokio::sync::Mutex::new(queue)),
            queued: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            instances: AtomicUsize::new(0),
            max_instances: max_instances.max(1),
            next_instance: AtomicUsize::new(0),
            shutdown,
            log,
        })
    }

    /// Invoke the function with an event and wait for its response.
    pub async fn invoke(self: &Arc<Self>, payload: Bytes) -> Result<Bytes, InvokeError> {
        if *self.shutdown.borrow() {
            return Err(InvokeError::ShuttingDown);
        }
        let (reply, response) = oneshot::channel();
        let request_id = uuid::Uuid::new_v4().to_string();
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self
            .jobs
            .send(Job {
                request_id,
                payload,
                reply,
            })
            .is_err()
        {
            return Err(InvokeError::ShuttingDown);
        }
        // Start an instance when the queue outgrows the idle ones.
        if self.queued.load(Ordering::SeqCst) > self.idle.load(Ordering::SeqCst)
            && self.instances.load(Ordering::SeqCst) < self.max_instances
        {
            if let Err(error) = self.clone().start_instance().await {
                self.log
                    .line(&self.config.name, &format!("could not start an instance: {error:#}"));
            }
        }
        response.await.unwrap_or(Err(InvokeError::ShuttingDown))
    }

    async fn start_instance(self: Arc<Self>) -> Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let number = self.next_instance.fetch_add(1, Ordering::SeqCst);
        let mut command = tokio::process::Command::new(&self.config.binary);
        command
            .env_clear()
            .envs(&self.config.environment)
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.config.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", self.config.memory_mb.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", self.config.name))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{number}"))
            .env("_HANDLER", "bootstrap")
            .env("TZ", ":UTC")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(parent) = self.config.binary.parent() {
            command.env("LAMBDA_TASK_ROOT", parent).current_dir(parent);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {} for {}", self.config.binary.display(), self.config.name))?;
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(show_lines(stdout, self.log.clone(), self.config.name.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(show_lines(stderr, self.log.clone(), self.config.name.clone()));
        }
        self.instances.fetch_add(1, Ordering::SeqCst);
        let instance = Arc::new(Instance {
            host: self.clone(),
            current: Mutex::new(None),
            stop: tokio::sync::Notify::new(),
        });
        tokio::spawn(instance.run(listener, child));
        Ok(())
    }
}

/// Show a handler's output, line by line, prefixed with its function.
async fn show_lines<R: tokio::io::AsyncRead + Unpin>(reader: R, log: LogSink, function: String) {
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        log.line(&function, &line);
    }
}

/// One process and its Runtime API server.
struct Instance {
    host: Arc<FunctionHost>,
    /// The invocation this instance is working on.
    current: Mutex<Option<(String, Reply)>>,
    /// Asks `run`, which owns the process, to stop it (a timeout, an init error).
    stop: tokio::sync::Notify,
}

impl Instance {
    async fn run(self: Arc<Self>, listener: tokio::net::TcpListener, mut child: tokio::process::Child) {
        let mut shutdown = self.host.shutdown.clone();
        let reason = loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let this = self.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let this = this.clone();
                            async move { Ok::<_, Infallible>(this.handle(request).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                status = child.wait() => break match status {
                    Ok(status) => format!("process exited with {status}"),
                    Err(error) => format!("process lost: {error}"),
                },
                _ = self.stop.notified() => break "process stopped".to_string(),
                _ = shutdown.changed() => break "shutting down".to_string(),
            }
        };
        let _ = child.kill().await;
        if let Some((_, reply)) = self.current.lock().unwrap().take() {
            let _ = reply.send(Err(InvokeError::Runtime(reason.clone())));
        }
        self.host.instances.fetch_sub(1, Ordering::SeqCst);
    }

    async fn handle(self: &Arc<Self>, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_string();
        let method = request.method().clone();
        let body = match request.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return respond(StatusCode::BAD_REQUEST, "{}"),
        };
        let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
            return respond(StatusCode::NOT_FOUND, r#"{"errorMessage":"unknown path"}"#);
        };
        match (method, rest) {
            (Method::GET, "invocation/next") => self.next().await,
            (Method::POST, "init/error") => {
                let message = String::from_utf8_lossy(&body).into_owned();
                self.host
                    .log
                    .line(&self.host.config.name, &format!("init error: {message}"));
                self.stop.notify_one();
                respond(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
            }
            (Method::POST, rest) => {
                let Some((request_id, kind)) = rest.strip_prefix("invocation/").and_then(|r| r.rsplit_once('/')) else {
                    return respond(StatusCode::NOT_FOUND, r#"{"errorMessage":"unknown path"}"#);
                };
                let reply = {
                    let mut current = self.current.lock().unwrap();
                    match current.as_ref() {
                        Some((id, _)) if id == request_id => current.take().map(|(_, reply)| reply),
                        _ => None,
                    }
                };
                let Some(reply) = reply else {
                    return respond(
                        StatusCode::BAD_REQUEST,
                        r#"{"errorMessage":"unknown or finished request id","errorType":"InvalidRequestID"}"#,
                    );
                };
                let result = match kind {
                    "response" => Ok(body),
                    "error" => {
                        let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                        Err(InvokeError::Function {
                            error_type: error["errorType"].as_str().unwrap_or("Unhandled").to_string(),
                            message: error["errorMessage"].as_str().unwrap_or_default().to_string(),
                        })
                    }
                    _ => return respond(StatusCode::NOT_FOUND, r#"{"errorMessage":"unknown path"}"#),
                };
                let _ = reply.send(result);
                respond(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
            }
            _ => respond(StatusCode::NOT_FOUND, r#"{"errorMessage":"unknown path"}"#),
        }
    }

    /// `GET /invocation/next`: wait for the next invocation of this function.
    async fn next(self: &Arc<Self>) -> Response<Full<Bytes>> {
        let host = &self.host;
        host.idle.fetch_add(1, Ordering::SeqCst);
        let job = {
            let mut queue = host.queue.lock().await;
            let mut shutdown = host.shutdown.clone();
            tokio::select! {
                job = queue.recv() => job,
                _ = shutdown.changed() => None,
            }
        };
        host.idle.fetch_sub(1, Ordering::SeqCst);
        let Some(job) = job else {
            // Shutting down: no answer at all (a runtime client treats any answer as an event);
            // the instance is being stopped.
            return std::future::pending().await;
        };
        host.queued.fetch_sub(1, Ordering::SeqCst);
        let timeout = host.config.timeout;
        let deadline_ms = SystemTime::now()
            .checked_add(timeout)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis())
            .unwrap_or_default();
        *self.current.lock().unwrap() = Some((job.request_id.clone(), job.reply));
        // The watchdog: past the timeout the invocation fails and the instance is stopped.
        let this = self.clone();
        let request_id = job.request_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let expired = {
                let mut current = this.current.lock().unwrap();
                match current.as_ref() {
                    Some((id, _)) if *id == request_id => current.take().map(|(_, reply)| reply),
                    _ => None,
                }
            };
            if let Some(reply) = expired {
                this.host.log.line(
                    &this.host.config.name,
                    &format!("{request_id}: task timed out after {timeout:?}"),
                );
                let _ = reply.send(Err(InvokeError::Timeout(timeout)));
                this.stop.notify_one();
            }
        });
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", &job.request_id)
            .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
            .header("lambda-runtime-invoked-function-arn", &host.config.arn)
            .header(
                "lambda-runtime-trace-id",
                format!("Root=1-{}", job.request_id.replace('-', "")),
            )
            .body(Full::new(job.payload))
            .expect("static response")
    }
}

fn respond(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("static response")
}
