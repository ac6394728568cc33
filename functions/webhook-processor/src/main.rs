use herald_fn_webhook_processor::{Config, handle, processor};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    herald_aws::telemetry::init();
    let config = Config::from_env(&std::env::vars().collect())
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let clients = herald_aws::Clients::load().await;
    let processor = processor(&config, &clients);
    let processor = &processor;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            Ok::<_, lambda_runtime::Error>(handle(processor, event.payload).await)
        },
    ))
    .await
}
