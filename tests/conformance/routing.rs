//! Route selection on `$request.body.action` and the error frames API Gateway sends a client.

use serde_json::{json, Value};

use crate::harness::{next_message, send};
use crate::support::{connection_id, echo, send_text, Declared, Local, WITHIN};

/// The error frame's three fields, and that there is nothing else in it.
fn assert_error_frame(frame: &Value, message: &str, connection: &str) {
    assert_eq!(frame["message"], message, "{frame}");
    assert_eq!(frame["connectionId"], connection, "{frame}");
    assert!(frame["requestId"].as_str().is_some_and(|id| !id.is_empty()), "{frame}");
    assert_eq!(frame.as_object().unwrap().len(), 3, "{frame}");
}

/// A route whose integration fails (the handler throws, or its process dies) answers the client
/// `{"message": "Internal server error", "connectionId", "requestId"}` and keeps the connection.
/// The frame is what API Gateway sends: AWS's own sample chat app shows it
/// (https://github.com/aws-samples/simple-websockets-chat-app/issues/46) and serverless-offline's
/// e2e suite, written to run against AWS too, expects it; the requestId is the failed request's, the
/// one the route's event carried.
#[tokio::test]
async fn a_failing_route_handler_answers_internal_server_error() {
    let local = Local::start("cfthrow", Declared::default()).await;
    let mut client = local.client("", &[]).await;
    let id = connection_id(&mut client).await;

    for marker in ["conformance-throw", "conformance-exit"] {
        send(&mut client, json!({"action": "probe", "do": marker})).await;
        let frame = next_message(&mut client, WITHIN).await.expect("the error frame");
        assert_error_frame(&frame, "Internal server error", &id);
        let failed = local
            .events_of(&id, "MESSAGE")
            .into_iter()
            .rfind(|event| event["body"].as_str().unwrap().contains(marker))
            .expect("the route got the message");
        assert_eq!(frame["requestId"], failed["requestContext"]["requestId"], "{marker}");
    }

    // The connection lives on; a new handler process takes the next message.
    let event = echo(&mut client, json!({"action": "probe"})).await;
    assert_eq!(event["requestContext"]["connectionId"], id.as_str());
}

/// Without `$default`, a frame no route takes gets `{"message": "Forbidden", ...}` and reaches no
/// function: "If there is no matching route and no $default route, the service returns an error"
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-routes.html).
/// A frame without `action` and a frame that is no JSON have no matching route either.
#[tokio::test]
async fn without_default_an_unmatched_frame_gets_the_forbidden_frame() {
    let local = Local::start("cfnodef", Declared::default()).await;
    let mut client = local.client("", &[]).await;
    let id = connection_id(&mut client).await;

    for frame in [
        r#"{"action":"nobodyServesThis"}"#,
        r#"{"hello":"world"}"#,
        "not json at all",
    ] {
        send_text(&mut client, frame).await;
        let answer = next_message(&mut client, WITHIN).await.expect("an error frame");
        assert_error_frame(&answer, "Forbidden", &id);
    }
    // Only the probe that found the id reached a function.
    assert_eq!(local.events_of(&id, "MESSAGE").len(), 1);
}

/// With `$default`, an unknown action, a frame without `action` and a non-JSON frame all reach
/// `$default`, with the frame as `body`: "If the route selection expression cannot be evaluated
/// against the message or if no matching route is found, the $default route will be invoked";
/// "Non-JSON messages are directed to a $default route"
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-routes.html).
#[tokio::test]
async fn with_default_unknown_missing_and_unreadable_actions_reach_default() {
    let local = Local::start(
        "cfdefault",
        Declared {
            default_route: true,
            ..Declared::default()
        },
    )
    .await;
    let mut client = local.client("", &[]).await;

    let unknown = echo(&mut client, json!({"action": "nobodyServesThis"})).await;
    let missing = echo(&mut client, json!({"hello": "world"})).await;
    send_text(&mut client, "plain text conformance-echo").await;
    let unreadable = next_message(&mut client, WITHIN).await.expect("$default's echo");
    let body_of = |event: &Value| serde_json::from_str::<Value>(event["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body_of(&unknown),
        json!({"action": "nobodyServesThis", "do": "conformance-echo"})
    );
    assert_eq!(body_of(&missing), json!({"hello": "world", "do": "conformance-echo"}));
    assert_eq!(unreadable["body"], "plain text conformance-echo");
    for event in [&unknown, &missing, &unreadable] {
        assert_eq!(event["requestContext"]["routeKey"], "$default", "{event}");
    }

    // A known action still goes to its own route.
    let known = echo(&mut client, json!({"action": "probe"})).await;
    assert_eq!(known["requestContext"]["routeKey"], "probe");
}

/// A route sends its integration's body back only when it has a route response: "API Gateway will
/// not pass the backend response through to the route response, unless you set up a route
/// response" (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-response.html).
/// serverless-offline's websocket-oneway and websocket-twoway suites draw the same line with the
/// route's `routeResponseSelectionExpression`; here the stack file's `replies: true` makes `up`
/// create the route response, and dev reads it back from the emulator.
#[tokio::test]
async fn only_a_two_way_route_sends_the_integration_body_back() {
    for (stack, two_way) in [("cfoneway", false), ("cftwoway", true)] {
        let declared = Declared {
            two_way,
            ..Declared::default()
        };
        let local = Local::start(stack, declared).await;
        let mut client = local.client("", &[]).await;
        // A connection's frames are routed one at a time, in order: a body sent back for the first
        // arrives before what the second one's route posts.
        send(&mut client, json!({"action": "probe", "do": "conformance-body"})).await;
        send(&mut client, json!({"action": "probe", "do": "conformance-echo"})).await;
        let first = next_message(&mut client, WITHIN).await.expect("a message");
        if two_way {
            assert_eq!(first, json!({"reply": "conformance"}));
            let echoed = next_message(&mut client, WITHIN).await.expect("the echoed event");
            assert_eq!(echoed["requestContext"]["routeKey"], "probe", "{echoed}");
        } else {
            assert_eq!(
                first["requestContext"]["routeKey"], "probe",
                "a one-way route sent its body back: {first}"
            );
        }
    }
}
