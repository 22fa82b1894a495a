//! IAM role of a kind of handler: trust policy for Lambda and the stack's tags. Its inline policy
//! `wsstack` (least-privilege statements scoped to this stack's ARNs, the API's among them) is its
//! own resource (`role_policy`), so the role, and the functions that need it, do not wait for the
//! API; any other inline policy is removed.
//!
//! Roles are global to the account; their names carry the region (see `names`).

use std::sync::Arc;

use anyhow::Result;
use serde_json::{json, Value};

use super::errors::{created, deleted, found};
use super::tagging::{self, TagsAt};
use super::{compact, same_policy, Created, Ctx, Diff, Id, Lifecycle, Tags};
use crate::aws::{sdk_error, Aws};
use crate::graph::Key;
use crate::names::RoleKind;
use crate::retry::{eventually, ROLE_DELETE_CONFLICT};

impl Key {
    /// A handler role.
    pub fn role(kind: RoleKind) -> Key {
        Key::each("role", kind.suffix())
    }
}

/// The name of the one inline policy wsstack manages on each role.
pub const POLICY_NAME: &str = "wsstack";

/// A role's policy for a given WebSocket API id (written once the API exists).
pub type PolicyFor = Arc<dyn Fn(&str) -> Value + Send + Sync>;

#[derive(Clone)]
pub struct RoleSpec {
    pub role: RoleKind,
    pub name: String,
    pub description: String,
    pub policy: PolicyFor,
    pub tags: Tags,
}

/// What exists in AWS for a role.
pub struct Observed {
    trust: String,
    description: String,
    tags: Tags,
    /// The names of its inline policies.
    policies: Vec<String>,
}

pub fn trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
}

pub(super) fn decode(document: &str) -> String {
    // IAM returns policy documents URL-encoded.
    urlencoding::decode(document)
        .map(|d| d.into_owned())
        .unwrap_or_else(|_| document.to_string())
}

impl RoleSpec {
    /// The role's policy `wsstack`, as its own resource.
    pub fn policy_resource(&self) -> super::role_policy::RolePolicySpec {
        super::role_policy::RolePolicySpec {
            role: self.role.clone(),
            role_name: self.name.clone(),
            policy: self.policy.clone(),
        }
    }

    async fn list_tags(&self, aws: &Aws) -> Result<Option<Tags>> {
        let mut tags = Tags::new();
        let mut pages = aws.iam.list_role_tags().role_name(&self.name).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = found(page, || format!("listing tags of IAM role {}", self.name))?;
            let Some(page) = page else { return Ok(None) };
            tags.extend(page.tags.into_iter().map(|t| (t.key, t.value)));
        }
        Ok(Some(tags))
    }

    /// The names of its inline policies.
    async fn policies(&self, aws: &Aws) -> Result<Option<Vec<String>>> {
        let listed = aws.iam.list_role_policies().role_name(&self.name).send().await;
        let listed = found(listed, || format!("listing inline policies of IAM role {}", self.name))?;
        Ok(listed.map(|l| l.policy_names))
    }

    async fn delete_policy(&self, aws: &Aws, policy: &str) -> Result<()> {
        let call = aws.iam.delete_role_policy().role_name(&self.name).policy_name(policy);
        deleted(call.send().await, || {
            format!("deleting policy {policy} of IAM role {}", self.name)
        })?;
        Ok(())
    }
}

