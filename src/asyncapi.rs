//! The stack's contract as an AsyncAPI 3.0 document, generated from the stack file alone: the
//! WebSocket server and the frames clients send on each route, the pushes the server sends back,
//! and the EventBridge events producers put on the bus. Pure: no AWS call and no I/O here; the
//! command decides where the server's address comes from.

mod own_routes;
mod security;
mod user_notifications;

use serde_json::{json, Map, Value};
use wsstack_handlers::frames::{MAX_ENTITY_ID_CHARS, MAX_FRAME_BYTES};

use crate::plan::{event_source, route_key};
use crate::stack::Stack;
use own_routes::{own_route_description, own_route_reply};

/// Where clients connect. Without a known address the document keeps AWS's URL template, with the
/// API id as a server variable, so it is valid before the first `up`.
#[derive(Debug, Clone, PartialEq)]
pub enum Address {
    /// `{apiId}.execute-api.{region}.{dns suffix}` with the stage as path.
    Template { dns_suffix: String },
    /// A known host (the deployed API's, a custom domain, or `wsstack dev`'s gateway), and whether
    /// it speaks TLS (`wss`) or not (`ws`, only for a local gateway).
    Host { host: String, pathname: String, tls: bool },
}

/// The AsyncAPI 3.0 document of `stack`, for a stack in `region` (a server variable when unknown).
pub fn document(stack: &Stack, region: Option<&str>, address: &Address) -> Value {
    let history = stack.history.window_seconds > 0;
    let mut channel_messages = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    for route in &stack.routes {
        let (id, message, summary) = match route.own() {
            Some(own) => own_route_description(own),
            None => (
                identifier(route.name()),
                route_message(route.name(), history),
                route_summary(route.name()),
            ),
        };
        let replies: Vec<(String, Value)> = match route.own() {
            Some(own) => own.replies.then(|| own_route_reply(own)).into_iter().collect(),
            None => acknowledgement_messages(route.name(), history),
        };
        let bundled = route.own().is_none();
        let route = route.name();
        messages.insert(id.clone(), message);
        channel_messages.insert(id.clone(), reference("components/messages", &id));
        let mut operation = json!({
            "action": "receive",
            "channel": {"$ref": "#/channels/connection"},
            "messages": [reference("channels/connection/messages", &id)],
            "summary": summary,
            "x-wsstack-route-key": route_key(route),
        });
        // A two-way route: what its route response sends back on the same connection (the
        // bundled routes: their acknowledgements, or the error frame of a refusal).
        if !replies.is_empty() || bundled {
            let mut references = Vec::new();
            for (reply_id, reply) in replies {
                messages.insert(reply_id.clone(), reply);
                channel_messages.insert(reply_id.clone(), reference("components/messages", &reply_id));
                references.push(reference("channels/connection/messages", &reply_id));
            }
            if bundled {
                references.push(reference("channels/connection/messages", "error"));
            }
            operation["reply"] = json!({
                "channel": {"$ref": "#/channels/connection"},
                "messages": references,
            });
        }
        operations.insert(id.clone(), operation);
    }
    for (id, message) in [
        ("entityUpdated", entity_update_message(stack, history)),
        ("error", error_message()),
    ] {
        messages.insert(id.into(), message);
        channel_messages.insert(id.into(), reference("components/messages", id));
    }
    operations.insert(
        "pushEntityUpdate".into(),
        json!({
            "action": "send",
            "channel": {"$ref": "#/channels/connection"},
            "messages": [reference("channels/connection/messages", "entityUpdated")],
            "summary": "Push an entity update to every connection subscribed to that entity.",
        }),
    );
    operations.insert(
        "sendError".into(),
        json!({
            "action": "send",
            "channel": {"$ref": "#/channels/connection"},
            "messages": [reference("channels/connection/messages", "error")],
            "summary": "Answer a refused client frame; the connection stays open.",
        }),
    );
    messages.insert("entityUpdatedEvent".into(), entity_event_message(stack));
    operations.insert(
        "receiveEntityUpdatedEvent".into(),
        json!({
            "action": "receive",
            "channel": {"$ref": "#/channels/entityUpdatedEvents"},
            "messages": [reference("channels/entityUpdatedEvents/messages", "entityUpdatedEvent")],
            "summary": "Producers put these events on the bus (PutEvents); each reaches the subscribers of its entity.",
        }),
    );

    let mut document = json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": format!("{} ({})", stack.name, stack.stage),
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "WebSocket notifications per entity, provisioned by wsstack from the stack `{}`, stage `{}`. \
                 Clients connect, subscribe to entities and receive a push whenever a producer puts an \
                 `{}` event for one of them on the EventBridge bus `{}`.",
                stack.name, stack.stage, stack.events.detail_type, stack.events.bus
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "websocket": websocket_server(stack, region, address),
            "eventbridge": {
                "host": format!("events.{{region}}.{}", dns_suffix(address)),
                "protocol": "https",
                "description": format!(
                    "Amazon EventBridge, bus `{}`: producers send events with PutEvents (`wsstack send-event` does).",
                    stack.events.bus
                ),
                "variables": {"region": region_variable(region)},
            },
        },
        "channels": {
            "connection": {
                "address": "/",
                "title": "A client's WebSocket connection",
                "description": format!(
                    "One connection per client. Frames are JSON text; API Gateway routes them on their \
                     `action` field. A frame is at most {} KB, a message at most 128 KB.",
                    MAX_FRAME_BYTES / 1024
                ),
                "servers": [{"$ref": "#/servers/websocket"}],
                "messages": channel_messages,
            },
            "entityUpdatedEvents": {
                "address": stack.events.bus,
                "title": format!("`{}` events on the EventBridge bus", stack.events.detail_type),
                "servers": [{"$ref": "#/servers/eventbridge"}],
                "messages": {"entityUpdatedEvent": reference("components/messages", "entityUpdatedEvent")},
            },
        },
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": {"entityId": entity_id_schema(), "seq": seq_schema()},
        },
    });
    user_notifications::extend(&mut document, stack);
    security::extend(&mut document, stack);
    document
}

