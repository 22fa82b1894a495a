//! Posting frames to connections through the API Gateway management API, with the outcome sorted
//! into what the caller must do: done, gone (410: delete the records), retry, or give up.

use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use crate::App;

/// The result of one PostToConnection attempt.
#[derive(Debug)]
pub enum PostOutcome {
    Delivered,
    /// 410 GoneException: the client has disconnected.
    Gone,
    /// Throttling, 5xx, timeouts, connection errors: worth another attempt.
    Retryable(String),
    /// 403, payload too large and anything else that will fail the same way again.
    Failed(String),
}

/// Posts `data` to `connection_id` once.
pub async fn post(app: &App, connection_id: &str, data: Vec<u8>) -> PostOutcome {
    let result = app
        .management
        .post_to_connection()
        .connection_id(connection_id)
        .data(Blob::new(data))
        .send()
        .await;
    match result {
        Ok(_) => PostOutcome::Delivered,
        Err(error) => classify(error),
    }
}

fn classify(error: SdkError<PostToConnectionError>) -> PostOutcome {
    let status = error.raw_response().map(|response| response.status().as_u16());
    let text = format!("{}", aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&error));
    match &error {
        SdkError::ServiceError(service) => match service.err() {
            PostToConnectionError::GoneException(_) => PostOutcome::Gone,
            PostToConnectionError::LimitExceededException(_) => PostOutcome::Retryable(text),
            PostToConnectionError::ForbiddenException(_) | PostToConnectionError::PayloadTooLargeException(_) => {
                PostOutcome::Failed(text)
            }
            _ if status == Some(410) => PostOutcome::Gone,
            _ if status.is_some_and(|status| status == 429 || status >= 500) => PostOutcome::Retryable(text),
            _ => PostOutcome::Failed(text),
        },
        SdkError::ResponseError(_) if status.is_some_and(|status| status < 500) => PostOutcome::Failed(text),
        // Timeouts, dispatch (connection) failures and unparseable 5xx answers.
        _ => PostOutcome::Retryable(text),
    }
}
