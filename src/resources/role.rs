//! IAM role of a kind of handler: trust policy for Lambda, one inline policy (`wsstack`) with
//! least-privilege statements scoped to this stack's ARNs, and the stack's tags.
//!
//! Roles are global to the account; their names carry the region (see `names`).

use anyhow::Result;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Value};

use super::{
    compact, foreign_reason, owned_by, same_policy, tag_changes, tag_diff, Change, Diff, Resource, State, Tags,
};
use crate::aws::{sdk_error, Aws};

/// The name of the one inline policy wsstack manages on each role.
pub const POLICY_NAME: &str = "wsstack";

/// Stands for the WebSocket API id in a policy written before the API exists.
pub const API_ID: &str = "${wsstack:ApiId}";

#[derive(Debug, Clone)]
pub struct RoleSpec {
    pub key: String,
    pub name: String,
    pub stack: String,
    pub description: String,
    /// The policy; `API_ID` in it is replaced by the API id when known.
    pub policy: Value,
    pub tags: Tags,
    pub depends_on: Vec<String>,
}

/// What exists in AWS for a role.
struct Observed {
    trust: String,
    description: String,
    tags: Tags,
    /// The inline policies by name, with their documents.
    policies: Vec<(String, String)>,
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

fn decode(document: &str) -> String {
    // IAM returns policy documents URL-encoded.
    urlencoding::decode(document)
        .map(|d| d.into_owned())
        .unwrap_or_else(|_| document.to_string())
}

impl RoleSpec {
    fn desired_policy(&self, aws: &Aws) -> Value {
        let api = aws.api_id().unwrap_or_else(|| super::function::AFTER_API.to_string());
        let text = compact(&self.policy).replace(API_ID, &api);
        serde_json::from_str(&text).expect("a policy stays JSON when the API id goes in")
    }

    async fn observe(&self, aws: &Aws) -> Result<Option<Observed>> {
        let role = match aws.iam.get_role().role_name(&self.name).send().await {
            Ok(output) => output.role,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => return Ok(None),
            Err(e) => return Err(sdk_error(format!("reading IAM role {}", self.name), e)),
        };
        let Some(role) = role else { return Ok(None) };
        let tags_output = self.list_tags(aws).await?;
        let Some(tags) = tags_output else { return Ok(None) };
        let names = match aws.iam.list_role_policies().role_name(&self.name).send().await {
            Ok(output) => output.policy_names,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => return Ok(None),
            Err(e) => {
                return Err(sdk_error(
                    format!("listing inline policies of IAM role {}", self.name),
                    e,
                ))
            }
        };
        let mut policies = Vec::new();
        for policy_name in names {
            let document = if policy_name == POLICY_NAME {
                match aws
                    .iam
                    .get_role_policy()
                    .role_name(&self.name)
                    .policy_name(&policy_name)
                    .send()
                    .await
                {
                    Ok(output) => decode(&output.policy_document),
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => continue,
                    Err(e) => {
                        return Err(sdk_error(
                            format!("reading policy {policy_name} of IAM role {}", self.name),
                            e,
                        ))
                    }
                }
            } else {
                String::new() // not ours: only its name matters, it will be removed
            };
            policies.push((policy_name, document));
        }
        Ok(Some(Observed {
            trust: decode(role.assume_role_policy_document().unwrap_or_default()),
            description: role.description().unwrap_or_default().to_string(),
            tags,
            policies,
        }))
    }

    async fn list_tags(&self, aws: &Aws) -> Result<Option<Tags>> {
        let mut tags = Tags::new();
        let mut marker = None;
        loop {
            match aws
                .iam
                .list_role_tags()
                .role_name(&self.name)
                .set_marker(marker)
                .send()
                .await
            {
                Ok(output) => {
                    for tag in output.tags {
                        tags.insert(tag.key, tag.value);
                    }
                    if !output.is_truncated {
                        return Ok(Some(tags));
                    }
                    marker = output.marker;
                }
                Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => return Ok(None),
                Err(e) => return Err(sdk_error(format!("listing tags of IAM role {}", self.name), e)),
            }
        }
    }

    fn diffs(&self, aws: &Aws, observed: &Observed) -> Vec<Diff> {
        let policy = self.desired_policy(aws);
        let mut diffs = Vec::new();
        let trust = trust_policy();
        if !same_policy(&observed.trust, &trust) {
            diffs.push(Diff::new("trust policy", &observed.trust, compact(&trust)));
        }
        if observed.description != self.description {
            diffs.push(Diff::new("description", &observed.description, &self.description));
        }
        match observed.policies.iter().find(|(name, _)| name == POLICY_NAME) {
            Some((_, document)) if same_policy(document, &policy) => {}
            Some((_, document)) => diffs.push(Diff::new("policy", document, compact(&policy))),
            None => diffs.push(Diff::new("policy", "(none)", compact(&policy))),
        }
        for (name, _) in observed.policies.iter().filter(|(name, _)| name != POLICY_NAME) {
            diffs.push(Diff::new("inline policies", name, "(removed)"));
        }
        diffs.extend(tag_diff(&observed.tags, &self.tags));
        diffs
    }

    async fn create(&self, aws: &Aws) -> Result<bool> {
        let tags = self
            .tags
            .iter()
            .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()?;
        match aws
            .iam
            .create_role()
            .role_name(&self.name)
            .description(&self.description)
            .assume_role_policy_document(compact(&trust_policy()))
            .set_tags(Some(tags))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            // Another `up` of the same stack created it a moment ago: converge it instead.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_entity_already_exists_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(format!("creating IAM role {}", self.name), e)),
        }
    }

