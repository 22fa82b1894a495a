//! The API's stage, deployed: `AutoDeploy` makes API Gateway deploy every route and integration
//! change by itself (WebSocket APIs support it), so clients never hit an undeployed stage and no
//! separate deployment step can be forgotten. Created after the routes, so its first deployment
//! already has them. A deployment lands some time after the change that started it: `up` waits
//! for the one that carries the run's last change to the API, whether the stage changed or not.
//!
//! The stage also carries the stack's throttling (DefaultRouteSettings, and RouteSettings per
//! route key) and its access logs (AccessLogSettings: the log group's ARN, without the `:*` the
//! group's own ARN in DescribeLogGroups ends with, and a JSON-lines format). All of them change in
//! place; a route key dropped from `throttle.routes` loses its settings (DeleteRouteSettings), access
//! logs turned off lose theirs (DeleteAccessLogSettings).
//!
//! Tags are set when the stage is created and not compared afterwards: the stage is found through
//! its API, not by tag, and the moto emulator has no TagResource for stages, so tag drift on a stage
//! could never converge there. (Known gap: a changed `tags:` does not reach an existing stage.)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use aws_sdk_apigatewayv2::operation::get_stage::GetStageOutput;
use aws_sdk_apigatewayv2::types::{AccessLogSettings, DeploymentStatus, RouteSettings};

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

/// A token bucket as API Gateway keeps it: refilled at `rate` requests per second, at most
/// `burst` requests in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub rate: f64,
    pub burst: i32,
}

impl std::fmt::Display for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} requests/s, burst {}", self.rate, self.burst)
    }
}

/// Access log settings: the destination log group's ARN and the line format.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLog {
    pub destination_arn: String,
    pub format: String,
}

/// The format of an access log line: one JSON object of the `$context` variables of WebSocket
/// APIs that tell what happened to a request (API Gateway's "Configure logging for WebSocket
/// APIs" lists them). Every value is quoted: a variable with no value renders as `-`, which
/// would not be JSON unquoted. `wsstack dev` writes lines of the same keys.
pub const ACCESS_LOG_FORMAT: &str = concat!(
    r#"{"requestId":"$context.requestId","connectionId":"$context.connectionId","#,
    r#""routeKey":"$context.routeKey","eventType":"$context.eventType","status":"$context.status","#,
    r#""messageId":"$context.messageId","error":"$context.error.message","#,
    r#""integrationError":"$context.integration.error","authorizerError":"$context.authorizer.error","#,
    r#""sourceIp":"$context.identity.sourceIp","integrationLatency":"$context.integrationLatency","#,
    r#""requestTime":"$context.requestTime","requestTimeEpoch":"$context.requestTimeEpoch"}"#
);

#[derive(Debug, Clone)]
pub struct StageSpec {
    pub name: String,
    pub description: String,
    /// The stage's default route throttling; `None`: only the account's quota.
    pub throttle: Option<Limits>,
    /// Route keys with throttling of their own.
    pub route_throttles: BTreeMap<String, Limits>,
    pub access_log: Option<AccessLog>,
    pub tags: Tags,
    pub depends_on: Vec<Key>,
}

pub struct Observed {
    api: String,
    auto_deploy: bool,
    description: String,
    throttle: Option<Limits>,
    route_throttles: BTreeMap<String, Limits>,
    access_log: Option<AccessLog>,
}

/// The throttling in a route's settings, if any is set.
pub fn limits(settings: &RouteSettings) -> Option<Limits> {
    let (rate, burst) = (settings.throttling_rate_limit(), settings.throttling_burst_limit());
    (rate.is_some() || burst.is_some()).then(|| Limits {
        rate: rate.unwrap_or(0.0),
        burst: burst.unwrap_or(0),
    })
}

fn route_settings(limits: Option<Limits>) -> RouteSettings {
    RouteSettings::builder()
        .set_throttling_rate_limit(limits.map(|l| l.rate))
        .set_throttling_burst_limit(limits.map(|l| l.burst))
        .build()
}

