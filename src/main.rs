//! wsstack: provision a serverless WebSocket notification stack on AWS straight through the SDK.
//!
//! This file is the command line: argument parsing, loading the stack file, and turning results
//! into output and exit codes (0 ok, 1 AWS or runtime failure, 2 bad input, 3 not in sync).

mod aws;
mod bundle;
mod connect;
mod dev;
mod engine;
mod names;
mod plan;
mod progress;
mod resources;
mod retry;
mod stack;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

use crate::aws::{Aws, Target};
use crate::bundle::Bundle;
use crate::engine::{Outcome, Report, Verb};
use crate::names::Names;
use crate::progress::Progress;
use crate::resources::{Change, State};
use crate::stack::StackFile;

#[derive(Parser, Debug)]
#[command(
    name = "wsstack",
    version,
    about = "Provision a serverless WebSocket notification stack on AWS, no CloudFormation"
)]
struct Cli {
    /// The stack file.
    #[arg(short = 'f', long = "file", global = true, default_value = "stack.yaml")]
    file: PathBuf,
    /// AWS profile (default: the standard chain).
    #[arg(long, global = true, env = "AWS_PROFILE")]
    profile: Option<String>,
    /// AWS region (default: the stack file's, then the standard chain).
    #[arg(long, global = true)]
    region: Option<String>,
    /// Send every AWS call to this endpoint (an emulator); AWS_ENDPOINT_URL works too.
    #[arg(long, global = true)]
    endpoint_url: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Text)]
    output: Format,
    /// More detail.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    verbose: bool,
    /// Only the summary and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Deploy this handlers zip instead of the one built into wsstack.
    #[arg(long, global = true, env = "WSSTACK_HANDLERS_ZIP")]
    handlers_zip: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create or update every resource of the stack to match the stack file.
    Up,
    /// Show what `up` would change, without changing anything (exit 3 when it would change something).
    Plan,
    /// Delete every resource of the stack (also a half-built one).
    Down {
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
    /// Show each resource as present, missing or drifted (exit 3 unless all are in sync).
    Status,
    /// Run the whole stack on this machine: AWS emulator, WebSocket gateway, handlers, event source.
    Dev {
        /// Port of the local gateway (0 picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Remove the stack from the emulator when stopping.
        #[arg(long)]
        down_on_exit: bool,
        /// Close connections idle this long, in seconds (API Gateway: 600).
        #[arg(long, default_value_t = 600)]
        idle_timeout: u64,
        /// Close connections open this long, in seconds (API Gateway: 7200).
        #[arg(long, default_value_t = 7200)]
        max_connection: u64,
        /// Handler processes per function at most.
        #[arg(long, default_value_t = 8)]
        max_instances: usize,
        /// Do not show the handlers' logs.
        #[arg(long)]
        quiet_handlers: bool,
    },
    /// Connect to the stack's WebSocket URL (or URL), print every message as a JSON line.
    Connect {
        /// ws:// or wss:// URL (default: the running `wsstack dev`, else the stack's API).
        url: Option<String>,
        /// Subscribe to this entity (repeatable).
        #[arg(long)]
        subscribe: Vec<String>,
        /// Ask for this Sec-WebSocket-Protocol.
        #[arg(long)]
        protocol: Option<String>,
        /// Exit after this many messages.
        #[arg(long)]
        count: Option<usize>,
        /// Give up (exit 1) after this many seconds.
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Put an "entity updated" event on the stack's event bus.
    SendEvent {
        /// The entity whose subscribers get the push.
        #[arg(long)]
        entity_id: String,
        /// The message pushed to subscribers.
        #[arg(long, conflicts_with = "detail")]
        message: Option<String>,
        /// The whole event detail as a JSON object (entityId is added).
        #[arg(long)]
        detail: Option<String>,
    },
}

/// A failure with the exit code it maps to.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure {
            code: 1,
            error: error.into(),
        }
    }
}

