//! SQS queue: the events queue (redrive to the dead-letter queue, a policy that lets only this
//! stack's rule send), the chunk queue (redrive to the dead-letter queue; only the push role
//! sends, by its own policy) and the dead-letter queue itself. Attributes and tags are updated in place.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use super::errors::{deleted, found};
use super::tagging::TagsAt;
use super::transient;
use super::{compact, same_policy, Created, Ctx, Diff, Id, Lifecycle, Tags};
use crate::aws::sdk_error;
use crate::graph::{Key, QueueKind};
use crate::retry::{eventually, DEAD_LETTER_TARGET, QUEUE_DELETED_RECENTLY};

impl Key {
    /// A queue of the stack.
    pub fn queue(kind: QueueKind) -> Key {
        Key::each("queue", kind.name())
    }
}

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
    pub queue: QueueKind,
    pub name: String,
    /// Managed attributes by their SQS name (`VisibilityTimeout`, `RedrivePolicy`, ...).
    pub attributes: BTreeMap<String, Attribute>,
    pub tags: Tags,
}

pub struct Observed {
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
}

impl Lifecycle for QueueSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new("SQS queue", Key::queue(self.queue), &self.name).tagged(&self.tags)
    }
    fn depends_on(&self) -> Vec<Key> {
        match self.queue {
            QueueKind::Events | QueueKind::Chunks => vec![Key::queue(QueueKind::DeadLetter)],
            QueueKind::DeadLetter => Vec::new(),
        }
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let sqs = &ctx.aws.sqs;
        let url = sqs.get_queue_url().queue_name(&self.name).send().await;
        let Some(url) = found(url, || format!("finding SQS queue {}", self.name))?.and_then(|o| o.queue_url) else {
            return Ok(None);
        };
        // Both reads need only the URL: one round trip.
        let call = sqs.get_queue_attributes().queue_url(&url);
        let (attributes, tags) = futures::join!(
            call.attribute_names(QueueAttributeName::All).send(),
            sqs.list_queue_tags().queue_url(&url).send()
        );
        let Some(attributes) = found(attributes, || format!("reading SQS queue {}", self.name))? else {
            return Ok(None);
        };
        let Some(tags) = found(tags, || format!("listing tags of SQS queue {}", self.name))? else {
            return Ok(None);
        };
        Ok(Some(Observed {
            url,
            attributes: attributes
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_string(), v))
                .collect(),
            tags: tags.tags.unwrap_or_default().into_iter().collect(),
        }))
    }
    fn tags_in_aws<'o>(&self, o: &'o Observed) -> Option<(&'o Tags, TagsAt)> {
        Some((&o.tags, TagsAt::Sqs(o.url.clone())))
    }

    fn diffs(&self, _ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        self.attribute_changes(o)
            .into_iter()
            .map(|(name, current, desired)| Diff::new(&name, current, desired.to_wire()))
            .collect()
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        let attributes = attribute_map(&self.attributes);
        let tags: HashMap<String, String> = self.tags.clone().into_iter().collect();
        // CreateQueue with the same attributes is idempotent, so a concurrent creator is fine.
        let deadline = QUEUE_DELETED_RECENTLY.deadline.max(DEAD_LETTER_TARGET.deadline);
        eventually(
            crate::retry::Patience {
                deadline,
                ..QUEUE_DELETED_RECENTLY
            },
            |e: &aws_sdk_sqs::error::SdkError<aws_sdk_sqs::operation::create_queue::CreateQueueError, _>| {
                e.as_service_error()
                    .is_some_and(|e| e.is_queue_deleted_recently() || transient::dead_letter_target_lag(e))
            },
            || {
                ctx.aws
                    .sqs
                    .create_queue()
                    .queue_name(&self.name)
                    .set_attributes(Some(attributes.clone()))
                    .set_tags(Some(tags.clone()))
                    .send()
            },
        )
        .await
        .map_err(|e| sdk_error(format!("creating SQS queue {}", self.name), e))?;
        Ok(Created::New(None))
    }

    async fn update(&self, ctx: Ctx<'_>, observed: &Observed) -> Result<()> {
        // The whole managed set, not only what differs: setting an attribute to its current
        // value is a no-op on AWS, and the moto emulator drops a Policy left out of the call.
        let attributes = attribute_map(&self.attributes);
        eventually(
            DEAD_LETTER_TARGET,
            |e: &aws_sdk_sqs::error::SdkError<
                aws_sdk_sqs::operation::set_queue_attributes::SetQueueAttributesError,
                _,
            >| transient::dead_letter_target_lag(e),
            || {
                let call = ctx.aws.sqs.set_queue_attributes().queue_url(&observed.url);
                call.set_attributes(Some(attributes.clone())).send()
            },
        )
        .await
        .map_err(|e| sdk_error(format!("updating SQS queue {}", self.name), e))?;
        Ok(())
    }

    async fn delete(&self, ctx: Ctx<'_>, observed: Observed) -> Result<bool> {
        let call = ctx.aws.sqs.delete_queue().queue_url(&observed.url);
        deleted(call.send().await, || format!("deleting SQS queue {}", self.name))
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
