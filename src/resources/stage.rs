//! The API's stage, deployed: `AutoDeploy` makes API Gateway deploy every route and integration
//! change by itself (WebSocket APIs support it), so clients never hit an undeployed stage and no
//! separate deployment step can be forgotten. Created after the routes, so its first deployment
//! already has them. A deployment lands some time after the change that started it: `up` waits
//! for the one that carries the run's last change to the API, whether the stage changed or not.
//!
//! Tags are set when the stage is created and not compared afterwards: the stage is found through
//! its API, not by tag, and the moto emulator has no TagResource for stages, so tag drift on a stage
//! could never converge there. (Known gap: a changed `tags:` does not reach an existing stage.)

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use aws_sdk_apigatewayv2::types::DeploymentStatus;

use super::errors::{deleted, found};
use super::{Created, Ctx, Diff, Id, Lifecycle, Tags};
use crate::aws::sdk_error;
use crate::graph::Key;
use crate::retry::{self, Look, Patience};

impl Key {
    /// The API's stage.
    pub fn stage() -> Key {
        Key::one("stage")
    }
}

/// API Gateway answers ConflictException while another change to the API is under way (a
/// concurrent run's route, a deployment AutoDeploy started): retried until this deadline, never
/// without end.
pub const STAGE_CONFLICT: Patience = Patience {
    first_delay: Duration::from_millis(500),
    max_delay: Duration::from_secs(5),
    deadline: Duration::from_secs(60),
};

/// AutoDeploy deploys after CreateStage / UpdateStage has returned, usually within seconds.
pub const STAGE_DEPLOYMENT: Patience = Patience {
    first_delay: Duration::from_millis(250),
    max_delay: Duration::from_secs(2),
    deadline: Duration::from_secs(120),
};

#[derive(Debug, Clone)]
pub struct StageSpec {
    pub name: String,
    pub description: String,
    pub tags: Tags,
    pub depends_on: Vec<Key>,
}

pub struct Observed {
    api: String,
    auto_deploy: bool,
    description: String,
}

impl StageSpec {
    /// Wait until the stage serves what this run changed in its API: AutoDeploy deploys each
    /// change (routes, integrations, the authorizer, the stage itself) after the call returned,
    /// so the wait is for a deployment created no earlier than the run's last change
    /// ([`crate::aws::ApiChanges`]) to be the stage's, or to have failed. Until then the stage
    /// does not serve the API as written, and `up` must not hand out its URL. Nothing changed:
    /// nothing to wait for.
    async fn wait_for_changes(&self, ctx: Ctx<'_>, api: &str) -> Result<()> {
        let Some(changed) = ctx.aws.api_changes.last(api) else {
            return Ok(());
        };
        let look = || async {
            let stage = ctx.aws.apigateway.get_stage().api_id(api).stage_name(&self.name);
            let deployments = ctx.aws.apigateway.get_deployments().api_id(api);
            let (stage, deployments) = futures::join!(stage.send(), deployments.send());
            let stage = stage.map_err(|e| sdk_error(format!("reading stage {} of API {api}", self.name), e))?;
            // An endpoint that cannot list deployments (the moto emulator has none) never shows
            // one on the stage either: there is nothing to wait for.
            let Ok(deployments) = deployments else {
                return Ok(Look::Done(()));
            };
            let message = stage.last_deployment_status_message().unwrap_or_default().to_string();
            // The newest automatic deployment started since the change (the Date has whole seconds).
            let ours = deployments
                .items()
                .iter()
                .filter(|d| d.auto_deployed() == Some(true))
                .filter(|d| d.created_date().is_some_and(|at| at.secs() >= changed.secs()))
                .max_by_key(|d| d.created_date().copied());
            if let Some(deployment) = ours {
                let id = deployment.deployment_id().unwrap_or_default();
                match deployment.deployment_status() {
                    Some(DeploymentStatus::Failed) => bail!(
                        "stage {} of API {api} failed to deploy this run's changes (deployment {id}): {}",
                        self.name,
                        deployment.deployment_status_message().unwrap_or(&message)
                    ),
                    Some(DeploymentStatus::Deployed) if stage.deployment_id() == Some(id) => return Ok(Look::Done(())),
                    _ => {}
                }
            } else if message.to_ascii_lowercase().contains("fail") {
                // A failed deployment may leave no deployment behind; the stage's message says so.
                bail!("stage {} of API {api} failed to deploy: {message}", self.name);
            }
            Ok(Look::NotYet(message))
        };
        retry::until(STAGE_DEPLOYMENT, look, |message, waited| {
            anyhow!(
                "stage {} of API {api} shows no deployment of this run's changes {} s after them \
                 (last status: {}); run `wsstack up` again",
                self.name,
                waited.as_secs(),
                if message.is_empty() { "none" } else { &message }
            )
        })
        .await
    }
}

