//! `up`, `down`, `status` and `send-event` for the event path (IAM roles, DynamoDB table, SQS
//! queue and dead-letter queue, EventBridge rule), run as the real binary against moto, with every
//! effect read back through the SDK rather than through wsstack's own code.

mod common;

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName;
use common::{counts, json_of, leftovers, stack_text, Env, ACCOUNT, REGION, STACK_RESOURCES};
use serde_json::json;
use testkit::Fault;

async fn queue_attributes(env: &Env, name: &str) -> HashMap<String, String> {
    env.sqs()
        .get_queue_attributes()
        .queue_url(env.queue_url(name))
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_string(), v))
        .collect()
}

async fn queue_tags(env: &Env, name: &str) -> HashMap<String, String> {
    env.sqs()
        .list_queue_tags()
        .queue_url(env.queue_url(name))
        .send()
        .await
        .unwrap()
        .tags
        .unwrap_or_default()
}

#[tokio::test]
async fn cold_up_creates_every_resource_with_the_right_settings() {
    let (env, stack) = Env::with_stack("cold").await;
    let run = env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(counts(&run), (STACK_RESOURCES as u64, 0, 0, 0), "{run}");

    // IAM: both roles, trusted by Lambda, with policies scoped to this stack's ARNs.
    let table_arn = format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/cold-dev-connections");
    for (role, must_mention) in [
        ("cold-dev-us-east-1-routes", vec![table_arn.clone()]),
        (
            "cold-dev-us-east-1-push",
            vec![
                format!("{table_arn}/index/GSI1"),
                format!("{table_arn}/index/GSI2"),
                format!("arn:aws:sqs:{REGION}:{ACCOUNT}:cold-dev-events"),
                format!("arn:aws:sqs:{REGION}:{ACCOUNT}:cold-dev-chunks"),
            ],
        ),
    ] {
        let got = env.iam().get_role().role_name(role).send().await.unwrap().role.unwrap();
        let trust = urlencoding::decode(got.assume_role_policy_document().unwrap())
            .unwrap()
            .into_owned();
        assert!(trust.contains("lambda.amazonaws.com"), "{trust}");
        let policy = env
            .iam()
            .get_role_policy()
            .role_name(role)
            .policy_name("wsstack")
            .send()
            .await
            .unwrap();
        let policy = json_of(&urlencoding::decode(&policy.policy_document).unwrap());
        let text = policy.to_string();
        assert!(!text.contains("\"*\""), "no wildcard resources: {text}");
        for arn in must_mention {
            assert!(text.contains(&arn), "{role} policy lacks {arn}: {text}");
        }
        let tags = env.iam().list_role_tags().role_name(role).send().await.unwrap();
        assert!(tags
            .tags()
            .iter()
            .any(|t| t.key == "wsstack:stack" && t.value == "cold"));
    }

    // DynamoDB: keys, index, on-demand, TTL, tags.
    let table = env.table("cold-dev-connections").await;
    let keys: Vec<(String, String)> = table
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name().to_string(), k.key_type().as_str().to_string()))
        .collect();
    assert_eq!(keys, vec![("pk".into(), "HASH".into()), ("sk".into(), "RANGE".into())]);
    let index = &table.global_secondary_indexes()[0];
    assert_eq!(index.index_name(), Some("GSI1"));
    assert_eq!(index.key_schema()[0].attribute_name(), "GSI1PK");
    assert_eq!(index.key_schema()[1].attribute_name(), "GSI1SK");
    assert_eq!(index.projection().unwrap().projection_type().unwrap().as_str(), "ALL");
    assert_eq!(
        table.billing_mode_summary().unwrap().billing_mode().unwrap().as_str(),
        "PAY_PER_REQUEST"
    );
    let ttl = env
        .dynamodb()
        .describe_time_to_live()
        .table_name("cold-dev-connections")
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description.unwrap();
    assert_eq!(ttl.attribute_name(), Some("ttl"));
    assert_eq!(ttl.time_to_live_status().unwrap().as_str(), "ENABLED");
    let call = env.dynamodb().list_tags_of_resource().resource_arn(&table_arn);
    let tags = call.send().await.unwrap().tags.unwrap_or_default();
    assert!(tags.iter().any(|t| t.key == "project" && t.value == "wsstack-demo"));

    // SQS: the queue's settings, redrive to the dead-letter queue, a policy for this rule only.
    let queue = queue_attributes(&env, "cold-dev-events").await;
    assert_eq!(queue["VisibilityTimeout"], "60");
    assert_eq!(queue["MessageRetentionPeriod"], "345600");
    assert_eq!(queue["ReceiveMessageWaitTimeSeconds"], "20");
    let redrive = json_of(&queue["RedrivePolicy"]);
    assert_eq!(
        redrive["deadLetterTargetArn"],
        format!("arn:aws:sqs:{REGION}:{ACCOUNT}:cold-dev-events-dlq")
    );
    assert_eq!(redrive["maxReceiveCount"].to_string().trim_matches('"'), "5");
    let policy = json_of(&queue["Policy"]);
    let statement = &policy["Statement"][0];
    assert_eq!(statement["Principal"]["Service"], "events.amazonaws.com");
    assert_eq!(
        statement["Condition"]["ArnEquals"]["aws:SourceArn"],
        format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/cold-dev-entity-updated")
    );
    // The chunk queue: the events queue's timings and dead-letter queue, no queue policy (only the
    // push role sends to it, by its IAM policy).
    let chunk_queue = queue_attributes(&env, "cold-dev-chunks").await;
    for attribute in [
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "RedrivePolicy",
    ] {
        assert_eq!(chunk_queue[attribute], queue[attribute], "{attribute}");
    }
    assert!(!chunk_queue.contains_key("Policy"), "{chunk_queue:?}");
    assert_eq!(queue_tags(&env, "cold-dev-chunks").await["wsstack:stage"], "dev");
    let dead_letter = queue_attributes(&env, "cold-dev-events-dlq").await;
    assert_eq!(dead_letter["MessageRetentionPeriod"], "1209600");
    assert_eq!(queue_tags(&env, "cold-dev-events-dlq").await["wsstack:stage"], "dev");

    // The API's own endpoint takes IPv4 clients, API Gateway's default.
    let api = common::apis_of(&env, "cold").await.remove(0);
    assert_eq!(api.ip_address_type().map(|t| t.as_str()), Some("ipv4"));

    // EventBridge: the pattern and the queue as the one target.
    let rule = env.rule("cold-dev-entity-updated").await;
    assert_eq!(
        json_of(rule.event_pattern().unwrap()),
        json!({"source": ["wsstack.cold.dev"], "detail-type": ["Entity Updated", "Send User Push Notification"]})
    );
    assert_eq!(rule.state().unwrap().as_str(), "ENABLED");
    let targets = env
        .events()
        .list_targets_by_rule()
        .rule("cold-dev-entity-updated")
        .send()
        .await
        .unwrap();
    let arns: Vec<&str> = targets.targets().iter().map(|t| t.arn()).collect();
    assert_eq!(
        arns,
        vec![format!("arn:aws:sqs:{REGION}:{ACCOUNT}:cold-dev-events").as_str()]
    );
}

