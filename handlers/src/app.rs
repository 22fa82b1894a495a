//! Configuration and SDK clients of a handler process, built once at init: the environment the stack
//! sets at deploy time (`WSSTACK_HANDLER`, `TABLE_NAME`, `TTL_HOURS`, `CALLBACK_URL`, optional push
//! tuning) parsed into [`Config`], and the DynamoDB and management API clients in [`App`].
//!
//! The authorizer (`WSSTACK_HANDLER=authorizer`) reads [`AuthorizerConfig`] instead: either
//! `AUTH_SECRET_ARN` (a Secrets Manager secret whose SecretString is the HS256 key, at least 32
//! bytes), or `AUTH_ISSUER` with optional `AUTH_AUDIENCE` and `AUTH_JWKS_URL` (default
//! `{issuer}/.well-known/jwks.json`); and `AUTH_USER_CLAIM` (default `sub`), `AUTH_ENTITIES_CLAIM`
//! (default `entities`).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_apigatewaymanagement::config::StalledStreamProtectionConfig;
use aws_smithy_async::rt::sleep::{SharedAsyncSleep, TokioSleep};
use aws_smithy_async::time::{SharedTimeSource, SystemTimeSource};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::origin::Origin;
use aws_types::region::Region;
use aws_types::SdkConfig;

use crate::auth::ClaimNames;
use crate::frames::DetailTypes;
use crate::records::DEFAULT_TTL_HOURS;

/// Which of the functions this process serves (four routes and push, plus the authorizer on a
/// stack with `auth:`); from `WSSTACK_HANDLER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerKind {
    Connect,
    Disconnect,
    Subscribe,
    Unsubscribe,
    Push,
    Authorizer,
}

impl FromStr for HandlerKind {
    type Err = anyhow::Error;

    fn from_str(value: &str) -> Result<Self> {
        Ok(match value {
            "connect" => HandlerKind::Connect,
            "disconnect" => HandlerKind::Disconnect,
            "subscribe" => HandlerKind::Subscribe,
            "unsubscribe" => HandlerKind::Unsubscribe,
            "push" => HandlerKind::Push,
            "authorizer" => HandlerKind::Authorizer,
            other => bail!(
                "unknown handler {other:?}: expected connect, disconnect, subscribe, unsubscribe, push or authorizer"
            ),
        })
    }
}

/// How the push handler fans out, and which events it serves.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// Posts in flight at once per invocation, whatever the number of records in the batch.
    pub concurrency: usize,
    /// Attempts per connection for 5xx, timeouts and network errors, first included. Throttled
    /// posts (429) are retried until the invocation's deadline nears instead.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubled for each further one, with jitter.
    pub base_backoff: Duration,
    /// `ENTITY_DETAIL_TYPE` and `USER_DETAIL_TYPE`: the stack file's names of the two kinds of event.
    pub detail_types: DetailTypes,
    /// Above this many subscribers an event is split into chunks of at most this many, sent back
    /// to the queue for several invocations (`PUSH_CHUNK_SIZE`); `None`: one invocation posts all.
    pub chunk_size: Option<usize>,
    /// This invocation's share of the stack's post budget (`PUSH_POSTS_PER_SECOND`); `None`: no limit.
    pub posts_per_second: Option<f64>,
    /// How long one post may take, connecting included, before it counts as a timeout (retryable).
    /// API Gateway may already have delivered a post that timed out, so the retry is a duplicate:
    /// tests that count duplicates on a starved machine set more than the 5 s default.
    pub post_timeout: Duration,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            concurrency: 64,
            max_attempts: 3,
            base_backoff: Duration::from_millis(100),
            detail_types: DetailTypes::default(),
            chunk_size: None,
            posts_per_second: None,
            post_timeout: Duration::from_secs(5),
        }
    }
}

/// Everything a handler reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub ttl_hours: u32,
    /// Management API endpoint including the stage, e.g.
    /// `https://{api}.execute-api.{region}.amazonaws.com/{stage}`.
    pub callback_url: String,
    pub push: PushSettings,
    /// `Limit` of each query page (subscribers, a connection's records); `None` lets DynamoDB fill
    /// 1 MB pages. Tests set it to prove paging.
    pub query_page_limit: Option<i32>,
}

