//! What the local gateway says to and hears from Lambda, in API Gateway's WebSocket formats: the
//! `$connect`, `$disconnect` and MESSAGE proxy events, route selection on `$request.body.action`,
//! and the reading of an integration's answer. Pure functions over plain values: no I/O, no clock
//! or randomness except through `Request::fresh`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// The stage events come through.
#[derive(Debug, Clone)]
pub struct Stage {
    pub api_id: String,
    pub stage: String,
    /// `host:port` of the gateway, API Gateway's `domainName`.
    pub domain: String,
}

/// The client end of a connection, as its events describe it.
#[derive(Debug, Clone)]
pub struct Client {
    pub connection_id: String,
    pub connected_at: SystemTime,
    pub source_ip: String,
    pub user_agent: Option<String>,
    /// What the `$connect` authorizer said of the connection (`principalId` and its `context`),
    /// `requestContext.authorizer` of every event of the connection; none without an authorizer.
    pub authorizer: Option<Map<String, Value>>,
}

/// What differs on every request: its ids and time.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: String,
    pub message_id: String,
    pub at: SystemTime,
}

impl Request {
    pub fn fresh() -> Request {
        Request {
            id: uuid::Uuid::new_v4().to_string(),
            message_id: uuid::Uuid::new_v4().simple().to_string()[..16].to_string(),
            at: SystemTime::now(),
        }
    }
}

fn epoch_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn request_time(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time)
        .format("%d/%b/%Y:%H:%M:%S %z")
        .to_string()
}

/// ISO 8601 with milliseconds, as the management API's GET answers.
pub fn iso(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn request_context(
    stage: &Stage,
    client: &Client,
    route_key: &str,
    event_type: &str,
    identity: Value,
    request: &Request,
) -> Value {
    let mut context = json!({
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request.id,
        "requestTime": request_time(request.at),
        "messageDirection": "IN",
        "stage": stage.stage,
        "connectedAt": epoch_ms(client.connected_at),
        "requestTimeEpoch": epoch_ms(request.at),
        "identity": identity,
        "requestId": request.id,
        "domainName": stage.domain,
        "connectionId": client.connection_id,
        "apiId": stage.api_id,
    });
    if event_type == "MESSAGE" {
        context["messageId"] = json!(request.message_id);
    }
    if let Some(authorizer) = &client.authorizer {
        context["authorizer"] = Value::Object(authorizer.clone());
    }
    context
}

fn full_identity(client: &Client) -> Value {
    json!({"sourceIp": client.source_ip, "userAgent": client.user_agent})
}

/// The `$connect` event for an upgrade request with these headers (names as hyper gives them,
/// lower case) and query string.
pub fn connect_event<'a>(
    stage: &Stage,
    client: &Client,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    query: Option<&str>,
    request: &Request,
) -> Value {
    let mut single = Map::new();
    let mut multi = Map::new();
    for (name, value) in headers {
        add(&mut single, &mut multi, canonical_header(name), value.to_string());
    }
    let mut event = json!({
        "headers": single,
        "multiValueHeaders": multi,
        "requestContext": request_context(stage, client, "$connect", "CONNECT", full_identity(client), request),
        "isBase64Encoded": false,
    });
    let (query, multi_query) = query_parameters(query);
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
        event["multiValueQueryStringParameters"] = Value::Object(multi_query);
    }
    event
}

/// Where the `$connect` authorizer is asked about: `methodArn` is
/// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/$connect`.
#[derive(Debug, Clone)]
pub struct AuthorizerTarget {
    pub region: String,
    pub account: String,
}

impl AuthorizerTarget {
    pub fn method_arn(&self, stage: &Stage) -> String {
        format!(
            "arn:aws:execute-api:{}:{}:{}/{}/$connect",
            self.region, self.account, stage.api_id, stage.stage
        )
    }
}

