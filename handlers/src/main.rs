//! The `bootstrap` binary of every wsstack function: reads `WSSTACK_HANDLER` and the configuration,
//! builds the SDK clients once, then hands the chosen handler to the Lambda runtime. No logic here.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use wsstack_handlers::authorizer::{self, Authorizer};
use wsstack_handlers::error::HandlerError;
use wsstack_handlers::{config, push, routes, sdk, App, Config, HandlerKind};

/// musl's allocator serializes and is slow under load. Measured on the push fan-out of the built
/// binary to 1,000 subscribers (local stand-in, 2 shared cores): mimalloc gave 1.3-2x the posts per
/// second when CPU-bound and 13-28% more at 10 ms per post, for 125 KB more binary.
#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One thread: a function instance handles one event at a time and the work is network-bound.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let kind = config::handler_kind_from_env().map_err(|error| format!("{error:#}"))?;
    if kind == HandlerKind::Authorizer {
        let config = config::AuthorizerConfig::from_env().map_err(|error| format!("{error:#}"))?;
        let sdk = sdk::sdk_config_from_env().map_err(|error| format!("{error:#}"))?;
        let authorizer = Arc::new(
            Authorizer::from_config(&config, &sdk)
                .await
                .map_err(|error| format!("{error:#}"))?,
        );
        tracing::info!(handler = ?kind, ?authorizer, "initialized");
        return lambda_runtime::run(service_fn(
            |event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| {
                let authorizer = authorizer.clone();
                async move { authorizer::authorize(&authorizer, event.payload).await }
            },
        ))
        .await;
    }
    let config = Config::from_env().map_err(|error| format!("{error:#}"))?;
    let app = Arc::new(App::from_env(config).map_err(|error| format!("{error:#}"))?);
    tracing::info!(handler = ?kind, "initialized");
    match kind {
        HandlerKind::Push => {
            lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
                let app = app.clone();
                let deadline = push::deadline_from_epoch_ms(event.context.deadline);
                async move { Ok::<SqsBatchResponse, Error>(push::push(&app, event.payload, deadline).await) }
            }))
            .await
        }
        route => {
            lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
                let app = app.clone();
                async move {
                    let result = match route {
                        HandlerKind::Connect => routes::connect(&app, event.payload).await,
                        HandlerKind::Disconnect => routes::disconnect(&app, event.payload).await,
                        HandlerKind::Subscribe => {
                            let deadline = push::deadline_from_epoch_ms(event.context.deadline);
                            routes::subscribe_until(&app, event.payload, deadline).await
                        }
                        HandlerKind::Unsubscribe => routes::unsubscribe(&app, event.payload).await,
                        HandlerKind::Resume => {
                            let deadline = push::deadline_from_epoch_ms(event.context.deadline);
                            routes::resume_until(&app, event.payload, deadline).await
                        }
                        HandlerKind::Push | HandlerKind::Authorizer => Err(HandlerError::invalid_event(
                            anyhow::anyhow!("{route:?} is not a WebSocket route"),
                        )),
                    };
                    // Lambda records the kind as the invocation's errorType (see HandlerError).
                    result.inspect_err(|error| {
                        tracing::error!(error = %error, error_type = error.kind.error_type(), "request failed");
                    })
                }
            }))
            .await
        }
    }
}

/// JSON logs on stderr (CloudWatch takes both streams); the runtime's span adds the request id.
/// `RUST_LOG` or `AWS_LAMBDA_LOG_LEVEL` choose the level, `info` by default: a level, or per-target
/// levels such as `info,aws_smithy_runtime=debug` (span and field filters are not understood).
/// The Lambda build stops at `debug`: tracing's `release_max_level_debug` compiles the `trace`
/// callsites out of every crate (174 KB of binary, 53 KB of zip on x86_64).
fn init_tracing() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|level| level.to_lowercase()))
        .unwrap_or_else(|_| "info".to_string());
    let (targets, unreadable) = match filter.parse::<Targets>() {
        Ok(targets) => (targets, None),
        Err(error) => (Targets::new().with_default(LevelFilter::INFO), Some(error)),
    };
    // lambda_runtime logs each raw event at TRACE, and `$connect` events (the authorizer's and the
    // route's) carry the client's token in their headers: that one target never goes below DEBUG.
    let cap = targets
        .default_level()
        .unwrap_or(LevelFilter::OFF)
        .min(LevelFilter::DEBUG);
    let targets = targets.with_target("lambda_runtime::layers::api_response", cap);
    // The builder's own filter (INFO unless told) would sit under `targets` and drop every debug
    // line whatever RUST_LOG says: it lets everything through, and `targets` decides.
    tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .json()
        .with_current_span(false)
        .with_span_list(true)
        .with_target(false)
        .without_time()
        .with_writer(std::io::stderr)
        .finish()
        .with(targets)
        .init();
    if let Some(error) = unreadable {
        tracing::warn!(filter, %error, "log filter not understood; logging at info");
    }
}