impl Config {
    /// Reads `TABLE_NAME`, `CALLBACK_URL`, `TTL_HOURS` (default 24) and the optional push tuning
    /// `PUSH_CONCURRENCY`, `PUSH_MAX_ATTEMPTS`, `PUSH_CHUNK_SIZE`, `PUSH_POSTS_PER_SECOND`, and the
    /// push handler's `ENTITY_DETAIL_TYPE`, `USER_DETAIL_TYPE` (defaults `Entity Updated`, `Send User
    /// Push Notification`).
    pub fn from_env() -> Result<Config> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Config::from_env`] over any variable lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let required = |name: &str| {
            lookup(name)
                .filter(|value| !value.is_empty())
                .ok_or_else(|| anyhow!("environment variable {name} is not set"))
        };
        let optional = |name: &str| lookup(name).filter(|value| !value.is_empty());
        fn parsed<T: FromStr>(name: &str, value: Option<String>, default: T) -> Result<T>
        where
            T::Err: std::fmt::Display,
        {
            match value {
                None => Ok(default),
                Some(value) => value
                    .parse()
                    .map_err(|error| anyhow!("environment variable {name}={value:?}: {error}")),
            }
        }
        let defaults = PushSettings::default();
        let push = PushSettings {
            concurrency: parsed("PUSH_CONCURRENCY", lookup("PUSH_CONCURRENCY"), defaults.concurrency)?.max(1),
            max_attempts: parsed("PUSH_MAX_ATTEMPTS", lookup("PUSH_MAX_ATTEMPTS"), defaults.max_attempts)?.max(1),
            detail_types: DetailTypes {
                entity: optional("ENTITY_DETAIL_TYPE").unwrap_or(defaults.detail_types.entity.clone()),
                user: optional("USER_DETAIL_TYPE").unwrap_or(defaults.detail_types.user.clone()),
            },
            // Unset or 0: off.
            chunk_size: Some(parsed("PUSH_CHUNK_SIZE", lookup("PUSH_CHUNK_SIZE"), 0_usize)?).filter(|size| *size > 0),
            posts_per_second: Some(parsed("PUSH_POSTS_PER_SECOND", lookup("PUSH_POSTS_PER_SECOND"), 0_f64)?)
                .filter(|rate| rate.is_finite() && *rate > 0.0),
            ..defaults
        };
        Ok(Config {
            table_name: required("TABLE_NAME")?,
            ttl_hours: parsed("TTL_HOURS", lookup("TTL_HOURS"), DEFAULT_TTL_HOURS)?,
            callback_url: required("CALLBACK_URL")?,
            push,
            query_page_limit: None,
        })
    }
}

/// The clients and settings every handler uses; built once per process.
#[derive(Debug, Clone)]
pub struct App {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub management: aws_sdk_apigatewaymanagement::Client,
    /// The push function's own queue, for chunks (see `chunks`).
    pub sqs: aws_sdk_sqs::Client,
    /// Queue URLs by ARN, each asked once per process.
    pub queue_urls: Arc<Mutex<HashMap<String, String>>>,
    pub config: Config,
}

impl App {
    /// Takes the AWS configuration from Lambda's environment ([`sdk_config_from_env`]) and builds
    /// the clients.
    pub fn from_env(config: Config) -> Result<App> {
        Ok(App::new(&sdk_config_from_env()?, config))
    }

    /// Builds the clients from an explicit SDK configuration. The management client always talks to
    /// `config.callback_url`, whatever endpoint the SDK configuration names (that one is DynamoDB's).
    pub fn new(sdk: &SdkConfig, config: Config) -> App {
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        // The push handler retries posts itself (it must tell 410 from 5xx and count attempts per
        // connection), so the SDK's own retries are off for this client. One timeout bounds a hung
        // post, whole: the SDK's stalled-stream protection is off, since its own 5 s grace would
        // otherwise cut a post (a body of at most 128 KB, an empty answer) before `post_timeout`.
        let post_timeout = config.push.post_timeout;
        let management_config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(config.callback_url.trim_end_matches('/'))
            .retry_config(RetryConfig::disabled())
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(post_timeout.min(Duration::from_secs(2)))
                    .operation_attempt_timeout(post_timeout)
                    .build(),
            )
            .build();
        let management = aws_sdk_apigatewaymanagement::Client::from_conf(management_config);
        App {
            dynamodb,
            management,
            sqs: aws_sdk_sqs::Client::new(sdk),
            queue_urls: Arc::default(),
            config,
        }
    }

    pub fn table(&self) -> &str {
        &self.config.table_name
    }
}

/// The HTTP client of every SDK client: HTTPS through rustls with ring, the handlers' only TLS
/// stack. Root certificates are read on the first HTTPS request, not at init (see [`LazyRoots`]).
pub fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_sdk_dynamodb::config::SharedHttpClient::new(LazyRoots(https))
}

/// The SDK's HTTPS client, minus its start-up check. aws-smithy-http-client builds a connector
/// in `validate_base_client_config`, when each SDK client is built, "so that native certs load at
/// client initialization time": reading and parsing the system's root certificates (a bundle and
/// a directory of some 140 files here; read once, parsed for each of the three clients) took about
/// 4 ms of the bootstrap's 6 ms from process start to the first runtime API request, before Lambda
/// could hand over the first event. Without the check the connector, and the roots with it, are made on a client's
/// first request, once per process (the SDK caches both); the runtime API itself is plain HTTP.
#[derive(Debug)]
struct LazyRoots(aws_sdk_dynamodb::config::SharedHttpClient);

impl HttpClient for LazyRoots {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The SDK configuration of a handler process, from the variables Lambda sets (see
/// [`sdk_config_from_lookup`]).
pub fn sdk_config_from_env() -> Result<SdkConfig> {
    sdk_config_from_lookup(|name| std::env::var(name).ok())
}

/// The SDK configuration from the environment Lambda gives a function, built by hand instead of
/// with `aws-config`: its default chain links STS, profile-file parsing and the IMDS and ECS
/// credential clients, which a function never uses (538,560 bytes of the x86_64 binary, 223,564 of
/// its zip), and looks for profile files at init.
///
/// Lambda sets `AWS_REGION` and puts the execution role's temporary credentials in
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` (reserved variables, set
/// for every runtime, custom runtimes on `provided.al2023` included: the Lambda developer guide's
/// "Defined runtime environment variables"). A process's environment does not change, so a static
/// provider is what `aws-config`'s environment-variable provider amounts to there.
/// Only SnapStart (Java 11+, Python 3.12+, .NET 8+ managed runtimes, not the OS-only ones) serves
/// credentials through `AWS_CONTAINER_CREDENTIALS_FULL_URI` instead; a function built on this
/// binary never runs with SnapStart, and the error below names that variable if it is ever set
/// without the keys.
///
/// Also read: `AWS_DEFAULT_REGION` when `AWS_REGION` is unset (`wsstack dev` sets both), and
/// `AWS_ENDPOINT_URL`, every client's endpoint (the tests' and `wsstack dev`'s emulator). The rest
/// is what `aws-config` would choose with no profile or variables: the latest behavior version,
/// the standard retry mode (3 attempts), its 3.1 s connect timeout, tokio's sleep, the system
/// clock, and [`http_client`]. `AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE`, profiles and service-specific
/// endpoint variables are not read.
pub fn sdk_config_from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<SdkConfig> {
    let set = |name: &str| lookup(name).filter(|value| !value.is_empty());
    let region = set("AWS_REGION")
        .or_else(|| set("AWS_DEFAULT_REGION"))
        .ok_or_else(|| anyhow!("environment variable AWS_REGION (or AWS_DEFAULT_REGION) is not set"))?;
    let key = |name: &str| {
        set(name).ok_or_else(|| match set("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            Some(_) => anyhow!(
                "environment variable {name} is not set, and AWS_CONTAINER_CREDENTIALS_FULL_URI (container \
                 credentials) is not supported: the handlers take the execution role's keys from the environment"
            ),
            None => anyhow!("environment variable {name} is not set (Lambda sets it from the execution role)"),
        })
    };
    let credentials = Credentials::new(
        key("AWS_ACCESS_KEY_ID")?,
        key("AWS_SECRET_ACCESS_KEY")?,
        set("AWS_SESSION_TOKEN"),
        None,
        "Environment",
    );
    let mut sdk = SdkConfig::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .retry_config(RetryConfig::standard())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(3100))
                .build(),
        )
        .sleep_impl(SharedAsyncSleep::new(TokioSleep::new()))
        .time_source(SharedTimeSource::new(SystemTimeSource::new()))
        .http_client(http_client());
    if let Some(endpoint) = set("AWS_ENDPOINT_URL") {
        // As aws-config records it: from the environment, not set in code, which a service's own
        // endpoint setting would override.
        sdk.set_endpoint_url(Some(endpoint));
        sdk.insert_origin("endpoint_url", Origin::shared_environment_variable());
    }
    Ok(sdk.build())
}

