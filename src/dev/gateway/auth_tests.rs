//! The handshake behind a `$connect` authorizer, with the fake bootstrap as the authorizer and as
//! the routes: 401, 403 and 500 refuse before `$connect` runs; an Allow's context reaches
//! `$connect` and every later event of the connection.

use super::*;

const METHOD_ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/$connect";

fn allow(effect: &str) -> String {
    json!({
        "principalId": "user-1",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": METHOD_ARN}],
        },
        "context": {"userId": "user-1", "entities": "[\"order/*\"]"},
    })
    .to_string()
}

/// The handshake's status when refused; panics when it is accepted.
async fn refused_status(local: &Local) -> u16 {
    match tokio_tungstenite::connect_async(local.url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("the handshake was accepted"),
    }
}

#[tokio::test]
async fn refusals_of_the_authorizer_end_the_handshake_before_connect() {
    let deny = allow("Deny");
    let cases: [(&[(&str, &str)], u16); 4] = [
        (
            &[
                ("MODE", "error"),
                (
                    "ANSWER",
                    r#"{"errorType":"Unauthorized","errorMessage":"Unauthorized"}"#,
                ),
            ],
            401,
        ),
        (&[("ANSWER", &deny)], 403),
        (
            &[
                ("MODE", "error"),
                ("ANSWER", r#"{"errorType":"Boom","errorMessage":"boom"}"#),
            ],
            500,
        ),
        (&[("ANSWER", r#"{"principalId":"user-1"}"#)], 500),
    ];
    for (authorizer, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("connects");
        let record_text = record.to_str().unwrap().to_string();
        let local = Local::start_authorized(dir, Some(authorizer), &[("$connect", &[("RECORD", &record_text)])]).await;
        assert_eq!(refused_status(&local).await, expected, "{authorizer:?}");
        assert!(
            recorded(&record).is_empty(),
            "$connect ran after a refusal: {authorizer:?}"
        );
    }
}

#[tokio::test]
async fn an_allow_passes_its_context_to_connect_and_to_every_route_of_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let asked = dir.path().join("asked").to_str().unwrap().to_string();
    let connects = dir.path().join("connects").to_str().unwrap().to_string();
    let messages = dir.path().join("messages").to_str().unwrap().to_string();
    let disconnects = dir.path().join("disconnects").to_str().unwrap().to_string();
    let answer = allow("Allow");
    let local = Local::start_authorized(
        dir,
        Some(&[("ANSWER", &answer), ("RECORD", &asked)]),
        &[
            ("$connect", &[("RECORD", &connects)]),
            ("$default", &[("RECORD", &messages)]),
            ("$disconnect", &[("RECORD", &disconnects)]),
        ],
    )
    .await;
    let mut client = local.connect().await;
    client.send(Message::Text("hello".into())).await.unwrap();
    let message = wait_for_records(std::path::Path::new(&messages), 1).await;
    client.close(None).await.unwrap();
    let disconnect = wait_for_records(std::path::Path::new(&disconnects), 1).await;

    let asked = recorded(std::path::Path::new(&asked));
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["type"], "REQUEST");
    assert_eq!(asked[0]["methodArn"], METHOD_ARN);
    assert_eq!(asked[0]["requestContext"]["eventType"], "CONNECT");
    let connect = recorded(std::path::Path::new(&connects));
    let id = &asked[0]["requestContext"]["connectionId"];
    for event in [&connect[0], &message[0], &disconnect[0]] {
        let context = &event["requestContext"];
        assert_eq!(&context["connectionId"], id, "one connection id from the authorizer on");
        assert_eq!(context["authorizer"]["principalId"], "user-1");
        assert_eq!(context["authorizer"]["userId"], "user-1");
        assert_eq!(context["authorizer"]["entities"], "[\"order/*\"]");
    }
}
