//! Lambda function of one handler: `provided.al2023`, handler `bootstrap`, the stack's memory,
//! timeout and architecture, its environment (handler kind, table, TTL, callback URL) and tags.
//!
//! Code is uploaded only when the bundle's CodeSha256 differs from the deployed one, configuration
//! only when it differs; every update waits for the function to be Active with no update in
//! progress (AWS refuses one meanwhile), and for `LastUpdateStatus=Successful` after it.
//! A fresh role is not assumable for a few seconds on AWS: creation retries that error.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use aws_sdk_lambda::client::Waiters;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, Runtime};

use super::errors::{created, deleted, found};
use super::tagging::TagsAt;
use super::transient;
use super::{Created, Ctx, Diff, Id, Lifecycle, Tags};
use crate::aws::sdk_error;
use crate::bundle::Bundle;
use crate::graph::{callback_url, Key, Later, QueueKind};
use crate::names::RoleKind;
use crate::retry::{eventually, FUNCTION_BUSY, ROLE_PROPAGATION};

impl Key {
    /// A handler's Lambda function, by handler name (`connect`, `push`, `route-sendMessage`).
    pub fn function(handler: impl Into<String>) -> Key {
        Key::each("function", handler)
    }
}

/// How long a function may take to become Active or finish an update.
const SETTLE: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct FunctionSpec {
    pub handler: String,
    pub name: String,
    pub arn: String,
    pub stage: String,
    pub description: String,
    pub role: RoleKind,
    pub role_arn: String,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    pub architecture: Architecture,
    /// Environment without CALLBACK_URL, which comes from the API id at run time.
    pub environment: BTreeMap<String, String>,
    pub bundle: Option<Bundle>,
    pub tags: Tags,
}

pub struct Observed {
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

impl FunctionSpec {
    /// The environment with the callback URL, which is known once the API exists.
    fn desired_environment(&self, ctx: Ctx<'_>) -> BTreeMap<String, Later<String>> {
        let mut environment: BTreeMap<String, Later<String>> = (self.environment.iter())
            .map(|(key, value)| (key.clone(), Later::Known(value.clone())))
            .collect();
        let callback = ctx
            .resolved
            .later_api_id()
            .map(|api| callback_url(api, ctx.aws, &self.stage));
        environment.insert("CALLBACK_URL".into(), callback);
        environment
    }

    /// The environment to write: only once the API exists.
    fn environment_to_write(&self, ctx: Ctx<'_>) -> Result<Environment> {
        ctx.resolved.require_api(&format!("Lambda function {}", self.name))?;
        let variables = (self.desired_environment(ctx).into_iter())
            .map(|(key, value)| (key, value.known().unwrap_or_default()))
            .collect();
        Ok(Environment::builder().set_variables(Some(variables)).build())
    }

    fn bundle(&self) -> Result<&Bundle> {
        self.bundle
            .as_ref()
            .ok_or_else(|| anyhow!("no handlers package to deploy (see --handlers-zip)"))
    }

    /// The configuration fields `up` manages that differ, as diffs.
    fn config_diffs(&self, ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        let mut diffs = Vec::new();
        let mut check = |field: &str, current: &str, desired: &str| {
            if current != desired {
                diffs.push(Diff::new(field, current, desired));
            }
        };
        check("memory", &o.memory_mb.to_string(), &self.memory_mb.to_string());
        check(
            "timeout",
            &o.timeout_seconds.to_string(),
            &self.timeout_seconds.to_string(),
        );
        check("role", &o.role, &self.role_arn);
        check("runtime", &o.runtime, Runtime::Providedal2023.as_str());
        check("handler", &o.handler, "bootstrap");
        let desired = self.desired_environment(ctx);
        for key in desired.keys().chain(o.environment.keys()).collect::<BTreeSet<_>>() {
            let current = o.environment.get(key).map(String::as_str).unwrap_or("(unset)");
            let wanted = match desired.get(key) {
                None => "(unset)".to_string(),
                Some(Later::Known(value)) if value == current => continue,
                Some(value) => value.to_string(),
            };
            diffs.push(Diff::new(&format!("environment {key}"), current, wanted));
        }
        diffs
    }

