//! `wsstack status`: each resource as present, missing or drifted, and the stack's outputs;
//! exit 3 unless all are in sync.
//!
//! Makes no write call to AWS.

use serde_json::json;

use super::{inspect_all, Invocation};
use crate::cli::Format;
use crate::engine::Outcome;
use crate::progress;
use crate::render::{self, Failure};
use crate::resources::State;

pub async fn run(context: &Invocation, scan_limit: u64) -> Result<u8, Failure> {
    let (cli, file) = (&context.cli, &context.file);
    // A resource that could not be read has already ended the command with exit 1.
    let (aws, reports, resolved) = inspect_all(context).await?;
    let in_sync = reports
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Inspected(State::InSync)));
    // The numbers are extra: a caller allowed to read the resources but not to scan the table
    // (or a throttled scan) still gets the resources' states and the exit code.
    let email = file.stack.alarms.as_ref().and_then(|a| a.email.as_deref());
    let live = super::live_numbers::read(&aws, scan_limit, email)
        .await
        .map_err(|e| format!("{e:#}"));
    match cli.output {
        Format::Json => render::print_json(&json!({
            "command": "status",
            "stack": file.stack.name,
            "stage": file.stack.stage,
            "region": aws.region,
            "account": aws.account,
            "in_sync": in_sync,
            "access": file.stack.access(),
            "resources": render::reports_json(&reports),
            "outputs": render::outputs(&file.stack, &aws, &resolved),
            "live": match &live {
                Ok(live) => json!(live),
                Err(error) => json!({"error": error}),
            },
        })),
        Format::Text => {
            render::header(cli, "status", file, &aws);
            for report in &reports {
                println!("{}", progress::line(report.kind, &report.name, &report.outcome));
            }
            render::print_outputs(&file.stack, &aws, &resolved);
            println!("  {:<22} {}", "access", file.stack.access());
            match &live {
                Ok(live) => render::print_live(live),
                Err(error) => println!("  live numbers unavailable: {error}"),
            }
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
    Ok(if in_sync { 0 } else { 3 })
}
