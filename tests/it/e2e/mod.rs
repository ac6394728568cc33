//! End to end through the real binaries on the local stack (`make up`): the HTTP API behind
//! the emulated API Gateway, the dispatcher on its emulated schedule, the publisher fed by
//! the emulated SQS event source, and the fake platforms over HTTP.

use crate::support::*;
use herald_tests::repo_root;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_scheduled_post_is_published_exactly_once_and_a_duplicate_message_publishes_nothing() {
    let stack = Stack::running();
    let t = stack.tenant();
    let page = unique("page");
    let account = stack.connect(&t, "facebook", &page, "fb-token").await;
    let post = stack.schedule(&t, &account, "Launch day!", 3).await;
    let id = post["id"].as_str().unwrap();
    assert_eq!(post["status"], "scheduled");

    let published = stack
        .wait_for(PUBLISH_TIMEOUT, "the post on the fake platform", || async {
            let p = stack.read_post(&t, id).await;
            (p["status"] == "published").then_some(p)
        })
        .await;
    let on_platform = stack.fake_posts("facebook", &page).await;
    assert_eq!(on_platform.len(), 1, "{on_platform:?}");
    assert_eq!(on_platform[0]["text"], "Launch day!");
    let variant = &published["variants"][0];
    assert_eq!(variant["platform_post_id"], on_platform[0]["id"]);
    assert_eq!(variant["attempts"], 1);
    assert_eq!(published["correlation_id"], post["correlation_id"]);

    // The same message again, twice, straight onto the queue.
    let queue = stack.url("HERALD_PUBLISH_QUEUE_URL").to_owned();
    let body =
        json!({"tenant_id": t.id, "post_id": id, "account_id": account, "platform": "facebook", "correlation_id": "dup"})
            .to_string();
    let sqs = stack.sqs().await;
    for _ in 0..2 {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(&body)
            .send()
            .await
            .unwrap();
    }
    stack
        .wait_for(PUBLISH_TIMEOUT, "the duplicates to be consumed", || async {
            stack.queue_is_drained(&queue).await.then_some(())
        })
        .await;
    assert_eq!(
        stack.fake_posts("facebook", &page).await.len(),
        1,
        "still exactly one"
    );
    assert_eq!(stack.read_post(&t, id).await["variants"][0]["attempts"], 1);
}

#[tokio::test]
async fn a_cancel_before_the_claim_is_never_published() {
    let stack = Stack::running();
    let t = stack.tenant();
    let org = unique("org");
    let account = stack.connect(&t, "linkedin", &org, "li-token").await;
    let post = stack.schedule(&t, &account, "never", 4).await;
    let id = post["id"].as_str().unwrap();
    let (s, _, v) = stack
        .api(Method::DELETE, &format!("/v1/posts/{id}"), &t, None, None)
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{v}"
    );
    // Well past the due time and several dispatcher runs.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(stack.fake_posts("linkedin", &org).await.is_empty());
    assert_eq!(stack.read_post(&t, id).await["status"], "cancelled");
}

