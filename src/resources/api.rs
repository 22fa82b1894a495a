//! The WebSocket API (API Gateway v2): protocol WEBSOCKET, route selection on
//! `$request.body.action`, the stack's IP address type, the stack's tags. API names are not unique, so the API is found by its
//! `wsstack:stack` and `wsstack:stage` tags, never by name alone; extra tagged copies (left by two
//! concurrent runs) are reported and removed, the oldest one is kept.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use aws_sdk_apigatewayv2::types::{Api, ProtocolType};
use aws_smithy_types::DateTime;

use super::errors::deleted;
use super::tagging::TagsAt;
use super::{Created, Ctx, Diff, Id, Lifecycle, Tags};
use crate::aws::{sdk_error, Aws};
use crate::graph::{ApiId, Key, Value};
use crate::stack::{TAG_STACK, TAG_STAGE};

impl Key {
    /// The stack's WebSocket API.
    pub fn api() -> Key {
        Key::one("api")
    }
}

pub const ROUTE_SELECTION: &str = "$request.body.action";

#[derive(Debug, Clone)]
pub struct ApiSpec {
    pub name: String,
    pub stack: String,
    pub stage: String,
    pub description: String,
    /// `ipv4` or `dualstack`; changed in place, no deployment needed.
    pub ip_address_type: String,
    pub tags: Tags,
}

/// An API's IP address type; API Gateway's default when the answer has none.
fn ip_address_type(api: &Api) -> &str {
    api.ip_address_type().map(|t| t.as_str()).unwrap_or("ipv4")
}

/// Every WEBSOCKET API tagged as this stack and stage, oldest first.
pub async fn find(apigateway: &aws_sdk_apigatewayv2::Client, stack: &str, stage: &str) -> Result<Vec<Api>> {
    let apis = super::pages::all(|token| async move {
        let call = apigateway.get_apis().max_results("100").set_next_token(token);
        let output = call
            .send()
            .await
            .map_err(|e| sdk_error("listing API Gateway APIs", e))?;
        Ok((output.items.unwrap_or_default(), output.next_token))
    })
    .await?;
    let mut found: Vec<Api> = apis
        .into_iter()
        .filter(|api| {
            let tag = |key: &str| api.tags().and_then(|t| t.get(key)).map(String::as_str);
            let ours = tag(TAG_STACK) == Some(stack) && tag(TAG_STAGE) == Some(stage);
            ours && api.protocol_type() == Some(&ProtocolType::Websocket)
        })
        .collect();
    found.sort_by_key(|api| (api.created_date().map(|d| d.secs()), api.api_id().map(String::from)));
    Ok(found)
}

/// The stack's APIs, oldest (the one kept) first, and the tags of that one.
pub struct Observed {
    apis: Vec<Api>,
    tags: Tags,
    /// The kept API's ARN, where its tags are.
    arn: String,
}

impl Observed {
    fn kept(&self) -> &Api {
        &self.apis[0]
    }

    fn id(&self) -> &str {
        self.kept().api_id().unwrap_or_default()
    }
}

fn api_arn(aws: &Aws, id: &str) -> String {
    format!("arn:{}:apigateway:{}::/apis/{id}", aws.arns.partition, aws.region)
}

impl ApiSpec {
    fn settings_differ(&self, api: &Api) -> bool {
        api.name() != Some(self.name.as_str())
            || api.route_selection_expression() != Some(ROUTE_SELECTION)
            || api.description().unwrap_or_default() != self.description
            || ip_address_type(api) != self.ip_address_type
    }
}

/// Two runs of the same stack (or a retried CreateApi whose first answer was lost) can each
/// create an API. CreatedDate has one-second precision, so once the second in which ours was
/// created is over, every API that is older than ours or ties with it is listed; every run then
/// keeps the same one, the first by (CreatedDate, id), and deletes the others (its own, a rival's,
/// or the one whose answer was lost). Returns the id of the kept API.
///
/// `up` starts it as soon as the run has made the API and runs it beside the rest (see `up::run`),
/// not before: with no rival, which is the rule, nothing waits for it; a run whose API lost
/// converges again on the kept one.
pub async fn settle_race(aws: &Aws, stack: &str, stage: &str, ours: &str, created: Option<DateTime>) -> Result<String> {
    tokio::time::sleep(race_settle_delay(created, SystemTime::now())).await;
    let apis = find(&aws.apigateway, stack, stage).await?;
    let Some(kept) = apis.first().and_then(|a| a.api_id()) else {
        return Ok(ours.to_string());
    };
    for other in apis.iter().skip(1).filter_map(|a| a.api_id()) {
        delete(&aws.apigateway, other).await?;
    }
    Ok(kept.to_string())
}

