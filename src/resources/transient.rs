//! The eventual-consistency errors `up` and `down` wait out, each named once, beside the NotFound
//! registry (`errors`): what a service answers while something it has just done has not
//! propagated. Each is retried with its `retry::Patience`; the same call succeeds later. They are
//! told apart by code and message because the services model none of them as an error of its own.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// SQS: a RedrivePolicy naming a dead-letter queue made a moment ago ("Dead letter target does
/// not exist").
pub fn dead_letter_target_lag<E: ProvideErrorMetadata>(error: &E) -> bool {
    error
        .message()
        .is_some_and(|m| m.contains("Dead letter target does not exist"))
}

/// Lambda: CreateFunction or UpdateFunctionConfiguration with a role IAM has not propagated yet.
pub fn role_not_assumable_yet<E: ProvideErrorMetadata>(error: &E) -> bool {
    error
        .message()
        .is_some_and(|m| m.contains("cannot be assumed by Lambda") || m.contains("role defined for the function"))
}

/// Lambda: CreateEventSourceMapping before the SQS permissions of the function's role propagated.
pub fn role_permissions_lag<E: ProvideErrorMetadata>(error: &E) -> bool {
    error.code() == Some("InvalidParameterValueException")
        && error
            .message()
            .is_some_and(|m| m.contains("execution role does not have permissions"))
}

/// Secrets Manager: CreateSecret of a name whose secret, deleted without a recovery window, is
/// still being purged ("already scheduled for deletion").
pub fn secret_purge_lag<E: ProvideErrorMetadata>(error: &E) -> bool {
    error.code() == Some("InvalidRequestException")
        && error.message().is_some_and(|m| m.contains("scheduled for deletion"))
}

/// API Gateway: DeleteAuthorizer while the route that just let go of it still counts as a use
/// ("is referenced in route").
pub fn authorizer_release_lag<E: ProvideErrorMetadata>(error: &E) -> bool {
    error.code() == Some("ConflictException") && error.message().is_some_and(|m| m.contains("is referenced in"))
}
