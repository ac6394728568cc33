use aws_lambda_events::event::sqs::SqsEvent;
use herald_domain::clock::{Clock, SystemClock};
use herald_fn_publisher::{Config, deadline_of, handle, publisher};
use lambda_runtime::LambdaEvent;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    herald_aws::lambda::serve(
        "publisher",
        Config::from_env,
        |config, clients| (publisher(config, clients), config.function_timeout),
        |(publisher, timeout), event: LambdaEvent<SqsEvent>| async move {
            let deadline = deadline_of(event.context.deadline, SystemClock.now(), *timeout);
            Ok(handle(publisher, event.payload, deadline).await)
        },
    )
    .await
}
