//! `outputs` and the live numbers of `status`, run as the real binary against moto; what they
//! print is compared with what the SDK reads back, and the records are written straight to the table.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use common::{Env, ACCOUNT, REGION};
use serde_json::Value;
use testkit::Fault;

#[tokio::test]
async fn outputs_name_what_up_created() {
    let (env, stack) = Env::with_stack("outs").await;
    let before = env.run(&stack, &["outputs", "-o", "json"]).await.expect_exit(0);
    assert_eq!(
        before.json()["websocket_url"],
        Value::Null,
        "no API before up: {before}"
    );
    let text = env.run(&stack, &["outputs"]).await;
    text.expect_stdout("websocket_url = (not created yet");

    assert_eq!(env.run(&stack, &["up"]).await.code, 0);
    let run = env.run(&stack, &["outputs", "-o", "json"]).await.expect_exit(0);
    let outputs = run.json();
    let apis = env.apigateway().get_apis().send().await.unwrap();
    let api_id = apis
        .items()
        .iter()
        .find(|a| a.name() == Some("outs-dev"))
        .and_then(|a| a.api_id())
        .expect("the API up created")
        .to_string();
    assert_eq!(outputs["api_id"], api_id.as_str());
    assert_eq!(
        outputs["websocket_url"],
        format!("wss://{api_id}.execute-api.{REGION}.amazonaws.com/dev").as_str()
    );
    assert_eq!(
        outputs["callback_url"],
        format!("https://{api_id}.execute-api.{REGION}.amazonaws.com/dev").as_str()
    );
    let table = env.table(outputs["table_name"].as_str().unwrap()).await;
    assert_eq!(outputs["table_arn"], table.table_arn().unwrap());
    for (name, arn) in [
        ("queue_name", "queue_arn"),
        ("chunk_queue_name", "chunk_queue_arn"),
        ("dead_letter_queue_name", "dead_letter_queue_arn"),
    ] {
        let url = env.queue_url(outputs[name].as_str().unwrap());
        let attributes = env
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap();
        let read = attributes.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
        assert_eq!(outputs[arn], read.as_str());
    }
    let rule = env.rule(outputs["rule_name"].as_str().unwrap()).await;
    assert_eq!(outputs["rule_arn"], rule.arn().unwrap());
    // What a producer must send, as the rule takes it.
    let pattern: serde_json::Value = serde_json::from_str(rule.event_pattern().unwrap()).unwrap();
    assert_eq!(outputs["event_source"], "wsstack.outs.dev");
    assert_eq!(pattern["source"][0], outputs["event_source"]);
    assert_eq!(pattern["detail-type"][0], outputs["entity_detail_type"]);
    assert_eq!(pattern["detail-type"][1], outputs["user_detail_type"]);
    let functions = outputs["functions"].as_object().unwrap();
    assert_eq!(
        functions.keys().map(String::as_str).collect::<Vec<_>>(),
        ["connect", "disconnect", "push", "resume", "subscribe", "unsubscribe"]
    );
    for function in functions.values() {
        let read = env
            .lambda()
            .get_function()
            .function_name(function["name"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(function["arn"], read.configuration().unwrap().function_arn().unwrap());
    }
    assert!(outputs["table_arn"].as_str().unwrap().contains(ACCOUNT));
    let text = env.run(&stack, &["outputs"]).await;
    let push_arn = functions["push"]["arn"].as_str().unwrap();
    assert!(
        text.stdout
            .lines()
            .any(|l| l == format!("functions.push.arn = {push_arn}")),
        "{text}"
    );
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

async fn put_record(env: &Env, table: &str, connection: &str, sk: &str, ttl: u64) {
    env.dynamodb()
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(connection.into()))
        .item("sk", AttributeValue::S(sk.into()))
        .item("ttl", AttributeValue::N(ttl.to_string()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn status_counts_connections_subscriptions_and_waiting_messages() {
    let (env, stack) = Env::with_stack("live").await;
    let run = env.run(&stack, &["status", "-o", "json"]).await;
    assert_eq!(run.json()["live"]["table"], Value::Null, "no table before up: {run}");
    assert_eq!(env.run(&stack, &["up"]).await.code, 0);

    let table = "live-dev-connections";
    let alive = now() + 3600;
    for connection in ["c1", "c2", "c3"] {
        put_record(&env, table, connection, "connection#", alive).await;
        put_record(&env, table, connection, "subscription#order-42", alive).await;
    }
    put_record(&env, table, "c1", "subscription#order-7", alive).await;
    // Expired but not yet deleted by DynamoDB's TTL sweep: not counted.
    put_record(&env, table, "gone", "connection#", now() - 60).await;
    put_record(&env, table, "gone", "subscription#order-7", now() - 60).await;
    for (queue, body) in [
        ("live-dev-events-dlq", "one"),
        ("live-dev-events-dlq", "two"),
        ("live-dev-chunks", "a chunk left waiting"),
    ] {
        env.sqs()
            .send_message()
            .queue_url(env.queue_url(queue))
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let run = env.run(&stack, &["status", "-o", "json"]).await.expect_exit(0);
    let live = &run.json()["live"];
    assert_eq!(live["table"]["connections"], 3, "{run}");
    assert_eq!(live["table"]["subscriptions"], 4, "{run}");
    assert_eq!(live["table"]["truncated"], false);
    assert_eq!(live["table"]["records_read"], 9);
    assert_eq!(
        live["table"]["top_entities"],
        serde_json::json!([{"entity_id": "order-42", "subscribers": 3}, {"entity_id": "order-7", "subscribers": 1}])
    );
    assert_eq!(live["dead_letter_queue"]["waiting"], 2, "{run}");
    assert_eq!(live["queue"]["waiting"], 0, "{run}");
    assert_eq!(live["chunk_queue"]["waiting"], 1, "{run}");

    let text = env.run(&stack, &["status"]).await;
    text.expect_stdout("3 open, 4 subscriptions");
    text.expect_stdout("2 waiting, 0 in flight");
    text.expect_stdout("chunk queue            1 waiting, 0 in flight");

    // A scan cut at its limit says so, in JSON and in words.
    let run = env.run(&stack, &["status", "-o", "json", "--scan-limit", "4"]).await;
    let table_counts = &run.json()["live"]["table"];
    assert_eq!(table_counts["truncated"], true, "{run}");
    assert!(table_counts["records_read"].as_u64().unwrap() >= 4, "{run}");
    let text = env.run(&stack, &["status", "--scan-limit", "4"]).await;
    text.expect_stdout("at least");

    // A caller who may not scan the table still gets the states and the exit code.
    env.proxy.inject(Fault::new(
        "dynamodb",
        "Scan",
        1,
        400,
        "AccessDeniedException",
        "not authorized to perform: dynamodb:Scan",
    ));
    let run = env.run(&stack, &["status", "-o", "json"]).await.expect_exit(0);
    assert!(
        run.json()["live"]["error"].as_str().unwrap().contains("AccessDenied"),
        "{run}"
    );
}
