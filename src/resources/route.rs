//! A route of the WebSocket API (`$connect`, `$disconnect`, `subscribe`, ...) together with its
//! AWS_PROXY integration to the route's function. They are one resource because here each route
//! has exactly one integration and neither means anything without the other.
//!
//! Integrations have no name or tags: an integration is ours when its URI invokes our function.

use anyhow::{anyhow, Result};
use aws_sdk_apigatewayv2::types::{Integration, IntegrationType, Route};
use futures::future::BoxFuture;
use futures::FutureExt;

use super::{Change, Diff, Resource, State};
use crate::aws::{sdk_error, Aws};

#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub key: String,
    pub route_key: String,
    /// The integration URI that invokes the route's function.
    pub integration_uri: String,
    pub depends_on: Vec<String>,
}

struct Observed {
    route: Option<Route>,
    integration: Option<Integration>,
}

/// Every route of an API, all pages.
pub async fn routes(aws: &Aws, api: &str) -> Result<Vec<Route>> {
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let output = aws
            .apigateway
            .get_routes()
            .api_id(api)
            .max_results("100")
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| sdk_error(format!("listing routes of API {api}"), e))?;
        all.extend(output.items.unwrap_or_default());
        match output.next_token {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => return Ok(all),
        }
    }
}

/// Every integration of an API, all pages.
pub async fn integrations(aws: &Aws, api: &str) -> Result<Vec<Integration>> {
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let output = aws
            .apigateway
            .get_integrations()
            .api_id(api)
            .max_results("100")
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| sdk_error(format!("listing integrations of API {api}"), e))?;
        all.extend(output.items.unwrap_or_default());
        match output.next_token {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => return Ok(all),
        }
    }
}

impl RouteSpec {
    fn target(integration: &Integration) -> String {
        format!("integrations/{}", integration.integration_id().unwrap_or_default())
    }

    async fn observe(&self, aws: &Aws, api: &str) -> Result<Observed> {
        let (routes, integrations) = futures::try_join!(routes(aws, api), integrations(aws, api))?;
        Ok(Observed {
            route: routes
                .into_iter()
                .find(|r| r.route_key() == Some(self.route_key.as_str())),
            integration: integrations
                .into_iter()
                .find(|i| i.integration_uri() == Some(self.integration_uri.as_str())),
        })
    }

    fn diffs(&self, o: &Observed) -> Vec<Diff> {
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
        match &o.route {
            None => diffs.push(Diff::new(
                "route",
                "(none)",
                desired_target.as_deref().unwrap_or("(new integration)"),
            )),
            Some(route) if desired_target.is_none() || route.target() != desired_target.as_deref() => {
                diffs.push(Diff::new(
                    "target",
                    route.target().unwrap_or("(none)"),
                    desired_target.as_deref().unwrap_or("(new integration)"),
                ))
            }
            Some(_) => {}
        }
        diffs
    }

    async fn inspect_route(&self, aws: &Aws) -> Result<State> {
        let Some(api) = aws.api_id() else {
            return Ok(State::Missing);
        };
        let observed = self.observe(aws, &api).await?;
        if observed.route.is_none() && observed.integration.is_none() {
            return Ok(State::Missing);
        }
        Ok(State::from_diffs(self.diffs(&observed)))
    }

