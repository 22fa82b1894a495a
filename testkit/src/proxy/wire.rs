//! The AWS wire formats the proxy speaks: which service, operation and protocol a signed request
//! is, and how an error looks in each protocol so that the SDK parses it into the typed error it
//! would get from AWS. Knows nothing of the proxy's state.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Protocol {
    AwsJson,
    AwsQuery,
    RestJson,
}

pub(crate) struct Identified {
    pub service: String,
    /// Region of the request's credential scope.
    pub region: String,
    pub operation: String,
    pub protocol: Protocol,
    pub write: bool,
}

pub(crate) fn identify(parts: &hyper::http::request::Parts, body: &[u8]) -> Identified {
    // Credential=AKID/20260101/us-east-1/dynamodb/aws4_request
    let scope: Vec<String> = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .map(|cred| cred.split('/').map(str::to_string).collect())
        .unwrap_or_default();
    let service = scope.get(3).cloned().unwrap_or_else(|| "unknown".into());
    let region = scope.get(2).cloned().unwrap_or_else(|| "us-east-1".into());
    if let Some(target) = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let operation = target.rsplit('.').next().unwrap_or(target).to_string();
        let write = !is_read_operation(&operation);
        return Identified {
            service,
            region,
            operation,
            protocol: Protocol::AwsJson,
            write,
        };
    }
    let form = String::from_utf8_lossy(body);
    if let Some(action) = form.split('&').find_map(|pair| pair.strip_prefix("Action=")) {
        let operation = action.to_string();
        let write = !is_read_operation(&operation);
        return Identified {
            service,
            region,
            operation,
            protocol: Protocol::AwsQuery,
            write,
        };
    }
    let method = parts.method.as_str().to_string();
    let write = !matches!(method.as_str(), "GET" | "HEAD");
    Identified {
        service,
        region,
        operation: format!("{} {}", method, parts.uri.path()),
        protocol: Protocol::RestJson,
        write,
    }
}

fn is_read_operation(operation: &str) -> bool {
    ["Get", "Describe", "List", "Query", "Scan", "BatchGet", "Head"]
        .iter()
        .any(|prefix| operation.starts_with(prefix))
}

pub(crate) fn error_response(
    protocol: Protocol,
    service: &str,
    status: u16,
    code: &str,
    message: &str,
) -> Response<Full<Bytes>> {
    let (content_type, body) = match protocol {
        Protocol::AwsJson => (
            "application/x-amz-json-1.0",
            serde_json::json!({"__type": code, "message": message}).to_string(),
        ),
        Protocol::RestJson => (
            "application/json",
            serde_json::json!({"Type": "User", "message": message, "Message": message}).to_string(),
        ),
        Protocol::AwsQuery => (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>",
                xml_escape(message)
            ),
        ),
    };
    let mut response = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-errortype", code)
        .header("x-amzn-requestid", "00000000-0000-0000-0000-000000000000");
    // SQS speaks awsJson but is awsQueryCompatible: its legacy error code travels in this header,
    // and the SDK takes the code from it.
    if protocol == Protocol::AwsJson && service == "sqs" {
        response = response.header("x-amzn-query-error", format!("{code};Sender"));
    }
    response.body(Full::new(Bytes::from(body))).expect("static response")
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// xorshift64*: deterministic for a seed, good enough to pick failures.
pub(crate) fn next_draw(rng: &mut u64) -> u64 {
    let mut x = *rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// The transient error a service of this protocol sends under load.
pub(crate) fn transient_error(protocol: Protocol, service: &str, pick: u64) -> (u16, &'static str) {
    if pick.is_multiple_of(2) {
        return (503, "ServiceUnavailable");
    }
    match (protocol, service) {
        (_, "dynamodb") => (400, "ThrottlingException"),
        (Protocol::AwsQuery, _) => (400, "Throttling"),
        (Protocol::RestJson, _) => (429, "TooManyRequestsException"),
        _ => (400, "ThrottlingException"),
    }
}
