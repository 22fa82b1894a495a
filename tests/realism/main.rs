//! Realism mode of the test proxy: each AWS behaviour the emulator hides, shown with raw SDK calls
//! through the proxy against moto (AWS's typed error and message at once, success once the window
//! has passed), and the whole `wsstack` lifecycle with every behaviour on.
//!
//! The raw-call tests open long windows and end them with `Proxy::pass_time`: what they assert
//! inside a window and after it does not depend on how fast this machine makes the calls.

mod api_gateway;
#[path = "../common/mod.rs"]
mod common;
mod lambda;
mod lifecycle;
mod services;
mod through_wsstack;

use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_lambda::client::Waiters;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use common::{counts, leftovers, stack_text, Env, ACCOUNT, REGION, STACK_RESOURCES};
use testkit::{Behaviour, Realism};

/// SDK configuration that goes through the proxy (the harness's own clients talk to moto).
async fn through_proxy(env: &Env) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(env.proxy.endpoint())
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await
}

/// The `dev` stage of API `api` as a client sees it through the proxy.
async fn dev_stage_seen(env: &Env, api: &str) -> aws_sdk_apigatewayv2::operation::get_stage::GetStageOutput {
    let gateway = aws_sdk_apigatewayv2::Client::new(&through_proxy(env).await);
    gateway.get_stage().api_id(api).stage_name("dev").send().await.unwrap()
}

/// The proxy answered at least one call with `behaviour`.
fn assert_showed(env: &Env, behaviour: Behaviour) {
    let counts = env.proxy.realism_counts();
    assert!(
        counts.conflicts_of(behaviour) >= 1,
        "the behaviour never showed: {counts}"
    );
}

/// An emulator whose proxy shows `realism`, and the SDK configuration that goes through the proxy:
/// where each raw-call test starts.
async fn proxied(realism: Realism) -> (Env, SdkConfig) {
    let env = Env::start().await;
    env.proxy.set_realism(realism);
    let aws = through_proxy(&env).await;
    (env, aws)
}

/// The raw-call tests' windows: longer than any stretch of their calls could take on a loaded
/// machine, and ended by `Proxy::pass_time`, never waited out.
const RAW_WINDOW: Duration = Duration::from_secs(300);

/// A WebSocket API named `name`, made through `gateway`; its id.
async fn websocket_api(gateway: &aws_sdk_apigatewayv2::Client, name: &str) -> String {
    let api = gateway
        .create_api()
        .name(name)
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Websocket)
        .route_selection_expression("$request.body.action")
        .send()
        .await
        .unwrap();
    api.api_id().unwrap().to_string()
}

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:ReceiveMessage","Resource":"*"}]}"#;

/// An empty zip archive: the emulator stores the code without running it.
fn empty_zip() -> Blob {
    let mut zip = vec![0x50, 0x4b, 0x05, 0x06];
    zip.extend([0u8; 18]);
    Blob::new(zip)
}

async fn create_role(iam: &aws_sdk_iam::Client, name: &str) -> String {
    let role = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .expect("CreateRole");
    role.role().unwrap().arn().to_string()
}

fn create_function(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    role: &str,
) -> aws_sdk_lambda::operation::create_function::builders::CreateFunctionFluentBuilder {
    lambda
        .create_function()
        .function_name(name)
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role)
        .code(FunctionCode::builder().zip_file(empty_zip()).build())
}
