use herald_fn_api::{Config, app};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    herald_aws::telemetry::init();
    let config = Config::from_env(&std::env::vars().collect())
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let clients = herald_aws::Clients::load().await;
    lambda_http::run(app(&config, &clients)).await
}
