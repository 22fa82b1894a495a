//! The SDK configuration and HTTP client of a handler process, built once at init from the
//! environment Lambda gives a function.

use std::time::Duration;

use anyhow::{anyhow, Result};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::lookup;

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
}