    async fn put_policy(&self, aws: &Aws) -> Result<()> {
        aws.iam
            .put_role_policy()
            .role_name(&self.name)
            .policy_name(POLICY_NAME)
            .policy_document(compact(&self.desired_policy(aws)))
            .send()
            .await
            .map_err(|e| sdk_error(format!("writing policy {POLICY_NAME} of IAM role {}", self.name), e))?;
        Ok(())
    }

    async fn update(&self, aws: &Aws, observed: &Observed) -> Result<()> {
        let trust = trust_policy();
        if !same_policy(&observed.trust, &trust) {
            aws.iam
                .update_assume_role_policy()
                .role_name(&self.name)
                .policy_document(compact(&trust))
                .send()
                .await
                .map_err(|e| sdk_error(format!("updating the trust policy of IAM role {}", self.name), e))?;
        }
        if observed.description != self.description {
            aws.iam
                .update_role()
                .role_name(&self.name)
                .description(&self.description)
                .send()
                .await
                .map_err(|e| sdk_error(format!("updating IAM role {}", self.name), e))?;
        }
        let ours = observed.policies.iter().find(|(name, _)| name == POLICY_NAME);
        if !ours.is_some_and(|(_, document)| same_policy(document, &self.desired_policy(aws))) {
            self.put_policy(aws).await?;
        }
        for (name, _) in observed.policies.iter().filter(|(name, _)| name != POLICY_NAME) {
            self.delete_policy(aws, name).await?;
        }
        let (set, remove) = tag_changes(&observed.tags, &self.tags);
        if !set.is_empty() {
            let tags = set
                .iter()
                .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()?;
            aws.iam
                .tag_role()
                .role_name(&self.name)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|e| sdk_error(format!("tagging IAM role {}", self.name), e))?;
        }
        if !remove.is_empty() {
            aws.iam
                .untag_role()
                .role_name(&self.name)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(|e| sdk_error(format!("untagging IAM role {}", self.name), e))?;
        }
        Ok(())
    }

    async fn delete_policy(&self, aws: &Aws, policy: &str) -> Result<()> {
        match aws
            .iam
            .delete_role_policy()
            .role_name(&self.name)
            .policy_name(policy)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => Ok(()),
            Err(e) => Err(sdk_error(
                format!("deleting policy {policy} of IAM role {}", self.name),
                e,
            )),
        }
    }

    async fn inspect_role(&self, aws: &Aws) -> Result<State> {
        Ok(match self.observe(aws).await? {
            None => State::Missing,
            Some(o) if !owned_by(&o.tags, &self.stack) => {
                State::Foreign(foreign_reason(self.kind(), &self.name, &o.tags, &self.stack))
            }
            Some(o) => State::from_diffs(self.diffs(aws, &o)),
        })
    }

    async fn ensure_role(&self, aws: &Aws) -> Result<Change> {
        let observed = match self.observe(aws).await? {
            Some(observed) => observed,
            None => {
                if self.create(aws).await? {
                    self.put_policy(aws).await?;
                    return Ok(Change::Created);
                }
                match self.observe(aws).await? {
                    Some(observed) => observed,
                    None => anyhow::bail!("IAM role {} exists and does not: retry", self.name),
                }
            }
        };
        if !owned_by(&observed.tags, &self.stack) {
            anyhow::bail!(foreign_reason(self.kind(), &self.name, &observed.tags, &self.stack));
        }
        let diffs = self.diffs(aws, &observed);
        if diffs.is_empty() {
            return Ok(Change::Unchanged);
        }
        self.update(aws, &observed).await?;
        Ok(Change::Updated(diffs))
    }

    async fn destroy_role(&self, aws: &Aws) -> Result<Change> {
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
        let policies = match aws.iam.list_role_policies().role_name(&self.name).send().await {
            Ok(output) => output.policy_names,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => {
                return Ok(Change::Absent)
            }
            Err(e) => {
                return Err(sdk_error(
                    format!("listing inline policies of IAM role {}", self.name),
                    e,
                ))
            }
        };
        for policy in policies {
            self.delete_policy(aws, &policy).await?;
        }
        let attached = match aws.iam.list_attached_role_policies().role_name(&self.name).send().await {
            Ok(output) => output.attached_policies.unwrap_or_default(),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => {
                return Ok(Change::Absent)
            }
            Err(e) => {
                return Err(sdk_error(
                    format!("listing managed policies of IAM role {}", self.name),
                    e,
                ))
            }
        };
        for policy in attached {
            if let Some(arn) = policy.policy_arn() {
                aws.iam
                    .detach_role_policy()
                    .role_name(&self.name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(|e| sdk_error(format!("detaching {arn} from IAM role {}", self.name), e))?;
            }
        }
        match aws.iam.delete_role().role_name(&self.name).send().await {
            Ok(_) => Ok(Change::Deleted),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => Ok(Change::Absent),
            Err(e) => Err(sdk_error(format!("deleting IAM role {}", self.name), e)),
        }
    }
}

impl Resource for RoleSpec {
    fn kind(&self) -> &'static str {
        "IAM role"
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
        self.inspect_role(aws).boxed()
    }
    fn ensure<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.ensure_role(aws).boxed()
    }
    fn destroy<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.destroy_role(aws).boxed()
    }
}
