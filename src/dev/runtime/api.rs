//! One instance of a function: its process, the Runtime API server it talks to, and its watchdog.
//! The instance's own task owns the process and waits on it, on the watchdog deadline and on
//! shutdown; when it ends, whatever invocation it held is answered. Never a task per invocation;
//! the tasks it does spawn (one per Runtime API connection, one per output pipe) are the runtime's
//! tracked tasks, and its listener backs off on accept errors rather than spin.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{command, show_lines, spawn, FunctionHost, InvokeError, Job, Reply};
use crate::dev::backoff::Backoff;

/// Lambda gives the init phase 10 s, then retries it inside the first invocation with the
/// function's timeout: the first invocation of an instance waits at most both.
const INIT_LIMIT: Duration = Duration::from_secs(10);

/// Why an instance ended.
enum Ended {
    Exited(String),
    TimedOut,
    InitError,
    ShuttingDown,
}

pub(super) struct Instance {
    host: Arc<FunctionHost>,
    /// The invocation the instance was started for, until the runtime asks for it.
    first: Mutex<Option<Job>>,
    /// The invocation being worked on.
    current: Mutex<Option<(String, Reply)>>,
    /// When the watchdog stops the instance: init, then each invocation's timeout.
    deadline: watch::Sender<Option<Instant>>,
    /// What the runtime posted to `/init/error`.
    init_error: Mutex<Option<(String, String)>>,
    init_failed: Notify,
    /// Cancelled when the instance ends: requests of its runtime still waiting give up.
    alive: CancellationToken,
}

impl Instance {
    /// Start the process for `first`, serve its Runtime API until it ends, and answer whatever
    /// invocation it still held.
    pub(super) async fn run(host: Arc<FunctionHost>, number: usize, first: Job) {
        let name = host.config.name.clone();
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(error) => return fail_start(first, &name, format!("no port for the Runtime API: {error}")),
        };
        let runtime_api = match listener.local_addr() {
            Ok(address) => address.to_string(),
            Err(error) => return fail_start(first, &name, format!("no port for the Runtime API: {error}")),
        };
        let mut child = match spawn(&mut command(&host.config, &runtime_api, number)).await {
            Ok(child) => child,
            Err(error) => {
                let message = format!("starting {}: {error}", host.config.binary.display());
                return fail_start(first, &name, message);
            }
        };
        if let Some(stdout) = child.stdout.take() {
            let log = host.runtime.log.clone();
            host.runtime.tasks.spawn(show_lines(stdout, log, name.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            let log = host.runtime.log.clone();
            host.runtime.tasks.spawn(show_lines(stderr, log, name.clone()));
        }
        let init_deadline = Instant::now() + INIT_LIMIT + host.config.timeout;
        let instance = Arc::new(Instance {
            host,
            first: Mutex::new(Some(first)),
            current: Mutex::new(None),
            deadline: watch::Sender::new(Some(init_deadline)),
            init_error: Mutex::new(None),
            init_failed: Notify::new(),
            alive: CancellationToken::new(),
        });
        let ended = instance.clone().serve(listener, &mut child).await;
        let _ = child.kill().await;
        instance.alive.cancel();
        instance.answer_leftovers(ended);
    }

    async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener, child: &mut tokio::process::Child) -> Ended {
        let mut deadline = self.deadline.subscribe();
        let shutdown = self.host.runtime.shutdown.clone();
        // As the gateway's listener: an accept error (out of file descriptors) waits, ever longer,
        // while the process, the watchdog and shutdown are still watched.
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        let mut accept_again: Option<Instant> = None;
        loop {
            let until = *deadline.borrow_and_update();
            tokio::select! {
                accepted = listener.accept(), if accept_again.is_none() => match accepted {
                    Ok((stream, _)) => {
                        backoff.succeeded();
                        self.host.runtime.tasks.spawn(self.clone().serve_api(stream));
                    }
                    Err(error) => {
                        let delay = backoff.failed();
                        tracing::warn!(function = %self.host.config.name, %error, ?delay, "accepting a Runtime API connection failed; backing off");
                        accept_again = Some(Instant::now() + delay);
                    }
                },
                _ = sleep_until(accept_again), if accept_again.is_some() => accept_again = None,
                status = child.wait() => return Ended::Exited(match status {
                    Ok(status) => status.to_string(),
                    Err(error) => format!("lost: {error}"),
                }),
                _ = deadline.changed() => {}
                _ = sleep_until(until) => {
                    if self.expire() {
                        return Ended::TimedOut;
                    }
                }
                _ = self.init_failed.notified() => return Ended::InitError,
                _ = shutdown.cancelled() => return Ended::ShuttingDown,
            }
        }
    }

    /// One connection of the runtime; it ends with the instance.
    async fn serve_api(self: Arc<Self>, stream: tokio::net::TcpStream) {
        let alive = self.alive.clone();
        let service = hyper::service::service_fn(move |request| {
            let this = self.clone();
            async move { Ok::<_, Infallible>(this.handle(request).await) }
        });
        let http = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
        tokio::select! {
            _ = http => {}
            _ = alive.cancelled() => {}
        }
    }

