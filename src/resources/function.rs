//! Lambda function of one handler: `provided.al2023`, handler `bootstrap`, the stack's memory,
//! timeout and architecture, its environment (handler kind, table, TTL, callback URL) and tags.
//!
//! Code is uploaded only when the bundle's CodeSha256 differs from the deployed one, configuration
//! only when it differs; every update waits for `LastUpdateStatus=Successful` before the next one.
//! A fresh role is not assumable for a few seconds on AWS: creation retries that error.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use aws_sdk_lambda::client::Waiters;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, Runtime};
use futures::future::BoxFuture;
use futures::FutureExt;

use super::{foreign_reason, owned_by, tag_changes, tag_diff, Change, Diff, Resource, State, Tags};
use crate::aws::{sdk_error, Aws};
use crate::bundle::Bundle;
use crate::retry::{eventually, ROLE_PROPAGATION};

/// How long a function may take to become Active or finish an update.
const SETTLE: Duration = Duration::from_secs(300);
/// Placeholder for values known only once the WebSocket API exists.
pub const AFTER_API: &str = "(known once the API exists)";

#[derive(Clone)]
pub struct FunctionSpec {
    pub key: String,
    pub name: String,
    pub arn: String,
    pub stack: String,
    pub stage: String,
    pub description: String,
    pub role_arn: String,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    /// Environment without CALLBACK_URL, which comes from the API id at run time.
    pub environment: BTreeMap<String, String>,
    pub bundle: Option<Bundle>,
    pub tags: Tags,
    pub depends_on: Vec<String>,
}

struct Observed {
    code_sha256: String,
    memory_mb: i32,
    timeout_seconds: i32,
    role: String,
    runtime: String,
    handler: String,
    architecture: String,
    environment: BTreeMap<String, String>,
    tags: Tags,
}

/// The configuration fields `up` manages, as (field, current, desired).
type ConfigDiff = (String, String, String);

impl FunctionSpec {
    fn desired_environment(&self, aws: &Aws) -> BTreeMap<String, String> {
        let mut environment = self.environment.clone();
        let callback = aws.callback_url(&self.stage).unwrap_or_else(|| AFTER_API.to_string());
        environment.insert("CALLBACK_URL".into(), callback);
        environment
    }

    fn bundle(&self) -> Result<&Bundle> {
        self.bundle
            .as_ref()
            .ok_or_else(|| anyhow!("no handlers package to deploy (see --handlers-zip)"))
    }

    async fn observe(&self, aws: &Aws) -> Result<Option<Observed>> {
        let output = match aws.lambda.get_function().function_name(&self.name).send().await {
            Ok(output) => output,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(sdk_error(format!("reading Lambda function {}", self.name), e)),
        };
        let Some(config) = output.configuration else {
            return Ok(None);
        };
        Ok(Some(Observed {
            code_sha256: config.code_sha256().unwrap_or_default().to_string(),
            memory_mb: config.memory_size().unwrap_or_default(),
            timeout_seconds: config.timeout().unwrap_or_default(),
            role: config.role().unwrap_or_default().to_string(),
            runtime: config.runtime().map(|r| r.as_str().to_string()).unwrap_or_default(),
            handler: config.handler().unwrap_or_default().to_string(),
            architecture: config
                .architectures()
                .first()
                .map(|a| a.as_str().to_string())
                .unwrap_or_else(|| "x86_64".into()),
            environment: config
                .environment()
                .and_then(|e| e.variables())
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            tags: output.tags.unwrap_or_default().into_iter().collect(),
        }))
    }

