//! The `bootstrap` binary of every wsstack function: reads `WSSTACK_HANDLER` and the configuration,
//! builds the SDK clients once, then hands the chosen handler to the Lambda runtime. No logic here.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use wsstack_handlers::authorizer::{self, Authorizer};
use wsstack_handlers::{app, push, routes, App, Config, HandlerKind};

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
    let kind = app::handler_kind_from_env().map_err(|error| format!("{error:#}"))?;
    if kind == HandlerKind::Authorizer {
        let config = app::AuthorizerConfig::from_env().map_err(|error| format!("{error:#}"))?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
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
    let app = Arc::new(App::from_env(config).await);
    tracing::info!(handler = ?kind, "initialized");
    match kind {
        HandlerKind::Push => {
            lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
                let app = app.clone();
                async move { Ok::<SqsBatchResponse, Error>(push::push(&app, event.payload).await) }
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
                        HandlerKind::Subscribe => routes::subscribe(&app, event.payload).await,
                        HandlerKind::Unsubscribe => routes::unsubscribe(&app, event.payload).await,
                        HandlerKind::Push | HandlerKind::Authorizer => {
                            Err(anyhow::anyhow!("{route:?} is not a WebSocket route"))
                        }
                    };
                    result.map_err(|error| {
                        tracing::error!(error = format!("{error:#}"), "request failed");
                        Error::from(format!("{error:#}"))
                    })
                }
            }))
            .await
        }
    }
}

/// JSON logs on stderr (CloudWatch takes both streams); the runtime's span adds the request id.
/// `RUST_LOG` or `AWS_LAMBDA_LOG_LEVEL` choose the level, `info` by default.
fn init_tracing() {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|level| level.to_lowercase()))
        .unwrap_or_else(|_| "info".to_string());
    // lambda_runtime logs each raw event at TRACE, and `$connect` events (the authorizer's and the
    // route's) carry the client's token in their headers: that one target never goes below DEBUG.
    let filter = tracing_subscriber::EnvFilter::new(filter).add_directive(
        "lambda_runtime::layers::api_response=debug"
            .parse()
            .expect("a valid directive"),
    );
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(true)
        .with_target(false)
        .without_time()
        .with_writer(std::io::stderr)
        .init();
}
