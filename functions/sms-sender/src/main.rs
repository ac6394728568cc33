use aws_lambda_events::event::sqs::SqsEvent;
use herald_fn_sms_sender::{Config, handle, sender};
use lambda_runtime::LambdaEvent;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    herald_aws::lambda::serve(
        "sms-sender",
        Config::from_env,
        sender,
        |sender, event: LambdaEvent<SqsEvent>| async move {
            Ok(handle(sender, event.payload).await)
        },
    )
    .await
}
