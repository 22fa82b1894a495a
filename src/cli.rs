//! The command line as clap types: global options and one variant per command.
//!
//! Only the shape of the arguments lives here; what a command does is in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "wsstack",
    version,
    about = "Provision a serverless WebSocket notification stack on AWS, no CloudFormation"
)]
pub struct Cli {
    /// The stack file.
    #[arg(short = 'f', long = "file", global = true, default_value = "stack.yaml")]
    pub file: PathBuf,
    /// AWS profile (default: the standard chain).
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// AWS region (default: the stack file's, then the standard chain).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Send every AWS call to this endpoint (an emulator); AWS_ENDPOINT_URL works too.
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// More detail.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Only the summary and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Deploy this handlers zip instead of the one built into wsstack.
    #[arg(long, global = true, env = "WSSTACK_HANDLERS_ZIP")]
    pub handlers_zip: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// `plan`, and its cost estimate.
#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    /// Instead of the changes, estimate what the stack costs a month on AWS for a workload (the
    /// flags below), from the stack file alone: no AWS call.
    #[arg(long)]
    pub cost: bool,
    /// Clients connected at every moment of the month.
    #[arg(long, default_value_t = 1_000, requires = "cost")]
    pub connections: u64,
    /// Entity events per second, on average.
    #[arg(long, default_value_t = 1.0, requires = "cost", value_parser = non_negative)]
    pub events_per_second: f64,
    /// Subscribers each event is pushed to.
    #[arg(long, default_value_t = 10, requires = "cost")]
    pub subscribers_per_event: u64,
    /// Subscriptions each connection makes.
    #[arg(long, default_value_t = 1, requires = "cost")]
    pub subscriptions_per_connection: u64,
    /// Size of one pushed message, in bytes.
    #[arg(long, default_value_t = 512, requires = "cost")]
    pub message_bytes: u64,
}