#[tokio::test]
async fn an_edit_before_the_claim_is_published_as_edited() {
    let stack = Stack::running();
    let t = stack.tenant();
    let org = unique("org");
    let account = stack.connect(&t, "linkedin", &org, "li-token").await;
    let post = stack.schedule(&t, &account, "first draft", 4).await;
    let id = post["id"].as_str().unwrap();
    let (s, _, v) = stack
        .api(
            Method::PATCH,
            &format!("/v1/posts/{id}"),
            &t,
            None,
            Some(json!({"text": "final text"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    stack
        .wait_for(PUBLISH_TIMEOUT, "the edited post", || async {
            (stack.read_post(&t, id).await["status"] == "published").then_some(())
        })
        .await;
    let on_platform = stack.fake_posts("linkedin", &org).await;
    assert_eq!(on_platform.len(), 1);
    assert_eq!(on_platform[0]["text"], "final text");
}

#[tokio::test]
async fn idempotency_keys_and_tenancy_over_http() {
    let stack = Stack::running();
    let a = stack.tenant();
    let b = stack.tenant();
    let account = stack
        .connect(&a, "x", &unique("user"), &unique("x-token-"))
        .await;
    let body = json!({"text": "once", "scheduled_at": "2099-01-01T00:00:00Z", "targets": [{"account_id": account}]});
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = json!({"text": "once", "scheduled_at": later, "targets": body["targets"]});
    let key = unique("idem-");
    let (s1, h1, first) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &a,
            Some(&key),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s1, StatusCode::CREATED, "{first}");
    assert!(h1.get("idempotent-replayed").is_none());
    let (s2, h2, second) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &a,
            Some(&key),
            Some(body.clone()),
        )
        .await;
    assert_eq!((s2, &second), (StatusCode::CREATED, &first));
    assert_eq!(h2["idempotent-replayed"], "true");
    let (s, h, v) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &a,
            Some(&key),
            Some(json!({"text": "other", "targets": body["targets"]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(h["content-type"], "application/problem+json");
    let (s, _, _) = stack
        .api(Method::POST, "/v1/posts", &a, None, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "key required");
    let (s, _, _) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &a,
            Some("bad key"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "malformed key");
    let (_, _, list) = stack.get("/v1/posts", &a).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "one post for all those retries"
    );

    // Tenant B sees none of it and can change none of it.
    let path = format!("/v1/posts/{}", first["id"].as_str().unwrap());
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"text": "mine now"}))),
        (Method::DELETE, None),
    ] {
        let (s, h, v) = stack.api(method.clone(), &path, &b, None, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {v}");
        assert_eq!(h["content-type"], "application/problem+json");
    }
    let (s, _, _) = stack
        .api(Method::POST, "/v1/posts", &b, Some(&key), Some(body))
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "B's key space is its own, and A's account is not B's"
    );
    assert_eq!(
        stack.read_post(&a, first["id"].as_str().unwrap()).await["text"],
        "once"
    );
}

#[tokio::test]
async fn permanent_and_auth_errors_end_failed_with_the_platform_reason() {
    let stack = Stack::running();
    let t = stack.tenant();
    // Valid when connected, refused at publish (revoked in between).
    let org = unique("org");
    let revoked = stack.connect_mapped(&t, "linkedin", &org).await;
    stack
        .fault(json!({"platform": "linkedin", "account": org, "status": 401, "rate": 1.0}))
        .await;
    let page = unique("page");
    let refused = stack.connect(&t, "facebook", &page, "fb-token").await;
    stack
        .fault(json!({"platform": "facebook", "account": page, "status": 400, "error_code": 100, "message": "Invalid parameter", "rate": 1.0}))
        .await;
    let auth_post = stack.schedule(&t, &revoked, "auth", 0).await;
    let bad_post = stack.schedule(&t, &refused, "bad", 0).await;
    for (post, kind, reason) in [
        (&auth_post, "auth", "LinkedIn answered 401"),
        (
            &bad_post,
            "permanent",
            "Facebook answered 400: Invalid parameter",
        ),
    ] {
        let id = post["id"].as_str().unwrap();
        let p = stack
            .wait_for(PUBLISH_TIMEOUT, "the post to fail", || async {
                let p = stack.read_post(&t, id).await;
                (p["status"] == "failed").then_some(p)
            })
            .await;
        let v = &p["variants"][0];
        assert_eq!(v["status"], "failed");
        assert_eq!(v["last_error"]["kind"], kind, "{v}");
        assert!(
            v["last_error"]["message"]
                .as_str()
                .unwrap()
                .contains(reason),
            "{v}"
        );
        assert_eq!(v["attempts"], 1, "no retry loop");
    }
    assert!(stack.fake_posts("facebook", &page).await.is_empty());
}