fn bad_input(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: 2,
        error: error.into(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    if let Command::Connect { url: Some(url), .. } = &cli.command {
        return connect_command(&cli, url.clone()).await;
    }
    let file = stack::load(&cli.file).map_err(bad_input)?;
    let mut target = Target {
        profile: cli.profile.clone(),
        region: cli.region.clone(),
        endpoint_url: cli.endpoint_url.clone(),
        local_credentials: false,
    };
    let endpoint_in_env = std::env::var("AWS_ENDPOINT_URL").ok().filter(|e| !e.is_empty());
    let session_file = dev::session::path(&cli.file, &file.stack.name, &file.stack.stage);
    // One `wsstack dev` per stack file, whatever its endpoint: the second is refused here.
    let mut dev_session = match cli.command {
        Command::Dev { .. } => Some(dev::session::claim(&session_file).map_err(bad_input)?),
        _ => None,
    };
    let mut _emulator = None;
    if target.endpoint_url.is_none() && endpoint_in_env.is_none() {
        if matches!(cli.command, Command::Dev { .. }) {
            let stack_dir = cli
                .file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let emulator = dev::emulator::start(stack_dir).await.map_err(bad_input)?;
            target.endpoint_url = Some(emulator.endpoint.clone());
            target.local_credentials = true;
            _emulator = Some(emulator);
        } else if let Some(session) = dev::session::live(&session_file) {
            // A `wsstack dev` runs this stack: talk to its emulator.
            if !cli.quiet && cli.output == Format::Text {
                eprintln!(
                    "(using the local stack of `wsstack dev`, pid {}, at {})",
                    session.pid, session.endpoint
                );
            }
            target.endpoint_url = Some(session.endpoint);
            target.region = target.region.or(Some(session.region));
            target.local_credentials = std::env::var_os("AWS_ACCESS_KEY_ID").is_none();
        }
    }
    let local = target.endpoint_url.is_some() || endpoint_in_env.is_some();
    let region = match aws::resolve_region(&target, file.stack.region.as_deref()).await {
        Some(region) => region,
        // An emulator does not care which region; AWS does.
        None if local => "us-east-1".to_string(),
        None => {
            return Err(bad_input(anyhow!(
                "no AWS region: set `region:` in {}, pass --region, or set AWS_REGION",
                cli.file.display()
            )))
        }
    };
    if !stack::is_region(&region) {
        return Err(bad_input(anyhow!("`{region}` is not an AWS region")));
    }
    file.check_region(&region).map_err(bad_input)?;
    let config = aws::sdk_config(&target, &region).await;
    let names = Names::new(&file.stack, &region);

    match &cli.command {
        Command::Up => up(&cli, &file, config, names).await.map(|_| 0),
        Command::Plan => plan_command(&cli, &file, config, names).await,
        Command::Down { yes } => down(&cli, &file, config, names, *yes).await,
        Command::Status => status(&cli, &file, config, names).await,
        Command::Dev {
            port,
            down_on_exit,
            idle_timeout,
            max_connection,
            max_instances,
            quiet_handlers,
        } => {
            let (aws, bundle) = up(&cli, &file, config.clone(), names.clone()).await?;
            let endpoint = target.endpoint_url.clone().or(endpoint_in_env).unwrap_or_default();
            let options = dev::DevOptions {
                port: *port,
                idle_timeout: std::time::Duration::from_secs(*idle_timeout),
                max_connection: std::time::Duration::from_secs(*max_connection),
                max_instances: *max_instances,
                pollers: 2,
                quiet_handlers: *quiet_handlers,
                endpoint,
                session: dev_session.take(),
            };
            dev::serve(&file.stack, &aws, &bundle, options).await?;
            if *down_on_exit {
                return down(&cli, &file, config, names, true).await;
            }
            Ok(0)
        }
        Command::Connect { url, .. } => {
            let url = match url {
                Some(url) => url.clone(),
                None => match dev::session::live(&session_file) {
                    Some(session) => session.gateway,
                    None => {
                        let aws = Aws::connect(config, names).await?;
                        resources::api::discover(&aws, &file.stack.name, &file.stack.stage).await?;
                        aws.websocket_url(&file.stack.stage).ok_or_else(|| {
                            bad_input(anyhow!(
                                "stack {} has no WebSocket API yet: run `wsstack up` (or `wsstack dev`)",
                                file.stack.name
                            ))
                        })?
                    }
                },
            };
            connect_command(&cli, url).await
        }
        Command::SendEvent {
            entity_id,
            message,
            detail,
        } => send_event(&cli, &file, &config, entity_id, message.as_deref(), detail.as_deref()).await,
    }
}

fn header(cli: &Cli, verb: &str, file: &StackFile, aws: &Aws) {
    if cli.output == Format::Text && !cli.quiet {
        println!(
            "wsstack {verb}: stack {} stage {} in {} (account {})",
            file.stack.name, file.stack.stage, aws.region, aws.account
        );
    }
}

/// `up`: make AWS match the stack file. Returns the connected clients (with the API id known) and
/// the handlers package, for `dev` to serve the same stack.
async fn up(
    cli: &Cli,
    file: &StackFile,
    config: aws_config::SdkConfig,
    names: Names,
) -> Result<(Aws, Bundle), Failure> {
    let started = Instant::now();
    let bundle = bundle::load(cli.handlers_zip.as_deref()).map_err(bad_input)?;
    let aws = Aws::connect(config, names).await?;
    header(cli, "up", file, &aws);
    resources::api::discover(&aws, &file.stack.name, &file.stack.stage).await?;
    let resources = plan::resources(&file.stack, &aws, Some(&bundle));
    let progress = Progress::new(cli.output == Format::Text && !cli.quiet);
    let reports = engine::run(&resources, &aws, Verb::Ensure, &progress).await?;
    let failed = engine::any_failed(&reports);
    let count = |wanted: fn(&Change) -> bool| {
        reports
            .iter()
            .filter(|r| matches!(&r.outcome, Outcome::Changed(c) if wanted(c)))
            .count()
    };
    let created = count(|c| matches!(c, Change::Created));
    let updated = count(|c| matches!(c, Change::Updated(_)));
    let deleted = count(|c| matches!(c, Change::Deleted));
    let unchanged = count(|c| matches!(c, Change::Unchanged));
    let elapsed = started.elapsed().as_secs_f64();
    match cli.output {
        Format::Json => print_json(&json!({
            "command": "up",
            "stack": file.stack.name,
            "stage": file.stack.stage,
            "region": aws.region,
            "account": aws.account,
            "resources": reports_json(&reports),
            "summary": {"created": created, "updated": updated, "deleted": deleted, "unchanged": unchanged, "failed": failed},
            "outputs": outputs(&file.stack, &aws),
            "seconds": elapsed,
        })),
        Format::Text => {
            if !failed && !cli.quiet {
                print_outputs(&file.stack, &aws);
            }
            if created + updated + deleted == 0 && !failed {
                println!("no changes ({unchanged} resources up to date, {elapsed:.1} s)");
            } else {
                println!(
                    "summary: {created} created, {updated} updated, {deleted} deleted, {unchanged} unchanged ({elapsed:.1} s)"
                );
            }
        }
    }
    if failed {
        for line in failures(&reports) {
            eprintln!("error: {line}");
        }
        return Err(Failure {
            code: 1,
            error: anyhow!("up did not finish; run it again to converge (it picks up where it stopped)"),
        });
    }
    Ok((aws, bundle))
}

async fn down(
    cli: &Cli,
    file: &StackFile,
    config: aws_config::SdkConfig,
    names: Names,
    yes: bool,
) -> Result<u8, Failure> {
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(bad_input(anyhow!(
                "refusing to delete stack {} without confirmation: stdin is not a terminal; pass --yes",
                file.stack.name
            )));
        }
        print!(
            "Delete every resource of stack {} (stage {}) in {}? [y/N] ",
            file.stack.name, file.stack.stage, names.region
        );
        std::io::stdout().flush().ok();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .context("reading the confirmation")?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            println!("nothing deleted");
            return Ok(0);
        }
    }
    let started = Instant::now();
    let aws = Aws::connect(config, names).await?;
    header(cli, "down", file, &aws);
    resources::api::discover(&aws, &file.stack.name, &file.stack.stage).await?;
    let resources = plan::resources(&file.stack, &aws, None);
    let progress = Progress::new(cli.output == Format::Text && !cli.quiet);
    let reports = engine::run(&resources, &aws, Verb::Destroy, &progress).await?;
    let failed = engine::any_failed(&reports);
    let deleted = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Changed(Change::Deleted)))
        .count();
    let elapsed = started.elapsed().as_secs_f64();
    match cli.output {
        Format::Json => print_json(&json!({
            "command": "down",
            "stack": file.stack.name,
            "stage": file.stack.stage,
            "resources": reports_json(&reports),
            "summary": {"deleted": deleted, "failed": failed},
            "seconds": elapsed,
        })),
        Format::Text => println!("summary: {deleted} deleted ({elapsed:.1} s)"),
    }
    if failed {
        for line in failures(&reports) {
            eprintln!("error: {line}");
        }
        return Err(Failure {
            code: 1,
            error: anyhow!("down did not finish; run it again to remove the rest"),
        });
    }
    Ok(0)
}

