//! What `up` declared, read back from the emulator into what `wsstack dev` serves: each route's
//! function and whether it is two-way (has a route response), `$connect`'s authorizer, the push
//! function's event sources, and each function's configuration (its environment as Lambda gives
//! it, plus dev's own variables). Only reads, but for one write: it pauses the emulator's own
//! pollers of the event sources it takes over (`resume_event_sources` undoes it).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use aws_sdk_apigatewayv2::types::{AuthorizationType, Route};

use super::binaries::Binaries;
use super::credentials::SessionCredentials;
use super::events::AuthorizerTarget;
use super::gateway::ConnectAuthorizer;
use super::poller::EventSource;
use super::runtime::{FunctionConfig, FunctionHost, Limits, Runtime};
use crate::aws::{sdk_error, Aws};
use crate::resources::route_response::route_responses;

/// What the stack declared, as dev runs it.
pub struct Declared {
    /// Each route key's function.
    pub routes: HashMap<String, Arc<FunctionHost>>,
    /// The route keys with a route response: their integration's body goes back to the client.
    pub two_way: HashSet<String>,
    pub authorizer: Option<ConnectAuthorizer>,
    pub sources: Vec<Arc<EventSource>>,
    /// The emulator's event source mappings paused while dev polls their queues.
    pub paused: Vec<String>,
}

/// The hosts of the stack's functions, one per function whatever the number of routes it serves.
pub struct Functions<'a> {
    aws: &'a Aws,
    runtime: &'a Runtime,
    binaries: &'a Binaries,
    limits: Limits,
    /// What every handler process gets besides its function's variables.
    base_env: BTreeMap<String, String>,
    callback_url: String,
    hosts: HashMap<String, Arc<FunctionHost>>,
}

impl<'a> Functions<'a> {
    /// `endpoint` is the emulator's, `callback_url` the local management API's, `credentials`
    /// this session's (every handler process gets them).
    pub fn new(
        aws: &'a Aws,
        runtime: &'a Runtime,
        binaries: &'a Binaries,
        limits: Limits,
        (endpoint, callback_url): (&str, &str),
        credentials: &SessionCredentials,
    ) -> Functions<'a> {
        Functions {
            aws,
            runtime,
            binaries,
            limits,
            base_env: base_environment(&aws.region, endpoint, credentials),
            callback_url: callback_url.to_string(),
            hosts: HashMap::new(),
        }
    }

    /// The host of `function`, running `binary`; its configuration read back the first time.
    async fn host(&mut self, function: &str, binary: &Path) -> Result<Arc<FunctionHost>> {
        if let Some(host) = self.hosts.get(function) {
            return Ok(host.clone());
        }
        let config = self.config(function, binary).await?;
        let host = self.runtime.host(config, self.limits);
        self.hosts.insert(function.to_string(), host.clone());
        Ok(host)
    }

    async fn config(&self, name: &str, binary: &Path) -> Result<FunctionConfig> {
        let function = self
            .aws
            .lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .map_err(|e| sdk_error(format!("reading Lambda function {name}"), e))?;
        let mut environment = self.base_env.clone();
        if let Some(variables) = function.environment().and_then(|e| e.variables()) {
            // Lambda reserves the AWS_ credential variables: a function's configuration cannot
            // replace the session's keys.
            let configurable = variables.iter().filter(|(k, _)| !RESERVED.contains(&k.as_str()));
            environment.extend(configurable.map(|(k, v)| (k.clone(), v.clone())));
        }
        // The one difference from AWS: handlers post to the local gateway.
        environment.insert("CALLBACK_URL".into(), self.callback_url.clone());
        Ok(FunctionConfig {
            name: name.to_string(),
            arn: function.function_arn().unwrap_or_default().to_string(),
            memory_mb: function.memory_size().unwrap_or(128),
            timeout: Duration::from_secs(function.timeout().unwrap_or(3).max(1) as u64),
            environment,
            binary: binary.to_path_buf(),
        })
    }
}

/// Variables Lambda sets itself and refuses in a function's configuration.
const RESERVED: [&str; 3] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];

