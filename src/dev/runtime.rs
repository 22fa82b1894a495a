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
//!
//! Bounded and tracked: a function's instances and its queue have limits (a full queue refuses at
//! once, as Lambda throttles), and every task of every instance (its lifetime, its Runtime API
//! connections, its output readers) belongs to the `Runtime`'s tracker, which `Runtime::stop`
//! waits on. Nothing here spawns untracked work.

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
use tokio_util::task::TaskTracker;

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
    /// The function's queue was full: refused at once, as Lambda answers an invocation over its
    /// concurrency with `TooManyRequestsException`.
    Throttled {
        waiting: usize,
    },
    ShuttingDown,
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvokeError::Function { error_type, message } => write!(f, "{error_type}: {message}"),
            InvokeError::Init { error_type, message } => write!(f, "init error: {error_type}: {message}"),
            InvokeError::Timeout(after) => write!(f, "Task timed out after {:.2} seconds", after.as_secs_f64()),
            InvokeError::Runtime(why) => write!(f, "Runtime error: {why}"),
            InvokeError::Throttled { waiting } => write!(
                f,
                "TooManyRequestsException: Rate Exceeded. ({waiting} invocations already wait for an instance, the most `wsstack dev` queues per function)"
            ),
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

/// How much one function may hold at once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Handler processes at most.
    pub instances: usize,
    /// Invocations waiting for an instance at most; past it `invoke` fails with
    /// [`InvokeError::Throttled`].
    pub queued: usize,
}

/// What the function hosts of one `wsstack dev` share: the token that stops them, the tracker of
/// every task they spawn, and where their output goes.
#[derive(Clone)]
pub struct Runtime {
    shutdown: CancellationToken,
    tasks: TaskTracker,
    log: LogSink,
}

impl Runtime {
    pub fn new(shutdown: CancellationToken, log: LogSink) -> Runtime {
        Runtime {
            shutdown,
            tasks: TaskTracker::new(),
            log,
        }
    }

    /// A host for one function, its tasks tracked with every other host's.
    pub fn host(&self, config: FunctionConfig, limits: Limits) -> Arc<FunctionHost> {
        Arc::new(FunctionHost {
            config,
            pool: Mutex::new(Pool::default()),
            limits: Limits {
                instances: limits.instances.max(1),
                queued: limits.queued.max(1),
            },
            next_instance: AtomicUsize::new(0),
            runtime: self.clone(),
        })
    }

    /// Cancelled when the runtime stops; what invokes its functions (the pollers) stops with it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Tasks running now (instances, their connections and output readers).
    #[cfg(test)]
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// Stop every instance, then wait until each one's task has ended: its process killed and
    /// reaped, its invocation answered, its output read to the end. False if some were still
    /// running after `grace` (a handler's child holding its output open, say); they are left.
    pub async fn stop(&self, grace: Duration) -> bool {
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait()).await.is_err() {
            tracing::warn!(
                tasks = self.tasks.len(),
                "handler instances still running after {grace:?}; leaving them"
            );
            return false;
        }
        true
    }
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
    limits: Limits,
    next_instance: AtomicUsize,
    runtime: Runtime,
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
        if self.quiet {
            // Still for dev's console, which shows the handlers' errors (and WSSTACK_LOG=trace).
            tracing::trace!(target: "wsstack::handler", function, "{line}");
        } else {
            tracing::info!(target: "wsstack::handler", function, "{line}");
        }
    }
}

impl FunctionHost {
    /// Instances started and not yet ended.
    #[cfg(test)]
    pub fn instance_count(&self) -> usize {
        self.pool.lock().unwrap().instances
    }

    /// Invocations waiting in the queue.
    #[cfg(test)]
    pub fn queued_count(&self) -> usize {
        self.pool.lock().unwrap().queue.len()
    }

    /// Invoke the function with an event and wait for its response.
    pub async fn invoke(self: &Arc<Self>, payload: Bytes) -> Result<Bytes, InvokeError> {
        let shutdown = &self.runtime.shutdown;
        if shutdown.is_cancelled() {
            return Err(InvokeError::ShuttingDown);
        }
        let (reply, response) = oneshot::channel();
        self.dispatch(Job {
            request_id: uuid::Uuid::new_v4().to_string(),
            payload,
            reply,
        })?;
        tokio::select! {
            answer = response => answer.unwrap_or_else(|_| Err(if shutdown.is_cancelled() {
                InvokeError::ShuttingDown
            } else {
                InvokeError::Runtime("the instance ended as it took the invocation".into())
            })),
            _ = shutdown.cancelled() => Err(InvokeError::ShuttingDown),
        }
    }

    /// Give the job to an idle instance, else to a new instance, else to the queue if it has room.
    fn dispatch(self: &Arc<Self>, mut job: Job) -> Result<(), InvokeError> {
        let mut pool = self.pool.lock().unwrap();
        while let Some(idle) = pool.idle.pop_front() {
            match idle.send(job) {
                Ok(()) => return Ok(()),
                Err(returned) => job = returned, // that instance ended meanwhile
            }
        }
        if pool.instances < self.limits.instances {
            pool.instances += 1;
            drop(pool);
            self.start_instance(job);
        } else if pool.queue.len() < self.limits.queued {
            pool.queue.push_back(job);
        } else {
            let waiting = pool.queue.len();
            drop(pool);
            tracing::debug!(function = %self.config.name, waiting, "invocation queue full; throttled");
            return Err(InvokeError::Throttled { waiting });
        }
        Ok(())
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
        if self.runtime.shutdown.is_cancelled() || pool.instances >= self.limits.instances {
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
        self.runtime.tasks.spawn(async move {
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
