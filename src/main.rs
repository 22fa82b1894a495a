//! wsstack: provision a serverless WebSocket notification stack on AWS straight through the SDK.
//!
//! This file only parses the command line and dispatches: the arguments are in `cli`, each
//! command in `commands/`, output and exit codes (0 ok, 1 AWS or runtime failure, 2 bad input,
//! 3 not in sync) in `render`.

mod account_logging;
mod asyncapi;
mod aws;
mod bundle;
mod cli;
mod commands;
mod cost;
mod dev;
mod discovery;
mod engine;
mod graph;
mod names;
mod plan;
mod progress;
mod render;
mod resources;
mod retry;
mod stack;
mod ws_client;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ConnectArgs};
use crate::commands::Invocation;
use crate::render::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Dev(_)) {
        stop_quietly_when_stdout_closes();
    }
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

/// `wsstack asyncapi | head -1`: the reader goes away and the next write to stdout fails. Rust
/// ignores SIGPIPE, so `println!` would panic with a backtrace; with the default disposition the
/// process ends silently at that write, as `cat` or `git log` do (the shell sees 141). Safe here:
/// sockets are written with MSG_NOSIGNAL, and these commands write to no other pipe. Not for
/// `dev`, which must stop its emulator and handler processes on the way out, and whose output is
/// only informational.
fn stop_quietly_when_stdout_closes() {
    // SAFETY: setting a signal's disposition to SIG_DFL before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    // What needs neither AWS nor (but for `asyncapi`) the stack file runs without a context.
    match &cli.command {
        Command::Connect(args @ ConnectArgs { url: Some(url), .. }) => {
            commands::connect::open(&cli, args, url.clone()).await
        }
        Command::Asyncapi(args) if !args.deployed => commands::asyncapi::offline(&cli, args).await,
        Command::Schema => commands::schema::print(),
        Command::Init { dir } => commands::init::run(dir),
        Command::Completions { shell } => commands::completions::print(*shell),
        Command::Plan(args) if args.cost => commands::cost::run(&cli, args),
        Command::Dev(args) if args.install_emulator => commands::dev::install_emulator(),
        _ => with_context(Invocation::resolve(cli).await?).await,
    }
}

/// The commands that work on the stack: the stack file loaded, AWS (or the emulator) resolved.
async fn with_context(context: Invocation) -> Result<u8, Failure> {
    match &context.cli.command {
        Command::Up { .. } => commands::up::run(&context).await.map(|_| 0),
        Command::Plan(args) if args.cost => commands::cost::run(&context.cli, args),
        Command::Plan(_) => commands::plan::run(&context).await,
        Command::Down { yes } => commands::down::run(&context, *yes).await,
        Command::Status { scan_limit } => commands::status::run(&context, *scan_limit).await,
        Command::Dev(args) => commands::dev::run(&context, args).await,
        Command::Connect(args) => commands::connect::run(&context, args).await,
        Command::SendEvent(args) => commands::send_event::run(&context, args).await,
        Command::Token(args) => commands::token::run(&context, args).await,
        Command::RotateSecret { force } => commands::rotate_secret::run(&context, *force).await,
        Command::Asyncapi(args) => commands::asyncapi::deployed(&context, args).await,
        Command::Outputs => commands::outputs::run(&context).await,
        Command::Logs(args) => commands::logs::run(&context, args).await,
        // No context needed, but these work the same with one.
        Command::Schema => commands::schema::print(),
        Command::Init { dir } => commands::init::run(dir),
        Command::Completions { shell } => commands::completions::print(*shell),
    }
}
