//! `wsstack down`: delete every resource of the stack, after a confirmation unless `--yes`.
//!
//! Never deletes without a terminal to ask on or an explicit `--yes`.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;

use anyhow::{anyhow, Context as _};
use serde_json::json;

use super::Invocation;
use crate::cli::Format;
use crate::discovery;
use crate::engine::{self, Outcome, Verb};
use crate::progress::Progress;
use crate::render::{self, bad_input, Failure};
use crate::resources::Change;

pub async fn run(context: &Invocation, yes: bool) -> Result<u8, Failure> {
    let (cli, file) = (&context.cli, &context.file);
    if !yes && !confirmed(context)? {
        println!("nothing deleted");
        return Ok(0);
    }
    let started = Instant::now();
    let (stack, stage) = (&file.stack.name, &file.stack.stage);
    let (aws, found) =
        discovery::connect_and_discover(context.config.clone(), context.names.clone(), stack, stage).await?;
    render::header(cli, "down", file, &aws);
    let resources = context.plan(&aws, None, &found);
    let mut resolved = found.resolved();
    let progress = Progress::new(context.chatty());
    let reports = engine::run(&resources, &aws, &mut resolved, Verb::Destroy, &progress).await?;
    let failed = engine::any_failed(&reports);
    let deleted = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Changed(Change::Deleted)))
        .count();
    let elapsed = started.elapsed().as_secs_f64();
    match cli.output {
        Format::Json => render::print_json(&json!({
            "command": "down",
            "stack": file.stack.name,
            "stage": file.stack.stage,
            "resources": render::reports_json(&reports),
            "summary": {"deleted": deleted, "failed": failed},
            "seconds": elapsed,
        })),
        Format::Text => println!("summary: {deleted} deleted ({elapsed:.1} s)"),
    }
    if failed {
        return Err(render::resources_failed(
            &reports,
            "down did not finish; run it again to remove the rest",
        ));
    }
    Ok(0)
}

/// Ask on the terminal; refuse (exit 2) when there is none to ask on.
fn confirmed(context: &Invocation) -> Result<bool, Failure> {
    let stack = &context.file.stack;
    if !std::io::stdin().is_terminal() {
        return Err(bad_input(anyhow!(
            "refusing to delete stack {} without confirmation: stdin is not a terminal; pass --yes",
            stack.name
        )));
    }
    print!(
        "Delete every resource of stack {} (stage {}) in {}? [y/N] ",
        stack.name, stack.stage, context.names.region
    );
    std::io::stdout().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the confirmation")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
