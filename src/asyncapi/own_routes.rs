//! The AsyncAPI description of the routes served by the team's own code: the frames the stack
//! file's `schema` describes (else any object with the route's action), and `$default`. Pure.

use serde_json::{json, Value};

use super::identifier;
use crate::stack::{OwnRoute, DEFAULT_ROUTE};

/// A two-way own route's reply: the body its function returns, whatever it is.
pub(super) fn own_route_reply(own: &OwnRoute) -> (String, Value) {
    let id = if own.name == DEFAULT_ROUTE {
        "defaultRouteReply".to_string()
    } else {
        format!("{}Reply", identifier(&own.name))
    };
    let message = json!({
        "name": format!("{} reply", own.name),
        "title": format!("{} reply", own.name),
        "summary": "The body the route's function returns, sent back to the client: the route is two-way (`replies: true`).",
    });
    (id, message)
}

/// An own route's identifier, frame message and summary: its frames are what the stack file's
/// `schema` says (with the route's action), else any object with that action; `$default` takes
/// every frame no other route does.
pub(super) fn own_route_description(own: &OwnRoute) -> (String, Value, String) {
    let catch_all = own.name == DEFAULT_ROUTE;
    let selection = json!({
        "type": "object",
        "required": ["action"],
        "properties": {"action": {"const": own.name}},
    });
    let payload = match (&own.schema, catch_all) {
        (Some(schema), false) => json!({"allOf": [selection, schema]}),
        (Some(schema), true) => schema.clone(),
        (None, false) => selection,
        (None, true) => json!({"type": "object"}),
    };
    let (id, title, summary, example) = if catch_all {
        (
            "defaultRoute".to_string(),
            "Any other frame".to_string(),
            "Every frame whose `action` names no other route (or that has none) reaches the `$default` route's own code."
                .to_string(),
            json!({"action": "anythingElse"}),
        )
    } else {
        (
            identifier(&own.name),
            format!("{} frame", own.name),
            format!("The `{}` route, served by the stack's own code.", own.name),
            json!({"action": own.name}),
        )
    };
    let mut message = json!({"name": own.name, "title": title, "payload": payload});
    if own.schema.is_none() {
        message["examples"] = json!([{"payload": example}]);
    }
    (id, message, summary)
}
