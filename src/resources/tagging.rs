//! Tags, written once per service: where a resource's tags live (`TagsAt`, which a tagged kind
//! answers from `Lifecycle::tags_in_aws`), the TagResource and UntagResource calls of each service, and
//! the conversions to each SDK's own tag type. The lifecycle compares tags and calls `retag` with
//! what differs; a kind only says where its tags are.

use std::collections::HashMap;

use anyhow::Result;

use super::{tag_changes, Tags};
use crate::aws::{sdk_error, Aws};

/// Where a resource's tags are, by service: its ARN (or what the service names it by).
#[derive(Debug, Clone, PartialEq)]
pub enum TagsAt {
    /// An API or a custom domain name, by ARN.
    ApiGateway(String),
    Acm(String),
    CloudWatch(String),
    DynamoDb(String),
    EventBridge(String),
    /// A role, by name.
    IamRole(String),
    Lambda(String),
    Logs(String),
    /// A secret, by name or ARN.
    Secret(String),
    Sns(String),
    /// A queue, by URL.
    Sqs(String),
}

/// Bring the tags at `at` from `current` to `desired`: set what is missing or different, remove
/// what is not wanted. `what` names the resource in errors ("DynamoDB table demo-dev-connections").
pub async fn retag(aws: &Aws, at: &TagsAt, current: &Tags, desired: &Tags, what: &str) -> Result<()> {
    let (set, remove) = tag_changes(current, desired);
    if !set.is_empty() {
        tag(aws, at, &set, &format!("tagging {what}")).await?;
    }
    if !remove.is_empty() {
        untag(aws, at, remove, &format!("untagging {what}")).await?;
    }
    Ok(())
}

fn map(tags: &Tags) -> HashMap<String, String> {
    tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

async fn tag(aws: &Aws, at: &TagsAt, set: &Tags, doing: &str) -> Result<()> {
    match at {
        TagsAt::ApiGateway(arn) => {
            let call = aws.apigateway.tag_resource().resource_arn(arn).set_tags(Some(map(set)));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::Acm(arn) => {
            let call = aws.acm.add_tags_to_certificate().certificate_arn(arn);
            let call = call.set_tags(Some(acm(set)?));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::CloudWatch(arn) => {
            let call = aws
                .cloudwatch
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(cloudwatch(set)));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::DynamoDb(arn) => {
            let call = aws
                .dynamodb
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(dynamodb(set)?));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::EventBridge(arn) => {
            let call = aws
                .events
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(eventbridge(set)?));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::IamRole(name) => {
            let call = aws.iam.tag_role().role_name(name).set_tags(Some(iam(set)?));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::Lambda(arn) => {
            let call = aws.lambda.tag_resource().resource(arn).set_tags(Some(map(set)));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::Logs(arn) => {
            let call = aws.logs.tag_resource().resource_arn(arn).set_tags(Some(map(set)));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::Secret(id) => {
            let call = aws.secrets.tag_resource().secret_id(id).set_tags(Some(secrets(set)));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::Sns(arn) => {
            let call = aws.sns.tag_resource().resource_arn(arn).set_tags(Some(sns(set)?));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::Sqs(url) => {
            let call = aws.sqs.tag_queue().queue_url(url).set_tags(Some(map(set)));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
    }
    Ok(())
}

async fn untag(aws: &Aws, at: &TagsAt, keys: Vec<String>, doing: &str) -> Result<()> {
    match at {
        TagsAt::ApiGateway(arn) => {
            let call = aws
                .apigateway
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(keys));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::Acm(arn) => {
            let tags = (keys.into_iter())
                .map(|k| aws_sdk_acm::types::Tag::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()?;
            let call = aws.acm.remove_tags_from_certificate().certificate_arn(arn);
            let call = call.set_tags(Some(tags));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::CloudWatch(arn) => {
            let call = aws
                .cloudwatch
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(keys));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::DynamoDb(arn) => {
            let call = aws.dynamodb.untag_resource().resource_arn(arn).set_tag_keys(Some(keys));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::EventBridge(arn) => {
            let call = aws.events.untag_resource().resource_arn(arn).set_tag_keys(Some(keys));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::IamRole(name) => {
            let call = aws.iam.untag_role().role_name(name).set_tag_keys(Some(keys));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::Lambda(arn) => {
            let call = aws.lambda.untag_resource().resource(arn).set_tag_keys(Some(keys));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::Logs(arn) => {
            let call = aws.logs.untag_resource().resource_arn(arn).set_tag_keys(Some(keys));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::Secret(id) => {
            let call = aws.secrets.untag_resource().secret_id(id).set_tag_keys(Some(keys));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::Sns(arn) => {
            let call = aws.sns.untag_resource().resource_arn(arn).set_tag_keys(Some(keys));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
        TagsAt::Sqs(url) => {
            let call = aws.sqs.untag_queue().queue_url(url).set_tag_keys(Some(keys));
            call.send().await.map_err(|e| sdk_error(doing, e))?;
        }
    }
    Ok(())
}

/// The tags as ACM takes them.
pub fn acm(tags: &Tags) -> Result<Vec<aws_sdk_acm::types::Tag>> {
    let tags = tags
        .iter()
        .map(|(k, v)| aws_sdk_acm::types::Tag::builder().key(k).value(v).build());
    Ok(tags.collect::<Result<_, _>>()?)
}

/// The tags as CloudWatch takes them.
pub fn cloudwatch(tags: &Tags) -> Vec<aws_sdk_cloudwatch::types::Tag> {
    let tags = tags
        .iter()
        .map(|(k, v)| aws_sdk_cloudwatch::types::Tag::builder().key(k).value(v).build());
    tags.collect()
}

/// The tags as DynamoDB takes them.
pub fn dynamodb(tags: &Tags) -> Result<Vec<aws_sdk_dynamodb::types::Tag>> {
    let tags = tags
        .iter()
        .map(|(k, v)| aws_sdk_dynamodb::types::Tag::builder().key(k).value(v).build());
    Ok(tags.collect::<Result<_, _>>()?)
}

/// The tags as EventBridge takes them.
pub fn eventbridge(tags: &Tags) -> Result<Vec<aws_sdk_eventbridge::types::Tag>> {
    let tags = tags
        .iter()
        .map(|(k, v)| aws_sdk_eventbridge::types::Tag::builder().key(k).value(v).build());
    Ok(tags.collect::<Result<_, _>>()?)
}

/// The tags as IAM takes them.
pub fn iam(tags: &Tags) -> Result<Vec<aws_sdk_iam::types::Tag>> {
    let tags = tags
        .iter()
        .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build());
    Ok(tags.collect::<Result<_, _>>()?)
}

/// The tags as Secrets Manager takes them.
pub fn secrets(tags: &Tags) -> Vec<aws_sdk_secretsmanager::types::Tag> {
    let tags = tags
        .iter()
        .map(|(k, v)| aws_sdk_secretsmanager::types::Tag::builder().key(k).value(v).build());
    tags.collect()
}

/// The tags as SNS takes them.
pub fn sns(tags: &Tags) -> Result<Vec<aws_sdk_sns::types::Tag>> {
    let tags = tags
        .iter()
        .map(|(k, v)| aws_sdk_sns::types::Tag::builder().key(k).value(v).build());
    Ok(tags.collect::<Result<_, _>>()?)
}
