//! The stage as teams configure it on AWS: throttling (default route settings and per route key)
//! and access logs (the log group and the stage's AccessLogSettings), created, found again,
//! changed in place and removed by the real binary against moto, read back through the SDK; and
//! API Gateway's account-level CloudWatch Logs role that access logs need, detected and set up
//! only when asked.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;

use aws_sdk_apigatewayv2::operation::get_stage::GetStageOutput;
use common::{apis_of, counts, leftovers, stack_text, Env, ACCOUNT, REGION, STACK_RESOURCES};
use harness::Dev;
use serde_json::Value;

const THROTTLED: &str = "throttle:\n  rate: 500\n  burst: 200\n  routes:\n    $connect: {rate: 50, burst: 20}\n";

async fn stage_of(env: &Env, stack: &str) -> GetStageOutput {
    let api = apis_of(env, stack).await.remove(0);
    env.stage(api.api_id().unwrap(), "dev").await
}

fn throttle_of(settings: Option<&aws_sdk_apigatewayv2::types::RouteSettings>) -> Option<(f64, i32)> {
    let settings = settings?;
    Some((settings.throttling_rate_limit()?, settings.throttling_burst_limit()?))
}

/// `plan -o json`'s update details of the stage, as `field: (current, desired)`.
fn stage_changes(plan: &Value) -> Vec<(String, String, String)> {
    let resources = plan["resources"].as_array().unwrap();
    let stage = resources.iter().find(|r| r["kind"] == "API stage").unwrap();
    assert_eq!(stage["action"], "update", "{plan}");
    stage["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap().to_string();
            (s("field"), s("current"), s("desired"))
        })
        .collect()
}

