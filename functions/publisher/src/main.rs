use herald_domain::clock::{Clock, SystemClock};
use herald_fn_publisher::{Config, deadline_of, handle, publisher};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, clients) = herald_aws::lambda::start(Config::from_env).await?;
    let publisher = publisher(&config, &clients);
    let publisher = &publisher;
    let timeout = config.function_timeout;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            let deadline = deadline_of(event.context.deadline, SystemClock.now(), timeout);
            Ok::<_, lambda_runtime::Error>(handle(publisher, event.payload, deadline).await)
        },
    ))
    .await
}
