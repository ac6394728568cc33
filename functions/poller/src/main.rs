use herald_fn_poller::{Config, handle, poller};
use lambda_runtime::LambdaEvent;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    herald_aws::lambda::serve(
        "poller",
        Config::from_env,
        poller,
        |poller, _: LambdaEvent<serde_json::Value>| async move {
            handle(poller)
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))
        },
    )
    .await
}
