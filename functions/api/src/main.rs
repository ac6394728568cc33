use herald_fn_api::{Config, app};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    herald_aws::lambda::serve_http("api", Config::from_env, app).await
}
