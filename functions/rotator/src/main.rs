use herald_fn_rotator::{RotationEvent, handle, rotation};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    herald_aws::telemetry::init();
    let clients = herald_aws::Clients::load().await;
    let rotation = rotation(&clients);
    let rotation = &rotation;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<RotationEvent>| async move {
            handle(rotation, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