fn observed(api: &str, stage: &GetStageOutput) -> Observed {
    let route_throttles = stage
        .route_settings()
        .into_iter()
        .flatten()
        .filter_map(|(key, settings)| limits(settings).map(|l| (key.clone(), l)))
        .collect();
    let access_log = stage.access_log_settings().and_then(|a| {
        let destination = a.destination_arn().unwrap_or_default();
        (!destination.is_empty()).then(|| AccessLog {
            destination_arn: destination.to_string(),
            format: a.format().unwrap_or_default().to_string(),
        })
    });
    Observed {
        api: api.to_string(),
        auto_deploy: stage.auto_deploy().unwrap_or(false),
        description: stage.description().unwrap_or_default().to_string(),
        throttle: stage.default_route_settings().and_then(limits),
        route_throttles,
        access_log,
    }
}

fn show_limits(limits: Option<&Limits>) -> String {
    limits.map_or_else(|| "account quota only".to_string(), |l| l.to_string())
}

fn show_access_log(log: Option<&AccessLog>) -> String {
    log.map_or_else(|| "off".to_string(), |l| format!("to {}", l.destination_arn))
}

impl StageSpec {
    fn route_settings_map(&self) -> Option<std::collections::HashMap<String, RouteSettings>> {
        (!self.route_throttles.is_empty()).then(|| {
            self.route_throttles
                .iter()
                .map(|(key, limits)| (key.clone(), route_settings(Some(*limits))))
                .collect()
        })
    }

    fn access_log_settings(&self) -> Option<AccessLogSettings> {
        self.access_log.as_ref().map(|log| {
            AccessLogSettings::builder()
                .destination_arn(&log.destination_arn)
                .format(&log.format)
                .build()
        })
    }

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
        Ok(stage.map(|stage| observed(api, &stage)))
    }

    fn diffs(&self, _ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        let mut diffs = Vec::new();
        if !o.auto_deploy {
            diffs.push(Diff::new("auto deploy", "false", "true"));
        }
        if o.description != self.description {
            diffs.push(Diff::new("description", &o.description, &self.description));
        }
        if o.throttle != self.throttle {
            diffs.push(Diff::new(
                "throttle",
                show_limits(o.throttle.as_ref()),
                show_limits(self.throttle.as_ref()),
            ));
        }
        let keys: std::collections::BTreeSet<&String> =
            o.route_throttles.keys().chain(self.route_throttles.keys()).collect();
        for key in keys {
            let (current, desired) = (o.route_throttles.get(key), self.route_throttles.get(key));
            if current != desired {
                diffs.push(Diff::new(
                    &format!("throttle of {key}"),
                    show_limits(current),
                    desired.map_or_else(|| "the stage's".to_string(), |l| l.to_string()),
                ));
            }
        }
        let (current, desired) = (&o.access_log, &self.access_log);
        let same_destination =
            matches!((current, desired), (Some(c), Some(d)) if c.destination_arn == d.destination_arn);
        if current != desired && same_destination {
            diffs.push(Diff::new("access log format", "another format", "wsstack's JSON lines"));
        } else if current != desired {
            diffs.push(Diff::new(
                "access logs",
                show_access_log(current.as_ref()),
                show_access_log(desired.as_ref()),
            ));
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
                .set_default_route_settings(self.throttle.map(|l| route_settings(Some(l))))
                .set_route_settings(self.route_settings_map())
                .set_access_log_settings(self.access_log_settings())
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
        let apigateway = &ctx.aws.apigateway;
        let doing = |what: &str| format!("{what} of stage {} of API {}", self.name, o.api);
        // UpdateStage keeps what it is not given: route keys and access logs that go are deleted
        // by their own calls, before the update, so that nothing of them is left either way.
        for key in o
            .route_throttles
            .keys()
            .filter(|k| !self.route_throttles.contains_key(*k))
        {
            let call = apigateway.delete_route_settings().api_id(&o.api).stage_name(&self.name);
            deleted(call.route_key(key).send().await, || {
                doing(&format!("deleting the route settings of {key}"))
            })?;
        }
        if o.access_log.is_some() && self.access_log.is_none() {
            let call = apigateway
                .delete_access_log_settings()
                .api_id(&o.api)
                .stage_name(&self.name);
            deleted(call.send().await, || doing("deleting the access log settings"))?;
        }
        // The default route's settings are given whole: without throttling they have none.
        let call = apigateway.update_stage().api_id(&o.api).stage_name(&self.name);
        call.auto_deploy(true)
            .description(&self.description)
            .default_route_settings(route_settings(self.throttle))
            .set_route_settings(self.route_settings_map())
            .set_access_log_settings(self.access_log_settings())
            .send()
            .await
            .map_err(|e| sdk_error(doing("updating"), e))?;
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
