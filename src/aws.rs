//! The AWS side of a run: SDK configuration from the standard chain (profile, region, endpoint),
//! one client per service, the account id, and error helpers shared by every resource module.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_apigatewayv2::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_apigatewayv2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_apigatewayv2::error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use aws_smithy_types::date_time::Format as DateTimeFormat;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::DateTime;

use crate::names::{Arns, Names};

/// How the user pointed us at AWS.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// Use fixed placeholder credentials (a local emulator needs some, and checks none).
    pub local_credentials: bool,
}

/// Resolve the region without any network call: flag, then stack file, then the standard chain
/// (environment, profile). Instance metadata is not consulted here.
pub async fn resolve_region(target: &Target, stack_region: Option<&str>) -> Option<String> {
    if let Some(region) = target.region.as_deref().or(stack_region) {
        return Some(region.to_string());
    }
    if let Ok(region) = std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION")) {
        if !region.is_empty() {
            return Some(region);
        }
    }
    let mut provider = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(profile) = &target.profile {
        provider = provider.profile_name(profile);
    }
    use aws_config::meta::region::ProvideRegion;
    provider.build().region().await.map(|r| r.to_string())
}

/// SDK configuration for a region, with retries tuned for provisioning: more attempts than the
/// default, because a deploy is long-running and one throttled call must not fail it.
pub async fn sdk_config(target: &Target, region: &str) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(8)
                .with_initial_backoff(Duration::from_millis(100))
                .with_max_backoff(Duration::from_secs(5)),
        );
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = &target.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    if target.local_credentials {
        loader = loader.credentials_provider(aws_sdk_sts::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "wsstack-local",
        ));
    }
    loader.load().await
}

/// Everything a resource module needs to talk to AWS about one stack. Cloning shares the clients.
#[derive(Clone)]
pub struct Aws {
    pub region: String,
    pub account: String,
    pub names: Names,
    pub arns: Arns,
    pub iam: aws_sdk_iam::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigateway: aws_sdk_apigatewayv2::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sns: aws_sdk_sns::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub acm: aws_sdk_acm::Client,
    pub route53: aws_sdk_route53::Client,
    /// When this run last changed each API, on API Gateway's clock.
    pub api_changes: ApiChanges,
}

impl Aws {
    /// Build the clients and learn the account id and the partition (one STS call).
    pub async fn connect(config: SdkConfig, names: Names) -> Result<Aws> {
        let region = names.region.clone();
        let sts = aws_sdk_sts::Client::new(&config);
        let identity = sts.get_caller_identity().send().await.map_err(|e| {
            anyhow!(
                "finding the AWS account (sts:GetCallerIdentity): {}",
                DisplayErrorContext(e)
            )
        })?;
        let account = identity
            .account()
            .context("sts:GetCallerIdentity returned no account")?
            .to_string();
        let caller = identity.arn().context("sts:GetCallerIdentity returned no ARN")?;
        let arns = Arns::new(
            Arns::partition_of(caller).with_context(|| format!("no AWS partition in the caller's ARN {caller}"))?,
            &region,
            &account,
        );
        if arns.dns_suffix().is_none() {
            bail!(
                "AWS partition {} (of the caller {caller}) is not one wsstack knows the endpoints of",
                arns.partition
            );
        }
        let api_changes = ApiChanges::default();
        Ok(Aws {
            iam: aws_sdk_iam::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            apigateway: apigateway_client(&config, &api_changes),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            acm: aws_sdk_acm::Client::new(&config),
            route53: aws_sdk_route53::Client::new(&config),
            api_changes,
            arns,
            region,
            account,
            names,
        })
    }
}

#[cfg(test)]
impl Aws {
    /// Clients that are never called: for tests of code that only passes `Aws` along.
    pub fn offline(names: Names) -> Aws {
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(names.region.clone()))
            .build();
        let account = "123456789012".to_string();
        Aws {
            iam: aws_sdk_iam::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            apigateway: aws_sdk_apigatewayv2::Client::new(&config),
            api_changes: ApiChanges::default(),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            acm: aws_sdk_acm::Client::new(&config),
            route53: aws_sdk_route53::Client::new(&config),
            arns: Arns::new("aws", &names.region, &account),
            region: names.region.clone(),
            account,
            names,
        }
    }
}

