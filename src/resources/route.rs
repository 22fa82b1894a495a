//! A route of the WebSocket API (`$connect`, `$disconnect`, `subscribe`, ...) together with its
//! AWS_PROXY integration to the route's function. They are one resource because here each route
//! has exactly one integration and neither means anything without the other.
//!
//! Integrations have no name or tags: an integration is ours when its URI invokes our function.
//! With `auth:`, `$connect` is the one route that requires the stack's authorizer (CUSTOM): API
//! Gateway authorizes a WebSocket connection once, on the handshake.

use anyhow::Result;
use aws_sdk_apigatewayv2::types::{AuthorizationType, Integration, IntegrationType, Route};

use super::api_listing::{integrations, listing, routes};
use super::errors::{created, deleted};
use super::{Created, Ctx, Diff, Id, Lifecycle};
use crate::aws::{sdk_error, Aws};
use crate::graph::{Key, Later, Value};

impl Key {
    /// A handler's route with its integration.
    pub fn route(handler: impl Into<String>) -> Key {
        Key::each("route", handler)
    }
}

#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub handler: String,
    pub route_key: String,
    /// The integration URI that invokes the route's function.
    pub integration_uri: String,
    /// The route requires the stack's authorizer (whose id the engine resolves).
    pub authorized: bool,
    /// Two-way: the route has a route response (`RouteResponseSpec`), so API Gateway sends the
    /// integration's body back to the client, and selects it with [`ROUTE_RESPONSE_SELECTION`].
    pub replies: bool,
}

/// The route response selection expression of a two-way route: WebSocket APIs support only the
/// `$default` route response, which this selects whatever the integration answers
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-response.html).
pub const ROUTE_RESPONSE_SELECTION: &str = "$default";

/// The route and the integration of our function, either of which may be missing.
#[derive(Default)]
pub struct Observed {
    api: String,
    route: Option<Route>,
    integration: Option<Integration>,
}

