//! Chunked delivery: one delivery (a payload and the connection ids it goes to) split into chunk
//! messages and sent to the chunk queue, whose event source hands each to an invocation of its
//! own. Owns the chunk message format, the split under SQS's size limits and the SendMessageBatch
//! calls; how an event is divided is `division`'s, and posting is push.rs's.
//!
//! Why a queue of its own with one chunk per invocation: every invocation paces its posts at its
//! share of the budget, so the budget is reached only when every invocation the event source may
//! run has a chunk. Chunks handed back to the events queue came in batches, and one invocation
//! that took five posted them all at its one share while the others found the queue empty. And
//! an event with a few subscribers, posted by the invocation that reads it, never waits behind
//! the chunks of a large one.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use crate::App;

/// SQS's limit on one message body and on the sum of the bodies of one SendMessageBatch call
/// (256 KiB). A chunk and a batch of chunks both stay under it.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// SendMessageBatch takes at most ten entries.
const BATCH_ENTRIES: usize = 10;
/// Attempts at the entries of a SendMessageBatch call that SQS answered as failed.
const SEND_ATTEMPTS: u32 = 3;

/// The value of [`MARKER`] in a chunk message. An EventBridge envelope (the only other body the
/// queue carries) has a fixed set of top-level keys, none of which is `wsstack`.
const CHUNK_KIND: &str = "push-chunk";
const MARKER: &str = "wsstack";

/// One chunk: the exact bytes to post (as UTF-8 text) and who gets them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub payload: String,
    #[serde(rename = "connectionIds")]
    pub connection_ids: Vec<String>,
}

#[derive(Serialize)]
struct ChunkMessage<'a> {
    wsstack: &'static str,
    payload: &'a str,
    #[serde(rename = "connectionIds")]
    connection_ids: &'a [String],
}

/// `Some` when `body` is a chunk message (parsed, or why it cannot be), `None` for anything else.
pub fn parse(body: Option<&str>) -> Option<Result<Chunk>> {
    let envelope: Value = serde_json::from_str(body?).ok()?;
    let marker = envelope.get(MARKER)?;
    if marker != CHUNK_KIND {
        return Some(Err(anyhow!("{MARKER:?} is {marker}, expected {CHUNK_KIND:?}")));
    }
    Some(serde_json::from_value(envelope).context("malformed chunk message"))
}

/// The chunk message of `connection_ids`.
pub fn body(payload: &str, connection_ids: &[String]) -> String {
    serde_json::to_string(&ChunkMessage {
        wsstack: CHUNK_KIND,
        payload,
        connection_ids,
    })
    .expect("strings always serialize")
}

/// `connection_ids` in chunk messages of at most `chunk_size` ids and [`MAX_MESSAGE_BYTES`] bytes
/// each, in order.
pub fn split(payload: &str, connection_ids: &[String], chunk_size: usize) -> Result<Vec<String>> {
    let empty = body(payload, &[]).len();
    if empty >= MAX_MESSAGE_BYTES {
        bail!(
            "a payload of {} bytes leaves no room for connection ids in a chunk message",
            payload.len()
        );
    }
    let mut bodies = Vec::new();
    let (mut start, mut bytes) = (0, empty);
    for (index, connection_id) in connection_ids.iter().enumerate() {
        // The id in quotes, and a comma before every id but the first of its chunk.
        let id_bytes = serde_json::to_string(connection_id).expect("a string").len();
        if index > start && (index - start >= chunk_size.max(1) || bytes + id_bytes + 1 > MAX_MESSAGE_BYTES) {
            bodies.push(body(payload, &connection_ids[start..index]));
            (start, bytes) = (index, empty);
        }
        bytes += id_bytes + usize::from(index > start);
        if bytes > MAX_MESSAGE_BYTES {
            bail!("connection id {connection_id:?} does not fit in a chunk message");
        }
    }
    if start < connection_ids.len() {
        bodies.push(body(payload, &connection_ids[start..]));
    }
    Ok(bodies)
}

/// The URL of the queue `queue_arn` names (`arn:{partition}:sqs:{region}:{account}:{name}`), asked
/// once per process.
pub async fn queue_url(app: &App, queue_arn: &str) -> Result<String> {
    if let Some(url) = app.queue_urls.lock().expect("no panic holds this lock").get(queue_arn) {
        return Ok(url.clone());
    }
    let parts: Vec<&str> = queue_arn.split(':').collect();
    let [_, _, "sqs", _, account, name] = parts[..] else {
        bail!("{queue_arn:?} is not an SQS queue ARN");
    };
    let url = app
        .sqs
        .get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .with_context(|| format!("finding the URL of queue {queue_arn}"))?
        .queue_url
        .ok_or_else(|| anyhow!("GetQueueUrl of {queue_arn} answered no URL"))?;
    app.queue_urls
        .lock()
        .expect("no panic holds this lock")
        .insert(queue_arn.to_string(), url.clone());
    Ok(url)
}

