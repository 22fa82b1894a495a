//! The statement in a function's resource policy that lets API Gateway invoke it, scoped to this
//! API, stage and route (`arn:aws:execute-api:{region}:{account}:{api}/{stage}/{route}`).
//! AddPermission with an existing statement id fails, so the policy is read first.

use anyhow::{anyhow, Result};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::Value;

use super::{Change, Diff, Resource, State};
use crate::aws::{sdk_error, Aws};

pub const STATEMENT_ID: &str = "wsstack-apigateway";
const PRINCIPAL: &str = "apigateway.amazonaws.com";

#[derive(Debug, Clone)]
pub struct PermissionSpec {
    pub key: String,
    pub function: String,
    pub stage: String,
    pub route_key: String,
    pub depends_on: Vec<String>,
}

impl PermissionSpec {
    fn source_arn(&self, aws: &Aws) -> Option<String> {
        aws.api_id().map(|api| {
            aws.arns
                .execute_api(&api, &format!("{}/{}", self.stage, self.route_key))
        })
    }

    /// The SourceArn of our statement, `Some(None)` for a statement without one, `None` when there
    /// is no statement (or no function).
    async fn observe(&self, aws: &Aws) -> Result<Option<Option<String>>> {
        let policy = match aws.lambda.get_policy().function_name(&self.function).send().await {
            Ok(output) => output.policy.unwrap_or_default(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None)
            }
            Err(e) => {
                return Err(sdk_error(
                    format!("reading the policy of Lambda function {}", self.function),
                    e,
                ))
            }
        };
        let policy: Value = serde_json::from_str(&policy).unwrap_or(Value::Null);
        let statement = policy["Statement"]
            .as_array()
            .and_then(|statements| statements.iter().find(|s| s["Sid"] == STATEMENT_ID))
            .cloned();
        Ok(statement.map(|s| {
            s["Condition"]["ArnLike"]["AWS:SourceArn"]
                .as_str()
                .or_else(|| s["Condition"]["ArnLike"]["aws:SourceArn"].as_str())
                .map(String::from)
        }))
    }

    fn diff(&self, aws: &Aws, current: &Option<String>) -> Option<Diff> {
        let desired = self
            .source_arn(aws)
            .unwrap_or_else(|| super::function::AFTER_API.into());
        if current.as_deref() == Some(desired.as_str()) {
            None
        } else {
            Some(Diff::new("source ARN", current.as_deref().unwrap_or("(none)"), desired))
        }
    }

    async fn add(&self, aws: &Aws, source_arn: &str) -> Result<()> {
        aws.lambda
            .add_permission()
            .function_name(&self.function)
            .statement_id(STATEMENT_ID)
            .action("lambda:InvokeFunction")
            .principal(PRINCIPAL)
            .source_arn(source_arn)
            .send()
            .await
            .map_err(|e| sdk_error(format!("allowing API Gateway to invoke {}", self.function), e))?;
        Ok(())
    }

    async fn remove(&self, aws: &Aws) -> Result<bool> {
        match aws
            .lambda
            .remove_permission()
            .function_name(&self.function)
            .statement_id(STATEMENT_ID)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(
                format!("removing the API Gateway permission of {}", self.function),
                e,
            )),
        }
    }

    async fn inspect_permission(&self, aws: &Aws) -> Result<State> {
        Ok(match self.observe(aws).await? {
            None => State::Missing,
            Some(current) => match self.diff(aws, &current) {
                None => State::InSync,
                Some(diff) => State::Drifted(vec![diff]),
            },
        })
    }

    async fn ensure_permission(&self, aws: &Aws) -> Result<Change> {
        let source_arn = self
            .source_arn(aws)
            .ok_or_else(|| anyhow!("internal: no API id for the permission of {}", self.function))?;
        match self.observe(aws).await? {
            None => {
                self.add(aws, &source_arn).await?;
                Ok(Change::Created)
            }
            Some(current) => match self.diff(aws, &current) {
                None => Ok(Change::Unchanged),
                Some(diff) => {
                    self.remove(aws).await?;
                    self.add(aws, &source_arn).await?;
                    Ok(Change::Updated(vec![diff]))
                }
            },
        }
    }

    async fn destroy_permission(&self, aws: &Aws) -> Result<Change> {
        if self.observe(aws).await?.is_none() {
            return Ok(Change::Absent);
        }
        Ok(if self.remove(aws).await? {
            Change::Deleted
        } else {
            Change::Absent
        })
    }
}

impl Resource for PermissionSpec {
    fn kind(&self) -> &'static str {
        "Lambda permission"
    }
    fn name(&self) -> String {
        format!("{} ({})", self.function, self.route_key)
    }
    fn key(&self) -> String {
        self.key.clone()
    }
    fn depends_on(&self) -> Vec<String> {
        self.depends_on.clone()
    }
    fn inspect<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<State>> {
        self.inspect_permission(aws).boxed()
    }
    fn ensure<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.ensure_permission(aws).boxed()
    }
    fn destroy<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.destroy_permission(aws).boxed()
    }
}
