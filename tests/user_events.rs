//! The event path of user notifications against moto, through the real binary: a stack whose rule
//! still matches entity updates only (as stacks made before user notifications do) is shown the
//! pattern diff by `plan` and updated in place by `up` (also while another stage's rule of that
//! era overlaps it); the push handler is told both detail-types;
//! `send-event --user-id` puts an event the rule carries into the queue.

mod common;

use common::{json_of, stack_text, Env, REGION, USER_NOTIFICATION};
use serde_json::{json, Value};

#[tokio::test]
async fn an_older_rule_gets_the_user_detail_type_in_place() {
    let (env, stack) = Env::with_stack("older").await;
    env.run(&stack, &["up"]).await.expect_exit(0);

    // The rule as a stack made before user notifications has it.
    let rule = env.rule("older-dev-entity-updated").await;
    env.events()
        .put_rule()
        .name("older-dev-entity-updated")
        .event_pattern(json!({"detail-type": ["Entity Updated"]}).to_string())
        .description("wsstack older/dev: Entity Updated events to the push queue")
        .set_state(rule.state)
        .send()
        .await
        .unwrap();
    // Stage `prod`'s rule of the same era, which takes dev's events (no source): narrowing dev's
    // rule is not refused for an overlap that is already there, or neither stage could be brought
    // up to date first.
    env.events()
        .put_rule()
        .name("older-prod-entity-updated")
        .event_pattern(json!({"detail-type": ["Entity Updated", "Send User Push Notification"]}).to_string())
        .tags(
            aws_sdk_eventbridge::types::Tag::builder()
                .key("wsstack:stack")
                .value("older")
                .build()
                .unwrap(),
        )
        .tags(
            aws_sdk_eventbridge::types::Tag::builder()
                .key("wsstack:stage")
                .value("prod")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let plan = env.run(&stack, &["plan", "-o", "json"]).await.expect_exit(3);
    let plan = plan.json();
    let changes: Vec<&Value> = plan["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] != "unchanged")
        .collect();
    assert_eq!(changes.len(), 1, "only the rule: {changes:?}");
    assert_eq!(changes[0]["name"], "older-dev-entity-updated");
    assert_eq!(changes[0]["action"], "update");
    let pattern = changes[0]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|diff| diff["field"] == "event pattern")
        .expect("an event pattern diff");
    assert_eq!(
        json_of(pattern["current"].as_str().unwrap()),
        json!({"detail-type": ["Entity Updated"]})
    );
    assert_eq!(
        json_of(pattern["desired"].as_str().unwrap()),
        json!({"source": ["wsstack.older.dev"], "detail-type": ["Entity Updated", "Send User Push Notification"]})
    );

    env.proxy.clear();
    env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    let writes: Vec<String> = env.proxy.writes().iter().map(|c| c.operation.clone()).collect();
    assert_eq!(writes, ["PutRule"], "updated in place, nothing else written");
    let rule = env.rule("older-dev-entity-updated").await;
    assert_eq!(
        json_of(rule.event_pattern().unwrap()),
        json!({"source": ["wsstack.older.dev"], "detail-type": ["Entity Updated", "Send User Push Notification"]})
    );

    env.proxy.clear();
    let run = env.run(&stack, &["up"]).await;
    run.expect_stdout("no changes");
    assert!(env.proxy.writes().is_empty(), "converged");
}

#[tokio::test]
async fn send_event_with_a_user_id_reaches_the_queue_as_a_user_notification() {
    let env = Env::start().await;
    let stack = env.write_stack(
        "stack.yaml",
        &stack_text(
            "notify",
            &[(
                "user_detail_type: Send User Push Notification",
                "user_detail_type: Notify Customer",
            )],
        ),
    );
    assert_eq!(env.run(&stack, &["up"]).await.code, 0);

    let configuration = env
        .lambda()
        .get_function_configuration()
        .function_name("notify-dev-push")
        .send()
        .await
        .unwrap();
    let variables = configuration.environment().unwrap().variables().unwrap();
    assert_eq!(variables["ENTITY_DETAIL_TYPE"], "Entity Updated");
    assert_eq!(variables["USER_DETAIL_TYPE"], "Notify Customer");

    let run = env
        .run(
            &stack,
            &[&["send-event"][..], &USER_NOTIFICATION, &["-o", "json"]].concat(),
        )
        .await;
    assert_eq!(run.code, 0, "{run}");
    // This stack has no `auth:`: no connection is a user's, and the sender is told.
    run.expect_stderr("no `auth:`");
    assert_eq!(run.json()["detail_type"], "Notify Customer");

    let envelope = env.only_message("notify-dev-events").await;
    assert_eq!(envelope["detail-type"], "Notify Customer");
    assert_eq!(envelope["region"], REGION);
    assert_eq!(
        envelope["detail"],
        json!({"userId": "alice", "message": "Your order shipped", "callback": "orders/42"})
    );

    for (args, complaint) in [
        (&["send-event", "--message", "m"][..], "--entity-id"),
        (
            &["send-event", "--user-id", "a", "--entity-id", "e", "--message", "m"][..],
            "cannot be used with",
        ),
        (&["send-event", "--entity-id", "e", "--callback", "c"][..], "--user-id"),
        (
            &["send-event", "--user-id", "", "--message", "m"][..],
            "--user-id must not be empty",
        ),
    ] {
        let run = env.run(&stack, args).await;
        assert_eq!(run.code, 2, "{args:?}: {run}");
        assert!(run.stderr.contains(complaint), "{args:?}: {run}");
    }
}
