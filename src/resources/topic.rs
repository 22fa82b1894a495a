//! The stack's SNS topic that the dead-letter alarm notifies, with the email subscription of
//! `alarms: {email}`: the address is a setting of the topic, as a target is of a rule. Other
//! protocols' subscriptions (a chat bot, a pager) are someone else's and stay untouched.
//!
//! The default topic policy is kept: it lets the owning account publish
//! (`AWS:SourceOwner` = the account), which covers CloudWatch alarms of the same account; only an
//! encrypted topic or another account's alarm would need more (not something the stack makes).

use anyhow::Result;

use super::errors::{deleted, found};
use super::tagging::{self, TagsAt};
use super::{Created, Ctx, Diff, Id, Lifecycle, Tags};
use crate::aws::{sdk_error, Aws};
use crate::graph::{Key, Value};

impl Key {
    /// The SNS topic the alarms notify; it hands on its ARN.
    pub fn topic() -> Key {
        Key::one("topic")
    }
}

/// What ListSubscriptionsByTopic shows instead of an ARN until the recipient confirms.
const PENDING: &str = "PendingConfirmation";

#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    /// Known before it exists: a topic's ARN is its account, region and name.
    pub arn: String,
    /// The address subscribed by email, if any. Every other email subscription of the topic is
    /// one the stack file no longer names (an earlier address): `up` unsubscribes it.
    pub email: Option<String>,
    pub tags: Tags,
}

/// One email subscription of the topic.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailSubscription {
    pub address: String,
    /// `None` while it waits for the recipient's confirmation: SNS lists no ARN for it then.
    pub arn: Option<String>,
}

impl EmailSubscription {
    pub fn pending(&self) -> bool {
        self.arn.is_none()
    }
}

pub struct Observed {
    tags: Tags,
    emails: Vec<EmailSubscription>,
}

/// The topic's email subscriptions; `None` when the topic does not exist.
pub async fn email_subscriptions(aws: &Aws, topic: &str) -> Result<Option<Vec<EmailSubscription>>> {
    let mut emails = Vec::new();
    let mut pages = aws
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(topic)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = found(page, || format!("listing the subscriptions of SNS topic {topic}"))?;
        let Some(page) = page else { return Ok(None) };
        for subscription in page.subscriptions() {
            if subscription.protocol() != Some("email") {
                continue;
            }
            let arn = subscription.subscription_arn().filter(|arn| *arn != PENDING);
            emails.push(EmailSubscription {
                address: subscription.endpoint().unwrap_or_default().to_string(),
                arn: arn.map(str::to_string),
            });
        }
    }
    Ok(Some(emails))
}

/// What the email subscriptions need: whether to subscribe the wanted address, and which ARNs to
/// unsubscribe. A pending subscription of an address no longer wanted cannot be unsubscribed (SNS
/// lists no ARN for it and deletes it unconfirmed after 48 hours; confirmed, it has an ARN and
/// the next `up` removes it), so it is no work and no drift: `status` shows it.
fn subscription_work<'a>(wanted: Option<&str>, emails: &'a [EmailSubscription]) -> (bool, Vec<&'a str>) {
    let subscribe = wanted.is_some_and(|wanted| !emails.iter().any(|e| e.address == wanted));
    let unsubscribe = emails
        .iter()
        .filter(|e| Some(e.address.as_str()) != wanted)
        .filter_map(|e| e.arn.as_deref())
        .collect();
    (subscribe, unsubscribe)
}

impl TopicSpec {
    async fn subscribe(&self, ctx: Ctx<'_>, email: &str) -> Result<()> {
        let call = ctx.aws.sns.subscribe().topic_arn(&self.arn).protocol("email");
        call.endpoint(email)
            .send()
            .await
            .map_err(|e| sdk_error(format!("subscribing {email} to SNS topic {}", self.name), e))?;
        Ok(())
    }
}

