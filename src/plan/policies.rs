//! The IAM policy documents of the stack's bundled handlers and its queue: least privilege,
//! scoped to this stack's ARNs. Pure: no AWS calls. (An own route's policy is beside its
//! resources in `routes`, the authorizer's in `auth`.)

use serde_json::{json, Value};

use crate::aws::Aws;
use crate::names::{handlers, own_route_key, Arns, Names};
use crate::resources::table::INDEX_NAME;
use crate::stack::Stack;

/// The statement that lets a handler use the management API on this stage's connections:
/// `method` is `POST` for the push handler (it only posts), `*` for a route's own code.
pub(super) fn manage_connections(stack: &Stack, arns: &Arns, api: &str, method: &str) -> Value {
    json!({
        "Sid": if method == "POST" { "PostToClients" } else { "ManageClients" },
        "Effect": "Allow",
        "Action": ["execute-api:ManageConnections"],
        "Resource": [arns.execute_api(api, &format!("{}/{method}/@connections/*", stack.stage))]
    })
}

pub(super) fn log_statement(names: &Names, arns: &Arns, handlers: &[&str]) -> Value {
    let resources: Vec<String> = handlers
        .iter()
        .map(|h| format!("{}:*", arns.log_group(&names.log_group(h))))
        .collect();
    json!({
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": resources
    })
}

/// The policy of the bundled route handlers' role: the table and their logs. They answer clients
/// through their routes' route responses; with history, `subscribe` and `resume` also post what a
/// client missed (a replay) before they answer, through the management API (and read the stream's
/// head and history records, in the same table).
pub(super) fn routes_policy(stack: &Stack, names: &Names, arns: &Arns, api: &str) -> Value {
    let table = arns.table(&names.table());
    // Own routes have roles of their own.
    let route_handlers: Vec<String> = handlers(stack)
        .into_iter()
        .filter(|h| h != "push" && own_route_key(h).is_none())
        .collect();
    let route_handlers: Vec<&str> = route_handlers.iter().map(String::as_str).collect();
    let mut policy = json!({
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
            log_statement(names, arns, &route_handlers)
        ]
    });
    if stack.history.window_seconds > 0 {
        let statements = policy["Statement"].as_array_mut().expect("a statement list");
        statements.push(manage_connections(stack, arns, api, "POST"));
    }
    policy
}

/// The policy of the push handler's role.
pub(super) fn push_policy(stack: &Stack, names: &Names, arns: &Arns, api: &str) -> Value {
    let table = arns.table(&names.table());
    let mut policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "FindSubscribers",
                "Effect": "Allow",
                "Action": ["dynamodb:Query"],
                "Resource": [format!("{table}/index/{INDEX_NAME}"), format!("{table}/index/{}", wsstack_handlers::records::GSI2)]
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
                "Resource": [arns.queue(&names.queue()), arns.queue(&names.chunk_queue())]
            },
            {
                "Sid": "HandOnChunks",
                "Effect": "Allow",
                "Action": ["sqs:GetQueueUrl", "sqs:SendMessage"],
                "Resource": [arns.queue(&names.chunk_queue())]
            },
            manage_connections(stack, arns, api, "POST"),
            log_statement(names, arns, &["push"])
        ]
    });
    // Numbering an event is one TransactWriteItems (IAM checks each of its items' actions) after a
    // GetItem of the stream's head.
    if stack.history.window_seconds > 0 {
        let statements = policy["Statement"].as_array_mut().expect("a statement list");
        statements.push(json!({
            "Sid": "NumberAndKeepEvents",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            "Resource": [table]
        }));
    }
    policy
}

/// The queue policy: only this stack's rule may send.
pub(super) fn queue_policy(stack: &Stack, aws: &Aws) -> Value {
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
