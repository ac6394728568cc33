use herald_fn_poller::{Config, handle, poller};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    herald_aws::telemetry::init();
    let config = Config::from_env(&std::env::vars().collect())
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let clients = herald_aws::Clients::load().await;
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
