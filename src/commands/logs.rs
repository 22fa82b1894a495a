//! `wsstack logs [HANDLER]`: the handlers' CloudWatch Logs (`/aws/lambda/{function}`) and the
//! stage's access log (`/aws/apigateway/{name}-{stage}-access`, shown as `access`), merged in time
//! order, one line per event with its source in front; `logs access` shows the access log alone.
//! `--follow` polls until Ctrl-C.
//!
//! Read-only (FilterLogEvents). JSON lines of the handlers are shown readably; `-o json` keeps them raw.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use futures::future::try_join_all;
use serde_json::{json, Value};

use super::Invocation;
use crate::cli::{Format, LogsArgs};
use crate::render::{bad_input, Failure};

/// The name `logs` gives the stage's access log (no handler is named so: own routes' handlers
/// carry a prefix).
pub const ACCESS: &str = "access";

/// How often `--follow` asks again.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// The longest pause between two polls while FilterLogEvents is throttled: its quota is low and
/// shared by everything in the account and region that reads logs.
const THROTTLED_PAUSE_MAX: Duration = Duration::from_secs(30);
/// Events can be ingested after later ones: `--follow` looks this far back again, and the
/// event ids already shown keep it from printing one twice.
const LATE_EVENTS: i64 = 60_000;

pub struct Event {
    pub handler: String,
    pub timestamp: i64,
    pub event_id: String,
    pub message: String,
}

pub async fn run(context: &Invocation, args: &LogsArgs) -> Result<u8, Failure> {
    let stack = &context.file.stack;
    let mut all = crate::names::handlers(stack);
    if stack.access_logs {
        all.push(ACCESS.to_string());
    }
    let handlers: Vec<String> = match &args.handler {
        Some(handler) if all.contains(handler) => vec![handler.clone()],
        Some(handler) => {
            return Err(bad_input(anyhow!(
                "no handler `{handler}` in this stack; its handlers are {}",
                all.join(", ")
            )))
        }
        None => all,
    };
    let since = parse_since(&args.since).map_err(bad_input)?;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&context.config);
    let format = context.cli.output;
    let since_start = now_ms() - since.as_millis() as i64;
    let mut start = since_start;
    let mut newest = since_start;
    // Event ids shown, with their timestamps, to drop the ones that left the window.
    let mut shown: HashMap<String, i64> = HashMap::new();
    let mut pause = POLL_EVERY;
    loop {
        let events = match read(&logs, context, &handlers, start).await {
            Ok(events) => {
                if pause != POLL_EVERY {
                    eprintln!(
                        "wsstack logs: CloudWatch Logs answers again; polling every {} s",
                        POLL_EVERY.as_secs()
                    );
                }
                pause = POLL_EVERY;
                events
            }
            // Throttled even after the SDK's retries: a follower slows down and goes on.
            Err(Read::Throttled(error)) if args.follow => {
                pause = (pause * 2).min(THROTTLED_PAUSE_MAX);
                eprintln!(
                    "wsstack logs: {error:#}; FilterLogEvents has a low quota shared by the account: asking again in {} s",
                    pause.as_secs()
                );
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => return Ok(0),
                    _ = tokio::time::sleep(pause) => {}
                }
                continue;
            }
            Err(Read::Throttled(error) | Read::Failed(error)) => return Err(error.into()),
        };
        for event in events {
            newest = newest.max(event.timestamp);
            if shown.insert(event.event_id.clone(), event.timestamp).is_none() {
                println!("{}", render(&event, format));
            }
        }
        if !args.follow {
            return Ok(0);
        }
        start = since_start.max(newest - LATE_EVENTS);
        shown.retain(|_, timestamp| *timestamp >= start);
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(0),
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Why reading the logs failed: throttled (worth asking again later), or anything else.
enum Read {
    Throttled(anyhow::Error),
    Failed(anyhow::Error),
}

/// Every event since `start_ms` of the given handlers, oldest first (ties by event id).
async fn read(
    logs: &aws_sdk_cloudwatchlogs::Client,
    context: &Invocation,
    handlers: &[String],
    start_ms: i64,
) -> Result<Vec<Event>, Read> {
    let reads = handlers.iter().map(|handler| async move {
        let group = if handler == ACCESS {
            context.names.access_log_group()
        } else {
            context.names.log_group(handler)
        };
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = logs
                .filter_log_events()
                .log_group_name(&group)
                .start_time(start_ms)
                .set_next_token(token.take())
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                // No group yet: `up` has not run, or the function never logged.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    break
                }
                Err(e) if e.code() == Some("ThrottlingException") => {
                    return Err(Read::Throttled(crate::aws::sdk_error(
                        format!("reading log group {group}"),
                        e,
                    )))
                }
                Err(e) => {
                    return Err(Read::Failed(crate::aws::sdk_error(
                        format!("reading log group {group}"),
                        e,
                    )))
                }
            };
            for event in page.events() {
                events.push(Event {
                    handler: handler.clone(),
                    timestamp: event.timestamp().unwrap_or_default(),
                    event_id: event.event_id().unwrap_or_default().to_string(),
                    message: event.message().unwrap_or_default().trim_end().to_string(),
                });
            }
            match page.next_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => break,
            }
        }
        Ok::<_, Read>(events)
    });
    let mut events: Vec<Event> = try_join_all(reads).await?.into_iter().flatten().collect();
    events.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then_with(|| a.event_id.cmp(&b.event_id)));
    Ok(events)
}