/// The REQUEST authorizer event of a WebSocket `$connect`: the `$connect` event's headers, query
/// and context, with `type`, `methodArn` and `stageVariables`, shaped like AWS's documented example.
pub fn authorizer_event<'a>(
    stage: &Stage,
    target: &AuthorizerTarget,
    client: &Client,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    query: Option<&str>,
    request: &Request,
) -> Value {
    let mut event = connect_event(stage, client, headers, query, request);
    let object = event.as_object_mut().expect("an object");
    object.remove("isBase64Encoded");
    object.insert("type".into(), json!("REQUEST"));
    object.insert("methodArn".into(), json!(target.method_arn(stage)));
    object.entry("queryStringParameters").or_insert_with(|| json!({}));
    object
        .entry("multiValueQueryStringParameters")
        .or_insert_with(|| json!({}));
    object.insert("stageVariables".into(), json!({}));
    event
}

/// What an authorizer's answer decides.
#[derive(Debug, Clone, PartialEq)]
pub enum Authorization {
    /// Go on; `requestContext.authorizer` of the connection's events.
    Allow(Map<String, Value>),
    /// Refuse the handshake with this HTTP status (403 for a Deny, 500 for a bad answer).
    Refuse(u16),
}

/// Read an authorizer's answer for `method_arn` as API Gateway does: a `principalId` and a policy
/// whose statements allow `execute-api:Invoke` on the ARN (wildcards allowed) and deny nothing of
/// it, else 403; a missing principal or policy, or a `context` value that is not a string, number
/// or boolean, is a bad answer (500). Context values reach the routes as strings, next to
/// `principalId` and `integrationLatency` (milliseconds the authorizer took).
pub fn authorization(answer: &[u8], method_arn: &str, latency_ms: u64) -> Authorization {
    let Ok(answer) = serde_json::from_slice::<Value>(answer) else {
        return Authorization::Refuse(500);
    };
    let Some(principal) = answer.get("principalId").and_then(Value::as_str) else {
        return Authorization::Refuse(500);
    };
    let Some(statements) = answer
        .get("policyDocument")
        .and_then(|policy| policy.get("Statement"))
        .and_then(Value::as_array)
    else {
        return Authorization::Refuse(500);
    };
    let mut allowed = false;
    for statement in statements {
        let applies =
            matches_any(&statement["Action"], "execute-api:Invoke") && matches_any(&statement["Resource"], method_arn);
        match statement["Effect"].as_str() {
            Some("Deny") if applies => return Authorization::Refuse(403),
            Some("Allow") if applies => allowed = true,
            Some("Allow" | "Deny") => {}
            _ => return Authorization::Refuse(500),
        }
    }
    if !allowed {
        return Authorization::Refuse(403);
    }
    let mut authorizer = Map::new();
    if let Some(context) = answer.get("context").filter(|c| !c.is_null()) {
        let Some(context) = context.as_object() else {
            return Authorization::Refuse(500);
        };
        for (key, value) in context {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Number(_) | Value::Bool(_) => value.to_string(),
                _ => return Authorization::Refuse(500),
            };
            authorizer.insert(key.clone(), json!(text));
        }
    }
    authorizer.insert("principalId".into(), json!(principal));
    authorizer.insert("integrationLatency".into(), json!(latency_ms));
    Authorization::Allow(authorizer)
}

/// A policy's `Action` or `Resource`: one pattern or a list of them.
fn matches_any(patterns: &Value, text: &str) -> bool {
    match patterns {
        Value::String(pattern) => glob(pattern, text),
        Value::Array(patterns) => patterns.iter().any(|p| p.as_str().is_some_and(|p| glob(p, text))),
        _ => false,
    }
}

/// IAM's wildcards: `*` any run of characters, `?` any one.
fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// The event of a client's message on `route_key`.
pub fn message_event(stage: &Stage, client: &Client, route_key: &str, body: &str, request: &Request) -> Value {
    json!({
        "requestContext": request_context(stage, client, route_key, "MESSAGE", full_identity(client), request),
        "body": body,
        "isBase64Encoded": false,
    })
}

