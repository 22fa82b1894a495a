//! What the stack's events are, for the rule and the push handler: the source that addresses this
//! stack and stage, the rule's pattern over both detail-types, whether two rules' patterns can take
//! the same event, and the names the push handler tells them apart by. Pure: no AWS calls.

use serde_json::{json, Value};

use crate::stack::{Stack, DEFAULT_EVENT_SOURCE_PREFIX};

/// The event source that addresses this stack and stage: the file's `events.source`, else
/// `wsstack.{name}.{stage}`. `send-event` puts it on every event, and a producer must too.
pub fn event_source(stack: &Stack) -> String {
    stack
        .events
        .source
        .clone()
        .unwrap_or_else(|| format!("{DEFAULT_EVENT_SOURCE_PREFIX}.{}.{}", stack.name, stack.stage))
}

/// The rule's event pattern: the stack's source and its two detail-types, entity updates and user
/// notifications, on one rule to one queue. Always with the source: a pattern on the detail-types
/// alone would take every stage's events on the bus (stage `dev`'s `send-event` reaching `prod`).
pub fn event_pattern(stack: &Stack) -> Value {
    json!({
        "source": [event_source(stack)],
        "detail-type": [stack.events.detail_type, stack.events.user_detail_type],
    })
}

/// Whether some event can match both patterns, judged on `source` and `detail-type` (the fields
/// wsstack's rules filter on): a field one pattern leaves out matches anything, and two lists of
/// exact values overlap when they share one. A value that is not a plain string (a content filter
/// such as `{"prefix": ...}`) is taken to overlap: refusing a rule by mistake can be overridden in
/// the stack file, taking another stage's events by mistake cannot be seen.
pub fn patterns_overlap(a: &Value, b: &Value) -> bool {
    ["source", "detail-type"]
        .iter()
        .all(|field| match (a.get(field), b.get(field)) {
            (Some(Value::Array(left)), Some(Value::Array(right))) => left.iter().any(|l| match l {
                Value::String(_) => right.iter().any(|r| r == l || !r.is_string()),
                _ => true,
            }),
            _ => true,
        })
}

/// What the push handler needs to tell the two kinds of event apart, and to divide its fan-out.
pub(super) fn push_environment(stack: &Stack, chunk_queue_arn: String) -> [(String, String); 7] {
    let push = &stack.handlers.push;
    [
        ("ENTITY_DETAIL_TYPE".into(), stack.events.detail_type.clone()),
        ("USER_DETAIL_TYPE".into(), stack.events.user_detail_type.clone()),
        ("PUSH_CHUNK_SIZE".into(), push.chunk_size.to_string()),
        ("PUSH_CHUNK_QUEUE_ARN".into(), chunk_queue_arn),
        // The invocations of each queue at once: a large event is cut into as many chunks or more.
        ("PUSH_MAX_CONCURRENCY".into(), push.max_concurrency.to_string()),
        // An invocation's share of the stack's post budget, for chunks and for what it posts itself.
        (
            "PUSH_POSTS_PER_SECOND".into(),
            push.chunk_posts_per_second().to_string(),
        ),
        (
            "PUSH_DIRECT_POSTS_PER_SECOND".into(),
            push.direct_posts_per_second().to_string(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Aws;

    #[test]
    fn the_pattern_names_the_stage_unless_the_file_names_a_source() {
        let mut stack = crate::stack::parse(std::path::Path::new("s.yaml"), "name: demo\n").unwrap();
        assert_eq!(
            event_pattern(&stack),
            json!({"source": ["wsstack.demo.dev"], "detail-type": ["Entity Updated", "Send User Push Notification"]})
        );
        assert_eq!(event_source(&stack), "wsstack.demo.dev");
        stack.stage = "prod".into();
        assert_eq!(event_source(&stack), "wsstack.demo.prod");
        stack.events.source = Some("orders".into());
        assert_eq!(
            event_pattern(&stack),
            json!({"source": ["orders"], "detail-type": ["Entity Updated", "Send User Push Notification"]})
        );
        assert_eq!(event_source(&stack), "orders");
    }

    #[test]
    fn patterns_overlap_when_every_filtered_field_can_match_one_event() {
        let rule = |source: &str, types: &[&str]| json!({"source": [source], "detail-type": types});
        let dev = rule("wsstack.demo.dev", &["Entity Updated", "Notify"]);
        assert!(patterns_overlap(&dev, &dev));
        assert!(!patterns_overlap(
            &dev,
            &rule("wsstack.demo.prod", &["Entity Updated", "Notify"])
        ));
        assert!(!patterns_overlap(&dev, &rule("wsstack.demo.dev", &["Order Changed"])));
        assert!(patterns_overlap(
            &dev,
            &rule("wsstack.demo.dev", &["Order Changed", "Notify"])
        ));
        // A rule of an earlier wsstack, on the detail-types alone, takes every source.
        let sourceless = json!({"detail-type": ["Entity Updated", "Notify"]});
        assert!(patterns_overlap(&dev, &sourceless) && patterns_overlap(&sourceless, &dev));
        // A content filter is not judged: taken to overlap.
        assert!(patterns_overlap(&dev, &json!({"source": [{"prefix": "wsstack."}]})));
        assert!(patterns_overlap(&json!({"source": [{"prefix": "x"}]}), &dev));
    }

    #[test]
    fn the_push_handler_knows_both_detail_types_and_may_query_both_indexes() {
        let stack = crate::stack::parse(
            std::path::Path::new("s.yaml"),
            "name: demo\nevents:\n  detail_type: Order Changed\n  user_detail_type: Notify\n",
        )
        .unwrap();
        let aws = Aws::offline(crate::names::Names::new(&stack, "eu-west-1"));
        let environment = super::super::handler_resources(&stack, &aws, None, "push")
            .function
            .environment;
        assert_eq!(environment["ENTITY_DETAIL_TYPE"], "Order Changed");
        assert_eq!(environment["USER_DETAIL_TYPE"], "Notify");
        let subscribe = super::super::handler_resources(&stack, &aws, None, "subscribe")
            .function
            .environment;
        assert!(!subscribe.contains_key("USER_DETAIL_TYPE"));
        let policy = super::super::policies::push_policy(&stack, &aws.names, &aws.arns, "abc123");
        let table = aws.arns.table(&aws.names.table());
        assert_eq!(
            policy["Statement"][0]["Resource"],
            json!([format!("{table}/index/GSI1"), format!("{table}/index/GSI2")])
        );
    }
}