/// Read every resource (no writes): what `status` and `plan` show.
async fn inspect_all(
    cli: &Cli,
    file: &StackFile,
    config: aws_config::SdkConfig,
    names: Names,
) -> Result<(Aws, Vec<Report>), Failure> {
    // Without a handlers package the code is simply not compared.
    let bundle = bundle::load(cli.handlers_zip.as_deref()).ok();
    let aws = Aws::connect(config, names).await?;
    resources::api::discover(&aws, &file.stack.name, &file.stack.stage).await?;
    let resources = plan::resources(&file.stack, &aws, bundle.as_ref());
    let reports = engine::run(&resources, &aws, Verb::Inspect, &Progress::new(false)).await?;
    if engine::any_failed(&reports) {
        for line in failures(&reports) {
            eprintln!("error: {line}");
        }
        return Err(Failure {
            code: 1,
            error: anyhow!("could not read every resource"),
        });
    }
    Ok((aws, reports))
}

async fn plan_command(cli: &Cli, file: &StackFile, config: aws_config::SdkConfig, names: Names) -> Result<u8, Failure> {
    let (aws, reports) = inspect_all(cli, file, config, names).await?;
    let count = |wanted: fn(&State) -> bool| {
        reports
            .iter()
            .filter(|r| matches!(&r.outcome, Outcome::Inspected(s) if wanted(s)))
            .count()
    };
    let create = count(|s| matches!(s, State::Missing));
    let update = count(|s| matches!(s, State::Drifted(_)));
    let delete = count(|s| matches!(s, State::Unwanted));
    let unchanged = count(|s| matches!(s, State::InSync));
    let foreign = count(|s| matches!(s, State::Foreign(_)));
    match cli.output {
        Format::Json => print_json(&json!({
            "command": "plan",
            "stack": file.stack.name,
            "stage": file.stack.stage,
            "region": aws.region,
            "account": aws.account,
            "resources": reports.iter().map(|r| {
                let (action, details) = match &r.outcome {
                    Outcome::Inspected(State::Missing) => ("create", Value::Null),
                    Outcome::Inspected(State::Drifted(diffs)) => ("update", json!(diffs)),
                    Outcome::Inspected(State::Unwanted) => ("delete", Value::Null),
                    Outcome::Inspected(State::Foreign(why)) => ("blocked", json!(why)),
                    _ => ("unchanged", Value::Null),
                };
                json!({"key": r.key, "kind": r.kind, "name": r.name, "action": action, "details": details})
            }).collect::<Vec<_>>(),
            "summary": {"create": create, "update": update, "delete": delete, "unchanged": unchanged, "blocked": foreign},
        })),
        Format::Text => {
            header(cli, "plan", file, &aws);
            for report in &reports {
                if let Outcome::Inspected(state) = &report.outcome {
                    let line = plan_line(report.kind, &report.name, state);
                    if cli.verbose || !matches!(state, State::InSync) {
                        println!("{line}");
                    }
                }
            }
            if create + update + delete + foreign == 0 {
                println!(
                    "no changes: the stack matches {} ({unchanged} resources)",
                    file.path.display()
                );
            } else {
                println!("plan: {create} to create, {update} to update, {delete} to delete, {unchanged} unchanged");
            }
            if foreign > 0 {
                println!("{foreign} resources belong to someone else: `up` will stop at them");
            }
        }
    }
    Ok(if create + update + delete + foreign == 0 { 0 } else { 3 })
}

