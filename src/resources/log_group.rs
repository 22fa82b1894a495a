//! CloudWatch log group of a function (`/aws/lambda/{function}`), created before the function so
//! that it has the stack's retention and tags (Lambda would create it with neither).

use anyhow::{bail, Result};
use futures::future::BoxFuture;
use futures::FutureExt;

use super::{foreign_reason, owned_by, tag_changes, tag_diff, Change, Diff, Resource, State, Tags};
use crate::aws::{sdk_error, Aws};

#[derive(Debug, Clone)]
pub struct LogGroupSpec {
    pub key: String,
    pub name: String,
    pub arn: String,
    pub stack: String,
    pub retention_days: i32,
    pub tags: Tags,
}

struct Observed {
    retention_days: Option<i32>,
    tags: Tags,
}

impl LogGroupSpec {
    async fn observe(&self, aws: &Aws) -> Result<Option<Observed>> {
        let groups = aws
            .logs
            .describe_log_groups()
            .log_group_name_prefix(&self.name)
            .send()
            .await
            .map_err(|e| sdk_error(format!("reading log group {}", self.name), e))?;
        let Some(group) = groups
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(self.name.as_str()))
        else {
            return Ok(None);
        };
        let retention_days = group.retention_in_days();
        let tags = match aws.logs.list_tags_for_resource().resource_arn(&self.arn).send().await {
            Ok(output) => output.tags.unwrap_or_default().into_iter().collect(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(sdk_error(format!("listing tags of log group {}", self.name), e)),
        };
        Ok(Some(Observed { retention_days, tags }))
    }

    fn diffs(&self, o: &Observed) -> Vec<Diff> {
        let mut diffs = Vec::new();
        if o.retention_days != Some(self.retention_days) {
            let current = o
                .retention_days
                .map(|d| format!("{d} days"))
                .unwrap_or_else(|| "never expire".into());
            diffs.push(Diff::new("retention", current, format!("{} days", self.retention_days)));
        }
        diffs.extend(tag_diff(&o.tags, &self.tags));
        diffs
    }

    async fn put_retention(&self, aws: &Aws) -> Result<()> {
        aws.logs
            .put_retention_policy()
            .log_group_name(&self.name)
            .retention_in_days(self.retention_days)
            .send()
            .await
            .map_err(|e| sdk_error(format!("setting the retention of log group {}", self.name), e))?;
        Ok(())
    }

    async fn inspect_group(&self, aws: &Aws) -> Result<State> {
        Ok(match self.observe(aws).await? {
            None => State::Missing,
            Some(o) if !owned_by(&o.tags, &self.stack) && !o.tags.is_empty() => {
                State::Foreign(foreign_reason(self.kind(), &self.name, &o.tags, &self.stack))
            }
            Some(o) => State::from_diffs(self.diffs(&o)),
        })
    }

    async fn ensure_group(&self, aws: &Aws) -> Result<Change> {
        let Some(observed) = self.observe(aws).await? else {
            match aws
                .logs
                .create_log_group()
                .log_group_name(&self.name)
                .set_tags(Some(self.tags.clone().into_iter().collect()))
                .send()
                .await
            {
                Ok(_) => {}
                // Lambda (an invocation) or a concurrent run made it first: converge it below.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_already_exists_exception()) =>
                {
                    return self.update(aws).await;
                }
                Err(e) => return Err(sdk_error(format!("creating log group {}", self.name), e)),
            }
            self.put_retention(aws).await?;
            return Ok(Change::Created);
        };
        if !owned_by(&observed.tags, &self.stack) && !observed.tags.is_empty() {
            bail!(foreign_reason(self.kind(), &self.name, &observed.tags, &self.stack));
        }
        self.apply(aws, observed).await
    }

    async fn update(&self, aws: &Aws) -> Result<Change> {
        match self.observe(aws).await? {
            Some(observed) => self.apply(aws, observed).await,
            None => bail!("log group {} vanished while being created", self.name),
        }
    }

    /// Bring an existing group in line. A group with no tags at all is the one Lambda makes on a
    /// first invoke of our function: it is adopted.
    async fn apply(&self, aws: &Aws, observed: Observed) -> Result<Change> {
        let diffs = self.diffs(&observed);
        if diffs.is_empty() {
            return Ok(Change::Unchanged);
        }
        if observed.retention_days != Some(self.retention_days) {
            self.put_retention(aws).await?;
        }
        let (set, remove) = tag_changes(&observed.tags, &self.tags);
        if !set.is_empty() {
            aws.logs
                .tag_resource()
                .resource_arn(&self.arn)
                .set_tags(Some(set.into_iter().collect()))
                .send()
                .await
                .map_err(|e| sdk_error(format!("tagging log group {}", self.name), e))?;
        }
        if !remove.is_empty() {
            aws.logs
                .untag_resource()
                .resource_arn(&self.arn)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(|e| sdk_error(format!("untagging log group {}", self.name), e))?;
        }
        Ok(Change::Updated(diffs))
    }

    async fn destroy_group(&self, aws: &Aws) -> Result<Change> {
        let Some(observed) = self.observe(aws).await? else {
            return Ok(Change::Absent);
        };
        // An untagged group under our function's name is the one Lambda created for it.
        if !owned_by(&observed.tags, &self.stack) && !observed.tags.is_empty() {
            return Ok(Change::Skipped(foreign_reason(
                self.kind(),
                &self.name,
                &observed.tags,
                &self.stack,
            )));
        }
        match aws.logs.delete_log_group().log_group_name(&self.name).send().await {
            Ok(_) => Ok(Change::Deleted),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(Change::Absent)
            }
            Err(e) => Err(sdk_error(format!("deleting log group {}", self.name), e)),
        }
    }
}

impl Resource for LogGroupSpec {
    fn kind(&self) -> &'static str {
        "log group"
    }
    fn name(&self) -> String {
        self.name.clone()
    }
    fn key(&self) -> String {
        self.key.clone()
    }
    fn inspect<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<State>> {
        self.inspect_group(aws).boxed()
    }
    fn ensure<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.ensure_group(aws).boxed()
    }
    fn destroy<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.destroy_group(aws).boxed()
    }
}
