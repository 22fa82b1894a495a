//! EventBridge rule matching the stack's "entity updated" events, with the events queue as its
//! one target. PutRule and PutTargets are upserts; targets not ours are removed; tags kept in sync.

use anyhow::{bail, Result};
use aws_sdk_eventbridge::types::{RuleState, Tag, Target};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::Value;

use super::{
    compact, foreign_reason, owned_by, same_policy, tag_changes, tag_diff, Change, Diff, Resource, State, Tags,
};
use crate::aws::{sdk_error, Aws};

#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub key: String,
    pub name: String,
    pub stack: String,
    pub bus: String,
    pub arn: String,
    pub description: String,
    pub pattern: Value,
    pub target_id: String,
    pub target_arn: String,
    pub tags: Tags,
    pub depends_on: Vec<String>,
}

struct Observed {
    pattern: String,
    state: String,
    description: String,
    /// (id, arn) of every target.
    targets: Vec<(String, String)>,
    tags: Tags,
}

impl RuleSpec {
    async fn observe(&self, aws: &Aws) -> Result<Option<Observed>> {
        let rule = match aws
            .events
            .describe_rule()
            .name(&self.name)
            .event_bus_name(&self.bus)
            .send()
            .await
        {
            Ok(rule) => rule,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(sdk_error(format!("reading EventBridge rule {}", self.name), e)),
        };
        let Some(targets) = self.targets(aws).await? else {
            return Ok(None);
        };
        let Some(tags) = self.list_tags(aws).await? else {
            return Ok(None);
        };
        Ok(Some(Observed {
            pattern: rule.event_pattern().unwrap_or_default().to_string(),
            state: rule.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
            description: rule.description().unwrap_or_default().to_string(),
            targets,
            tags,
        }))
    }

    async fn targets(&self, aws: &Aws) -> Result<Option<Vec<(String, String)>>> {
        let mut targets = Vec::new();
        let mut token = None;
        loop {
            match aws
                .events
                .list_targets_by_rule()
                .rule(&self.name)
                .event_bus_name(&self.bus)
                .set_next_token(token)
                .send()
                .await
            {
                Ok(output) => {
                    for target in output.targets.unwrap_or_default() {
                        targets.push((target.id, target.arn));
                    }
                    match output.next_token {
                        Some(next) => token = Some(next),
                        None => return Ok(Some(targets)),
                    }
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    return Ok(None)
                }
                Err(e) => {
                    return Err(sdk_error(
                        format!("listing targets of EventBridge rule {}", self.name),
                        e,
                    ))
                }
            }
        }
    }

