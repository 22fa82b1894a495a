//! `wsstack send-event`: put one entity update (`--entity-id`) or one user notification
//! (`--user-id`) on the stack's bus, as the stack's producers would.
//!
//! The detail is checked before any AWS call; a rejected entry is a failure even on HTTP 200.

use anyhow::{anyhow, Result};
use serde_json::{json, Value};

use super::Invocation;
use crate::cli::{Format, SendEventArgs};
use crate::render::{self, bad_input, Failure};
use crate::stack::Stack;

/// Who the event is for: the key its detail carries, and the detail-type that says which kind.
pub(crate) struct Recipient<'a> {
    /// `entityId` or `userId`.
    key: &'static str,
    id: &'a str,
    detail_type: &'a str,
}

impl<'a> Recipient<'a> {
    fn of(args: &'a SendEventArgs, stack: &'a Stack) -> Recipient<'a> {
        match (&args.entity_id, &args.user_id) {
            (_, Some(user_id)) => Recipient::user(user_id, stack),
            // clap requires exactly one of the two.
            (entity_id, None) => Recipient::entity(entity_id.as_deref().unwrap_or_default(), stack),
        }
    }

    /// Everyone watching entity `id`: an entity update.
    pub(crate) fn entity(id: &'a str, stack: &'a Stack) -> Recipient<'a> {
        Recipient {
            key: "entityId",
            id,
            detail_type: &stack.events.detail_type,
        }
    }

    /// Every connection of user `id`: a user notification.
    pub(crate) fn user(id: &'a str, stack: &'a Stack) -> Recipient<'a> {
        Recipient {
            key: "userId",
            id,
            detail_type: &stack.events.user_detail_type,
        }
    }

    pub(crate) fn detail_type(&self) -> &str {
        self.detail_type
    }
}

pub async fn run(context: &Invocation, args: &SendEventArgs) -> Result<u8, Failure> {
    let (cli, stack) = (&context.cli, &context.file.stack);
    let recipient = Recipient::of(args, stack);
    let detail = event_detail(
        &recipient,
        args.message.as_deref(),
        args.callback.as_deref(),
        args.detail.as_deref(),
    )
    .map_err(bad_input)?;
    if args.user_id.is_some() && stack.auth.is_none() {
        // Connections are indexed by user only when the authorizer names one.
        eprintln!("warning: {NO_USERS_WITHOUT_AUTH}");
    }
    let events = aws_sdk_eventbridge::Client::new(&context.config);
    let event_id = put_event(&events, stack, &recipient, &detail).await?;
    match cli.output {
        Format::Json => render::print_json(
            &json!({"event_id": event_id, "bus": stack.events.bus, "detail_type": recipient.detail_type, "detail": detail}),
        ),
        Format::Text => {
            if cli.quiet {
                println!("{event_id}");
            } else {
                println!(
                    "sent event {event_id} ({}, {} {}) to bus {}",
                    recipient.detail_type, recipient.key, recipient.id, stack.events.bus
                );
            }
        }
    }
    Ok(0)
}

/// Why a user notification on a stack without `auth:` reaches no one.
pub(crate) const NO_USERS_WITHOUT_AUTH: &str =
    "the stack file has no `auth:`, so no connection belongs to a user and this notification reaches no one";

/// Put `detail` (from `event_detail`) on the stack's bus for `recipient`, as the stack's producers
/// would; the event's id. Also `wsstack dev`'s console sends through here.
pub(crate) async fn put_event(
    events: &aws_sdk_eventbridge::Client,
    stack: &Stack,
    recipient: &Recipient<'_>,
    detail: &Value,
) -> Result<String> {
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source(crate::plan::event_source(stack))
        .detail_type(recipient.detail_type)
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
        return Err(anyhow!("EventBridge rejected the event: {code}: {message}"));
    }
    Ok(result.and_then(|e| e.event_id()).unwrap_or_default().to_string())
}

