//! The SQS side of a Lambda event source mapping: long-polls the queue, invokes the function with
//! an `SqsEvent` batch, deletes what succeeded, and leaves the records named in
//! `batchItemFailures` (or the whole batch, if the invocation failed) for redelivery after the
//! visibility timeout; the queue's redrive policy moves them to the DLQ after maxReceiveCount.
//! Several pollers per mapping, as Lambda runs several.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::runtime::{FunctionHost, InvokeError};
use crate::aws::sdk_error;

pub struct EventSource {
    pub queue_url: String,
    pub queue_arn: String,
    pub region: String,
    pub batch_size: i32,
    /// Pollers of this source, each with at most one invocation at a time.
    pub pollers: usize,
    pub function: Arc<FunctionHost>,
}

/// Long-poll wait; short enough that shutdown is prompt.
const WAIT_SECONDS: i32 = 2;

fn record(message: &Message, source: &EventSource) -> Value {
    let attributes: Map<String, Value> = message
        .attributes()
        .map(|a| a.iter().map(|(k, v)| (k.as_str().to_string(), json!(v))).collect())
        .unwrap_or_default();
    let message_attributes: Map<String, Value> = message
        .message_attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        json!({"stringValue": v.string_value(), "dataType": v.data_type(), "stringListValues": [], "binaryListValues": []}),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body().unwrap_or_default(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": source.queue_arn,
        "awsRegion": source.region,
    })
}

/// Poll until shutdown.
pub async fn run(sqs: aws_sdk_sqs::Client, source: Arc<EventSource>, shutdown: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let receive = sqs
            .receive_message()
            .queue_url(&source.queue_url)
            .max_number_of_messages(source.batch_size)
            .wait_time_seconds(WAIT_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send();
        let received = tokio::select! {
            received = receive => received,
            _ = shutdown.cancelled() => return,
        };
        let messages = match received {
            Ok(output) => {
                backoff.succeeded();
                output.messages.unwrap_or_default()
            }
            Err(error) => {
                let delay = backoff.failed();
                let error = sdk_error(format!("receiving from {}", source.queue_arn), error);
                tracing::warn!(
                    error = format!("{error:#}"),
                    ?delay,
                    "event source: receive failed; backing off"
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        if messages.is_empty() {
            continue;
        }
        // For dev's console: the events the bus delivered, whoever put them there.
        tracing::debug!(
            function = %source.function.config.name,
            events = %messages.iter().filter_map(|m| m.body()).collect::<Vec<_>>().join("\n"),
            "event source: received a batch"
        );
        let event = json!({"Records": messages.iter().map(|m| record(m, &source)).collect::<Vec<_>>()});
        let failed: Vec<String> = match source.function.invoke(Bytes::from(event.to_string())).await {
            Ok(response) => {
                let response: Value = serde_json::from_slice(&response).unwrap_or(Value::Null);
                response["batchItemFailures"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|i| i["itemIdentifier"].as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            Err(error) => {
                if error != InvokeError::ShuttingDown {
                    tracing::warn!(
                        function = %source.function.config.name,
                        batch = messages.len(),
                        %error,
                        "event source: the invocation failed; the batch stays for redelivery"
                    );
                }
                messages
                    .iter()
                    .filter_map(|m| m.message_id().map(String::from))
                    .collect()
            }
        };
        let entries: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| !failed.iter().any(|f| Some(f.as_str()) == m.message_id()))
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle()?)
                    .build()
                    .ok()
            })
            .collect();
        if !entries.is_empty() {
            if let Err(error) = sqs
                .delete_message_batch()
                .queue_url(&source.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                let error = sdk_error("deleting processed messages", error);
                tracing::warn!(
                    error = format!("{error:#}"),
                    "event source: delete failed; they come back"
                );
            }
        }
    }
}
