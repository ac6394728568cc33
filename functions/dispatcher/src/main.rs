use herald_fn_dispatcher::{Config, dispatcher, handle};
use lambda_runtime::LambdaEvent;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    herald_aws::lambda::serve(
        "dispatcher",
        Config::from_env,
        dispatcher,
        |dispatcher, _: LambdaEvent<serde_json::Value>| async move {
            handle(dispatcher)
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))
        },
    )
    .await
}
