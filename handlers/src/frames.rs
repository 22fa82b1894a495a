//! The JSON that crosses the wire: client frames (`subscribe`/`unsubscribe`/`resume`), the EventBridge envelopes
//! the push queue carries, and the payloads sent back to clients. Parsing and validation only; a bad
//! input is a [`FrameError`] with a message fit to show the client, never a panic.

use serde::Serialize;
use serde_json::Value;

/// Longest accepted entity id, in characters. DynamoDB allows 2 KB keys; ids are short names.
pub const MAX_ENTITY_ID_CHARS: usize = 128;
/// Longest accepted client frame, in bytes (API Gateway's own frame limit is 32 KB).
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// Largest message API Gateway carries, and so the largest push (PostToConnection answers 413 past
/// it): 128 KB, the WebSocket API quota "message payload size".
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

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
    let expected = "{\"action\":\"...\",\"entityId\":\"...\"}";
    let frame = client_frame(body, is_base64_encoded, expected_action, expected)?;
    validate_entity_id(frame.get("entityId"))
}

/// Parses a `resume` frame, `{"action":"resume","since":N}` (`since` optional), and returns its
/// `since`.
pub fn parse_resume_frame(body: Option<&str>, is_base64_encoded: bool) -> Result<Option<u64>, FrameError> {
    let frame = client_frame(body, is_base64_encoded, "resume", "{\"action\":\"resume\",\"since\":N}")?;
    since_in(&frame)
}

/// The JSON object of a client frame sent on the `expected_action` route; `expected` shows the
/// shape when the frame is empty.
fn client_frame(
    body: Option<&str>,
    is_base64_encoded: bool,
    expected_action: &str,
    expected: &str,
) -> Result<serde_json::Map<String, Value>, FrameError> {
    if is_base64_encoded {
        return refuse("binary frames are not supported; send JSON text");
    }
    let body = match body {
        Some(body) if !body.trim().is_empty() => body,
        _ => return refuse(format!("empty frame; expected {expected}")),
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
    Ok(frame)
}

/// Default detail-type of an entity update (stack file `events.detail_type`).
pub const DEFAULT_ENTITY_DETAIL_TYPE: &str = "Entity Updated";
/// Default detail-type of a user notification (stack file `events.user_detail_type`).
pub const DEFAULT_USER_DETAIL_TYPE: &str = "Send User Push Notification";
/// The `type` of the frame a user notification becomes, whatever the event's detail-type.
pub const USER_PUSH_TYPE: &str = "User Push Notification";

/// The two detail-types the push queue carries, as the stack file names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailTypes {
    pub entity: String,
    pub user: String,
}

impl Default for DetailTypes {
    fn default() -> Self {
        DetailTypes {
            entity: DEFAULT_ENTITY_DETAIL_TYPE.into(),
            user: DEFAULT_USER_DETAIL_TYPE.into(),
        }
    }
}

/// An entity update: goes to the entity's subscribers.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityEvent {
    pub detail_type: String,
    pub entity_id: String,
    pub message: Value,
}

/// A user notification: goes to every open connection of the user.
#[derive(Debug, Clone, PartialEq)]
pub struct UserEvent {
    pub user_id: String,
    pub message: Value,
    pub callback: Option<String>,
}

/// What the push handler delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum PushEvent {
    Entity(EntityEvent),
    User(UserEvent),
}

impl PushEvent {
    /// The entity of an entity update.
    pub fn entity_id(&self) -> Option<&str> {
        match self {
            PushEvent::Entity(event) => Some(&event.entity_id),
            PushEvent::User(_) => None,
        }
    }

    /// The user of a user notification.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            PushEvent::User(event) => Some(&event.user_id),
            PushEvent::Entity(_) => None,
        }
    }
}

impl std::fmt::Display for PushEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushEvent::Entity(event) => write!(f, "entity {:?}", event.entity_id),
            PushEvent::User(event) => write!(f, "user {:?}", event.user_id),
        }
    }
}

