//! What the stack's events are, for the rule and the push handler: the source `send-event` uses,
//! the rule's pattern over both detail-types, and the names the push handler tells them apart by.
//! Pure: no AWS calls.

use serde_json::{json, Value};

use crate::stack::{Stack, DEFAULT_EVENT_SOURCE};

/// The event source `send-event` uses.
pub fn event_source(stack: &Stack) -> String {
    stack
        .events
        .source
        .clone()
        .unwrap_or_else(|| DEFAULT_EVENT_SOURCE.to_string())
}

/// The rule's event pattern: the stack's two detail-types, entity updates and user notifications,
/// on one rule to one queue (and the source, when it filters on one).
pub fn event_pattern(stack: &Stack) -> Value {
    let mut pattern = json!({ "detail-type": [stack.events.detail_type, stack.events.user_detail_type] });
    if let Some(source) = &stack.events.source {
        pattern["source"] = json!([source]);
    }
    pattern
}

/// What the push handler needs to tell the two kinds of event apart.
pub(super) fn push_environment(stack: &Stack) -> [(String, String); 4] {
    let push = &stack.handlers.push;
    [
        ("ENTITY_DETAIL_TYPE".into(), stack.events.detail_type.clone()),
        ("USER_DETAIL_TYPE".into(), stack.events.user_detail_type.clone()),
        ("PUSH_CHUNK_SIZE".into(), push.chunk_size.to_string()),
        // This invocation's share of the stack's post budget.
        (
            "PUSH_POSTS_PER_SECOND".into(),
            push.posts_per_second_per_invocation().to_string(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Aws;

    #[test]
    fn pattern_filters_on_source_only_when_given() {
        let mut stack = crate::stack::parse(std::path::Path::new("s.yaml"), "name: demo\n").unwrap();
        assert_eq!(
            event_pattern(&stack),
            json!({"detail-type": ["Entity Updated", "Send User Push Notification"]})
        );
        assert_eq!(event_source(&stack), "wsstack");
        stack.events.source = Some("orders".into());
        assert_eq!(
            event_pattern(&stack),
            json!({"detail-type": ["Entity Updated", "Send User Push Notification"], "source": ["orders"]})
        );
        assert_eq!(event_source(&stack), "orders");
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
