//! The statement in a function's resource policy that lets API Gateway invoke it, scoped to this
//! API, stage and route (`arn:aws:execute-api:{region}:{account}:{api}/{stage}/{route}`).
//! AddPermission with an existing statement id fails, so the policy is read first. The
//! authorizer function's statement is scoped to the API's authorizer instead
//! (`{api}/authorizers/{id}`).

use anyhow::Result;
use serde_json::Value;

use super::errors::{deleted, found};
use super::{Created, Ctx, Diff, Id, Lifecycle};
use crate::aws::sdk_error;
use crate::graph::{Key, Later};

impl Key {
    /// The permission that lets API Gateway invoke a handler's function.
    pub fn permission(handler: impl Into<String>) -> Key {
        Key::each("permission", handler)
    }
}

pub const STATEMENT_ID: &str = "wsstack-apigateway";
const PRINCIPAL: &str = "apigateway.amazonaws.com";

#[derive(Debug, Clone)]
pub struct PermissionSpec {
    pub handler: String,
    pub function: String,
    pub stage: String,
    pub route_key: String,
    /// The API's authorizer invokes this function, not a route.
    pub authorizer: bool,
}

/// The SourceArn of our statement (`None` for a statement without one).
pub struct Observed(Option<String>);

impl PermissionSpec {
    /// The statement's SourceArn: it names the API, and the authorizer for the authorizer's
    /// function, each known once created.
    fn source_arn(&self, ctx: Ctx<'_>) -> Later<String> {
        ctx.resolved.later_api_id().and_then(|api| {
            let rest = if self.authorizer {
                ctx.resolved.later_authorizer_id().map(|id| format!("authorizers/{id}"))
            } else {
                Later::Known(format!("{}/{}", self.stage, self.route_key))
            };
            rest.map(|rest| ctx.aws.arns.execute_api(api, &rest))
        })
    }

    async fn add(&self, ctx: Ctx<'_>) -> Result<()> {
        ctx.aws
            .lambda
            .add_permission()
            .function_name(&self.function)
            .statement_id(STATEMENT_ID)
            .action("lambda:InvokeFunction")
            .principal(PRINCIPAL)
            .source_arn(self.source_arn(ctx).known().ok_or_else(|| {
                anyhow::anyhow!(
                    "internal: the API or the authorizer is unknown for the permission of {}",
                    self.function
                )
            })?)
            .send()
            .await
            .map_err(|e| sdk_error(format!("allowing API Gateway to invoke {}", self.function), e))?;
        Ok(())
    }

    async fn remove(&self, ctx: Ctx<'_>) -> Result<bool> {
        let call = ctx.aws.lambda.remove_permission().function_name(&self.function);
        deleted(call.statement_id(STATEMENT_ID).send().await, || {
            format!("removing the API Gateway permission of {}", self.function)
        })
    }
}

impl Lifecycle for PermissionSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        let by = if self.authorizer { "authorizer" } else { &self.route_key };
        Id::new(
            "Lambda permission",
            Key::permission(self.handler.clone()),
            format!("{} ({by})", self.function),
        )
    }
    fn depends_on(&self) -> Vec<Key> {
        let mut keys = vec![Key::function(self.handler.clone())];
        if self.authorizer {
            keys.push(Key::authorizer());
        }
        keys
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let call = ctx.aws.lambda.get_policy().function_name(&self.function);
        let Some(output) = found(call.send().await, || {
            format!("reading the policy of Lambda function {}", self.function)
        })?
        else {
            return Ok(None);
        };
        let policy: Value = serde_json::from_str(&output.policy.unwrap_or_default()).unwrap_or(Value::Null);
        let statement = policy["Statement"]
            .as_array()
            .and_then(|statements| statements.iter().find(|s| s["Sid"] == STATEMENT_ID))
            .cloned();
        Ok(statement.map(|s| {
            let condition = &s["Condition"]["ArnLike"];
            Observed(
                condition["AWS:SourceArn"]
                    .as_str()
                    .or_else(|| condition["aws:SourceArn"].as_str())
                    .map(String::from),
            )
        }))
    }

    fn diffs(&self, ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        match self.source_arn(ctx) {
            Later::Known(desired) if o.0.as_deref() == Some(desired.as_str()) => Vec::new(),
            desired => vec![Diff::new("source ARN", o.0.as_deref().unwrap_or("(none)"), desired)],
        }
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        self.add(ctx).await?;
        Ok(Created::New(None))
    }

    async fn update(&self, ctx: Ctx<'_>, _observed: &Observed) -> Result<()> {
        self.remove(ctx).await?;
        self.add(ctx).await
    }

    async fn delete(&self, ctx: Ctx<'_>, _observed: Observed) -> Result<bool> {
        self.remove(ctx).await
    }
}
