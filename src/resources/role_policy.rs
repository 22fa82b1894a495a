//! The inline policy `wsstack` of a handler role: least-privilege statements scoped to this
//! stack's ARNs, the WebSocket API's among them. Apart from its role so that only this policy
//! waits for the API, while the role (and the functions it runs) need not.
//!
//! It has no tags: it is ours by identity, our policy name on our role.

use anyhow::Result;
use serde_json::Value;

use super::errors::{deleted, found};
use super::role::{decode, PolicyFor, POLICY_NAME};
use super::{compact, same_policy, Created, Ctx, Diff, Id, Lifecycle};
use crate::aws::sdk_error;
use crate::graph::{Key, Later};
use crate::names::RoleKind;

impl Key {
    /// The inline policy `wsstack` of a handler role.
    pub fn role_policy(kind: RoleKind) -> Key {
        Key::each("role-policy", kind.suffix())
    }
}

#[derive(Clone)]
pub struct RolePolicySpec {
    pub role: RoleKind,
    pub role_name: String,
    pub policy: PolicyFor,
}

/// The policy document as IAM has it.
pub struct Observed(String);

impl RolePolicySpec {
    /// The document, which names the API: known once the API exists.
    fn desired(&self, ctx: Ctx<'_>) -> Later<Value> {
        ctx.resolved.later_api_id().map(|api| (self.policy)(api))
    }

    async fn put(&self, ctx: Ctx<'_>) -> Result<()> {
        let api = ctx
            .resolved
            .require_api(&format!("the policy of IAM role {}", self.role_name))?;
        let call = ctx.aws.iam.put_role_policy().role_name(&self.role_name);
        call.policy_name(POLICY_NAME)
            .policy_document(compact(&(self.policy)(api)))
            .send()
            .await
            .map_err(|e| {
                sdk_error(
                    format!("writing policy {POLICY_NAME} of IAM role {}", self.role_name),
                    e,
                )
            })?;
        Ok(())
    }
}

impl Lifecycle for RolePolicySpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new(
            "IAM role policy",
            Key::role_policy(self.role.clone()),
            format!("{}/{POLICY_NAME}", self.role_name),
        )
    }
    /// The policy names the API. Taken down before its role, which IAM refuses to delete while it
    /// has a policy.
    fn depends_on(&self) -> Vec<Key> {
        vec![Key::role(self.role.clone()), Key::api()]
    }
    fn gone_before(&self) -> Vec<Key> {
        vec![Key::role(self.role.clone())]
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let call = ctx.aws.iam.get_role_policy().role_name(&self.role_name);
        // NoSuchEntity also when the role itself is missing.
        let read = found(call.policy_name(POLICY_NAME).send().await, || {
            format!("reading policy {POLICY_NAME} of IAM role {}", self.role_name)
        })?;
        Ok(read.map(|r| Observed(decode(&r.policy_document))))
    }

    fn diffs(&self, ctx: Ctx<'_>, observed: &Observed) -> Vec<Diff> {
        match self.desired(ctx) {
            Later::Known(desired) if same_policy(&observed.0, &desired) => Vec::new(),
            desired => vec![Diff::new("policy", &observed.0, desired.map(|d| compact(&d)))],
        }
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        self.put(ctx).await?;
        Ok(Created::New(None))
    }

    async fn update(&self, ctx: Ctx<'_>, _observed: &Observed) -> Result<()> {
        self.put(ctx).await
    }

    async fn delete(&self, ctx: Ctx<'_>, _observed: Observed) -> Result<bool> {
        let call = ctx.aws.iam.delete_role_policy().role_name(&self.role_name);
        deleted(call.policy_name(POLICY_NAME).send().await, || {
            format!("deleting policy {POLICY_NAME} of IAM role {}", self.role_name)
        })
    }
}