    async fn list_tags(&self, aws: &Aws) -> Result<Option<Tags>> {
        match aws.events.list_tags_for_resource().resource_arn(&self.arn).send().await {
            Ok(output) => Ok(Some(
                output
                    .tags
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| (t.key, t.value))
                    .collect(),
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error(format!("listing tags of EventBridge rule {}", self.name), e)),
        }
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
            None
        } else {
            let show = |t: &[(String, String)]| {
                let items: Vec<String> = t.iter().map(|(id, arn)| format!("{id}={arn}")).collect();
                format!("[{}]", items.join(", "))
            };
            Some(Diff::new("targets", show(&o.targets), show(&desired)))
        }
    }

    fn diffs(&self, o: &Observed) -> Vec<Diff> {
        let mut diffs = self.rule_diffs(o);
        diffs.extend(self.target_diff(o));
        diffs.extend(tag_diff(&o.tags, &self.tags));
        diffs
    }

    async fn put_rule(&self, aws: &Aws, with_tags: bool) -> Result<()> {
        let mut request = aws
            .events
            .put_rule()
            .name(&self.name)
            .event_bus_name(&self.bus)
            .event_pattern(compact(&self.pattern))
            .state(RuleState::Enabled)
            .description(&self.description);
        if with_tags {
            for (k, v) in &self.tags {
                request = request.tags(Tag::builder().key(k).value(v).build()?);
            }
        }
        request
            .send()
            .await
            .map_err(|e| sdk_error(format!("writing EventBridge rule {}", self.name), e))?;
        Ok(())
    }

    async fn put_target(&self, aws: &Aws) -> Result<()> {
        let output = aws
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

    async fn remove_targets(&self, aws: &Aws, ids: Vec<String>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        match aws
            .events
            .remove_targets()
            .rule(&self.name)
            .event_bus_name(&self.bus)
            .set_ids(Some(ids))
            .force(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error(
                format!("removing targets of EventBridge rule {}", self.name),
                e,
            )),
        }
    }

    async fn inspect_rule(&self, aws: &Aws) -> Result<State> {
        Ok(match self.observe(aws).await? {
            None => State::Missing,
            Some(o) if !owned_by(&o.tags, &self.stack) => {
                State::Foreign(foreign_reason(self.kind(), &self.name, &o.tags, &self.stack))
            }
            Some(o) => State::from_diffs(self.diffs(&o)),
        })
    }

    async fn ensure_rule(&self, aws: &Aws) -> Result<Change> {
        let Some(observed) = self.observe(aws).await? else {
            self.put_rule(aws, true).await?;
            self.put_target(aws).await?;
            return Ok(Change::Created);
        };
        if !owned_by(&observed.tags, &self.stack) {
            bail!(foreign_reason(self.kind(), &self.name, &observed.tags, &self.stack));
        }
        let diffs = self.diffs(&observed);
        if diffs.is_empty() {
            return Ok(Change::Unchanged);
        }
        if !self.rule_diffs(&observed).is_empty() {
            self.put_rule(aws, false).await?;
        }
        if self.target_diff(&observed).is_some() {
            let stale: Vec<String> = observed
                .targets
                .iter()
                .filter(|(id, _)| *id != self.target_id)
                .map(|(id, _)| id.clone())
                .collect();
            self.remove_targets(aws, stale).await?;
            if !observed
                .targets
                .contains(&(self.target_id.clone(), self.target_arn.clone()))
            {
                self.put_target(aws).await?;
            }
        }
        let (set, remove) = tag_changes(&observed.tags, &self.tags);
        if !set.is_empty() {
            let tags = set
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()?;
            aws.events
                .tag_resource()
                .resource_arn(&self.arn)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|e| sdk_error(format!("tagging EventBridge rule {}", self.name), e))?;
        }
        if !remove.is_empty() {
            aws.events
                .untag_resource()
                .resource_arn(&self.arn)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(|e| sdk_error(format!("untagging EventBridge rule {}", self.name), e))?;
        }
        Ok(Change::Updated(diffs))
    }

    async fn destroy_rule(&self, aws: &Aws) -> Result<Change> {
        let Some(tags) = self.list_tags(aws).await? else {
            return Ok(Change::Absent);
        };
        if !owned_by(&tags, &self.stack) {
            return Ok(Change::Skipped(foreign_reason(
                self.kind(),
                &self.name,
                &tags,
                &self.stack,
            )));
        }
        // DeleteRule refuses a rule that still has targets.
        let Some(targets) = self.targets(aws).await? else {
            return Ok(Change::Absent);
        };
        self.remove_targets(aws, targets.into_iter().map(|(id, _)| id).collect())
            .await?;
        match aws
            .events
            .delete_rule()
            .name(&self.name)
            .event_bus_name(&self.bus)
            .send()
            .await
        {
            Ok(_) => Ok(Change::Deleted),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(Change::Absent)
            }
            Err(e) => Err(sdk_error(format!("deleting EventBridge rule {}", self.name), e)),
        }
    }
}

impl Resource for RuleSpec {
    fn kind(&self) -> &'static str {
        "EventBridge rule"
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
        self.inspect_rule(aws).boxed()
    }
    fn ensure<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.ensure_rule(aws).boxed()
    }
    fn destroy<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.destroy_rule(aws).boxed()
    }
}
