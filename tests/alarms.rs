//! The dead-letter alarm on AWS: the stack's SNS topic, the CloudWatch alarm on the DLQ and the
//! `alarms: {email}` subscription; created, found again, changed in place, repaired after a hand
//! deletion and removed by `down`, with a no-op `up` writing nothing. The real binary against
//! moto, every effect read back through the SDK.

mod common;

use std::collections::BTreeMap;

use common::{counts, leftovers, stack_text, Env, ACCOUNT, REGION, STACK_RESOURCES};

const TOPIC: &str = "al-dev-alarms";
const ALARM: &str = "al-dev-events-dlq-not-empty";

fn topic_arn() -> String {
    format!("arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC}")
}

fn with_email(email: &str) -> String {
    format!("{}\nalarms:\n  email: {email}\n", stack_text("al", &[]))
}

async fn alarm(env: &Env) -> Option<aws_sdk_cloudwatch::types::MetricAlarm> {
    let answer = env
        .cloudwatch()
        .describe_alarms()
        .alarm_names(ALARM)
        .send()
        .await
        .unwrap();
    answer.metric_alarms().first().cloned()
}

async fn alarm_tags(env: &Env) -> BTreeMap<String, String> {
    let arn = format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{ALARM}");
    let call = env.cloudwatch().list_tags_for_resource().resource_arn(arn);
    let tags = call.send().await.unwrap().tags.unwrap_or_default();
    tags.into_iter().map(|t| (t.key.unwrap(), t.value.unwrap())).collect()
}

async fn topic_tags(env: &Env) -> BTreeMap<String, String> {
    let call = env.sns().list_tags_for_resource().resource_arn(topic_arn());
    let tags = call.send().await.unwrap().tags.unwrap_or_default();
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}

