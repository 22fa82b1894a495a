//! The user notifications of the AsyncAPI document: the push a user's connections receive, and the
//! EventBridge event a producer sends for it, added to what `document` builds. Pure: no I/O.

use serde_json::{json, Value};

use crate::stack::Stack;
use wsstack_handlers::auth::identity::MAX_USER_ID_CHARS;
use wsstack_handlers::frames::USER_PUSH_TYPE;

use super::{bus_event_message, numbered, reference};

/// Adds the `userNotification` push on the connection channel, the `userNotificationEvent` with its
/// own channel on the bus, and an operation for each.
pub(super) fn extend(document: &mut Value, stack: &Stack) {
    let mut push = push_message();
    if stack.history.window_seconds > 0 {
        numbered(&mut push, 43);
    }
    document["components"]["messages"]["userNotification"] = push;
    document["components"]["messages"]["userNotificationEvent"] = event_message(stack);
    document["channels"]["connection"]["messages"]["userNotification"] =
        reference("components/messages", "userNotification");
    document["channels"]["userNotificationEvents"] = json!({
        "address": stack.events.bus,
        "title": format!("`{}` events on the EventBridge bus", stack.events.user_detail_type),
        "servers": [{"$ref": "#/servers/eventbridge"}],
        "messages": {"userNotificationEvent": reference("components/messages", "userNotificationEvent")},
    });
    document["operations"]["pushUserNotification"] = json!({
        "action": "send",
        "channel": {"$ref": "#/channels/connection"},
        "messages": [reference("channels/connection/messages", "userNotification")],
        "summary": "Push a notification to every open connection of one user (a stack with `auth:` knows who \
                    a connection's user is; without it no connection has one).",
    });
    document["operations"]["receiveUserNotificationEvent"] = json!({
        "action": "receive",
        "channel": {"$ref": "#/channels/userNotificationEvents"},
        "messages": [reference("channels/userNotificationEvents/messages", "userNotificationEvent")],
        "summary": "Producers put these events on the bus (PutEvents); each reaches every open connection of its user.",
    });
    document["components"]["schemas"]["userId"] = json!({
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_USER_ID_CHARS,
        "description": "A user's id: the token's user claim (`sub` unless `auth.user_claim` says otherwise).",
        "examples": ["user-42"],
    });
}

fn push_message() -> Value {
    json!({
        "name": "userNotification",
        "title": USER_PUSH_TYPE,
        "summary": "Sent to every open connection of the user the event names.",
        "payload": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {
                "type": {"const": USER_PUSH_TYPE},
                "message": {"description": "The event's `detail.message`, as the producer sent it (any JSON value)."},
                "callback": {"type": "string", "description": "The event's `detail.callback`; absent when the event has none."},
            },
        },
        "examples": [{"payload": {"type": USER_PUSH_TYPE, "message": "Your order shipped", "callback": "orders/42"}}],
    })
}

/// The EventBridge event a producer puts on the bus for one user, as PutEvents takes it.
fn event_message(stack: &Stack) -> Value {
    let detail = json!({
        "type": "object",
        "required": ["userId", "message"],
        "properties": {
            "userId": {"$ref": "#/components/schemas/userId"},
            "message": {"description": "Pushed to the user's connections as it is (any JSON value but null)."},
            "callback": {"type": "string", "description": "Passed on to the clients as it is."},
        },
    });
    let example = json!({"userId": "user-42", "message": "Your order shipped", "callback": "orders/42"});
    bus_event_message(
        stack,
        "userNotificationEvent",
        &stack.events.user_detail_type,
        detail,
        &example,
    )
}

#[cfg(test)]
mod tests {
    use super::super::{document, Address};

    #[test]
    fn user_notifications_follow_the_stack_file() {
        let stack = crate::stack::parse(
            std::path::Path::new("stack.yaml"),
            "name: demo\nevents:\n  bus: orders-bus\n  user_detail_type: Notify Customer\n  source: orders\n",
        )
        .unwrap();
        let address = Address::Template {
            dns_suffix: "amazonaws.com".into(),
        };
        let doc = document(&stack, Some("eu-west-1"), &address);
        let event = &doc["components"]["messages"]["userNotificationEvent"]["payload"]["properties"];
        assert_eq!(event["DetailType"]["const"], "Notify Customer");
        assert_eq!(event["Source"]["const"], "orders");
        assert_eq!(
            event["Detail"]["contentSchema"]["required"],
            serde_json::json!(["userId", "message"])
        );
        assert_eq!(doc["channels"]["userNotificationEvents"]["address"], "orders-bus");
        let push = &doc["components"]["messages"]["userNotification"]["payload"]["properties"];
        assert_eq!(push["type"]["const"], "User Push Notification");
        assert_eq!(
            doc["operations"]["pushUserNotification"]["messages"][0]["$ref"],
            "#/channels/connection/messages/userNotification"
        );
    }
}