fn plan_line(kind: &str, name: &str, state: &State) -> String {
    match state {
        State::Missing => format!("  + create     {kind:<17} {name}"),
        State::Unwanted => format!("  - delete     {kind:<17} {name}"),
        State::InSync => format!("  = unchanged  {kind:<17} {name}"),
        State::Foreign(why) => format!("  ! blocked    {kind:<17} {name}  ({why})"),
        State::Drifted(diffs) => {
            let mut text = format!("  ~ update     {kind:<17} {name}");
            for diff in diffs {
                text.push_str(&format!("\n      {}: {} -> {}", diff.field, diff.current, diff.desired));
            }
            text
        }
    }
}

async fn status(cli: &Cli, file: &StackFile, config: aws_config::SdkConfig, names: Names) -> Result<u8, Failure> {
    let (aws, reports) = inspect_all(cli, file, config, names).await?;
    let in_sync = reports
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Inspected(State::InSync)));
    match cli.output {
        Format::Json => print_json(&json!({
            "command": "status",
            "stack": file.stack.name,
            "stage": file.stack.stage,
            "region": aws.region,
            "account": aws.account,
            "in_sync": in_sync,
            "resources": reports_json(&reports),
            "outputs": outputs(&file.stack, &aws),
        })),
        Format::Text => {
            header(cli, "status", file, &aws);
            for report in &reports {
                println!("{}", progress::line(report.kind, &report.name, &report.outcome));
            }
            print_outputs(&file.stack, &aws);
            println!(
                "{}",
                if in_sync {
                    "in sync"
                } else {
                    "not in sync: run `wsstack up`"
                }
            );
        }
    }
    if engine::any_failed(&reports) {
        for line in failures(&reports) {
            eprintln!("error: {line}");
        }
        return Err(Failure {
            code: 1,
            error: anyhow!("could not read every resource"),
        });
    }
    Ok(if in_sync { 0 } else { 3 })
}

