use herald_fn_webhook_processor::{Config, handle, processor};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, clients) = herald_aws::lambda::start(Config::from_env).await?;
    let processor = processor(&config, &clients);
    let processor = &processor;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            Ok::<_, lambda_runtime::Error>(handle(processor, event.payload).await)
        },
    ))
    .await
}