/// Which tokens the authorizer trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustConfig {
    /// HS256 with the stack's secret, read from Secrets Manager at init.
    Secret { secret_arn: String },
    /// RS256/ES256 from an OpenID issuer.
    Issuer {
        issuer: String,
        audience: Option<String>,
        jwks_url: String,
    },
}

/// Everything the authorizer reads from its environment (see the module doc for the names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerConfig {
    pub trust: TrustConfig,
    pub claims: ClaimNames,
}

impl AuthorizerConfig {
    pub fn from_env() -> Result<AuthorizerConfig> {
        AuthorizerConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`AuthorizerConfig::from_env`] over any variable lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<AuthorizerConfig> {
        let set = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let trust = match (set("AUTH_SECRET_ARN"), set("AUTH_ISSUER")) {
            (Some(secret_arn), None) => TrustConfig::Secret { secret_arn },
            (None, Some(issuer)) => {
                let jwks_url = set("AUTH_JWKS_URL")
                    .unwrap_or_else(|| format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')));
                TrustConfig::Issuer {
                    issuer,
                    audience: set("AUTH_AUDIENCE"),
                    jwks_url,
                }
            }
            (Some(_), Some(_)) => bail!("set AUTH_SECRET_ARN or AUTH_ISSUER, not both"),
            (None, None) => bail!("the authorizer needs AUTH_SECRET_ARN (stack secret) or AUTH_ISSUER (OpenID issuer)"),
        };
        let defaults = ClaimNames::default();
        Ok(AuthorizerConfig {
            trust,
            claims: ClaimNames {
                user: set("AUTH_USER_CLAIM").unwrap_or(defaults.user),
                entities: set("AUTH_ENTITIES_CLAIM").unwrap_or(defaults.entities),
            },
        })
    }
}

/// Parses `WSSTACK_HANDLER`.
pub fn handler_kind_from_env() -> Result<HandlerKind> {
    let value = std::env::var("WSSTACK_HANDLER").context("environment variable WSSTACK_HANDLER is not set")?;
    value.parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(variables: &[(&str, &str)]) -> Result<Config> {
        Config::from_lookup(lookup(variables))
    }

    /// A variable lookup over `variables`, as the `from_lookup` functions take it.
    fn lookup(variables: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let variables: HashMap<String, String> = variables
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        move |name| variables.get(name).cloned()
    }

    #[test]
    fn defaults_apply_when_only_the_required_variables_are_set() {
        let config = config(&[("TABLE_NAME", "t"), ("CALLBACK_URL", "http://127.0.0.1:1/dev")]).unwrap();
        assert_eq!(config.table_name, "t");
        assert_eq!(config.ttl_hours, 24);
        assert_eq!(config.push.concurrency, 64);
        assert_eq!(config.push.max_attempts, 3);
        assert_eq!(config.push.chunk_size, None);
        assert_eq!(config.push.posts_per_second, None);
        assert_eq!(config.query_page_limit, None);
        assert_eq!(config.push.detail_types.entity, "Entity Updated");
        assert_eq!(config.push.detail_types.user, "Send User Push Notification");
    }

    #[test]
    fn chunking_and_the_post_budget_come_from_the_environment() {
        let config = config(&[
            ("TABLE_NAME", "t"),
            ("CALLBACK_URL", "http://x/dev"),
            ("PUSH_CHUNK_SIZE", "1000"),
            ("PUSH_POSTS_PER_SECOND", "400"),
        ])
        .unwrap();
        assert_eq!(config.push.chunk_size, Some(1000));
        assert_eq!(config.push.posts_per_second, Some(400.0));
        let error = self::config(&[
            ("TABLE_NAME", "t"),
            ("CALLBACK_URL", "http://x/dev"),
            ("PUSH_CHUNK_SIZE", "many"),
        ])
        .unwrap_err();
        assert!(error.to_string().contains("PUSH_CHUNK_SIZE=\"many\""), "{error}");
    }

    #[test]
    fn missing_or_malformed_variables_are_named() {
        let error = config(&[("CALLBACK_URL", "http://x/dev")]).unwrap_err();
        assert!(error.to_string().contains("TABLE_NAME"), "{error}");
        let error = config(&[("TABLE_NAME", "t")]).unwrap_err();
        assert!(error.to_string().contains("CALLBACK_URL"), "{error}");
        let error = config(&[
            ("TABLE_NAME", "t"),
            ("CALLBACK_URL", "http://x/dev"),
            ("TTL_HOURS", "a day"),
        ])
        .unwrap_err();
        assert!(error.to_string().contains("TTL_HOURS=\"a day\""), "{error}");
    }

    #[test]
    fn handler_names_parse() {
        assert_eq!("push".parse::<HandlerKind>().unwrap(), HandlerKind::Push);
        assert_eq!("connect".parse::<HandlerKind>().unwrap(), HandlerKind::Connect);
        assert!("Push".parse::<HandlerKind>().is_err());
        assert_eq!("authorizer".parse::<HandlerKind>().unwrap(), HandlerKind::Authorizer);
    }

    fn sdk_config(variables: &[(&str, &str)]) -> Result<SdkConfig> {
        sdk_config_from_lookup(lookup(variables))
    }

    const KEYS: [(&str, &str); 2] = [
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
    ];

    #[test]
    fn the_sdk_configuration_comes_from_lambdas_environment() {
        let sdk = sdk_config(&[
            KEYS[0],
            KEYS[1],
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ])
        .unwrap();
        assert_eq!(sdk.region().map(|region| region.as_ref()), Some("eu-west-1"));
        assert_eq!(sdk.endpoint_url(), None);
        assert!(sdk.credentials_provider().is_some());
        assert_eq!(sdk.retry_config(), Some(&RetryConfig::standard()));
        assert!(sdk.sleep_impl().is_some() && sdk.http_client().is_some());

        let sdk = sdk_config(&[
            KEYS[0],
            KEYS[1],
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ])
        .unwrap();
        assert_eq!(sdk.region().map(|region| region.as_ref()), Some("us-east-1"));
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn missing_credentials_or_region_are_named() {
        let error = sdk_config(&[KEYS[0], KEYS[1]]).unwrap_err();
        assert!(error.to_string().contains("AWS_REGION"), "{error}");
        let error = sdk_config(&[KEYS[0], ("AWS_REGION", "us-east-1")]).unwrap_err();
        assert!(error.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{error}");
        let error = sdk_config(&[
            ("AWS_REGION", "us-east-1"),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:9001/credentials",
            ),
        ])
        .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("AWS_ACCESS_KEY_ID") && message.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
            "{message}"
        );
    }

    fn authorizer_config(variables: &[(&str, &str)]) -> Result<AuthorizerConfig> {
        AuthorizerConfig::from_lookup(lookup(variables))
    }

    #[test]
    fn the_authorizer_trusts_a_secret_or_an_issuer_never_both() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wsstack-dev-auth-AbCdEf";
        let config = authorizer_config(&[("AUTH_SECRET_ARN", arn)]).unwrap();
        assert_eq!(config.trust, TrustConfig::Secret { secret_arn: arn.into() });
        assert_eq!(config.claims, ClaimNames::default());

        let config = authorizer_config(&[
            ("AUTH_ISSUER", "https://issuer.example.com/pool/"),
            ("AUTH_AUDIENCE", "client-1"),
            ("AUTH_USER_CLAIM", "username"),
        ])
        .unwrap();
        assert_eq!(
            config.trust,
            TrustConfig::Issuer {
                issuer: "https://issuer.example.com/pool/".into(),
                audience: Some("client-1".into()),
                jwks_url: "https://issuer.example.com/pool/.well-known/jwks.json".into(),
            }
        );
        assert_eq!(config.claims.user, "username");
        assert_eq!(config.claims.entities, "entities");

        let error = authorizer_config(&[("AUTH_SECRET_ARN", arn), ("AUTH_ISSUER", "https://i")]).unwrap_err();
        assert!(error.to_string().contains("not both"), "{error}");
        let error = authorizer_config(&[]).unwrap_err();
        assert!(error.to_string().contains("AUTH_SECRET_ARN"), "{error}");
    }
}
