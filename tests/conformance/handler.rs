//! The conformance suite's Lambda function: one `bootstrap` (std only, the Runtime API over
//! HTTP/1.1) that `wsstack dev` runs for every function of the stack: `$connect`, `$disconnect`,
//! the routes and the `$connect` authorizer. It is compiled by the test with `rustc`, the file it
//! records into given at compile time (`CONFORMANCE_RECORD`).
//!
//! Every event it gets is appended, one JSON line, to that file before anything else, so that a
//! test reads exactly what API Gateway (here: dev) handed the function. What it then does is chosen
//! by a marker anywhere in the event (a frame's body, a `$connect` query string):
//!
//! - `conformance-exit`: the process exits without answering;
//! - `conformance-throw`: an invocation error (`/error`), as a throwing handler gives;
//! - `conformance-unauthorized`: the error `Unauthorized` (an authorizer's 401);
//! - `conformance-deny`: an authorizer answers a Deny policy;
//! - `conformance-nocontext`: an authorizer allows without a `context`;
//! - `conformance-status-NNN`: the answer `{"statusCode": NNN}`;
//! - `conformance-echo`: the event is posted back to its connection through the management API;
//! - `conformance-body`: the answer carries the body `{"reply":"conformance"}` (which a two-way
//!   route sends back to the client);
//!
//! else an authorizer allows (with a context of a string, a number and a boolean) and everything
//! else answers `{"statusCode": 200}`. No other answer carries a body: what reaches the client is
//! what the test asked for through the management API.

use std::io::Write;

const RECORD: &str = env!("CONFORMANCE_RECORD");

include!("../lambda/http.rs");


/// The text of the first JSON string field `field` (its escapes kept; ids and ARNs have none).
fn string_field<'a>(event: &'a str, field: &str) -> Option<&'a str> {
    let start = event.find(&format!("\"{field}\":\""))? + field.len() + 4;
    let end = event[start..].find('"')?;
    Some(&event[start..start + end])
}

/// The status of a `conformance-status-NNN` marker.
fn asked_status(event: &str) -> Option<u16> {
    let at = event.find("conformance-status-")? + "conformance-status-".len();
    event.get(at..at + 3)?.parse().ok()
}

fn record(event: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(RECORD)
        .expect("open the record");
    // One write per line: instances append to the same file at once.
    file.write_all(format!("{event}\n").as_bytes())
        .expect("record the event");
}

fn policy(effect: &str, method_arn: &str, with_context: bool) -> String {
    let context = if with_context {
        ",\"context\":{\"team\":\"blue\",\"level\":7,\"admin\":true}"
    } else {
        ""
    };
    format!(
        "{{\"principalId\":\"conformance-user\",\"policyDocument\":{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Action\":\"execute-api:Invoke\",\"Effect\":\"{effect}\",\"Resource\":\"{method_arn}\"}}]}}{context}}}"
    )
}

fn main() {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").unwrap();
    let callback = std::env::var("CALLBACK_URL").unwrap();
    let (host, stage) = callback.trim_start_matches("http://").split_once('/').unwrap();
    loop {
        let (headers, event) = call(&api, "GET", "/2018-06-01/runtime/invocation/next", b"");
        let id = headers
            .iter()
            .find(|(name, _)| name == "lambda-runtime-aws-request-id")
            .unwrap()
            .1
            .clone();
        let event = String::from_utf8(event).unwrap();
        record(&event);
        let respond = |answer: &str| {
            call(
                &api,
                "POST",
                &format!("/2018-06-01/runtime/invocation/{id}/response"),
                answer.as_bytes(),
            );
        };
        let fail = |message: &str| {
            let error = format!("{{\"errorMessage\":\"{message}\",\"errorType\":\"Conformance\"}}");
            call(
                &api,
                "POST",
                &format!("/2018-06-01/runtime/invocation/{id}/error"),
                error.as_bytes(),
            );
        };
        if event.contains("conformance-exit") {
            std::process::exit(3);
        } else if event.contains("conformance-throw") {
            fail("thrown on purpose");
        } else if event.contains("conformance-unauthorized") {
            fail("Unauthorized");
        } else if let Some(method_arn) = string_field(&event, "methodArn") {
            let effect = if event.contains("conformance-deny") {
                "Deny"
            } else {
                "Allow"
            };
            respond(&policy(effect, method_arn, !event.contains("conformance-nocontext")));
        } else if let Some(status) = asked_status(&event) {
            respond(&format!("{{\"statusCode\":{status}}}"));
        } else {
            if event.contains("conformance-echo") {
                let connection = string_field(&event, "connectionId").expect("a connection id");
                let connection = connection.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
                management_call(
                    host,
                    "POST",
                    &format!("/{stage}/@connections/{connection}"),
                    event.as_bytes(),
                );
            }
            if event.contains("conformance-body") {
                respond("{\"statusCode\":200,\"body\":\"{\\\"reply\\\":\\\"conformance\\\"}\"}");
            } else {
                respond("{\"statusCode\":200}");
            }
        }
    }
}