/// The event detail: `--detail` (an object) or `{}`, with the recipient's key, the message and
/// the callback set.
pub(crate) fn event_detail(
    recipient: &Recipient,
    message: Option<&str>,
    callback: Option<&str>,
    detail: Option<&str>,
) -> Result<Value> {
    let (key, id) = (recipient.key, recipient.id);
    let flag = if key == "userId" { "--user-id" } else { "--entity-id" };
    if id.is_empty() {
        return Err(anyhow!("{flag} must not be empty"));
    }
    if callback.is_some() && key != "userId" {
        return Err(anyhow!(
            "--callback goes with --user-id: only user notifications carry one"
        ));
    }
    let mut detail = match detail {
        Some(text) => serde_json::from_str::<Value>(text).map_err(|e| anyhow!("--detail is not valid JSON: {e}"))?,
        None => json!({}),
    };
    let object = detail
        .as_object_mut()
        .ok_or_else(|| anyhow!("--detail must be a JSON object, like {{\"message\": \"...\"}}"))?;
    match object.get(key) {
        Some(Value::String(given)) if given != id => {
            return Err(anyhow!("--detail has {key} `{given}` but {flag} is `{id}`"));
        }
        Some(other) if !other.is_string() => return Err(anyhow!("--detail: {key} must be a string")),
        _ => {}
    }
    object.insert(key.into(), Value::String(id.into()));
    if let Some(message) = message {
        object.insert("message".into(), Value::String(message.into()));
    }
    if let Some(callback) = callback {
        object.insert("callback".into(), Value::String(callback.into()));
    }
    Ok(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(id: &str) -> Recipient<'_> {
        Recipient {
            key: "entityId",
            id,
            detail_type: "Entity Updated",
        }
    }

    fn user(id: &str) -> Recipient<'_> {
        Recipient {
            key: "userId",
            id,
            detail_type: "Send User Push Notification",
        }
    }

    #[test]
    fn detail_gets_entity_and_message() {
        let detail = event_detail(&entity("e1"), Some("hi"), None, None).unwrap();
        assert_eq!(detail, json!({"entityId": "e1", "message": "hi"}));
        let detail = event_detail(&entity("e1"), None, None, Some(r#"{"message":"m","extra":1}"#)).unwrap();
        assert_eq!(detail, json!({"entityId": "e1", "message": "m", "extra": 1}));
    }

    #[test]
    fn detail_gets_user_message_and_callback() {
        let detail = event_detail(&user("u1"), Some("hi"), Some("orders/7"), None).unwrap();
        assert_eq!(detail, json!({"userId": "u1", "message": "hi", "callback": "orders/7"}));
        let detail = event_detail(&user("u1"), Some("hi"), None, None).unwrap();
        assert_eq!(detail, json!({"userId": "u1", "message": "hi"}));
        let error = event_detail(&user("u1"), None, None, Some(r#"{"userId":"u2"}"#)).unwrap_err();
        assert_eq!(error.to_string(), "--detail has userId `u2` but --user-id is `u1`");
        let error = event_detail(&user(""), Some("m"), None, None).unwrap_err();
        assert_eq!(error.to_string(), "--user-id must not be empty");
        let error = event_detail(&entity("e1"), Some("m"), Some("c"), None).unwrap_err();
        assert!(
            error.to_string().starts_with("--callback goes with --user-id"),
            "{error}"
        );
    }

    #[test]
    fn bad_detail_is_refused() {
        assert!(event_detail(&entity("e1"), None, None, Some("{not json"))
            .unwrap_err()
            .to_string()
            .contains("not valid JSON"));
        assert!(event_detail(&entity("e1"), None, None, Some("[1]"))
            .unwrap_err()
            .to_string()
            .contains("JSON object"));
        assert!(event_detail(&entity("e1"), None, None, Some(r#"{"entityId":"e2"}"#)).is_err());
        assert!(event_detail(&entity(""), Some("m"), None, None).is_err());
    }
}
