//! What happens in `wsstack dev`, for the console's live stream: a `tracing` layer that keeps the
//! events dev already logs (connects, frames routed, posts, event batches, refusals, handler
//! errors, warnings) as JSON entries, the last few hundred in memory, and hands each new one to the
//! pages watching. The log lines stay the one source: the console shows what dev logs.
//!
//! It must stay cheap on the gateway's hot path: one small JSON object per event, a bounded ring,
//! and a broadcast channel that drops the oldest entries for a page that reads too slowly.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{json, Map, Value};
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer};

/// Entries kept for a page that opens later.
const RECENT: usize = 500;
/// Entries waiting for a page; past it the page is told how many it missed.
const CHANNEL: usize = 1024;
/// A field longer than this is cut (a large push would otherwise be copied whole into the stream).
const MAX_FIELD_CHARS: usize = 2000;

/// One thing that happened, as the page receives it: `{"seq", "at", "kind", "message", "fields"}`.
pub type Entry = Arc<Value>;

#[derive(Clone)]
pub struct Activity {
    inner: Arc<Inner>,
}

struct Inner {
    recent: Mutex<VecDeque<Entry>>,
    sender: broadcast::Sender<Entry>,
    next: AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

impl Activity {
    pub fn new() -> Activity {
        let (sender, _) = broadcast::channel(CHANNEL);
        Activity {
            inner: Arc::new(Inner {
                recent: Mutex::new(VecDeque::with_capacity(RECENT)),
                sender,
                next: AtomicU64::new(1),
            }),
        }
    }

    /// The layer to install beside dev's own log. It has its own filter (dev's debug events, the
    /// handlers' lines even when `--quiet-handlers` keeps them off the terminal), so `WSSTACK_LOG`
    /// changes what the terminal shows, not what the console shows.
    pub fn layer<S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>>(
        &self,
    ) -> impl Layer<S> + Send + Sync + 'static {
        let targets = Targets::new()
            .with_target("wsstack::dev", Level::DEBUG)
            .with_target("wsstack::handler", Level::TRACE);
        ActivityLayer { activity: self.clone() }.with_filter(targets)
    }

    /// The entries kept, oldest first, and a receiver for the ones to come (taken together, so that
    /// none falls between the two).
    pub fn watch(&self) -> (Vec<Entry>, broadcast::Receiver<Entry>) {
        let recent = self.inner.recent.lock().unwrap();
        (recent.iter().cloned().collect(), self.inner.sender.subscribe())
    }

    /// Keep one entry of `kind`; the console's own actions come through here too (through tracing).
    fn push(&self, kind: &str, message: String, fields: Map<String, Value>) {
        let entry = Arc::new(json!({
            "seq": self.inner.next.fetch_add(1, Ordering::Relaxed),
            "at": crate::dev::events::iso(SystemTime::now()),
            "kind": kind,
            "message": message,
            "fields": fields,
        }));
        let mut recent = self.inner.recent.lock().unwrap();
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(entry.clone());
        // Sent under the lock: `watch` sees an entry either in `recent` or on the channel, once.
        let _ = self.inner.sender.send(entry);
    }
}

struct ActivityLayer {
    activity: Activity,
}

impl<S: Subscriber> Layer<S> for ActivityLayer {
    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let metadata = event.metadata();
        if let Some(kind) = kind_of(metadata.target(), *metadata.level(), &fields.message, &fields.map) {
            self.activity.push(kind, fields.message, fields.map);
        }
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    map: Map<String, Value>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let value = cut(value);
        if field.name() == "message" {
            self.message = value;
        } else {
            self.map.insert(field.name().to_string(), Value::String(value));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.map.insert(field.name().to_string(), json!(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.map.insert(field.name().to_string(), json!(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.map.insert(field.name().to_string(), json!(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_FIELD_CHARS) {
        Some((end, _)) => format!("{}… ({} bytes in all)", &text[..end], text.len()),
        None => text.to_string(),
    }
}

/// What the stream calls an event, or `None` for one it leaves out (dev's debug chatter, the
/// handlers' ordinary lines). Matched on the messages dev logs (gateway, poller, runtime, console).
fn kind_of(target: &str, level: Level, message: &str, fields: &Map<String, Value>) -> Option<&'static str> {
    if target == "wsstack::handler" {
        // A handler line is its own JSON log line (tracing's JSON format): keep errors and warnings.
        let line: Value = serde_json::from_str(message).ok()?;
        return match line["level"].as_str()? {
            "ERROR" => Some("handler-error"),
            "WARN" => Some("handler-warning"),
            _ => None,
        };
    }
    let kind = match message {
        "connected" => "connect",
        "disconnected" => "disconnect",
        "frame routed" => {
            let answer: Value = fields
                .get("answer")
                .and_then(Value::as_str)
                .and_then(|answer| serde_json::from_str(answer).ok())
                .unwrap_or(Value::Null);
            if answer["type"] == "error" || answer["message"].is_string() && answer.get("type").is_none() {
                "refusal"
            } else {
                match fields.get("route_key").and_then(Value::as_str) {
                    Some("subscribe") => "subscribe",
                    Some("unsubscribe") => "unsubscribe",
                    _ => "frame",
                }
            }
        }
        "posted to the connection" => "push",
        "event source: received a batch" => "event",
        "put an event on the bus" => "bus",
        "minted a token" => "token",
        _ if ["refus", "Forbidden", "throttl"]
            .iter()
            .any(|word| message.contains(word)) =>
        {
            "refusal"
        }
        _ if message.contains("dead-letter queue") => "dlq",
        _ if level == Level::ERROR => "error",
        _ if level == Level::WARN => "warning",
        _ => return None,
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn dev_events_become_entries_and_chatter_does_not() {
        let activity = Activity::new();
        let (before, mut receiver) = activity.watch();
        assert!(before.is_empty());
        let subscriber = tracing_subscriber::registry().with(activity.layer());
        tracing::subscriber::with_default(subscriber, || {
            // As the gateway and the runtime log them (target: the module path under wsstack::dev).
            tracing::debug!(target: "wsstack::dev::gateway::connection", connection_id = "c1", "connected");
            tracing::debug!(target: "wsstack::dev::gateway::connection", "some chatter");
            tracing::debug!(
                target: "wsstack::dev::gateway::connection",
                route_key = "subscribe",
                connection_id = "c1",
                frame = r#"{"action":"subscribe","entityId":"secret-1"}"#,
                answer = r#"{"type":"error","message":"not allowed"}"#,
                "frame routed"
            );
            tracing::trace!(target: "wsstack::handler", function = "f", "{}", r#"{"level":"ERROR","fields":{"message":"boom"}}"#);
            tracing::trace!(target: "wsstack::handler", function = "f", "{}", r#"{"level":"INFO","fields":{"message":"fine"}}"#);
            tracing::info!(target: "hyper", "connected");
        });
        let kinds: Vec<String> = std::iter::from_fn(|| receiver.try_recv().ok())
            .map(|entry| entry["kind"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(kinds, ["connect", "refusal", "handler-error"]);
        let (recent, _) = activity.watch();
        assert_eq!(recent.len(), 3);
        assert_eq!(recent[0]["fields"]["connection_id"], "c1");
        assert!(recent[0]["seq"].as_u64() < recent[1]["seq"].as_u64());
    }

    #[test]
    fn long_fields_are_cut() {
        let long = "x".repeat(MAX_FIELD_CHARS + 10);
        let cut = cut(&long);
        assert!(cut.starts_with(&"x".repeat(MAX_FIELD_CHARS)));
        assert!(cut.ends_with(&format!("({} bytes in all)", long.len())));
    }
}