    fn config_diffs(&self, aws: &Aws, o: &Observed) -> Vec<ConfigDiff> {
        let mut diffs = Vec::new();
        let mut check = |field: &str, current: String, desired: String| {
            if current != desired {
                diffs.push((field.to_string(), current, desired));
            }
        };
        check("memory", o.memory_mb.to_string(), self.memory_mb.to_string());
        check(
            "timeout",
            o.timeout_seconds.to_string(),
            self.timeout_seconds.to_string(),
        );
        check("role", o.role.clone(), self.role_arn.clone());
        check(
            "runtime",
            o.runtime.clone(),
            Runtime::Providedal2023.as_str().to_string(),
        );
        check("handler", o.handler.clone(), "bootstrap".to_string());
        let desired = self.desired_environment(aws);
        for key in desired
            .keys()
            .chain(o.environment.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let current = o.environment.get(key).cloned().unwrap_or_else(|| "(unset)".into());
            let wanted = desired.get(key).cloned().unwrap_or_else(|| "(unset)".into());
            check(&format!("environment {key}"), current, wanted);
        }
        diffs
    }

    fn code_differs(&self, o: &Observed) -> bool {
        // Without a bundle (status/plan of a binary built without handlers) code is not compared.
        self.bundle.as_ref().is_some_and(|b| b.sha256 != o.code_sha256) || o.architecture != "x86_64"
    }

    fn diffs(&self, aws: &Aws, o: &Observed) -> Vec<Diff> {
        let mut diffs: Vec<Diff> = Vec::new();
        if self.code_differs(o) {
            let desired = self.bundle.as_ref().map(|b| b.sha256.clone()).unwrap_or_default();
            diffs.push(Diff::new("code", &o.code_sha256, desired));
        }
        diffs.extend(
            self.config_diffs(aws, o)
                .into_iter()
                .map(|(field, current, desired)| Diff::new(&field, current, desired)),
        );
        diffs.extend(tag_diff(&o.tags, &self.tags));
        diffs
    }

    async fn wait_updated(&self, aws: &Aws) -> Result<()> {
        aws.lambda
            .wait_until_function_updated_v2()
            .function_name(&self.name)
            .wait(SETTLE)
            .await
            .map_err(|e| {
                sdk_error(
                    format!("waiting for Lambda function {} to finish updating", self.name),
                    e,
                )
            })?;
        Ok(())
    }

    async fn create(&self, aws: &Aws) -> Result<bool> {
        let bundle = self.bundle()?;
        let environment = Environment::builder()
            .set_variables(Some(self.desired_environment(aws).into_iter().collect()))
            .build();
        let result = eventually(
            ROLE_PROPAGATION,
            |e: &aws_sdk_lambda::error::SdkError<
                aws_sdk_lambda::operation::create_function::CreateFunctionError,
                _,
            >| { is_role_not_ready(e.as_service_error().map(|e| e.to_string())) },
            || {
                aws.lambda
                    .create_function()
                    .function_name(&self.name)
                    .description(&self.description)
                    .runtime(Runtime::Providedal2023)
                    .handler("bootstrap")
                    .role(&self.role_arn)
                    .architectures(Architecture::X8664)
                    .memory_size(self.memory_mb)
                    .timeout(self.timeout_seconds)
                    .environment(environment.clone())
                    .code(FunctionCode::builder().zip_file(Blob::new(bundle.zip.clone())).build())
                    .set_tags(Some(self.tags.clone().into_iter().collect()))
                    .send()
            },
        )
        .await;
        match result {
            Ok(_) => {}
            // A concurrent or interrupted run created it: converge it instead.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_conflict_exception()) => return Ok(false),
            Err(e) => return Err(sdk_error(format!("creating Lambda function {}", self.name), e)),
        }
        aws.lambda
            .wait_until_function_active_v2()
            .function_name(&self.name)
            .wait(SETTLE)
            .await
            .map_err(|e| sdk_error(format!("waiting for Lambda function {} to become active", self.name), e))?;
        Ok(true)
    }

