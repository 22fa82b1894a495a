//! `wsstack up`: make AWS match the stack file, then show the outputs and a summary.
//!
//! `dev` runs the same `up` first and serves what it returns.

use std::time::Instant;

use anyhow::anyhow;
use serde_json::json;

use super::Invocation;
use crate::aws::Aws;
use crate::bundle::{self, Bundle};
use crate::cli::Format;
use crate::discovery;
use crate::engine::{self, Outcome, Verb};
use crate::graph::Values;
use crate::progress::Progress;
use crate::render::{self, bad_input, Failure};
use crate::resources::{self, Change};
use crate::stack::StackFile;

/// Returns the connected clients (with the API id known) and the handlers package, for `dev`
/// to serve the same stack.
pub async fn run(context: &Invocation) -> Result<(Aws, Bundle, Values), Failure> {
    let (cli, file) = (&context.cli, &context.file);
    let started = Instant::now();
    let bundle = bundle::load(cli.handlers_zip.as_deref(), file.stack.handlers.architecture).map_err(bad_input)?;
    let (stack, stage) = (&file.stack.name, &file.stack.stage);
    let (aws, found) =
        discovery::connect_and_discover(context.config.clone(), context.names.clone(), stack, stage).await?;
    render::header(cli, "up", file, &aws);
    let progress = Progress::new(context.chatty());
    let mut resolved = found.resolved();
    let resources = context.plan(&aws, Some(&bundle), &found);
    let mut reports = engine::run(&resources, &aws, &mut resolved, Verb::Ensure, &progress).await?;
    // An API this run created may have lost to a concurrent run's: what this run built then names
    // the API that went, so it converges again on the kept one.
    if let Some(lost) = race_lost(&aws, file, &resolved).await? {
        let found = discovery::discover(&aws, stack, stage).await?;
        if found.api.as_deref() != Some(lost.kept.as_str()) {
            return Err(anyhow!(
                "the API {} kept after a concurrent run is gone again: run `wsstack up` again",
                lost.kept
            )
            .into());
        }
        resolved = found.resolved();
        let resources = context.plan(&aws, Some(&bundle), &found);
        reports = engine::run(&resources, &aws, &mut resolved, Verb::Ensure, &progress).await?;
    }
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
        Format::Json => render::print_json(&json!({
            "command": "up",
            "stack": file.stack.name,
            "stage": file.stack.stage,
            "region": aws.region,
            "account": aws.account,
            "resources": render::reports_json(&reports),
            "summary": {"created": created, "updated": updated, "deleted": deleted, "unchanged": unchanged, "failed": failed},
            "outputs": render::outputs(&file.stack, &aws, &resolved),
            "seconds": elapsed,
            "access": file.stack.access(),
        })),
        Format::Text => {
            if !failed && !cli.quiet {
                render::print_outputs(&file.stack, &aws, &resolved);
                println!("  {:<22} {}", "access", file.stack.access());
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
        return Err(render::resources_failed(
            &reports,
            "up did not finish; run it again to converge (it picks up where it stopped)",
        ));
    }
    Ok((aws, bundle, resolved))
}

/// The API this run created lost the race to another run's, which is `kept`.
struct Lost {
    kept: String,
}

/// The race check, a step of `up` after the engine: when this run created the API, another run
/// of the same stack may have created one too, and every run keeps the oldest
/// (`api::settle_race`). By the time the engine is done the second of the API's creation is over,
/// so with no rival, which is the rule, this is one listing.
async fn race_lost(aws: &Aws, file: &StackFile, resolved: &Values) -> Result<Option<Lost>, Failure> {
    let Some(api) = resolved.api() else { return Ok(None) };
    let Some(created) = api.created_by_run else {
        return Ok(None);
    };
    let (stack, stage) = (&file.stack.name, &file.stack.stage);
    let kept = resources::api::settle_race(aws, stack, stage, &api.id, created)
        .await
        .map_err(|e| e.context("checking for a concurrent run's API"))?;
    Ok((kept != api.id).then_some(Lost { kept }))
}