/// Sends every body to the queue: SendMessageBatch calls of at most ten entries and
/// [`MAX_MESSAGE_BYTES`] together, entries SQS failed sent again. An error means some bodies may
/// not be queued (the others are), and says how many.
pub async fn send(app: &App, queue_url: &str, bodies: &[String], stop_at: Instant) -> Result<()> {
    let mut groups: Vec<Vec<&String>> = Vec::new();
    let mut group_bytes = 0;
    for body in bodies {
        match groups.last_mut() {
            Some(group) if group.len() < BATCH_ENTRIES && group_bytes + body.len() <= MAX_MESSAGE_BYTES => {
                group.push(body);
                group_bytes += body.len();
            }
            _ => {
                groups.push(vec![body]);
                group_bytes = body.len();
            }
        }
    }
    let sends = groups.iter().map(|group| send_group(app, queue_url, group, stop_at));
    let unsent: usize = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|(unsent, error)| {
                tracing::warn!(error = format!("{error:#}"), unsent, "chunk messages not queued");
                unsent
            })
        })
        .sum();
    if unsent > 0 {
        bail!("{unsent} of {} chunk messages could not be queued", bodies.len());
    }
    Ok(())
}

/// One SendMessageBatch call and the retries of its failed entries; on failure, how many stayed unsent.
async fn send_group(
    app: &App,
    queue_url: &str,
    group: &[&String],
    stop_at: Instant,
) -> std::result::Result<usize, (usize, anyhow::Error)> {
    let mut pending: Vec<(usize, &String)> = group.iter().copied().enumerate().collect();
    let mut pause = Duration::from_millis(50);
    for attempt in 1..=SEND_ATTEMPTS {
        let entries = pending
            .iter()
            .map(|(index, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .message_body(body.as_str())
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        let call = app
            .sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        let error = match call {
            Ok(output) => {
                let failed = output.failed();
                if failed.is_empty() {
                    return Ok(0);
                }
                let first = &failed[0];
                let error = anyhow!(
                    "SendMessageBatch failed {} entries: {} {}",
                    failed.len(),
                    first.code(),
                    first.message().unwrap_or_default()
                );
                if failed.iter().any(|entry| entry.sender_fault()) {
                    // The same message would be refused again.
                    return Err((failed.len(), error));
                }
                pending.retain(|(index, _)| failed.iter().any(|entry| entry.id() == index.to_string()));
                error
            }
            Err(error) => anyhow::Error::new(error).context(format!("SendMessageBatch to {queue_url}")),
        };
        if attempt == SEND_ATTEMPTS || Instant::now() + pause >= stop_at {
            return Err((pending.len(), error));
        }
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
    unreachable!("the last attempt returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(count: usize) -> Vec<String> {
        (0..count).map(|n| format!("C{n:010}=")).collect()
    }

    #[test]
    fn chunks_are_told_apart_from_eventbridge_envelopes() {
        let chunk = body(r#"{"type":"Entity Updated"}"#, &ids(2));
        let parsed = parse(Some(&chunk)).unwrap().unwrap();
        assert_eq!(parsed.payload, r#"{"type":"Entity Updated"}"#);
        assert_eq!(parsed.connection_ids, ids(2));
        let envelope = r#"{"version":"0","detail-type":"Entity Updated","detail":{"entityId":"e","message":1}}"#;
        assert!(parse(Some(envelope)).is_none());
        assert!(parse(Some("not json")).is_none());
        assert!(parse(None).is_none());
        assert!(parse(Some(r#"{"wsstack":"other"}"#)).unwrap().is_err());
        assert!(parse(Some(r#"{"wsstack":"push-chunk","payload":1}"#)).unwrap().is_err());
    }

    #[test]
    fn split_keeps_every_id_once_in_order_within_both_limits() {
        let all = ids(2_345);
        let bodies = split("{}", &all, 1_000).unwrap();
        assert_eq!(bodies.len(), 3);
        let parsed: Vec<Chunk> = bodies.iter().map(|b| parse(Some(b)).unwrap().unwrap()).collect();
        assert_eq!(parsed[0].connection_ids.len(), 1_000);
        assert_eq!(parsed[2].connection_ids.len(), 345);
        let joined: Vec<String> = parsed.into_iter().flat_map(|c| c.connection_ids).collect();
        assert_eq!(joined, all);

        // A large payload leaves room for fewer ids than chunk_size: the byte limit decides.
        let payload = "x".repeat(240 * 1024);
        let bodies = split(&payload, &all, 10_000).unwrap();
        assert!(bodies.len() > 1);
        assert!(
            bodies.iter().all(|b| b.len() <= MAX_MESSAGE_BYTES),
            "a chunk is over the limit"
        );
        let joined: Vec<String> = bodies
            .iter()
            .flat_map(|b| parse(Some(b)).unwrap().unwrap().connection_ids)
            .collect();
        assert_eq!(joined, all);

        assert!(split(&"x".repeat(MAX_MESSAGE_BYTES), &all, 10).is_err());
        assert!(split("{}", &[], 10).unwrap().is_empty());
    }

    #[test]
    fn the_largest_chunk_of_api_gateway_ids_fits_in_one_message() {
        // API Gateway connection ids are 16 characters ("L0SM9cOFvHcCIhw="): with a 1 KB payload a
        // message holds about 13,000 of them; 10,000 (the stack file's maximum) fit with room left.
        let all: Vec<String> = (0..10_000).map(|n| format!("L0SM9cOF{n:07}=")).collect();
        let bodies = split(&"p".repeat(1024), &all, 10_000).unwrap();
        assert_eq!(bodies.len(), 1);
        assert!(bodies[0].len() < MAX_MESSAGE_BYTES);
    }
}
