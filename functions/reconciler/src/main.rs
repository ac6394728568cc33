use herald_domain::clock::{Clock, SystemClock};
use herald_fn_reconciler::{Config, reconciler, sweep_tokens, token_sweep};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, clients) = herald_aws::lambda::start(Config::from_env).await?;
    let shared = herald_fn_reconciler::shared(&config, &clients);
    let reconciler = reconciler(&config, &clients, &shared);
    let reconciler = &reconciler;
    let outbound = herald_fn_reconciler::outbound(&config, &clients, &shared);
    let outbound = &outbound;
    let sweep = token_sweep(&shared);
    let sweep = &sweep;
    let refresh = herald_fn_reconciler::token_refresh(&config, &shared);
    let refresh = &refresh;
    lambda_runtime::run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
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
            sweep_tokens(sweep.as_ref()).await;
            if let Some((refresh, expiring)) = refresh {
                herald_fn_reconciler::refresh_ahead(refresh, expiring.as_ref()).await;
            }
            Ok::<_, lambda_runtime::Error>(report)
        },
    ))
    .await
}
