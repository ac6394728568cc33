use herald_fn_api::{Config, app};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let (config, clients) = herald_aws::lambda::start(Config::from_env).await?;
    lambda_http::run(app(&config, &clients)).await
}
