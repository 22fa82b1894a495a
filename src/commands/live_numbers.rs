//! The live numbers of `status`: open connections, subscriptions, the most watched entities
//! (a bounded, projected Scan of the table), the messages waiting in the queues and the DLQ, the
//! DLQ alarm's state and whether the alarm email's recipient has confirmed it.
//!
//! Read-only; the record keys come from the handlers' record layout module only.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use wsstack_handlers::records::{self, RecordKind};

use crate::aws::{sdk_error, Aws};
use crate::plan::alarms;
use crate::resources::errors::found;
use crate::resources::{alarm as cloudwatch_alarm, topic};

/// How many entities `status` lists by subscriber count.
const TOP_ENTITIES: usize = 5;

#[derive(Debug, Serialize)]
pub struct Live {
    /// None when the table does not exist (yet).
    pub table: Option<TableCounts>,
    pub queue: Option<QueueDepth>,
    /// Chunks of large fan-outs waiting for an invocation: a backlog here is posts held back by
    /// the budget.
    pub chunk_queue: Option<QueueDepth>,
    pub dead_letter_queue: Option<QueueDepth>,
    /// The dead-letter alarm's state: OK, ALARM or INSUFFICIENT_DATA; None without the alarm.
    pub dead_letter_alarm: Option<String>,
    /// The email subscriptions of the alarm topic; None without the topic.
    pub alarm_emails: Option<Vec<AlarmEmail>>,
}

#[derive(Debug, Serialize)]
pub struct AlarmEmail {
    pub address: String,
    /// Waiting for the recipient to follow the link in AWS's confirmation email: until then no
    /// alarm reaches that address.
    pub pending_confirmation: bool,
    /// An earlier address still pending is not: SNS offers no way to cancel it, and drops it
    /// unconfirmed after 48 hours.
    pub in_stack_file: bool,
}

#[derive(Debug, Serialize)]
pub struct TableCounts {
    pub connections: u64,
    pub subscriptions: u64,
    /// The scan stopped at the limit: the counts are lower bounds ("at least").
    pub truncated: bool,
    pub records_read: u64,
    pub top_entities: Vec<EntityCount>,
}

#[derive(Debug, Serialize)]
pub struct EntityCount {
    pub entity_id: String,
    pub subscribers: u64,
}

#[derive(Debug, Serialize)]
pub struct QueueDepth {
    /// ApproximateNumberOfMessages: waiting to be received.
    pub waiting: u64,
    /// ApproximateNumberOfMessagesNotVisible: received, not yet deleted.
    pub in_flight: u64,
}

/// `email` is the stack file's `alarms.email`.
pub async fn read(aws: &Aws, scan_limit: u64, email: Option<&str>) -> Result<Live> {
    let topic = alarms::topic_arn(&aws.arns, &alarms::topic_name(&aws.names));
    let alarm = alarms::dead_letter_alarm_name(&aws.names);
    let (table, queue, chunk_queue, dead_letter_queue, dead_letter_alarm, emails) = tokio::try_join!(
        count_records(aws, scan_limit),
        queue_depth(aws, aws.names.queue()),
        queue_depth(aws, aws.names.chunk_queue()),
        queue_depth(aws, aws.names.dead_letter_queue()),
        cloudwatch_alarm::state(aws, &alarm),
        topic::email_subscriptions(aws, &topic),
    )?;
    let alarm_emails = emails.map(|emails| {
        emails
            .into_iter()
            .map(|e| AlarmEmail {
                pending_confirmation: e.pending(),
                in_stack_file: Some(e.address.as_str()) == email,
                address: e.address,
            })
            .collect()
    });
    Ok(Live {
        table,
        queue,
        chunk_queue,
        dead_letter_queue,
        dead_letter_alarm,
        alarm_emails,
    })
}

/// Counts records by their sort key, reading at most about `limit` of them. Records past their
/// TTL are skipped: DynamoDB deletes expired items only eventually (often days later).
async fn count_records(aws: &Aws, limit: u64) -> Result<Option<TableCounts>> {
    let table = aws.names.table();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut counts = TableCounts {
        connections: 0,
        subscriptions: 0,
        truncated: false,
        records_read: 0,
        top_entities: Vec::new(),
    };
    let mut subscribers: HashMap<String, u64> = HashMap::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let remaining = limit.saturating_sub(counts.records_read).clamp(1, i32::MAX as u64) as i32;
        let page = aws
            .dynamodb
            .scan()
            .table_name(&table)
            .projection_expression("#sk, #ttl")
            .expression_attribute_names("#sk", records::SK)
            .expression_attribute_names("#ttl", records::TTL)
            .limit(remaining)
            .set_exclusive_start_key(start.take())
            .send()
            .await;
        let Some(page) = found(page, || format!("counting the records of table {table}"))? else {
            return Ok(None);
        };
        for item in page.items() {
            counts.records_read += 1;
            let expired = item
                .get(records::TTL)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|ttl| ttl <= now);
            let Some(sk) = item.get(records::SK).and_then(|v| v.as_s().ok()) else {
                continue;
            };
            if expired {
                continue;
            }
            match records::kind_of_sk(sk) {
                RecordKind::Connection => counts.connections += 1,
                RecordKind::Subscription => {
                    counts.subscriptions += 1;
                    if let Some(entity) = records::entity_of_sk(sk) {
                        *subscribers.entry(entity.to_string()).or_default() += 1;
                    }
                }
                RecordKind::Other => {}
            }
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => {
                if counts.records_read >= limit {
                    counts.truncated = true;
                    break;
                }
                start = Some(key);
            }
            _ => break,
        }
    }
    let mut top: Vec<EntityCount> = subscribers
        .into_iter()
        .map(|(entity_id, subscribers)| EntityCount { entity_id, subscribers })
        .collect();
    top.sort_by(|a, b| {
        b.subscribers
            .cmp(&a.subscribers)
            .then_with(|| a.entity_id.cmp(&b.entity_id))
    });
    top.truncate(TOP_ENTITIES);
    counts.top_entities = top;
    Ok(Some(counts))
}

async fn queue_depth(aws: &Aws, name: String) -> Result<Option<QueueDepth>> {
    use aws_sdk_sqs::types::QueueAttributeName as Name;
    let url = match aws.sqs.get_queue_url().queue_name(&name).send().await {
        Ok(found) => found.queue_url.unwrap_or_default(),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_queue_does_not_exist()) => return Ok(None),
        Err(e) => return Err(sdk_error(format!("finding SQS queue {name}"), e)),
    };
    let attributes = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(Name::ApproximateNumberOfMessages)
        .attribute_names(Name::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| sdk_error(format!("reading the message counts of SQS queue {name}"), e))?;
    let number = |key: Name| {
        attributes
            .attributes()
            .and_then(|a| a.get(&key))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Some(QueueDepth {
        waiting: number(Name::ApproximateNumberOfMessages),
        in_flight: number(Name::ApproximateNumberOfMessagesNotVisible),
    }))
}
