use herald_fn_analytics::{Config, taker};
use lambda_runtime::LambdaEvent;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    herald_aws::lambda::serve(
        Config::from_env,
        taker,
        |taker, _: LambdaEvent<serde_json::Value>| async move {
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
            Ok(run)
        },
    )
    .await
}