/// How many times an API Gateway call is tried: enough for the writes `up` makes to one API at
/// once (a route and an integration per handler, the authorizer, the stage) to take their turns
/// while API Gateway refuses all but one at a time; with the 5 s backoff cap, about a minute.
const API_GATEWAY_ATTEMPTS: u32 = 16;

/// The API Gateway client: the shared configuration, plus the retry of API Gateway's
/// concurrent-modification conflict (`retry::ConcurrentModification`) with more attempts.
pub fn apigateway_client(config: &SdkConfig, changes: &ApiChanges) -> aws_sdk_apigatewayv2::Client {
    let retry = config.retry_config().cloned().unwrap_or_else(RetryConfig::standard);
    let config = aws_sdk_apigatewayv2::config::Builder::from(config)
        .retry_config(retry.with_max_attempts(API_GATEWAY_ATTEMPTS))
        .retry_classifier(crate::retry::ConcurrentModification)
        .interceptor(changes.clone())
        .build();
    aws_sdk_apigatewayv2::Client::from_conf(config)
}

/// When this process last changed each API (a route, an integration, an authorizer, the stage), on
/// API Gateway's clock: the `Date` of its answer to the write. AutoDeploy deploys every change on
/// its own, and the stage waits for a deployment created no earlier than the last one
/// (`StageSpec::wait_for_changes`). The `Date` has whole seconds: a deployment started in the
/// same second as the last change, just before it, passes for one that carries it.
#[derive(Debug, Clone, Default)]
pub struct ApiChanges(Arc<Mutex<HashMap<String, DateTime>>>);

impl ApiChanges {
    /// When this process last changed `api`, if it did.
    pub fn last(&self, api: &str) -> Option<DateTime> {
        self.0.lock().expect("no panic holds this lock").get(api).copied()
    }
}

/// The API a write in flight changes, kept for its answer.
#[derive(Debug, Clone)]
struct Changing(String);

impl Storable for Changing {
    type Storer = StoreReplace<Self>;
}

impl Intercept for ApiChanges {
    fn name(&self) -> &'static str {
        "ApiChanges"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        if request.method() == "GET" {
            return Ok(());
        }
        // `https://apigateway.{region}.amazonaws.com/v2/apis/{api}/...`
        let path = request.uri().split("/v2/apis/").nth(1).unwrap_or_default();
        if let Some((api, _)) = path.split_once('/') {
            cfg.interceptor_state().store_put(Changing(api.to_string()));
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Changing(api)) = cfg.load::<Changing>() else {
            return Ok(());
        };
        let response = context.response();
        let date = response
            .headers()
            .get("date")
            .and_then(|date| DateTime::from_str(date, DateTimeFormat::HttpDate).ok());
        if let (true, Some(date)) = (response.status().is_success(), date) {
            let mut changes = self.0.lock().expect("no panic holds this lock");
            let last = changes.entry(api.clone()).or_insert(date);
            *last = (*last).max(date);
        }
        Ok(())
    }
}

/// An SDK error as a readable error with what we were doing, e.g.
/// "creating SQS queue demo-dev-events: InvalidAttributeValue: ...": AWS's code and message when
/// the service answered (not the SDK's dump of the raw response), the whole chain of causes
/// otherwise (a timeout, a refused connection). The SDK's error stays inside (`AwsError::sdk`).
pub fn sdk_error<E>(doing: impl std::fmt::Display, error: E) -> anyhow::Error
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    let summary = match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(&error).to_string(),
    };
    anyhow::Error::new(AwsError {
        doing: doing.to_string(),
        summary,
        sdk: Box::new(error),
    })
}

/// A failed AWS call: what we were doing, what AWS (or the way there) answered, and the SDK's own
/// error, which `anyhow::Error::downcast_ref::<AwsError>()` reaches.
#[derive(Debug)]
pub struct AwsError {
    doing: String,
    summary: String,
    #[cfg_attr(not(test), allow(dead_code))]
    sdk: Box<dyn std::error::Error + Send + Sync>,
}

impl AwsError {
    /// The SDK's error, as the operation's error type (`SdkError<CreateQueueError, _>`). No caller
    /// tells errors apart by type after `sdk_error` yet (they classify the SDK's error before it);
    /// this keeps it possible.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn sdk<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.sdk.downcast_ref::<E>()
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.doing, self.summary)
    }
}

/// No `source`: the summary already says what the SDK's error chain would, and `{:#}` would
/// print it twice.
impl std::error::Error for AwsError {}
