//! The push handler: for each SQS record (an EventBridge event), posts the update to every subscriber
//! of its entity, or the notification to every open connection of its user. The records of a batch
//! are worked side by side under one bound on posts in flight, and everything ends before the
//! invocation's deadline, with time left to answer. Only what another attempt could fix
//! (throttling, 5xx, timeouts, a deadline reached) puts a record in `batchItemFailures`: a
//! subscriber that can never be reached is skipped, so SQS never redelivers a record, and its
//! duplicates, to everyone else because of one connection.
//!
//! With chunking on (`PUSH_CHUNK_SIZE`), an invocation of the events queue posts itself only events
//! with a few recipients (a quarter of a second of posts at its direct share of the budget, over
//! its whole batch) and hands every other event on as chunk messages to the chunk queue (see
//! `chunks`): the record succeeds once they are queued. A chunk is posted by the invocation that
//! receives it, at its share of the budget.

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
use crate::history;
use crate::management::{self, PostOutcome};
use crate::pace::Pace;
use crate::{chunks, division, store, App};

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
    // Every record is read first (an event's subscribers found, a chunk parsed), so that the
    // invocation knows all it is asked to post before it chooses what it keeps (an event too large
    // to keep whatever the rest is starts going to the chunk queue while it is read).
    let parcels = futures::future::join_all(records.iter().map(|(_, record)| invocation.read(record))).await;
    let carriers = invocation.carriers(&parcels);
    let carried = records
        .iter()
        .zip(parcels)
        .zip(carriers)
        .map(|(((_, record), parcel), carrier)| invocation.carry(record, parcel, carrier));
    let results = futures::future::join_all(carried).await;
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
    invocation.settle_pace().await;
    response
}