    async fn update(&self, aws: &Aws, observed: &Observed) -> Result<()> {
        if self.code_differs(observed) {
            let bundle = self.bundle()?;
            aws.lambda
                .update_function_code()
                .function_name(&self.name)
                .zip_file(Blob::new(bundle.zip.clone()))
                .architectures(Architecture::X8664)
                .send()
                .await
                .map_err(|e| sdk_error(format!("uploading the code of Lambda function {}", self.name), e))?;
            self.wait_updated(aws).await?;
        }
        if !self.config_diffs(aws, observed).is_empty() {
            let environment = Environment::builder()
                .set_variables(Some(self.desired_environment(aws).into_iter().collect()))
                .build();
            eventually(
                ROLE_PROPAGATION,
                |e: &aws_sdk_lambda::error::SdkError<
                    aws_sdk_lambda::operation::update_function_configuration::UpdateFunctionConfigurationError,
                    _,
                >| is_role_not_ready(e.as_service_error().map(|e| e.to_string())),
                || {
                    aws.lambda
                        .update_function_configuration()
                        .function_name(&self.name)
                        .runtime(Runtime::Providedal2023)
                        .handler("bootstrap")
                        .role(&self.role_arn)
                        .memory_size(self.memory_mb)
                        .timeout(self.timeout_seconds)
                        .environment(environment.clone())
                        .send()
                },
            )
            .await
            .map_err(|e| {
                sdk_error(
                    format!("updating the configuration of Lambda function {}", self.name),
                    e,
                )
            })?;
            self.wait_updated(aws).await?;
        }
        let (set, remove) = tag_changes(&observed.tags, &self.tags);
        if !set.is_empty() {
            aws.lambda
                .tag_resource()
                .resource(&self.arn)
                .set_tags(Some(set.into_iter().collect()))
                .send()
                .await
                .map_err(|e| sdk_error(format!("tagging Lambda function {}", self.name), e))?;
        }
        if !remove.is_empty() {
            aws.lambda
                .untag_resource()
                .resource(&self.arn)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(|e| sdk_error(format!("untagging Lambda function {}", self.name), e))?;
        }
        Ok(())
    }

    async fn inspect_function(&self, aws: &Aws) -> Result<State> {
        Ok(match self.observe(aws).await? {
            None => State::Missing,
            Some(o) if !owned_by(&o.tags, &self.stack) => {
                State::Foreign(foreign_reason(self.kind(), &self.name, &o.tags, &self.stack))
            }
            Some(o) => State::from_diffs(self.diffs(aws, &o)),
        })
    }

    async fn ensure_function(&self, aws: &Aws) -> Result<Change> {
        if aws.api_id().is_none() {
            bail!("internal: the WebSocket API id is unknown when deploying {}", self.name);
        }
        let observed = match self.observe(aws).await? {
            Some(o) => o,
            None => {
                if self.create(aws).await? {
                    return Ok(Change::Created);
                }
                self.observe(aws)
                    .await?
                    .ok_or_else(|| anyhow!("Lambda function {} vanished while being created", self.name))?
            }
        };
        if !owned_by(&observed.tags, &self.stack) {
            bail!(foreign_reason(self.kind(), &self.name, &observed.tags, &self.stack));
        }
        let diffs = self.diffs(aws, &observed);
        if diffs.is_empty() {
            return Ok(Change::Unchanged);
        }
        self.update(aws, &observed).await?;
        Ok(Change::Updated(diffs))
    }

    async fn destroy_function(&self, aws: &Aws) -> Result<Change> {
        let Some(observed) = self.observe(aws).await? else {
            return Ok(Change::Absent);
        };
        if !owned_by(&observed.tags, &self.stack) {
            return Ok(Change::Skipped(foreign_reason(
                self.kind(),
                &self.name,
                &observed.tags,
                &self.stack,
            )));
        }
        match aws.lambda.delete_function().function_name(&self.name).send().await {
            Ok(_) => Ok(Change::Deleted),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(Change::Absent)
            }
            Err(e) => Err(sdk_error(format!("deleting Lambda function {}", self.name), e)),
        }
    }
}

/// Lambda's error for a role IAM has not propagated yet.
pub fn is_role_not_ready(message: Option<String>) -> bool {
    message.is_some_and(|m| m.contains("cannot be assumed by Lambda") || m.contains("role defined for the function"))
}

impl Resource for FunctionSpec {
    fn kind(&self) -> &'static str {
        "Lambda function"
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
        self.inspect_function(aws).boxed()
    }
    fn ensure<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.ensure_function(aws).boxed()
    }
    fn destroy<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.destroy_function(aws).boxed()
    }
}
