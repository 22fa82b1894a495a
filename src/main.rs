//! wsstack: provision a serverless WebSocket notification stack on AWS straight through the SDK.
//!
//! This file only parses the command line and dispatches: the arguments are in `cli`, each
//! command in `commands/`, output and exit codes (0 ok, 1 AWS or runtime failure, 2 bad input,
//! 3 not in sync) in `render`.

mod asyncapi;
mod aws;
mod bundle;
mod cli;
mod commands;
mod connect;
mod dev;
mod engine;
mod graph;
mod names;
mod plan;
mod progress;
mod render;
mod resources;
mod retry;
mod stack;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::commands::Context;
use crate::render::Failure;

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
    // A URL is all `connect` needs: no stack file, no AWS.
    if let Command::Connect(args) = &cli.command {
        if let Some(url) = &args.url {
            return commands::connect::open(&cli, args, url.clone()).await;
        }
    }
    // The AsyncAPI document needs the stack file, not AWS, unless asked for the deployed address.
    if let Command::Asyncapi(args) = &cli.command {
        if !args.deployed {
            return commands::asyncapi::offline(&cli, args).await;
        }
    }
    let context = Context::resolve(cli).await?;
    match &context.cli.command {
        Command::Up => commands::up::run(&context).await.map(|_| 0),
        Command::Plan => commands::plan::run(&context).await,
        Command::Down { yes } => commands::down::run(&context, *yes).await,
        Command::Status => commands::status::run(&context).await,
        Command::Dev(args) => commands::dev::run(&context, args).await,
        Command::Connect(args) => commands::connect::run(&context, args).await,
        Command::SendEvent(args) => commands::send_event::run(&context, args).await,
        Command::Token(args) => commands::token::run(&context, args).await,
        Command::Asyncapi(args) => commands::asyncapi::deployed(&context, args).await,
    }
}