/// One queued EventBridge event: one of the stack's two kinds, or a detail-type the push handler
/// has no recipients for (an event another rule put on this queue, a renamed detail-type).
#[derive(Debug, Clone, PartialEq)]
pub enum QueuedEvent {
    /// An event to push, with the envelope's `id` (EventBridge's event id) when it has one.
    Push {
        event: PushEvent,
        id: Option<String>,
    },
    Unknown {
        detail_type: String,
    },
}

/// Parses the EventBridge envelope in an SQS record body, telling the kinds apart by `detail-type`:
/// `{"detail-type": "...", "detail": {"entityId": "...", "message": ...}, ...}` or
/// `{"detail-type": "...", "detail": {"userId": "...", "message": ..., "callback": "..."}, ...}`.
pub fn parse_event(body: Option<&str>, detail_types: &DetailTypes) -> Result<QueuedEvent, FrameError> {
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
    if detail_type != detail_types.entity && detail_type != detail_types.user {
        return Ok(QueuedEvent::Unknown { detail_type });
    }
    let Some(Value::Object(detail)) = envelope.get("detail") else {
        return refuse("envelope has no detail object");
    };
    let id = envelope.get("id").and_then(Value::as_str).map(str::to_string);
    if detail_type == detail_types.user {
        return Ok(QueuedEvent::Push {
            event: PushEvent::User(user_event(detail)?),
            id,
        });
    }
    let entity_id =
        validate_entity_id(detail.get("entityId")).map_err(|error| FrameError(format!("detail.{error}")))?;
    Ok(QueuedEvent::Push {
        event: PushEvent::Entity(EntityEvent {
            detail_type,
            entity_id,
            message: detail_message(detail)?,
        }),
        id,
    })
}

fn detail_message(detail: &serde_json::Map<String, Value>) -> Result<Value, FrameError> {
    match detail.get("message") {
        None | Some(Value::Null) => refuse("detail.message is missing"),
        Some(message) => Ok(message.clone()),
    }
}

fn user_event(detail: &serde_json::Map<String, Value>) -> Result<UserEvent, FrameError> {
    let user_id = match detail.get("userId") {
        None | Some(Value::Null) => return refuse("detail.userId is missing"),
        Some(Value::String(user_id)) => user_id.clone(),
        Some(_) => return refuse("detail.userId must be a string"),
    };
    // The ids the authorizer accepts are the ids a connection can be indexed under.
    if let Some(problem) = crate::auth::identity::user_id_problem(&user_id) {
        return refuse(format!("detail.userId: {problem}"));
    }
    let callback = match detail.get("callback") {
        None | Some(Value::Null) => None,
        Some(Value::String(callback)) => Some(callback.clone()),
        Some(_) => return refuse("detail.callback must be a string"),
    };
    Ok(UserEvent {
        user_id,
        message: detail_message(detail)?,
        callback,
    })
}

/// The frame pushed to subscribers: `{"type":"Entity Updated","entityId":"...","message":"...","seq":7}`
/// (no `seq` on a stack that keeps no history).
#[derive(Debug, Serialize)]
pub struct PushPayload<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    #[serde(rename = "entityId")]
    pub entity_id: &'a str,
    pub message: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// The frame pushed to a user's connections:
/// `{"type":"User Push Notification","message":...,"callback":"...","seq":3}` (no callback when
/// absent, no `seq` on a stack that keeps no history).
#[derive(Debug, Serialize)]
pub struct UserPushPayload<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub message: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// The bytes posted to every recipient of `event`, numbered `seq` in its stream when there is history.
pub fn push_payload(event: &PushEvent, seq: Option<u64>) -> Vec<u8> {
    let serialized = match event {
        PushEvent::Entity(event) => serde_json::to_vec(&PushPayload {
            kind: &event.detail_type,
            entity_id: &event.entity_id,
            message: &event.message,
            seq,
        }),
        PushEvent::User(event) => serde_json::to_vec(&UserPushPayload {
            kind: USER_PUSH_TYPE,
            message: &event.message,
            callback: event.callback.as_deref(),
            seq,
        }),
    };
    serialized.expect("strings and a JSON value always serialize")
}