    /// The watchdog fired: fail what the instance held. False if it was answered meanwhile.
    fn expire(&self) -> bool {
        let config = &self.host.config;
        if let Some(job) = self.first.lock().unwrap().take() {
            let message = format!(
                "the runtime did not ask for its first invocation within {:?}",
                INIT_LIMIT + config.timeout
            );
            self.host.runtime.log.line(&config.name, &message);
            let _ = job.reply.send(Err(InvokeError::Init {
                error_type: "Sandbox.Timedout".into(),
                message,
            }));
            return true;
        }
        if let Some((request_id, reply)) = self.current.lock().unwrap().take() {
            let timeout = config.timeout;
            self.host
                .runtime
                .log
                .line(&config.name, &format!("{request_id}: task timed out after {timeout:?}"));
            let _ = reply.send(Err(InvokeError::Timeout(timeout)));
            return true;
        }
        false
    }

    /// The instance ended: its first invocation (never taken) fails like Lambda's init errors, the
    /// invocation it was working on fails with the reason.
    fn answer_leftovers(&self, ended: Ended) {
        let init_error = self.init_error.lock().unwrap().take();
        if let Some(job) = self.first.lock().unwrap().take() {
            let error = match (&ended, init_error.clone()) {
                (Ended::ShuttingDown, _) => InvokeError::ShuttingDown,
                (_, Some((error_type, message))) => InvokeError::Init { error_type, message },
                (Ended::Exited(status), None) => InvokeError::Init {
                    error_type: "Runtime.ExitError".into(),
                    message: format!("Runtime exited with error: {status}"),
                },
                (_, None) => InvokeError::Init {
                    error_type: "Runtime.Unknown".into(),
                    message: "the runtime ended before its first invocation".into(),
                },
            };
            let _ = job.reply.send(Err(error));
        }
        if let Some((_, reply)) = self.current.lock().unwrap().take() {
            let error = match ended {
                Ended::ShuttingDown => InvokeError::ShuttingDown,
                Ended::Exited(status) => InvokeError::Runtime(format!("process exited with {status}")),
                Ended::TimedOut | Ended::InitError => InvokeError::Runtime("process stopped".into()),
            };
            let _ = reply.send(Err(error));
        }
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
                let (error_type, message) = error_fields(&body, "Runtime.InitError");
                self.host
                    .runtime
                    .log
                    .line(&self.host.config.name, &format!("init error: {error_type}: {message}"));
                *self.init_error.lock().unwrap() = Some((error_type, message));
                self.init_failed.notify_one();
                respond(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
            }
            (Method::POST, rest) => {
                let Some((request_id, kind)) = rest.strip_prefix("invocation/").and_then(|r| r.rsplit_once('/')) else {
                    return respond(StatusCode::NOT_FOUND, r#"{"errorMessage":"unknown path"}"#);
                };
                let result = match kind {
                    "response" => Ok(body),
                    "error" => {
                        let (error_type, message) = error_fields(&body, "Unhandled");
                        Err(InvokeError::Function { error_type, message })
                    }
                    _ => return respond(StatusCode::NOT_FOUND, r#"{"errorMessage":"unknown path"}"#),
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
                self.deadline.send_replace(None);
                let _ = reply.send(result);
                respond(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
            }
            _ => respond(StatusCode::NOT_FOUND, r#"{"errorMessage":"unknown path"}"#),
        }
    }

    /// `GET /invocation/next`: the instance's first invocation, else the next queued one, else
    /// wait as an idle instance.
    async fn next(self: &Arc<Self>) -> Response<Full<Bytes>> {
        let first = self.first.lock().unwrap().take();
        let job = match first {
            Some(job) => job,
            None => match self.host.take_or_wait() {
                Ok(job) => job,
                Err(waiting) => tokio::select! {
                    job = waiting => match job {
                        Ok(job) => job,
                        Err(_) => return std::future::pending().await,
                    },
                    // Ending: no answer at all (a runtime client takes any answer for an event).
                    _ = self.alive.cancelled() => return std::future::pending().await,
                },
            },
        };
        let timeout = self.host.config.timeout;
        let deadline_ms = SystemTime::now()
            .checked_add(timeout)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis())
            .unwrap_or_default();
        *self.current.lock().unwrap() = Some((job.request_id.clone(), job.reply));
        self.deadline.send_replace(Some(Instant::now() + timeout));
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", &job.request_id)
            .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
            .header("lambda-runtime-invoked-function-arn", &self.host.config.arn)
            .header(
                "lambda-runtime-trace-id",
                format!("Root=1-{}", job.request_id.replace('-', "")),
            )
            .body(Full::new(job.payload))
            .expect("static response")
    }
}

/// The instance could not start: its first invocation fails as Lambda's does when the bootstrap
/// cannot be run.
fn fail_start(first: Job, function: &str, message: String) {
    tracing::warn!(function, error = %message, "a handler instance could not start");
    let _ = first.reply.send(Err(InvokeError::Init {
        error_type: "Runtime.InvalidEntrypoint".into(),
        message,
    }));
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// `errorType` and `errorMessage` of an error the runtime posted.
fn error_fields(body: &[u8], default_type: &str) -> (String, String) {
    let error: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    (
        error["errorType"].as_str().unwrap_or(default_type).to_string(),
        error["errorMessage"].as_str().unwrap_or_default().to_string(),
    )
}

fn respond(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("static response")
}
