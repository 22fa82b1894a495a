//! From a stack file to the desired resources: one spec per AWS resource, with its physical name,
//! settings, least-privilege policies, tags and dependencies. Pure: no AWS calls.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::aws::Aws;
use crate::names::{handlers, RoleKind};
use crate::resources::queue::{Attribute, QueueSpec};
use crate::resources::role::RoleSpec;
use crate::resources::rule::RuleSpec;
use crate::resources::table::{TableSpec, INDEX_NAME};
use crate::resources::{Resource, Tags};
use crate::stack::{Stack, DEFAULT_EVENT_SOURCE, TAG_STACK, TAG_STAGE};

pub const KEY_ROLE_ROUTES: &str = "role/routes";
pub const KEY_ROLE_PUSH: &str = "role/push";
pub const KEY_TABLE: &str = "table";
pub const KEY_DEAD_LETTER_QUEUE: &str = "queue/dead-letter";
pub const KEY_QUEUE: &str = "queue/events";
pub const KEY_RULE: &str = "rule";

/// The tags every resource of the stack carries.
pub fn tags(stack: &Stack) -> Tags {
    let mut tags: Tags = stack.tags.clone();
    tags.insert(TAG_STACK.into(), stack.name.clone());
    tags.insert(TAG_STAGE.into(), stack.stage.clone());
    tags
}

/// The event source `send-event` uses.
pub fn event_source(stack: &Stack) -> String {
    stack
        .events
        .source
        .clone()
        .unwrap_or_else(|| DEFAULT_EVENT_SOURCE.to_string())
}

/// The rule's event pattern: the stack's detail-type (and source, when it filters on one).
pub fn event_pattern(stack: &Stack) -> Value {
    let mut pattern = json!({ "detail-type": [stack.events.detail_type] });
    if let Some(source) = &stack.events.source {
        pattern["source"] = json!([source]);
    }
    pattern
}

fn log_statement(aws: &Aws, handlers: &[&str]) -> Value {
    let resources: Vec<String> = handlers
        .iter()
        .map(|h| format!("{}:*", aws.arns.log_group(&aws.names.log_group(h))))
        .collect();
    json!({
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": resources
    })
}

fn routes_policy(stack: &Stack, aws: &Aws) -> Value {
    let table = aws.arns.table(&aws.names.table());
    let route_handlers: Vec<String> = handlers(stack).into_iter().filter(|h| h != "push").collect();
    let route_handlers: Vec<&str> = route_handlers.iter().map(String::as_str).collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConnectionsAndSubscriptions",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem",
                    "dynamodb:Query", "dynamodb:BatchWriteItem"
                ],
                "Resource": [table]
            },
            log_statement(aws, &route_handlers)
        ]
    })
}

fn push_policy(aws: &Aws) -> Value {
    let table = aws.arns.table(&aws.names.table());
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "FindSubscribers",
                "Effect": "Allow",
                "Action": ["dynamodb:Query"],
                "Resource": [format!("{table}/index/{INDEX_NAME}")]
            },
            {
                "Sid": "RemoveStaleConnections",
                "Effect": "Allow",
                "Action": ["dynamodb:Query", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem"],
                "Resource": [table]
            },
            {
                "Sid": "ConsumeEvents",
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"
                ],
                "Resource": [aws.arns.queue(&aws.names.queue())]
            },
            log_statement(aws, &["push"])
        ]
    })
}

/// The queue policy: only this stack's rule may send.
fn queue_policy(stack: &Stack, aws: &Aws) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "EventBridgeRuleSends",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": aws.arns.queue(&aws.names.queue()),
            "Condition": {"ArnEquals": {"aws:SourceArn": aws.arns.rule(&stack.events.bus, &aws.names.rule())}}
        }]
    })
}

