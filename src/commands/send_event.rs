//! `wsstack send-event`: put one "entity updated" event on the stack's bus, as the stack's
//! producers would.
//!
//! The detail is checked before any AWS call; a rejected entry is a failure even on HTTP 200.

use anyhow::{anyhow, Result};
use serde_json::{json, Value};

use super::Context;
use crate::cli::{Format, SendEventArgs};
use crate::render::{self, bad_input, Failure};

pub async fn run(context: &Context, args: &SendEventArgs) -> Result<u8, Failure> {
    let (cli, stack) = (&context.cli, &context.file.stack);
    let entity_id = args.entity_id.as_str();
    let detail = event_detail(entity_id, args.message.as_deref(), args.detail.as_deref()).map_err(bad_input)?;
    let events = aws_sdk_eventbridge::Client::new(&context.config);
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source(crate::plan::event_source(stack))
        .detail_type(&stack.events.detail_type)
        .detail(detail.to_string())
        .event_bus_name(&stack.events.bus)
        .build();
    let output = events
        .put_events()
        .entries(entry)
        .send()
        .await
        .map_err(|e| crate::aws::sdk_error(format!("putting the event on bus {}", stack.events.bus), e))?;
    // PutEvents answers 200 even when the entry failed.
    let result = output.entries().first();
    if output.failed_entry_count > 0 || result.and_then(|e| e.error_code()).is_some() {
        let (code, message) = result
            .map(|e| (e.error_code().unwrap_or("unknown"), e.error_message().unwrap_or("")))
            .unwrap_or(("unknown", ""));
        return Err(anyhow!("EventBridge rejected the event: {code}: {message}").into());
    }
    let event_id = result.and_then(|e| e.event_id()).unwrap_or_default();
    match cli.output {
        Format::Json => render::print_json(
            &json!({"event_id": event_id, "bus": stack.events.bus, "detail_type": stack.events.detail_type, "detail": detail}),
        ),
        Format::Text => {
            if cli.quiet {
                println!("{event_id}");
            } else {
                println!(
                    "sent event {event_id} ({}, entityId {entity_id}) to bus {}",
                    stack.events.detail_type, stack.events.bus
                );
            }
        }
    }
    Ok(0)
}

/// The event detail: `--detail` (an object) or `{}`, with entityId and message set.
fn event_detail(entity_id: &str, message: Option<&str>, detail: Option<&str>) -> Result<Value> {
    if entity_id.is_empty() {
        return Err(anyhow!("--entity-id must not be empty"));
    }
    let mut detail = match detail {
        Some(text) => serde_json::from_str::<Value>(text).map_err(|e| anyhow!("--detail is not valid JSON: {e}"))?,
        None => json!({}),
    };
    let object = detail
        .as_object_mut()
        .ok_or_else(|| anyhow!("--detail must be a JSON object, like {{\"message\": \"...\"}}"))?;
    match object.get("entityId") {
        Some(Value::String(id)) if id != entity_id => {
            return Err(anyhow!("--detail has entityId `{id}` but --entity-id is `{entity_id}`"));
        }
        Some(other) if !other.is_string() => return Err(anyhow!("--detail: entityId must be a string")),
        _ => {}
    }
    object.insert("entityId".into(), Value::String(entity_id.into()));
    if let Some(message) = message {
        object.insert("message".into(), Value::String(message.into()));
    }
    Ok(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_gets_entity_and_message() {
        let detail = event_detail("e1", Some("hi"), None).unwrap();
        assert_eq!(detail, json!({"entityId": "e1", "message": "hi"}));
        let detail = event_detail("e1", None, Some(r#"{"message":"m","extra":1}"#)).unwrap();
        assert_eq!(detail, json!({"entityId": "e1", "message": "m", "extra": 1}));
    }

    #[test]
    fn bad_detail_is_refused() {
        assert!(event_detail("e1", None, Some("{not json"))
            .unwrap_err()
            .to_string()
            .contains("not valid JSON"));
        assert!(event_detail("e1", None, Some("[1]"))
            .unwrap_err()
            .to_string()
            .contains("JSON object"));
        assert!(event_detail("e1", None, Some(r#"{"entityId":"e2"}"#)).is_err());
        assert!(event_detail("", Some("m"), None).is_err());
    }
}
