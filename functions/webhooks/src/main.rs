use herald_fn_webhooks::{Config, receiver};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let (config, clients) = herald_aws::lambda::start(Config::from_env).await?;
    let receiver = Arc::new(receiver(&config, &clients));
    lambda_http::run(herald_api::webhooks::router(receiver)).await
}
