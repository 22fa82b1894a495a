//! The push handler: for each SQS record (an EventBridge event), posts the update to every subscriber
//! of its entity, or the notification to every open connection of its user. The records of a batch
//! are worked side by side under one bound on posts in flight, and everything ends before the
//! invocation's deadline, with time left to answer. Only what another attempt could fix
//! (throttling, 5xx, timeouts, a deadline reached) puts a record in `batchItemFailures`: a
//! subscriber that can never be reached is skipped, so SQS never redelivers a record, and its
//! duplicates, to everyone else because of one connection.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::frames::{self, PushEvent, QueuedEvent};
use crate::management::{self, PostOutcome};
use crate::{store, App};

/// Time kept back from the invocation's deadline to answer: a tenth of the time there is, within
/// these bounds. Work still running then is dropped and its record handed back for redelivery.
const ANSWER_MARGIN_MIN: Duration = Duration::from_millis(500);
const ANSWER_MARGIN_MAX: Duration = Duration::from_secs(2);
/// Longest pause between two attempts of one post.
const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// What one record's fan-out came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FanOut {
    pub subscribers: usize,
    pub delivered: usize,
    /// API Gateway does not know these connections; their records were deleted.
    pub gone: usize,
    /// Answered in a way no retry fixes (400, 403, 413): skipped.
    pub skipped: usize,
    /// Still failing when retries or time ran out: the record goes back to SQS.
    pub undelivered: usize,
}

/// The deadline Lambda gives an invocation (`Context::deadline`, epoch milliseconds) as an instant.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let left = deadline.duration_since(SystemTime::now()).unwrap_or_default();
    Instant::now() + left
}

