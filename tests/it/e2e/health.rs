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
        (
            "sqs:depth",
            &["publish", "ingest", "webhook", "outbound", "sms"],
        ),
        ("secretsmanager:responseTime", &["token-encryption-key"]),
        ("s3:responseTime", &["media"]),
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
    // Each platform's app block is checked; another test (the console's) may have blocked one
    // meanwhile: a warning, never a failure.
    let blocks = checks(&v, "platform:appBlock");
    for platform in ["x", "facebook", "linkedin"] {
        let check = blocks
            .get(platform)
            .unwrap_or_else(|| panic!("no platform:appBlock for {platform}: {v}"));
        assert_ne!(check["status"], "fail", "platform:appBlock {platform}: {v}");
    }
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

/// The Embedded Metric Format documents `binary` wrote to its log: its JSON lines with `_aws`.
fn emf_documents(binary: &str) -> Vec<Value> {
    let log = repo_root().join(format!(".herald/logs/{binary}.log"));
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .collect()
}

/// Every function writes its metrics as CloudWatch EMF beside its logs: a post published
/// through the stack leaves `publish.outcome` in the publisher's log and its `POST /v1/posts`
/// an `api.requests` count in the API's (by route, never the raw path), each under the
/// stack's namespace with the function's dimension.
#[tokio::test]
async fn functions_write_their_metrics_in_embedded_metric_format() {
    let stack = Stack::running();
    let t = stack.tenant();
    let account = stack.connect(&t, "linkedin", &unique("li-"), "tok").await;
    let post = stack.schedule(&t, &account, "counted", 1).await;
    let id = post["id"].as_str().unwrap();
    stack.await_variant(&t, id, "published").await;
    let (status, _, _) = stack.get(&format!("/v1/posts/{id}"), &t).await;
    assert_eq!(status, StatusCode::OK);

    let published = stack
        .wait_for(
            Duration::from_secs(10),
            "publish.outcome in the publisher's log",
            || async {
                emf_documents("publisher").into_iter().find(|d| {
                    d["function"] == "publisher"
                        && d["outcome"] == "published"
                        && d["platform"] == "linkedin"
                        && d["publish.outcome"].as_f64().is_some_and(|n| n >= 1.0)
                })
            },
        )
        .await;
    let directive = &published["_aws"]["CloudWatchMetrics"][0];
    assert!(
        directive["Namespace"]
            .as_str()
            .unwrap()
            .starts_with("Herald/"),
        "{published}"
    );
    let names: Vec<&str> = directive["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"publish.outcome"), "{published}");

    let read = stack
        .wait_for(
            Duration::from_secs(10),
            "api.requests in the API's log",
            || async {
                emf_documents("api")
                    .into_iter()
                    .find(|d| d["route"] == "/v1/posts/{id}" && d["status"] == "200")
            },
        )
        .await;
    assert_eq!(read["function"], "api", "{read}");
    assert!(
        !emf_documents("api")
            .iter()
            .any(|d| d["route"].as_str().is_some_and(|r| r.contains(id))),
        "a raw path (with an id) is never a dimension"
    );
}