/// What every handler process gets besides its function's variables: the region, the emulator as
/// its endpoint, this session's local credentials, and the caller's PATH and RUST_LOG.
///
/// Never the caller's own AWS credentials: the emulator takes any key, and an own route's code
/// (or a dependency of it) has no business holding keys to a real account. The session's keys are
/// also what the local management API asks for (see `credentials`).
fn base_environment(region: &str, endpoint: &str, credentials: &SessionCredentials) -> BTreeMap<String, String> {
    let mut base_env: BTreeMap<String, String> = BTreeMap::new();
    base_env.insert("AWS_REGION".into(), region.to_string());
    base_env.insert("AWS_DEFAULT_REGION".into(), region.to_string());
    base_env.insert("AWS_ENDPOINT_URL".into(), endpoint.to_string());
    base_env.insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
    base_env.insert("AWS_ACCESS_KEY_ID".into(), credentials.access_key_id.clone());
    base_env.insert("AWS_SECRET_ACCESS_KEY".into(), credentials.secret_access_key.clone());
    for variable in ["RUST_LOG", "PATH"] {
        if let Ok(value) = std::env::var(variable) {
            base_env.insert(variable.into(), value);
        }
    }
    base_env
}

/// Read back the API's routes, `$connect`'s authorizer and the push function's event sources.
/// `pollers` is the pollers per event source when its mapping sets no maximum concurrency.
pub async fn read_back(functions: &mut Functions<'_>, api_id: &str, pollers: usize) -> Result<Declared> {
    let (routes, declared) = routes(functions, api_id).await?;
    let two_way = two_way(functions.aws, api_id, &declared, &routes).await?;
    if routes.is_empty() {
        bail!("the API has no routes with Lambda integrations");
    }
    let authorizer = authorizer(functions, api_id, &declared).await?;
    let (sources, paused) = event_sources(functions, pollers).await?;
    Ok(Declared {
        routes,
        two_way,
        authorizer,
        sources,
        paused,
    })
}

/// The function a Lambda integration (or authorizer) URI invokes:
/// `arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function ARN}/invocations`.
pub fn function_of_integration(uri: &str) -> Option<String> {
    let arn = uri.split("/functions/").nth(1)?.strip_suffix("/invocations")?;
    arn.rsplit(":function:")
        .next()
        .map(|name| name.split(':').next().unwrap_or(name).to_string())
}

/// Each route key's function, through its integration; also the routes as the emulator has them.
async fn routes(
    functions: &mut Functions<'_>,
    api_id: &str,
) -> Result<(HashMap<String, Arc<FunctionHost>>, Vec<Route>)> {
    let aws = functions.aws;
    let (routes, integrations) = futures::try_join!(
        crate::resources::api_listing::routes(aws, api_id),
        crate::resources::api_listing::integrations(aws, api_id)
    )?;
    let mut route_functions = HashMap::new();
    for route in &routes {
        let (Some(key), Some(target)) = (route.route_key(), route.target()) else {
            continue;
        };
        let id = target.trim_start_matches("integrations/");
        let Some(function) = integrations
            .iter()
            .find(|i| i.integration_id() == Some(id))
            .and_then(|i| i.integration_uri())
            .and_then(function_of_integration)
        else {
            tracing::warn!(route_key = key, "the route has no Lambda integration; it is not served");
            continue;
        };
        let binary = functions.binaries.of(&function).to_path_buf();
        route_functions.insert(key.to_string(), functions.host(&function, &binary).await?);
    }
    Ok((route_functions, routes))
}