impl Lifecycle for StageSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new("API stage", Key::stage(), &self.name).tagged(&self.tags)
    }
    fn depends_on(&self) -> Vec<Key> {
        self.depends_on.clone()
    }
    /// Deleted with the API at the latest; nothing else waits for it to go.
    fn gone_before(&self) -> Vec<Key> {
        vec![Key::api()]
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let Some(api) = ctx.resolved.api_id() else {
            return Ok(None);
        };
        let call = ctx.aws.apigateway.get_stage().api_id(api).stage_name(&self.name);
        let stage = found(call.send().await, || {
            format!("reading stage {} of API {api}", self.name)
        })?;
        Ok(stage.map(|stage| Observed {
            api: api.to_string(),
            auto_deploy: stage.auto_deploy().unwrap_or(false),
            description: stage.description().unwrap_or_default().to_string(),
        }))
    }

    fn diffs(&self, _ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        let mut diffs = Vec::new();
        if !o.auto_deploy {
            diffs.push(Diff::new("auto deploy", "false", "true"));
        }
        if o.description != self.description {
            diffs.push(Diff::new("description", &o.description, &self.description));
        }
        diffs
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        let api = ctx.resolved.require_api(&format!("stage {}", self.name))?;
        let start = Instant::now();
        let mut delay = STAGE_CONFLICT.first_delay;
        loop {
            let created = ctx
                .aws
                .apigateway
                .create_stage()
                .api_id(api)
                .stage_name(&self.name)
                .auto_deploy(true)
                .description(&self.description)
                .set_tags(Some(self.tags.clone().into_iter().collect()))
                .send()
                .await;
            match created {
                Ok(_) => {
                    self.wait_for_changes(ctx, api).await?;
                    return Ok(Created::New(None));
                }
                // The stage exists (a concurrent run made it), or another change to the API is
                // under way: which one, the stage itself says.
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conflict_exception()) => {
                    if self.observe(ctx).await?.is_some() {
                        return Ok(Created::AlreadyExists);
                    }
                    if start.elapsed() + delay >= STAGE_CONFLICT.deadline {
                        return Err(sdk_error(format!("creating stage {} of API {api}", self.name), e));
                    }
                }
                Err(e) => return Err(sdk_error(format!("creating stage {} of API {api}", self.name), e)),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(STAGE_CONFLICT.max_delay);
        }
    }

    async fn update(&self, ctx: Ctx<'_>, o: &Observed) -> Result<()> {
        let call = ctx.aws.apigateway.update_stage().api_id(&o.api).stage_name(&self.name);
        call.auto_deploy(true)
            .description(&self.description)
            .send()
            .await
            .map_err(|e| sdk_error(format!("updating stage {} of API {}", self.name, o.api), e))?;
        Ok(())
    }

    /// Whether the stage itself changed or not: the run's changes to its API are live before
    /// `up` goes on (and hands out the URL).
    async fn settle(&self, ctx: Ctx<'_>, o: &Observed) -> Result<()> {
        self.wait_for_changes(ctx, &o.api).await
    }

    async fn delete(&self, ctx: Ctx<'_>, o: Observed) -> Result<bool> {
        let call = ctx.aws.apigateway.delete_stage().api_id(&o.api).stage_name(&self.name);
        deleted(call.send().await, || {
            format!("deleting stage {} of API {}", self.name, o.api)
        })
    }
}
