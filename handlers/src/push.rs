//! The push handler: for each SQS record (an EventBridge event), posts the update to every subscriber
//! of its entity with bounded concurrency. 410 removes the stale connection; other failures are
//! retried with backoff; a record that still fails, or cannot be parsed, is reported in
//! `batchItemFailures` alone so SQS redelivers just that one (and the DLQ takes it in the end).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::stream::{self, StreamExt};

use crate::frames::{self, EntityEvent, PushPayload};
use crate::management::{self, PostOutcome};
use crate::{store, App};

/// What one record's fan-out came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FanOut {
    pub subscribers: usize,
    pub delivered: usize,
    pub gone: usize,
    pub failed: usize,
}

/// Handles a batch; never fails as a whole.
pub async fn push(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let Some(message_id) = record.message_id.clone().filter(|id| !id.is_empty()) else {
            // Without an id the record cannot be reported; SQS would redeliver the whole batch.
            tracing::error!("SQS record without a messageId; skipped");
            continue;
        };
        if let Err(error) = push_record(app, &record).await {
            tracing::error!(message_id, error = format!("{error:#}"), "record failed");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

async fn push_record(app: &App, record: &SqsMessage) -> Result<FanOut> {
    let event = frames::parse_event(record.body.as_deref()).context("malformed record")?;
    let fan_out = fan_out(app, &event).await?;
    tracing::info!(
        entity_id = event.entity_id,
        subscribers = fan_out.subscribers,
        delivered = fan_out.delivered,
        gone = fan_out.gone,
        failed = fan_out.failed,
        "pushed"
    );
    if fan_out.failed > 0 {
        anyhow::bail!(
            "{} of {} deliveries of {:?} still failed after retries",
            fan_out.failed,
            fan_out.subscribers,
            event.entity_id
        );
    }
    Ok(fan_out)
}

/// Posts `event` to every subscriber of its entity, `app.config.push.concurrency` at a time.
pub async fn fan_out(app: &App, event: &EntityEvent) -> Result<FanOut> {
    let subscribers = store::subscribers(app, &event.entity_id).await?;
    let payload = serde_json::to_vec(&PushPayload {
        kind: &event.detail_type,
        entity_id: &event.entity_id,
        message: &event.message,
    })
    .context("serializing the push payload")?;
    let mut outcome = FanOut {
        subscribers: subscribers.len(),
        ..FanOut::default()
    };
    let mut deliveries = stream::iter(subscribers.iter())
        .map(|connection_id| deliver(app, connection_id, &payload))
        .buffer_unordered(app.config.push.concurrency);
    while let Some(delivery) = deliveries.next().await {
        match delivery {
            Delivery::Delivered => outcome.delivered += 1,
            Delivery::Gone => outcome.gone += 1,
            Delivery::Failed => outcome.failed += 1,
        }
    }
    Ok(outcome)
}

enum Delivery {
    Delivered,
    Gone,
    Failed,
}

/// One subscriber: post, retrying retryable failures with jittered exponential backoff; on 410
/// delete the connection's records.
async fn deliver(app: &App, connection_id: &str, payload: &[u8]) -> Delivery {
    let settings = &app.config.push;
    let mut attempt = 1;
    loop {
        match management::post(app, connection_id, payload.to_vec()).await {
            PostOutcome::Delivered => return Delivery::Delivered,
            PostOutcome::Gone => {
                match store::delete_connection_records(app, connection_id).await {
                    Ok(deleted) => {
                        tracing::info!(connection_id, deleted, "removed a gone connection")
                    }
                    // The records' ttl removes them in the end; the message itself was handled.
                    Err(error) => tracing::warn!(
                        connection_id,
                        error = format!("{error:#}"),
                        "could not remove a gone connection"
                    ),
                }
                return Delivery::Gone;
            }
            PostOutcome::Failed(error) => {
                tracing::warn!(connection_id, error, "delivery failed");
                return Delivery::Failed;
            }
            PostOutcome::Retryable(error) if attempt >= settings.max_attempts => {
                tracing::warn!(connection_id, attempt, error, "delivery failed after retries");
                return Delivery::Failed;
            }
            PostOutcome::Retryable(error) => {
                tracing::debug!(connection_id, attempt, error, "delivery failed; retrying");
                tokio::time::sleep(backoff(settings.base_backoff, attempt)).await;
                attempt += 1;
            }
        }
    }
}

/// `base * 2^(attempt-1)`, capped at 2 s, scaled by a jitter factor in [0.5, 1.0) so that many
/// failing posts do not retry in lock step.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exponential = base
        .saturating_mul(1 << (attempt - 1).min(16))
        .min(Duration::from_secs(2));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|now| now.subsec_nanos())
        .unwrap_or_default();
    let jitter = 0.5 + f64::from(nanos % 1000) / 2000.0;
    exponential.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let base = Duration::from_millis(100);
        let first = backoff(base, 1);
        assert!(first >= Duration::from_millis(50) && first < Duration::from_millis(100));
        let third = backoff(base, 3);
        assert!(third >= Duration::from_millis(200) && third < Duration::from_millis(400));
        assert!(backoff(base, 30) <= Duration::from_secs(2));
    }
}
