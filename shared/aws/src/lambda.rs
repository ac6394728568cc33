//! What every function does, written once: start (logs, configuration, AWS clients), serve its
//! events with the service it built once, and for the SQS-fed ones read a record's JSON body,
//! answer the records SQS must keep (`ReportBatchItemFailures`), and find the invocation's
//! deadline in the Lambda context.

use crate::Clients;
use crate::config::ConfigError;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use time::OffsetDateTime;

/// A function's start: JSON logs, its configuration read from the environment (every problem
/// logged, and the start refused), then the AWS clients.
pub async fn start<C>(
    from_env: impl FnOnce(&HashMap<String, String>) -> Result<C, ConfigError>,
) -> Result<(C, Clients), ConfigError> {
    crate::telemetry::init();
    let config = from_env(&std::env::vars().collect())
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    Ok((config, Clients::load().await))
}

/// A function's whole life: `start`, its service built once from the configuration and the
/// clients (it lives as long as the process, so every event borrows it), then each event
/// handed to `handler` until the runtime stops.
/// `function` names it in the metrics (see [`crate::metrics`]), flushed after every event.
pub async fn serve<C, S, E, R, Fut>(
    function: &'static str,
    from_env: impl FnOnce(&HashMap<String, String>) -> Result<C, ConfigError>,
    build: impl FnOnce(&C, &Clients) -> S,
    handler: impl Fn(&'static S, LambdaEvent<E>) -> Fut,
) -> Result<(), lambda_runtime::Error>
where
    S: Sync + 'static,
    E: DeserializeOwned,
    R: Serialize,
    Fut: Future<Output = Result<R, lambda_runtime::Error>>,
{
    let (config, clients) = start(from_env).await?;
    let metrics = crate::metrics::install(function)?;
    let service: &'static S = Box::leak(Box::new(build(&config, &clients)));
    metrics_cloudwatch_embedded::lambda::service::run(
        metrics,
        service_fn(move |event| handler(service, event)),
    )
    .await
}

/// The same for a function behind API Gateway: `app` answers its HTTP requests.
pub async fn serve_http<C, A, R, E>(
    function: &'static str,
    from_env: impl FnOnce(&HashMap<String, String>) -> Result<C, ConfigError>,
    app: impl FnOnce(&C, &Clients) -> A,
) -> Result<(), lambda_runtime::Error>
where
    A: tower::Service<lambda_http::Request, Response = R, Error = E> + Send,
    A::Future: Send + 'static,
    R: lambda_http::IntoResponse,
    E: std::fmt::Debug + Into<lambda_runtime::Diagnostic>,
{
    let (config, clients) = start(from_env).await?;
    let metrics = crate::metrics::install(function)?;
    metrics_cloudwatch_embedded::lambda::service::run_http(metrics, app(&config, &clients)).await
}

/// A record's body as `T`, or the record's message id when the body is missing or is not a
/// `T` (never valid: the caller leaves it for the DLQ, where an operator can look at it).
pub fn parse_record<T: DeserializeOwned>(record: &SqsMessage) -> Result<T, String> {
    record
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok())
        .ok_or_else(|| record.message_id.clone().unwrap_or_default())
}

/// The answer that makes SQS keep (redeliver) exactly the records in `keep` and delete the rest.
pub fn batch_response(keep: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = keep
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}

/// The invocation's deadline, from the Lambda context's epoch milliseconds. One that is not
/// within Lambda's 15-minute limit from `now` is not a deadline (local runtimes have sent
/// durations here): the function's own timeout from `now` stands in for it.
pub fn deadline_of(
    context_deadline_ms: u64,
    now: OffsetDateTime,
    timeout: Duration,
) -> OffsetDateTime {
    i64::try_from(context_deadline_ms)
        .ok()
        .map(herald_domain::clock::from_epoch_millis)
        .filter(|d| *d > now && *d <= now + time::Duration::minutes(15))
        .unwrap_or(now + timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scheduled functions' sample events (`events/<function>/`) are what EventBridge sends.
    #[test]
    fn scheduled_sample_events_parse() {
        let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
        for function in ["analytics", "dispatcher", "poller", "reconciler"] {
            for file in ["schedule.json", "warmup.json"] {
                let bytes = std::fs::read(events.join(function).join(file)).unwrap();
                let event: aws_lambda_events::event::eventbridge::EventBridgeEvent =
                    serde_json::from_slice(&bytes).unwrap();
                assert_eq!(event.detail_type, "Scheduled Event", "{function}/{file}");
            }
        }
    }

    #[test]
    fn an_implausible_deadline_falls_back_to_the_timeout() {
        let now = time::macros::datetime!(2026-01-01 00:00 UTC);
        let timeout = Duration::from_secs(30);
        let in_20s = herald_domain::clock::epoch_millis(now) as u64 + 20_000;
        assert_eq!(
            deadline_of(in_20s, now, timeout),
            now + time::Duration::seconds(20)
        );
        for bogus in [0, 3_000, in_20s + 3_600_000] {
            assert_eq!(
                deadline_of(bogus, now, timeout),
                now + time::Duration::seconds(30)
            );
        }
    }

    #[test]
    fn a_record_parses_or_names_itself_for_the_dlq() {
        let mut record = SqsMessage::default();
        record.message_id = Some("m-1".into());
        record.body = Some(r#"{"n": 3}"#.into());
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Job {
            n: u32,
        }
        assert_eq!(parse_record::<Job>(&record), Ok(Job { n: 3 }));
        record.body = Some("not json".into());
        assert_eq!(parse_record::<Job>(&record), Err("m-1".to_owned()));
        record.body = None;
        assert_eq!(parse_record::<Job>(&record), Err("m-1".to_owned()));
        let response = batch_response(["a".to_owned(), "b".to_owned()]);
        let ids: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }
}