impl Lifecycle for TopicSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new("SNS topic", Key::topic(), &self.name).tagged(&self.tags)
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let sns = &ctx.aws.sns;
        let call = sns.get_topic_attributes().topic_arn(&self.arn);
        if found(call.send().await, || format!("reading SNS topic {}", self.name))?.is_none() {
            return Ok(None);
        }
        let call = sns.list_tags_for_resource().resource_arn(&self.arn);
        let Some(tags) = found(call.send().await, || {
            format!("reading the tags of SNS topic {}", self.name)
        })?
        else {
            return Ok(None);
        };
        let Some(emails) = email_subscriptions(ctx.aws, &self.arn).await? else {
            return Ok(None);
        };
        Ok(Some(Observed {
            tags: tags
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
            emails,
        }))
    }
    fn tags_in_aws<'o>(&self, o: &'o Observed) -> Option<(&'o Tags, TagsAt)> {
        Some((&o.tags, TagsAt::Sns(self.arn.clone())))
    }

    fn diffs(&self, _ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        let (subscribe, unsubscribe) = subscription_work(self.email.as_deref(), &o.emails);
        if !subscribe && unsubscribe.is_empty() {
            return Vec::new();
        }
        let current: Vec<&str> = o
            .emails
            .iter()
            .filter(|e| !e.pending() || Some(e.address.as_str()) == self.email.as_deref())
            .map(|e| e.address.as_str())
            .collect();
        let current = if current.is_empty() {
            "(none)".to_string()
        } else {
            current.join(", ")
        };
        vec![Diff::new(
            "email subscription",
            current,
            self.email.as_deref().unwrap_or("(none)"),
        )]
    }

    fn output(&self, _observed: &Observed) -> Option<Value> {
        Some(Value::Arn(self.arn.clone()))
    }

    /// CreateTopic answers an existing topic of ours with its ARN: a lost answer needs no
    /// special case.
    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        let call = ctx.aws.sns.create_topic().name(&self.name);
        call.set_tags(Some(tagging::sns(&self.tags)?))
            .send()
            .await
            .map_err(|e| sdk_error(format!("creating SNS topic {}", self.name), e))?;
        if let Some(email) = &self.email {
            self.subscribe(ctx, email).await?;
        }
        Ok(Created::New(Some(Value::Arn(self.arn.clone()))))
    }

    /// Subscribes the wanted address first, so that a failure halfway leaves the old address
    /// still notified rather than none.
    async fn update(&self, ctx: Ctx<'_>, observed: &Observed) -> Result<()> {
        let (subscribe, unsubscribe) = subscription_work(self.email.as_deref(), &observed.emails);
        if let (true, Some(email)) = (subscribe, &self.email) {
            self.subscribe(ctx, email).await?;
        }
        for arn in unsubscribe {
            let call = ctx.aws.sns.unsubscribe().subscription_arn(arn);
            deleted(call.send().await, || {
                format!("unsubscribing {arn} from SNS topic {}", self.name)
            })?;
        }
        Ok(())
    }

    /// DeleteTopic takes its subscriptions with it, pending ones included.
    async fn delete(&self, ctx: Ctx<'_>, _observed: Observed) -> Result<bool> {
        let call = ctx.aws.sns.delete_topic().topic_arn(&self.arn);
        deleted(call.send().await, || format!("deleting SNS topic {}", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(address: &str, arn: Option<&str>) -> EmailSubscription {
        EmailSubscription {
            address: address.into(),
            arn: arn.map(String::from),
        }
    }

    #[test]
    fn the_wanted_address_is_subscribed_once_and_earlier_ones_removed_when_they_can_be() {
        let confirmed = email("ops@example.com", Some("arn:sub:1"));
        let pending = email("ops@example.com", None);
        let old = email("old@example.com", Some("arn:sub:2"));
        let old_pending = email("gone@example.com", None);
        let wanted = Some("ops@example.com");
        assert_eq!(subscription_work(wanted, &[]), (true, vec![]));
        assert_eq!(
            subscription_work(wanted, std::slice::from_ref(&confirmed)),
            (false, vec![])
        );
        assert_eq!(
            subscription_work(wanted, std::slice::from_ref(&pending)),
            (false, vec![]),
            "pending is subscribed: only the recipient can confirm"
        );
        assert_eq!(
            subscription_work(wanted, &[old.clone(), old_pending.clone()]),
            (true, vec!["arn:sub:2"]),
            "a pending earlier address has no ARN to unsubscribe"
        );
        assert_eq!(
            subscription_work(None, &[confirmed, old]),
            (false, vec!["arn:sub:1", "arn:sub:2"])
        );
        assert_eq!(subscription_work(None, &[pending, old_pending]), (false, vec![]));
    }
}