impl Lifecycle for ApiSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new("WebSocket API", Key::api(), &self.name).tagged(&self.tags)
    }
    fn output(&self, observed: &Observed) -> Option<Value> {
        Some(Value::Api(ApiId {
            id: observed.id().to_string(),
            created_by_run: None,
        }))
    }

    /// The first look is discovery's listing, made moments before.
    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let apis = match ctx.resolved.run().take_discovered_apis() {
            Some(apis) => apis,
            None => find(&ctx.aws.apigateway, &self.stack, &self.stage).await?,
        };
        let Some(kept) = apis.first() else { return Ok(None) };
        let tags = kept
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let arn = api_arn(ctx.aws, kept.api_id().unwrap_or_default());
        Ok(Some(Observed { apis, tags, arn }))
    }
    /// Found by this stack's tags, so always ours; the tags are still compared (`tags:` extras).
    fn tags_in_aws<'o>(&self, o: &'o Observed) -> Option<(&'o Tags, TagsAt)> {
        Some((&o.tags, TagsAt::ApiGateway(o.arn.clone())))
    }

    fn diffs(&self, _ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        let mut diffs = Vec::new();
        let api = o.kept();
        if api.name() != Some(self.name.as_str()) {
            diffs.push(Diff::new("name", api.name().unwrap_or_default(), &self.name));
        }
        let selection = api.route_selection_expression().unwrap_or_default();
        if selection != ROUTE_SELECTION {
            diffs.push(Diff::new("route selection", selection, ROUTE_SELECTION));
        }
        let description = api.description().unwrap_or_default();
        if description != self.description {
            diffs.push(Diff::new("description", description, &self.description));
        }
        if ip_address_type(api) != self.ip_address_type {
            diffs.push(Diff::new(
                "IP address type",
                ip_address_type(api),
                &self.ip_address_type,
            ));
        }
        if o.apis.len() > 1 {
            let ids: Vec<&str> = o.apis[1..].iter().filter_map(|a| a.api_id()).collect();
            diffs.push(Diff::new("duplicate APIs", ids.join(", "), "(deleted)"));
        }
        diffs
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        let created = ctx
            .aws
            .apigateway
            .create_api()
            .name(&self.name)
            .protocol_type(ProtocolType::Websocket)
            .route_selection_expression(ROUTE_SELECTION)
            .description(&self.description)
            .ip_address_type(self.ip_address_type.as_str().into())
            .set_tags(Some(self.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| sdk_error(format!("creating WebSocket API {}", self.name), e))?;
        let Some(id) = created.api_id else {
            bail!("CreateApi for {} returned no id", self.name)
        };
        // Nothing is in it yet: the routes need not list it.
        ctx.resolved.run().set_empty_listing(&id);
        // `up` checks for a rival once the run is over (`settle_race`).
        Ok(Created::New(Some(Value::Api(ApiId {
            id,
            created_by_run: Some(created.created_date),
        }))))
    }

    async fn update(&self, ctx: Ctx<'_>, o: &Observed) -> Result<()> {
        let id = o.id();
        if self.settings_differ(o.kept()) {
            ctx.aws
                .apigateway
                .update_api()
                .api_id(id)
                .name(&self.name)
                .route_selection_expression(ROUTE_SELECTION)
                .description(&self.description)
                .ip_address_type(self.ip_address_type.as_str().into())
                .send()
                .await
                .map_err(|e| sdk_error(format!("updating WebSocket API {id}"), e))?;
        }
        for duplicate in o.apis[1..].iter().filter_map(|a| a.api_id()) {
            delete(&ctx.aws.apigateway, duplicate).await?;
        }
        Ok(())
    }

    async fn delete(&self, ctx: Ctx<'_>, o: Observed) -> Result<bool> {
        for id in o.apis.iter().filter_map(|a| a.api_id()) {
            delete(&ctx.aws.apigateway, id).await?;
        }
        Ok(true)
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
async fn delete(apigateway: &aws_sdk_apigatewayv2::Client, id: &str) -> Result<()> {
    let call = apigateway.delete_api().api_id(id);
    deleted(call.send().await, || format!("deleting WebSocket API {id}"))?;
    Ok(())
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
