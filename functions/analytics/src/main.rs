use herald_fn_analytics::{Config, taker};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, clients) = herald_aws::lambda::start(Config::from_env).await?;
    let taker = taker(&config, &clients);
    let taker = &taker;
    lambda_runtime::run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
            let run = taker
                .run()
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
            tracing::info!(
                metric = "analytics.snapshots",
                scheduled = run.scheduled,
                taken = run.taken,
                already_taken = run.already_taken,
                failed = run.failed,
                dropped = run.dropped,
                "snapshot run"
            );
            Ok::<_, lambda_runtime::Error>(serde_json::to_value(run)?)
        },
    ))
    .await
}
