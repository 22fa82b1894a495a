//! The handshake: what `$connect` and the `$connect` authorizer answer decides it, and a request
//! that is no WebSocket upgrade is refused.

use serde_json::json;

use crate::support::{connection_id, raw_http, Declared, Local};

/// `$connect`'s statusCode: a 2xx accepts, any other status refuses the handshake with that status:
/// "If the $connect request fails ... the connection will not be made"
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-keys-connect-disconnect.html),
/// and a client sees the integration's status (serverless-offline PR 1301, compared against AWS:
/// "If a non-2xx Status Code is returned, the handshake is rejected ... Unexpected server response:
/// {statusCode}").
#[tokio::test]
async fn connect_status_codes_decide_the_handshake() {
    let local = Local::start("cfstatus", Declared::default()).await;
    for status in [200, 204] {
        let mut client = local.client(&format!("?do=conformance-status-{status}"), &[]).await;
        connection_id(&mut client).await;
    }
    for status in [400, 401, 403, 404, 500, 501, 502] {
        let (refused, _) = local.refusal(&format!("?do=conformance-status-{status}")).await;
        assert_eq!(refused, status);
    }
}

/// A `$connect` handler that throws, or whose process dies, refuses the handshake with 502 and
/// `{"message": "Internal server error"}`: "If the function runs but returns an error, or returns a
/// response in the wrong format, API Gateway returns a 502 ... the body of the response from API
/// Gateway is {"message": "Internal server error"}"
/// (https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html).
/// serverless-offline expects 502 too ("websocket emits 502 on connection error").
#[tokio::test]
async fn a_failing_connect_handler_refuses_with_502() {
    let local = Local::start("cfconnfail", Declared::default()).await;
    for marker in ["conformance-throw", "conformance-exit"] {
        let (status, body) = local.refusal(&format!("?do={marker}")).await;
        assert_eq!(status, 502, "{marker}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("a JSON body");
        assert_eq!(body, json!({"message": "Internal server error"}), "{marker}");
    }
}

/// An authorizer's Allow lets the handshake on, and its `principalId` and `context` reach every
/// later event as `requestContext.authorizer`, each context value stringified: "The stringified
/// value of the specified key-value pair of the context map returned from an API Gateway Lambda
/// authorizer function"
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-mapping-template-reference.html).
/// The authorizer's event is a REQUEST event whose methodArn ends with `/{stage}/$connect`
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-lambda-auth.html).
#[tokio::test]
async fn an_authorizer_allow_passes_its_context_to_every_event() {
    let local = Local::start(
        "cfallow",
        Declared {
            authorizer: true,
            ..Declared::default()
        },
    )
    .await;
    let api_id = local.api_id().await;
    let mut client = local.client("?credential=valid", &[]).await;
    let connection = connection_id(&mut client).await;

    let asked = local.wait_for(&connection, "AUTHORIZER").await;
    let method_arn = asked["methodArn"].as_str().unwrap();
    assert!(method_arn.starts_with("arn:aws:execute-api:us-east-1:"), "{method_arn}");
    assert!(method_arn.ends_with(&format!(":{api_id}/dev/$connect")), "{method_arn}");
    assert_eq!(asked["queryStringParameters"], json!({"credential": "valid"}));
    assert!(asked["headers"]["Sec-WebSocket-Key"].is_string(), "{asked}");

    let connect = local.wait_for(&connection, "CONNECT").await;
    let message = local.wait_for(&connection, "MESSAGE").await;
    for event in [&connect, &message] {
        let authorizer = &event["requestContext"]["authorizer"];
        assert_eq!(authorizer["principalId"], "conformance-user", "{authorizer}");
        assert_eq!(authorizer["team"], "blue", "{authorizer}");
        assert_eq!(authorizer["level"], "7", "{authorizer}");
        assert_eq!(authorizer["admin"], "true", "{authorizer}");
    }

    // An Allow without a context: the principal alone (serverless-offline's "without context").
    let mut bare = local.client("?credential=conformance-nocontext", &[]).await;
    let bare_id = connection_id(&mut bare).await;
    let authorizer = &local.wait_for(&bare_id, "MESSAGE").await["requestContext"]["authorizer"];
    assert_eq!(authorizer["principalId"], "conformance-user", "{authorizer}");
    assert!(authorizer["team"].is_null(), "{authorizer}");
}

/// An authorizer's refusals: a Deny policy is 403, the error "Unauthorized" 401, any other error
/// 500; `$connect` never runs. The Lambda authorizer example answers `callback("Unauthorized")` for
/// "a 401 Unauthorized response" and another error for "a 500" one
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-use-lambda-authorizer.html);
/// "If authorization fails on $connect, the connection will not be established, and the client will
/// receive a 401 or 403 response"
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-keys-connect-disconnect.html).
/// serverless-offline's websocket-authorizer suite expects the same 403, 500 and 401.
#[tokio::test]
async fn authorizer_refusals_refuse_the_handshake() {
    let local = Local::start(
        "cfrefuse",
        Declared {
            authorizer: true,
            ..Declared::default()
        },
    )
    .await;
    for (marker, expected) in [
        ("conformance-deny", 403),
        ("conformance-unauthorized", 401),
        ("conformance-throw", 500),
    ] {
        let (status, _) = local.refusal(&format!("?credential={marker}")).await;
        assert_eq!(status, expected, "{marker}");
    }
    let asked = local.recorded().iter().filter(|e| e["type"] == "REQUEST").count();
    assert_eq!(asked, 3, "the authorizer was asked each time");
    assert!(
        !local
            .recorded()
            .iter()
            .any(|e| e["requestContext"]["eventType"] == "CONNECT" && e["type"].is_null()),
        "$connect ran after a refusal"
    );
}

/// A plain HTTP GET of the stage URL, without the WebSocket upgrade, is refused with 426 Upgrade
/// Required and `Upgrade: websocket`. The API Gateway documentation does not say what it answers;
/// serverless-offline's e2e suite, which runs against AWS as well as against itself, expects 426,
/// and RFC 9110 (section 15.5.22) names 426 for a request the server will serve only after an
/// upgrade, with an Upgrade header saying to what.
#[tokio::test]
async fn a_plain_http_get_gets_426_upgrade_required() {
    let local = Local::start("cfplain", Declared::default()).await;
    let address = local.address();
    let (status, answer) = raw_http(
        &address,
        &format!("GET /dev HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 426, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("\r\nupgrade: websocket\r\n"),
        "{answer}"
    );
}
