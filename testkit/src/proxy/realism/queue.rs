//! SQS in realism mode: a RedrivePolicy naming a dead-letter queue created moments ago is refused,
//! as SQS does until the new queue is known everywhere.

use serde_json::Value;

use super::{Behaviour, Exchange, Verdict, World};

pub(super) fn before(world: &mut World, exchange: &Exchange) -> Option<Verdict> {
    if !matches!(exchange.operation, "CreateQueue" | "SetQueueAttributes") {
        return None;
    }
    let body = exchange.json_body();
    let policy = body["Attributes"]["RedrivePolicy"].as_str()?;
    let target: Value = serde_json::from_str(policy).ok()?;
    let target_name = target["deadLetterTargetArn"].as_str()?.rsplit(':').next()?;
    world
        .within(Behaviour::DeadLetterTargetLag, world.queues_created.get(target_name))
        .then(|| Verdict::Error {
            behaviour: Behaviour::DeadLetterTargetLag,
            status: 400,
            code: "InvalidParameterValue",
            message: format!(
                "Value {policy} for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist."
            ),
        })
}

pub(super) fn after(world: &mut World, exchange: &Exchange) {
    let body = exchange.json_body();
    match exchange.operation {
        // CreateQueue of an existing queue with the same attributes succeeds again: the queue
        // is as old as its first creation.
        "CreateQueue" => {
            if let Some(name) = body["QueueName"].as_str() {
                let window = world.open_window();
                world.queues_created.entry(name.to_string()).or_insert(window);
            }
        }
        "DeleteQueue" => {
            if let Some(name) = body["QueueUrl"].as_str().and_then(|url| url.rsplit('/').next()) {
                world.queues_created.remove(name);
            }
        }
        _ => {}
    }
}
