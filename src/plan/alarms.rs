//! The resources of the dead-letter alarm: the stack's SNS topic (with the `alarms: {email}`
//! subscription) and the CloudWatch alarm on the DLQ, their names and ARNs. Every stack has
//! both, with or without `alarms:`; the email only when set. Pure: no AWS calls.

use std::sync::Arc;

use super::tags;
use crate::aws::Aws;
use crate::graph::QueueKind;
use crate::names::{Arns, Names};
use crate::resources::alarm::AlarmSpec;
use crate::resources::topic::TopicSpec;
use crate::resources::Resource;
use crate::stack::Stack;

/// The topic the stack's alarms notify.
pub fn topic_name(names: &Names) -> String {
    format!("{}-alarms", names.prefix)
}

pub fn topic_arn(arns: &Arns, name: &str) -> String {
    format!("arn:{}:sns:{}:{}:{}", arns.partition, arns.region, arns.account, name)
}

/// The alarm on the dead-letter queue, named after it.
pub fn dead_letter_alarm_name(names: &Names) -> String {
    format!("{}-not-empty", names.dead_letter_queue())
}

fn alarm_arn(arns: &Arns, name: &str) -> String {
    format!(
        "arn:{}:cloudwatch:{}:{}:alarm:{}",
        arns.partition, arns.region, arns.account, name
    )
}

pub(super) fn resources(stack: &Stack, aws: &Aws) -> Vec<Arc<dyn Resource>> {
    let (names, arns) = (&aws.names, &aws.arns);
    let topic = topic_name(names);
    let topic_arn = topic_arn(arns, &topic);
    let alarm = dead_letter_alarm_name(names);
    vec![
        Arc::new(TopicSpec {
            name: topic,
            arn: topic_arn.clone(),
            email: stack.alarms.as_ref().and_then(|a| a.email.clone()),
            tags: tags(stack),
        }),
        Arc::new(AlarmSpec {
            queue: QueueKind::DeadLetter,
            queue_name: names.dead_letter_queue(),
            arn: alarm_arn(arns, &alarm),
            name: alarm,
            description: format!(
                "wsstack {}/{}: events the push handler gave up on wait in {}",
                stack.name,
                stack.stage,
                names.dead_letter_queue()
            ),
            topic_arn,
            tags: tags(stack),
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns_follow_the_stack() {
        let stack = crate::stack::parse(std::path::Path::new("s.yaml"), "name: demo\n").unwrap();
        let aws = Aws::offline(Names::new(&stack, "eu-west-1"));
        assert_eq!(topic_name(&aws.names), "demo-dev-alarms");
        assert_eq!(
            topic_arn(&aws.arns, "demo-dev-alarms"),
            "arn:aws:sns:eu-west-1:123456789012:demo-dev-alarms"
        );
        assert_eq!(dead_letter_alarm_name(&aws.names), "demo-dev-events-dlq-not-empty");
        let keys: Vec<String> = resources(&stack, &aws).iter().map(|r| r.key().to_string()).collect();
        assert_eq!(keys, ["topic", "alarm/dead-letter"]);
    }
}
