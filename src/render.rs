//! Everything a command shows: the header, JSON, resource lines, the stack's outputs, and the
//! mapping of results to exit codes (0 ok, 1 AWS or runtime failure, 2 bad input, 3 not in sync).
//!
//! Commands decide what happened; this module only decides how it looks.

use anyhow::anyhow;
use serde_json::{json, Value};

use crate::aws::Aws;
use crate::cli::{Cli, Format};
use crate::commands::live_numbers::Live;
use crate::engine::{Outcome, Report};
use crate::graph::Values;
use crate::plan::alarms;
use crate::progress;
use crate::resources::{Change, State};
use crate::stack::{Stack, StackFile};

/// A failure with the exit code it maps to.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure {
            code: 1,
            error: error.into(),
        }
    }
}

/// Exit code 2: the stack file, a flag or the environment is wrong, nothing was attempted.
pub fn bad_input(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: 2,
        error: error.into(),
    }
}

/// Exit code 1 after printing each failed or not-attempted resource, `summary` last.
pub fn resources_failed(reports: &[Report], summary: &str) -> Failure {
    for line in failures(reports) {
        eprintln!("error: {line}");
    }
    Failure {
        code: 1,
        error: anyhow!("{summary}"),
    }
}

/// The text-mode first line of a command that talks to AWS.
pub fn header(cli: &Cli, verb: &str, file: &StackFile, aws: &Aws) {
    if cli.output == Format::Text && !cli.quiet {
        println!(
            "wsstack {verb}: stack {} stage {} in {} (account {})",
            file.stack.name, file.stack.stage, aws.region, aws.account
        );
    }
}

pub fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// What a client of the stack needs to know; absent values are null until `up` creates them.
pub fn outputs(stack: &Stack, aws: &Aws, resolved: &Values) -> Value {
    json!({
        "websocket_url": resolved.public_url(aws, stack),
        "callback_url": resolved.callback_url(aws, &stack.stage),
        "table": aws.names.table(),
        "queue_arn": aws.arns.queue(&aws.names.queue()),
        "chunk_queue_arn": aws.arns.queue(&aws.names.chunk_queue()),
        "dead_letter_queue_arn": aws.arns.queue(&aws.names.dead_letter_queue()),
        "rule_arn": aws.arns.rule(&stack.events.bus, &aws.names.rule()),
        "alarm_topic_arn": alarm_topic_arn(aws),
    })
}

fn alarm_topic_arn(aws: &Aws) -> String {
    alarms::topic_arn(&aws.arns, &alarms::topic_name(&aws.names))
}

/// Everything `wsstack outputs` shows: the URLs, then each resource's name and ARN.
pub fn all_outputs(stack: &Stack, aws: &Aws, resolved: &Values) -> Value {
    let names = &aws.names;
    let mut map = serde_json::Map::new();
    map.insert("websocket_url".into(), json!(resolved.public_url(aws, stack)));
    map.insert("callback_url".into(), json!(resolved.callback_url(aws, &stack.stage)));
    map.insert("api_id".into(), json!(resolved.api_id()));
    map.insert("table_name".into(), json!(names.table()));
    map.insert("table_arn".into(), json!(aws.arns.table(&names.table())));
    map.insert("queue_name".into(), json!(names.queue()));
    map.insert("queue_arn".into(), json!(aws.arns.queue(&names.queue())));
    map.insert("chunk_queue_name".into(), json!(names.chunk_queue()));
    map.insert("chunk_queue_arn".into(), json!(aws.arns.queue(&names.chunk_queue())));
    map.insert("dead_letter_queue_name".into(), json!(names.dead_letter_queue()));
    map.insert(
        "dead_letter_queue_arn".into(),
        json!(aws.arns.queue(&names.dead_letter_queue())),
    );
    map.insert("rule_name".into(), json!(names.rule()));
    map.insert(
        "rule_arn".into(),
        json!(aws.arns.rule(&stack.events.bus, &names.rule())),
    );
    map.insert("event_bus".into(), json!(stack.events.bus));
    // What a producer must put on an event for this stage to take it (with one of the detail-types).
    map.insert("event_source".into(), json!(crate::plan::event_source(stack)));
    map.insert("entity_detail_type".into(), json!(stack.events.detail_type));
    map.insert("user_detail_type".into(), json!(stack.events.user_detail_type));
    map.insert("alarm_topic_arn".into(), json!(alarm_topic_arn(aws)));
    map.insert(
        "dead_letter_alarm_name".into(),
        json!(alarms::dead_letter_alarm_name(names)),
    );
    let functions: serde_json::Map<String, Value> = crate::names::handlers(stack)
        .into_iter()
        .map(|handler| {
            let name = names.function(&handler);
            let arn = aws.arns.function(&name);
            (handler, json!({"name": name, "arn": arn}))
        })
        .collect();
    map.insert("functions".into(), Value::Object(functions));
    Value::Object(map)
}

pub fn print_outputs(stack: &Stack, aws: &Aws, resolved: &Values) {
    if let Value::Object(map) = outputs(stack, aws, resolved) {
        for (key, value) in map {
            println!("  {key:<22} {}", value.as_str().unwrap_or("(not created yet)"));
        }
    }
}

/// The live numbers of `status`; a count from a scan cut at its limit reads "at least N".
pub fn print_live(live: &Live) {
    match &live.table {
        Some(table) => {
            let at_least = if table.truncated { "at least " } else { "" };
            println!(
                "  connections            {at_least}{} open, {at_least}{} subscriptions",
                table.connections, table.subscriptions
            );
            if table.truncated {
                println!(
                    "                         (stopped after {} records: --scan-limit to read more)",
                    table.records_read
                );
            }
            for entity in &table.top_entities {
                println!(
                    "    {:<20} {at_least}{} subscribers",
                    entity.entity_id, entity.subscribers
                );
            }
        }
        None => println!("  connections            (no table yet)"),
    }
    let queues = [
        ("queue", &live.queue),
        ("chunk queue", &live.chunk_queue),
        ("dead-letter queue", &live.dead_letter_queue),
    ];
    for (label, depth) in queues {
        match depth {
            Some(depth) => println!("  {label:<22} {} waiting, {} in flight", depth.waiting, depth.in_flight),
            None => println!("  {label:<22} (not created yet)"),
        }
    }
    let state = live.dead_letter_alarm.as_deref().unwrap_or("(not created yet)");
    println!("  {:<22} {state}", "dead-letter alarm");
    for email in live.alarm_emails.iter().flatten() {
        let status = match (email.pending_confirmation, email.in_stack_file) {
            (true, true) => "pending confirmation: no alarm reaches it until the link in AWS's email is followed",
            (true, false) => {
                "pending confirmation, no longer in the stack file: SNS drops it unconfirmed after 48 hours"
            }
            (false, _) => "confirmed",
        };
        println!("  {:<22} {} ({status})", "alarm email", email.address);
    }
}

pub fn reports_json(reports: &[Report]) -> Value {
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

/// One `plan` line per resource; a drifted one lists its differences below it.
pub fn plan_line(kind: &str, name: &str, state: &State) -> String {
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
