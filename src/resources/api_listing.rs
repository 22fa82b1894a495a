//! The routes and integrations of an API, listed once per run and shared by the route resources,
//! the authorizer lookup and discovery; `wsstack dev` reads them too. The run's own writes are known
//! to it (each route resource only looks for its own route and integration in the listing), so a
//! listing is never invalidated; a resource that must see other runs' writes lists again itself.

use std::sync::Arc;

use anyhow::Result;
use aws_sdk_apigatewayv2::types::{Integration, Route};

use super::pages;
use crate::aws::{sdk_error, Aws};
use crate::graph::Values;

/// The routes and integrations of one API, as the run first read them.
#[derive(Debug, Default)]
pub struct ApiListing {
    pub routes: Vec<Route>,
    pub integrations: Vec<Integration>,
}

/// Every route of an API, all pages.
pub async fn routes(aws: &Aws, api: &str) -> Result<Vec<Route>> {
    pages::all(|token| async move {
        let call = aws.apigateway.get_routes().api_id(api).max_results("100");
        let output = (call.set_next_token(token).send().await)
            .map_err(|e| sdk_error(format!("listing routes of API {api}"), e))?;
        Ok((output.items.unwrap_or_default(), output.next_token))
    })
    .await
}

/// Every integration of an API, all pages.
pub async fn integrations(aws: &Aws, api: &str) -> Result<Vec<Integration>> {
    pages::all(|token| async move {
        let call = aws.apigateway.get_integrations().api_id(api).max_results("100");
        let output = (call.set_next_token(token).send().await)
            .map_err(|e| sdk_error(format!("listing integrations of API {api}"), e))?;
        Ok((output.items.unwrap_or_default(), output.next_token))
    })
    .await
}

/// The routes and integrations of API `api`, listed once per run (both at once) and shared by
/// every route resource and the authorizer lookup of the run.
pub async fn listing(aws: &Aws, resolved: &Values, api: &str) -> Result<Arc<ApiListing>> {
    let cell = resolved.run().listing(api);
    let listing = cell
        .get_or_try_init(|| async {
            let (routes, integrations) = futures::try_join!(routes(aws, api), integrations(aws, api))?;
            anyhow::Ok(Arc::new(ApiListing { routes, integrations }))
        })
        .await?;
    Ok(listing.clone())
}
