use herald_fn_analytics::{Config, handle, taker};
use lambda_runtime::LambdaEvent;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    herald_aws::lambda::serve(
        "analytics",
        Config::from_env,
        taker,
        |taker, _: LambdaEvent<serde_json::Value>| async move {
            handle(taker)
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))
        },
    )
    .await
}
