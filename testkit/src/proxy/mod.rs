//! An HTTP proxy in front of the emulator that behaves more like real AWS.
//!
//! It logs every call (service, operation, read or write, start and end), can add a fixed latency
//! per call, and can answer chosen calls with the error real AWS would send, in the wire format of
//! the request's protocol (awsJson, awsQuery or restJson), so that the SDK parses it into the same
//! typed error it would get from AWS. In realism mode (`realism.rs`) it also remembers what went
//! through it and answers as AWS does where the emulator is kinder. It runs on its own thread
//! with its own runtime so that it serves blocking and async tests alike, and stops when dropped.

mod realism;
mod wire;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

pub use realism::{Behaviour, Realism, RealismCounts};
use realism::{Exchange, Verdict, World};
use wire::{error_response, identify, next_draw, transient_error};

/// One call that went through the proxy.
#[derive(Debug, Clone)]
pub struct Call {
    /// Signing name of the service (`iam`, `dynamodb`, `sqs`, `events`, `lambda`, ...).
    pub service: String,
    /// Operation name (`CreateQueue`), or `METHOD /path` for REST protocols.
    pub operation: String,
    /// Whether the call can change state.
    pub write: bool,
    /// Set when the proxy answered with an injected fault: instead of forwarding, or, for
    /// `LostAnswer(...)`, after forwarding (the write took effect).
    pub injected: Option<String>,
    pub status: u16,
    pub started: Duration,
    pub ended: Duration,
}

/// An error to answer instead of forwarding, for the next `times` calls that match.
#[derive(Debug, Clone)]
pub struct Fault {
    pub service: String,
    /// Operation to match: the operation name for JSON/query protocols, or `METHOD /path` for
    /// REST ones (e.g. `POST /2015-03-31/functions`). Empty matches every operation of the service.
    pub operation: String,
    pub times: usize,
    pub status: u16,
    pub code: String,
    pub message: String,
    /// Forward the call first (it takes effect), then answer with the error: a lost answer.
    pub after_forwarding: bool,
}

impl Fault {
    /// The next `times` matching calls take effect but are answered with a 503, as when AWS
    /// applies a request and its answer is lost.
    pub fn lost_answer(service: &str, operation: &str, times: usize) -> Fault {
        Fault {
            after_forwarding: true,
            ..Fault::new(
                service,
                operation,
                times,
                503,
                "ServiceUnavailable",
                "injected: applied, answer lost",
            )
        }
    }

    pub fn new(service: &str, operation: &str, times: usize, status: u16, code: &str, message: &str) -> Fault {
        Fault {
            service: service.into(),
            operation: operation.into(),
            times,
            status,
            code: code.into(),
            message: message.into(),
            after_forwarding: false,
        }
    }
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    faults: VecDeque<Fault>,
    latency: Duration,
    /// Fraction of calls (0..=1) answered with a transient error, and the PRNG state for it.
    transient_rate: f64,
    rng: u64,
    /// Fraction of write calls that are forwarded (so they take effect) but answered with a 503,
    /// as when AWS applies a request and the answer is lost: the SDK retries a done write.
    lost_write_rate: f64,
    realism: World,
}