impl RouteSpec {
    /// The authorization the route should have: (type, authorizer id, if any). The id is known
    /// once the authorizer exists (not in `plan` on a new stack).
    fn authorization<'r>(&self, ctx: Ctx<'r>) -> (AuthorizationType, Option<Later<&'r str>>) {
        if self.authorized {
            (AuthorizationType::Custom, Some(ctx.resolved.later_authorizer_id()))
        } else {
            (AuthorizationType::None, None)
        }
    }

    /// How the route's authorization differs from the spec, if it does.
    fn authorization_diff(&self, ctx: Ctx<'_>, route: &Route) -> Option<Diff> {
        let (desired_type, desired_id) = self.authorization(ctx);
        let current_type = route.authorization_type().cloned().unwrap_or(AuthorizationType::None);
        let show = |t: &AuthorizationType, id: Option<Later<&str>>| match (t, id) {
            (AuthorizationType::Custom, Some(id)) => format!("CUSTOM ({id})"),
            (AuthorizationType::Custom, None) => "CUSTOM (no authorizer)".to_string(),
            (other, Some(id)) => format!("{} (authorizer {id} still set)", other.as_str()),
            (other, None) => other.as_str().to_string(),
        };
        let current_id = route.authorizer_id().filter(|id| !id.is_empty()).map(Later::Known);
        // A route keeps an authorizer id that UpdateRoute is not given, whatever its type: one left
        // on an open route still counts as a use, and the authorizer cannot be deleted. An id known
        // only after create never matches.
        let same = current_type == desired_type
            && current_id == desired_id
            && !matches!(desired_id, Some(Later::AfterCreate(_)));
        (!same).then(|| {
            Diff::new(
                "authorization",
                show(&current_type, current_id),
                show(&desired_type, desired_id),
            )
        })
    }

    /// How the route's response selection differs from a two-way route's, if it does. A one-way
    /// route keeps whatever expression it has: without a route response API Gateway sends nothing
    /// back whatever the expression, and taking it away is not needed to go one-way.
    fn selection_diff(&self, route: &Route) -> Option<Diff> {
        let current = route.route_response_selection_expression().filter(|e| !e.is_empty());
        (self.replies && current != Some(ROUTE_RESPONSE_SELECTION)).then(|| {
            Diff::new(
                "route response selection",
                current.unwrap_or("(none)"),
                ROUTE_RESPONSE_SELECTION,
            )
        })
    }

    /// The expression a create or update sets: only a two-way route's.
    fn selection(&self) -> Option<String> {
        self.replies.then(|| ROUTE_RESPONSE_SELECTION.to_string())
    }

    fn authorizer_id<'r>(&self, ctx: Ctx<'r>) -> Result<Option<&'r str>> {
        match self.authorization(ctx) {
            (_, Some(Later::AfterCreate(_))) => {
                anyhow::bail!("internal: the authorizer id is unknown for route {}", self.route_key)
            }
            (_, id) => Ok(id.and_then(Later::known)),
        }
    }

    fn target(integration: &Integration) -> String {
        format!("integrations/{}", integration.integration_id().unwrap_or_default())
    }

    async fn delete_route(&self, aws: &Aws, api: &str, id: &str) -> Result<bool> {
        let call = aws.apigateway.delete_route().api_id(api).route_id(id);
        deleted(call.send().await, || {
            format!("deleting route {} ({id})", self.route_key)
        })
    }

    async fn delete_integration(&self, aws: &Aws, api: &str, id: &str) -> Result<bool> {
        let call = aws.apigateway.delete_integration().api_id(api).integration_id(id);
        deleted(call.send().await, || {
            format!("deleting integration {id} of route {}", self.route_key)
        })
    }

    /// Set the route's target and authorization. UpdateRoute keeps an authorizer id it is not
    /// given: an open route is sent an empty one, which clears it.
    async fn point(&self, ctx: Ctx<'_>, api: &str, route: &Route, target: &str) -> Result<()> {
        let (authorization, _) = self.authorization(ctx);
        let call = ctx.aws.apigateway.update_route().api_id(api);
        call.route_id(route.route_id().unwrap_or_default())
            .target(target)
            .authorization_type(authorization)
            .authorizer_id(self.authorizer_id(ctx)?.unwrap_or_default())
            .set_route_response_selection_expression(self.selection())
            .send()
            .await
            .map_err(|e| sdk_error(format!("updating route {}", self.route_key), e))?;
        Ok(())
    }

    /// Whether the route needs an UpdateRoute: its target, authorization or response selection.
    fn needs_pointing(&self, ctx: Ctx<'_>, route: &Route, target: &str) -> bool {
        route.target() != Some(target)
            || self.authorization_diff(ctx, route).is_some()
            || self.selection_diff(route).is_some()
    }

    /// Create or fix whatever of the pair is missing or wrong; the route's id.
    async fn converge(&self, ctx: Ctx<'_>, observed: &Observed) -> Result<String> {
        let aws = ctx.aws;
        let api = ctx.resolved.require_api(&format!("route {}", self.route_key))?;
        let integration_id = match &observed.integration {
            Some(i) if i.integration_type() == Some(&IntegrationType::AwsProxy) => {
                i.integration_id().unwrap_or_default().to_string()
            }
            Some(i) => {
                let id = i.integration_id().unwrap_or_default().to_string();
                aws.apigateway
                    .update_integration()
                    .api_id(api)
                    .integration_id(&id)
                    .integration_type(IntegrationType::AwsProxy)
                    .integration_uri(&self.integration_uri)
                    .send()
                    .await
                    .map_err(|e| sdk_error(format!("updating the integration of route {}", self.route_key), e))?;
                id
            }
            None => aws
                .apigateway
                .create_integration()
                .api_id(api)
                .integration_type(IntegrationType::AwsProxy)
                .integration_method("POST")
                .integration_uri(&self.integration_uri)
                .send()
                .await
                .map_err(|e| sdk_error(format!("creating the integration of route {}", self.route_key), e))?
                .integration_id
                .unwrap_or_default(),
        };
        let target = format!("integrations/{integration_id}");
        match &observed.route {
            None => {
                let call = aws.apigateway.create_route().api_id(api).route_key(&self.route_key);
                let call = call
                    .authorization_type(self.authorization(ctx).0)
                    .set_authorizer_id(self.authorizer_id(ctx)?.map(String::from))
                    .set_route_response_selection_expression(self.selection());
                // Another run may have created the route since we looked: settle on one below.
                let made = created(call.target(&target).send().await, || {
                    format!("creating route {}", self.route_key)
                })?;
                self.settle_duplicates(ctx, api, made).await
            }
            Some(route) => {
                if self.needs_pointing(ctx, route, &target) {
                    self.point(ctx, api, route, &target).await?;
                }
                Ok(route.route_id().unwrap_or_default().to_string())
            }
        }
    }

    /// Two runs working on the same API at once can each create this route and its integration
    /// (AWS answers a second route with the same key with ConflictException; integrations have no
    /// key at all). Whoever looks after creating keeps the first of each by id, deletes the others
    /// and points the kept route at the kept integration, so every run keeps the same pair.
    ///
    /// API Gateway answers ConflictException to concurrent writes to one API as well; the client
    /// retries those (`retry::ConcurrentModification`), but one that is not a taken key must never
    /// pass for one: when the create was refused (`made` false), the route must be there.
    /// Answers the kept route's id.
    async fn settle_duplicates(&self, ctx: Ctx<'_>, api: &str, made: bool) -> Result<String> {
        let aws = ctx.aws;
        let (routes, integrations) = futures::try_join!(routes(aws, api), integrations(aws, api))?;
        let mut routes: Vec<Route> = routes
            .into_iter()
            .filter(|r| r.route_key() == Some(self.route_key.as_str()))
            .collect();
        if routes.is_empty() && !made {
            anyhow::bail!(
                "creating route {} of API {api}: API Gateway answered ConflictException, but the API has no such \
                 route (another change to the API was under way and outlasted the retries); run `wsstack up` again",
                self.route_key
            );
        }
        routes.sort_by(|a, b| a.route_id().cmp(&b.route_id()));
        let mut integrations: Vec<Integration> = integrations
            .into_iter()
            .filter(|i| i.integration_uri() == Some(self.integration_uri.as_str()))
            .collect();
        integrations.sort_by(|a, b| a.integration_id().cmp(&b.integration_id()));
        for extra in routes.iter().skip(1).filter_map(|r| r.route_id()) {
            self.delete_route(aws, api, extra).await?;
        }
        if let (Some(route), Some(integration)) = (routes.first(), integrations.first()) {
            let target = Self::target(integration);
            if self.needs_pointing(ctx, route, &target) {
                self.point(ctx, api, route, &target).await?;
            }
        }
        for extra in integrations.iter().skip(1).filter_map(|i| i.integration_id()) {
            self.delete_integration(aws, api, extra).await?;
        }
        let kept = routes.first().and_then(|r| r.route_id());
        Ok(kept.unwrap_or_default().to_string())
    }
}

