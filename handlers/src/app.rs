//! The clients and settings every handler uses, built once per process: the DynamoDB, SQS and
//! management API clients in [`App`], from the SDK configuration (`sdk`) and the handler's
//! [`Config`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use aws_sdk_apigatewaymanagement::config::StalledStreamProtectionConfig;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::SdkConfig;

use crate::config::Config;
use crate::sdk::sdk_config_from_env;

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