#[tokio::test]
async fn a_second_up_with_nothing_changed_makes_no_write_call() {
    let (env, stack) = Env::with_stack("noop").await;
    env.run(&stack, &["up"]).await.expect_exit(0);
    let cold_writes = env.proxy.writes().len();
    assert!(cold_writes >= 8, "a cold up writes (saw {cold_writes})");

    env.proxy.clear();
    let run = env.run(&stack, &["up"]).await.expect_exit(0);
    run.expect_stdout("no changes");
    let calls = env.proxy.calls();
    assert!(
        calls.len() > 6,
        "the no-op up still reads every resource ({} calls)",
        calls.len()
    );
    let writes: Vec<String> = env
        .proxy
        .writes()
        .iter()
        .map(|c| format!("{} {}", c.service, c.operation))
        .collect();
    assert!(writes.is_empty(), "no-op up wrote: {writes:?}");
}

#[tokio::test]
async fn changed_settings_are_updated_in_place() {
    let (env, stack) = Env::with_stack("change").await;
    assert_eq!(env.run(&stack, &["up"]).await.code, 0);

    let changed = env.write_stack(
        "changed.yaml",
        &stack_text(
            "change",
            &[
                ("visibility_timeout_seconds: 60", "visibility_timeout_seconds: 120"),
                ("max_receive_count: 5", "max_receive_count: 3"),
                ("# source: orders.service", "source: orders.service"),
                ("project: wsstack-demo", "project: renamed\n  team: notifications"),
                ("# ip_address_type: ipv4", "ip_address_type: dualstack"),
            ],
        ),
    );
    env.proxy.clear();
    let run = env.run(&changed, &["up", "-o", "json"]).await.expect_exit(0);
    let (created, updated, deleted, _) = counts(&run);
    assert_eq!((created, deleted), (0, 0), "{run}");
    assert!(updated >= 6, "{run}");
    let writes: Vec<String> = env.proxy.writes().iter().map(|c| c.operation.clone()).collect();
    assert!(
        writes
            .iter()
            .all(|op| !op.starts_with("Create") && !op.starts_with("Delete")),
        "in place means no create or delete: {writes:?}"
    );

    let queue = queue_attributes(&env, "change-dev-events").await;
    assert_eq!(queue["VisibilityTimeout"], "120");
    assert_eq!(
        json_of(&queue["RedrivePolicy"])["maxReceiveCount"]
            .to_string()
            .trim_matches('"'),
        "3"
    );
    assert!(
        queue.contains_key("Policy"),
        "the queue policy survives an attribute update"
    );
    let tags = queue_tags(&env, "change-dev-events").await;
    assert_eq!(tags["project"], "renamed");
    assert_eq!(tags["team"], "notifications");
    let rule = env.rule("change-dev-entity-updated").await;
    assert_eq!(
        json_of(rule.event_pattern().unwrap()),
        json!({"detail-type": ["Entity Updated", "Send User Push Notification"], "source": ["orders.service"]})
    );
    let api = common::apis_of(&env, "change").await.remove(0);
    assert_eq!(api.ip_address_type().map(|t| t.as_str()), Some("dualstack"));

    // Converged: the next run changes nothing.
    env.proxy.clear();
    let run = env.run(&changed, &["up"]).await;
    run.expect_stdout("no changes");
    assert!(env.proxy.writes().is_empty());
}

