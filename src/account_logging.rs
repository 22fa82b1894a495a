//! API Gateway's account-level CloudWatch Logs role: a WebSocket stage writes access logs only
//! when the account (per region) names a role API Gateway assumes to write them (API Gateway v1
//! GetAccount `cloudwatchRoleArn`); without one, CreateStage/UpdateStage with access logs answer
//! "BadRequestException: CloudWatch Logs role ARN must be set in account settings to enable
//! logging". It is an account setting, not the stack's: it is read, explained, and changed only
//! when the user asks (`up --set-account-logging-role`), and `down` never touches it.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use aws_config::SdkConfig;
use aws_sdk_apigateway::operation::update_account::UpdateAccountError;
use aws_sdk_apigateway::types::{Op, PatchOperation};

use crate::aws::{sdk_error, Aws};
use crate::render::{bad_input, Failure};
use crate::retry::{eventually, Patience};

/// The role `--set-account-logging-role` makes: one per account (IAM is global), shared by every
/// region's setting and by every stack, so it is named for its purpose, not for a stack.
pub const ROLE_NAME: &str = "wsstack-apigateway-cloudwatch-logs";

/// AWS's managed policy for exactly this role (logs:CreateLogGroup, CreateLogStream,
/// DescribeLogGroups, DescribeLogStreams, PutLogEvents, GetLogEvents, FilterLogEvents).
const MANAGED_POLICY: &str = "iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs";

/// UpdateAccount refuses a role API Gateway cannot assume yet (a role just made): IAM propagates
/// in seconds, rarely a minute.
const ROLE_USABLE: Patience = Patience {
    first_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(8),
    deadline: Duration::from_secs(90),
};

fn client(config: &SdkConfig) -> aws_sdk_apigateway::Client {
    aws_sdk_apigateway::Client::new(config)
}

/// The account's role in this region, if one is set.
pub async fn role_arn(config: &SdkConfig, region: &str) -> Result<Option<String>> {
    let account = client(config).get_account().send().await.map_err(|e| {
        sdk_error(
            format!("reading API Gateway's account settings in {region} (apigateway:GET /account)"),
            e,
        )
    })?;
    Ok(account
        .cloudwatch_role_arn()
        .filter(|arn| !arn.is_empty())
        .map(str::to_string))
}

/// What is missing and the two ways out, for `up`'s error and `plan`'s line.
pub fn missing(region: &str) -> String {
    format!(
        "access logs need API Gateway's CloudWatch Logs role, an account setting of {region} that is not set: \
         run `wsstack up --set-account-logging-role` to create the role {ROLE_NAME} (trusted by \
         apigateway.amazonaws.com, with the managed policy AmazonAPIGatewayPushToCloudWatchLogs) and name it in \
         the account's API Gateway settings, or set one yourself (API Gateway console, Settings), or turn \
         access logs off with `access_logs: false`"
    )
}

/// Create (or find) the role and name it in the account's API Gateway settings for this region.
/// Returns the role's ARN.
pub async fn set_up(config: &SdkConfig, aws: &Aws) -> Result<String> {
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    });
    let created = aws
        .iam
        .create_role()
        .role_name(ROLE_NAME)
        .description("API Gateway writes access and execution logs to CloudWatch Logs (made by wsstack)")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await;
    let role_arn = match created {
        Ok(output) => output.role().map(|r| r.arn().to_string()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_entity_already_exists_exception()) =>
        {
            let role = aws.iam.get_role().role_name(ROLE_NAME).send().await;
            let role = role.map_err(|e| sdk_error(format!("reading role {ROLE_NAME}"), e))?;
            role.role().map(|r| r.arn().to_string())
        }
        Err(e) => return Err(sdk_error(format!("creating role {ROLE_NAME}"), e)),
    }
    .with_context(|| format!("IAM answered no ARN for role {ROLE_NAME}"))?;
    // Attaching an attached policy is a no-op.
    let policy = format!("arn:{}:{MANAGED_POLICY}", aws.arns.partition);
    aws.iam
        .attach_role_policy()
        .role_name(ROLE_NAME)
        .policy_arn(&policy)
        .send()
        .await
        .map_err(|e| sdk_error(format!("attaching {policy} to role {ROLE_NAME}"), e))?;
    let patch = PatchOperation::builder()
        .op(Op::Replace)
        .path("/cloudwatchRoleArn")
        .value(&role_arn)
        .build();
    let apigateway = client(config);
    eventually(
        ROLE_USABLE,
        // A role just made: "The role ARN does not have required permissions set to API Gateway".
        |e: &aws_sdk_apigateway::error::SdkError<UpdateAccountError, _>| {
            e.as_service_error().is_some_and(|e| e.is_bad_request_exception())
        },
        || apigateway.update_account().patch_operations(patch.clone()).send(),
    )
    .await
    .map_err(|e| {
        sdk_error(
            format!(
                "naming role {role_arn} in API Gateway's account settings of {} (UpdateAccount)",
                aws.region
            ),
            e,
        )
    })?;
    Ok(role_arn)
}

/// Before `up` writes anything: a stack with access logs needs the role. Present: nothing to do.
/// Absent: set up when `set_up_by` names who asked (said so on stderr), else refused with the
/// explanation; a missing role is bad input (exit 2): nothing was attempted.
pub async fn prepare(config: &SdkConfig, aws: &Aws, set_up_by: Option<&str>) -> Result<(), Failure> {
    if role_arn(config, &aws.region).await?.is_some() {
        return Ok(());
    }
    let Some(asked_by) = set_up_by else {
        return Err(bad_input(anyhow!(missing(&aws.region))));
    };
    let arn = set_up(config, aws).await?;
    eprintln!(
        "API Gateway's CloudWatch Logs role of account {} in {} is now {arn} ({asked_by})",
        aws.account, aws.region
    );
    Ok(())
}
