use herald_fn_dispatcher::{Config, dispatcher, handle};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, clients) = herald_aws::lambda::start(Config::from_env).await?;
    let dispatcher = dispatcher(&config, &clients);
    let dispatcher = &dispatcher;
    lambda_runtime::run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
            handle(dispatcher)
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))
        },
    ))
    .await
}