fn dns_suffix(address: &Address) -> String {
    match address {
        Address::Template { dns_suffix } => dns_suffix.clone(),
        // A known host names its own suffix; EventBridge's is AWS's public one unless the host
        // says otherwise (a custom domain says nothing about the partition).
        Address::Host { .. } => "amazonaws.com".into(),
    }
}

fn region_variable(region: Option<&str>) -> Value {
    let mut variable = json!({"description": "The stack's AWS region."});
    if let Some(region) = region {
        variable["default"] = json!(region);
    }
    variable
}

fn websocket_server(stack: &Stack, region: Option<&str>, address: &Address) -> Value {
    match address {
        Address::Template { dns_suffix } => json!({
            "host": format!("{{apiId}}.execute-api.{{region}}.{dns_suffix}"),
            "pathname": format!("/{}", stack.stage),
            "protocol": "wss",
            "description": "The stack's WebSocket API stage (API Gateway).",
            "variables": {
                "apiId": {"description": "The id of the stack's WebSocket API: `wsstack status` shows it after `wsstack up`."},
                "region": region_variable(region),
            },
        }),
        Address::Host { host, pathname, tls } => json!({
            "host": host,
            "pathname": pathname,
            "protocol": if *tls { "wss" } else { "ws" },
            "description": "The stack's WebSocket API stage.",
        }),
    }
}

/// A key fit for the document's maps: route keys may start with `$`.
fn identifier(route: &str) -> String {
    let id: String = route
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    id.trim_start_matches('_').to_string()
}

/// `#/{path}/{id}`.
fn reference(path: &str, id: &str) -> Value {
    json!({"$ref": format!("#/{path}/{id}")})
}

fn route_summary(route: &str) -> String {
    match route {
        "subscribe" => "Subscribe this connection to an entity's updates.".into(),
        "unsubscribe" => "Stop this connection's updates for an entity.".into(),
        "resume" => "Replay the notifications this connection's user missed, then acknowledge.".into(),
        other => format!("The `{other}` route."),
    }
}

fn entity_id_schema() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ENTITY_ID_CHARS,
        "description": "An entity's id: printable characters, no leading or trailing white space.",
        "examples": ["myTestEntityId"],
    })
}

