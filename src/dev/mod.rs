//! `wsstack dev`: the whole stack on one machine, no AWS account, no Docker.
//!
//! The AWS APIs are the moto emulator (started here unless an endpoint is given), provisioned by the
//! same `up` as real AWS. Around it runs what AWS would run for us, reading back what `up` declared:
//! a WebSocket gateway for the API's routes (`gateway`), a Lambda runtime host for the handler
//! binaries (`runtime`), and SQS pollers for the event source mappings (`poller`).
//!
//! Shutdown is in two steps: first the gateway closes every connection (their `$disconnect` still
//! runs), then pollers and handler processes stop.

mod backoff;
pub mod emulator;
mod events;
pub mod fd_limit;
pub mod gateway;
pub mod logs;
pub mod poller;
pub mod runtime;
pub mod session;
#[cfg(test)]
mod test_support;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::aws::{sdk_error, Aws};
use crate::bundle::Bundle;
use crate::graph::Resolved;
use crate::stack::Stack;
use aws_sdk_apigatewayv2::types::AuthorizationType;
use gateway::{ConnectAuthorizer, Gateway, GatewayConfig};
use runtime::{FunctionConfig, FunctionHost, Limits, LogSink, Runtime};

/// How long shutdown waits for handler processes (and their output) to end, then for the last
/// handler lines to reach CloudWatch Logs.
const RUNTIME_GRACE: Duration = Duration::from_secs(10);
const LOGS_GRACE: Duration = Duration::from_secs(10);

pub struct DevOptions {
    pub port: u16,
    pub idle_timeout: Duration,
    pub max_connection: Duration,
    /// Handler processes per function at most.
    pub max_instances: usize,
    /// SQS pollers per event source mapping.
    pub pollers: usize,
    /// WebSocket connections at once at most; past it handshakes are refused with 429.
    pub max_connections: usize,
    pub quiet_handlers: bool,
    /// The emulator endpoint the handlers use.
    pub endpoint: String,
    /// The note in `.wsstack/` this dev holds (see `session`), published once it serves.
    pub session: Option<session::Claim>,
}

/// The function a Lambda integration (or authorizer) URI invokes:
/// `arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function ARN}/invocations`.
pub fn function_of_integration(uri: &str) -> Option<String> {
    let arn = uri.split("/functions/").nth(1)?.strip_suffix("/invocations")?;
    arn.rsplit(":function:")
        .next()
        .map(|name| name.split(':').next().unwrap_or(name).to_string())
}

/// A function's invocation queue holds what can wait on it at once: each WebSocket connection
/// waits on at most one invocation at a time (authorizer, `$connect`, one frame after the other,
/// `$disconnect`), and each poller on one (at most `max_instances` per source). Twice the
/// connections leaves room for the invocations of closing connections that stopped waiting: they
/// stay queued and run, as on Lambda. Past it, invocations are throttled.
fn queue_limit(options: &DevOptions) -> usize {
    options.max_connections.saturating_mul(2).saturating_add(options.max_instances)
}

/// Write the bundle's `bootstrap` into a fresh directory, executable.
fn extract_bootstrap(bundle: &Bundle, dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bundle.zip)).context("reading the handlers zip")?;
    let mut entry = archive
        .by_name("bootstrap")
        .context("the handlers zip has no bootstrap")?;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("bootstrap");
    let mut file = std::fs::File::create(&path)?;
    std::io::copy(&mut entry, &mut file)?;
    file.flush()?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

/// Each own route's `bootstrap`, extracted from its package into its own directory, by function
/// name.
fn own_route_binaries(stack: &Stack, aws: &Aws, work_dir: &Path) -> Result<HashMap<String, PathBuf>> {
    let mut binaries = HashMap::new();
    for own in stack.own_routes() {
        let Some(package) = &own.package else { continue };
        let handler = crate::names::own_route_handler(&own.name);
        let bundle = Bundle {
            zip: package.zip.to_vec(),
            sha256: package.sha256.clone(),
        };
        let binary = extract_bootstrap(&bundle, &work_dir.join(&handler))
            .with_context(|| format!("the code of route {}", own.name))?;
        binaries.insert(aws.names.function(&handler), binary);
    }
    Ok(binaries)
}

