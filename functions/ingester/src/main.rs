use herald_fn_ingester::{Config, deadline_of, handle, ingester, now};
use lambda_runtime::LambdaEvent;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    herald_aws::lambda::serve(
        "ingester",
        Config::from_env,
        |config, clients| (ingester(config, clients), config.function_timeout),
        |(ingester, timeout), event: LambdaEvent<serde_json::Value>| async move {
            let deadline = deadline_of(event.context.deadline, now(), *timeout);
            handle(ingester, event.payload, deadline)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    )
    .await
}