/// The `$disconnect` event: how the connection ended (`disconnectStatusCode` is the close code,
/// 1006 when the connection was lost).
pub fn disconnect_event(stage: &Stage, client: &Client, status: u16, reason: &str, request: &Request) -> Value {
    let identity = json!({"sourceIp": client.source_ip});
    let mut context = request_context(stage, client, "$disconnect", "DISCONNECT", identity, request);
    context["disconnectStatusCode"] = json!(status);
    context["disconnectReason"] = json!(reason);
    json!({
        "headers": {"Host": stage.domain, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""},
        "multiValueHeaders": {},
        "requestContext": context,
        "isBase64Encoded": false,
    })
}

/// The route API Gateway picks for a message on `$request.body.action`: the action's route, else
/// `$default`, else none (the client gets the `Forbidden` error frame).
pub fn select_route(body: &str, has_route: impl Fn(&str) -> bool) -> Option<String> {
    let action = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(String::from));
    match action {
        Some(action) if !action.starts_with('$') && has_route(&action) => Some(action),
        _ if has_route("$default") => Some("$default".to_string()),
        _ => None,
    }
}

/// An error frame API Gateway sends a client about one of its messages:
/// `{"message": ..., "connectionId": ..., "requestId": ...}`.
pub fn error_frame(message: &str, connection_id: &str, request: &Request) -> String {
    json!({"message": message, "connectionId": connection_id, "requestId": request.id}).to_string()
}

/// The error frame API Gateway sends when a route's integration fails.
pub fn internal_error_frame(connection_id: &str, request: &Request) -> String {
    error_frame("Internal server error", connection_id, request)
}

/// The `message` of the error frame API Gateway sends for a message no route takes.
pub const FORBIDDEN: &str = "Forbidden";

/// The frame a route's integration answer sends back to the client: its non-empty `body`.
pub fn reply_frame(answer: &[u8]) -> Option<String> {
    let answer: Value = serde_json::from_slice(answer).ok()?;
    answer
        .get("body")
        .and_then(|b| b.as_str())
        .filter(|b| !b.is_empty())
        .map(String::from)
}

/// What a `$connect` integration's answer decides.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectVerdict {
    /// Upgrade, adding these headers (the chosen `Sec-WebSocket-Protocol`) to the 101 answer.
    Accept { headers: Vec<(String, String)> },
    /// Refuse the handshake with this HTTP status.
    Refuse(u16),
}

/// Read a `$connect` answer: a 2xx `statusCode` (or none at all) accepts; any other status refuses
/// with that status; a `statusCode` that is no HTTP status (negative, fractional, a string, out of
/// 100..=599) is a malformed integration response, refused with 502 as API Gateway does. 1xx
/// cannot end a handshake and counts as malformed.
pub fn connect_verdict(answer: &[u8]) -> ConnectVerdict {
    let answer: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
    match answer.get("statusCode") {
        None | Some(Value::Null) => {}
        Some(status) => match status.as_u64() {
            Some(200..=299) => {}
            Some(status @ 300..=599) => return ConnectVerdict::Refuse(status as u16),
            _ => return ConnectVerdict::Refuse(502),
        },
    }
    let headers = answer["headers"]
        .as_object()
        .map(|map| {
            map.iter()
                .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    ConnectVerdict::Accept { headers }
}

fn add(single: &mut Map<String, Value>, multi: &mut Map<String, Value>, name: String, value: String) {
    single.insert(name.clone(), json!(value));
    if let Some(values) = multi.entry(name).or_insert_with(|| json!([])).as_array_mut() {
        values.push(json!(value));
    }
}

/// `sec-websocket-protocol` -> `Sec-WebSocket-Protocol`, as browsers send it: API Gateway presents
/// header names as the client sent them, hyper lowercases them.
fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|part| match part {
            "websocket" => "WebSocket".to_string(),
            _ => {
                let mut chars = part.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                    None => String::new(),
                }
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn query_parameters(query: Option<&str>) -> (Map<String, Value>, Map<String, Value>) {
    let decode = |text: &str| {
        urlencoding::decode(text)
            .map(|t| t.into_owned())
            .unwrap_or_else(|_| text.to_string())
    };
    let mut single = Map::new();
    let mut multi = Map::new();
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        add(&mut single, &mut multi, decode(key), decode(value));
    }
    (single, multi)
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