    async fn ensure_route(&self, aws: &Aws) -> Result<Change> {
        let api = aws
            .api_id()
            .ok_or_else(|| anyhow!("internal: no API id for route {}", self.route_key))?;
        let observed = self.observe(aws, &api).await?;
        let diffs = self.diffs(&observed);
        if diffs.is_empty() {
            return Ok(Change::Unchanged);
        }
        let integration_id = match &observed.integration {
            Some(i) if i.integration_type() == Some(&IntegrationType::AwsProxy) => {
                i.integration_id().unwrap_or_default().to_string()
            }
            Some(i) => {
                let id = i.integration_id().unwrap_or_default().to_string();
                aws.apigateway
                    .update_integration()
                    .api_id(&api)
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
                .api_id(&api)
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
                let created = aws
                    .apigateway
                    .create_route()
                    .api_id(&api)
                    .route_key(&self.route_key)
                    .target(&target)
                    .send()
                    .await;
                match created {
                    Ok(_) => {}
                    // Another run created the route since we looked: settle on one below.
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_conflict_exception()) => {}
                    Err(e) => return Err(sdk_error(format!("creating route {}", self.route_key), e)),
                }
                self.settle_duplicates(aws, &api).await?;
                if observed.integration.is_none() {
                    return Ok(Change::Created);
                }
            }
            Some(route) if route.target() != Some(target.as_str()) => {
                aws.apigateway
                    .update_route()
                    .api_id(&api)
                    .route_id(route.route_id().unwrap_or_default())
                    .target(&target)
                    .send()
                    .await
                    .map_err(|e| sdk_error(format!("updating route {}", self.route_key), e))?;
            }
            Some(_) => {}
        }
        Ok(Change::Updated(diffs))
    }

    /// Two runs working on the same API at once can each create this route and its integration
    /// (AWS answers a second route with the same key with ConflictException; integrations have no
    /// key at all). Whoever looks after creating keeps the first of each by id, deletes the others
    /// and points the kept route at the kept integration, so every run keeps the same pair.
    async fn settle_duplicates(&self, aws: &Aws, api: &str) -> Result<()> {
        let (routes, integrations) = futures::try_join!(routes(aws, api), integrations(aws, api))?;
        let mut routes: Vec<Route> = routes
            .into_iter()
            .filter(|r| r.route_key() == Some(self.route_key.as_str()))
            .collect();
        routes.sort_by(|a, b| a.route_id().cmp(&b.route_id()));
        let mut integrations: Vec<Integration> = integrations
            .into_iter()
            .filter(|i| i.integration_uri() == Some(self.integration_uri.as_str()))
            .collect();
        integrations.sort_by(|a, b| a.integration_id().cmp(&b.integration_id()));
        for extra in routes.iter().skip(1).filter_map(|r| r.route_id()) {
            match aws.apigateway.delete_route().api_id(api).route_id(extra).send().await {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found_exception()) => {}
                Err(e) => {
                    return Err(sdk_error(
                        format!("deleting duplicate route {} ({extra})", self.route_key),
                        e,
                    ))
                }
            }
        }
        if let (Some(route), Some(integration)) = (routes.first(), integrations.first()) {
            let target = Self::target(integration);
            if route.target() != Some(target.as_str()) {
                aws.apigateway
                    .update_route()
                    .api_id(api)
                    .route_id(route.route_id().unwrap_or_default())
                    .target(&target)
                    .send()
                    .await
                    .map_err(|e| sdk_error(format!("updating route {}", self.route_key), e))?;
            }
        }
        for extra in integrations.iter().skip(1).filter_map(|i| i.integration_id()) {
            match aws
                .apigateway
                .delete_integration()
                .api_id(api)
                .integration_id(extra)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found_exception()) => {}
                Err(e) => {
                    return Err(sdk_error(
                        format!("deleting duplicate integration {extra} of route {}", self.route_key),
                        e,
                    ))
                }
            }
        }
        Ok(())
    }

    async fn destroy_route(&self, aws: &Aws) -> Result<Change> {
        let Some(api) = aws.api_id() else {
            return Ok(Change::Absent);
        };
        let observed = self.observe(aws, &api).await?;
        if observed.route.is_none() && observed.integration.is_none() {
            return Ok(Change::Absent);
        }
        if let Some(route) = &observed.route {
            match aws
                .apigateway
                .delete_route()
                .api_id(&api)
                .route_id(route.route_id().unwrap_or_default())
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found_exception()) => {}
                Err(e) => return Err(sdk_error(format!("deleting route {}", self.route_key), e)),
            }
        }
        if let Some(integration) = &observed.integration {
            let id = integration.integration_id().unwrap_or_default();
            match aws
                .apigateway
                .delete_integration()
                .api_id(&api)
                .integration_id(id)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found_exception()) => {}
                Err(e) => {
                    return Err(sdk_error(
                        format!("deleting the integration of route {}", self.route_key),
                        e,
                    ))
                }
            }
        }
        Ok(Change::Deleted)
    }
}

impl Resource for RouteSpec {
    fn kind(&self) -> &'static str {
        "API route"
    }
    fn name(&self) -> String {
        self.route_key.clone()
    }
    fn key(&self) -> String {
        self.key.clone()
    }
    fn depends_on(&self) -> Vec<String> {
        self.depends_on.clone()
    }
    fn inspect<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<State>> {
        self.inspect_route(aws).boxed()
    }
    fn ensure<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.ensure_route(aws).boxed()
    }
    fn destroy<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.destroy_route(aws).boxed()
    }
}
