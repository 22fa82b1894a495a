//! The typed failure of a handler invocation: what went wrong, with its context, and whether trying
//! again can help. The runtime reports it to Lambda as `Diagnostic { error_type, error_message }`,
//! so logs and metrics keep the split; nothing here decides to retry.

use std::fmt;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// What a caller can do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The event is not one this function serves (e.g. no connection id): it fails the same way again.
    InvalidEvent,
    /// Throttling, 5xx, timeouts, a network failure: the same event may pass later.
    Retryable,
    /// Refused for good (permissions, a missing table, a validation error) until someone changes
    /// the configuration.
    Permanent,
}

impl FailureKind {
    /// The `errorType` Lambda records for the invocation.
    pub fn error_type(self) -> &'static str {
        match self {
            FailureKind::InvalidEvent => "wsstack.InvalidEvent",
            FailureKind::Retryable => "wsstack.Retryable",
            FailureKind::Permanent => "wsstack.Permanent",
        }
    }
}

/// A handler failure: its kind and the error with its context chain.
#[derive(Debug)]
pub struct HandlerError {
    pub kind: FailureKind,
    pub error: anyhow::Error,
}

impl HandlerError {
    pub fn new(kind: FailureKind, error: impl Into<anyhow::Error>) -> HandlerError {
        HandlerError {
            kind,
            error: error.into(),
        }
    }

    pub fn invalid_event(error: impl Into<anyhow::Error>) -> HandlerError {
        HandlerError::new(FailureKind::InvalidEvent, error)
    }

    /// An AWS SDK failure, sorted as the SDK's own retry classifier sorts it, with `context` saying
    /// what was being done.
    pub fn sdk<E>(error: SdkError<E, HttpResponse>, context: String) -> HandlerError
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        let kind = sdk_failure_kind(&error);
        HandlerError::new(kind, anyhow::Error::new(error).context(context))
    }
}

/// Retryable: no answer (timeout, dispatch failure), a 5xx or 429, or an error code AWS names as
/// throttling or transient (DynamoDB throttles with a 400); anything else answered is permanent.
pub fn sdk_failure_kind<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> FailureKind {
    use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
    let status = error.raw_response().map(|response| response.status().as_u16());
    let retryable_code = error
        .code()
        .is_some_and(|code| THROTTLING_ERRORS.contains(&code) || TRANSIENT_ERRORS.contains(&code));
    match status {
        _ if matches!(error, SdkError::ConstructionFailure(_)) => FailureKind::Permanent,
        None => FailureKind::Retryable,
        Some(status) if status == 429 || status >= 500 || retryable_code => FailureKind::Retryable,
        Some(_) => FailureKind::Permanent,
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for HandlerError {}

/// Extension for SDK results: sort the failure and name what was being done.
pub trait SdkResultExt<T> {
    fn or_fail(self, context: impl FnOnce() -> String) -> Result<T, HandlerError>;
}

impl<T, E> SdkResultExt<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    fn or_fail(self, context: impl FnOnce() -> String) -> Result<T, HandlerError> {
        self.map_err(|error| HandlerError::sdk(error, context()))
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(error: HandlerError) -> lambda_runtime::Diagnostic {
        lambda_runtime::Diagnostic {
            error_type: error.kind.error_type().to_string(),
            error_message: error.to_string(),
        }
    }
}
