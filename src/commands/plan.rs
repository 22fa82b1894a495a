//! `wsstack plan`: what `up` would change, read-only; exit 3 when it would change something.
//!
//! Makes no write call to AWS.

use serde_json::{json, Value};

use super::{inspect_all, Invocation};
use crate::cli::Format;
use crate::engine::Outcome;
use crate::render::{self, Failure};
use crate::resources::State;

pub async fn run(context: &Invocation) -> Result<u8, Failure> {
    let (cli, file) = (&context.cli, &context.file);
    let (aws, reports, _) = inspect_all(context).await?;
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
    // `up` stops before any write without API Gateway's account logging role (see account_logging).
    let role_missing = if file.stack.access_logs
        && crate::account_logging::role_arn(&context.config, &aws.region)
            .await?
            .is_none()
    {
        Some(crate::account_logging::missing(&aws.region))
    } else {
        None
    };
    match cli.output {
        Format::Json => render::print_json(&json!({
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
            "account_logging_role": if role_missing.is_some() { "missing" } else { "set or not needed" },
        })),
        Format::Text => {
            render::header(cli, "plan", file, &aws);
            for report in &reports {
                if let Outcome::Inspected(state) = &report.outcome {
                    let line = render::plan_line(report.kind, &report.name, state);
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
            if let Some(missing) = &role_missing {
                println!("! account setting: {missing}");
            }
        }
    }
    let blocked = foreign + usize::from(role_missing.is_some());
    Ok(if create + update + delete + blocked == 0 { 0 } else { 3 })
}
