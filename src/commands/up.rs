//! `wsstack up`: make AWS match the stack file, then show the outputs and a summary.
//!
//! `dev` runs the same `up` first and serves what it returns.

use std::time::Instant;

use anyhow::anyhow;
use serde_json::json;

use super::Invocation;
use crate::aws::Aws;
use crate::bundle::{self, Bundle};
use crate::cli::{Command, Format};
use crate::discovery;
use crate::engine::{self, Outcome, Verb};
use crate::graph::{ApiId, Key, Value, Values};
use crate::progress::Progress;
use crate::render::{self, bad_input, Failure};
use crate::resources::{self, Change};

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
    if file.stack.access_logs {
        // The emulator `dev` runs against is an account of its own: the setting is made there
        // without asking (never when dev would reach AWS itself, which has no endpoint).
        let set_up_by = match &cli.command {
            Command::Up {
                set_account_logging_role: true,
            } => Some("asked by --set-account-logging-role"),
            Command::Dev(_) if !context.endpoint.is_empty() => Some("in wsstack dev's emulator"),
            _ => None,
        };
        crate::account_logging::prepare(&context.config, &aws, set_up_by).await?;
    }
    let progress = Progress::new(context.chatty());
    let mut resolved = found.resolved();
    let resources = context.plan(&aws, Some(&bundle), &found);
    // The race check: when this run creates the API, another run of the same stack may have
    // created one too, and every run keeps the oldest (`api::settle_race`). It starts as soon as
    // the API is made and runs beside the rest of the run, so that with no rival, the rule, nothing
    // waits for it.
    let mut race = None;
    let mut on_value = |_: &Key, value: &Value| {
        if let Value::Api(ApiId {
            id,
            created_by_run: Some(created),
        }) = value
        {
            let (aws, stack, stage, id, created) = (aws.clone(), stack.clone(), stage.clone(), id.clone(), *created);
            race = Some(tokio::spawn(async move {
                resources::api::settle_race(&aws, &stack, &stage, &id, created).await
            }));
        }
    };
    let mut reports =
        engine::run_watching(&resources, &aws, &mut resolved, Verb::Ensure, &progress, &mut on_value).await?;
    // The API this run created lost to a concurrent run's: what this run built names the API that
    // went, so it converges again on the kept one.
    if let Some(check) = race {
        let kept = (check.await)
            .map_err(|e| anyhow!("checking for a concurrent run's API: {e}"))?
            .map_err(|e| e.context("checking for a concurrent run's API"))?;
        if resolved.api_id() != Some(kept.as_str()) {
            let found = discovery::discover(&aws, stack, stage).await?;
            if found.api.as_deref() != Some(kept.as_str()) {
                return Err(anyhow!(
                    "the API {kept} kept after a concurrent run is gone again: run `wsstack up` again"
                )
                .into());
            }
            resolved = found.resolved();
            let resources = context.plan(&aws, Some(&bundle), &found);
            reports = engine::run(&resources, &aws, &mut resolved, Verb::Ensure, &progress).await?;
        }
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
