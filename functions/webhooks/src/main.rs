use herald_fn_webhooks::{Config, receiver};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    herald_aws::telemetry::init();
    let config = Config::from_env(&std::env::vars().collect())
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let clients = herald_aws::Clients::load().await;
    let receiver = Arc::new(receiver(&config, &clients));
    lambda_http::run(herald_api::webhooks::router(receiver)).await
}
