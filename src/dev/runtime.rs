//! A Lambda Runtime API host: runs a function's `bootstrap` as child processes that speak the
//! Runtime API (next, response, error, init error) to a loopback server of ours, the way Lambda's
//! own runtime environment does.
//!
//! Each instance is one process with its own Runtime API server, so that a timeout or crash is
//! pinned to the instance that had the invocation. An invocation goes to an idle instance, else to
//! a new one (up to a limit) that owns it from the start, else waits in the function's queue. No
//! invocation is left waiting on a process that is gone: an instance that cannot start or dies
//! before taking its first invocation fails that invocation like Lambda's init errors, and a queue
//! left without instances gets a new one. A timed-out invocation stops its instance, as Lambda does.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

mod api;
mod emulation;

pub use emulation::{emulation, Emulation};

/// Why an invocation gave no response.
#[derive(Debug, Clone, PartialEq)]
pub enum InvokeError {
    /// The handler reported an error (`/invocation/{id}/error`).
    Function {
        error_type: String,
        message: String,
    },
    /// The instance meant for the invocation failed to start or to initialise (Lambda's
    /// `Runtime.InvalidEntrypoint`, `Runtime.ExitError`, or the runtime's `/init/error`).
    Init {
        error_type: String,
        message: String,
    },
    /// No response within the function's timeout; the instance was stopped.
    Timeout(Duration),
    /// The process died while it had the invocation.
    Runtime(String),
    ShuttingDown,
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvokeError::Function { error_type, message } => write!(f, "{error_type}: {message}"),
            InvokeError::Init { error_type, message } => write!(f, "init error: {error_type}: {message}"),
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

/// Where invocations wait and who can take them. One lock, held briefly, for all of it.
#[derive(Default)]
struct Pool {
    /// Invocations no instance could take yet.
    queue: VecDeque<Job>,
    /// Instances waiting in `/invocation/next`.
    idle: VecDeque<oneshot::Sender<Job>>,
    /// Instances started and not yet ended (idle, busy or starting).
    instances: usize,
}

/// The running instances of one function and its invocation queue.
pub struct FunctionHost {
    pub config: FunctionConfig,
    pool: Mutex<Pool>,
    max_instances: usize,
    next_instance: AtomicUsize,
    shutdown: CancellationToken,
    log: LogSink,
}

/// Where handler output goes: `tracing` events with the function's name, unless quiet.
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
            tracing::info!(target: "wsstack::handler", function, "{line}");
        }
    }
}

impl FunctionHost {
    pub fn new(
        config: FunctionConfig,
        max_instances: usize,
        shutdown: CancellationToken,
        log: LogSink,
    ) -> Arc<FunctionHost> {
        Arc::new(FunctionHost {
            config,
            pool: Mutex::new(Pool::default()),
            max_instances: max_instances.max(1),
            next_instance: AtomicUsize::new(0),
            shutdown,
            log,
        })
    }

    /// Instances started and not yet ended.
    #[cfg(test)]
    pub fn instance_count(&self) -> usize {
        self.pool.lock().unwrap().instances
    }

    /// Invoke the function with an event and wait for its response.
    pub async fn invoke(self: &Arc<Self>, payload: Bytes) -> Result<Bytes, InvokeError> {
        if self.shutdown.is_cancelled() {
            return Err(InvokeError::ShuttingDown);
        }
        let (reply, response) = oneshot::channel();
        self.dispatch(Job {
            request_id: uuid::Uuid::new_v4().to_string(),
            payload,
            reply,
        });
        tokio::select! {
            answer = response => answer.unwrap_or_else(|_| Err(if self.shutdown.is_cancelled() {
                InvokeError::ShuttingDown
            } else {
                InvokeError::Runtime("the instance ended as it took the invocation".into())
            })),
            _ = self.shutdown.cancelled() => Err(InvokeError::ShuttingDown),
        }
    }

    /// Give the job to an idle instance, else to a new instance, else to the queue.
    fn dispatch(self: &Arc<Self>, mut job: Job) {
        let mut pool = self.pool.lock().unwrap();
        while let Some(idle) = pool.idle.pop_front() {
            match idle.send(job) {
                Ok(()) => return,
                Err(returned) => job = returned, // that instance ended meanwhile
            }
        }
        if pool.instances < self.max_instances {
            pool.instances += 1;
            drop(pool);
            self.start_instance(job);
        } else {
            pool.queue.push_back(job);
        }
    }

    /// The job for an instance asking for work, or a way to wait for one.
    fn take_or_wait(&self) -> Result<Job, oneshot::Receiver<Job>> {
        let mut pool = self.pool.lock().unwrap();
        if let Some(job) = pool.queue.pop_front() {
            return Ok(job);
        }
        let (give, wait) = oneshot::channel();
        pool.idle.push_back(give);
        Err(wait)
    }

    /// An instance ended. Jobs still queued must not wait for an instance that will never come.
    fn instance_ended(self: &Arc<Self>) {
        let mut pool = self.pool.lock().unwrap();
        pool.instances -= 1;
        if self.shutdown.is_cancelled() || pool.instances >= self.max_instances {
            return;
        }
        if let Some(job) = pool.queue.pop_front() {
            pool.instances += 1;
            drop(pool);
            self.start_instance(job);
        }
    }

    /// A new instance, created for `first` (its first invocation, whatever happens to it).
    fn start_instance(self: &Arc<Self>, first: Job) {
        let number = self.next_instance.fetch_add(1, Ordering::SeqCst);
        let host = self.clone();
        tokio::spawn(async move {
            api::Instance::run(host.clone(), number, first).await;
            host.instance_ended();
        });
    }
}

/// The command that runs one instance of the function.
fn command(config: &FunctionConfig, runtime_api: &str, number: usize) -> tokio::process::Command {
    let mut command = match emulation(&config.binary) {
        Ok(Some(Emulation::Qemu { qemu, .. })) => {
            let mut command = tokio::process::Command::new(qemu);
            command.arg(&config.binary);
            command
        }
        // Unreadable or without an emulator: starting it directly reports why it cannot run.
        _ => tokio::process::Command::new(&config.binary),
    };
    command
        .env_clear()
        .envs(&config.environment)
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", &config.name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", config.memory_mb.to_string())
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", config.name))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{number}"))
        .env("_HANDLER", "bootstrap")
        .env("TZ", ":UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(parent) = config.binary.parent() {
        command.env("LAMBDA_TASK_ROOT", parent).current_dir(parent);
    }
    command
}

/// Start the process; again, after a moment, while its executable is busy (ETXTBSY: the file was
/// just written and another thread's fork still holds it open for writing).
async fn spawn(command: &mut tokio::process::Command) -> std::io::Result<tokio::process::Child> {
    let mut delay = Duration::from_millis(5);
    loop {
        match command.spawn() {
            Err(error) if error.raw_os_error() == Some(libc::ETXTBSY) && delay <= Duration::from_secs(1) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other,
        }
    }
}

/// Show a handler's output, line by line, with its function.
async fn show_lines<R: tokio::io::AsyncRead + Unpin>(reader: R, log: LogSink, function: String) {
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        log.line(&function, &line);
    }
}

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;