/// (protocol, endpoint) of every subscription of the topic.
async fn subscriptions(env: &Env) -> Vec<(String, String)> {
    let answer = env
        .sns()
        .list_subscriptions_by_topic()
        .topic_arn(topic_arn())
        .send()
        .await
        .unwrap();
    let mut found: Vec<(String, String)> = answer
        .subscriptions()
        .iter()
        .map(|s| {
            (
                s.protocol().unwrap_or_default().to_string(),
                s.endpoint().unwrap_or_default().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

fn state_of<'a>(run: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    run["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {run}"))
}

#[tokio::test]
async fn topic_alarm_and_email_live_through_up_changes_repairs_and_down() {
    let env = Env::start().await;
    let stack = env.write_stack("stack.yaml", &with_email("ops@example.com"));
    let run = env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(counts(&run), (STACK_RESOURCES as u64, 0, 0, 0), "{run}");
    assert_eq!(run.json()["outputs"]["alarm_topic_arn"], topic_arn(), "{run}");

    // The topic, tagged, with the email subscribed.
    let tags = topic_tags(&env).await;
    assert_eq!(tags["wsstack:stack"], "al");
    assert_eq!(tags["wsstack:stage"], "dev");
    assert_eq!(
        subscriptions(&env).await,
        [("email".to_string(), "ops@example.com".to_string())]
    );

    // The alarm: the DLQ's visible messages, at least 1 in one minute, notifying the topic.
    let created = alarm(&env).await.expect("the dead-letter alarm");
    assert_eq!(created.namespace(), Some("AWS/SQS"));
    assert_eq!(created.metric_name(), Some("ApproximateNumberOfMessagesVisible"));
    let dimensions: Vec<(&str, &str)> = created
        .dimensions()
        .iter()
        .map(|d| (d.name().unwrap(), d.value().unwrap()))
        .collect();
    assert_eq!(dimensions, [("QueueName", "al-dev-events-dlq")]);
    assert_eq!(created.statistic().map(|s| s.as_str()), Some("Maximum"));
    assert_eq!(created.period(), Some(60));
    assert_eq!(created.evaluation_periods(), Some(1));
    assert_eq!(created.threshold(), Some(1.0));
    assert_eq!(
        created.comparison_operator().map(|c| c.as_str()),
        Some("GreaterThanOrEqualToThreshold")
    );
    assert_eq!(created.treat_missing_data(), Some("notBreaching"));
    assert_eq!(created.alarm_actions(), [topic_arn()]);
    assert_eq!(created.ok_actions(), [topic_arn()]);
    assert_eq!(alarm_tags(&env).await["wsstack:stack"], "al");

    // A second up writes nothing; status lists both as present, with the alarm's state and the
    // email in its live numbers.
    env.proxy.clear();
    let again = env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(counts(&again), (0, 0, 0, STACK_RESOURCES as u64), "{again}");
    assert!(env.proxy.writes().is_empty(), "{:?}", env.writes());
    let status = env.run(&stack, &["status", "-o", "json"]).await.expect_exit(0);
    let report = status.json();
    assert_eq!(state_of(&report, "topic")["state"], "present", "{status}");
    assert_eq!(state_of(&report, "alarm/dead-letter")["state"], "present", "{status}");
    assert!(report["live"]["dead_letter_alarm"].is_string(), "{status}");
    assert_eq!(
        report["live"]["alarm_emails"],
        serde_json::json!([{"address": "ops@example.com", "pending_confirmation": false, "in_stack_file": true}]),
        "{status}"
    );
    let text = env.run(&stack, &["status"]).await;
    text.expect_stdout("dead-letter alarm");
    text.expect_stdout("ops@example.com (confirmed)");

    // Another address: the old one is unsubscribed, the topic updated in place.
    let changed = env.write_stack("stack.yaml", &with_email("oncall@example.com"));
    let plan = env.run(&changed, &["plan"]).await.expect_exit(3);
    plan.expect_stdout("email subscription: ops@example.com -> oncall@example.com");
    env.proxy.clear();
    let run = env.run(&changed, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(counts(&run), (0, 1, 0, STACK_RESOURCES as u64 - 1), "{run}");
    assert_eq!(
        subscriptions(&env).await,
        [("email".to_string(), "oncall@example.com".to_string())]
    );
    assert!(
        !env.writes()
            .iter()
            .any(|w| w.contains("CreateTopic") || w.contains("DeleteTopic")),
        "{:?}",
        env.writes()
    );

    // A subscription of another protocol is someone else's and stays; without `alarms:` the
    // email goes, the topic and the alarm stay.
    let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:al-dev-events");
    env.sns()
        .subscribe()
        .topic_arn(topic_arn())
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .unwrap();
    let without = env.write_stack("stack.yaml", &stack_text("al", &[]));
    let run = env.run(&without, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(counts(&run), (0, 1, 0, STACK_RESOURCES as u64 - 1), "{run}");
    assert_eq!(subscriptions(&env).await, [("sqs".to_string(), queue_arn)]);
    assert!(alarm(&env).await.is_some());

    // The alarm changed by hand (threshold, no OK action) and its tags changed in the stack
    // file: status shows the drift, up rewrites the alarm in place and retags it.
    let put = env
        .cloudwatch()
        .put_metric_alarm()
        .alarm_name(ALARM)
        .namespace("AWS/SQS")
        .metric_name("ApproximateNumberOfMessagesVisible")
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("QueueName")
                .value("al-dev-events-dlq")
                .build(),
        )
        .statistic(aws_sdk_cloudwatch::types::Statistic::Maximum)
        .period(60)
        .evaluation_periods(1)
        .threshold(5.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold)
        .alarm_actions(topic_arn());
    put.send().await.unwrap();
    let retagged = env.write_stack(
        "stack.yaml",
        &stack_text("al", &[]).replace("project: wsstack-demo", "project: other"),
    );
    let status = env.run(&retagged, &["status", "-o", "json"]).await.expect_exit(3);
    let report = status.json();
    let drift = state_of(&report, "alarm/dead-letter");
    assert_eq!(drift["state"], "drifted", "{status}");
    let fields: Vec<&str> = drift["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for field in ["threshold", "OK actions", "tags"] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    env.proxy.clear();
    env.run(&retagged, &["up", "-o", "json"]).await.expect_exit(0);
    let repaired = alarm(&env).await.unwrap();
    assert_eq!(repaired.threshold(), Some(1.0));
    assert_eq!(repaired.ok_actions(), [topic_arn()]);
    assert_eq!(alarm_tags(&env).await["project"], "other");
    assert_eq!(topic_tags(&env).await["project"], "other");
    let made = env.writes();
    assert!(
        !made
            .iter()
            .any(|w| w.contains("DeleteAlarms") || w.contains("CreateTopic")),
        "updated in place: {made:?}"
    );
    assert_eq!(env.run(&retagged, &["status"]).await.code, 0);

    // Half deleted by hand: status says missing, up makes it again, down removes everything.
    env.cloudwatch()
        .delete_alarms()
        .alarm_names(ALARM)
        .send()
        .await
        .unwrap();
    let status = env.run(&retagged, &["status", "-o", "json"]).await.expect_exit(3);
    assert_eq!(state_of(&status.json(), "alarm/dead-letter")["state"], "missing");
    let run = env.run(&retagged, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(counts(&run), (1, 0, 0, STACK_RESOURCES as u64 - 1), "{run}");
    assert!(alarm(&env).await.is_some());
    env.run(&retagged, &["down", "--yes"]).await.expect_exit(0);
    assert_eq!(leftovers(&env, "al").await, Vec::<String>::new());
    assert!(alarm(&env).await.is_none());
    let topics = env.sns().list_topics().send().await.unwrap();
    assert!(topics.topics().is_empty(), "{topics:?}");
}

/// A topic with our name that is not this stack's is refused by `up` and left alone by `down`.
#[tokio::test]
async fn someone_elses_topic_is_never_touched() {
    let (env, stack) = Env::with_stack("al").await;
    env.sns()
        .create_topic()
        .name(TOPIC)
        .tags(
            aws_sdk_sns::types::Tag::builder()
                .key("team")
                .value("other")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let run = env.run(&stack, &["up"]).await.expect_exit(1);
    run.expect_stderr("SNS topic al-dev-alarms exists but is not tagged wsstack:stack=al");
    assert!(alarm(&env).await.is_none(), "the alarm waits for its topic");
    env.run(&stack, &["down", "--yes"]).await.expect_exit(0);
    assert_eq!(topic_tags(&env).await["team"], "other");
}