/// `10m`, `90s`, `2h`, `1d` (a bare number is seconds).
pub fn parse_since(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = number
        .parse()
        .map_err(|_| anyhow!("--since `{text}`: expected a number and a unit, e.g. 10m, 2h, 1d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(anyhow!("--since `{text}`: unknown unit `{other}`; use s, m, h or d")),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One output line: raw JSON with `-o json`, else time, handler and a readable message.
fn render(event: &Event, format: Format) -> String {
    if format == Format::Json {
        return json!({"handler": event.handler, "timestamp": event.timestamp, "event_id": event.event_id, "message": event.message})
            .to_string();
    }
    let time = chrono::DateTime::from_timestamp_millis(event.timestamp)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default();
    let message = if event.handler == ACCESS {
        readable_access(&event.message)
    } else {
        readable(&event.message)
    };
    format!("{time} {:<11} {message}", event.handler)
}

/// An access log line (`stage::ACCESS_LOG_FORMAT`) as `EVENT route status connection=... request=...`
/// and whichever errors it has; API Gateway writes `-` for a variable with no value.
pub fn readable_access(message: &str) -> String {
    let Ok(Value::Object(line)) = serde_json::from_str::<Value>(message) else {
        return message.to_string();
    };
    let field = |key: &str| {
        line.get(key)
            .map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))
            .filter(|v| !v.is_empty() && v != "-")
    };
    let mut out = format!(
        "{:<10} {} {}",
        field("eventType").unwrap_or_default(),
        field("routeKey").unwrap_or_default(),
        field("status").unwrap_or_default()
    );
    for key in [
        "connectionId",
        "requestId",
        "sourceIp",
        "integrationLatency",
        "error",
        "integrationError",
        "authorizerError",
    ] {
        if let Some(value) = field(key) {
            out.push_str(&format!(" {key}={value}"));
        }
    }
    out
}

/// A handler's JSON log line (tracing's `{"level", "fields": {"message", ...}}`) as
/// `LEVEL message key=value ...`; anything else as it is.
pub fn readable(message: &str) -> String {
    let Ok(Value::Object(line)) = serde_json::from_str::<Value>(message) else {
        return message.to_string();
    };
    let level = line.get("level").and_then(Value::as_str).unwrap_or("");
    let fields = line.get("fields").and_then(Value::as_object);
    let text = fields
        .and_then(|f| f.get("message"))
        .or_else(|| line.get("message"))
        .map(|m| m.as_str().map(String::from).unwrap_or_else(|| m.to_string()))
        .unwrap_or_default();
    let mut out = format!("{level:<5} {text}");
    for (key, value) in fields.into_iter().flatten().filter(|(k, _)| *k != "message") {
        match value.as_str() {
            Some(s) => out.push_str(&format!(" {key}={s}")),
            None => out.push_str(&format!(" {key}={value}")),
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_units() {
        assert_eq!(parse_since("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_since("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_since("1d").unwrap(), Duration::from_secs(86_400));
        assert!(parse_since("10 weeks").is_err());
        assert!(parse_since("m").is_err());
    }

    #[test]
    fn tracing_json_lines_read_as_level_message_fields() {
        let line = r#"{"timestamp":"2026-01-01T00:00:00Z","level":"INFO","fields":{"message":"subscribed","entity":"order-42","count":3},"target":"handlers"}"#;
        // Fields in key order (serde_json maps are sorted), so a line reads the same every time.
        assert_eq!(readable(line), "INFO  subscribed count=3 entity=order-42");
        assert_eq!(readable("START RequestId: abc"), "START RequestId: abc");
    }

    #[test]
    fn access_lines_read_as_event_route_status_and_what_went_wrong() {
        let line = r#"{"requestId":"r1","connectionId":"c1","routeKey":"subscribe","eventType":"MESSAGE","status":"429","messageId":"m1","error":"Too Many Requests","integrationError":"-","authorizerError":"-","sourceIp":"127.0.0.1","integrationLatency":"-","requestTime":"07/Dec/2026:00:00:00 +0000","requestTimeEpoch":"1796601600000"}"#;
        assert_eq!(
            readable_access(line),
            "MESSAGE    subscribe 429 connectionId=c1 requestId=r1 sourceIp=127.0.0.1 error=Too Many Requests"
        );
        assert_eq!(readable_access("not json"), "not json");
    }
}