#[tokio::test]
async fn throttling_and_access_logs_are_created_found_again_changed_in_place_and_removed() {
    let env = Env::start().await;
    let text = stack_text(
        "stg",
        &[(
            "# throttle:\n#   rate: 500\n#   burst: 200\n#   routes:\n#     $connect: {rate: 50, burst: 20}\n",
            THROTTLED,
        )],
    );
    let stack = env.write_stack("stack.yaml", &text);
    let run = env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(counts(&run), (STACK_RESOURCES as u64, 0, 0, 0), "{run}");

    // The stage: its default route throttling, $connect's own, access logs into the group, whose
    // ARN has no `:*`, in a JSON format that includes $context.requestId (API Gateway requires it).
    let stage = stage_of(&env, "stg").await;
    assert_eq!(throttle_of(stage.default_route_settings()), Some((500.0, 200)));
    let routes = stage.route_settings().unwrap();
    assert_eq!(throttle_of(routes.get("$connect")), Some((50.0, 20)));
    let access = stage.access_log_settings().expect("access logs are on by default");
    let group = "/aws/apigateway/stg-dev-access";
    assert_eq!(
        access.destination_arn(),
        Some(format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}").as_str())
    );
    let format: Value = serde_json::from_str(access.format().unwrap()).expect("the format is one JSON object");
    assert_eq!(format["requestId"], "$context.requestId");
    assert_eq!(format["connectionId"], "$context.connectionId");
    assert_eq!(format["eventType"], "$context.eventType");
    // The group: the handlers' retention and the stack's tags.
    let groups = env
        .logs()
        .describe_log_groups()
        .log_group_name_prefix(group)
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(14));
    let arn = format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}");
    let tags = env
        .logs()
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().unwrap()["wsstack:stack"], "stg");

    // Found again: a second up writes nothing.
    env.proxy.clear();
    let again = env.run(&stack, &["up"]).await.expect_exit(0);
    again.expect_stdout("no changes");
    assert!(env.proxy.writes().is_empty(), "{:?}", env.writes());

    // Changed: plan names each change, up makes them in place, and converges.
    let changed = text
        .replace("rate: 500", "rate: 100")
        .replace(
            "    $connect: {rate: 50, burst: 20}\n",
            "    subscribe: {rate: 5, burst: 2}\n",
        )
        .replace("log_retention_days: 14", "log_retention_days: 30");
    std::fs::write(&stack, &changed).unwrap();
    env.proxy.clear();
    let plan = env.run(&stack, &["plan", "-o", "json"]).await.expect_exit(3);
    assert!(env.proxy.writes().is_empty(), "plan writes nothing: {:?}", env.writes());
    let plan = plan.json();
    assert_eq!(
        stage_changes(&plan),
        [
            (
                "throttle".into(),
                "500 requests/s, burst 200".into(),
                "100 requests/s, burst 200".into()
            ),
            (
                "throttle of $connect".into(),
                "50 requests/s, burst 20".into(),
                "the stage's".into()
            ),
            (
                "throttle of subscribe".into(),
                "account quota only".into(),
                "5 requests/s, burst 2".into()
            ),
        ]
    );
    let access_group = plan["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == group)
        .unwrap()
        .clone();
    assert_eq!(access_group["action"], "update");
    assert_eq!(access_group["details"][0]["field"], "retention");
    let run = env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    // The stage and the seven log groups (five handlers', the access log's... all that carry the
    // retention) are updated in place; nothing is created or deleted.
    let (created, updated, deleted, _) = counts(&run);
    assert_eq!((created, deleted), (0, 0), "{run}");
    assert!(updated >= 2, "{run}");
    let stage = stage_of(&env, "stg").await;
    assert_eq!(throttle_of(stage.default_route_settings()), Some((100.0, 200)));
    let routes = stage.route_settings().cloned().unwrap_or_default();
    assert!(throttle_of(routes.get("$connect")).is_none(), "{routes:?}");
    assert_eq!(throttle_of(routes.get("subscribe")), Some((5.0, 2)));
    let groups = env
        .logs()
        .describe_log_groups()
        .log_group_name_prefix(group)
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(30));
    env.run(&stack, &["plan"]).await.expect_exit(0);

    // Access logs off and throttling gone: the stage loses both, the group goes.
    let off = changed.replace("access_logs: true", "access_logs: false").replace(
        "throttle:\n  rate: 100\n  burst: 200\n  routes:\n    subscribe: {rate: 5, burst: 2}\n",
        "",
    );
    std::fs::write(&stack, &off).unwrap();
    let plan = env.run(&stack, &["plan", "-o", "json"]).await.expect_exit(3).json();
    let changes = stage_changes(&plan);
    assert!(
        changes.contains(&("access logs".into(), format!("to {arn}"), "off".into())),
        "{changes:?}"
    );
    assert!(
        changes.iter().any(|c| c.0 == "throttle" && c.2 == "account quota only"),
        "{changes:?}"
    );
    let retired = plan["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == group)
        .unwrap()
        .clone();
    assert_eq!(retired["action"], "delete");
    env.run(&stack, &["up"]).await.expect_exit(0);
    let stage = stage_of(&env, "stg").await;
    assert!(stage.access_log_settings().is_none(), "{stage:?}");
    assert_eq!(throttle_of(stage.default_route_settings()), None);
    assert!(stage.route_settings().is_none_or(|r| r.is_empty()), "{stage:?}");
    let groups = env
        .logs()
        .describe_log_groups()
        .log_group_name_prefix(group)
        .send()
        .await
        .unwrap();
    assert!(groups.log_groups().is_empty());
    env.run(&stack, &["plan"]).await.expect_exit(0);

    // Back on, then down removes the group with the stage.
    std::fs::write(&stack, &text).unwrap();
    env.run(&stack, &["up"]).await.expect_exit(0);
    env.run(&stack, &["down", "--yes"]).await.expect_exit(0);
    assert_eq!(leftovers(&env, "stg").await, Vec::<String>::new());
}

#[tokio::test]
async fn access_logs_without_the_account_role_stop_up_until_it_is_set_up_on_request() {
    let env = Env::without_logging_role().await;
    let stack = env.write_stack("stack.yaml", &stack_text("role", &[]));
    let apigateway = aws_sdk_apigateway::Client::new(&env.config);

    // plan says so, and counts it as something standing in the way.
    let plan = env.run(&stack, &["plan"]).await.expect_exit(3);
    plan.expect_stdout("access logs need API Gateway's CloudWatch Logs role");
    plan.expect_stdout("--set-account-logging-role");

    // up stops before writing anything, and leaves the account as it was.
    env.proxy.clear();
    let refused = env.run(&stack, &["up"]).await.expect_exit(2);
    refused.expect_stderr("access logs need API Gateway's CloudWatch Logs role");
    refused.expect_stderr("access_logs: false");
    assert!(env.proxy.writes().is_empty(), "{:?}", env.writes());
    let account = apigateway.get_account().send().await.unwrap();
    assert_eq!(account.cloudwatch_role_arn(), None);

    // Asked: the role is made (trusted by API Gateway, with AWS's managed policy) and named in the
    // account's settings; the stack goes up with its access logs.
    let run = env
        .run(&stack, &["up", "--set-account-logging-role"])
        .await
        .expect_exit(0);
    run.expect_stderr("wsstack-apigateway-cloudwatch-logs");
    let role = env
        .iam()
        .get_role()
        .role_name("wsstack-apigateway-cloudwatch-logs")
        .send()
        .await
        .unwrap();
    let role = role.role().unwrap();
    let trust = urlencoding::decode(role.assume_role_policy_document().unwrap())
        .unwrap()
        .to_string();
    assert!(trust.contains("apigateway.amazonaws.com"), "{trust}");
    let attached = env
        .iam()
        .list_attached_role_policies()
        .role_name("wsstack-apigateway-cloudwatch-logs")
        .send()
        .await
        .unwrap();
    assert_eq!(
        attached.attached_policies()[0].policy_arn(),
        Some("arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")
    );
    let account = apigateway.get_account().send().await.unwrap();
    assert_eq!(account.cloudwatch_role_arn(), Some(role.arn()));
    assert!(stage_of(&env, "role").await.access_log_settings().is_some());

    // The role is an account setting: down leaves it.
    env.run(&stack, &["down", "--yes"]).await.expect_exit(0);
    let account = apigateway.get_account().send().await.unwrap();
    assert_eq!(account.cloudwatch_role_arn(), Some(role.arn()));
    env.iam()
        .get_role()
        .role_name("wsstack-apigateway-cloudwatch-logs")
        .send()
        .await
        .unwrap();

    // Without access logs the role is never asked for.
    let other = Env::without_logging_role().await;
    let stack = other.write_stack(
        "stack.yaml",
        &stack_text("nolog", &[("access_logs: true", "access_logs: false")]),
    );
    other.run(&stack, &["up"]).await.expect_exit(0);
    assert!(stage_of(&other, "nolog").await.access_log_settings().is_none());
}

