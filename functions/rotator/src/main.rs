use herald_fn_rotator::{Config, RotationEvent, handle, rotation};
use lambda_runtime::LambdaEvent;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    herald_aws::lambda::serve(
        "rotator",
        Config::from_env,
        rotation,
        |rotation, event: LambdaEvent<RotationEvent>| async move {
            handle(rotation, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    )
    .await
}