/// A stream's number: every push of a stack with history carries the next `seq` of its stream
/// (an entity's events, a user's notifications).
fn seq_schema() -> Value {
    json!({
        "type": "integer",
        "minimum": 0,
        "description": "A position in a stream (an entity's events, a user's notifications): each push of \
                        the stream carries the next number; 0 before its first.",
    })
}

/// The `since` of `subscribe` and `resume` frames.
fn since_schema(what: &str) -> Value {
    json!({
        "type": "integer",
        "minimum": 0,
        "description": format!(
            "The last `seq` the client saw of {what}: what came after it is posted, in order, before the \
             answer. Absent: nothing is replayed."
        ),
    })
}

/// The frame a client sends on `route`; `history`: the stack keeps history (`since`, `seq`).
fn route_message(route: &str, history: bool) -> Value {
    let payload = match route {
        "subscribe" | "unsubscribe" => {
            let mut payload = json!({
                "type": "object",
                "required": ["action", "entityId"],
                "properties": {
                    "action": {"const": route},
                    "entityId": {"$ref": "#/components/schemas/entityId"},
                },
            });
            if route == "subscribe" && history {
                payload["properties"]["since"] = since_schema("the entity");
            }
            payload
        }
        "resume" => json!({
            "type": "object",
            "required": ["action"],
            "properties": {
                "action": {"const": route},
                "since": since_schema("its user's notifications"),
            },
            "description": "Only on a signed-in connection (the token's user) of a stack with history; \
                            otherwise the answer is an error frame.",
        }),
        // A route whose frames the stack file does not describe: any object with its action.
        other => json!({
            "type": "object",
            "required": ["action"],
            "properties": {"action": {"const": other}},
        }),
    };
    json!({
        "name": route,
        "title": format!("{route} frame"),
        "payload": payload,
        "examples": [{"payload": example_frame(route)}],
    })
}

fn example_frame(route: &str) -> Value {
    match route {
        "subscribe" | "unsubscribe" => json!({"action": route, "entityId": "myTestEntityId"}),
        "resume" => json!({"action": route, "since": 41}),
        other => json!({"action": other}),
    }
}

fn entity_update_message(stack: &Stack, history: bool) -> Value {
    let kind = &stack.events.detail_type;
    let mut message = json!({
        "name": "entityUpdated",
        "title": kind,
        "summary": "Sent to every connection subscribed to the entity.",
        "payload": {
            "type": "object",
            "required": ["type", "entityId", "message"],
            "properties": {
                "type": {"const": kind},
                "entityId": {"$ref": "#/components/schemas/entityId"},
                "message": {"description": "The event's `detail.message`, as the producer sent it (any JSON value)."},
            },
        },
        "examples": [{"payload": {"type": kind, "entityId": "myTestEntityId", "message": "Hello world"}}],
    });
    if history {
        numbered(&mut message, 42);
    }
    message
}

/// Adds the required `seq` to a message's payload and `example` to its example.
fn numbered(message: &mut Value, example: u64) {
    message["payload"]["properties"]["seq"] = json!({"$ref": "#/components/schemas/seq"});
    if let Some(required) = message["payload"]["required"].as_array_mut() {
        required.push(json!("seq"));
    }
    message["examples"][0]["payload"]["seq"] = json!(example);
}

