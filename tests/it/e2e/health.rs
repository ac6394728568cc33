//! `GET /v1/health` on the running stack, through the emulated API Gateway.

use super::*;

/// The checks of one name in a health answer, by component id.
fn checks<'a>(v: &'a Value, name: &str) -> HashMap<&'a str, &'a Value> {
    v["checks"][name]
        .as_array()
        .unwrap_or_else(|| panic!("no {name} checks in {v}"))
        .iter()
        .map(|c| (c["componentId"].as_str().unwrap(), c))
        .collect()
}

/// Liveness for anyone; the operator sees every table, queue, secret and the bucket answer and
/// every scheduled function's heartbeat fresh (the stack runs the schedules every few
/// seconds); a tenant's admin sees the shared statuses and its own accounts, nobody else's.
#[tokio::test]
async fn the_operator_sees_every_dependency_of_the_running_stack_and_a_tenant_only_its_own() {
    let stack = Stack::running();
    let (status, headers, v) = stack
        .call(stack.http.get(stack.api_url("/v1/health")))
        .await;
    assert_eq!(
        (status, &v),
        (
            StatusCode::OK,
            &json!({"status": "pass", "serviceId": "herald"})
        )
    );
    assert_eq!(headers["content-type"], "application/health+json");

    let operator = stack.secret("herald-AdminTokenSecret").await;
    let v = stack
        .wait_for(Duration::from_secs(60), "every heartbeat fresh", || async {
            let (_, _, v) = stack.get("/v1/health", operator.as_str()).await;
            let beats = checks(&v, "heartbeat:age");
            ["dispatcher", "poller", "analytics", "reconciler"]
                .iter()
                .all(|f| beats.get(f).is_some_and(|c| c["status"] == "pass"))
                .then_some(v)
        })
        .await;
    for (name, components) in [
        (
            "dynamodb:responseTime",
            &["main", "audit", "idempotency"][..],
        ),
        ("sqs:depth", &["publish", "ingest", "webhook", "outbound"]),
        ("secretsmanager:responseTime", &["token-encryption-key"]),
        ("s3:responseTime", &["media"]),
        ("platform:appBlock", &["x", "facebook", "linkedin"]),
    ] {
        let found = checks(&v, name);
        for component in components {
            let check = found
                .get(component)
                .unwrap_or_else(|| panic!("no {name} for {component}: {v}"));
            assert_eq!(check["status"], "pass", "{name} {component}: {v}");
        }
    }
    assert_eq!(
        checks(&v, "dynamodb:responseTime")["main"]["observedUnit"],
        "ms"
    );
    // Other tests leave dead letters and needs-reauth accounts behind: counted, not failed.
    for name in [
        "deadLetters:count",
        "accounts:needsReauth",
        "sqs:oldestMessageAge",
    ] {
        for (component, check) in checks(&v, name) {
            assert_ne!(check["status"], "fail", "{name} {component}: {v}");
        }
    }
    assert!(checks(&v, "accounts:needsReauth")["all tenants"]["observedValue"].is_u64());
    assert_ne!(v["status"], "fail", "{v}");

    let t = stack.tenant();
    let other = stack.tenant();
    stack.connect(&other, "x", &unique("x-"), "tok").await;
    let (status, _, v) = stack.get("/v1/health", &t).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        checks(&v, "accounts:needsReauth")[t.id.as_str()]["observedValue"],
        0
    );
    assert!(
        checks(&v, "sqs:depth")["publish"]
            .get("observedValue")
            .is_none(),
        "{v}"
    );
    assert!(!v.to_string().contains(&other.id), "{v}");
}
