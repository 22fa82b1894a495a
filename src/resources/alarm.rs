//! The CloudWatch alarm on a dead-letter queue: `ApproximateNumberOfMessagesVisible` at least 1
//! in a minute notifies the stack's topic. PutMetricAlarm is an upsert, so an update rewrites the
//! whole alarm, and only when DescribeAlarms shows a difference; tags go by TagResource.

use anyhow::Result;
use aws_sdk_cloudwatch::types::{AlarmType, ComparisonOperator, Dimension, MetricAlarm, Statistic};

use super::errors::{deleted, found};
use super::tagging::{self, TagsAt};
use super::{Created, Ctx, Diff, Id, Lifecycle, Tags};
use crate::aws::sdk_error;
use crate::graph::{Key, QueueKind};

impl Key {
    /// The CloudWatch alarm on a queue.
    pub fn alarm(queue: QueueKind) -> Key {
        Key::each("alarm", queue.name())
    }
}

const NAMESPACE: &str = "AWS/SQS";
const METRIC: &str = "ApproximateNumberOfMessagesVisible";
/// The metric is a count sampled through the minute: its maximum says whether any message sat
/// there at all, where a sum would add up samples.
const STATISTIC: Statistic = Statistic::Maximum;
/// SQS publishes its metrics once a minute.
const PERIOD_SECONDS: i32 = 60;
const THRESHOLD: f64 = 1.0;
const COMPARISON: ComparisonOperator = ComparisonOperator::GreaterThanOrEqualToThreshold;
/// SQS sends no metrics for a queue that has been empty and untouched for six hours: no data
/// means an empty queue. A queue holding messages counts as active, so its data keeps coming.
const MISSING_DATA: &str = "notBreaching";

#[derive(Debug, Clone)]
pub struct AlarmSpec {
    /// The queue it watches.
    pub queue: QueueKind,
    pub queue_name: String,
    pub name: String,
    pub arn: String,
    pub description: String,
    /// Notified on ALARM and back on OK: the second message says the queue was emptied
    /// (redriven or purged), which closes what the first one opened.
    pub topic_arn: String,
    pub tags: Tags,
}

pub struct Observed {
    alarm: MetricAlarm,
    tags: Tags,
}

/// The dead-letter alarm's state (OK, ALARM, INSUFFICIENT_DATA); `None` when there is no alarm.
pub async fn state(aws: &crate::aws::Aws, name: &str) -> Result<Option<String>> {
    Ok(describe(aws, name)
        .await?
        .and_then(|a| a.state_value().map(|s| s.as_str().to_string())))
}

async fn describe(aws: &crate::aws::Aws, name: &str) -> Result<Option<MetricAlarm>> {
    let call = aws
        .cloudwatch
        .describe_alarms()
        .alarm_names(name)
        .alarm_types(AlarmType::MetricAlarm);
    let answer = call
        .send()
        .await
        .map_err(|e| sdk_error(format!("reading CloudWatch alarm {name}"), e))?;
    Ok(answer
        .metric_alarms
        .unwrap_or_default()
        .into_iter()
        .find(|a| a.alarm_name() == Some(name)))
}

fn dimension_text(dimensions: &[Dimension]) -> String {
    let mut pairs: Vec<String> = dimensions
        .iter()
        .map(|d| format!("{}={}", d.name().unwrap_or_default(), d.value().unwrap_or_default()))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        "(none)".into()
    } else {
        pairs.join(", ")
    }
}

fn actions_text(actions: &[String]) -> String {
    let mut actions = actions.to_vec();
    actions.sort();
    if actions.is_empty() {
        "(none)".into()
    } else {
        actions.join(", ")
    }
}

fn shown<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_else(|| "(none)".into())
}

