//! `wsstack dev`: the whole stack on one machine, no AWS account, no Docker.
//!
//! The AWS APIs are the moto emulator (started here unless an endpoint is given), provisioned by the
//! same `up` as real AWS. Around it runs what AWS would run for us, reading back what `up` declared
//! (`read_back`): a WebSocket gateway for the API's routes (`gateway`), a Lambda runtime host for
//! the handler binaries (`binaries`, `runtime`), and SQS pollers for the event source mappings
//! (`poller`). This file only starts them, waits for Ctrl-C, and stops them.
//!
//! Every task is tracked and awaited at shutdown, in two steps: first the gateway closes every
//! connection (their `$disconnect` still runs), then pollers and handler processes stop; the
//! handlers' last lines are shipped to CloudWatch Logs before dev exits.

mod backoff;
mod binaries;
pub mod console;
pub mod credentials;
pub mod emulator;
mod events;
pub mod fd_limit;
pub mod gateway;
pub mod logs;
pub mod poller;
mod read_back;
pub mod runtime;
pub mod session;
#[cfg(test)]
mod test_support;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::aws::Aws;
use crate::bundle::Bundle;
use crate::graph::Values;
use crate::stack::Stack;
use binaries::Binaries;
use credentials::SessionCredentials;
use gateway::{ConnectAuthorizer, Gateway, GatewayConfig};
use read_back::{Declared, Functions};
use runtime::{FunctionHost, Limits, LogSink, Runtime};

/// How long shutdown waits for handler processes (and their output) to end, then for the last
/// handler lines to reach CloudWatch Logs.
const RUNTIME_GRACE: Duration = Duration::from_secs(10);
const LOGS_GRACE: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers (a handshake, a management API call)
/// before its connection is closed: a client that trickles them would otherwise hold a
/// connection for ever. Generous for anything on this machine.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub struct DevOptions {
    pub port: u16,
    pub idle_timeout: Duration,
    pub max_connection: Duration,
    /// Handler processes per function at most.
    pub max_instances: usize,
    /// SQS pollers per event source mapping.
    pub pollers: usize,
    /// WebSocket connections at once at most; past it handshakes are refused with 429.
    pub max_connections: usize,
    pub quiet_handlers: bool,
    /// The emulator endpoint the handlers use.
    pub endpoint: String,
    /// The note in `.wsstack/` this dev holds (see `session`), published once it serves.
    pub session: Option<session::Claim>,
}

/// A function's invocation queue holds what can wait on it at once: each WebSocket connection
/// waits on at most one invocation at a time (authorizer, `$connect`, one frame after the other,
/// `$disconnect`), and each poller on one (at most `max_instances` per source). Twice the
/// connections leaves room for the invocations of closing connections that stopped waiting: they
/// stay queued and run, as on Lambda. Past it, invocations are throttled.
fn queue_limit(options: &DevOptions) -> usize {
    options
        .max_connections
        .saturating_mul(2)
        .saturating_add(options.max_instances)
}

/// dev's own log: `tracing` events on stderr, filtered by `WSSTACK_LOG` (default `info`). The
/// lines it prints for the user go to stdout and stay as they are. The console's activity stream
/// is a second layer over the same events, with its own filter.
fn init_logging() -> console::Activity {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_from_env("WSSTACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let activity = console::Activity::new();
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        )
        .with(activity.layer())
        .try_init();
    activity
}

/// Serve the stack locally until Ctrl-C or SIGTERM. `resolved` is what `up` just produced: it
/// knows the API id.
pub async fn serve(stack: &Stack, aws: &Aws, resolved: &Values, bundle: &Bundle, options: DevOptions) -> Result<()> {
    let activity = init_logging();
    // Every client holds a descriptor: take all the process may have, and say when it runs short.
    let open_files = fd_limit::raise_to_hard_limit().context("raising the open-file limit")?;
    // The one place dev learns the API id.
    let api_id = resolved
        .api_id()
        .ok_or_else(|| anyhow!("the stack's WebSocket API is missing after up"))?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{}", options.port))?;
    let address = listener.local_addr()?;
    let callback_url = format!("http://{address}/{}", stack.stage);

    let binaries = Binaries::extract(stack, aws, bundle)?;
    let emulation = runtime::emulation(binaries.bundled())?;
    let (runtime, shipping, shipper) = handler_runtime(aws, options.quiet_handlers);
    let limits = Limits {
        instances: options.max_instances,
        queued: queue_limit(&options),
    };
    // The handlers' keys, and the management API's credential: this session's, never the caller's.
    let credentials = SessionCredentials::generate();
    let endpoints = (options.endpoint.as_str(), callback_url.as_str());
    let mut functions = Functions::new(aws, &runtime, &binaries, limits, endpoints, &credentials);
    let Declared {
        routes,
        two_way,
        authorizer,
        sources,
        paused,
    } = read_back::read_back(&mut functions, api_id, options.pollers).await?;

    // Two steps at shutdown: the gateway closes its connections (their $disconnect still runs),
    // then the pollers and handler processes stop.
    let stop_gateway = CancellationToken::new();
    let declared = (routes, two_way);
    let config = gateway_config(api_id, &stack.stage, &options, declared, authorizer, &credentials);
    let gateway = Gateway::new(config, address, stop_gateway.clone());
    let console = console::Console::new(aws.clone(), stack.clone(), activity, address);
    gateway.attach_console(console.clone());
    // The stage's throttling and access log, as `up` left them in the emulator.
    let stage_settings = gateway::stage_settings::read_back(aws, api_id, &stack.stage, shipper).await?;
    gateway.apply_stage_settings(stage_settings);
    let serving = tokio::spawn(gateway.clone().serve(listener));
    let background = TaskTracker::new();
    for source in &sources {
        for _ in 0..source.pollers {
            background.spawn(poller::run(aws.sqs.clone(), source.clone(), runtime.shutdown_token()));
        }
    }
    background.spawn(fd_limit::watch(open_files, runtime.shutdown_token()));
    background.spawn(console::watch_dead_letters(aws.clone(), runtime.shutdown_token()));
    background.close();

    let gateway_url = format!("ws://{address}/{}", stack.stage);
    publish_session(&options, aws, &gateway_url, &paused, &credentials)?;
    // Registered before "serving" is printed: a Ctrl-C right after it must stop dev cleanly.
    let stop = stop_signal();
    print_serving(
        &gateway_url,
        &callback_url,
        &console.url(),
        &options,
        emulation,
        open_files,
        sources.len(),
    );
    stop.await;

    let running = Running {
        gateway,
        stop_gateway,
        serving,
        runtime,
        background,
        shipping,
        paused,
    };
    running.shut_down(aws).await;
    drop(options.session);
    drop(binaries);
    println!("wsstack dev: stopped");
    Ok(())
}

