//! EventBridge rule matching the stack's events (its source, both detail-types), with the events
//! queue as its one target. PutRule and PutTargets are upserts; targets not ours are removed; tags
//! kept in sync. A rule whose pattern would take the events of another wsstack stack's rule on the
//! bus is refused unless the stack file says the sharing is intended.

use anyhow::{bail, Result};
use aws_sdk_eventbridge::types::{RuleState, Target};
use serde_json::Value;

use super::errors::{deleted, found};
use super::tagging::{self, TagsAt};
use super::{compact, same_policy, Created, Ctx, Diff, Id, Lifecycle, Tags};
use crate::aws::sdk_error;
use crate::graph::{Key, QueueKind};
use crate::plan::patterns_overlap;
use crate::stack::{TAG_STACK, TAG_STAGE};

impl Key {
    /// The EventBridge rule.
    pub fn rule() -> Key {
        Key::one("rule")
    }
}

#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub name: String,
    pub bus: String,
    pub arn: String,
    pub description: String,
    pub pattern: Value,
    pub target_id: String,
    pub target_arn: String,
    pub tags: Tags,
    /// `events.shared`: overlapping another wsstack stack's rule is intended.
    pub shared: bool,
}

/// Another wsstack stack's rule on the same bus whose pattern overlaps this one's.
struct Overlap {
    rule: String,
    stack: String,
    stage: String,
    pattern: Value,
}

pub struct Observed {
    pattern: String,
    state: String,
    description: String,
    /// (id, arn) of every target.
    targets: Vec<(String, String)>,
    tags: Tags,
}

impl RuleSpec {
    /// Every target, all pages; `None` when the rule is gone.
    async fn targets(&self, ctx: Ctx<'_>) -> Result<Option<Vec<(String, String)>>> {
        let mut targets = Vec::new();
        let mut token = None;
        loop {
            let call = ctx.aws.events.list_targets_by_rule().rule(&self.name);
            let page = call.event_bus_name(&self.bus).set_next_token(token).send().await;
            let Some(page) = found(page, || format!("listing targets of EventBridge rule {}", self.name))? else {
                return Ok(None);
            };
            targets.extend(page.targets.unwrap_or_default().into_iter().map(|t| (t.id, t.arn)));
            match page.next_token {
                Some(next) => token = Some(next),
                None => return Ok(Some(targets)),
            }
        }
    }