#[tokio::test]
async fn transient_failures_retry_and_end_in_the_dlq() {
    let stack = Stack::running();
    let t = stack.tenant();
    let page = unique("page");
    let account = stack.connect(&t, "facebook", &page, "fb-token").await;
    let outage = stack
        .fault(json!({"platform": "facebook", "account": page, "status": 503, "rate": 1.0}))
        .await;
    let post = stack.schedule(&t, &account, "doomed", 0).await;
    let id = post["id"].as_str().unwrap().to_owned();
    let max: u64 = stack
        .url("HERALD_PUBLISH_MAX_RECEIVE_COUNT")
        .parse()
        .unwrap();
    let p = stack
        .wait_for(
            Duration::from_secs(120),
            "the variant to be dead-lettered",
            || async {
                let p = stack.read_post(&t, &id).await;
                (p["variants"][0]["status"] == "dead_lettered").then_some(p)
            },
        )
        .await;
    assert_eq!(p["variants"][0]["attempts"], max);
    assert!(
        p["variants"][0]["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("503")
    );
    assert_eq!(p["status"], "needs_attention");
    // The reconciler drains the DLQ into the tenant's dead letters.
    let letter = stack
        .wait_for(
            Duration::from_secs(30),
            "the dead letter in the API",
            || async {
                let (_, _, v) = stack.get("/v1/dead-letters", &t).await;
                v["items"].as_array().and_then(|items| {
                    items
                        .iter()
                        .find(|d| d["payload"]["post_id"] == id.as_str())
                        .cloned()
                })
            },
        )
        .await;
    assert_eq!(letter["payload"]["tenant_id"], t.id.as_str());
    assert!(stack.fake_posts("facebook", &page).await.is_empty());
    // Operators were told: the circuit opened (once), and the DLQ is not empty.
    let circuit = format!("circuit_open:{}:{}", t.id, account);
    let alerts = stack
        .wait_for(Duration::from_secs(30), "the alerts", || async {
            let keys = stack.alert_keys().await;
            (keys.contains(&circuit) && keys.iter().any(|k| k == "dead_letters:publish"))
                .then_some(keys)
        })
        .await;
    assert_eq!(
        alerts.iter().filter(|k| **k == circuit).count(),
        1,
        "one alert per condition per window: {alerts:?}"
    );

    // The outage ends; an operator requeues the dead letter: published once.
    stack.remove_fault(&outage).await;
    assert_eq!(letter["source"], "publish");
    let path = format!(
        "/v1/dead-letters/{}/requeue",
        letter["id"].as_str().unwrap()
    );
    let (s, _, v) = stack
        .api(Method::POST, &path, &t, Some(&unique("k-")), None)
        .await;
    assert_eq!((s, &v["requeued"]), (StatusCode::OK, &json!(1)), "{v}");
    stack
        .wait_for(PUBLISH_TIMEOUT, "the requeued post", || async {
            (stack.read_post(&t, &id).await["status"] == "published").then_some(())
        })
        .await;
    assert_eq!(stack.fake_posts("facebook", &page).await.len(), 1);
    let (_, _, log) = stack.get("/v1/audit?action=dead_letter.requeued", &t).await;
    assert_eq!(log["items"].as_array().unwrap().len(), 1, "{log}");
}

#[tokio::test]
async fn a_pause_holds_posts_and_lifting_it_releases_them() {
    let stack = Stack::running();
    let t = stack.tenant();
    let (page, org) = (unique("page"), unique("org"));
    let facebook = stack.connect(&t, "facebook", &page, "fb-token").await;
    let linkedin = stack.connect(&t, "linkedin", &org, "li-token").await;

    // Facebook only: the dispatcher hands the post over; the publisher's claim holds it.
    let (s, _, v) = stack
        .api(
            Method::PUT,
            "/v1/crisis",
            &t,
            Some(&unique("k-")),
            Some(json!({"reason": "brand review", "platforms": ["facebook"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let held = stack.schedule(&t, &facebook, "held back", 0).await;
    let free = stack.schedule(&t, &linkedin, "goes out", 0).await;
    stack
        .wait_for(PUBLISH_TIMEOUT, "the unpaused platform's post", || async {
            let p = stack.read_post(&t, free["id"].as_str().unwrap()).await;
            (p["status"] == "published").then_some(())
        })
        .await;
    // Several dispatcher runs and publisher re-checks later, still held.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let p = stack.read_post(&t, held["id"].as_str().unwrap()).await;
    assert_eq!(p["variants"][0]["status"], "pending", "{p}");
    assert_eq!(
        p["variants"][0]["attempts"], 0,
        "a held claim counts nothing"
    );
    assert!(stack.fake_posts("facebook", &page).await.is_empty());

    // Every platform: the dispatcher does not even hand new posts over.
    let (s, _, _) = stack
        .api(
            Method::PUT,
            "/v1/crisis",
            &t,
            Some(&unique("k-")),
            Some(json!({"reason": "everything stops"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let waiting = stack.schedule(&t, &linkedin, "waits", 0).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        stack.read_post(&t, waiting["id"].as_str().unwrap()).await["status"],
        "scheduled"
    );

    let (s, _, v) = stack
        .api(Method::DELETE, "/v1/crisis", &t, Some(&unique("k-")), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for post in [&held, &waiting] {
        let id = post["id"].as_str().unwrap();
        stack
            .wait_for(PUBLISH_TIMEOUT, "the released post", || async {
                (stack.read_post(&t, id).await["status"] == "published").then_some(())
            })
            .await;
    }
    assert_eq!(stack.fake_posts("facebook", &page).await.len(), 1);
    assert_eq!(stack.fake_posts("linkedin", &org).await.len(), 2);
}

/// On each platform: the post is created but its answer lost; the next attempt finds it
/// through the platform's own listing and adopts it.
#[tokio::test]
async fn a_post_whose_answer_was_lost_is_found_and_adopted_not_sent_again() {
    let stack = Stack::running();
    let t = stack.tenant();
    let mut posts = Vec::new();
    for platform in ["x", "facebook", "linkedin"] {
        let external = unique(platform);
        let account = stack.connect_mapped(&t, platform, &external).await;
        stack
            .fault(
                json!({"platform": platform, "account": external, "ambiguous": true, "count": 1}),
            )
            .await;
        let post = stack
            .schedule(&t, &account, &format!("said once on {platform}"), 0)
            .await;
        posts.push((platform, external, post["id"].as_str().unwrap().to_owned()));
    }
    for (platform, external, id) in posts {
        let p = stack
            .wait_for(PUBLISH_TIMEOUT, "the post to be adopted", || async {
                let p = stack.read_post(&t, &id).await;
                (p["status"] == "published").then_some(p)
            })
            .await;
        let on_platform = stack.fake_posts(platform, &external).await;
        assert_eq!(
            on_platform.len(),
            1,
            "{platform}: exactly one post: {on_platform:?}"
        );
        assert_eq!(
            p["variants"][0]["platform_post_id"], on_platform[0]["id"],
            "{platform}"
        );
        let (_, _, log) = stack
            .get(
                &format!(
                    "/v1/audit?action=publish.adopted&entity=variant:{id}:{}",
                    p["variants"][0]["account_id"].as_str().unwrap()
                ),
                &t,
            )
            .await;
        assert_eq!(
            log["items"].as_array().map(Vec::len),
            Some(1),
            "{platform}: {log}"
        );
    }
}

#[tokio::test]
async fn a_429_defers_the_post_without_counting_toward_the_dlq() {
    let stack = Stack::running();
    let t = stack.tenant();
    let org = unique("org");
    let account = stack.connect(&t, "linkedin", &org, "li-token").await;
    stack
        .fault(json!({"platform": "linkedin", "account": org, "status": 429, "retry_after": 2, "count": 3}))
        .await;
    let post = stack.schedule(&t, &account, "patience", 0).await;
    let id = post["id"].as_str().unwrap();
    let p = stack
        .wait_for(PUBLISH_TIMEOUT, "the post after the 429s", || async {
            let p = stack.read_post(&t, id).await;
            (p["status"] == "published").then_some(p)
        })
        .await;
    assert_eq!(stack.fake_posts("linkedin", &org).await.len(), 1);
    // Three deferrals and the publish, each a claim (a busy stack may add a contended one),
    // none a failed delivery.
    assert!(p["variants"][0]["attempts"].as_u64() >= Some(4), "{p}");
    assert!(p["variants"][0]["last_error"].is_null(), "{p}");
}

#[tokio::test]
async fn herald_audit_verify_passes_then_finds_a_removed_record() {
    let stack = Stack::running();
    let t = stack.tenant();
    let page = unique("page");
    let account = stack.connect(&t, "facebook", &page, "fb-token").await;
    for method in [Method::PUT, Method::DELETE] {
        let body = (method == Method::PUT).then(|| json!({"reason": "drill"}));
        let (s, _, v) = stack
            .api(method, "/v1/crisis", &t, Some(&unique("k-")), body)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let post = stack.schedule(&t, &account, "audited", 0).await;
    let id = post["id"].as_str().unwrap();
    stack
        .wait_for(PUBLISH_TIMEOUT, "the post", || async {
            (stack.read_post(&t, id).await["status"] == "published").then_some(())
        })
        .await;
    let (_, _, log) = stack.get("/v1/audit", &t).await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for expected in [
        "account.connected",
        "crisis.started",
        "crisis.lifted",
        "publish.published",
    ] {
        assert!(actions.contains(&expected), "{expected} not in {actions:?}");
    }
    let verify = || {
        std::process::Command::new(repo_root().join("target/debug/herald"))
            .envs(&stack.env)
            .args(["audit", "verify", "--tenant", &t.id])
            .output()
            .unwrap()
    };
    let out = verify();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["records"], 4);

    // Remove the crisis' first record behind Herald's back.
    let dynamodb = stack.ddb().await;
    let table = stack.url("HERALD_AUDIT_TABLE");
    let records = dynamodb
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("AUDIT#{}", t.id)),
        )
        .send()
        .await
        .unwrap();
    let started = records
        .items()
        .iter()
        .find(|i| i["action"].as_s().unwrap() == "crisis.started")
        .unwrap();
    dynamodb
        .delete_item()
        .table_name(table)
        .key("pk", started["pk"].clone())
        .key("sk", started["sk"].clone())
        .send()
        .await
        .unwrap();
    let out = verify();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(report["findings"][0]["entity"], "crisis", "{report}");
}

/// Chaos: 200 posts over the six platforms while the fake platforms answer 429 (with
/// Retry-After), 5xx, slowly, with lost answers and some permanent refusals, and the publisher
/// process is killed mid-batch. In the end every variant is published exactly once on its
/// platform, or failed with a reason, and nothing a refusal hit was posted.
#[tokio::test]
#[ignore = "run alone by infra/test.sh: its 200 posts would hold up every other test's in the shared queue"]
async fn chaos_two_hundred_posts_publish_exactly_once_through_faults_and_a_killed_publisher() {
    const POSTS: usize = 200;
    let stack = Stack::running();
    let t = stack.tenant();
    // Faults are scoped to this test's accounts: other tests share the fake platforms.
    let mut accounts = Vec::new();
    // Instagram posts nothing without media: its posts carry one uploaded JPEG.
    let photo = herald_domain::media::samples::jpeg(1080, 1080, 8_000);
    let jpeg = stack
        .upload_media(&t, "image/jpeg", "chaos.jpg", &photo)
        .await;
    for platform in [
        "x",
        "facebook",
        "linkedin",
        "mastodon",
        "bluesky",
        "instagram",
    ] {
        for i in 0..3 {
            let (id, external) = if platform == "bluesky" {
                // Signed in with an app password; the fake knows the account by its DID.
                stack.connect_bluesky(&t, "chaos-").await
            } else if platform == "instagram" {
                let external = instagram::instagram_id();
                (
                    stack.connect_mapped(&t, platform, &external).await,
                    external,
                )
            } else {
                let external = unique(&format!("chaos-{platform}-"));
                (
                    stack.connect_mapped(&t, platform, &external).await,
                    external,
                )
            };
            let mut rules = vec![
                json!({"status": 429, "retry_after": 1, "rate": 0.1}),
                json!({"status": 503, "rate": 0.1}),
                json!({"latency_ms": 400, "rate": 0.1}),
                json!({"ambiguous": true, "rate": 0.05}),
            ];
            if i == 0 {
                // The platform refuses some posts for good: they end failed, with its reason.
                rules.push(json!({"status": 400, "message": "chaos: refused", "rate": 0.1}));
            }
            for (seed, mut rule) in rules.into_iter().enumerate() {
                rule["platform"] = json!(platform);
                rule["account"] = json!(external);
                rule["seed"] = json!(seed);
                stack.fault(rule).await;
            }
            accounts.push((platform, external, id));
        }
    }

    let schedule = async {
        let mut posts = Vec::new();
        for i in 0..POSTS {
            let (platform, external, account) = &accounts[i % accounts.len()];
            let text = format!("chaos {i} {}", unique(""));
            let post = match *platform {
                "instagram" => stack.schedule_with_media(&t, account, &text, &jpeg).await,
                _ => stack.schedule(&t, account, &text, 0).await,
            };
            posts.push((
                *platform,
                external.clone(),
                text,
                post["id"].as_str().unwrap().to_owned(),
            ));
        }
        posts
    };
    // Meanwhile: kill the publisher in the middle of a batch, twice.
    let killer = async {
        let mut killed = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while killed.len() < 2 && Instant::now() < deadline {
            let k = stack.kill("publisher", true).await;
            if !k.is_empty() {
                killed.push(k);
                tokio::time::sleep(Duration::from_secs(5)).await;
            } else {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        killed
    };
    let (posts, killed) = tokio::join!(schedule, killer);
    assert!(
        !killed.is_empty(),
        "the publisher was never caught mid-batch"
    );

    // Every variant settles: published, or failed with a reason.
    let settled = stack
        .wait_for(
            Duration::from_secs(600),
            "every variant to settle",
            || async {
                let mut all = HashMap::new();
                let mut cursor: Option<String> = None;
                loop {
                    let path = match &cursor {
                        Some(c) => format!("/v1/posts?limit=100&cursor={c}"),
                        None => "/v1/posts?limit=100".to_owned(),
                    };
                    let (s, _, v) = stack.get(&path, &t).await;
                    assert_eq!(s, StatusCode::OK, "{v}");
                    for p in v["items"].as_array().unwrap() {
                        all.insert(
                            p["id"].as_str().unwrap().to_owned(),
                            p["variants"][0].clone(),
                        );
                    }
                    match v["next_cursor"].as_str() {
                        Some(c) => cursor = Some(c.to_owned()),
                        None => break,
                    }
                }
                let done = all.len() == POSTS
                    && all
                        .values()
                        .all(|v| matches!(v["status"].as_str(), Some("published" | "failed")));
                done.then_some(all)
            },
        )
        .await;

    let mut on_platform: HashMap<(String, String), Vec<Value>> = HashMap::new();
    for (platform, external, _) in &accounts {
        on_platform.insert(
            (platform.to_string(), external.clone()),
            stack.fake_posts(platform, external).await,
        );
    }
    let (mut published, mut failed) = (0, 0);
    for (platform, external, text, id) in &posts {
        let v = &settled[id];
        let copies: Vec<&Value> = on_platform[&(platform.to_string(), external.clone())]
            .iter()
            .filter(|p| p["text"].as_str() == Some(text.as_str()))
            .collect();
        match v["status"].as_str() {
            Some("published") => {
                published += 1;
                assert_eq!(
                    copies.len(),
                    1,
                    "{platform}: exactly one post for {id}: {copies:?}"
                );
                assert_eq!(v["platform_post_id"], copies[0]["id"], "{id}");
            }
            _ => {
                failed += 1;
                assert!(copies.is_empty(), "{id} failed but was posted: {copies:?}");
                let reason = v["last_error"]["message"].as_str().unwrap_or_default();
                assert!(!reason.is_empty(), "{id} failed without a reason: {v}");
            }
        }
    }
    assert_eq!(published + failed, POSTS);
    assert!(
        published > POSTS / 2,
        "published {published}, failed {failed}"
    );
    println!(
        "chaos: published {published}, failed {failed}, publisher kills {}",
        killed.len()
    );
}

/// An opted-in contact named Ada with this number and tag, created through the API.
async fn opted_in_contact(stack: &Stack, t: &Tenant, phone: &str, tag: &str) {
    let body = json!({"phone": phone, "name": "Ada", "tags": [tag],
                      "consent": {"status": "opted_in", "source": "web_form"}});
    let (s, v) = stack
        .send(Method::POST, "/v1/contacts", t, Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

/// An operator's grant of `credits` through the CLI, under a fresh key.
fn grant_credits(stack: &Stack, t: &Tenant, credits: u32, reason: &str) {
    let credits = credits.to_string();
    stack.cli(&[
        "wallet",
        "grant",
        "--tenant",
        &t.id,
        "--credits",
        &credits,
        "--reason",
        reason,
        "--key",
        &unique("grant-"),
    ]);
}

mod campaigns;
mod connect;
mod console;
mod contacts;
mod drafts;
mod health;
pub(crate) mod instagram;
mod media;
mod offboarding;
mod operator;
mod options;
mod post_imports;
mod reference;
mod tenant_safety;
mod threads;
mod tokens;
mod unpublish;
mod videos;
mod wallet;
mod webhooks;
