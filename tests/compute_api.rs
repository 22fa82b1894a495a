//! The compute and API half of `up`: Lambda functions, log groups, permissions, the event source,
//! the WebSocket API with its routes and stage; `plan`, drift, injected IAM propagation errors and
//! interrupted runs. The real binary against moto, every effect read back through the SDK.

mod common;

use std::time::Duration;

use common::{apis_of, counts, json_of, leftovers, stack_text, Env, ACCOUNT, REGION, STACK_RESOURCES};
use testkit::Fault;

async fn api_id(env: &Env, stack: &str) -> String {
    let apis = apis_of(env, stack).await;
    assert_eq!(apis.len(), 1, "exactly one API for {stack}");
    apis[0].api_id().unwrap().to_string()
}

#[tokio::test]
async fn cold_up_creates_functions_permissions_routes_stage_and_event_source() {
    let env = Env::start().await;
    let stack = env.write_stack("stack.yaml", &stack_text("ws", &[("memory_mb: 256", "memory_mb: 512")]));
    let run = env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    let api = api_id(&env, "ws").await;
    let outputs = &run.json()["outputs"];
    assert_eq!(
        outputs["websocket_url"],
        format!("wss://{api}.execute-api.{REGION}.amazonaws.com/dev")
    );
    assert_eq!(
        outputs["callback_url"],
        format!("https://{api}.execute-api.{REGION}.amazonaws.com/dev")
    );

    let described = env.apigateway().get_api().api_id(&api).send().await.unwrap();
    assert_eq!(described.protocol_type().unwrap().as_str(), "WEBSOCKET");
    assert_eq!(described.route_selection_expression(), Some("$request.body.action"));

    // Functions: runtime, handler, memory, timeout, role, environment.
    for handler in ["connect", "disconnect", "subscribe", "unsubscribe", "resume", "push"] {
        let name = format!("ws-dev-{handler}");
        let function = env.lambda().get_function().function_name(&name).send().await.unwrap();
        let config = function.configuration().unwrap();
        assert_eq!(config.runtime().unwrap().as_str(), "provided.al2023");
        assert_eq!(config.handler(), Some("bootstrap"));
        assert_eq!(config.memory_size(), Some(512));
        assert_eq!(config.timeout(), Some(10));
        let role = if handler == "push" { "push" } else { "routes" };
        assert_eq!(
            config.role(),
            Some(format!("arn:aws:iam::{ACCOUNT}:role/ws-dev-{REGION}-{role}").as_str())
        );
        let variables = config.environment().unwrap().variables().unwrap();
        assert_eq!(variables["WSSTACK_HANDLER"], handler);
        assert_eq!(variables["TABLE_NAME"], "ws-dev-connections");
        assert_eq!(variables["TTL_HOURS"], "24");
        if handler == "push" {
            // Chunks of at most 1,000 on the chunk queue, one for each of its 5 invocations when each
            // gets a tenth of a second of posts;
            // 2,000 posts/s shared by 5 invocations of each queue: 95% for chunks, 5% for the
            // events an invocation of the events queue posts itself.
            assert_eq!(variables["PUSH_CHUNK_SIZE"], "1000");
            assert_eq!(
                variables["PUSH_CHUNK_QUEUE_ARN"],
                format!("arn:aws:sqs:{REGION}:{ACCOUNT}:ws-dev-chunks")
            );
            assert_eq!(variables["PUSH_MAX_CONCURRENCY"], "5");
            assert_eq!(variables["PUSH_POSTS_PER_SECOND"], "380");
            assert_eq!(variables["PUSH_DIRECT_POSTS_PER_SECOND"], "20");
        }
        assert_eq!(
            variables["CALLBACK_URL"],
            format!("https://{api}.execute-api.{REGION}.amazonaws.com/dev")
        );
        assert_eq!(function.tags().unwrap()["wsstack:stack"], "ws");

        let group = format!("/aws/lambda/{name}");
        let groups = env
            .logs()
            .describe_log_groups()
            .log_group_name_prefix(&group)
            .send()
            .await
            .unwrap();
        assert_eq!(groups.log_groups()[0].retention_in_days(), Some(14));
    }

    // Permissions scoped to the API, stage and route.
    for (handler, route) in [("connect", "$connect"), ("subscribe", "subscribe")] {
        let policy = env
            .lambda()
            .get_policy()
            .function_name(format!("ws-dev-{handler}"))
            .send()
            .await
            .unwrap();
        let policy = json_of(policy.policy().unwrap());
        let statement = &policy["Statement"][0];
        assert_eq!(statement["Principal"]["Service"], "apigateway.amazonaws.com");
        assert_eq!(
            statement["Condition"]["ArnLike"]["AWS:SourceArn"],
            format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/dev/{route}")
        );
    }

    // Routes, each to an AWS_PROXY integration invoking its own function.
    let routes = env.apigateway().get_routes().api_id(&api).send().await.unwrap();
    let integrations = env.apigateway().get_integrations().api_id(&api).send().await.unwrap();
    let mut keys: Vec<&str> = routes.items().iter().filter_map(|r| r.route_key()).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec!["$connect", "$disconnect", "resume", "subscribe", "unsubscribe"]
    );
    for route in routes.items() {
        let target = route.target().unwrap().trim_start_matches("integrations/");
        let integration = integrations
            .items()
            .iter()
            .find(|i| i.integration_id() == Some(target))
            .unwrap();
        assert_eq!(integration.integration_type().unwrap().as_str(), "AWS_PROXY");
        let handler = route.route_key().unwrap().trim_start_matches('$');
        assert_eq!(
            integration.integration_uri(),
            Some(format!("arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/arn:aws:lambda:{REGION}:{ACCOUNT}:function:ws-dev-{handler}/invocations").as_str())
        );
    }
    let stage = env.stage(&api, "dev").await;
    assert_eq!(stage.auto_deploy(), Some(true));

    // The push function consumes the events queue and the chunk queue, reporting partial batch
    // failures; chunks one per invocation.
    assert_eq!(env.event_source_mappings("ws-dev-push").await.len(), 2);
    for (queue, batch_size) in [("ws-dev-events", 10), ("ws-dev-chunks", 1)] {
        let mapping = env.event_source_mapping("ws-dev-push", queue).await;
        assert_eq!(
            mapping.event_source_arn(),
            Some(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}").as_str())
        );
        assert_eq!(mapping.batch_size(), Some(batch_size), "{queue}");
        assert_eq!(mapping.function_response_types()[0].as_str(), "ReportBatchItemFailures");
        // handlers.push.max_concurrency: the invocations that share the post budget.
        assert_eq!(mapping.scaling_config().and_then(|s| s.maximum_concurrency()), Some(5));
    }

    // The push handler may post to this API's connections only, and so may the route handlers,
    // which post a replay (history is on by default) before their route response answers.
    for role in ["routes", "push"] {
        let policy = env
            .iam()
            .get_role_policy()
            .role_name(format!("ws-dev-{REGION}-{role}"))
            .policy_name("wsstack")
            .send()
            .await
            .unwrap();
        let text = urlencoding::decode(&policy.policy_document).unwrap().into_owned();
        let connections = format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/dev/POST/@connections/*");
        assert!(text.contains(&connections), "{role}: {text}");
        assert!(text.contains("execute-api:ManageConnections"), "{role}: {text}");
    }
}

#[tokio::test]
async fn plan_predicts_exactly_the_changes_up_then_makes() {
    let env = Env::start().await;
    let base = env.write_stack("base.yaml", &stack_text("pl", &[("  - unsubscribe\n", "")]));
    assert_eq!(env.run(&base, &["up"]).await.code, 0);
    let plan = env.run(&base, &["plan"]).await.expect_exit(0);
    plan.expect_stdout("no changes");

    // Memory, batch size, a route added.
    let changed = env.write_stack(
        "changed.yaml",
        &stack_text(
            "pl",
            &[
                ("memory_mb: 256", "memory_mb: 1024"),
                ("push_batch_size: 10", "push_batch_size: 5"),
            ],
        ),
    );
    env.proxy.clear();
    let plan = env.run(&changed, &["plan", "-o", "json"]).await.expect_exit(3);
    assert!(env.proxy.writes().is_empty(), "plan is read-only");
    let predicted: Vec<(String, String)> = plan.json()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] != "unchanged")
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                r["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut expected: Vec<(String, String)> = ["connect", "disconnect", "subscribe", "resume", "push"]
        .iter()
        .map(|h| (format!("function/{h}"), "update".to_string()))
        .collect();
    for key in [
        "role-policy/routes",
        "log-group/unsubscribe",
        "function/unsubscribe",
        "permission/unsubscribe",
        "route/unsubscribe",
        "route-response/unsubscribe",
    ] {
        expected.push((
            key.to_string(),
            if key == "role-policy/routes" {
                "update"
            } else {
                "create"
            }
            .to_string(),
        ));
    }
    expected.push(("event-source".into(), "update".into()));
    let mut sorted_predicted = predicted.clone();
    sorted_predicted.sort();
    expected.sort();
    assert_eq!(sorted_predicted, expected, "{plan}");

    let run = env.run(&changed, &["up", "-o", "json"]).await.expect_exit(0);
    let changed_keys: Vec<(String, String)> = run.json()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] != "unchanged")
        .map(|r| {
            let action = match r["state"].as_str().unwrap() {
                "created" => "create",
                "updated" => "update",
                "deleted" => "delete",
                other => panic!("unexpected {other}"),
            };
            (r["key"].as_str().unwrap().to_string(), action.to_string())
        })
        .collect();
    let mut changed_sorted = changed_keys;
    changed_sorted.sort();
    assert_eq!(changed_sorted, expected, "up did what plan said:\n{run}");
    let writes: Vec<String> = env.proxy.writes().iter().map(|c| c.operation.clone()).collect();
    assert!(
        !writes.iter().any(|w| w.contains("/code")),
        "unchanged code is not uploaded: {writes:?}"
    );

    let function = env
        .lambda()
        .get_function_configuration()
        .function_name("pl-dev-push")
        .send()
        .await
        .unwrap();
    assert_eq!(function.memory_size(), Some(1024));
    let events = env.event_source_mapping("pl-dev-push", "pl-dev-events").await;
    assert_eq!(events.batch_size(), Some(5));
    let api = api_id(&env, "pl").await;
    let routes = env.apigateway().get_routes().api_id(&api).send().await.unwrap();
    assert_eq!(routes.items().len(), 5);

    // Remove a route: plan says delete for it, its route response, permission, function and log
    // group; up does it.
    let removed = env.write_stack(
        "removed.yaml",
        &stack_text(
            "pl",
            &[
                ("memory_mb: 256", "memory_mb: 1024"),
                ("push_batch_size: 10", "push_batch_size: 5"),
                ("  - subscribe\n", ""),
            ],
        ),
    );
    let plan = env.run(&removed, &["plan", "-o", "json"]).await.expect_exit(3);
    let mut deletes: Vec<String> = plan.json()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "delete")
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect();
    deletes.sort();
    assert_eq!(
        deletes,
        vec![
            "retired/function/subscribe",
            "retired/log-group/subscribe",
            "retired/permission/subscribe",
            "retired/route-response/subscribe",
            "retired/route/subscribe"
        ]
    );
    let run = env.run(&removed, &["up", "-o", "json"]).await.expect_exit(0);
    let (_, _, deleted, _) = counts(&run);
    assert_eq!(deleted, 5, "{run}");
    let routes = env.apigateway().get_routes().api_id(&api).send().await.unwrap();
    let keys: Vec<&str> = routes.items().iter().filter_map(|r| r.route_key()).collect();
    assert!(!keys.contains(&"subscribe"), "{keys:?}");
    assert_eq!(keys.len(), 4);
    let gone = env
        .lambda()
        .get_function()
        .function_name("pl-dev-subscribe")
        .send()
        .await;
    assert!(gone.is_err(), "the removed route's function is gone");
    let integrations = env.apigateway().get_integrations().api_id(&api).send().await.unwrap();
    assert_eq!(integrations.items().len(), 4, "its integration too");
    env.run(&removed, &["plan"]).await.expect_exit(0);
}

#[tokio::test]
async fn drift_made_by_hand_is_reported_and_repaired() {
    let (env, stack) = Env::with_stack("drift").await;
    assert_eq!(env.run(&stack, &["up"]).await.code, 0);
    let api = api_id(&env, "drift").await;

    env.lambda()
        .update_function_configuration()
        .function_name("drift-dev-connect")
        .memory_size(1769)
        .send()
        .await
        .unwrap();
    env.delete_route(&api, "subscribe").await;

    let status = env.run(&stack, &["status", "-o", "json"]).await.expect_exit(3);
    let report = status.json();
    let resources = report["resources"].as_array().unwrap();
    let function = resources.iter().find(|r| r["key"] == "function/connect").unwrap();
    assert_eq!(function["state"], "drifted");
    assert_eq!(function["details"][0]["field"], "memory");
    assert_eq!(function["details"][0]["current"], "1769");
    let route = resources.iter().find(|r| r["key"] == "route/subscribe").unwrap();
    assert_eq!(route["state"], "drifted", "{route}");
    // The route response went with the route.
    let response = resources
        .iter()
        .find(|r| r["key"] == "route-response/subscribe")
        .unwrap();
    assert_eq!(response["state"], "missing", "{response}");
    let drifted = resources.iter().filter(|r| r["state"] != "present").count();
    assert_eq!(drifted, 3, "{status}");

    let run = env.run(&stack, &["up", "-o", "json"]).await;
    assert_eq!(counts(&run), (1, 2, 0, STACK_RESOURCES as u64 - 3), "{run}");
    assert_eq!(env.run(&stack, &["status"]).await.code, 0);
    let config = env
        .lambda()
        .get_function_configuration()
        .function_name("drift-dev-connect")
        .send()
        .await
        .unwrap();
    assert_eq!(config.memory_size(), Some(256));
}

#[tokio::test]
async fn up_converges_through_iam_propagation_errors() {
    let (env, stack) = Env::with_stack("iam").await;
    // What real AWS answers for seconds after a role or its policy is created.
    env.proxy.inject(Fault::new(
        "lambda",
        "POST /2015-03-31/functions",
        4,
        400,
        "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda.",
    ));
    env.proxy.inject(Fault::new(
        "lambda",
        "POST /2015-03-31/event-source-mappings",
        2,
        400,
        "InvalidParameterValueException",
        "The provided execution role does not have permissions to call ReceiveMessage on SQS",
    ));
    let run = env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(
        env.proxy.pending_faults(),
        0,
        "every injected error was met and retried"
    );
    assert_eq!(counts(&run).0, STACK_RESOURCES as u64);
    let injected = env.proxy.calls().iter().filter(|c| c.injected.is_some()).count();
    assert_eq!(injected, 6);
    assert_eq!(env.run(&stack, &["status"]).await.code, 0);
}

#[tokio::test]
async fn an_up_killed_part_way_converges_on_the_next_run_without_duplicates() {
    let (env, stack) = Env::with_stack("kill").await;
    // A slower AWS, so that a kill lands in the middle of the run.
    env.proxy.set_latency(Duration::from_millis(15));
    for kill_after_ms in [150u64, 400, 700, 1100] {
        let mut child = env.command(&stack, &["up", "-q"]).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let run = env.run(&stack, &["up", "-o", "json"]).await;
        assert_eq!(run.code, 0, "after a kill at {kill_after_ms} ms: {run}");
        assert_eq!(
            apis_of(&env, "kill").await.len(),
            1,
            "one API after a kill at {kill_after_ms} ms"
        );
        assert_eq!(env.run(&stack, &["status"]).await.code, 0);
        env.run(&stack, &["down", "--yes"]).await.expect_exit(0);
        assert_eq!(leftovers(&env, "kill").await, Vec::<String>::new());
    }
    // And a down killed part-way: the next down finishes the job.
    assert_eq!(env.run(&stack, &["up", "-q"]).await.code, 0);
    let mut child = env.command(&stack, &["down", "--yes", "-q"]).spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(env.run(&stack, &["down", "--yes"]).await.code, 0);
    assert_eq!(leftovers(&env, "kill").await, Vec::<String>::new());
}