async fn function_config(
    aws: &Aws,
    name: &str,
    binary: &Path,
    base_env: &BTreeMap<String, String>,
    callback_url: &str,
) -> Result<FunctionConfig> {
    let function = aws
        .lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .map_err(|e| sdk_error(format!("reading Lambda function {name}"), e))?;
    let mut environment = base_env.clone();
    if let Some(variables) = function.environment().and_then(|e| e.variables()) {
        environment.extend(variables.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    // The one difference from AWS: handlers post to the local gateway.
    environment.insert("CALLBACK_URL".into(), callback_url.to_string());
    Ok(FunctionConfig {
        name: name.to_string(),
        arn: function.function_arn().unwrap_or_default().to_string(),
        memory_mb: function.memory_size().unwrap_or(128),
        timeout: Duration::from_secs(function.timeout().unwrap_or(3).max(1) as u64),
        environment,
        binary: binary.to_path_buf(),
    })
}

/// dev's own log: `tracing` events on stderr, filtered by `WSSTACK_LOG` (default `info`). The
/// lines it prints for the user go to stdout and stay as they are.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WSSTACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Serve the stack locally until Ctrl-C or SIGTERM. `resolved` is what `up` just produced: it
/// knows the API id.
pub async fn serve(stack: &Stack, aws: &Aws, resolved: &Resolved, bundle: &Bundle, options: DevOptions) -> Result<()> {
    init_logging();
    // Every client holds a descriptor: take all the process may have, and say when it runs short.
    let open_files = fd_limit::raise_to_hard_limit().context("raising the open-file limit")?;
    // The one place dev learns the API id.
    let api_id = resolved
        .api_id()
        .map(String::from)
        .ok_or_else(|| anyhow!("the stack's WebSocket API is missing after up"))?;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{}", options.port))?;
    let address = listener.local_addr()?;
    let gateway_url = format!("ws://{address}/{}", stack.stage);
    let callback_url = format!("http://{address}/{}", stack.stage);

    let work_dir = std::env::temp_dir().join(format!("wsstack-dev-{}", std::process::id()));
    let binary = extract_bootstrap(bundle, &work_dir)?;
    let own_binaries = own_route_binaries(stack, aws, &work_dir)?;
    // Routes with their own code run their own bootstrap; every other function the bundled one.
    let binary_of = |function: &str| own_binaries.get(function).unwrap_or(&binary).clone();
    let emulation = runtime::emulation(&binary)?;

    // What every handler process gets besides its function's variables.
    let mut base_env: BTreeMap<String, String> = BTreeMap::new();
    base_env.insert("AWS_REGION".into(), aws.region.clone());
    base_env.insert("AWS_DEFAULT_REGION".into(), aws.region.clone());
    base_env.insert("AWS_ENDPOINT_URL".into(), options.endpoint.clone());
    base_env.insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
    for (variable, fallback) in [("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local")] {
        base_env.insert(
            variable.into(),
            std::env::var(variable).unwrap_or_else(|_| fallback.into()),
        );
    }
    for variable in ["AWS_SESSION_TOKEN", "RUST_LOG", "PATH"] {
        if let Ok(value) = std::env::var(variable) {
            base_env.insert(variable.into(), value);
        }
    }

    // Two steps: the gateway closes its connections (their $disconnect still runs), then the
    // pollers and handler processes stop.
    let stop_gateway = CancellationToken::new();
    let stop_runtime = CancellationToken::new();
    let (shipper, shipping) = logs::LogShipper::start(aws.logs.clone());
    let log = LogSink {
        quiet: options.quiet_handlers,
        cloudwatch: Some(shipper),
    };
    let runtime = Runtime::new(stop_runtime.clone(), log);
    let limits = Limits {
        instances: options.max_instances,
        queued: queue_limit(&options),
    };
    let mut hosts: HashMap<String, Arc<FunctionHost>> = HashMap::new();
    let mut host_for = |config: FunctionConfig| -> Arc<FunctionHost> {
        hosts
            .entry(config.name.clone())
            .or_insert_with(|| runtime.host(config, limits))
            .clone()
    };

    // Routes, read back from the emulator: what runs is what `up` declared.
    let (routes, integrations) = futures::try_join!(
        crate::resources::route::routes(aws, &api_id),
        crate::resources::route::integrations(aws, &api_id)
    )?;
    let mut route_functions: HashMap<String, Arc<FunctionHost>> = HashMap::new();
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
        let config = function_config(aws, &function, &binary_of(&function), &base_env, &callback_url).await?;
        route_functions.insert(key.to_string(), host_for(config));
    }

    // $connect's authorizer, read back like the routes: a CUSTOM authorization names one.
    let authorizer = match routes.iter().find(|r| r.route_key() == Some("$connect")) {
        Some(route) if route.authorization_type() == Some(&AuthorizationType::Custom) => {
            let id = route
                .authorizer_id()
                .ok_or_else(|| anyhow!("the $connect route has CUSTOM authorization but no AuthorizerId"))?;
            let found = aws
                .apigateway
                .get_authorizer()
                .api_id(&api_id)
                .authorizer_id(id)
                .send()
                .await
                .map_err(|e| sdk_error(format!("reading authorizer {id} of $connect"), e))?;
            let function = found
                .authorizer_uri()
                .and_then(function_of_integration)
                .ok_or_else(|| anyhow!("authorizer {id} of $connect names no Lambda function"))?;
            let config = function_config(aws, &function, &binary, &base_env, &callback_url).await?;
            Some(ConnectAuthorizer {
                function: host_for(config),
                target: events::AuthorizerTarget {
                    region: aws.region.clone(),
                    account: aws.account.clone(),
                },
            })
        }
        _ => None,
    };

    // Event sources: the push function's queue.
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
        let config = function_config(aws, &function, &binary, &base_env, &callback_url).await?;
        // As many pollers as the mapping's maximum concurrency: the invocations at once that the
        // post budget is shared by (within the processes a function may have here).
        let concurrency = mapping
            .scaling_config()
            .and_then(|s| s.maximum_concurrency())
            .map_or(options.pollers, |c| c as usize);
        sources.push(Arc::new(poller::EventSource {
            queue_url,
            queue_arn: queue_arn.to_string(),
            region: aws.region.clone(),
            batch_size: mapping.batch_size().unwrap_or(10),
            pollers: concurrency.clamp(1, options.max_instances.max(1)),
            function: host_for(config),
        }));
    }
    if route_functions.is_empty() {
        bail!("the API has no routes with Lambda integrations");
    }

    let gateway = Gateway::new(
        GatewayConfig {
            api_id: api_id.clone(),
            stage: stack.stage.clone(),
            routes: route_functions,
            authorizer,
            idle_timeout: options.idle_timeout,
            max_connection: options.max_connection,
            max_connections: options.max_connections,
        },
        address,
        stop_gateway.clone(),
    );
    let gateway_task = tokio::spawn(gateway.clone().serve(listener));
    let pollers = TaskTracker::new();
    for source in &sources {
        for _ in 0..source.pollers {
            pollers.spawn(poller::run(aws.sqs.clone(), source.clone(), stop_runtime.clone()));
        }
    }
    pollers.spawn(fd_limit::watch(open_files, stop_runtime.clone()));
    pollers.close();

    if let Some(claim) = &options.session {
        claim.publish(&session::Session {
            pid: std::process::id(),
            endpoint: options.endpoint.clone(),
            region: aws.region.clone(),
            gateway: gateway_url.clone(),
            paused_event_sources: paused.clone(),
        })?;
    }
    // Registered before "serving" is printed: a Ctrl-C right after it must stop dev cleanly.
    let stop = stop_signal();
    println!("wsstack dev: serving {gateway_url}");
    println!("  management API  {callback_url}/@connections/{{id}}");
    println!("  AWS emulator    {}", options.endpoint);
    if let Some(emulation) = &emulation {
        println!("  handlers        {emulation}");
    }
    println!("  open files      up to {open_files} (about one per client)");
    println!(
        "  connections     up to {} at once (--max-connections; past it handshakes get 429)",
        options.max_connections
    );
    println!(
        "  event sources   {} (polled here; the emulator's own poller is paused meanwhile)",
        sources.len()
    );
    println!("Ctrl-C stops it.");
    std::io::stdout().flush().ok();

    stop.await;
    println!(
        "wsstack dev: stopping: closing {} connections",
        gateway.connection_count()
    );
    stop_gateway.cancel();
    let _ = gateway_task.await;
    // Every handler process stops: each instance's task, process and output end before this returns.
    runtime.stop(RUNTIME_GRACE).await;
    pollers.wait().await;
    for uuid in paused {
        if let Err(error) = aws
            .lambda
            .update_event_source_mapping()
            .uuid(&uuid)
            .enabled(true)
            .send()
            .await
        {
            let error = sdk_error(format!("resuming the event source {uuid}"), error);
            tracing::warn!(error = format!("{error:#}"), "the emulator's event source stays paused");
        }
    }
    // The handlers' last lines, shipped before dev exits.
    shipping.finish(LOGS_GRACE).await;
    drop(options.session);
    let _ = std::fs::remove_dir_all(&work_dir);
    println!("wsstack dev: stopped");
    Ok(())
}

/// SIGINT or SIGTERM; both handlers are installed when this is called, not when awaited.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
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