/// The acknowledgements a bundled route answers with: `subscribed` (or, with history, `resync`) /
/// `unsubscribed` / `resumed` or `resync` (with history; without, `resume` only refuses).
fn acknowledgement_messages(route: &str, history: bool) -> Vec<(String, Value)> {
    let entity = |id: &str, kind: &str, title: String, summary: &str, seq: bool| {
        let mut message = json!({
            "name": kind,
            "title": title,
            "summary": summary,
            "payload": {
                "type": "object",
                "required": ["type", "entityId"],
                "properties": {
                    "type": {"const": kind},
                    "entityId": {"$ref": "#/components/schemas/entityId"},
                },
            },
            "examples": [{"payload": {"type": kind, "entityId": "myTestEntityId"}}],
        });
        if seq {
            numbered(&mut message, 42);
        }
        (id.to_string(), message)
    };
    let user = |id: &str, kind: &str, title: &str, summary: &str| {
        let message = json!({
            "name": kind,
            "title": title,
            "summary": summary,
            "payload": {
                "type": "object",
                "required": ["type", "userId", "seq"],
                "properties": {
                    "type": {"const": kind},
                    "userId": {"$ref": "#/components/schemas/userId"},
                    "seq": {"$ref": "#/components/schemas/seq"},
                },
            },
            "examples": [{"payload": {"type": kind, "userId": "user-42", "seq": 43}}],
        });
        (id.to_string(), message)
    };
    match route {
        "subscribe" => {
            let mut replies = vec![entity(
                "subscribed",
                "subscribed",
                "subscribe acknowledged".into(),
                "The subscription is stored (and what came after `since` posted): every event for the entity \
                 put on the bus from now on reaches this connection. `seq` is the entity's latest.",
                history,
            )];
            if history {
                replies.push(entity(
                    "resync",
                    "resync",
                    "subscribe: refetch the entity".into(),
                    "The subscription is stored, but what came after `since` is no longer kept (or more than a \
                     replay carries): refetch the entity's state; `seq` is its latest.",
                    true,
                ));
            }
            replies
        }
        "unsubscribe" => vec![entity(
            "unsubscribed",
            "unsubscribed",
            "unsubscribe acknowledged".into(),
            "The subscription is gone (or never was).",
            false,
        )],
        "resume" if history => vec![
            user(
                "resumed",
                "resumed",
                "resume acknowledged",
                "The user's notifications after `since` were posted, in order, before this answer; `seq` is \
                 the user's latest.",
            ),
            user(
                "userResync",
                "resync",
                "resume: refetch the user's notifications",
                "What came after `since` is no longer kept (or more than a replay carries): refetch; `seq` is \
                 the user's latest.",
            ),
        ],
        _ => Vec::new(),
    }
}

fn error_message() -> Value {
    json!({
        "name": "error",
        "title": "Refused frame",
        "summary": "Why a client frame was refused (bad JSON, a missing or invalid entityId, ...).",
        "payload": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {
                "type": {"const": "error"},
                "message": {"type": "string"},
            },
        },
        "examples": [{"payload": {"type": "error", "message": "entityId is missing"}}],
    })
}

/// The EventBridge event a producer puts on the bus, as PutEvents takes it.
fn entity_event_message(stack: &Stack) -> Value {
    let detail = json!({
        "type": "object",
        "required": ["entityId", "message"],
        "properties": {
            "entityId": {"$ref": "#/components/schemas/entityId"},
            "message": {"description": "Pushed to subscribers as it is (any JSON value but null)."},
        },
    });
    let example = json!({"entityId": "myTestEntityId", "message": "Hello world"});
    bus_event_message(stack, "entityUpdatedEvent", &stack.events.detail_type, detail, &example)
}

/// A PutEvents entry of detail-type `kind` on the stack's bus whose detail is `detail`.
fn bus_event_message(stack: &Stack, name: &str, kind: &str, detail: Value, example: &Value) -> Value {
    let source = event_source(stack);
    let source_schema = json!({
        "const": source,
        "description": "The source that addresses this stack and stage: the rule takes no other.",
    });
    json!({
        "name": name,
        "title": format!("{kind} event"),
        "summary": format!(
            "An EventBridge event on the bus `{}` that the stack's rule sends to the push queue.",
            stack.events.bus
        ),
        "payload": {
            "type": "object",
            "required": ["Source", "DetailType", "Detail"],
            "properties": {
                "Source": source_schema,
                "DetailType": {"const": kind},
                "EventBusName": {"const": stack.events.bus},
                "Detail": {
                    "description": "A JSON string (PutEvents takes the detail as text) of this object.",
                    "contentMediaType": "application/json",
                    "contentSchema": detail,
                },
            },
        },
        "examples": [{"payload": {
            "Source": source,
            "DetailType": kind,
            "EventBusName": stack.events.bus,
            "Detail": example.to_string(),
        }}],
    })
}

#[cfg(test)]
mod tests;