async fn send_event(
    cli: &Cli,
    file: &StackFile,
    config: &aws_config::SdkConfig,
    entity_id: &str,
    message: Option<&str>,
    detail: Option<&str>,
) -> Result<u8, Failure> {
    let detail = event_detail(entity_id, message, detail).map_err(bad_input)?;
    let stack = &file.stack;
    let events = aws_sdk_eventbridge::Client::new(config);
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source(plan::event_source(stack))
        .detail_type(&stack.events.detail_type)
        .detail(detail.to_string())
        .event_bus_name(&stack.events.bus)
        .build();
    let output = events
        .put_events()
        .entries(entry)
        .send()
        .await
        .map_err(|e| aws::sdk_error(format!("putting the event on bus {}", stack.events.bus), e))?;
    // PutEvents answers 200 even when the entry failed.
    let result = output.entries().first();
    if output.failed_entry_count > 0 || result.and_then(|e| e.error_code()).is_some() {
        let (code, message) = result
            .map(|e| (e.error_code().unwrap_or("unknown"), e.error_message().unwrap_or("")))
            .unwrap_or(("unknown", ""));
        return Err(anyhow!("EventBridge rejected the event: {code}: {message}").into());
    }
    let event_id = result.and_then(|e| e.event_id()).unwrap_or_default();
    match cli.output {
        Format::Json => print_json(
            &json!({"event_id": event_id, "bus": stack.events.bus, "detail_type": stack.events.detail_type, "detail": detail}),
        ),
        Format::Text => {
            if cli.quiet {
                println!("{event_id}");
            } else {
                println!(
                    "sent event {event_id} ({}, entityId {entity_id}) to bus {}",
                    stack.events.detail_type, stack.events.bus
                );
            }
        }
    }
    Ok(0)
}

async fn connect_command(cli: &Cli, url: String) -> Result<u8, Failure> {
    let Command::Connect {
        subscribe,
        protocol,
        count,
        timeout,
        ..
    } = &cli.command
    else {
        unreachable!("connect_command is only called for connect");
    };
    if let Some(timeout) = timeout {
        if !timeout.is_finite() || *timeout <= 0.0 {
            return Err(bad_input(anyhow!("--timeout must be a positive number of seconds")));
        }
    }
    Ok(connect::run(connect::ConnectOptions {
        url,
        subscribe: subscribe.clone(),
        protocol: protocol.clone(),
        count: *count,
        timeout: timeout.map(std::time::Duration::from_secs_f64),
        quiet: cli.quiet,
    })
    .await?)
}