/// What runs while dev serves, each part tracked, to be stopped in order.
struct Running {
    gateway: Arc<Gateway>,
    stop_gateway: CancellationToken,
    /// The gateway's task: it returns once its connections closed and their `$disconnect` ran.
    serving: tokio::task::JoinHandle<()>,
    runtime: Runtime,
    /// The pollers and the open-file watch; they stop with the runtime.
    background: TaskTracker,
    shipping: logs::Shipping,
    /// The emulator's event sources paused while dev polls them.
    paused: Vec<String>,
}

impl Running {
    /// The gateway first (its connections' `$disconnect` still run), then the handler processes
    /// (each instance's task, process and output) and the pollers; the emulator gets its event
    /// sources back, and the handlers' last lines are shipped.
    async fn shut_down(self, aws: &Aws) {
        println!(
            "wsstack dev: stopping: closing {} connections",
            self.gateway.connection_count()
        );
        self.stop_gateway.cancel();
        if let Err(error) = self.serving.await {
            tracing::warn!(%error, "the gateway's task failed");
        }
        self.runtime.stop(RUNTIME_GRACE).await;
        self.background.wait().await;
        read_back::resume_event_sources(aws, &self.paused).await;
        self.shipping.finish(LOGS_GRACE).await;
    }
}

/// Tell the other commands where this dev serves (see `session`), once it does.
fn publish_session(
    options: &DevOptions,
    aws: &Aws,
    gateway_url: &str,
    paused: &[String],
    credentials: &SessionCredentials,
) -> Result<()> {
    let Some(claim) = &options.session else { return Ok(()) };
    claim.publish(&session::Session {
        pid: std::process::id(),
        endpoint: options.endpoint.clone(),
        region: aws.region.clone(),
        gateway: gateway_url.to_string(),
        paused_event_sources: paused.to_vec(),
        management: Some(credentials.clone()),
    })
}

/// The runtime host of the handler processes, their lines shipped to CloudWatch Logs; and the
/// shipper, for the gateway's access log lines.
fn handler_runtime(aws: &Aws, quiet: bool) -> (Runtime, logs::Shipping, logs::LogShipper) {
    let (shipper, shipping) = logs::LogShipper::start(aws.logs.clone());
    let log = LogSink {
        quiet,
        cloudwatch: Some(shipper.clone()),
    };
    (Runtime::new(CancellationToken::new(), log), shipping, shipper)
}

/// The gateway over the routes and authorizer read back.
fn gateway_config(
    api_id: &str,
    stage: &str,
    options: &DevOptions,
    (routes, two_way): (HashMap<String, Arc<FunctionHost>>, HashSet<String>),
    authorizer: Option<ConnectAuthorizer>,
    credentials: &SessionCredentials,
) -> GatewayConfig {
    GatewayConfig {
        api_id: api_id.to_string(),
        stage: stage.to_string(),
        routes,
        two_way,
        authorizer,
        idle_timeout: options.idle_timeout,
        max_connection: options.max_connection,
        max_connections: options.max_connections,
        header_read_timeout: HEADER_READ_TIMEOUT,
        management: credentials.clone(),
    }
}

/// What the user sees once dev serves (stdout: the tests and the benchmark read the first line).
fn print_serving(
    gateway_url: &str,
    callback_url: &str,
    console_url: &str,
    options: &DevOptions,
    emulation: Option<runtime::Emulation>,
    open_files: u64,
    event_sources: usize,
) {
    println!("wsstack dev: serving {gateway_url}");
    println!(
        "  management API  {callback_url}/@connections/{{id}} (signed with this session's keys: the handlers' own)"
    );
    println!("  console         {console_url} (open it in a browser: connections, activity, send events, a client)");
    println!("  AWS emulator    {}", options.endpoint);
    if let Some(emulation) = &emulation {
        println!("  handlers        {emulation}");
    }
    println!("  open files      up to {open_files} (about one per client)");
    println!(
        "  connections     up to {} at once (--max-connections; past it handshakes get 429), and {} other HTTP connections (past it 503)",
        options.max_connections,
        gateway::OTHER_HTTP_CONNECTIONS
    );
    println!("  event sources   {event_sources} (polled here; the emulator's own poller is paused meanwhile)");
    println!("Ctrl-C stops it.");
    std::io::stdout().flush().ok();
}

/// SIGINT or SIGTERM; both handlers are installed when this is called, not when awaited.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
