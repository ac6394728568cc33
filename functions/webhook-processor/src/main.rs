use aws_lambda_events::event::sqs::SqsEvent;
use herald_fn_webhook_processor::{Config, handle, processor};
use lambda_runtime::LambdaEvent;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    herald_aws::lambda::serve(
        "webhook-processor",
        Config::from_env,
        processor,
        |processor, event: LambdaEvent<SqsEvent>| async move {
            Ok(handle(processor, event.payload).await)
        },
    )
    .await
}
