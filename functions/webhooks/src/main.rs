use herald_fn_webhooks::{Config, receiver};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    herald_aws::lambda::serve_http("webhooks", Config::from_env, |config, clients| {
        herald_api::webhooks::router(Arc::new(receiver(config, clients)))
    })
    .await
}
