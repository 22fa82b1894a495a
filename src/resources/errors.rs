//! "This error means the thing is not there", said once per service: each SDK operation error
//! the resources read or delete with maps to its service's not-found variant here, and `found`
//! turns such an answer into `None`. It decides nothing else about errors.

use anyhow::Result;
// The same type in every service crate; any one of them names it.
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

use crate::aws::sdk_error;

/// An SDK error that can say the resource it was about does not exist.
pub trait NotFound {
    fn is_not_found(&self) -> bool;
}

impl<E: NotFound, R> NotFound for SdkError<E, R> {
    fn is_not_found(&self) -> bool {
        self.as_service_error().is_some_and(NotFound::is_not_found)
    }
}

/// `Some(answer)`, `None` when the service says there is no such thing, or the error with what we
/// were doing.
pub fn found<T, E>(result: Result<T, E>, doing: impl FnOnce() -> String) -> Result<Option<T>>
where
    E: NotFound + ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(sdk_error(doing(), e)),
    }
}

/// `true` when it was deleted now, `false` when it was already gone.
pub fn deleted<T, E>(result: Result<T, E>, doing: impl FnOnce() -> String) -> Result<bool>
where
    E: NotFound + ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    found(result, doing).map(|answer| answer.is_some())
}

/// An SDK error that can say a create call found the thing already there.
pub trait Exists {
    fn exists(&self) -> bool;
}

impl<E: Exists, R> Exists for SdkError<E, R> {
    fn exists(&self) -> bool {
        self.as_service_error().is_some_and(Exists::exists)
    }
}

/// `true` when the call created it, `false` when it was there already, or the error.
pub fn created<T, E>(result: Result<T, E>, doing: impl FnOnce() -> String) -> Result<bool>
where
    E: Exists + ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.exists() => Ok(false),
        Err(e) => Err(sdk_error(doing(), e)),
    }
}

/// `registered!(Trait::method by sdk_test: errors...)`: each listed SDK error answers `method` of
/// the registry's trait with its own `sdk_test` (its modelled not-found or already-exists variant).
/// The lists below are the shipped kinds'; a new kind may register its calls in its own file
/// (`super::errors::registered!`).
macro_rules! registered {
    ($trait:ident::$method:ident by $test:ident: $($error:ty),+ $(,)?) => {
        $(impl $trait for $error {
            fn $method(&self) -> bool {
                self.$test()
            }
        })+
    };
}
// A kind whose calls are not listed below registers them in its own file.
#[allow(unused_imports)]
pub(crate) use registered;

// One list per service, with the operations the resources call.
use aws_sdk_acm::operation as acm;
use aws_sdk_apigatewayv2::operation as apigateway;
use aws_sdk_cloudwatch::operation as cloudwatch;
use aws_sdk_cloudwatchlogs::operation as logs;
use aws_sdk_dynamodb::operation as dynamodb;
use aws_sdk_eventbridge::operation as events;
use aws_sdk_iam::operation as iam;
use aws_sdk_lambda::operation as lambda;
use aws_sdk_secretsmanager::operation as secrets;
use aws_sdk_sns::operation as sns;
use aws_sdk_sqs::operation as sqs;

registered!(NotFound::is_not_found by is_no_such_entity_exception: iam::get_role::GetRoleError,
    iam::list_role_tags::ListRoleTagsError, iam::list_role_policies::ListRolePoliciesError,
    iam::get_role_policy::GetRolePolicyError, iam::delete_role_policy::DeleteRolePolicyError,
    iam::list_attached_role_policies::ListAttachedRolePoliciesError, iam::delete_role::DeleteRoleError);
registered!(NotFound::is_not_found by is_resource_not_found_exception: dynamodb::scan::ScanError,
    dynamodb::describe_table::DescribeTableError,
    dynamodb::describe_time_to_live::DescribeTimeToLiveError, dynamodb::delete_table::DeleteTableError,
    dynamodb::list_tags_of_resource::ListTagsOfResourceError);
