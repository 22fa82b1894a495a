//! The statement in a function's resource policy that lets API Gateway invoke it, scoped to this
//! API, stage and route (`arn:aws:execute-api:{region}:{account}:{api}/{stage}/{route}`).
//! AddPermission with an existing statement id fails, so the policy is read first. The
//! authorizer function's statement is scoped to the API's authorizer instead
//! (`{api}/authorizers/{id}`).

use anyhow::Result;
use serde_json::Value;

use super::errors::{deleted, found};
use super::{Created, Ctx, Diff, Lifecycle};
use crate::aws::sdk_error;
use crate::graph::{Key, NEW_API};

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
    /// `None` while the authorizer this statement names does not exist yet.
    fn source_arn(&self, ctx: Ctx<'_>, api: &str) -> Option<String> {
        let rest = if self.authorizer {
            format!("authorizers/{}", ctx.resolved.get(&Key::Authorizer)?)
        } else {
            format!("{}/{}", self.stage, self.route_key)
        };
        Some(ctx.aws.arns.execute_api(api, &rest))
    }

    async fn add(&self, ctx: Ctx<'_>) -> Result<()> {
        let api = ctx
            .resolved
            .require_api(&format!("the permission of {}", self.function))?;
        ctx.aws
            .lambda
            .add_permission()
            .function_name(&self.function)
            .statement_id(STATEMENT_ID)
            .action("lambda:InvokeFunction")
            .principal(PRINCIPAL)
            .source_arn(self.source_arn(ctx, api).ok_or_else(|| {
                anyhow::anyhow!(
                    "internal: the authorizer id is unknown for the permission of {}",
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

    fn kind(&self) -> &'static str {
        "Lambda permission"
    }
    fn name(&self) -> String {
        let by = if self.authorizer { "authorizer" } else { &self.route_key };
        format!("{} ({by})", self.function)
    }
    fn key(&self) -> Key {
        Key::Permission(self.handler.clone())
    }
    fn depends_on(&self) -> Vec<Key> {
        let mut keys = vec![Key::Function(self.handler.clone())];
        if self.authorizer {
            keys.push(Key::Authorizer);
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
        let desired = match ctx.resolved.api_id() {
            Some(api) => self
                .source_arn(ctx, api)
                .unwrap_or_else(|| "(new authorizer)".to_string()),
            None => NEW_API.to_string(),
        };
        if o.0.as_deref() == Some(desired.as_str()) {
            return Vec::new();
        }
        vec![Diff::new("source ARN", o.0.as_deref().unwrap_or("(none)"), desired)]
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