/// The answer of a successful `subscribe` or `unsubscribe` (`kind` is `subscribed` or
/// `unsubscribed`): `{"type":"subscribed","entityId":"...","seq":7}`, sent once the record is
/// written (and a replay posted); `seq` is the entity's latest, on a stack that keeps history. A
/// `resync` has the same shape: the events after the client's `since` have left the window.
pub fn acknowledgement(kind: &str, entity_id: &str, seq: Option<u64>) -> String {
    #[derive(Serialize)]
    struct Acknowledgement<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(rename = "entityId")]
        entity_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    }
    serde_json::to_string(&Acknowledgement { kind, entity_id, seq }).expect("strings and a number always serialize")
}

/// The answer of `resume` (`kind` is `resumed` or `resync`): `{"type":"resumed","userId":"...","seq":3}`,
/// sent after the replay of the user's missed notifications; `seq` is the user's latest.
pub fn user_acknowledgement(kind: &str, user_id: &str, seq: u64) -> String {
    #[derive(Serialize)]
    struct UserAcknowledgement<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(rename = "userId")]
        user_id: &'a str,
        seq: u64,
    }
    serde_json::to_string(&UserAcknowledgement { kind, user_id, seq }).expect("strings and a number always serialize")
}

/// The `since` of a client frame (`subscribe`, `resume`): absent, or a whole number.
pub fn since_of(body: Option<&str>) -> Result<Option<u64>, FrameError> {
    match body.and_then(|body| serde_json::from_str::<Value>(body).ok()) {
        Some(Value::Object(frame)) => since_in(&frame),
        _ => Ok(None),
    }
}

fn since_in(frame: &serde_json::Map<String, Value>) -> Result<Option<u64>, FrameError> {
    match frame.get("since") {
        None | Some(Value::Null) => Ok(None),
        Some(since) => since
            .as_u64()
            .map(Some)
            .ok_or_else(|| FrameError("since must be a whole number, the last seq the client saw".into())),
    }
}

