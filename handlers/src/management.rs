//! Posting frames to connections through the API Gateway management API, with the outcome sorted
//! by the HTTP status into what the caller must do: done, forget the connection, retry, or skip it.
//! The status decides, not the parsed error type: a 410 whose body the SDK cannot read is still gone.

use aws_sdk_apigatewaymanagement::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use crate::App;

/// The result of one PostToConnection attempt.
#[derive(Debug)]
pub enum PostOutcome {
    Delivered,
    /// API Gateway does not know the connection: 410 GoneException (closed, or never valid), or a
    /// 400 "Invalid connectionId". Its records can go.
    Gone,
    /// 403: the id belongs to another API or stage, or this function may not post at all; one answer
    /// alone cannot tell which.
    Forbidden(String),
    /// 429: the account-wide API Gateway request quota. Worth another attempt after a pause.
    Throttled(String),
    /// 5xx, timeouts, connection errors: worth another attempt.
    Retryable(String),
    /// Any other answer (400, 413 payload too large, ...): the same post would fail the same way.
    Rejected(String),
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
    let invalid_id = error
        .message()
        .is_some_and(|message| message.to_ascii_lowercase().contains("invalid connectionid"));
    let text = format!("{}", aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&error));
    match status {
        Some(410) => PostOutcome::Gone,
        Some(400) if invalid_id => PostOutcome::Gone,
        Some(403) => PostOutcome::Forbidden(text),
        Some(429) => PostOutcome::Throttled(text),
        Some(status) if status >= 500 => PostOutcome::Retryable(text),
        Some(_) => PostOutcome::Rejected(text),
        // No answer at all: the request could not be built (it never will be), or it timed out or
        // never reached API Gateway.
        None if matches!(error, SdkError::ConstructionFailure(_)) => PostOutcome::Rejected(text),
        None => PostOutcome::Retryable(text),
    }
}
