//! Each stream's recent events, numbered: a stream is an entity's events or a user's
//! notifications. The push handler numbers each event once ([`record`]) and keeps it for the
//! stack's history window; `subscribe` with `since` (and `resume` for a user) replays what a client
//! missed ([`since`]). Three kinds of record, in the connections table beside the others:
//!
//! - the stream's head, `pk = stream#entity#{id}` (or `stream#user#{id}`), `sk = head`: its latest
//!   `seq`;
//! - one history record per event, same `pk`, `sk = seq#{seq:020}`: the frame as posted (with its
//!   `seq`) and `expiresAt`, when it leaves the window;
//! - one marker per event, `pk = event#{id}` (the EventBridge event id), `sk = event#`: the `seq` it
//!   got, so that a redelivered record (SQS delivers at least once) keeps its number.
//!
//! The three are written in one transaction whose head condition is the head that was read: two
//! events of one stream numbered at once cannot get the same `seq`, a crash cannot leave a number
//! without its event, and a redelivery finds its marker. DynamoDB's TTL deletes expired records
//! late (within days), so every reader compares `expiresAt` with the time itself.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use crate::error::{FailureKind, HandlerError, SdkResultExt};
use crate::frames::PushEvent;
use crate::records::{PK, SK, TTL};
use crate::App;

type Result<T> = std::result::Result<T, HandlerError>;
type Item = HashMap<String, AttributeValue>;

/// Sort key of a stream's head.
pub const HEAD_SK: &str = "head";
/// Sort key of an event's marker.
pub const EVENT_SK: &str = "event#";
/// The latest `seq` (head), the `seq` an event got (marker).
pub const SEQ: &str = "seq";
/// History record: the frame as posted.
pub const FRAME: &str = "frame";
/// History record: when it leaves the window, epoch seconds.
pub const EXPIRES_AT: &str = "expiresAt";
/// A head outlives its stream's last event by this much: a stream silent for longer starts again
/// at 1, and a client that remembers a later number is told to resync.
const HEAD_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// A marker outlives its event's window by this much: SQS redelivers within the queue's
/// visibility timeouts and retries, hours at most; a redrive from the DLQ days later is a new event.
const MARKER_EXTRA: Duration = Duration::from_secs(24 * 3600);
/// Attempts at numbering when another event of the same stream took the number meanwhile.
const NUMBERING_ATTEMPTS: u32 = 16;

/// An entity's events or a user's notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream<'a> {
    Entity(&'a str),
    User(&'a str),
}

impl<'a> Stream<'a> {
    /// The stream an event belongs to.
    pub fn of(event: &'a PushEvent) -> Stream<'a> {
        match event {
            PushEvent::Entity(event) => Stream::Entity(&event.entity_id),
            PushEvent::User(event) => Stream::User(&event.user_id),
        }
    }

    pub fn partition(&self) -> String {
        match self {
            Stream::Entity(id) => format!("stream#entity#{id}"),
            Stream::User(id) => format!("stream#user#{id}"),
        }
    }
}

impl std::fmt::Display for Stream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stream::Entity(id) => write!(f, "entity {id:?}"),
            Stream::User(id) => write!(f, "user {id:?}"),
        }
    }
}

/// The sort key of the history record of `seq`: zero-padded, so that keys sort as numbers.
pub fn history_sk(seq: u64) -> String {
    format!("seq#{seq:020}")
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn epoch_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// The stream's latest `seq`; 0 when it has none (never had an event, or silent past the head's
/// lifetime).
pub async fn latest(app: &App, stream: Stream<'_>) -> Result<u64> {
    let head = app
        .dynamodb
        .get_item()
        .table_name(app.table())
        .key(PK, s(stream.partition()))
        .key(SK, s(HEAD_SK))
        .projection_expression("#seq")
        .expression_attribute_names("#seq", SEQ)
        .consistent_read(true)
        .send()
        .await
        .or_fail(|| format!("reading the latest seq of {stream} in table {}", app.table()))?;
    Ok(head.item.as_ref().and_then(|item| number(item, SEQ)).unwrap_or(0))
}

/// Numbers event `event_id` of `stream` and keeps its frame for `window`; `frame(seq)` makes the
/// frame as posted. Returns the number and the frame: the ones it got the first time when this is
/// a redelivery.
pub async fn record(
    app: &App,
    stream: Stream<'_>,
    event_id: &str,
    window: Duration,
    frame: impl Fn(u64) -> String,
) -> Result<(u64, String)> {
    let partition = stream.partition();
    let now = SystemTime::now();
    let expires_at = epoch_seconds(now + window);
    for _ in 0..NUMBERING_ATTEMPTS {
        let head = latest(app, stream).await?;
        let seq = head + 1;
        let posted = frame(seq);
        let head_condition = if head == 0 {
            "attribute_not_exists(#seq)"
        } else {
            "#seq = :head"
        };
        let mut advance = Update::builder()
            .table_name(app.table())
            .key(PK, s(&partition))
            .key(SK, s(HEAD_SK))
            .update_expression("SET #seq = :seq, #ttl = :ttl")
            .condition_expression(head_condition)
            .expression_attribute_names("#seq", SEQ)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":seq", n(seq))
            .expression_attribute_values(":ttl", n(epoch_seconds(now + HEAD_LIFETIME)));
        if head > 0 {
            advance = advance.expression_attribute_values(":head", n(head));
        }
        let keep = Put::builder()
            .table_name(app.table())
            .item(PK, s(&partition))
            .item(SK, s(history_sk(seq)))
            .item(FRAME, s(&posted))
            .item(EXPIRES_AT, n(expires_at))
            .item(TTL, n(expires_at));
        let mark = Put::builder()
            .table_name(app.table())
            .item(PK, s(format!("event#{event_id}")))
            .item(SK, s(EVENT_SK))
            .item(SEQ, n(seq))
            .item(TTL, n(epoch_seconds(now + window + MARKER_EXTRA)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK);
        let items = [
            TransactWriteItem::builder()
                .update(advance.build().map_err(built)?)
                .build(),
            TransactWriteItem::builder().put(keep.build().map_err(built)?).build(),
            TransactWriteItem::builder().put(mark.build().map_err(built)?).build(),
        ];
        let written = app
            .dynamodb
            .transact_write_items()
            .set_transact_items(Some(items.to_vec()))
            .send()
            .await;
        let error = match written {
            Ok(_) => return Ok((seq, posted)),
            Err(error) => error,
        };
        let reasons: Vec<Option<String>> = error
            .as_service_error()
            .and_then(|e| match e {
                aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                    canceled,
                ) => Some(canceled.cancellation_reasons().iter().map(|r| r.code().map(str::to_string)).collect()),
                _ => None,
            })
            .unwrap_or_default();
        let failed =
            |index: usize| reasons.get(index).and_then(|code| code.as_deref()) == Some("ConditionalCheckFailed");
        if failed(2) {
            return numbered_before(app, stream, event_id).await;
        }
        if !failed(0) {
            return Err(HandlerError::sdk(
                error,
                format!("numbering an event of {stream} in table {}", app.table()),
            ));
        }
        // Another event of this stream took `seq` first: read the head again.
    }
    Err(HandlerError::new(
        FailureKind::Retryable,
        anyhow::anyhow!("{NUMBERING_ATTEMPTS} events of {stream} were numbered while this one tried; try again"),
    ))
}

