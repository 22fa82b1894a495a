//! Finding the stack in AWS before a run, without a state file: the API and the custom domain by
//! the stack's tags, the functions of the authorizer and of own routes by name. What every command
//! starts from: the plan reads what was found (`Discovered`), the engine starts from its values
//! (`Discovered::resolved`).

use anyhow::Result;
use aws_sdk_apigatewayv2::types::Api;

use crate::aws::{sdk_error, Aws};
use crate::graph::{ApiId, Key, Target, Value, Values};
use crate::names::{Names, AUTHORIZER};
use crate::resources::domain_name::{self, TAG_HOSTED_ZONE};
use crate::resources::{api, api_listing, authorizer, pages};
use crate::stack::{TAG_STACK, TAG_STAGE};

/// What discovery found of the stack.
#[derive(Debug, Default)]
pub struct Discovered {
    /// The id of the API kept (the oldest tagged one), if any.
    pub api: Option<String>,
    /// The id of the stack's authorizer on that API's `$connect`, if any.
    pub authorizer: Option<String>,
    /// The ARN of the authorizer function an earlier `auth:` left, if any.
    pub authorizer_function: Option<String>,
    /// The custom domain an earlier `domain:` made, if any.
    pub domain: Option<Target>,
    /// (handler, ARN) of every own route's function, the stack file's or not.
    pub own_routes: Vec<(String, String)>,
    /// The values above for the engine, with the run state discovery filled (the API listing, the
    /// routes of the kept API).
    pub(crate) values: Values,
}

impl Discovered {
    /// The values a run starts from. Every copy shares the run state discovery filled.
    pub fn resolved(&self) -> Values {
        self.values.clone()
    }

    /// Whether an earlier `auth:` left something behind (the authorizer on `$connect`, or its
    /// function), which a stack file without `auth:` takes away.
    pub fn auth_left_behind(&self) -> bool {
        self.authorizer.is_some() || self.authorizer_function.is_some()
    }
}

/// Find the stack before a run.
pub async fn discover(aws: &Aws, stack: &str, stage: &str) -> Result<Discovered> {
    let first = first_round(&aws.apigateway, &aws.lambda, &aws.names, stack, stage).await?;
    discovered(aws, first).await
}

/// `Aws::connect` (the caller's account) and the first round of discovery at once: none of those
/// calls needs another's answer. What every command that runs the engine starts from.
pub async fn connect_and_discover(
    config: aws_config::SdkConfig,
    names: Names,
    stack: &str,
    stage: &str,
) -> Result<(Aws, Discovered)> {
    // Discovery only reads: no change to remember.
    let apigateway = crate::aws::apigateway_client(&config, &crate::aws::ApiChanges::default());
    let lambda = aws_sdk_lambda::Client::new(&config);
    let (aws, first) = futures::try_join!(
        Aws::connect(config, names.clone()),
        first_round(&apigateway, &lambda, &names, stack, stage)
    )?;
    let found = discovered(&aws, first).await?;
    Ok((aws, found))
}

/// What discovery reads before it knows anything: none of these calls needs another's answer.
struct FirstRound {
    apis: Vec<Api>,
    authorizer_function: Option<String>,
    domain: Option<Target>,
    own_routes: Vec<(String, String)>,
}

async fn first_round(
    apigateway: &aws_sdk_apigatewayv2::Client,
    lambda: &aws_sdk_lambda::Client,
    names: &Names,
    stack: &str,
    stage: &str,
) -> Result<FirstRound> {
    let (apis, authorizer_function, domain, own_routes) = futures::try_join!(
        api::find(apigateway, stack, stage),
        authorizer_function(lambda, names),
        domain(apigateway, stack, stage),
        own_routes(lambda, names)
    )?;
    Ok(FirstRound {
        apis,
        authorizer_function,
        domain,
        own_routes,
    })
}

async fn discovered(aws: &Aws, first: FirstRound) -> Result<Discovered> {
    let mut values = Values::default();
    let api = first.apis.first().and_then(|a| a.api_id()).map(String::from);
    // `status` and `plan` compare the permission and `$connect` against the authorizer's id
    // without running `ensure`, which is what otherwise hands it on. The routes read for that are
    // the run's listing, which the route resources read too.
    let mut authorizer = None;
    if let Some(api) = &api {
        let listing = api_listing::listing(aws, &values, api).await?;
        let name = aws.names.authorizer();
        let found = authorizer::find_on(aws, api, &listing.routes, &name, None).await?;
        authorizer = found.and_then(|a| a.authorizer_id);
    }
    values.set(
        Key::api(),
        api.clone().map(|id| {
            Value::Api(ApiId {
                id,
                created_by_run: None,
            })
        }),
    );
    values.set(Key::authorizer(), authorizer.clone().map(Value::AuthorizerId));
    values.set(Key::domain_name(), first.domain.clone().map(Value::DomainTarget));
    values.run().set_discovered_apis(first.apis);
    Ok(Discovered {
        api,
        authorizer,
        authorizer_function: first.authorizer_function,
        domain: first.domain,
        own_routes: first.own_routes,
        values,
    })
}

/// The ARN of an authorizer function an earlier `auth:` left, if any: a stack file without
/// `auth:` takes away what an earlier one made, and the plan only lists those resources when one
/// of them is there.
async fn authorizer_function(lambda: &aws_sdk_lambda::Client, names: &Names) -> Result<Option<String>> {
    let function = names.function(AUTHORIZER);
    let call = lambda.get_function().function_name(&function);
    let found = crate::resources::errors::found(call.send().await, || format!("reading Lambda function {function}"))?;
    Ok(found.and_then(|f| f.configuration?.function_arn))
}

/// The stack's custom domain, by its tags, which also name the hosted zone of its alias records,
/// so that a stack file without `domain:` can take them away.
async fn domain(apigateway: &aws_sdk_apigatewayv2::Client, stack: &str, stage: &str) -> Result<Option<Target>> {
    let domains = pages::all(|token| async move {
        let call = apigateway.get_domain_names().max_results("100").set_next_token(token);
        let output = (call.send().await).map_err(|e| sdk_error("listing API Gateway domain names", e))?;
        Ok((output.items.unwrap_or_default(), output.next_token))
    })
    .await?;
    for domain in domains {
        let tag = |key: &str| domain.tags().and_then(|t| t.get(key)).map(String::as_str);
        if tag(TAG_STACK) != Some(stack) || tag(TAG_STAGE) != Some(stage) {
            continue;
        }
        let (Some(name), Some(zone)) = (domain.domain_name(), tag(TAG_HOSTED_ZONE)) else {
            continue;
        };
        return Ok(domain_name::target(
            name,
            zone,
            domain.domain_name_configurations().first(),
        ));
    }
    Ok(None)
}

/// The functions of the stack's own routes, as (handler, ARN): every function whose name is the
/// stack's prefix and an own route's handler (`names::own_route_key`), so that a route taken out
/// of the stack file is still found. Their tags decide later whether they are ours to delete.
async fn own_routes(lambda: &aws_sdk_lambda::Client, names: &Names) -> Result<Vec<(String, String)>> {
    let prefix = format!("{}-", names.prefix);
    let mut found = Vec::new();
    let mut pages = lambda.list_functions().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error("listing Lambda functions", e))?;
        for function in page.functions() {
            let (Some(name), Some(arn)) = (function.function_name(), function.function_arn()) else {
                continue;
            };
            let Some(handler) = name.strip_prefix(&prefix) else {
                continue;
            };
            if crate::names::own_route_key(handler).is_some() {
                found.push((handler.to_string(), arn.to_string()));
            }
        }
    }
    Ok(found)
}