impl AlarmSpec {
    /// Every setting as (field, current, desired), in the order PutMetricAlarm takes them.
    fn settings(&self, a: &MetricAlarm) -> Vec<(&'static str, String, String)> {
        let topic = std::slice::from_ref(&self.topic_arn);
        vec![
            ("description", shown(a.alarm_description()), self.description.clone()),
            ("namespace", shown(a.namespace()), NAMESPACE.into()),
            ("metric", shown(a.metric_name()), METRIC.into()),
            (
                "dimensions",
                dimension_text(a.dimensions()),
                format!("QueueName={}", self.queue_name),
            ),
            (
                "statistic",
                shown(a.statistic().map(|s| s.as_str())),
                STATISTIC.as_str().into(),
            ),
            ("period", shown(a.period()), PERIOD_SECONDS.to_string()),
            ("evaluation periods", shown(a.evaluation_periods()), "1".into()),
            ("datapoints to alarm", shown(a.datapoints_to_alarm()), "1".into()),
            ("threshold", shown(a.threshold()), THRESHOLD.to_string()),
            (
                "comparison",
                shown(a.comparison_operator().map(|c| c.as_str())),
                COMPARISON.as_str().into(),
            ),
            ("missing data", shown(a.treat_missing_data()), MISSING_DATA.into()),
            ("actions enabled", shown(a.actions_enabled()), "true".into()),
            ("alarm actions", actions_text(a.alarm_actions()), actions_text(topic)),
            ("OK actions", actions_text(a.ok_actions()), actions_text(topic)),
            (
                "insufficient data actions",
                actions_text(a.insufficient_data_actions()),
                actions_text(&[]),
            ),
        ]
    }

    /// The whole alarm. Tags only count on create: PutMetricAlarm ignores them on an update.
    async fn put(&self, ctx: Ctx<'_>, tags: Option<&Tags>) -> Result<()> {
        let dimension = Dimension::builder().name("QueueName").value(&self.queue_name).build();
        let call = ctx
            .aws
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(&self.name)
            .alarm_description(&self.description)
            .namespace(NAMESPACE)
            .metric_name(METRIC)
            .dimensions(dimension)
            .statistic(STATISTIC)
            .period(PERIOD_SECONDS)
            .evaluation_periods(1)
            .datapoints_to_alarm(1)
            .threshold(THRESHOLD)
            .comparison_operator(COMPARISON)
            .treat_missing_data(MISSING_DATA)
            .actions_enabled(true)
            .alarm_actions(&self.topic_arn)
            .ok_actions(&self.topic_arn)
            .set_tags(tags.map(tagging::cloudwatch));
        call.send()
            .await
            .map_err(|e| sdk_error(format!("writing CloudWatch alarm {}", self.name), e))?;
        Ok(())
    }
}

impl Lifecycle for AlarmSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new("CloudWatch alarm", Key::alarm(self.queue), &self.name).tagged(&self.tags)
    }
    fn depends_on(&self) -> Vec<Key> {
        vec![Key::topic(), Key::queue(self.queue)]
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let Some(alarm) = describe(ctx.aws, &self.name).await? else {
            return Ok(None);
        };
        let call = ctx.aws.cloudwatch.list_tags_for_resource().resource_arn(&self.arn);
        let Some(tags) = found(call.send().await, || {
            format!("reading the tags of CloudWatch alarm {}", self.name)
        })?
        else {
            return Ok(None);
        };
        Ok(Some(Observed {
            alarm,
            tags: tags
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                .collect(),
        }))
    }
    fn tags_in_aws<'o>(&self, o: &'o Observed) -> Option<(&'o Tags, TagsAt)> {
        Some((&o.tags, TagsAt::CloudWatch(self.arn.clone())))
    }

    fn diffs(&self, _ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        self.settings(&o.alarm)
            .into_iter()
            .filter(|(_, current, desired)| current != desired)
            .map(|(field, current, desired)| Diff::new(field, current, desired))
            .collect()
    }

    /// PutMetricAlarm on a name that exists replaces that alarm: a lost answer or a concurrent
    /// run leaves the same alarm.
    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        self.put(ctx, Some(&self.tags)).await?;
        Ok(Created::New(None))
    }

    async fn update(&self, ctx: Ctx<'_>, _observed: &Observed) -> Result<()> {
        self.put(ctx, None).await
    }

    async fn delete(&self, ctx: Ctx<'_>, _observed: Observed) -> Result<bool> {
        let call = ctx.aws.cloudwatch.delete_alarms().alarm_names(&self.name);
        deleted(call.send().await, || format!("deleting CloudWatch alarm {}", self.name))
    }
}