#[tokio::test]
async fn status_reports_missing_present_and_drifted_with_exit_codes() {
    let (env, stack) = Env::with_stack("stat").await;
    let run = env.run(&stack, &["status", "-o", "json"]).await.expect_exit(3);
    let states: Vec<String> = run.json()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, vec!["missing"; STACK_RESOURCES]);

    assert_eq!(env.run(&stack, &["up"]).await.code, 0);
    let run = env.run(&stack, &["status"]).await.expect_exit(0);
    run.expect_stdout("in sync");

    // Drift by hand: visibility timeout changed, a tag removed.
    let sqs = env.sqs();
    // The current Policy goes along: moto (unlike AWS) drops a Policy left out of the call.
    let policy = queue_attributes(&env, "stat-dev-events").await["Policy"].clone();
    sqs.set_queue_attributes()
        .queue_url(env.queue_url("stat-dev-events"))
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .attributes(QueueAttributeName::Policy, policy)
        .send()
        .await
        .unwrap();
    sqs.untag_queue()
        .queue_url(env.queue_url("stat-dev-events-dlq"))
        .tag_keys("project")
        .send()
        .await
        .unwrap();
    let run = env.run(&stack, &["status", "-o", "json"]).await.expect_exit(3);
    let report = run.json();
    assert_eq!(report["in_sync"], false);
    let resources = report["resources"].as_array().unwrap();
    let queue = resources.iter().find(|r| r["name"] == "stat-dev-events").unwrap();
    assert_eq!(queue["state"], "drifted");
    assert_eq!(
        queue["details"],
        json!([{"field": "VisibilityTimeout", "current": "30", "desired": "60"}])
    );
    let dead_letter = resources.iter().find(|r| r["name"] == "stat-dev-events-dlq").unwrap();
    assert_eq!(dead_letter["details"][0]["field"], "tags");

    // up repairs the drift, status is clean again.
    let run = env.run(&stack, &["up", "-o", "json"]).await;
    assert_eq!(counts(&run), (0, 2, 0, STACK_RESOURCES as u64 - 2), "{run}");
    assert_eq!(env.run(&stack, &["status"]).await.code, 0);
}

#[tokio::test]
async fn down_removes_everything_and_is_idempotent() {
    let (env, stack) = Env::with_stack("gone").await;
    assert_eq!(env.run(&stack, &["up"]).await.code, 0);
    assert_eq!(
        leftovers(&env, "gone").await.len(),
        25,
        "resources that are listable by themselves"
    );

    let refused = env.run(&stack, &["down"]).await.expect_exit(2);
    refused.expect_stderr("--yes");
    assert_eq!(
        leftovers(&env, "gone").await.len(),
        25,
        "a refused down deletes nothing"
    );

    let run = env.run(&stack, &["down", "--yes"]).await.expect_exit(0);
    run.expect_stdout(&format!("summary: {STACK_RESOURCES} deleted"));
    assert_eq!(leftovers(&env, "gone").await, Vec::<String>::new());

    let again = env.run(&stack, &["down", "--yes"]).await.expect_exit(0);
    again.expect_stdout("0 deleted");
}

