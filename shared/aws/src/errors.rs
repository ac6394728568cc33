//! SDK errors become domain [`StoreError`]s here and nowhere else.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use herald_domain::StoreError;

const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

pub fn store_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(format!(
                "{}",
                aws_smithy_types::error::display::DisplayErrorContext(&err)
            ))
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            if code == "ConditionalCheckFailedException" {
                StoreError::Conflict
            } else if RETRYABLE_CODES.contains(&code) {
                StoreError::Unavailable(code.to_owned())
            } else {
                StoreError::Invalid(format!("{code}: {}", service.err().message().unwrap_or("")))
            }
        }
        _ => StoreError::Invalid(format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(&err)
        )),
    }
}
