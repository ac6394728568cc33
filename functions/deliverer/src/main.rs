use aws_lambda_events::event::sqs::SqsEvent;
use herald_fn_deliverer::{Config, deliverer, handle};
use lambda_runtime::LambdaEvent;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    herald_aws::lambda::serve(
        "deliverer",
        Config::from_env,
        deliverer,
        |deliverer, event: LambdaEvent<SqsEvent>| async move {
            Ok(handle(deliverer, event.payload).await)
        },
    )
    .await
}
