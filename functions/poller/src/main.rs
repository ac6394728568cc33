use herald_fn_poller::{Config, handle, poller};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, clients) = herald_aws::lambda::start(Config::from_env).await?;
    let poller = poller(&config, &clients);
    let poller = &poller;
    lambda_runtime::run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
            handle(poller)
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))
        },
    ))
    .await
}