#[tokio::test]
async fn a_failed_up_leaves_a_stack_that_up_repairs_and_down_removes() {
    let (env, stack) = Env::with_stack("half").await;
    // The events queue cannot be created (a non-retryable error, as for a denied permission):
    // the rule that depends on it is not attempted, everything else is created.
    env.proxy.inject(Fault::new(
        "sqs",
        "CreateQueue",
        1,
        400,
        "AccessDenied",
        "injected: not allowed",
    ));
    let run = env.run(&stack, &["up"]).await.expect_exit(1);
    run.expect_stderr("not attempted");
    let partial = leftovers(&env, "half").await;
    assert!(partial.len() >= 3 && partial.len() < 20, "{partial:?}");

    // down works on the half-built stack.
    env.run(&stack, &["down", "--yes"]).await.expect_exit(0);
    assert_eq!(leftovers(&env, "half").await, Vec::<String>::new());

    // And so does a re-run of a failed up.
    env.proxy.inject(Fault::new(
        "events",
        "PutRule",
        1,
        400,
        "AccessDeniedException",
        "injected: not allowed",
    ));
    assert_eq!(env.run(&stack, &["up"]).await.code, 1);
    let run = env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(counts(&run), (1, 0, 0, STACK_RESOURCES as u64 - 1), "{run}");
}

#[tokio::test]
async fn throttling_and_unavailability_are_retried() {
    let (env, stack) = Env::with_stack("retry").await;
    env.proxy.inject(Fault::new(
        "sqs",
        "CreateQueue",
        2,
        400,
        "ThrottlingException",
        "Rate exceeded",
    ));
    env.proxy.inject(Fault::new(
        "iam",
        "CreateRole",
        2,
        503,
        "ServiceUnavailable",
        "try again",
    ));
    env.proxy.inject(Fault::new(
        "dynamodb",
        "CreateTable",
        1,
        400,
        "ThrottlingException",
        "Rate exceeded",
    ));
    env.run(&stack, &["up"]).await.expect_exit(0);
    assert_eq!(env.proxy.pending_faults(), 0, "every fault was hit");
    assert_eq!(leftovers(&env, "retry").await.len(), 25);
}

#[tokio::test]
async fn a_resource_of_another_owner_is_never_touched() {
    let (env, stack) = Env::with_stack("owned").await;
    // Someone else's queue happens to have our derived name.
    env.sqs()
        .create_queue()
        .queue_name("owned-dev-events-dlq")
        .tags("team", "other")
        .send()
        .await
        .unwrap();
    let run = env.run(&stack, &["up"]).await.expect_exit(1);
    run.expect_stderr("owned-dev-events-dlq exists but is not tagged wsstack:stack=owned");

    let run = env.run(&stack, &["down", "--yes"]).await.expect_exit(0);
    run.expect_stdout("skipped");
    assert_eq!(
        leftovers(&env, "owned").await.len(),
        1,
        "only the foreign queue remains"
    );
    assert_eq!(queue_tags(&env, "owned-dev-events-dlq").await["team"], "other");
}

#[tokio::test]
async fn send_event_delivers_the_event_into_the_queue() {
    let (env, stack) = Env::with_stack("send").await;
    assert_eq!(env.run(&stack, &["up"]).await.code, 0);

    let run = env
        .run(
            &stack,
            &[
                "send-event",
                "--entity-id",
                "myTestEntityId",
                "--message",
                "Hello world",
                "-o",
                "json",
            ],
        )
        .await;
    assert_eq!(run.code, 0, "{run}");
    let event_id = run.json()["event_id"].as_str().unwrap().to_string();
    assert!(!event_id.is_empty());

    let envelope = env.only_message("send-dev-events").await;
    assert_eq!(envelope["detail-type"], "Entity Updated");
    assert_eq!(envelope["source"], "wsstack.send.dev");
    assert_eq!(envelope["id"], event_id);
    assert_eq!(
        envelope["detail"],
        json!({"entityId": "myTestEntityId", "message": "Hello world"})
    );

    let bad = env
        .run(
            &stack,
            &["send-event", "--entity-id", "e", "--detail", "{\"message\": "],
        )
        .await;
    assert_eq!(bad.code, 2, "{bad}");
    bad.expect_stderr("--detail is not valid JSON");
}

