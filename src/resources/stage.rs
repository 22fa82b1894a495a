//! The API's stage, deployed: `AutoDeploy` makes API Gateway deploy every route and integration
//! change by itself (WebSocket APIs support it), so clients never hit an undeployed stage and no
//! separate deployment step can be forgotten. Created after the routes, so its first deployment
//! already has them.
//!
//! Tags are set when the stage is created and not compared afterwards: the stage is found through
//! its API, not by tag, and the moto emulator has no TagResource for stages, so tag drift on a stage
//! could never converge there. (Known gap: a changed `tags:` does not reach an existing stage.)

use anyhow::{anyhow, Result};
use futures::future::BoxFuture;
use futures::FutureExt;

use super::{Change, Diff, Resource, State, Tags};
use crate::aws::{sdk_error, Aws};

#[derive(Debug, Clone)]
pub struct StageSpec {
    pub key: String,
    pub name: String,
    pub description: String,
    pub tags: Tags,
    pub depends_on: Vec<String>,
}

struct Observed {
    auto_deploy: bool,
    description: String,
}

impl StageSpec {
    async fn observe(&self, aws: &Aws, api: &str) -> Result<Option<Observed>> {
        match aws
            .apigateway
            .get_stage()
            .api_id(api)
            .stage_name(&self.name)
            .send()
            .await
        {
            Ok(stage) => Ok(Some(Observed {
                auto_deploy: stage.auto_deploy().unwrap_or(false),
                description: stage.description().unwrap_or_default().to_string(),
            })),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found_exception()) => Ok(None),
            Err(e) => Err(sdk_error(format!("reading stage {} of API {api}", self.name), e)),
        }
    }

    fn diffs(&self, o: &Observed) -> Vec<Diff> {
        let mut diffs = Vec::new();
        if !o.auto_deploy {
            diffs.push(Diff::new("auto deploy", "false", "true"));
        }
        if o.description != self.description {
            diffs.push(Diff::new("description", &o.description, &self.description));
        }
        diffs
    }

    async fn inspect_stage(&self, aws: &Aws) -> Result<State> {
        let Some(api) = aws.api_id() else {
            return Ok(State::Missing);
        };
        Ok(match self.observe(aws, &api).await? {
            None => State::Missing,
            Some(o) => State::from_diffs(self.diffs(&o)),
        })
    }

    async fn ensure_stage(&self, aws: &Aws) -> Result<Change> {
        let api = aws
            .api_id()
            .ok_or_else(|| anyhow!("internal: no API id for stage {}", self.name))?;
        let Some(observed) = self.observe(aws, &api).await? else {
            match aws
                .apigateway
                .create_stage()
                .api_id(&api)
                .stage_name(&self.name)
                .auto_deploy(true)
                .description(&self.description)
                .set_tags(Some(self.tags.clone().into_iter().collect()))
                .send()
                .await
            {
                Ok(_) => return Ok(Change::Created),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conflict_exception()) => {
                    return Box::pin(self.ensure_stage(aws)).await;
                }
                Err(e) => return Err(sdk_error(format!("creating stage {} of API {api}", self.name), e)),
            }
        };
        let diffs = self.diffs(&observed);
        if diffs.is_empty() {
            return Ok(Change::Unchanged);
        }
        if !observed.auto_deploy || observed.description != self.description {
            aws.apigateway
                .update_stage()
                .api_id(&api)
                .stage_name(&self.name)
                .auto_deploy(true)
                .description(&self.description)
                .send()
                .await
                .map_err(|e| sdk_error(format!("updating stage {} of API {api}", self.name), e))?;
        }
        Ok(Change::Updated(diffs))
    }

    async fn destroy_stage(&self, aws: &Aws) -> Result<Change> {
        let Some(api) = aws.api_id() else {
            return Ok(Change::Absent);
        };
        match aws
            .apigateway
            .delete_stage()
            .api_id(&api)
            .stage_name(&self.name)
            .send()
            .await
        {
            Ok(_) => Ok(Change::Deleted),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found_exception()) => Ok(Change::Absent),
            Err(e) => Err(sdk_error(format!("deleting stage {} of API {api}", self.name), e)),
        }
    }
}

impl Resource for StageSpec {
    fn kind(&self) -> &'static str {
        "API stage"
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
        self.inspect_stage(aws).boxed()
    }
    fn ensure<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.ensure_stage(aws).boxed()
    }
    fn destroy<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.destroy_stage(aws).boxed()
    }
}