fn built(error: aws_sdk_dynamodb::error::BuildError) -> HandlerError {
    HandlerError::new(FailureKind::Permanent, error)
}

/// A redelivered event: the number and frame it got the first time.
async fn numbered_before(app: &App, stream: Stream<'_>, event_id: &str) -> Result<(u64, String)> {
    let marker = app
        .dynamodb
        .get_item()
        .table_name(app.table())
        .key(PK, s(format!("event#{event_id}")))
        .key(SK, s(EVENT_SK))
        .consistent_read(true)
        .send()
        .await
        .or_fail(|| format!("reading the seq of event {event_id} in table {}", app.table()))?;
    let seq = marker.item.as_ref().and_then(|item| number(item, SEQ)).ok_or_else(|| {
        HandlerError::new(
            FailureKind::Retryable,
            anyhow::anyhow!("event {event_id} of {stream} is marked numbered, but its marker is gone"),
        )
    })?;
    let kept = app
        .dynamodb
        .get_item()
        .table_name(app.table())
        .key(PK, s(stream.partition()))
        .key(SK, s(history_sk(seq)))
        .consistent_read(true)
        .send()
        .await
        .or_fail(|| format!("reading event {seq} of {stream} in table {}", app.table()))?;
    let frame = kept
        .item
        .as_ref()
        .and_then(|item| item.get(FRAME)?.as_s().ok().cloned())
        .ok_or_else(|| {
            HandlerError::new(
                FailureKind::Permanent,
                anyhow::anyhow!("event {event_id} got seq {seq} of {stream}, whose history record is gone"),
            )
        })?;
    Ok((seq, frame))
}

/// What a client that last saw `since` gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// The frames after `since`, in order (none when it is up to date), and the latest seq.
    Replay { frames: Vec<String>, latest: u64 },
    /// Events after `since` have left the window (or there are more than a replay carries, or the
    /// stream started again): the client must refetch its state.
    Resync { latest: u64 },
}

/// What a client that last saw `since` of `stream` missed: at most `max_frames` frames, else a
/// resync. One consistent read of the head, then the history records between `since` and it, in
/// 1 MB pages (a thousand small frames are one page).
pub async fn since(app: &App, stream: Stream<'_>, since: u64, max_frames: usize) -> Result<Since> {
    let latest = latest(app, stream).await?;
    if since == latest {
        return Ok(Since::Replay {
            frames: Vec::new(),
            latest,
        });
    }
    if since > latest || latest - since > max_frames as u64 {
        return Ok(Since::Resync { latest });
    }
    let now = epoch_seconds(SystemTime::now());
    let mut frames = Vec::with_capacity((latest - since) as usize);
    let mut pages = app
        .dynamodb
        .query()
        .table_name(app.table())
        .key_condition_expression("#pk = :pk AND #sk BETWEEN :first AND :last")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#sk", SK)
        .expression_attribute_values(":pk", s(stream.partition()))
        .expression_attribute_values(":first", s(history_sk(since + 1)))
        .expression_attribute_values(":last", s(history_sk(latest)))
        .consistent_read(true)
        .into_paginator()
        .send();
    let mut expected = since + 1;
    while let Some(page) = pages.next().await {
        let page = page.or_fail(|| format!("reading the history of {stream} in table {}", app.table()))?;
        for item in page.items.unwrap_or_default() {
            let seq = item
                .get(SK)
                .and_then(|sk| sk.as_s().ok())
                .and_then(|sk| sk.strip_prefix("seq#"))
                .and_then(|digits| digits.parse::<u64>().ok());
            let live = number(&item, EXPIRES_AT).is_some_and(|at| at > now);
            match (seq, item.get(FRAME).and_then(|f| f.as_s().ok())) {
                (Some(seq), Some(frame)) if seq == expected && live => {
                    frames.push(frame.clone());
                    expected += 1;
                }
                // Expired (TTL has not deleted it yet) or missing: the window no longer holds
                // everything after `since`.
                _ => return Ok(Since::Resync { latest }),
            }
        }
    }
    if expected != latest + 1 {
        return Ok(Since::Resync { latest });
    }
    Ok(Since::Replay { frames, latest })
}