/// Every resource of the stack, in no particular order (the engine orders them).
pub fn resources(stack: &Stack, aws: &Aws) -> Vec<Box<dyn Resource>> {
    let names = &aws.names;
    let tags = tags(stack);
    let queue = &stack.queue;

    let dead_letter_attributes: BTreeMap<String, Attribute> = [(
        "MessageRetentionPeriod",
        Attribute::Text(queue.dead_letter.message_retention_seconds.to_string()),
    )]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let queue_attributes: BTreeMap<String, Attribute> = [
        (
            "VisibilityTimeout",
            Attribute::Text(queue.visibility_timeout_seconds.to_string()),
        ),
        (
            "MessageRetentionPeriod",
            Attribute::Text(queue.message_retention_seconds.to_string()),
        ),
        (
            "ReceiveMessageWaitTimeSeconds",
            Attribute::Text(queue.receive_wait_seconds.to_string()),
        ),
        (
            "RedrivePolicy",
            Attribute::Json(json!({
                "deadLetterTargetArn": aws.arns.queue(&names.dead_letter_queue()),
                "maxReceiveCount": queue.dead_letter.max_receive_count
            })),
        ),
        ("Policy", Attribute::Json(queue_policy(stack, aws))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    vec![
        Box::new(RoleSpec {
            key: KEY_ROLE_ROUTES.into(),
            name: names.role(RoleKind::Routes),
            stack: stack.name.clone(),
            description: format!("wsstack {}/{}: WebSocket route handlers", stack.name, stack.stage),
            policy: routes_policy(stack, aws),
            tags: tags.clone(),
        }),
        Box::new(RoleSpec {
            key: KEY_ROLE_PUSH.into(),
            name: names.role(RoleKind::Push),
            stack: stack.name.clone(),
            description: format!("wsstack {}/{}: push handler", stack.name, stack.stage),
            policy: push_policy(aws),
            tags: tags.clone(),
        }),
        Box::new(TableSpec {
            key: KEY_TABLE.into(),
            name: names.table(),
            stack: stack.name.clone(),
            tags: tags.clone(),
        }),
        Box::new(QueueSpec {
            key: KEY_DEAD_LETTER_QUEUE.into(),
            name: names.dead_letter_queue(),
            stack: stack.name.clone(),
            attributes: dead_letter_attributes,
            tags: tags.clone(),
            depends_on: vec![],
        }),
        Box::new(QueueSpec {
            key: KEY_QUEUE.into(),
            name: names.queue(),
            stack: stack.name.clone(),
            attributes: queue_attributes,
            tags: tags.clone(),
            depends_on: vec![KEY_DEAD_LETTER_QUEUE.into()],
        }),
        Box::new(RuleSpec {
            key: KEY_RULE.into(),
            name: names.rule(),
            stack: stack.name.clone(),
            bus: stack.events.bus.clone(),
            arn: aws.arns.rule(&stack.events.bus, &names.rule()),
            description: format!(
                "wsstack {}/{}: {} events to the push queue",
                stack.name, stack.stage, stack.events.detail_type
            ),
            pattern: event_pattern(stack),
            target_id: names.rule_target_id().into(),
            target_arn: aws.arns.queue(&names.queue()),
            tags,
            depends_on: vec![KEY_QUEUE.into()],
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_filters_on_source_only_when_given() {
        let mut stack = crate::stack::parse(std::path::Path::new("s.yaml"), "name: demo\n").unwrap();
        assert_eq!(event_pattern(&stack), json!({"detail-type": ["Entity Updated"]}));
        assert_eq!(event_source(&stack), "wsstack");
        stack.events.source = Some("orders".into());
        assert_eq!(
            event_pattern(&stack),
            json!({"detail-type": ["Entity Updated"], "source": ["orders"]})
        );
        assert_eq!(event_source(&stack), "orders");
    }

    #[test]
    fn every_resource_is_tagged_with_the_stack() {
        let stack = crate::stack::parse(
            std::path::Path::new("s.yaml"),
            "name: demo\nstage: prod\ntags:\n  team: a\n",
        )
        .unwrap();
        let tags = tags(&stack);
        assert_eq!(tags[TAG_STACK], "demo");
        assert_eq!(tags[TAG_STAGE], "prod");
        assert_eq!(tags["team"], "a");
    }
}