    /// Every other rule on the bus (all pages) whose pattern overlaps `pattern` and that carries
    /// the `wsstack:stack` tag. Rules that are not wsstack's are the bus owner's business.
    async fn overlapping(&self, ctx: Ctx<'_>, pattern: &Value) -> Result<Vec<Overlap>> {
        let events = &ctx.aws.events;
        let mut candidates = Vec::new();
        let mut token = None;
        loop {
            let call = events.list_rules().event_bus_name(&self.bus).set_next_token(token);
            let page = call
                .send()
                .await
                .map_err(|e| sdk_error(format!("listing the rules of EventBridge bus {}", self.bus), e))?;
            for rule in page.rules.unwrap_or_default() {
                let (Some(name), Some(arn)) = (rule.name, rule.arn) else {
                    continue;
                };
                // A rule on a schedule has no pattern and takes no events.
                let Some(other) = rule.event_pattern.and_then(|p| serde_json::from_str::<Value>(&p).ok()) else {
                    continue;
                };
                if name != self.name && patterns_overlap(pattern, &other) {
                    candidates.push((name, arn, other));
                }
            }
            match page.next_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        let mut overlaps = Vec::new();
        for (rule, arn, pattern) in candidates {
            let tags = events.list_tags_for_resource().resource_arn(&arn).send().await;
            // Gone since the listing: it takes nothing any more.
            let Some(tags) = found(tags, || format!("listing tags of EventBridge rule {rule}"))? else {
                continue;
            };
            let tag = |key: &str| tags.tags().iter().find(|t| t.key == key).map(|t| t.value.clone());
            if let Some(stack) = tag(TAG_STACK) {
                let stage = tag(TAG_STAGE).unwrap_or_default();
                overlaps.push(Overlap {
                    rule,
                    stack,
                    stage,
                    pattern,
                });
            }
        }
        Ok(overlaps)
    }

    /// Refuses writing this rule's pattern while it overlaps another wsstack stack's rule, unless
    /// the file says so or (`before`: the pattern in AWS) the overlap is already there: narrowing
    /// a rule of an earlier wsstack, which filtered on the detail-types alone, must stay possible
    /// while the other stage still has such a rule.
    async fn refuse_overlap(&self, ctx: Ctx<'_>, before: Option<&Value>) -> Result<()> {
        if self.shared {
            return Ok(());
        }
        let overlaps = self.overlapping(ctx, &self.pattern).await?;
        let new: Vec<&Overlap> = overlaps
            .iter()
            .filter(|o| before.is_none_or(|before| !patterns_overlap(before, &o.pattern)))
            .collect();
        let Some(first) = new.first() else {
            return Ok(());
        };
        let others: Vec<String> = new
            .iter()
            .map(|o| format!("rule {} of wsstack stack `{}` stage `{}`", o.rule, o.stack, o.stage))
            .collect();
        bail!(
            "EventBridge rule {} would take the same events as {} on bus {} (its pattern {}; this \
             stack's {}): an event meant for one would reach both. Give this stack its own \
             `events.source`, or set `events.shared: true` in the stack file if both are meant to \
             receive them",
            self.name,
            others.join(", "),
            self.bus,
            compact(&first.pattern),
            compact(&self.pattern)
        )
    }

    fn rule_diffs(&self, o: &Observed) -> Vec<Diff> {
        let mut diffs = Vec::new();
        if !same_policy(&o.pattern, &self.pattern) {
            diffs.push(Diff::new("event pattern", &o.pattern, compact(&self.pattern)));
        }
        if o.state != "ENABLED" {
            diffs.push(Diff::new("state", &o.state, "ENABLED"));
        }
        if o.description != self.description {
            diffs.push(Diff::new("description", &o.description, &self.description));
        }
        diffs
    }

    fn target_diff(&self, o: &Observed) -> Option<Diff> {
        let desired = vec![(self.target_id.clone(), self.target_arn.clone())];
        if o.targets == desired {
            return None;
        }
        let show = |t: &[(String, String)]| {
            let items: Vec<String> = t.iter().map(|(id, arn)| format!("{id}={arn}")).collect();
            format!("[{}]", items.join(", "))
        };
        Some(Diff::new("targets", show(&o.targets), show(&desired)))
    }

    async fn put_rule(&self, ctx: Ctx<'_>, with_tags: bool) -> Result<()> {
        let mut request = ctx
            .aws
            .events
            .put_rule()
            .name(&self.name)
            .event_bus_name(&self.bus)
            .event_pattern(compact(&self.pattern))
            .state(RuleState::Enabled)
            .description(&self.description);
        if with_tags {
            request = request.set_tags(Some(tagging::eventbridge(&self.tags)?));
        }
        request
            .send()
            .await
            .map_err(|e| sdk_error(format!("writing EventBridge rule {}", self.name), e))?;
        Ok(())
    }

    async fn put_target(&self, ctx: Ctx<'_>) -> Result<()> {
        let output = ctx
            .aws
            .events
            .put_targets()
            .rule(&self.name)
            .event_bus_name(&self.bus)
            .targets(Target::builder().id(&self.target_id).arn(&self.target_arn).build()?)
            .send()
            .await
            .map_err(|e| sdk_error(format!("setting the target of EventBridge rule {}", self.name), e))?;
        if output.failed_entry_count > 0 {
            let reasons: Vec<String> = output
                .failed_entries()
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.error_code().unwrap_or("?"),
                        e.error_message().unwrap_or("?")
                    )
                })
                .collect();
            bail!(
                "setting the target of EventBridge rule {}: {}",
                self.name,
                reasons.join("; ")
            );
        }
        Ok(())
    }

    async fn remove_targets(&self, ctx: Ctx<'_>, ids: Vec<String>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let call = ctx
            .aws
            .events
            .remove_targets()
            .rule(&self.name)
            .event_bus_name(&self.bus);
        deleted(call.set_ids(Some(ids)).force(true).send().await, || {
            format!("removing targets of EventBridge rule {}", self.name)
        })?;
        Ok(())
    }
}

