//! CloudWatch log group of a function (`/aws/lambda/{function}`), created by `up` so that it has
//! the stack's retention and tags (Lambda would create it with neither). A group with no tags at
//! all is the one Lambda makes on a first invoke of our function: it is adopted. The stage's
//! access log group (`/aws/apigateway/{name}-{stage}-access`) is one too, keyed [`ACCESS`].

use anyhow::Result;

use super::errors::{created, deleted, found};
use super::tagging::TagsAt;
use super::{Created, Ctx, Diff, Id, Lifecycle, Tags};
use crate::aws::sdk_error;
use crate::graph::Key;

impl Key {
    /// A handler's log group.
    pub fn log_group(handler: impl Into<String>) -> Key {
        Key::each("log-group", handler)
    }

    /// The stage's access log group: `$` cannot start a handler's name.
    pub fn access_log_group() -> Key {
        Key::log_group(ACCESS)
    }
}

/// The `handler` of the stage's access log group.
pub const ACCESS: &str = "$access";

#[derive(Debug, Clone)]
pub struct LogGroupSpec {
    /// The handler whose group this is, or [`ACCESS`].
    pub handler: String,
    pub name: String,
    pub arn: String,
    pub retention_days: i32,
    pub tags: Tags,
}

pub struct Observed {
    retention_days: Option<i32>,
    tags: Tags,
}

impl LogGroupSpec {
    async fn put_retention(&self, ctx: Ctx<'_>) -> Result<()> {
        let call = ctx.aws.logs.put_retention_policy().log_group_name(&self.name);
        call.retention_in_days(self.retention_days)
            .send()
            .await
            .map_err(|e| sdk_error(format!("setting the retention of log group {}", self.name), e))?;
        Ok(())
    }
}

impl Lifecycle for LogGroupSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new("log group", Key::log_group(self.handler.clone()), &self.name).tagged(&self.tags)
    }
    fn adopts_untagged(&self) -> bool {
        true
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let logs = &ctx.aws.logs;
        // One round trip: the ARN is known from the name. When the group is missing, the error
        // of the tags says nothing more.
        let (groups, tags) = futures::join!(
            logs.describe_log_groups().log_group_name_prefix(&self.name).send(),
            logs.list_tags_for_resource().resource_arn(&self.arn).send()
        );
        let groups = groups.map_err(|e| sdk_error(format!("reading log group {}", self.name), e))?;
        let Some(group) = groups
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(self.name.as_str()))
        else {
            return Ok(None);
        };
        let tags = found(tags, || format!("listing tags of log group {}", self.name))?;
        Ok(tags.map(|output| Observed {
            retention_days: group.retention_in_days(),
            tags: output.tags.unwrap_or_default().into_iter().collect(),
        }))
    }
    fn tags_in_aws<'o>(&self, o: &'o Observed) -> Option<(&'o Tags, TagsAt)> {
        Some((&o.tags, TagsAt::Logs(self.arn.clone())))
    }

    fn diffs(&self, _ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        if o.retention_days == Some(self.retention_days) {
            return Vec::new();
        }
        let current = o
            .retention_days
            .map(|d| format!("{d} days"))
            .unwrap_or_else(|| "never expire".into());
        vec![Diff::new("retention", current, format!("{} days", self.retention_days))]
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        let call = ctx.aws.logs.create_log_group().log_group_name(&self.name);
        let call = call.set_tags(Some(self.tags.clone().into_iter().collect()));
        // Lambda (an invocation) or a concurrent run may have made it first.
        if !created(call.send().await, || format!("creating log group {}", self.name))? {
            return Ok(Created::AlreadyExists);
        }
        self.put_retention(ctx).await?;
        Ok(Created::New(None))
    }

    async fn update(&self, ctx: Ctx<'_>, _observed: &Observed) -> Result<()> {
        self.put_retention(ctx).await
    }

    async fn delete(&self, ctx: Ctx<'_>, _observed: Observed) -> Result<bool> {
        deleted(
            ctx.aws.logs.delete_log_group().log_group_name(&self.name).send().await,
            || format!("deleting log group {}", self.name),
        )
    }
}