/// A running proxy; stopped when dropped.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Start a proxy on a free loopback port that forwards to `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> Result<Proxy> {
        let upstream: hyper::Uri = upstream.parse()?;
        let state = Arc::new(Mutex::new(State {
            rng: 0x9e37_79b9_7f4a_7c15,
            ..State::default()
        }));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (shutdown_tx, mut shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread_state = state.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("proxy listener");
                let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
                let epoch = Instant::now();
                loop {
                    let (stream, _) = tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok(pair) => pair,
                            Err(_) => continue,
                        },
                        _ = &mut shutdown_rx => break,
                    };
                    let state = thread_state.clone();
                    let client = client.clone();
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            handle(request, state.clone(), client.clone(), upstream.clone(), epoch)
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Ok(Proxy {
            addr,
            state,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Calls that can change state.
    pub fn writes(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.write).collect()
    }

    /// Forget the calls logged so far.
    pub fn clear(&self) {
        self.state.lock().unwrap().calls.clear();
    }

    pub fn inject(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push_back(fault);
    }

    /// Faults not yet used up.
    pub fn pending_faults(&self) -> usize {
        self.state.lock().unwrap().faults.iter().map(|f| f.times).sum()
    }

    /// Turn realism mode's behaviours on or off (`Realism::off()` for none). What it remembered
    /// of earlier calls stays.
    pub fn set_realism(&self, realism: Realism) {
        self.state.lock().unwrap().realism.configure(realism);
    }

    /// Move realism mode's clock forward by `duration`: each window then closes as if that time
    /// had passed (once its behaviour has shown). Tests that assert what happens after a window
    /// give it a long duration and end it with this, instead of sleeping and racing the clock.
    pub fn pass_time(&self, duration: Duration) {
        self.state.lock().unwrap().realism.pass_time(duration);
    }

    /// What realism mode injected so far, per behaviour.
    pub fn realism_counts(&self) -> RealismCounts {
        self.state.lock().unwrap().realism.counts()
    }

    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    /// Forward this fraction of write calls but answer them with a 503 (the write took effect,
    /// its answer was lost). Shares the seeded generator with `set_transient_failure_rate`.
    pub fn set_lost_write_rate(&self, rate: f64, seed: u64) {
        let mut state = self.state.lock().unwrap();
        state.lost_write_rate = rate;
        state.rng = seed | 1;
    }

    /// Answer this fraction of calls (0.0..=1.0) with a transient error (503 or throttling).
    pub fn set_transient_failure_rate(&self, rate: f64, seed: u64) {
        let mut state = self.state.lock().unwrap();
        state.transient_rate = rate;
        state.rng = seed | 1;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn handle(
    request: Request<Incoming>,
    state: Arc<Mutex<State>>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    upstream: hyper::Uri,
    epoch: Instant,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let started = epoch.elapsed();
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let id = identify(&parts, &body);

    let (latency, injected, lose_answer) = {
        let mut state = state.lock().unwrap();
        let mut injected = None;
        let mut lost_fault = false;
        if let Some(index) = state.faults.iter().position(|f| {
            f.times > 0 && f.service == id.service && (f.operation.is_empty() || f.operation == id.operation)
        }) {
            let fault = &mut state.faults[index];
            fault.times -= 1;
            if fault.after_forwarding {
                lost_fault = true;
            } else {
                injected = Some((fault.status, fault.code.clone(), fault.message.clone()));
            }
            if fault.times == 0 {
                state.faults.remove(index);
            }
        } else if state.transient_rate > 0.0 {
            let draw = next_draw(&mut state.rng);
            if (draw >> 11) as f64 / (1u64 << 53) as f64 <= state.transient_rate {
                let (status, code) = transient_error(id.protocol, &id.service, draw >> 3);
                injected = Some((status, code.to_string(), "injected transient failure".to_string()));
            }
        }
        let mut lose_answer = lost_fault;
        if injected.is_none() && !lost_fault && id.write && state.lost_write_rate > 0.0 {
            let draw = next_draw(&mut state.rng);
            lose_answer = (draw >> 11) as f64 / (1u64 << 53) as f64 <= state.lost_write_rate;
        }
        (state.latency, injected, lose_answer)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let exchange = Exchange {
        service: &id.service,
        region: &id.region,
        operation: &id.operation,
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        body: &body,
    };
    // Decided when the call is served (after the latency), as AWS decides when it processes it.
    let consulted = injected.is_none();
    let verdict = match injected {
        Some(_) => None,
        None => state.lock().unwrap().realism.before(&exchange),
    };
    // Told to realism mode once the call is answered (it may count the call in flight).
    let said = verdict.clone();

    let (response, injected_code) = match (injected, verdict) {
        (Some((status, code, message)), _) => (
            error_response(id.protocol, &id.service, status, &code, &message),
            Some(code),
        ),
        (
            None,
            Some(Verdict::Error {
                status, code, message, ..
            }),
        ) => (
            error_response(id.protocol, &id.service, status, code, &message),
            Some(code.to_string()),
        ),
        (None, Some(Verdict::Answer { body, .. })) => (json_response(200, body.to_string().into_bytes()), None),
        (None, None) => {
            let uri: hyper::Uri = format!(
                "{}://{}{}",
                upstream.scheme_str().unwrap_or("http"),
                upstream.authority().expect("upstream has host:port"),
                path_and_query
            )
            .parse()
            .expect("valid upstream uri");
            let mut forward = Request::builder().method(parts.method.clone()).uri(uri);
            for (name, value) in parts.headers.iter() {
                forward = forward.header(name, value);
            }
            let forward = forward.body(Full::new(body.clone())).expect("forward request");
            match client.request(forward).await {
                Ok(upstream_response) => {
                    let (mut parts, upstream_body) = upstream_response.into_parts();
                    let mut upstream_body = upstream_body.collect().await?.to_bytes();
                    // The write took effect whatever its answer becomes: realism mode learns it.
                    let reshaped =
                        state
                            .lock()
                            .unwrap()
                            .realism
                            .after(&exchange, parts.status.as_u16(), &upstream_body);
                    if let Some(reshaped) = reshaped {
                        parts.headers.remove(hyper::header::CONTENT_LENGTH);
                        upstream_body = Bytes::from(reshaped);
                    }
                    if lose_answer && parts.status.is_success() {
                        let lost = "LostAnswer(ServiceUnavailable)".to_string();
                        (
                            error_response(
                                id.protocol,
                                &id.service,
                                503,
                                "ServiceUnavailable",
                                "injected: applied, answer lost",
                            ),
                            Some(lost),
                        )
                    } else {
                        (Response::from_parts(parts, Full::new(upstream_body)), None)
                    }
                }
                Err(error) => (
                    Response::builder()
                        .status(502)
                        .body(Full::new(Bytes::from(format!("proxy: upstream failed: {error}"))))
                        .expect("static response"),
                    None,
                ),
            }
        }
    };
    if consulted {
        state.lock().unwrap().realism.finished(&exchange, said.as_ref());
    }
    let call = Call {
        service: id.service.clone(),
        operation: id.operation.clone(),
        write: id.write,
        injected: injected_code,
        status: response.status().as_u16(),
        started,
        ended: epoch.elapsed(),
    };
    state.lock().unwrap().calls.push(call);
    Ok(response)
}

fn json_response(status: u16, body: Vec<u8>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-requestid", "00000000-0000-0000-0000-000000000000")
        .body(Full::new(Bytes::from(body)))
        .expect("static response")
}