/// The work of one invocation: its deadline, the one bound on posts in flight shared by all its
/// records, and what its posts taught about the API.
pub struct Invocation<'a> {
    app: &'a App,
    /// When work stops: the invocation's deadline less the answer margin.
    stop_at: Instant,
    posts: Semaphore,
    /// This invocation's share of the post budget for chunks, when there is one.
    pace: Option<Pace>,
    /// Its share for the events it posts itself: the direct rate, else the same as chunks.
    direct_pace: Option<Pace>,
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
            pace: app.config.push.posts_per_second.and_then(Pace::per_second),
            // The direct share is for what an invocation keeps when it chunks the rest; without
            // chunking it posts everything, at the whole share.
            direct_pace: (app.config.push.chunk_size)
                .and(app.config.push.direct_posts_per_second)
                .or(app.config.push.posts_per_second)
                .and_then(Pace::per_second),
            accepted: AtomicBool::new(false),
            forbidden: Mutex::new(BTreeSet::new()),
        }
    }

    /// What a record asks for: a chunk's recipients, or an event's subscribers, with the payload.
    async fn read(&self, record: &SqsMessage) -> Result<Parcel> {
        if let Some(chunk) = chunks::parse(record.body.as_deref()) {
            let chunk = chunk?;
            return Ok(Parcel {
                about: format!("a chunk of {} connections", chunk.connection_ids.len()),
                chunk: true,
                handed_on: HandedOn::default(),
                entity_id: None,
                user_id: None,
                payload: chunk.payload,
                connection_ids: chunk.connection_ids,
            });
        }
        let (event, id) = match frames::parse_event(record.body.as_deref(), &self.app.config.push.detail_types)
            .context("malformed record")?
        {
            // EventBridge's event id, else (a message put on the queue by hand) SQS's message id:
            // either stays the same when the record is delivered again.
            QueuedEvent::Push { event, id } => (event, id.or_else(|| record.message_id.clone())),
            // No retry gives it recipients: redelivering would only carry it to the DLQ.
            QueuedEvent::Unknown { detail_type } => {
                tracing::warn!(
                    detail_type,
                    "an event of a detail-type this stack does not push; dropped"
                );
                return Ok(Parcel {
                    about: format!("an event of detail-type {detail_type:?}"),
                    chunk: false,
                    handed_on: HandedOn::default(),
                    entity_id: None,
                    user_id: None,
                    payload: String::new(),
                    connection_ids: Vec::new(),
                });
            }
        };
        tokio::time::timeout_at(self.stop_at, self.parcel_of(&event, id.as_deref(), Some(record)))
            .await
            .map_err(|_| anyhow!("the invocation's deadline came before the recipients of {event} were read"))?
    }

    /// The recipients of `event` and the payload they get: numbered in its stream and kept for
    /// resuming clients when the stack keeps history (`id` names the event, so that a redelivery
    /// keeps its number). A payload API Gateway would refuse is refused here, once for the event,
    /// before it is numbered or any subscriber is read or posted to (each post would be answered
    /// 413); the record then goes the way of every failed one, to the DLQ. With the `record` it
    /// came in, recipients it will surely hand on are handed on as they are read (see
    /// [`Invocation::gather`]).
    async fn parcel_of(&self, event: &PushEvent, id: Option<&str>, record: Option<&SqsMessage>) -> Result<Parcel> {
        let payload = |seq| String::from_utf8(frames::push_payload(event, seq)).expect("JSON is UTF-8");
        // The largest `seq` adds `,"seq":18446744073709551615` (27 bytes).
        let unnumbered = payload(None);
        if unnumbered.len() + 27 > frames::MAX_MESSAGE_BYTES {
            anyhow::bail!(
                "the push of {event} is {} bytes, more than the {} API Gateway carries in one message: posted to no one",
                unnumbered.len(),
                frames::MAX_MESSAGE_BYTES
            );
        }
        let payload = match (self.app.config.history_window, id) {
            (Some(window), Some(id)) => {
                let stream = history::Stream::of(event);
                history::record(self.app, stream, id, window, |seq| payload(Some(seq)))
                    .await?
                    .1
            }
            _ => unnumbered,
        };
        let (connection_ids, handed_on) = self.gather(event, &payload, record).await?;
        Ok(Parcel {
            about: event.to_string(),
            chunk: false,
            handed_on,
            entity_id: event.entity_id().map(String::from),
            user_id: event.user_id().map(String::from),
            payload,
            connection_ids,
        })
    }

    /// The recipients of `event`, a Query page at a time. An event whose recipients, counted so
    /// far, already fill a chunk in each invocation of the chunk queue is surely handed on, in
    /// chunks of `chunk_size` whatever its final count (see [`division::chunk_length`]): its full
    /// chunks are queued while the next page is read, so that the chunk queue's invocations start
    /// posting before the last page is in. A page holds at most that many recipients (a round:
    /// `chunk_size` x `chunk_invocations`, 5,000 shipped), so each page read feeds one round of the
    /// chunk queue: at 15,000 subscribers the first chunks go after 5,000 are read, not after the
    /// first 1 MB page (12,195 in the emulator). Returns the recipients not handed on yet, and
    /// what was.
    async fn gather(
        &self,
        event: &PushEvent,
        payload: &str,
        record: Option<&SqsMessage>,
    ) -> Result<(Vec<String>, HandedOn)> {
        let settings = &self.app.config.push;
        let early = record.zip(settings.chunk_size);
        let round = early.map(|(_, chunk_size)| chunk_size.saturating_mul(settings.chunk_invocations.max(1)));
        let mut pages = store::Recipients::of(self.app, event, round.and_then(|round| i32::try_from(round).ok()));
        let mut connection_ids: Vec<String> = Vec::new();
        let mut handed_on = HandedOn::default();
        let mut sending = None;
        loop {
            let page = match sending.take() {
                Some(send) => {
                    let (sent, page) = futures::join!(send, pages.next_page());
                    sent?;
                    page
                }
                None => pages.next_page().await,
            };
            let Some(page) = page else {
                break;
            };
            connection_ids.extend(page?);
            let Some((record, chunk_size)) = early else {
                continue;
            };
            let counted = handed_on.recipients + connection_ids.len();
            let surely_chunked = counted > division::direct_limit(settings.direct_posts_per_second, chunk_size)
                && division::chunk_length(
                    counted,
                    chunk_size,
                    settings.chunk_invocations,
                    settings.posts_per_second,
                ) == chunk_size;
            let ready = connection_ids.len() / chunk_size * chunk_size;
            if surely_chunked && ready > 0 {
                let bodies = chunks::split(payload, &connection_ids[..ready], chunk_size)?;
                connection_ids.drain(..ready);
                handed_on.recipients += ready;
                handed_on.chunks += bodies.len();
                sending = Some(self.hand_on(record, event.to_string(), bodies));
            }
        }
        Ok((connection_ids, handed_on))
    }

    /// Queues `bodies` on the chunk queue (without one, the queue `record` came from).
    async fn hand_on(&self, record: &SqsMessage, about: String, bodies: Vec<String>) -> Result<()> {
        let queue_arn = match &self.app.config.push.chunk_queue_arn {
            Some(arn) => arn.as_str(),
            None => record
                .event_source_arn
                .as_deref()
                .context("the record names no eventSourceARN to send chunks to")?,
        };
        let queue_url = chunks::queue_url(self.app, queue_arn).await?;
        // A failure sends the whole record back: when it comes again, the chunks queued this
        // time (and those queued earlier, while its recipients were read) are queued again, and
        // their subscribers get the event twice.
        chunks::send(self.app, &queue_url, &bodies, self.stop_at)
            .await
            .with_context(|| format!("handing on {about} as chunks"))
    }

    /// Which records this invocation posts itself and which it hands on as chunks. Without chunking
    /// it posts everything. With it, a chunk is always posted here (what it was made for); events
    /// are kept in order while their posts stay within the direct limit, and the others are handed
    /// on.
    fn carriers(&self, parcels: &[Result<Parcel>]) -> Vec<Carrier> {
        let settings = &self.app.config.push;
        let Some(chunk_size) = settings.chunk_size else {
            return vec![Carrier::Here; parcels.len()];
        };
        let limit = division::direct_limit(settings.direct_posts_per_second, chunk_size);
        let mut kept = 0;
        parcels
            .iter()
            .map(|parcel| {
                let Ok(parcel) = parcel else {
                    return Carrier::Here;
                };
                let posts = parcel.handed_on.recipients + parcel.connection_ids.len();
                if parcel.chunk || posts == 0 {
                    return Carrier::Here;
                }
                if kept + posts <= limit {
                    kept += posts;
                    Carrier::Here
                } else {
                    Carrier::HandOn
                }
            })
            .collect()
    }

    /// Posts a parcel here, or hands it on as chunks to the chunk queue (without one, the queue
    /// `record` came from).
    async fn carry(&self, record: &SqsMessage, parcel: Result<Parcel>, carrier: Carrier) -> Result<()> {
        let parcel = parcel?;
        if carrier == Carrier::HandOn {
            let settings = &self.app.config.push;
            let subscribers = parcel.handed_on.recipients + parcel.connection_ids.len();
            let length = division::chunk_length(
                subscribers,
                settings.chunk_size.unwrap_or(usize::MAX),
                settings.chunk_invocations,
                settings.posts_per_second,
            );
            let bodies = chunks::split(&parcel.payload, &parcel.connection_ids, length)?;
            let chunks = parcel.handed_on.chunks + bodies.len();
            if !bodies.is_empty() {
                self.hand_on(record, parcel.about.clone(), bodies).await?;
            }
            tracing::info!(about = parcel.about, subscribers, chunks, "handed on as chunks");
            return Ok(());
        }
        let fan_out = tokio::time::timeout_at(self.stop_at, self.deliver_all(&parcel))
            .await
            .map_err(|_| {
                anyhow!(
                    "the invocation's deadline came before every post to {} was done",
                    parcel.about
                )
            })?;
        tracing::info!(
            about = parcel.about,
            entity_id = parcel.entity_id,
            user_id = parcel.user_id,
            subscribers = fan_out.subscribers,
            delivered = fan_out.delivered,
            gone = fan_out.gone,
            skipped = fan_out.skipped,
            undelivered = fan_out.undelivered,
            "pushed"
        );
        if fan_out.undelivered > 0 {
            anyhow::bail!(
                "{} of {} deliveries to {} still failed after retries",
                fan_out.undelivered,
                fan_out.subscribers,
                parcel.about
            );
        }
        Ok(())
    }

    /// Posts `event` to each of its recipients (unnumbered: it has no id).
    pub async fn fan_out(&self, event: &PushEvent) -> Result<FanOut> {
        let parcel = self.parcel_of(event, None, None).await?;
        Ok(self.deliver_all(&parcel).await)
    }

    /// Posts one payload to every connection of a parcel, at the pace of its kind.
    async fn deliver_all(&self, parcel: &Parcel) -> FanOut {
        let pace = if parcel.chunk {
            self.pace.as_ref()
        } else {
            self.direct_pace.as_ref()
        };
        let mut outcome = FanOut {
            subscribers: parcel.connection_ids.len(),
            ..FanOut::default()
        };
        let payload = parcel.payload.as_bytes();
        // The semaphore is the bound; this only keeps a huge entity from holding a future per subscriber.
        let mut deliveries = stream::iter(parcel.connection_ids.iter())
            .map(|connection_id| self.deliver(connection_id, payload, pace))
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
    async fn deliver(&self, connection_id: &str, payload: &[u8], pace: Option<&Pace>) -> Delivery {
        let settings = &self.app.config.push;
        let mut attempt = 1;
        loop {
            let outcome = {
                let _permit = self.posts.acquire().await.expect("the semaphore is never closed");
                if let Some(pace) = pace {
                    pace.wait().await;
                }
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

    /// Holds the invocation until its paces' next slots (see [`Pace::settle`]): with at most
    /// `max_concurrency` invocations of each queue at once, the posts of all of them stay within
    /// the budget even when invocations are short and follow each other closely. Costs one
    /// interval past the last post: 2.6 ms for a chunk, 50 ms for direct posts with the shipped
    /// budget.
    async fn settle_pace(&self) {
        for pace in [&self.pace, &self.direct_pace].into_iter().flatten() {
            pace.settle(self.stop_at).await;
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

/// One payload and the connections it goes to, whoever they are.
struct Parcel {
    /// Names the parcel in logs and errors.
    about: String,
    /// A chunk (posted where it is received, at the chunk rate), not an event.
    chunk: bool,
    /// What was handed on as chunks while the recipients were read: `connection_ids` are the rest.
    handed_on: HandedOn,
    /// The event's entity or user, for the logs (a chunk has neither).
    entity_id: Option<String>,
    user_id: Option<String>,
    payload: String,
    connection_ids: Vec<String>,
}

/// Recipients of an event, and the chunks they make, queued on the chunk queue while its later
/// pages were read.
#[derive(Debug, Default, Clone, Copy)]
struct HandedOn {
    recipients: usize,
    chunks: usize,
}

/// Who posts a parcel: this invocation, or others it hands the parcel on to as chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carrier {
    Here,
    HandOn,
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