    /// The architecture is part of the code: it changes with UpdateFunctionCode.
    fn code_diffs(&self, o: &Observed) -> Vec<Diff> {
        let mut diffs = Vec::new();
        // Without a bundle (status/plan of a binary built without handlers) code is not compared.
        if let Some(bundle) = self.bundle.as_ref().filter(|b| b.sha256 != o.code_sha256) {
            diffs.push(Diff::new("code", &o.code_sha256, &bundle.sha256));
        }
        if o.architecture != self.architecture.as_str() {
            diffs.push(Diff::new("architecture", &o.architecture, self.architecture.as_str()));
        }
        diffs
    }

    /// Wait until the function takes an update: Active (not Pending after its creation) and no
    /// update in progress (an interrupted or concurrent run may have left one), as AWS refuses
    /// an update meanwhile with ResourceConflictException.
    async fn wait_ready(&self, ctx: Ctx<'_>) -> Result<()> {
        self.wait_active(ctx).await?;
        self.wait_updated(ctx).await
    }

    /// A new function is `Pending` until Lambda has set it up.
    async fn wait_active(&self, ctx: Ctx<'_>) -> Result<()> {
        let waiter = ctx.aws.lambda.wait_until_function_active_v2();
        waiter
            .function_name(&self.name)
            .wait(SETTLE)
            .await
            .map_err(|e| sdk_error(format!("waiting for Lambda function {} to become active", self.name), e))?;
        Ok(())
    }

    /// One update call, made once the function is ready, and again (after waiting for it)
    /// while AWS answers that another update is in progress.
    async fn when_ready<T, E, Fut>(&self, ctx: Ctx<'_>, doing: &str, mut call: impl FnMut() -> Fut) -> Result<T>
    where
        E: aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let start = Instant::now();
        loop {
            self.wait_ready(ctx).await?;
            match call().await {
                Ok(value) => return Ok(value),
                Err(e) if e.code() == Some("ResourceConflictException") && start.elapsed() < FUNCTION_BUSY.deadline => {
                    tokio::time::sleep(FUNCTION_BUSY.first_delay).await;
                }
                Err(e) => return Err(sdk_error(format!("{doing} Lambda function {}", self.name), e)),
            }
        }
    }

