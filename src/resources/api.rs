//! The WebSocket API (API Gateway v2): protocol WEBSOCKET, route selection on
//! `$request.body.action`, the stack's tags. API names are not unique, so the API is found by its
//! `wsstack:stack` and `wsstack:stage` tags, never by name alone; extra tagged copies (left by two
//! concurrent runs) are reported and removed, the oldest one is kept.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use aws_sdk_apigatewayv2::types::{Api, ProtocolType};
use aws_smithy_types::DateTime;
use futures::future::BoxFuture;
use futures::FutureExt;

use super::{tag_changes, tag_diff, Change, Diff, Resource, State, Tags};
use crate::aws::{sdk_error, Aws};
use crate::stack::{TAG_STACK, TAG_STAGE};

pub const ROUTE_SELECTION: &str = "$request.body.action";

#[derive(Debug, Clone)]
pub struct ApiSpec {
    pub key: String,
    pub name: String,
    pub stack: String,
    pub stage: String,
    pub description: String,
    pub tags: Tags,
}

/// Every WEBSOCKET API tagged as this stack and stage, oldest first.
pub async fn find(aws: &Aws, stack: &str, stage: &str) -> Result<Vec<Api>> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let output = aws
            .apigateway
            .get_apis()
            .max_results("100")
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| sdk_error("listing API Gateway APIs", e))?;
        for api in output.items.unwrap_or_default() {
            let tags = api.tags();
            let ours = tags.and_then(|t| t.get(TAG_STACK)).map(String::as_str) == Some(stack)
                && tags.and_then(|t| t.get(TAG_STAGE)).map(String::as_str) == Some(stage);
            if ours && api.protocol_type() == Some(&ProtocolType::Websocket) {
                found.push(api);
            }
        }
        match output.next_token {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => break,
        }
    }
    found.sort_by_key(|api| (api.created_date().map(|d| d.secs()), api.api_id().map(String::from)));
    Ok(found)
}

/// Find the stack's API and remember its id for the resources that need it.
pub async fn discover(aws: &Aws, stack: &str, stage: &str) -> Result<()> {
    let apis = find(aws, stack, stage).await?;
    aws.set_api_id(apis.first().and_then(|a| a.api_id()).map(String::from));
    Ok(())
}

fn api_arn(aws: &Aws, id: &str) -> String {
    format!("arn:{}:apigateway:{}::/apis/{id}", aws.arns.partition, aws.region)
}

impl ApiSpec {
    fn diffs(&self, api: &Api, duplicates: &[Api]) -> Vec<Diff> {
        let mut diffs = Vec::new();
        if api.name() != Some(self.name.as_str()) {
            diffs.push(Diff::new("name", api.name().unwrap_or_default(), &self.name));
        }
        if api.route_selection_expression() != Some(ROUTE_SELECTION) {
            diffs.push(Diff::new(
                "route selection",
                api.route_selection_expression().unwrap_or_default(),
                ROUTE_SELECTION,
            ));
        }
        if api.description().unwrap_or_default() != self.description {
            diffs.push(Diff::new(
                "description",
                api.description().unwrap_or_default(),
                &self.description,
            ));
        }
        let tags: Tags = api
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        diffs.extend(tag_diff(&tags, &self.tags));
        if !duplicates.is_empty() {
            let ids: Vec<&str> = duplicates.iter().filter_map(|a| a.api_id()).collect();
            diffs.push(Diff::new("duplicate APIs", ids.join(", "), "(deleted)"));
        }
        diffs
    }

    async fn inspect_api(&self, aws: &Aws) -> Result<State> {
        let apis = find(aws, &self.stack, &self.stage).await?;
        let Some((api, duplicates)) = apis.split_first() else {
            return Ok(State::Missing);
        };
        Ok(State::from_diffs(self.diffs(api, duplicates)))
    }