/// The served routes that have a route response (API Gateway sends an integration's body back
/// only for those).
async fn two_way(
    aws: &Aws,
    api_id: &str,
    declared: &[Route],
    served: &HashMap<String, Arc<FunctionHost>>,
) -> Result<HashSet<String>> {
    let served = declared
        .iter()
        .filter(|r| r.route_key().is_some_and(|key| served.contains_key(key)));
    let looks = served.map(|route| async move {
        let id = route.route_id().unwrap_or_default();
        let responses = route_responses(aws, api_id, id).await?;
        let key = route.route_key().unwrap_or_default().to_string();
        anyhow::Ok((!responses.is_empty()).then_some(key))
    });
    Ok(futures::future::try_join_all(looks)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// `$connect`'s authorizer, when its authorization is CUSTOM.
async fn authorizer(
    functions: &mut Functions<'_>,
    api_id: &str,
    routes: &[Route],
) -> Result<Option<ConnectAuthorizer>> {
    let Some(route) = routes.iter().find(|r| r.route_key() == Some("$connect")) else {
        return Ok(None);
    };
    if route.authorization_type() != Some(&AuthorizationType::Custom) {
        return Ok(None);
    }
    let aws = functions.aws;
    let id = route
        .authorizer_id()
        .ok_or_else(|| anyhow!("the $connect route has CUSTOM authorization but no AuthorizerId"))?;
    let found = aws
        .apigateway
        .get_authorizer()
        .api_id(api_id)
        .authorizer_id(id)
        .send()
        .await
        .map_err(|e| sdk_error(format!("reading authorizer {id} of $connect"), e))?;
    let function = found
        .authorizer_uri()
        .and_then(function_of_integration)
        .ok_or_else(|| anyhow!("authorizer {id} of $connect names no Lambda function"))?;
    let binary = functions.binaries.bundled().to_path_buf();
    Ok(Some(ConnectAuthorizer {
        function: functions.host(&function, &binary).await?,
        target: AuthorizerTarget {
            region: aws.region.clone(),
            account: aws.account.clone(),
        },
    }))
}

/// The push function's queues, each with as many pollers as its mapping's maximum concurrency
/// (within the instances a function may have here); also the emulator's mappings now paused.
async fn event_sources(functions: &mut Functions<'_>, pollers: usize) -> Result<(Vec<Arc<EventSource>>, Vec<String>)> {
    let aws = functions.aws;
    let mut sources = Vec::new();
    let mut paused = Vec::new();
    let mappings = aws
        .lambda
        .list_event_source_mappings()
        .function_name(aws.names.function("push"))
        .send()
        .await
        .map_err(|e| sdk_error("reading the event source mappings", e))?;
    for mapping in mappings.event_source_mappings() {
        let (Some(queue_arn), Some(function_arn)) = (mapping.event_source_arn(), mapping.function_arn()) else {
            continue;
        };
        let function = function_arn.rsplit(":function:").next().unwrap_or_default().to_string();
        let queue_name = queue_arn.rsplit(':').next().unwrap_or_default();
        let queue_url = aws
            .sqs
            .get_queue_url()
            .queue_name(queue_name)
            .send()
            .await
            .map_err(|e| sdk_error(format!("finding queue {queue_name}"), e))?
            .queue_url
            .unwrap_or_default();
        // The emulator's own poller would take these messages too (it tries to run the function in
        // Docker on every SendMessage, fails, and counts a receive each time, so messages end in the
        // DLQ): it is paused while this poller runs, and resumed at exit.
        if mapping.state() == Some("Enabled") {
            if let Some(uuid) = mapping.uuid() {
                aws.lambda
                    .update_event_source_mapping()
                    .uuid(uuid)
                    .enabled(false)
                    .send()
                    .await
                    .map_err(|e| sdk_error("pausing the emulator's event source", e))?;
                paused.push(uuid.to_string());
            }
        }
        let binary = functions.binaries.bundled().to_path_buf();
        // As many pollers as the mapping's maximum concurrency: the invocations at once that the
        // post budget is shared by (within the processes a function may have here).
        let concurrency = mapping
            .scaling_config()
            .and_then(|s| s.maximum_concurrency())
            .map_or(pollers, |c| c as usize);
        sources.push(Arc::new(EventSource {
            queue_url,
            queue_arn: queue_arn.to_string(),
            region: aws.region.clone(),
            batch_size: mapping.batch_size().unwrap_or(10),
            pollers: concurrency.clamp(1, functions.limits.instances.max(1)),
            function: functions.host(&function, &binary).await?,
        }));
    }
    Ok((sources, paused))
}

/// Give the emulator its event source pollers back; a failure is logged, not returned.
pub async fn resume_event_sources(aws: &Aws, paused: &[String]) {
    for uuid in paused {
        if let Err(error) = aws
            .lambda
            .update_event_source_mapping()
            .uuid(uuid)
            .enabled(true)
            .send()
            .await
        {
            let error = sdk_error(format!("resuming the event source {uuid}"), error);
            tracing::warn!(error = format!("{error:#}"), "the emulator's event source stays paused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_uris_name_their_function() {
        let uri = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:demo-dev-connect/invocations";
        assert_eq!(function_of_integration(uri).as_deref(), Some("demo-dev-connect"));
        assert_eq!(function_of_integration("http://example.com"), None);
    }
}