/// Handles a batch; never fails as a whole. `deadline` is when the invocation times out.
pub async fn push(app: &App, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
    let invocation = Invocation::new(app, deadline);
    let records: Vec<(String, &SqsMessage)> = event
        .records
        .iter()
        .filter_map(
            |record| match record.message_id.as_deref().filter(|id| !id.is_empty()) {
                Some(message_id) => Some((message_id.to_string(), record)),
                None => {
                    // Without an id the record cannot be reported; SQS would redeliver the whole batch.
                    tracing::error!("SQS record without a messageId; skipped");
                    None
                }
            },
        )
        .collect();
    let results = futures::future::join_all(records.iter().map(|(_, record)| invocation.record(record))).await;
    let mut response = SqsBatchResponse::default();
    for ((message_id, _), result) in records.into_iter().zip(results) {
        if let Err(error) = result {
            tracing::error!(message_id, error = format!("{error:#}"), "record failed");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    invocation.settle_forbidden().await;
    response
}

/// The work of one invocation: its deadline, the one bound on posts in flight shared by all its
/// records, and what its posts taught about the API.
pub struct Invocation<'a> {
    app: &'a App,
    /// When work stops: the invocation's deadline less the answer margin.
    stop_at: Instant,
    posts: Semaphore,
    /// Some post was accepted (delivered, or answered 410): this function may post to this API.
    accepted: AtomicBool,
    /// Connections answered 403, settled once the whole batch has been worked.
    forbidden: Mutex<BTreeSet<String>>,
}

impl<'a> Invocation<'a> {
    pub fn new(app: &'a App, deadline: Instant) -> Invocation<'a> {
        let margin =
            (deadline.saturating_duration_since(Instant::now()) / 10).clamp(ANSWER_MARGIN_MIN, ANSWER_MARGIN_MAX);
        Invocation {
            app,
            stop_at: deadline.checked_sub(margin).unwrap_or_else(Instant::now),
            posts: Semaphore::new(app.config.push.concurrency),
            accepted: AtomicBool::new(false),
            forbidden: Mutex::new(BTreeSet::new()),
        }
    }

    async fn record(&self, record: &SqsMessage) -> Result<FanOut> {
        let event = match frames::parse_event(record.body.as_deref(), &self.app.config.push.detail_types)
            .context("malformed record")?
        {
            QueuedEvent::Push(event) => event,
            // No retry gives it recipients: redelivering would only carry it to the DLQ.
            QueuedEvent::Unknown { detail_type } => {
                tracing::warn!(
                    detail_type,
                    "an event of a detail-type this stack does not push; dropped"
                );
                return Ok(FanOut::default());
            }
        };
        let fan_out = tokio::time::timeout_at(self.stop_at, self.fan_out(&event))
            .await
            .map_err(|_| anyhow!("the invocation's deadline came before every post to {event} was done"))??;
        tracing::info!(
            entity_id = event.entity_id(),
            user_id = event.user_id(),
            subscribers = fan_out.subscribers,
            delivered = fan_out.delivered,
            gone = fan_out.gone,
            skipped = fan_out.skipped,
            undelivered = fan_out.undelivered,
            "pushed"
        );
        if fan_out.undelivered > 0 {
            anyhow::bail!(
                "{} of {} deliveries to {event} still failed after retries",
                fan_out.undelivered,
                fan_out.subscribers,
            );
        }
        Ok(fan_out)
    }

    /// Posts `event` to each of its recipients.
    pub async fn fan_out(&self, event: &PushEvent) -> Result<FanOut> {
        let recipients = recipients(self.app, event).await?;
        Ok(self.deliver_to_all(&recipients, &frames::push_payload(event)).await)
    }

    /// Posts one payload to every connection of `subscribers`.
    async fn deliver_to_all(&self, subscribers: &[String], payload: &[u8]) -> FanOut {
        let mut outcome = FanOut {
            subscribers: subscribers.len(),
            ..FanOut::default()
        };
        // The semaphore is the bound; this only keeps a huge entity from holding a future per subscriber.
        let mut deliveries = stream::iter(subscribers.iter())
            .map(|connection_id| self.deliver(connection_id, payload))
            .buffer_unordered(self.app.config.push.concurrency);
        while let Some(delivery) = deliveries.next().await {
            match delivery {
                Delivery::Delivered => outcome.delivered += 1,
                Delivery::Gone => outcome.gone += 1,
                Delivery::Skipped => outcome.skipped += 1,
                Delivery::Undelivered => outcome.undelivered += 1,
            }
        }
        outcome
    }

    /// One subscriber: post, retrying what retrying can fix while time remains. A post holds a permit
    /// for its attempt (and the clean-up of a gone connection), never across a pause.
    async fn deliver(&self, connection_id: &str, payload: &[u8]) -> Delivery {
        let settings = &self.app.config.push;
        let mut attempt = 1;
        loop {
            let outcome = {
                let _permit = self.posts.acquire().await.expect("the semaphore is never closed");
                let outcome = management::post(self.app, connection_id, payload.to_vec()).await;
                if matches!(outcome, PostOutcome::Gone) {
                    forget(self.app, connection_id).await;
                }
                outcome
            };
            let error = match outcome {
                PostOutcome::Delivered | PostOutcome::Gone => {
                    self.accepted.store(true, Ordering::Relaxed);
                    return if matches!(outcome, PostOutcome::Delivered) {
                        Delivery::Delivered
                    } else {
                        Delivery::Gone
                    };
                }
                PostOutcome::Forbidden(error) => {
                    tracing::warn!(connection_id, error, "post forbidden; skipped");
                    self.forbidden
                        .lock()
                        .expect("no panic holds this lock")
                        .insert(connection_id.to_string());
                    return Delivery::Skipped;
                }
                PostOutcome::Rejected(error) => {
                    tracing::warn!(connection_id, error, "post rejected; skipped");
                    return Delivery::Skipped;
                }
                // Throttling is the account's request rate, not this post's fault: it has no attempt
                // limit of its own, only the deadline.
                PostOutcome::Throttled(error) => error,
                PostOutcome::Retryable(error) if attempt >= settings.max_attempts => {
                    tracing::warn!(connection_id, attempt, error, "delivery failed after retries");
                    return Delivery::Undelivered;
                }
                PostOutcome::Retryable(error) => error,
            };
            let pause = backoff(settings.base_backoff, attempt);
            if Instant::now() + pause >= self.stop_at {
                tracing::warn!(connection_id, attempt, error, "delivery failed; no time left to retry");
                return Delivery::Undelivered;
            }
            tracing::debug!(connection_id, attempt, error, "delivery failed; retrying");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// A 403 for one connection while other posts go through says the id is not of this API: its
    /// records go. When every post was refused, the refusal is this function's (its permissions or its
    /// endpoint), and the records stay.
    async fn settle_forbidden(&self) {
        let forbidden = std::mem::take(&mut *self.forbidden.lock().expect("no panic holds this lock"));
        if forbidden.is_empty() {
            return;
        }
        if !self.accepted.load(Ordering::Relaxed) {
            tracing::error!(
                connections = forbidden.len(),
                callback_url = self.app.config.callback_url,
                "every post was answered 403: check that this function may call execute-api:ManageConnections on this API and stage; records kept"
            );
            return;
        }
        let deletes = stream::iter(forbidden.iter())
            .for_each_concurrent(self.app.config.push.concurrency, |connection_id| {
                forget(self.app, connection_id)
            });
        if tokio::time::timeout_at(self.stop_at, deletes).await.is_err() {
            tracing::warn!("no time left to remove every connection of another API; their ttl will");
        }
    }
}

/// Who gets `event`: the subscribers of its entity (GSI1), or the open connections of its user (GSI2).
async fn recipients(app: &App, event: &PushEvent) -> Result<Vec<String>> {
    let connection_ids = match event {
        PushEvent::Entity(event) => store::subscribers(app, &event.entity_id).await?,
        PushEvent::User(event) => store::connections_of_user(app, &event.user_id).await?,
    };
    Ok(connection_ids)
}

enum Delivery {
    Delivered,
    Gone,
    Skipped,
    Undelivered,
}

/// Deletes the records of a connection API Gateway does not know. A failure only leaves them to
/// their ttl: the post itself was handled.
async fn forget(app: &App, connection_id: &str) {
    match store::delete_connection_records(app, connection_id).await {
        Ok(deleted) => tracing::info!(connection_id, deleted, "removed an unknown connection"),
        Err(error) => tracing::warn!(
            connection_id,
            error = format!("{error:#}"),
            "could not remove an unknown connection"
        ),
    }
}

/// `base * 2^(attempt-1)`, capped at [`BACKOFF_CAP`], scaled by a random factor in [0.5, 1.0) so
/// that posts throttled together do not come back together.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exponential = base.saturating_mul(1 << (attempt - 1).min(16)).min(BACKOFF_CAP);
    exponential.mul_f64(0.5 + fastrand::f64() / 2.0)
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
        assert!(backoff(base, 30) <= BACKOFF_CAP);
        assert!(backoff(base, 30) >= BACKOFF_CAP / 2);
    }

    #[test]
    fn epoch_deadlines_become_instants() {
        let in_three_seconds = SystemTime::now() + Duration::from_secs(3);
        let ms = in_three_seconds.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let left = deadline_from_epoch_ms(ms) - Instant::now();
        assert!(
            left > Duration::from_millis(2900) && left <= Duration::from_secs(3),
            "{left:?}"
        );
        assert!(deadline_from_epoch_ms(0) <= Instant::now());
    }
}
