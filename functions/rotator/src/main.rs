use herald_fn_rotator::{RotationEvent, handle, rotation};
use lambda_runtime::LambdaEvent;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    herald_aws::lambda::serve(
        "rotator",
        // The rotator reads no configuration: Secrets Manager names the secret in each event.
        |_| Ok(()),
        |(), clients| rotation(clients),
        |rotation, event: LambdaEvent<RotationEvent>| async move {
            handle(rotation, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    )
    .await
}
