//! The API Gateway event formats of `events.rs`, checked field by field against the shapes AWS
//! documents for WebSocket Lambda proxy integrations.

use std::time::Duration;

use super::*;

fn stage() -> Stage {
    Stage {
        api_id: "abc123".into(),
        stage: "dev".into(),
        domain: "127.0.0.1:8080".into(),
    }
}

fn client() -> Client {
    Client {
        connection_id: "L0SM9cOFvHcCIhw=".into(),
        connected_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        source_ip: "127.0.0.1".into(),
        user_agent: Some("test-agent".into()),
        authorizer: None,
    }
}

fn request() -> Request {
    Request {
        id: "req-1".into(),
        message_id: "msg-1".into(),
        at: UNIX_EPOCH + Duration::from_millis(1_700_000_005_000),
    }
}

#[test]
fn the_connect_event_carries_headers_query_and_context() {
    let headers = [
        ("host", "127.0.0.1:8080"),
        ("sec-websocket-protocol", "websocket"),
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-for", "5.6.7.8"),
    ];
    let event = connect_event(&stage(), &client(), headers, Some("token=a%20b&x=1&x=2"), &request());
    assert_eq!(event["headers"]["Sec-WebSocket-Protocol"], "websocket");
    assert_eq!(event["headers"]["Host"], "127.0.0.1:8080");
    assert_eq!(event["headers"]["X-Forwarded-For"], "5.6.7.8");
    assert_eq!(
        event["multiValueHeaders"]["X-Forwarded-For"],
        json!(["1.2.3.4", "5.6.7.8"])
    );
    assert_eq!(event["queryStringParameters"]["token"], "a b");
    assert_eq!(event["multiValueQueryStringParameters"]["x"], json!(["1", "2"]));
    assert_eq!(event["isBase64Encoded"], false);
    let context = &event["requestContext"];
    assert_eq!(context["routeKey"], "$connect");
    assert_eq!(context["eventType"], "CONNECT");
    assert_eq!(context["messageDirection"], "IN");
    assert_eq!(context["stage"], "dev");
    assert_eq!(context["apiId"], "abc123");
    assert_eq!(context["domainName"], "127.0.0.1:8080");
    assert_eq!(context["connectionId"], "L0SM9cOFvHcCIhw=");
    assert_eq!(context["connectedAt"], 1_700_000_000_123i64);
    assert_eq!(context["requestTimeEpoch"], 1_700_000_005_000i64);
    assert_eq!(context["requestTime"], "14/Nov/2023:22:13:25 +0000");
    assert_eq!(context["requestId"], "req-1");
    assert_eq!(context["extendedRequestId"], "req-1");
    assert_eq!(
        context["identity"],
        json!({"sourceIp": "127.0.0.1", "userAgent": "test-agent"})
    );
    assert!(
        context.get("messageId").is_none(),
        "only MESSAGE events have a messageId"
    );
}

#[test]
fn a_connect_event_without_a_query_has_no_query_fields() {
    let event = connect_event(&stage(), &client(), [("host", "h")], None, &request());
    assert!(event.get("queryStringParameters").is_none());
    assert!(event.get("multiValueQueryStringParameters").is_none());
}

#[test]
fn a_message_event_carries_the_body_route_and_message_id() {
    let body = r#"{"action":"subscribe","entityId":"e"}"#;
    let event = message_event(&stage(), &client(), "subscribe", body, &request());
    assert_eq!(event["body"], body);
    assert_eq!(event["isBase64Encoded"], false);
    assert_eq!(event["requestContext"]["routeKey"], "subscribe");
    assert_eq!(event["requestContext"]["eventType"], "MESSAGE");
    assert_eq!(event["requestContext"]["messageId"], "msg-1");
    assert_eq!(event["requestContext"]["connectionId"], "L0SM9cOFvHcCIhw=");
    assert!(event.get("headers").is_none(), "MESSAGE events carry no headers");
}

#[test]
fn a_disconnect_event_says_how_the_connection_ended() {
    let event = disconnect_event(&stage(), &client(), 1009, "Message too big", &request());
    let context = &event["requestContext"];
    assert_eq!(context["routeKey"], "$disconnect");
    assert_eq!(context["eventType"], "DISCONNECT");
    assert_eq!(context["disconnectStatusCode"], 1009);
    assert_eq!(context["disconnectReason"], "Message too big");
    assert_eq!(context["identity"], json!({"sourceIp": "127.0.0.1"}));
    assert_eq!(event["headers"]["Host"], "127.0.0.1:8080");
    assert_eq!(event["multiValueHeaders"], json!({}));
}

