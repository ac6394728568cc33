use herald_fn_deliverer::{Config, deliverer, handle};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, clients) = herald_aws::lambda::start(Config::from_env).await?;
    let deliverer = deliverer(&config, &clients);
    let deliverer = &deliverer;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            Ok::<_, lambda_runtime::Error>(handle(deliverer, event.payload).await)
        },
    ))
    .await
}