impl Lifecycle for RoleSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new("IAM role", Key::role(self.role.clone()), &self.name).tagged(&self.tags)
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let aws = ctx.aws;
        // One round trip: every read only needs the name. When the role is missing, the others'
        // errors say nothing more.
        let (role, tags, policies) = futures::join!(
            aws.iam.get_role().role_name(&self.name).send(),
            self.list_tags(aws),
            self.policies(aws)
        );
        let role = found(role, || format!("reading IAM role {}", self.name))?;
        let Some(role) = role.and_then(|r| r.role) else {
            return Ok(None);
        };
        let (Some(tags), Some(policies)) = (tags?, policies?) else {
            return Ok(None);
        };
        Ok(Some(Observed {
            trust: decode(role.assume_role_policy_document().unwrap_or_default()),
            description: role.description().unwrap_or_default().to_string(),
            tags,
            policies,
        }))
    }
    fn tags_in_aws<'o>(&self, o: &'o Observed) -> Option<(&'o Tags, TagsAt)> {
        Some((&o.tags, TagsAt::IamRole(self.name.clone())))
    }

    fn diffs(&self, _ctx: Ctx<'_>, observed: &Observed) -> Vec<Diff> {
        let mut diffs = Vec::new();
        let trust = trust_policy();
        if !same_policy(&observed.trust, &trust) {
            diffs.push(Diff::new("trust policy", &observed.trust, compact(&trust)));
        }
        if observed.description != self.description {
            diffs.push(Diff::new("description", &observed.description, &self.description));
        }
        for name in observed.policies.iter().filter(|name| *name != POLICY_NAME) {
            diffs.push(Diff::new("inline policies", name, "(removed)"));
        }
        diffs
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        let call = ctx.aws.iam.create_role().role_name(&self.name);
        let call = call
            .description(&self.description)
            .assume_role_policy_document(compact(&trust_policy()))
            .set_tags(Some(tagging::iam(&self.tags)?));
        // Another `up` of the same stack may have created it a moment ago.
        if !created(call.send().await, || format!("creating IAM role {}", self.name))? {
            return Ok(Created::AlreadyExists);
        }
        Ok(Created::New(None))
    }

    async fn update(&self, ctx: Ctx<'_>, observed: &Observed) -> Result<()> {
        let aws = ctx.aws;
        let trust = trust_policy();
        if !same_policy(&observed.trust, &trust) {
            let call = aws.iam.update_assume_role_policy().role_name(&self.name);
            call.policy_document(compact(&trust))
                .send()
                .await
                .map_err(|e| sdk_error(format!("updating the trust policy of IAM role {}", self.name), e))?;
        }
        if observed.description != self.description {
            let call = aws.iam.update_role().role_name(&self.name);
            call.description(&self.description)
                .send()
                .await
                .map_err(|e| sdk_error(format!("updating IAM role {}", self.name), e))?;
        }
        for name in observed.policies.iter().filter(|name| *name != POLICY_NAME) {
            self.delete_policy(aws, name).await?;
        }
        Ok(())
    }

    async fn delete(&self, ctx: Ctx<'_>, observed: Observed) -> Result<bool> {
        let aws = ctx.aws;
        // DeleteRole refuses a role with policies, inline or attached.
        for policy in &observed.policies {
            self.delete_policy(aws, policy).await?;
        }
        let attached = aws.iam.list_attached_role_policies().role_name(&self.name).send().await;
        let Some(attached) = found(attached, || {
            format!("listing managed policies of IAM role {}", self.name)
        })?
        else {
            return Ok(false);
        };
        for arn in attached.attached_policies().iter().filter_map(|p| p.policy_arn()) {
            let call = aws.iam.detach_role_policy().role_name(&self.name).policy_arn(arn);
            call.send()
                .await
                .map_err(|e| sdk_error(format!("detaching {arn} from IAM role {}", self.name), e))?;
        }
        // IAM is eventually consistent: right after the last DeleteRolePolicy, DeleteRole may
        // still see the policy and answer DeleteConflict for a few seconds.
        let result = eventually(
            ROLE_DELETE_CONFLICT,
            |e: &aws_sdk_iam::error::SdkError<aws_sdk_iam::operation::delete_role::DeleteRoleError, _>| {
                e.as_service_error().is_some_and(|e| e.is_delete_conflict_exception())
            },
            || aws.iam.delete_role().role_name(&self.name).send(),
        )
        .await;
        deleted(result, || format!("deleting IAM role {}", self.name))
    }
}