impl Lifecycle for RouteSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new("API route", Key::route(self.handler.clone()), &self.route_key)
    }
    /// Only the API: the integration names the function by its ARN, which API Gateway does not
    /// look up; the stage, which puts the route in service, waits for the permission. With
    /// `auth:`, `$connect` needs the authorizer and everything it runs with first.
    fn depends_on(&self) -> Vec<Key> {
        let mut keys = vec![Key::api()];
        if self.authorized {
            keys.extend([
                Key::authorizer(),
                Key::permission(crate::names::AUTHORIZER),
                Key::role_policy(crate::names::RoleKind::Authorizer),
            ]);
        }
        keys
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let Some(api) = ctx.resolved.api_id() else {
            return Ok(None);
        };
        let listing = listing(ctx.aws, ctx.resolved, api).await?;
        let observed = Observed {
            api: api.to_string(),
            route: listing
                .routes
                .iter()
                .find(|r| r.route_key() == Some(self.route_key.as_str()))
                .cloned(),
            integration: listing
                .integrations
                .iter()
                .find(|i| i.integration_uri() == Some(self.integration_uri.as_str()))
                .cloned(),
        };
        Ok((observed.route.is_some() || observed.integration.is_some()).then_some(observed))
    }

    fn diffs(&self, ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        let mut diffs = Vec::new();
        match &o.integration {
            None => diffs.push(Diff::new("integration", "(none)", &self.integration_uri)),
            Some(i) if i.integration_type() != Some(&IntegrationType::AwsProxy) => diffs.push(Diff::new(
                "integration type",
                i.integration_type().map(|t| t.as_str()).unwrap_or_default(),
                "AWS_PROXY",
            )),
            Some(_) => {}
        }
        let desired_target = o.integration.as_ref().map(Self::target);
        let desired = desired_target.as_deref().unwrap_or("(new integration)");
        match &o.route {
            None => diffs.push(Diff::new("route", "(none)", desired)),
            Some(route) if desired_target.is_none() || route.target() != desired_target.as_deref() => {
                diffs.push(Diff::new("target", route.target().unwrap_or("(none)"), desired))
            }
            Some(_) => {}
        }
        diffs.extend(o.route.as_ref().and_then(|route| self.authorization_diff(ctx, route)));
        diffs.extend(o.route.as_ref().and_then(|route| self.selection_diff(route)));
        diffs
    }

    /// The route's id (for its route response), and the authorizer it had before this run, so
    /// that an authorizer the stack no longer wants can still be found once the route stops
    /// naming it.
    fn output(&self, o: &Observed) -> Option<Value> {
        let route = o.route.as_ref()?;
        Some(Value::Route {
            id: route.route_id()?.to_string(),
            authorizer_id: route.authorizer_id().filter(|id| !id.is_empty()).map(String::from),
        })
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        let id = self.converge(ctx, &Observed::default()).await?;
        Ok(Created::New(Some(Value::Route {
            id,
            authorizer_id: None,
        })))
    }

    async fn update(&self, ctx: Ctx<'_>, observed: &Observed) -> Result<()> {
        self.converge(ctx, observed).await.map(drop)
    }

    async fn delete(&self, ctx: Ctx<'_>, o: Observed) -> Result<bool> {
        if let Some(id) = o.route.as_ref().and_then(|r| r.route_id()) {
            self.delete_route(ctx.aws, &o.api, id).await?;
        }
        if let Some(id) = o.integration.as_ref().and_then(|i| i.integration_id()) {
            self.delete_integration(ctx.aws, &o.api, id).await?;
        }
        Ok(true)
    }
}