/// The event detail: `--detail` (an object) or `{}`, with entityId and message set.
fn event_detail(entity_id: &str, message: Option<&str>, detail: Option<&str>) -> Result<Value> {
    if entity_id.is_empty() {
        return Err(anyhow!("--entity-id must not be empty"));
    }
    let mut detail = match detail {
        Some(text) => serde_json::from_str::<Value>(text).map_err(|e| anyhow!("--detail is not valid JSON: {e}"))?,
        None => json!({}),
    };
    let object = detail
        .as_object_mut()
        .ok_or_else(|| anyhow!("--detail must be a JSON object, like {{\"message\": \"...\"}}"))?;
    match object.get("entityId") {
        Some(Value::String(id)) if id != entity_id => {
            return Err(anyhow!("--detail has entityId `{id}` but --entity-id is `{entity_id}`"));
        }
        Some(other) if !other.is_string() => return Err(anyhow!("--detail: entityId must be a string")),
        _ => {}
    }
    object.insert("entityId".into(), Value::String(entity_id.into()));
    if let Some(message) = message {
        object.insert("message".into(), Value::String(message.into()));
    }
    Ok(detail)
}

fn outputs(stack: &stack::Stack, aws: &Aws) -> Value {
    json!({
        "websocket_url": aws.websocket_url(&stack.stage),
        "callback_url": aws.callback_url(&stack.stage),
        "table": aws.names.table(),
        "queue_arn": aws.arns.queue(&aws.names.queue()),
        "dead_letter_queue_arn": aws.arns.queue(&aws.names.dead_letter_queue()),
        "rule_arn": aws.arns.rule(&stack.events.bus, &aws.names.rule()),
    })
}

fn print_outputs(stack: &stack::Stack, aws: &Aws) {
    if let Value::Object(map) = outputs(stack, aws) {
        for (key, value) in map {
            println!("  {key:<22} {}", value.as_str().unwrap_or("(not created yet)"));
        }
    }
}

fn reports_json(reports: &[Report]) -> Value {
    Value::Array(
        reports
            .iter()
            .map(|r| {
                let (_, word, _) = progress::describe(&r.outcome);
                let details = match &r.outcome {
                    Outcome::Changed(Change::Updated(diffs)) | Outcome::Inspected(State::Drifted(diffs)) => json!(diffs),
                    Outcome::Changed(Change::Skipped(why))
                    | Outcome::Inspected(State::Foreign(why))
                    | Outcome::Failed(why)
                    | Outcome::NotAttempted(why) => json!(why),
                    _ => Value::Null,
                };
                json!({"key": r.key, "kind": r.kind, "name": r.name, "state": word, "details": details, "seconds": r.elapsed.as_secs_f64()})
            })
            .collect(),
    )
}

fn failures(reports: &[Report]) -> Vec<String> {
    reports
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Failed(e) => Some(format!("{} {}: {e}", r.kind, r.name)),
            Outcome::NotAttempted(why) => Some(format!("{} {}: not attempted: {why}", r.kind, r.name)),
            _ => None,
        })
        .collect()
}

fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_gets_entity_and_message() {
        let detail = event_detail("e1", Some("hi"), None).unwrap();
        assert_eq!(detail, json!({"entityId": "e1", "message": "hi"}));
        let detail = event_detail("e1", None, Some(r#"{"message":"m","extra":1}"#)).unwrap();
        assert_eq!(detail, json!({"entityId": "e1", "message": "m", "extra": 1}));
    }

    #[test]
    fn bad_detail_is_refused() {
        assert!(event_detail("e1", None, Some("{not json"))
            .unwrap_err()
            .to_string()
            .contains("not valid JSON"));
        assert!(event_detail("e1", None, Some("[1]"))
            .unwrap_err()
            .to_string()
            .contains("JSON object"));
        assert!(event_detail("e1", None, Some(r#"{"entityId":"e2"}"#)).is_err());
        assert!(event_detail("", Some("m"), None).is_err());
    }
}