/// The frame sent to a client whose frame was refused: `{"type":"error","message":"..."}`.
pub fn error_payload(message: &str) -> String {
    serde_json::json!({ "type": "error", "message": message }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acknowledgement_reads_like_the_other_frames_type_first() {
        assert_eq!(
            acknowledgement("subscribed", "order-42", None),
            r#"{"type":"subscribed","entityId":"order-42"}"#
        );
        assert_eq!(
            acknowledgement("resync", "order-42", Some(7)),
            r#"{"type":"resync","entityId":"order-42","seq":7}"#
        );
    }

    #[test]
    fn a_resume_frame_carries_an_optional_since_and_its_answer_reads_type_first() {
        assert_eq!(
            parse_resume_frame(Some(r#"{"action":"resume","since":4}"#), false),
            Ok(Some(4))
        );
        assert_eq!(parse_resume_frame(Some(r#"{"action":"resume"}"#), false), Ok(None));
        for bad in [
            r#"{"action":"resume","since":-1}"#,
            r#"{"action":"resume","since":"4"}"#,
        ] {
            assert!(
                parse_resume_frame(Some(bad), false)
                    .unwrap_err()
                    .0
                    .starts_with("since must be"),
                "{bad}"
            );
        }
        let empty = parse_resume_frame(None, false).unwrap_err();
        assert_eq!(empty.0, r#"empty frame; expected {"action":"resume","since":N}"#);
        assert!(parse_resume_frame(Some(r#"{"action":"subscribe"}"#), false).is_err());
        assert_eq!(
            user_acknowledgement("resumed", "u-1", 3),
            r#"{"type":"resumed","userId":"u-1","seq":3}"#
        );
    }

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
        let QueuedEvent::Push {
            event: PushEvent::Entity(event),
            id,
        } = parse_event(Some(body), &DetailTypes::default()).unwrap()
        else {
            panic!("not an entity update");
        };
        assert_eq!(id.as_deref(), Some("1"));
        assert_eq!(event.detail_type, "Entity Updated");
        assert_eq!(event.entity_id, "e1");
        assert_eq!(event.message, Value::String("hello".into()));
    }

    fn user_body(detail: Value) -> String {
        serde_json::json!({"version":"0","id":"2","detail-type":"Send User Push Notification",
            "source":"app","detail":detail})
        .to_string()
    }

    #[test]
    fn tells_user_notifications_from_entity_updates_by_detail_type() {
        let types = DetailTypes::default();
        let body = user_body(serde_json::json!({"userId":"u-1","message":{"n":1},"callback":"orders/7"}));
        let expected = UserEvent {
            user_id: "u-1".into(),
            message: serde_json::json!({"n":1}),
            callback: Some("orders/7".into()),
        };
        assert_eq!(
            parse_event(Some(&body), &types),
            Ok(QueuedEvent::Push {
                event: PushEvent::User(expected),
                id: Some("2".into())
            })
        );
        // The configured names decide, not the defaults.
        let renamed = DetailTypes {
            entity: "Order Changed".into(),
            user: "Notify".into(),
        };
        assert_eq!(
            parse_event(Some(&body), &renamed),
            Ok(QueuedEvent::Unknown {
                detail_type: "Send User Push Notification".into()
            })
        );
    }

    #[test]
    fn refuses_user_notifications_without_a_usable_user_or_callback() {
        let types = DetailTypes::default();
        for (detail, expected) in [
            (serde_json::json!({"message":"m"}), "detail.userId is missing"),
            (
                serde_json::json!({"userId":7,"message":"m"}),
                "detail.userId must be a string",
            ),
            (
                serde_json::json!({"userId":"","message":"m"}),
                "detail.userId: the user id is empty",
            ),
            (serde_json::json!({"userId":"u"}), "detail.message is missing"),
            (
                serde_json::json!({"userId":"u","message":"m","callback":3}),
                "detail.callback must be a string",
            ),
        ] {
            let error = parse_event(Some(&user_body(detail)), &types).unwrap_err();
            assert_eq!(error.0, expected);
        }
    }

    #[test]
    fn user_payload_leaves_out_an_absent_callback() {
        let event = |callback: Option<&str>| {
            PushEvent::User(UserEvent {
                user_id: "u".into(),
                message: Value::String("hi".into()),
                callback: callback.map(Into::into),
            })
        };
        assert_eq!(
            String::from_utf8(push_payload(&event(None), None)).unwrap(),
            r#"{"type":"User Push Notification","message":"hi"}"#
        );
        assert_eq!(
            String::from_utf8(push_payload(&event(Some("c")), Some(3))).unwrap(),
            r#"{"type":"User Push Notification","message":"hi","callback":"c","seq":3}"#
        );
    }

    #[test]
    fn push_payload_has_the_seed_shape() {
        let message = Value::String("hi".into());
        let payload = PushPayload {
            kind: "Entity Updated",
            entity_id: "e1",
            message: &message,
            seq: None,
        };
        assert_eq!(
            serde_json::to_string(&payload).unwrap(),
            r#"{"type":"Entity Updated","entityId":"e1","message":"hi"}"#
        );
        let numbered = PushPayload {
            seq: Some(12),
            ..payload
        };
        assert_eq!(
            serde_json::to_string(&numbered).unwrap(),
            r#"{"type":"Entity Updated","entityId":"e1","message":"hi","seq":12}"#
        );
    }
}