registered!(NotFound::is_not_found by is_queue_does_not_exist: sqs::get_queue_url::GetQueueUrlError,
    sqs::get_queue_attributes::GetQueueAttributesError, sqs::list_queue_tags::ListQueueTagsError,
    sqs::delete_queue::DeleteQueueError);
registered!(NotFound::is_not_found by is_resource_not_found_exception: events::describe_rule::DescribeRuleError,
    events::list_targets_by_rule::ListTargetsByRuleError, events::list_tags_for_resource::ListTagsForResourceError,
    events::remove_targets::RemoveTargetsError, events::delete_rule::DeleteRuleError);
registered!(NotFound::is_not_found by is_resource_not_found_exception: lambda::get_function::GetFunctionError,
    lambda::delete_function::DeleteFunctionError, lambda::get_policy::GetPolicyError,
    lambda::remove_permission::RemovePermissionError, lambda::delete_event_source_mapping::DeleteEventSourceMappingError,
    lambda::list_event_source_mappings::ListEventSourceMappingsError, lambda::list_tags::ListTagsError);
registered!(NotFound::is_not_found by is_not_found_exception: apigateway::get_stage::GetStageError,
    apigateway::get_authorizer::GetAuthorizerError,
    apigateway::delete_stage::DeleteStageError, apigateway::delete_api::DeleteApiError,
    apigateway::delete_route::DeleteRouteError, apigateway::delete_authorizer::DeleteAuthorizerError, apigateway::delete_integration::DeleteIntegrationError,
    apigateway::get_route_responses::GetRouteResponsesError, apigateway::delete_route_response::DeleteRouteResponseError,
    apigateway::delete_route_settings::DeleteRouteSettingsError,
    apigateway::delete_access_log_settings::DeleteAccessLogSettingsError);
registered!(NotFound::is_not_found by is_resource_not_found_exception: logs::delete_log_group::DeleteLogGroupError,
    logs::list_tags_for_resource::ListTagsForResourceError);

registered!(NotFound::is_not_found by is_resource_not_found_exception: secrets::describe_secret::DescribeSecretError,
    secrets::delete_secret::DeleteSecretError, secrets::get_secret_value::GetSecretValueError);
registered!(NotFound::is_not_found by is_not_found_exception: sns::get_topic_attributes::GetTopicAttributesError,
    sns::list_subscriptions_by_topic::ListSubscriptionsByTopicError, sns::unsubscribe::UnsubscribeError,
    sns::delete_topic::DeleteTopicError);
registered!(NotFound::is_not_found by is_resource_not_found_exception: sns::list_tags_for_resource::ListTagsForResourceError);
registered!(NotFound::is_not_found by is_resource_not_found_exception: cloudwatch::list_tags_for_resource::ListTagsForResourceError);
registered!(NotFound::is_not_found by is_resource_not_found: cloudwatch::delete_alarms::DeleteAlarmsError);

registered!(NotFound::is_not_found by is_not_found_exception: apigateway::get_domain_name::GetDomainNameError,
    apigateway::delete_domain_name::DeleteDomainNameError, apigateway::get_api_mappings::GetApiMappingsError,
    apigateway::delete_api_mapping::DeleteApiMappingError);
registered!(NotFound::is_not_found by is_resource_not_found_exception: acm::describe_certificate::DescribeCertificateError,
    acm::list_tags_for_certificate::ListTagsForCertificateError);

registered!(Exists::exists by is_entity_already_exists_exception: iam::create_role::CreateRoleError);
registered!(Exists::exists by is_resource_in_use_exception: dynamodb::create_table::CreateTableError);
registered!(Exists::exists by is_resource_exists_exception: secrets::create_secret::CreateSecretError);
registered!(Exists::exists by is_resource_already_exists_exception: logs::create_log_group::CreateLogGroupError);
registered!(Exists::exists by is_resource_conflict_exception: lambda::create_function::CreateFunctionError,
    lambda::create_event_source_mapping::CreateEventSourceMappingError);
registered!(Exists::exists by is_conflict_exception: apigateway::create_route::CreateRouteError,
    apigateway::create_route_response::CreateRouteResponseError);