    async fn wait_updated(&self, ctx: Ctx<'_>) -> Result<()> {
        let waiter = ctx.aws.lambda.wait_until_function_updated_v2();
        waiter.function_name(&self.name).wait(SETTLE).await.map_err(|e| {
            sdk_error(
                format!("waiting for Lambda function {} to finish updating", self.name),
                e,
            )
        })?;
        Ok(())
    }
}

impl Lifecycle for FunctionSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new("Lambda function", Key::function(self.handler.clone()), &self.name).tagged(&self.tags)
    }
    /// The role it runs as and that role's policy (new code must not run before the permissions
    /// it needs: on an upgrade, the push function's chunks would be refused), the API its
    /// environment names, and for the push function the chunk queue it sends chunks to. Not its
    /// log group: nothing invokes a function before its stage or event source exists, and a log
    /// group Lambda made first is adopted. Deleted before its log group, which an invocation would
    /// make again.
    fn depends_on(&self) -> Vec<Key> {
        let mut keys = vec![
            Key::role(self.role.clone()),
            Key::role_policy(self.role.clone()),
            Key::api(),
        ];
        if self.handler == "push" {
            keys.push(Key::queue(QueueKind::Chunks));
        }
        keys
    }
    fn gone_before(&self) -> Vec<Key> {
        vec![Key::log_group(self.handler.clone())]
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        // GetFunction leaves its Tags out (TagsError) for a caller without lambda:ListTags, which
        // would make every function look foreign: the explicit call says so, or fails plainly.
        // Both at once: the ARN is known from the name.
        // When the function is missing, the error of the tags says nothing more.
        let lambda = &ctx.aws.lambda;
        let (output, tags) = futures::join!(
            lambda.get_function().function_name(&self.name).send(),
            lambda.list_tags().resource(&self.arn).send()
        );
        let output = found(output, || format!("reading Lambda function {}", self.name))?;
        let Some(config) = output.and_then(|o| o.configuration) else {
            return Ok(None);
        };
        let Some(tags) = found(tags, || format!("listing tags of Lambda function {}", self.name))? else {
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
                .unwrap_or_else(|| Architecture::X8664.as_str().into()),
            environment: config
                .environment()
                .and_then(|e| e.variables())
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            tags: tags.tags.unwrap_or_default().into_iter().collect(),
        }))
    }
    fn tags_in_aws<'o>(&self, o: &'o Observed) -> Option<(&'o Tags, TagsAt)> {
        Some((&o.tags, TagsAt::Lambda(self.arn.clone())))
    }

    fn diffs(&self, ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        let mut diffs = self.code_diffs(o);
        diffs.extend(self.config_diffs(ctx, o));
        diffs
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        let bundle = self.bundle()?;
        let environment = self.environment_to_write(ctx)?;
        let result = eventually(
            ROLE_PROPAGATION,
            |e: &aws_sdk_lambda::error::SdkError<
                aws_sdk_lambda::operation::create_function::CreateFunctionError,
                _,
            >| transient::role_not_assumable_yet(e),
            || {
                ctx.aws
                    .lambda
                    .create_function()
                    .function_name(&self.name)
                    .description(&self.description)
                    .runtime(Runtime::Providedal2023)
                    .handler("bootstrap")
                    .role(&self.role_arn)
                    .architectures(self.architecture.clone())
                    .memory_size(self.memory_mb)
                    .timeout(self.timeout_seconds)
                    .environment(environment.clone())
                    .code(FunctionCode::builder().zip_file(Blob::new(bundle.zip.clone())).build())
                    .set_tags(Some(self.tags.clone().into_iter().collect()))
                    .send()
            },
        )
        .await;
        // A concurrent or interrupted run may have created it.
        if !created(result, || format!("creating Lambda function {}", self.name))? {
            return Ok(Created::AlreadyExists);
        }
        self.wait_active(ctx).await?;
        Ok(Created::New(None))
    }

    async fn update(&self, ctx: Ctx<'_>, observed: &Observed) -> Result<()> {
        if !self.code_diffs(observed).is_empty() {
            let bundle = self.bundle()?;
            self.when_ready(ctx, "uploading the code of", || {
                ctx.aws
                    .lambda
                    .update_function_code()
                    .function_name(&self.name)
                    .zip_file(Blob::new(bundle.zip.clone()))
                    .architectures(self.architecture.clone())
                    .send()
            })
            .await?;
            self.wait_updated(ctx).await?;
        }
        if !self.config_diffs(ctx, observed).is_empty() {
            let environment = self.environment_to_write(ctx)?;
            self.when_ready(ctx, "updating the configuration of", || {
                eventually(
                    ROLE_PROPAGATION,
                    |e: &aws_sdk_lambda::error::SdkError<
                        aws_sdk_lambda::operation::update_function_configuration::UpdateFunctionConfigurationError,
                        _,
                    >| transient::role_not_assumable_yet(e),
                    || {
                        ctx.aws
                            .lambda
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
            })
            .await?;
            self.wait_updated(ctx).await?;
        }
        Ok(())
    }

    async fn delete(&self, ctx: Ctx<'_>, _observed: Observed) -> Result<bool> {
        let call = ctx.aws.lambda.delete_function().function_name(&self.name);
        deleted(call.send().await, || format!("deleting Lambda function {}", self.name))
    }
}
