//! The WebSocket API (API Gateway v2): protocol WEBSOCKET, route selection on
//! `$request.body.action`, the stack's tags. API names are not unique, so the API is found by its
//! `wsstack:stack` and `wsstack:stage` tags, never by name alone; extra tagged copies (left by two
//! concurrent runs) are reported and removed, the oldest one is kept.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use aws_sdk_apigatewayv2::types::{Api, ProtocolType};
use aws_smithy_types::DateTime;

use super::errors::deleted;
use super::{Created, Ctx, Diff, Lifecycle, Tags};
use crate::aws::{sdk_error, Aws};
use crate::graph::{Key, Resolved};
use crate::stack::{TAG_STACK, TAG_STAGE};

pub const ROUTE_SELECTION: &str = "$request.body.action";

#[derive(Debug, Clone)]
pub struct ApiSpec {
    pub name: String,
    pub stack: String,
    pub stage: String,
    pub description: String,
    pub tags: Tags,
}

/// Every WEBSOCKET API tagged as this stack and stage, oldest first.
pub async fn find(apigateway: &aws_sdk_apigatewayv2::Client, stack: &str, stage: &str) -> Result<Vec<Api>> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let output = apigateway
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

/// Find the stack's API before a run: what every command starts from.
pub async fn discover(aws: &Aws, stack: &str, stage: &str) -> Result<Resolved> {
    let first = first_round(&aws.apigateway, &aws.lambda, &aws.names, stack, stage).await?;
    discovered(aws, first).await
}

/// What discovery reads before it knows anything: none of these calls needs another's answer.
struct FirstRound {
    apis: Vec<Api>,
    authorizer_function: Option<String>,
    /// The custom domain an earlier `domain:` made (`domain_name::Target`, encoded).
    domain: Option<String>,
    /// (handler, function ARN) of every own route's function.
    own_routes: Vec<(String, String)>,
}

async fn first_round(
    apigateway: &aws_sdk_apigatewayv2::Client,
    lambda: &aws_sdk_lambda::Client,
    names: &crate::names::Names,
    stack: &str,
    stage: &str,
) -> Result<FirstRound> {
    let (apis, authorizer_function, domain, own_routes) = futures::try_join!(
        find(apigateway, stack, stage),
        authorizer_function(lambda, names),
        super::domain_name::discover(apigateway, stack, stage),
        super::function::own_routes(lambda, names)
    )?;
    Ok(FirstRound {
        apis,
        authorizer_function,
        domain,
        own_routes,
    })
}

/// `Aws::connect` (the caller's account) and the first round of discovery at once: none of those
/// calls needs another's answer. What every command that runs the engine starts from.
pub async fn connect_and_discover(
    config: aws_config::SdkConfig,
    names: crate::names::Names,
    stack: &str,
    stage: &str,
) -> Result<(Aws, Resolved)> {
    // Discovery only reads: no change to remember.
    let apigateway = crate::aws::apigateway_client(&config, &crate::aws::ApiChanges::default());
    let lambda = aws_sdk_lambda::Client::new(&config);
    let (aws, first) = futures::try_join!(
        Aws::connect(config, names.clone()),
        first_round(&apigateway, &lambda, &names, stack, stage)
    )?;
    let resolved = discovered(&aws, first).await?;
    Ok((aws, resolved))
}

/// The ARN of an authorizer function an earlier `auth:` left, if any: a stack file without
/// `auth:` takes away what an earlier one made, and the plan only lists those resources when one
/// of them is there.
async fn authorizer_function(lambda: &aws_sdk_lambda::Client, names: &crate::names::Names) -> Result<Option<String>> {
    let function = names.function(crate::names::AUTHORIZER);
    let call = lambda.get_function().function_name(&function);
    let found = super::errors::found(call.send().await, || format!("reading Lambda function {function}"))?;
    Ok(found.and_then(|f| f.configuration?.function_arn))
}

