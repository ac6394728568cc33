use herald_fn_ingester::{Config, deadline_of, handle, ingester, now};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, clients) = herald_aws::lambda::start(Config::from_env).await?;
    let ingester = ingester(&config, &clients);
    let ingester = &ingester;
    let timeout = config.function_timeout;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let deadline = deadline_of(event.context.deadline, now(), timeout);
            handle(ingester, event.payload, deadline)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