#[test]
fn routes_are_selected_on_the_action_then_default() {
    let routes = ["subscribe", "$default"];
    let has = |key: &str| routes.contains(&key);
    assert_eq!(
        select_route(r#"{"action":"subscribe"}"#, has).as_deref(),
        Some("subscribe")
    );
    assert_eq!(select_route(r#"{"action":"dance"}"#, has).as_deref(), Some("$default"));
    assert_eq!(select_route("not json", has).as_deref(), Some("$default"));
    // A client cannot pick a reserved route by name.
    assert_eq!(
        select_route(r#"{"action":"$connect"}"#, has).as_deref(),
        Some("$default")
    );

    let without_default = |key: &str| key == "subscribe";
    assert_eq!(select_route(r#"{"action":"dance"}"#, without_default), None);
    assert_eq!(select_route(r#"{"action":5}"#, without_default), None);
    assert_eq!(select_route(r#"{"Action":"subscribe"}"#, without_default), None);
    assert_eq!(select_route("[1,2]", without_default), None);
}

#[test]
fn error_frames_name_the_connection_and_request() {
    let forbidden: Value = serde_json::from_str(&error_frame(FORBIDDEN, "c1", &request())).unwrap();
    assert_eq!(
        forbidden,
        json!({"message": "Forbidden", "connectionId": "c1", "requestId": "req-1"})
    );
    let internal: Value = serde_json::from_str(&internal_error_frame("c1", &request())).unwrap();
    assert_eq!(internal["message"], "Internal server error");
}

#[test]
fn only_a_non_empty_string_body_is_sent_back() {
    assert_eq!(reply_frame(br#"{"statusCode":200,"body":"hi"}"#).as_deref(), Some("hi"));
    assert_eq!(reply_frame(br#"{"statusCode":200,"body":""}"#), None);
    assert_eq!(reply_frame(br#"{"statusCode":200}"#), None);
    assert_eq!(reply_frame(br#"{"body":5}"#), None);
    assert_eq!(reply_frame(b"not json"), None);
}

#[test]
fn a_2xx_or_absent_connect_status_accepts_with_the_answers_headers() {
    let accept = |headers: &[(&str, &str)]| ConnectVerdict::Accept {
        headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
    };
    assert_eq!(
        connect_verdict(br#"{"statusCode":200,"headers":{"Sec-WebSocket-Protocol":"websocket","X-Count":3}}"#),
        accept(&[("Sec-WebSocket-Protocol", "websocket")])
    );
    assert_eq!(connect_verdict(br#"{"statusCode":204}"#), accept(&[]));
    assert_eq!(connect_verdict(b"{}"), accept(&[]));
    assert_eq!(connect_verdict(b"null"), accept(&[]));
}

#[test]
fn a_non_2xx_connect_status_refuses_with_that_status() {
    assert_eq!(connect_verdict(br#"{"statusCode":400}"#), ConnectVerdict::Refuse(400));
    assert_eq!(connect_verdict(br#"{"statusCode":403}"#), ConnectVerdict::Refuse(403));
    assert_eq!(connect_verdict(br#"{"statusCode":302}"#), ConnectVerdict::Refuse(302));
    assert_eq!(connect_verdict(br#"{"statusCode":599}"#), ConnectVerdict::Refuse(599));
}

#[test]
fn an_invalid_connect_status_refuses_as_a_malformed_answer() {
    for answer in [
        r#"{"statusCode":-1}"#,
        r#"{"statusCode":-200}"#,
        r#"{"statusCode":0}"#,
        r#"{"statusCode":99}"#,
        r#"{"statusCode":101}"#,
        r#"{"statusCode":600}"#,
        r#"{"statusCode":65736}"#,
        r#"{"statusCode":18446744073709551615}"#,
        r#"{"statusCode":200.5}"#,
        r#"{"statusCode":"200"}"#,
        r#"{"statusCode":true}"#,
    ] {
        assert_eq!(
            connect_verdict(answer.as_bytes()),
            ConnectVerdict::Refuse(502),
            "{answer}"
        );
    }
}

fn target() -> AuthorizerTarget {
    AuthorizerTarget {
        region: "us-east-1".into(),
        account: "123456789012".into(),
    }
}

const METHOD_ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/$connect";

#[test]
fn the_authorizer_event_is_a_websocket_request_authorizer_event() {
    let headers = [("host", "127.0.0.1:8080"), ("sec-websocket-protocol", "websocket, t0k")];
    let event = authorizer_event(
        &stage(),
        &target(),
        &client(),
        headers,
        Some("access_token=t0k"),
        &request(),
    );
    assert_eq!(event["type"], "REQUEST");
    assert_eq!(event["methodArn"], METHOD_ARN);
    assert_eq!(event["headers"]["Sec-WebSocket-Protocol"], "websocket, t0k");
    assert_eq!(event["multiValueHeaders"]["Host"], json!(["127.0.0.1:8080"]));
    assert_eq!(event["queryStringParameters"], json!({"access_token": "t0k"}));
    assert_eq!(
        event["multiValueQueryStringParameters"],
        json!({"access_token": ["t0k"]})
    );
    assert_eq!(event["stageVariables"], json!({}));
    let context = &event["requestContext"];
    assert_eq!(context["routeKey"], "$connect");
    assert_eq!(context["eventType"], "CONNECT");
    assert_eq!(context["connectionId"], "L0SM9cOFvHcCIhw=");
    assert_eq!(context["apiId"], "abc123");
    assert_eq!(context["stage"], "dev");
    assert!(context.get("authorizer").is_none(), "no authorizer answered yet");

    let bare = authorizer_event(&stage(), &target(), &client(), [("host", "h")], None, &request());
    assert_eq!(bare["queryStringParameters"], json!({}));
    assert_eq!(bare["multiValueQueryStringParameters"], json!({}));
}

fn policy(effect: &str, resource: Value) -> Value {
    json!({
        "principalId": "user-1",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": {"userId": "user-1", "entities": "[\"order/*\"]", "tier": 3, "admin": false},
    })
}

fn decide(answer: &Value) -> Authorization {
    authorization(answer.to_string().as_bytes(), METHOD_ARN, 7)
}

#[test]
fn an_allow_for_the_method_arn_passes_principal_and_context_as_strings() {
    let Authorization::Allow(context) = decide(&policy("Allow", json!(METHOD_ARN))) else {
        panic!("refused")
    };
    assert_eq!(
        Value::Object(context),
        json!({
            "principalId": "user-1",
            "userId": "user-1",
            "entities": "[\"order/*\"]",
            "tier": "3",
            "admin": "false",
            "integrationLatency": 7,
        })
    );
    let wildcard = "arn:aws:execute-api:us-east-1:123456789012:abc123/*";
    assert!(matches!(
        decide(&policy("Allow", json!([wildcard]))),
        Authorization::Allow(_)
    ));
    assert!(matches!(
        decide(&policy("Allow", json!("arn:aws:execute-api:*:*:abc123/dev/$conn?ct"))),
        Authorization::Allow(_)
    ));
}

#[test]
fn a_deny_or_an_allow_elsewhere_is_403() {
    assert_eq!(decide(&policy("Deny", json!(METHOD_ARN))), Authorization::Refuse(403));
    let other_api = "arn:aws:execute-api:us-east-1:123456789012:other/dev/$connect";
    assert_eq!(decide(&policy("Allow", json!(other_api))), Authorization::Refuse(403));
    // A Deny wins over an Allow of the same resource.
    let mut both = policy("Allow", json!("*"));
    both["policyDocument"]["Statement"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Action": "execute-api:*", "Effect": "Deny", "Resource": METHOD_ARN}));
    assert_eq!(decide(&both), Authorization::Refuse(403));
}

#[test]
fn a_malformed_authorizer_answer_is_500() {
    let mut no_principal = policy("Allow", json!(METHOD_ARN));
    no_principal.as_object_mut().unwrap().remove("principalId");
    let mut no_policy = policy("Allow", json!(METHOD_ARN));
    no_policy.as_object_mut().unwrap().remove("policyDocument");
    let mut nested_context = policy("Allow", json!(METHOD_ARN));
    nested_context["context"]["entities"] = json!(["order/*"]);
    let mut odd_effect = policy("Allow", json!(METHOD_ARN));
    odd_effect["policyDocument"]["Statement"][0]["Effect"] = json!("Maybe");
    for answer in [no_principal, no_policy, nested_context, odd_effect] {
        assert_eq!(decide(&answer), Authorization::Refuse(500), "{answer}");
    }
    assert_eq!(authorization(b"not json", METHOD_ARN, 0), Authorization::Refuse(500));
}

#[test]
fn every_event_of_an_authorized_connection_carries_the_authorizer_context() {
    let mut client = client();
    let mut context = Map::new();
    context.insert("principalId".into(), json!("user-1"));
    context.insert("userId".into(), json!("user-1"));
    client.authorizer = Some(context);
    let connect = connect_event(&stage(), &client, [("host", "h")], None, &request());
    let message = message_event(&stage(), &client, "subscribe", "{}", &request());
    let disconnect = disconnect_event(&stage(), &client, 1000, "", &request());
    for event in [connect, message, disconnect] {
        assert_eq!(event["requestContext"]["authorizer"]["userId"], "user-1");
        assert_eq!(event["requestContext"]["authorizer"]["principalId"], "user-1");
    }
}