async fn discovered(aws: &Aws, first: FirstRound) -> Result<Resolved> {
    let FirstRound {
        apis,
        authorizer_function,
        ..
    } = first;
    let mut resolved = Resolved::default();
    let api = apis.first().and_then(|a| a.api_id()).map(String::from);
    // `status` and `plan` compare the permission and `$connect` against the authorizer's id
    // without running `ensure`, which is what otherwise hands it on. The routes read for that are
    // the run's listing, which the route resources read too.
    if let Some(api) = &api {
        let listing = super::route::listing(aws, &resolved, api).await?;
        let name = aws.names.authorizer();
        let authorizer = super::authorizer::find_on(aws, api, &listing.routes, &name, None).await?;
        resolved.set(Key::Authorizer, authorizer.and_then(|a| a.authorizer_id));
    }
    resolved.set(Key::Api, api);
    resolved.run().set_discovered_apis(apis);
    resolved.set(Key::Function(crate::names::AUTHORIZER.into()), authorizer_function);
    resolved.set(Key::DomainName, first.domain);
    for (handler, arn) in first.own_routes {
        resolved.set(Key::Function(handler), Some(arn));
    }
    Ok(resolved)
}

/// The stack's APIs, oldest (the one kept) first, and the tags of that one.
pub struct Observed {
    apis: Vec<Api>,
    tags: Tags,
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
    }
}

/// Two runs of the same stack (or a retried CreateApi whose first answer was lost) can each
/// create an API. CreatedDate has one-second precision, so once the second in which ours was
/// created is over, every API that is older than ours or ties with it is listed; every run then
/// keeps the same one, the first by (CreatedDate, id), and deletes the others (its own, a rival's,
/// or the one whose answer was lost). Returns the id of the kept API.
///
/// It runs beside the rest of `up` (see `up::run`), not before it: with no rival, which is the
/// rule, nothing waits for it; a run whose API lost converges again on the kept one.
pub async fn settle_race(
    apigateway: aws_sdk_apigatewayv2::Client,
    stack: String,
    stage: String,
    ours: String,
    created: Option<DateTime>,
) -> Result<String> {
    tokio::time::sleep(race_settle_delay(created, SystemTime::now())).await;
    let apis = find(&apigateway, &stack, &stage).await?;
    let Some(kept) = apis.first().and_then(|a| a.api_id()) else {
        return Ok(ours);
    };
    for other in apis.iter().skip(1).filter_map(|a| a.api_id()) {
        delete(&apigateway, other).await?;
    }
    Ok(kept.to_string())
}

impl Lifecycle for ApiSpec {
    type Observed = Observed;

    fn kind(&self) -> &'static str {
        "WebSocket API"
    }
    fn name(&self) -> String {
        self.name.clone()
    }
    fn key(&self) -> Key {
        Key::Api
    }
    fn tags(&self) -> Option<&Tags> {
        Some(&self.tags)
    }
    /// Found by this stack's tags, so always ours; the tags are still compared (`tags:` extras).
    fn observed_tags<'o>(&self, observed: &'o Observed) -> Option<&'o Tags> {
        Some(&observed.tags)
    }
    fn output(&self, observed: &Observed) -> Option<String> {
        Some(observed.id().to_string())
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
        Ok(Some(Observed { apis, tags }))
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
            .set_tags(Some(self.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| sdk_error(format!("creating WebSocket API {}", self.name), e))?;
        let Some(id) = created.api_id else {
            bail!("CreateApi for {} returned no id", self.name)
        };
        let check = settle_race(
            ctx.aws.apigateway.clone(),
            self.stack.clone(),
            self.stage.clone(),
            id.clone(),
            created.created_date,
        );
        ctx.resolved.run().set_race(tokio::spawn(check));
        // Nothing is in it yet: the routes need not list it.
        ctx.resolved.run().set_empty_listing(&id);
        Ok(Created::New(Some(id)))
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
                .send()
                .await
                .map_err(|e| sdk_error(format!("updating WebSocket API {id}"), e))?;
        }
        for duplicate in o.apis[1..].iter().filter_map(|a| a.api_id()) {
            delete(&ctx.aws.apigateway, duplicate).await?;
        }
        Ok(())
    }

    async fn tag(&self, ctx: Ctx<'_>, o: &Observed, set: Tags) -> Result<()> {
        let call = ctx.aws.apigateway.tag_resource().resource_arn(api_arn(ctx.aws, o.id()));
        call.set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .map_err(|e| sdk_error(format!("tagging WebSocket API {}", o.id()), e))?;
        Ok(())
    }

    async fn untag(&self, ctx: Ctx<'_>, o: &Observed, keys: Vec<String>) -> Result<()> {
        let call = ctx
            .aws
            .apigateway
            .untag_resource()
            .resource_arn(api_arn(ctx.aws, o.id()));
        call.set_tag_keys(Some(keys))
            .send()
            .await
            .map_err(|e| sdk_error(format!("untagging WebSocket API {}", o.id()), e))?;
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