impl Lifecycle for RuleSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new("EventBridge rule", Key::rule(), &self.name).tagged(&self.tags)
    }
    fn depends_on(&self) -> Vec<Key> {
        vec![Key::queue(QueueKind::Events)]
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let events = &ctx.aws.events;
        // One round trip: the three reads need only the name and ARN. When the rule is missing,
        // the others' errors say nothing more.
        let rule = events.describe_rule().name(&self.name).event_bus_name(&self.bus);
        let tags = events.list_tags_for_resource().resource_arn(&self.arn);
        let (rule, targets, tags) = futures::join!(rule.send(), self.targets(ctx), tags.send());
        let Some(rule) = found(rule, || format!("reading EventBridge rule {}", self.name))? else {
            return Ok(None);
        };
        let Some(targets) = targets? else {
            return Ok(None);
        };
        let Some(tags) = found(tags, || format!("listing tags of EventBridge rule {}", self.name))? else {
            return Ok(None);
        };
        Ok(Some(Observed {
            pattern: rule.event_pattern().unwrap_or_default().to_string(),
            state: rule.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
            description: rule.description().unwrap_or_default().to_string(),
            targets,
            tags: tags
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect(),
        }))
    }
    fn tags_in_aws<'o>(&self, o: &'o Observed) -> Option<(&'o Tags, TagsAt)> {
        Some((&o.tags, TagsAt::EventBridge(self.arn.clone())))
    }

    fn diffs(&self, _ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        let mut diffs = self.rule_diffs(o);
        diffs.extend(self.target_diff(o));
        diffs
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        self.refuse_overlap(ctx, None).await?;
        // PutRule and PutTargets are upserts: a concurrent creator makes no conflict.
        self.put_rule(ctx, true).await?;
        self.put_target(ctx).await?;
        Ok(Created::New(None))
    }

    async fn update(&self, ctx: Ctx<'_>, observed: &Observed) -> Result<()> {
        if !self.rule_diffs(observed).is_empty() {
            if !same_policy(&observed.pattern, &self.pattern) {
                let before = serde_json::from_str::<Value>(&observed.pattern).ok();
                self.refuse_overlap(ctx, before.as_ref()).await?;
            }
            self.put_rule(ctx, false).await?;
        }
        if self.target_diff(observed).is_some() {
            let stale: Vec<String> = observed
                .targets
                .iter()
                .filter(|(id, _)| *id != self.target_id)
                .map(|(id, _)| id.clone())
                .collect();
            self.remove_targets(ctx, stale).await?;
            let wanted = (self.target_id.clone(), self.target_arn.clone());
            if !observed.targets.contains(&wanted) {
                self.put_target(ctx).await?;
            }
        }
        Ok(())
    }

    async fn delete(&self, ctx: Ctx<'_>, observed: Observed) -> Result<bool> {
        // DeleteRule refuses a rule that still has targets.
        let ids = observed.targets.into_iter().map(|(id, _)| id).collect();
        self.remove_targets(ctx, ids).await?;
        let call = ctx.aws.events.delete_rule().name(&self.name).event_bus_name(&self.bus);
        deleted(call.send().await, || format!("deleting EventBridge rule {}", self.name))
    }
}