    async fn ensure_api(&self, aws: &Aws) -> Result<Change> {
        let apis = find(aws, &self.stack, &self.stage).await?;
        let Some((api, duplicates)) = apis.split_first() else {
            let created = aws
                .apigateway
                .create_api()
                .name(&self.name)
                .protocol_type(ProtocolType::Websocket)
                .route_selection_expression(ROUTE_SELECTION)
                .description(&self.description)
                .set_tags(Some(self.tags.clone().into_iter().collect()))
                .send()
                .await
                .map_err(|e| sdk_error(format!("creating WebSocket API {}", self.name), e))?;
            let Some(id) = created.api_id else {
                bail!("CreateApi for {} returned no id", self.name)
            };
            let kept = self.settle_race(aws, &id, created.created_date).await?;
            let change = if kept == id { Change::Created } else { Change::Unchanged };
            aws.set_api_id(Some(kept));
            return Ok(change);
        };
        let id = api.api_id().unwrap_or_default().to_string();
        aws.set_api_id(Some(id.clone()));
        let diffs = self.diffs(api, duplicates);
        if diffs.is_empty() {
            return Ok(Change::Unchanged);
        }
        if api.name() != Some(self.name.as_str())
            || api.route_selection_expression() != Some(ROUTE_SELECTION)
            || api.description().unwrap_or_default() != self.description
        {
            aws.apigateway
                .update_api()
                .api_id(&id)
                .name(&self.name)
                .route_selection_expression(ROUTE_SELECTION)
                .description(&self.description)
                .send()
                .await
                .map_err(|e| sdk_error(format!("updating WebSocket API {id}"), e))?;
        }
        let tags: Tags = api
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let (set, remove) = tag_changes(&tags, &self.tags);
        if !set.is_empty() {
            aws.apigateway
                .tag_resource()
                .resource_arn(api_arn(aws, &id))
                .set_tags(Some(set.into_iter().collect()))
                .send()
                .await
                .map_err(|e| sdk_error(format!("tagging WebSocket API {id}"), e))?;
        }
        if !remove.is_empty() {
            aws.apigateway
                .untag_resource()
                .resource_arn(api_arn(aws, &id))
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(|e| sdk_error(format!("untagging WebSocket API {id}"), e))?;
        }
        for duplicate in duplicates.iter().filter_map(|a| a.api_id()) {
            delete(aws, duplicate).await?;
        }
        Ok(Change::Updated(diffs))
    }

    /// Two runs of the same stack (or a retried CreateApi whose first answer was lost) can each
    /// create an API. CreatedDate has one-second precision, so once the second in which ours was
    /// created is over, every API that is older than ours or ties with it is listed; every run
    /// then keeps the same one, the first by (CreatedDate, id), deletes the others (its own, a
    /// rival's, or the one whose answer was lost) and adopts the kept one. Returns the id to use.
    async fn settle_race(&self, aws: &Aws, ours: &str, created: Option<DateTime>) -> Result<String> {
        tokio::time::sleep(race_settle_delay(created, SystemTime::now())).await;
        let apis = find(aws, &self.stack, &self.stage).await?;
        let Some(kept) = apis.first().and_then(|a| a.api_id()) else {
            return Ok(ours.to_string());
        };
        for other in apis.iter().skip(1).filter_map(|a| a.api_id()) {
            delete(aws, other).await?;
        }
        Ok(kept.to_string())
    }

    async fn destroy_api(&self, aws: &Aws) -> Result<Change> {
        let apis = find(aws, &self.stack, &self.stage).await?;
        if apis.is_empty() {
            return Ok(Change::Absent);
        }
        for id in apis.iter().filter_map(|a| a.api_id()) {
            delete(aws, id).await?;
        }
        aws.set_api_id(None);
        Ok(Change::Deleted)
    }
}

/// Margin for the clock difference between AWS and this machine, and for listing consistency.
const RACE_MARGIN: Duration = Duration::from_millis(250);

/// How long to wait after creating an API before looking for rivals: until the second of its
/// CreatedDate is over (plus a margin), never more than a second and the margin.
fn race_settle_delay(created: Option<DateTime>, now: SystemTime) -> Duration {
    let longest = Duration::from_secs(1) + RACE_MARGIN;
    let Some(created) = created else { return longest };
    let Some(second_over) = UNIX_EPOCH.checked_add(Duration::from_secs(created.secs().max(0) as u64 + 1)) else {
        return longest;
    };
    (second_over + RACE_MARGIN)
        .duration_since(now)
        .unwrap_or(Duration::ZERO)
        .min(longest)
}

/// Delete an API with its routes, integrations and stages.
async fn delete(aws: &Aws, id: &str) -> Result<()> {
    match aws.apigateway.delete_api().api_id(id).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found_exception()) => Ok(()),
        Err(e) => Err(sdk_error(format!("deleting WebSocket API {id}"), e)),
    }
}

impl Resource for ApiSpec {
    fn kind(&self) -> &'static str {
        "WebSocket API"
    }
    fn name(&self) -> String {
        self.name.clone()
    }
    fn key(&self) -> String {
        self.key.clone()
    }
    fn inspect<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<State>> {
        self.inspect_api(aws).boxed()
    }
    fn ensure<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.ensure_api(aws).boxed()
    }
    fn destroy<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.destroy_api(aws).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_the_creation_second_is_over_plus_the_margin() {
        let created = DateTime::from_secs(1_000);
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        assert_eq!(
            race_settle_delay(Some(created), at(1_000_000)),
            Duration::from_millis(1_250)
        );
        assert_eq!(
            race_settle_delay(Some(created), at(1_000_900)),
            Duration::from_millis(350)
        );
        assert_eq!(race_settle_delay(Some(created), at(1_002_000)), Duration::ZERO);
        // A local clock behind AWS's never makes the wait longer than a second and the margin.
        assert_eq!(
            race_settle_delay(Some(created), at(990_000)),
            Duration::from_millis(1_250)
        );
        assert_eq!(race_settle_delay(None, at(0)), Duration::from_millis(1_250));
    }
}
