//! A two-way route's route response. API Gateway sends a route integration's body back to the
//! client only when the route has one; without it the route is one-way and the body is dropped
//! (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-response.html).
//! WebSocket APIs support only the `$default` route response, and it has nothing to converge: it
//! exists or it does not. Like the route, it keeps no tags: it is ours because our route has it.
//!
//! A one-way route's route response is `Retired`, so a route that stops replying loses it.

use anyhow::{anyhow, Result};
use aws_sdk_apigatewayv2::types::{Route, RouteResponse};

use super::api_listing::{listing, routes};
use super::errors::{created, deleted};
use super::route::{RouteSpec, ROUTE_RESPONSE_SELECTION};
use super::{pages, Created, Ctx, Diff, Id, Lifecycle};
use crate::aws::{sdk_error, Aws};
use crate::graph::Key;

impl Key {
    /// A two-way route's route response.
    pub fn route_response(handler: impl Into<String>) -> Key {
        Key::each("route-response", handler)
    }
}

/// The one route response key WebSocket APIs support; the route's selection expression
/// (`ROUTE_RESPONSE_SELECTION`) picks it for every answer.
pub const ROUTE_RESPONSE_KEY: &str = ROUTE_RESPONSE_SELECTION;

#[derive(Debug, Clone)]
pub struct RouteResponseSpec {
    /// The handler of the route (`Key::route(handler)`).
    pub handler: String,
    pub route_key: String,
}

pub struct Observed {
    api: String,
    route: String,
    response: RouteResponse,
}

/// Every route response of route `route`, all pages. (`wsstack dev` reads them too: a route
/// sends its integration's body back only when it has one.)
pub async fn route_responses(aws: &Aws, api: &str, route: &str) -> Result<Vec<RouteResponse>> {
    pages::all(|token| async move {
        let call = aws.apigateway.get_route_responses().api_id(api).route_id(route);
        let output = (call.max_results("100").set_next_token(token).send().await)
            .map_err(|e| sdk_error(format!("listing the route responses of route {route} of API {api}"), e))?;
        Ok((output.items.unwrap_or_default(), output.next_token))
    })
    .await
}

impl RouteResponseSpec {
    /// The route response of `route`.
    pub fn of(route: &RouteSpec) -> RouteResponseSpec {
        RouteResponseSpec {
            handler: route.handler.clone(),
            route_key: route.route_key.clone(),
        }
    }

    /// The route's id as the route resource handed it on; else, for `plan`, `status` and a look
    /// ahead (which run without the route's turn), as the run's listing has it.
    async fn route_id(&self, ctx: Ctx<'_>, api: &str) -> Result<Option<String>> {
        if let Some(id) = self.handed_on(ctx) {
            return Ok(Some(id.to_string()));
        }
        let listing = listing(ctx.aws, ctx.resolved, api).await?;
        Ok(self.id_in(&listing.routes))
    }

    /// The route's id as the route resource handed it on, if it did.
    fn handed_on<'r>(&self, ctx: Ctx<'r>) -> Option<&'r str> {
        let id = ctx.resolved.route_id(&Key::route(self.handler.clone()));
        id.filter(|id| !id.is_empty())
    }

    /// The id of the route among `routes`, found by its key.
    fn id_in(&self, routes: &[Route]) -> Option<String> {
        let route = routes.iter().find(|r| r.route_key() == Some(self.route_key.as_str()));
        route.and_then(|r| r.route_id()).map(String::from)
    }
}

impl Lifecycle for RouteResponseSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new(
            "API route response",
            Key::route_response(self.handler.clone()),
            &self.route_key,
        )
    }
    fn depends_on(&self) -> Vec<Key> {
        vec![Key::route(self.handler.clone())]
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let Some(api) = ctx.resolved.api_id() else {
            return Ok(None);
        };
        let Some(route) = self.route_id(ctx, api).await? else {
            return Ok(None);
        };
        let responses = route_responses(ctx.aws, api, &route).await?;
        let response = responses
            .into_iter()
            .find(|r| r.route_response_key() == Some(ROUTE_RESPONSE_KEY));
        Ok(response.map(|response| Observed {
            api: api.to_string(),
            route,
            response,
        }))
    }

    fn diffs(&self, _ctx: Ctx<'_>, _observed: &Observed) -> Vec<Diff> {
        Vec::new()
    }

    /// Made once the route is: a route created by another run that this one kept
    /// (`RouteSpec::settle_duplicates`) is found by listing the routes again.
    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        let api = ctx
            .resolved
            .require_api(&format!("the route response of route {}", self.route_key))?;
        let route = match self.handed_on(ctx) {
            Some(id) => id.to_string(),
            None => self
                .id_in(&routes(ctx.aws, api).await?)
                .ok_or_else(|| anyhow!("API {api} has no route {} for its route response", self.route_key))?,
        };
        let call = ctx.aws.apigateway.create_route_response().api_id(api).route_id(&route);
        let made = created(call.route_response_key(ROUTE_RESPONSE_KEY).send().await, || {
            format!("creating the route response of route {}", self.route_key)
        })?;
        Ok(if made {
            Created::New(None)
        } else {
            Created::AlreadyExists
        })
    }

    async fn update(&self, _ctx: Ctx<'_>, _observed: &Observed) -> Result<()> {
        Ok(())
    }

    async fn delete(&self, ctx: Ctx<'_>, o: Observed) -> Result<bool> {
        let id = o.response.route_response_id().unwrap_or_default();
        let call = ctx
            .aws
            .apigateway
            .delete_route_response()
            .api_id(&o.api)
            .route_id(&o.route);
        deleted(call.route_response_id(id).send().await, || {
            format!("deleting the route response of route {}", self.route_key)
        })
    }
}