#[tokio::test]
async fn wsstack_dev_throttles_as_api_gateway_does_and_logs_access_lines() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Error as WsError, Message};

    let env = Env::start().await;
    // Two subscribes, one connection: then nothing for minutes.
    let limits = "throttle:\n  rate: 100\n  burst: 100\n  routes:\n    $connect: {rate: 0.01, burst: 1}\n    subscribe: {rate: 0.01, burst: 2}\n";
    let commented = "# throttle:\n#   rate: 500\n#   burst: 200\n#   routes:\n#     $connect: {rate: 50, burst: 20}\n";
    let dev = Dev::start(&env, "thr", &[(commented, limits)]).await;
    let (url, stack) = (dev.url.clone(), dev.path.clone());

    let (mut client, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
    // $connect's bucket is empty: the next handshake is refused with 429.
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status().as_u16(), 429);
            let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
            assert_eq!(
                serde_json::from_str::<Value>(&body).unwrap()["message"],
                "Too Many Requests"
            );
        }
        other => panic!("a second handshake past the limit: {other:?}"),
    }

    for entity in ["e1", "e2", "e3"] {
        let frame = serde_json::json!({"action": "subscribe", "entityId": entity}).to_string();
        client.send(Message::Text(frame.into())).await.unwrap();
    }
    let mut answers = Vec::new();
    while answers.len() < 3 {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(20), client.next())
            .await
            .expect("an answer to each subscribe")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            answers.push(serde_json::from_str::<Value>(&text).unwrap());
        }
    }
    assert_eq!(answers[0]["type"], "subscribed", "{answers:?}");
    assert_eq!(answers[1]["type"], "subscribed", "{answers:?}");
    assert_eq!(answers[2]["message"], "Too Many Requests", "{answers:?}");
    assert!(answers[2]["connectionId"].is_string() && answers[2]["requestId"].is_string());

    // The access lines reach the emulator's log group; `logs access` reads them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let run = env.command(&stack, &["logs", "access", "-o", "json"]);
        let mut run = run;
        run.env("AWS_ENDPOINT_URL", env.moto.endpoint());
        let output = tokio::task::spawn_blocking(move || run.output().unwrap())
            .await
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let lines: Vec<Value> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|l| serde_json::from_str::<Value>(l["message"].as_str().unwrap()).unwrap())
            .collect();
        let seen = |event: &str, route: &str, status: &str| {
            lines
                .iter()
                .any(|l| l["eventType"] == event && l["routeKey"] == route && l["status"] == status)
        };
        if seen("CONNECT", "$connect", "200")
            && seen("CONNECT", "$connect", "429")
            && seen("MESSAGE", "subscribe", "200")
            && seen("MESSAGE", "subscribe", "429")
        {
            let throttled = lines
                .iter()
                .find(|l| l["status"] == "429" && l["eventType"] == "MESSAGE")
                .unwrap();
            assert_eq!(throttled["error"], "Too Many Requests");
            assert_eq!(throttled["connectionId"], answers[2]["connectionId"]);
            assert_eq!(throttled["requestId"], answers[2]["requestId"]);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "access lines within 30 s: {lines:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
