//! SQS queue: the events queue (redrive to the dead-letter queue, a policy that lets only this
//! stack's rule send) and the dead-letter queue itself. Attributes and tags are updated in place.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Result};
use aws_sdk_sqs::types::QueueAttributeName;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::Value;

use super::{
    compact, foreign_reason, owned_by, same_policy, tag_changes, tag_diff, Change, Diff, Resource, State, Tags,
};
use crate::aws::{sdk_error, Aws};
use crate::retry::{eventually, QUEUE_DELETED_RECENTLY};

/// The desired value of one attribute: plain text, or a JSON document compared by meaning.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
    Text(String),
    Json(Value),
}

impl Attribute {
    fn to_wire(&self) -> String {
        match self {
            Attribute::Text(text) => text.clone(),
            Attribute::Json(value) => compact(value),
        }
    }

    fn matches(&self, current: Option<&str>) -> bool {
        match (self, current) {
            (Attribute::Text(text), Some(current)) => text == current,
            (Attribute::Json(value), Some(current)) => {
                same_policy(current, &normalize_numbers(value)) || {
                    // RedrivePolicy comes back with maxReceiveCount as a number or as a string.
                    serde_json::from_str::<Value>(current)
                        .map(|c| normalize_numbers(&c) == normalize_numbers(value))
                        .unwrap_or(false)
                }
            }
            (_, None) => false,
        }
    }
}

/// Numbers written as strings become numbers, so `"5"` and `5` compare equal.
fn normalize_numbers(value: &Value) -> Value {
    match value {
        Value::String(s) => s.parse::<i64>().map(Value::from).unwrap_or_else(|_| value.clone()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), normalize_numbers(v))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(normalize_numbers).collect()),
        other => other.clone(),
    }
}

#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub key: String,
    pub name: String,
    pub stack: String,
    /// Managed attributes by their SQS name (`VisibilityTimeout`, `RedrivePolicy`, ...).
    pub attributes: BTreeMap<String, Attribute>,
    pub tags: Tags,
    pub depends_on: Vec<String>,
}

struct Observed {
    url: String,
    attributes: HashMap<String, String>,
    tags: Tags,
}

fn attribute_map(attributes: &BTreeMap<String, Attribute>) -> HashMap<QueueAttributeName, String> {
    attributes
        .iter()
        .map(|(name, value)| (QueueAttributeName::from(name.as_str()), value.to_wire()))
        .collect()
}

