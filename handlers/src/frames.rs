//! The JSON that crosses the wire: client frames (`subscribe`/`unsubscribe`), the EventBridge envelope
//! the push queue carries, and the payloads sent back to clients. Parsing and validation only; a bad
//! input is a [`FrameError`] with a message fit to show the client, never a panic.

use serde::Serialize;
use serde_json::Value;

/// Longest accepted entity id, in characters. DynamoDB allows 2 KB keys; ids are short names.
pub const MAX_ENTITY_ID_CHARS: usize = 128;
/// Longest accepted client frame, in bytes (API Gateway's own frame limit is 32 KB).
pub const MAX_FRAME_BYTES: usize = 32 * 1024;

/// Why a frame or a queued event was refused; `Display` is the message sent to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError(pub String);

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FrameError {}

fn refuse<T>(message: impl Into<String>) -> Result<T, FrameError> {
    Err(FrameError(message.into()))
}

/// Checks an entity id: a non-empty string of at most [`MAX_ENTITY_ID_CHARS`] printable characters
/// (no control characters, no line or paragraph separators, no leading or trailing white space).
pub fn validate_entity_id(value: Option<&Value>) -> Result<String, FrameError> {
    let entity_id = match value {
        None | Some(Value::Null) => return refuse("entityId is missing"),
        Some(Value::String(entity_id)) => entity_id,
        Some(_) => return refuse("entityId must be a string"),
    };
    if entity_id.is_empty() {
        return refuse("entityId is empty");
    }
    if entity_id.chars().count() > MAX_ENTITY_ID_CHARS {
        return refuse(format!("entityId is longer than {MAX_ENTITY_ID_CHARS} characters"));
    }
    if entity_id
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}'))
    {
        return refuse("entityId contains non-printable characters");
    }
    if entity_id.trim() != entity_id {
        return refuse("entityId has leading or trailing white space");
    }
    Ok(entity_id.clone())
}

/// Parses a client frame sent on the `expected_action` route and returns its entity id.
pub fn parse_client_frame(
    body: Option<&str>,
    is_base64_encoded: bool,
    expected_action: &str,
) -> Result<String, FrameError> {
    if is_base64_encoded {
        return refuse("binary frames are not supported; send JSON text");
    }
    let body = match body {
        Some(body) if !body.trim().is_empty() => body,
        _ => return refuse("empty frame; expected {\"action\":\"...\",\"entityId\":\"...\"}"),
    };
    if body.len() > MAX_FRAME_BYTES {
        return refuse(format!("frame larger than {MAX_FRAME_BYTES} bytes"));
    }
    let frame: Value = match serde_json::from_str(body) {
        Ok(frame) => frame,
        Err(error) => return refuse(format!("frame is not valid JSON: {error}")),
    };
    let Value::Object(frame) = frame else {
        return refuse("frame must be a JSON object");
    };
    match frame.get("action") {
        Some(Value::String(action)) if action == expected_action => {}
        Some(Value::String(action)) => return refuse(format!("action {action:?} sent to the {expected_action} route")),
        None => {}
        Some(_) => return refuse("action must be a string"),
    }
    validate_entity_id(frame.get("entityId"))
}

/// What the push handler needs from one queued EventBridge event.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityEvent {
    pub detail_type: String,
    pub entity_id: String,
    pub message: Value,
}

/// Parses the EventBridge envelope in an SQS record body:
/// `{"detail-type": "...", "detail": {"entityId": "...", "message": ...}, ...}`.
pub fn parse_event(body: Option<&str>) -> Result<EntityEvent, FrameError> {
    let Some(body) = body else {
        return refuse("record has no body");
    };
    let envelope: Value = match serde_json::from_str(body) {
        Ok(envelope) => envelope,
        Err(error) => return refuse(format!("body is not JSON: {error}")),
    };
    let detail_type = match envelope.get("detail-type") {
        Some(Value::String(detail_type)) if !detail_type.is_empty() => detail_type.clone(),
        _ => return refuse("envelope has no detail-type string"),
    };
    let Some(Value::Object(detail)) = envelope.get("detail") else {
        return refuse("envelope has no detail object");
    };
    let entity_id =
        validate_entity_id(detail.get("entityId")).map_err(|error| FrameError(format!("detail.{error}")))?;
    let message = match detail.get("message") {
        None | Some(Value::Null) => return refuse("detail.message is missing"),
        Some(message) => message.clone(),
    };
    Ok(EntityEvent {
        detail_type,
        entity_id,
        message,
    })
}

/// The frame pushed to subscribers: `{"type":"Entity Updated","entityId":"...","message":"..."}`.
#[derive(Debug, Serialize)]
pub struct PushPayload<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    #[serde(rename = "entityId")]
    pub entity_id: &'a str,
    pub message: &'a Value,
}

/// The frame sent to a client whose frame was refused: `{"type":"error","message":"..."}`.
pub fn error_payload(message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "type": "error", "message": message }))
        .expect("a JSON object of strings always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_plain_subscribe_frame() {
        let frame = r#"{"action":"subscribe","entityId":"order-42"}"#;
        assert_eq!(
            parse_client_frame(Some(frame), false, "subscribe"),
            Ok("order-42".to_string())
        );
    }

    #[test]
    fn accepts_unicode_letters_and_inner_spaces() {
        let frame = r#"{"action":"subscribe","entityId":"Zürich order 7"}"#;
        assert!(parse_client_frame(Some(frame), false, "subscribe").is_ok());
    }

    #[test]
    fn parses_an_eventbridge_envelope() {
        let body = r#"{"version":"0","id":"1","detail-type":"Entity Updated","source":"app",
            "detail":{"entityId":"e1","message":"hello"}}"#;
        let event = parse_event(Some(body)).unwrap();
        assert_eq!(event.detail_type, "Entity Updated");
        assert_eq!(event.entity_id, "e1");
        assert_eq!(event.message, Value::String("hello".into()));
    }

    #[test]
    fn push_payload_has_the_seed_shape() {
        let message = Value::String("hi".into());
        let payload = PushPayload {
            kind: "Entity Updated",
            entity_id: "e1",
            message: &message,
        };
        assert_eq!(
            serde_json::to_string(&payload).unwrap(),
            r#"{"type":"Entity Updated","entityId":"e1","message":"hi"}"#
        );
    }
}