fn non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(format!("`{text}` is not a number of 0 or more")),
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create or update every resource of the stack to match the stack file.
    Up {
        /// When the account has no API Gateway CloudWatch Logs role in this region (access logs
        /// need one), create the role `wsstack-apigateway-cloudwatch-logs` and set it: an account
        /// setting, shared by every API of the account and region, that `down` leaves in place.
        #[arg(long)]
        set_account_logging_role: bool,
    },
    /// Show what `up` would change, without changing anything (exit 3 when it would change something).
    Plan(PlanArgs),
    /// Delete every resource of the stack (also a half-built one).
    Down {
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
    /// Show each resource as present, missing or drifted, and the live numbers (exit 3 unless all are in sync).
    Status {
        /// Read at most about this many table records to count connections (more: "at least").
        #[arg(long, default_value_t = 10_000)]
        scan_limit: u64,
    },
    /// Run the whole stack on this machine: AWS emulator, WebSocket gateway, handlers, event source.
    Dev(DevArgs),
    /// Connect to the stack's WebSocket URL (or URL), print every message as a JSON line.
    Connect(ConnectArgs),
    /// Put an entity update (--entity-id) or a user notification (--user-id) on the stack's event bus.
    SendEvent(SendEventArgs),
    /// Print a connection token signed with the stack's secret (a stack with `auth: {secret: generated}`).
    Token(TokenArgs),
    /// Replace the stack's secret with a new random key; the previous one stays valid for
    /// `auth.max_token_lifetime_seconds`, so nobody is logged out.
    RotateSecret {
        /// Rotate even while the previous rotation's window lasts: tokens signed with the key
        /// before the current one are then refused at once (for a leaked key).
        #[arg(long)]
        force: bool,
    },
    /// Write the stack's AsyncAPI 3.0 document (routes, pushes, events), generated from the stack file.
    Asyncapi(AsyncapiArgs),
    /// The stack's URLs, names and ARNs, for scripts (as `terraform output`).
    Outputs,
    /// The handlers' CloudWatch logs, merged in time order (also those of `wsstack dev`).
    Logs(LogsArgs),
    /// Print the JSON Schema of the stack file (for editors and CI checks).
    Schema,
    /// Write a commented stack.yaml and its schema into DIR (default: here); never overwrites.
    Init {
        /// The folder to write into (created if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Print a shell completion script: `wsstack completions bash > ~/.local/share/bash-completion/completions/wsstack`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

#[derive(Args, Debug)]
pub struct AsyncapiArgs {
    /// Write the document to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Put the real server address in the document (the running `wsstack dev`, else the deployed
    /// API), instead of AWS's URL template with the API id as a variable.
    #[arg(long)]
    pub deployed: bool,
}

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Port of the local gateway (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Remove the stack from the emulator when stopping.
    #[arg(long)]
    pub down_on_exit: bool,
    /// Close connections idle this long, in seconds (API Gateway: 600).
    #[arg(long, default_value_t = 600)]
    pub idle_timeout: u64,
    /// Close connections open this long, in seconds (API Gateway: 7200).
    #[arg(long, default_value_t = 7200)]
    pub max_connection: u64,
    /// Handler processes per function at most. The push function's two event sources (events and
    /// chunks) poll with 5 invocations each at the stack file's default.
    #[arg(long, default_value_t = 10)]
    pub max_instances: usize,
    /// WebSocket connections at once at most; past it the handshake is refused with HTTP 429, as
    /// API Gateway answers when a limit is hit (each connection holds an open file). Other HTTP
    /// connections (handshakes under way, management API calls) are capped apart, at 1024 (503).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Do not show the handlers' logs.
    #[arg(long)]
    pub quiet_handlers: bool,
    /// Install the pinned moto emulator into the per-user cache (python3 -m venv + pip), then exit.
    #[arg(long)]
    pub install_emulator: bool,
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// ws:// or wss:// URL (default: the running `wsstack dev`, else the stack's API).
    pub url: Option<String>,
    /// Subscribe to this entity (repeatable); waits for each acknowledgement before reading stdin.
    #[arg(long)]
    pub subscribe: Vec<String>,
    /// Ask for this Sec-WebSocket-Protocol.
    #[arg(long, conflicts_with = "token")]
    pub protocol: Option<String>,
    /// Connect with this token (sent as `Sec-WebSocket-Protocol: websocket, TOKEN`). `-` reads it
    /// from the first line of standard input (the lines after it are frames, as without it).
    /// Without --token and --protocol, the WSSTACK_TOKEN variable's token is used. A token on the
    /// command line is visible to other users in `ps`: prefer `-` or WSSTACK_TOKEN.
    #[arg(long)]
    pub token: Option<String>,
    /// Exit after this many messages (not counting the acknowledgements of --subscribe).
    #[arg(long)]
    pub count: Option<usize>,
    /// Give up (exit 1) after this many seconds.
    #[arg(long)]
    pub timeout: Option<f64>,
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// The user the token is for (its `sub`, or the stack's `user_claim`).
    #[arg(long)]
    pub user_id: String,
    /// Comma-separated globs of the entities the connection may subscribe to (this or --all-entities).
    #[arg(long, conflicts_with = "all_entities")]
    pub entities: Option<String>,
    /// Let the connection subscribe to every entity (the claim `["*"]`).
    #[arg(long)]
    pub all_entities: bool,
    /// How long the token is valid: a whole number with s, m, h or d; at most the stack's
    /// `auth.max_token_lifetime_seconds` (default: 1h, or that maximum when shorter).
    #[arg(long)]
    pub ttl: Option<String>,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("recipients").required(true).args(["entity_id", "user_id"])))]
pub struct SendEventArgs {
    /// The entity whose subscribers get the push (an entity update).
    #[arg(long)]
    pub entity_id: Option<String>,
    /// The user whose every open connection gets the push (a user notification).
    #[arg(long)]
    pub user_id: Option<String>,
    /// The message pushed.
    #[arg(long, conflicts_with = "detail")]
    pub message: Option<String>,
    /// A user notification's callback, passed on to the clients as it is.
    #[arg(long, conflicts_with = "detail")]
    pub callback: Option<String>,
    /// The whole event detail as a JSON object (entityId or userId is added).
    #[arg(long)]
    pub detail: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Only this handler (connect, disconnect, subscribe, unsubscribe, resume, push).
    pub handler: Option<String>,
    /// How far back to start: 30s, 10m, 2h, 1d.
    #[arg(long, default_value = "10m")]
    pub since: String,
    /// Keep polling for new lines until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
}
