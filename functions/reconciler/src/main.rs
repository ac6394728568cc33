use herald_domain::clock::{Clock, SystemClock};
use herald_fn_reconciler::{
    Config, campaigns, drain, drain_dead_letters, outbound, reconciler, refresh_ahead,
    repair_campaigns, shared, sweep_tokens, token_refresh, token_sweep,
};
use lambda_runtime::LambdaEvent;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    herald_aws::lambda::serve(
        "reconciler",
        Config::from_env,
        |config, clients| {
            let shared = shared(config, clients);
            (
                drain(config, clients, &shared),
                reconciler(config, clients, &shared),
                outbound(config, clients, &shared),
                token_sweep(&shared),
                token_refresh(config, &shared),
                campaigns(config, clients, &shared),
            )
        },
        |(drain, reconciler, outbound, sweep, refresh, campaigns),
         _: LambdaEvent<serde_json::Value>| async move {
            // First, so this run's alerts see the dead letters in their records.
            drain_dead_letters(drain).await;
            let report = reconciler
                .run_once()
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
            if let Some(outbound) = outbound {
                // The outbound facts are decided in one place: `herald_domain::publishing::settle`.
                herald_domain::publishing::settle::announce_resolved(
                    outbound,
                    &report,
                    SystemClock.now(),
                )
                .await;
            }
            repair_campaigns(campaigns).await;
            sweep_tokens(sweep.as_ref()).await;
            if let Some((refresh, expiring)) = refresh {
                refresh_ahead(refresh, expiring.as_ref()).await;
            }
            Ok(report)
        },
    )
    .await
}