#[tokio::test]
async fn malformed_stack_files_exit_2_with_their_line_before_any_aws_call() {
    let env = Env::start().await;
    let cases: &[(&str, &str, &str)] = &[
        ("not yaml", "name: demo\nqueue: [\n", "stack.yaml:"),
        (
            "unknown top-level field",
            "name: demo\nstages: dev\n",
            "stack.yaml:2:1: unknown field `stages`",
        ),
        (
            "unknown nested field",
            "name: demo\nqueue:\n  visibility: 3\n",
            "stack.yaml:3:3: queue: unknown field `visibility`",
        ),
        (
            "wrong type",
            "name: demo\nhandlers:\n  memory_mb: lots\n",
            "stack.yaml:3:14: handlers.memory_mb: invalid type",
        ),
        ("missing name", "stage: dev\n", "missing field `name`"),
        (
            "bad name characters",
            "name: my_stack!\n",
            "stack.yaml:1:7: name: `my_stack!` is not a valid stack name",
        ),
        (
            "name too long",
            &format!("name: {}\n", "n".repeat(60)),
            "stack.yaml:1:7: name: the derived",
        ),
        (
            "memory out of range",
            "name: demo\nhandlers:\n  memory_mb: 64\n",
            "stack.yaml:3:14: handlers.memory_mb: 64 is out of range",
        ),
        (
            "timeout out of range",
            "name: demo\nhandlers:\n  timeout_seconds: 901\n",
            "stack.yaml:3:20: handlers.timeout_seconds",
        ),
        (
            "bad retention",
            "name: demo\nhandlers:\n  log_retention_days: 2\n",
            "stack.yaml:3:23: handlers.log_retention_days: 2 is not a retention",
        ),
        (
            "max receive count",
            "name: demo\nqueue:\n  dead_letter:\n    max_receive_count: 0\n",
            "stack.yaml:4:24: queue.dead_letter.max_receive_count",
        ),
        (
            "visibility below timeout",
            "name: demo\nqueue:\n  visibility_timeout_seconds: 5\n",
            "stack.yaml:3:31: queue.visibility_timeout_seconds: 5 s is below",
        ),
        (
            "unknown route",
            "name: demo\nroutes:\n  - subscribe\n  - broadcast\n",
            "stack.yaml:4:5: routes.1: unknown route `broadcast`",
        ),
        (
            "duplicate route",
            "name: demo\nroutes: [subscribe, subscribe]\n",
            "routes.1: route `subscribe` is listed twice",
        ),
        (
            "reserved tag",
            "name: demo\ntags:\n  aws:owner: me\n",
            "stack.yaml:3:14: tags.aws:owner: tag key `aws:owner` is reserved",
        ),
        (
            "bad region",
            "name: demo\nregion: mars\n",
            "stack.yaml:2:9: region: `mars` does not look like an AWS region",
        ),
        (
            "unknown architecture",
            "name: demo\nhandlers:\n  architecture: sparc\n",
            "stack.yaml:3:17: handlers.architecture: unknown variant `sparc`",
        ),
        ("empty file", "", "the stack file is empty"),
        (
            "source reserved",
            "name: demo\nevents:\n  source: aws.s3\n",
            "stack.yaml:3:11: events.source",
        ),
    ];
    for (what, text, expected) in cases {
        let stack = env.write_stack("stack.yaml", text);
        let run = env.run(&stack, &["up"]).await;
        assert_eq!(run.code, 2, "{what}: {run}");
        assert!(
            run.stderr.contains(expected),
            "{what}: expected `{expected}` in:\n{run}"
        );
    }
    let missing = env
        .run(&env.dir.path().join("nope.yaml"), &["status"])
        .await
        .expect_exit(2);
    missing.expect_stderr("nope.yaml: cannot read the stack file");
    env.expect_no_call("bad input makes no AWS call");
}

/// `down` on a terminal asks first: "n" keeps everything, "y" deletes. `script` gives the binary a
/// pseudo-terminal, as a person at a shell would.
#[tokio::test]
async fn down_on_a_terminal_asks_before_deleting() {
    let (env, stack) = Env::with_stack("ask").await;
    assert_eq!(env.run(&stack, &["up", "-q"]).await.code, 0);
    let before = leftovers(&env, "ask").await.len();
    for (answer, expect_left) in [("n", before), ("y", 0)] {
        let mut command = std::process::Command::new("script");
        let line = format!("{} -f {} down", common::wsstack_binary(), stack.display());
        command
            .args(["-qec", &line, "/dev/null"])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", env.proxy.endpoint())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let typed = format!("{answer}\n");
        let output = tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().expect("script (util-linux)");
            use std::io::Write;
            child.stdin.take().unwrap().write_all(typed.as_bytes()).unwrap();
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("Delete every resource of stack ask"), "{stdout}");
        assert_eq!(
            leftovers(&env, "ask").await.len(),
            expect_left,
            "after answering {answer:?}: {stdout}"
        );
    }
}