impl QueueSpec {
    async fn url(&self, aws: &Aws) -> Result<Option<String>> {
        match aws.sqs.get_queue_url().queue_name(&self.name).send().await {
            Ok(output) => Ok(output.queue_url),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_queue_does_not_exist()) => Ok(None),
            Err(e) => Err(sdk_error(format!("finding SQS queue {}", self.name), e)),
        }
    }

    async fn observe(&self, aws: &Aws) -> Result<Option<Observed>> {
        let Some(url) = self.url(aws).await? else {
            return Ok(None);
        };
        let attributes = match aws
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
        {
            Ok(output) => output.attributes.unwrap_or_default(),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_queue_does_not_exist()) => return Ok(None),
            Err(e) => return Err(sdk_error(format!("reading SQS queue {}", self.name), e)),
        };
        let tags = match aws.sqs.list_queue_tags().queue_url(&url).send().await {
            Ok(output) => output.tags.unwrap_or_default().into_iter().collect(),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_queue_does_not_exist()) => return Ok(None),
            Err(e) => return Err(sdk_error(format!("listing tags of SQS queue {}", self.name), e)),
        };
        Ok(Some(Observed {
            url,
            attributes: attributes
                .into_iter()
                .map(|(k, v)| (k.as_str().to_string(), v))
                .collect(),
            tags,
        }))
    }

    /// The attributes that differ: (name, current, desired).
    fn attribute_changes(&self, o: &Observed) -> Vec<(String, String, &Attribute)> {
        self.attributes
            .iter()
            .filter(|(name, desired)| !desired.matches(o.attributes.get(*name).map(String::as_str)))
            .map(|(name, desired)| {
                let current = o.attributes.get(name).cloned().unwrap_or_else(|| "(none)".into());
                (name.clone(), current, desired)
            })
            .collect()
    }

    fn diffs(&self, o: &Observed) -> Vec<Diff> {
        let mut diffs: Vec<Diff> = self
            .attribute_changes(o)
            .into_iter()
            .map(|(name, current, desired)| Diff::new(&name, current, desired.to_wire()))
            .collect();
        diffs.extend(tag_diff(&o.tags, &self.tags));
        diffs
    }

    async fn create(&self, aws: &Aws) -> Result<()> {
        let attributes = attribute_map(&self.attributes);
        let tags: HashMap<String, String> = self.tags.clone().into_iter().collect();
        eventually(
            QUEUE_DELETED_RECENTLY,
            |e: &aws_sdk_sqs::error::SdkError<aws_sdk_sqs::operation::create_queue::CreateQueueError, _>| {
                e.as_service_error().is_some_and(|e| e.is_queue_deleted_recently())
            },
            || {
                aws.sqs
                    .create_queue()
                    .queue_name(&self.name)
                    .set_attributes(Some(attributes.clone()))
                    .set_tags(Some(tags.clone()))
                    .send()
            },
        )
        .await
        .map_err(|e| sdk_error(format!("creating SQS queue {}", self.name), e))?;
        Ok(())
    }

    async fn inspect_queue(&self, aws: &Aws) -> Result<State> {
        Ok(match self.observe(aws).await? {
            None => State::Missing,
            Some(o) if !owned_by(&o.tags, &self.stack) => {
                State::Foreign(foreign_reason(self.kind(), &self.name, &o.tags, &self.stack))
            }
            Some(o) => State::from_diffs(self.diffs(&o)),
        })
    }

    async fn ensure_queue(&self, aws: &Aws) -> Result<Change> {
        let Some(observed) = self.observe(aws).await? else {
            // CreateQueue with the same attributes is idempotent, so a concurrent creator is fine.
            self.create(aws).await?;
            return Ok(Change::Created);
        };
        if !owned_by(&observed.tags, &self.stack) {
            bail!(foreign_reason(self.kind(), &self.name, &observed.tags, &self.stack));
        }
        let diffs = self.diffs(&observed);
        if diffs.is_empty() {
            return Ok(Change::Unchanged);
        }
        if !self.attribute_changes(&observed).is_empty() {
            // The whole managed set, not only what differs: setting an attribute to its current
            // value is a no-op on AWS, and the moto emulator drops a Policy left out of the call.
            aws.sqs
                .set_queue_attributes()
                .queue_url(&observed.url)
                .set_attributes(Some(attribute_map(&self.attributes)))
                .send()
                .await
                .map_err(|e| sdk_error(format!("updating SQS queue {}", self.name), e))?;
        }
        let (set, remove) = tag_changes(&observed.tags, &self.tags);
        if !set.is_empty() {
            aws.sqs
                .tag_queue()
                .queue_url(&observed.url)
                .set_tags(Some(set.into_iter().collect()))
                .send()
                .await
                .map_err(|e| sdk_error(format!("tagging SQS queue {}", self.name), e))?;
        }
        if !remove.is_empty() {
            aws.sqs
                .untag_queue()
                .queue_url(&observed.url)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(|e| sdk_error(format!("untagging SQS queue {}", self.name), e))?;
        }
        Ok(Change::Updated(diffs))
    }

    async fn destroy_queue(&self, aws: &Aws) -> Result<Change> {
        let Some(url) = self.url(aws).await? else {
            return Ok(Change::Absent);
        };
        let tags: Tags = match aws.sqs.list_queue_tags().queue_url(&url).send().await {
            Ok(output) => output.tags.unwrap_or_default().into_iter().collect(),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_queue_does_not_exist()) => return Ok(Change::Absent),
            Err(e) => return Err(sdk_error(format!("listing tags of SQS queue {}", self.name), e)),
        };
        if !owned_by(&tags, &self.stack) {
            return Ok(Change::Skipped(foreign_reason(
                self.kind(),
                &self.name,
                &tags,
                &self.stack,
            )));
        }
        match aws.sqs.delete_queue().queue_url(&url).send().await {
            Ok(_) => Ok(Change::Deleted),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_queue_does_not_exist()) => Ok(Change::Absent),
            Err(e) => Err(sdk_error(format!("deleting SQS queue {}", self.name), e)),
        }
    }
}

impl Resource for QueueSpec {
    fn kind(&self) -> &'static str {
        "SQS queue"
    }
    fn name(&self) -> String {
        self.name.clone()
    }
    fn key(&self) -> String {
        self.key.clone()
    }
    fn depends_on(&self) -> Vec<String> {
        self.depends_on.clone()
    }
    fn inspect<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<State>> {
        self.inspect_queue(aws).boxed()
    }
    fn ensure<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.ensure_queue(aws).boxed()
    }
    fn destroy<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.destroy_queue(aws).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redrive_policy_matches_with_numbers_as_strings() {
        let desired = Attribute::Json(json!({"deadLetterTargetArn": "arn:dlq", "maxReceiveCount": 5}));
        assert!(desired.matches(Some(r#"{"deadLetterTargetArn":"arn:dlq","maxReceiveCount":"5"}"#)));
        assert!(desired.matches(Some(r#"{"maxReceiveCount":5,"deadLetterTargetArn":"arn:dlq"}"#)));
        assert!(!desired.matches(Some(r#"{"deadLetterTargetArn":"arn:dlq","maxReceiveCount":3}"#)));
        assert!(!desired.matches(None));
    }
}
