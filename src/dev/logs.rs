//! Ships the local handler processes' output lines to the emulator's CloudWatch Logs, into each
//! function's `/aws/lambda/{function}` group (and the gateway's access lines into the stage's
//! access log group), so `wsstack logs` reads `wsstack dev` as it reads AWS.
//!
//! Batched and in order per log group; it never blocks a handler: when the buffer is full, lines
//! are dropped and counted. One task ships; `Shipping::finish` ships what is still buffered and
//! waits for it, so the last lines of a run reach the emulator before dev exits.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Lines waiting to be shipped at most; beyond it lines are dropped rather than slowing handlers.
const BUFFER: usize = 10_000;
/// How long lines gather before a PutLogEvents.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// PutLogEvents limits: 10,000 events and 1,048,576 bytes per call, counting 26 bytes per event;
/// one event at most 256 KB.
const MAX_BATCH_EVENTS: usize = 10_000;
const MAX_BATCH_BYTES: usize = 1_048_576;
const EVENT_OVERHEAD: usize = 26;
const MAX_EVENT_BYTES: usize = 256 * 1024 - EVENT_OVERHEAD;

struct Line {
    group: String,
    at_ms: i64,
    message: String,
}

/// The sending side, cloned into every function host.
#[derive(Clone)]
pub struct LogShipper {
    lines: mpsc::Sender<Line>,
    dropped: Arc<AtomicU64>,
}

/// The shipping task, to be finished once no handler writes any more.
pub struct Shipping {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Shipping {
    /// Ship the lines still buffered, then end; waits at most `grace` (the emulator may be gone).
    pub async fn finish(self, grace: Duration) {
        self.stop.cancel();
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            tracing::warn!("handler lines still unshipped to CloudWatch Logs after {grace:?}; leaving them");
            task.abort();
        }
    }
}

impl LogShipper {
    /// Start the shipping task; it runs until `Shipping::finish` (or the last `LogShipper` is
    /// dropped).
    pub fn start(client: aws_sdk_cloudwatchlogs::Client) -> (LogShipper, Shipping) {
        let (lines, receiver) = mpsc::channel(BUFFER);
        let stop = CancellationToken::new();
        let task = tokio::spawn(ship(client, receiver, stream_name(), stop.clone()));
        let shipper = LogShipper {
            lines,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        (shipper, Shipping { stop, task })
    }

    pub fn line(&self, function: &str, message: &str) {
        self.line_to_group(&format!("/aws/lambda/{function}"), message);
    }

    /// A line for any log group (the stage's access log).
    pub fn line_to_group(&self, group: &str, message: &str) {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let line = Line {
            group: group.to_string(),
            at_ms,
            message: truncate(message, MAX_EVENT_BYTES).to_string(),
        };
        if self.lines.try_send(line).is_err() && self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!("the log buffer is full: some handler lines do not reach CloudWatch Logs");
        }
    }
}

/// Lambda's stream naming, `YYYY/MM/DD/[$LATEST]{id}`, one stream per `wsstack dev` run.
fn stream_name() -> String {
    let date = chrono::Utc::now().format("%Y/%m/%d");
    format!("{date}/[$LATEST]{}", uuid::Uuid::new_v4().simple())
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Gather lines for [`FLUSH_EVERY`], put them, again; once `stop` is cancelled, put what is
/// buffered and end.
async fn ship(
    client: aws_sdk_cloudwatchlogs::Client,
    mut receiver: mpsc::Receiver<Line>,
    stream: String,
    stop: CancellationToken,
) {
    let mut streams_made: HashSet<String> = HashSet::new();
    let mut warned = false;
    let mut stopping = false;
    while !stopping {
        let mut by_group: BTreeMap<String, Vec<Line>> = BTreeMap::new();
        tokio::select! {
            line = receiver.recv() => match line {
                Some(line) => by_group.entry(line.group.clone()).or_default().push(line),
                None => return,
            },
            _ = stop.cancelled() => stopping = true,
        }
        if !stopping {
            tokio::select! {
                _ = tokio::time::sleep(FLUSH_EVERY) => {}
                _ = stop.cancelled() => stopping = true,
            }
        }
        while let Ok(line) = receiver.try_recv() {
            by_group.entry(line.group.clone()).or_default().push(line);
        }
        for (group, lines) in by_group {
            if let Err(error) = put(&client, &group, &stream, lines, &mut streams_made).await {
                // The log group is `up`'s; without it (or with the emulator gone) say so once.
                if !warned {
                    tracing::warn!(
                        group,
                        error = format!("{error:#}"),
                        "handler lines do not reach CloudWatch Logs"
                    );
                    warned = true;
                }
            }
        }
    }
}

async fn put(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    lines: Vec<Line>,
    streams_made: &mut HashSet<String>,
) -> anyhow::Result<()> {
    if !streams_made.contains(group) {
        match client
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_already_exists_exception()) => {}
            Err(e) => return Err(crate::aws::sdk_error(format!("creating log stream {stream}"), e)),
        }
        streams_made.insert(group.to_string());
    }
    // Lines arrive in order from one channel; the sort keeps a batch chronological, as AWS requires.
    let mut events: Vec<InputLogEvent> = Vec::with_capacity(lines.len());
    for line in lines {
        events.push(
            InputLogEvent::builder()
                .timestamp(line.at_ms)
                .message(line.message)
                .build()?,
        );
    }
    events.sort_by_key(|e| e.timestamp);
    let mut batch = Vec::new();
    let mut bytes = 0;
    for event in events {
        let size = event.message.len() + EVENT_OVERHEAD;
        if batch.len() == MAX_BATCH_EVENTS || bytes + size > MAX_BATCH_BYTES {
            send(client, group, stream, std::mem::take(&mut batch)).await?;
            bytes = 0;
        }
        bytes += size;
        batch.push(event);
    }
    if !batch.is_empty() {
        send(client, group, stream, batch).await?;
    }
    Ok(())
}

async fn send(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    events: Vec<InputLogEvent>,
) -> anyhow::Result<()> {
    client
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .map_err(|e| crate::aws::sdk_error(format!("putting handler lines into {group}"), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::{sdk_config, Target};

    /// Against a real moto: what is still buffered when `finish` is called is in CloudWatch Logs
    /// once it returns.
    #[tokio::test]
    async fn finish_ships_the_buffered_lines_before_it_returns() {
        let moto = tokio::task::spawn_blocking(testkit::moto::Moto::start)
            .await
            .unwrap()
            .expect("moto (scripts/setup)");
        let target = Target {
            endpoint_url: Some(moto.endpoint()),
            local_credentials: true,
            ..Target::default()
        };
        let client = aws_sdk_cloudwatchlogs::Client::new(&sdk_config(&target, "us-east-1").await);
        client
            .create_log_group()
            .log_group_name("/aws/lambda/flushed")
            .send()
            .await
            .unwrap();

        let (shipper, shipping) = LogShipper::start(client.clone());
        for n in 0..3 {
            shipper.line("flushed", &format!("line {n}"));
        }
        // At once: well within the 200 ms the shipper gathers lines for.
        shipping.finish(Duration::from_secs(20)).await;

        let events = client
            .filter_log_events()
            .log_group_name("/aws/lambda/flushed")
            .send()
            .await
            .unwrap();
        let messages: Vec<&str> = events.events().iter().filter_map(|e| e.message()).collect();
        assert_eq!(messages, ["line 0", "line 1", "line 2"]);
    }
}
