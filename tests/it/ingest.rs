//! Ingestion end to end on the local stack (`make up`): the poller on its emulated schedule,
//! the ingester fed by the emulated SQS event source, the fake platforms' timelines over
//! HTTP, the API's review items.

use crate::support::*;
use aws_sdk_dynamodb::types::AttributeValue;
use herald_tests::repo_root;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

impl Stack {
    /// Runs one job through the ingester function, invoked directly; answers its report.
    /// A dry run takes no lease, so one that another test's kill ended is simply run again.
    async fn run_job(&self, t: &Tenant, account: &str, stream: &str, dry_run: bool) -> Value {
        let mut last = String::new();
        for _ in 0..3 {
            match self.try_job(t, account, stream, dry_run).await {
                Ok(report) => return report,
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        panic!("the ingester failed three times: {last}")
    }

    /// As [`Self::run_job`], the function's error as `Err` (another test killing the
    /// ingester mid-run ends this invocation too).
    async fn try_job(
        &self,
        t: &Tenant,
        account: &str,
        stream: &str,
        dry_run: bool,
    ) -> Result<Value, String> {
        let res = self
            .http
            .post(format!(
                "{}/2015-03-31/functions/ingester/invocations",
                self.url("HERALD_RUNTIME_URL")
            ))
            .json(&json!({"tenant_id": t.id, "account_id": account, "stream": stream, "dry_run": dry_run}))
            .send()
            .await
            .unwrap();
        let failed = res.headers().get("x-amz-function-error").is_some();
        let body: Value = res.json().await.unwrap();
        if failed {
            Err(body.to_string())
        } else {
            Ok(body)
        }
    }

    async fn query(&self, pk: &str) -> Vec<Item> {
        let ddb = self.ddb().await;
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let out = ddb
                .query()
                .table_name(self.url("HERALD_TABLE"))
                .key_condition_expression("pk = :p")
                .expression_attribute_values(":p", AttributeValue::S(pk.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            all.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => return all,
            }
        }
    }

    /// Stored items of a stream: platform id -> text.
    async fn stored(&self, t: &Tenant, stream: &str) -> BTreeMap<String, String> {
        self.query(&format!("INGEST#{}#{stream}", t.id))
            .await
            .iter()
            .map(|i| {
                (
                    i["platform_id"].as_s().unwrap().clone(),
                    i["text"].as_s().unwrap().clone(),
                )
            })
            .collect()
    }

    /// Stored insights of a stream: platform id -> value.
    async fn stored_values(&self, t: &Tenant, stream: &str) -> BTreeMap<String, i64> {
        self.query(&format!("INGEST#{}#{stream}", t.id))
            .await
            .iter()
            .map(|i| (i["platform_id"].as_s().unwrap().clone(), num(i, "value")))
            .collect()
    }

    async fn stream_state(&self, t: &Tenant, stream: &str) -> Option<Item> {
        self.ddb()
            .await
            .get_item()
            .table_name(self.url("HERALD_TABLE"))
            .key("pk", AttributeValue::S(format!("TENANT#{}", t.id)))
            .key("sk", AttributeValue::S(format!("STREAM#{stream}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }

    /// Every review item through the API, following the cursor.
    async fn review_items(&self, t: &Tenant) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/review-items?limit=2&cursor={c}"),
                None => "/v1/review-items?limit=2".to_owned(),
            };
            let (s, _, v) = self.get(&path, t).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            all.extend(v["items"].as_array().unwrap().iter().cloned());
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return all,
            }
        }
    }

    /// Everything of the tenant in the table (its partition and its streams' items).
    async fn tenant_items(&self, t: &Tenant, streams: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = self
            .query(&format!("TENANT#{}", t.id))
            .await
            .iter()
            .map(|i| format!("{:?}", i.iter().collect::<BTreeMap<_, _>>()))
            .collect();
        for s in streams {
            all.extend(
                self.query(&format!("INGEST#{}#{s}", t.id))
                    .await
                    .iter()
                    .map(|i| format!("{:?}", i.iter().collect::<BTreeMap<_, _>>())),
            );
        }
        all.sort();
        all
    }
}

/// A local function's JSON log lines (`.herald/logs/<function>.log`) that `keep` accepts.
fn log_lines(function: &str, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    let path = repo_root().join(format!(".herald/logs/{function}.log"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| keep(l))
        .collect()
}

fn num(item: &Item, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The fake's X timeline for `user`: (valid id -> text, malformed ids).
async fn fake_timeline(stack: &Stack, user: &str) -> (BTreeMap<String, String>, BTreeSet<String>) {
    fake_posts(stack, "x", user).await
}

/// The fake's timeline of a `platform` account: (valid id -> text, malformed ids).
async fn fake_posts(
    stack: &Stack,
    platform: &str,
    account: &str,
) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let v = stack
        .fake_get(&format!(
            "/_admin/timeline?platform={platform}&account={account}"
        ))
        .await;
    let mut valid = BTreeMap::new();
    let mut bad = BTreeSet::new();
    for i in v["items"].as_array().unwrap() {
        let id = i["id"].as_str().unwrap().to_owned();
        if i["malformed"].is_null() {
            valid.insert(id, i["text"].as_str().unwrap().to_owned());
        } else {
            bad.insert(id);
        }
    }
    (valid, bad)
}

/// The fake's insights of a Page: (valid id -> value, malformed values' ids, those without
/// an end time having none).
async fn fake_insights(stack: &Stack, page: &str) -> (BTreeMap<String, i64>, Vec<Option<String>>) {
    let v = stack
        .fake_get(&format!("/_admin/insights?page={page}"))
        .await;
    let mut valid = BTreeMap::new();
    let mut bad = Vec::new();
    for i in v["values"].as_array().unwrap() {
        let id = i["id"].as_str().unwrap().to_owned();
        match i["malformed"].as_str() {
            None => {
                valid.insert(id, i["value"].as_i64().unwrap());
            }
            Some("missing_end_time") => bad.push(None),
            Some(_) => bad.push(Some(id)),
        }
    }
    (valid, bad)
}

/// Runs `stream` once more through the ingester, retrying while a queued poller job holds it
/// or when the invocation died (the killed-ingester test kills every run in flight; a run
/// killed after taking the lease leaves it to expire).
async fn run_again(stack: &Stack, t: &Tenant, account: &str, stream: &str) -> Value {
    stack
        .wait_for(Duration::from_secs(120), "a run of its own", || async {
            match stack.try_job(t, account, stream, false).await {
                Ok(report) => (report["outcome"]["kind"] != json!("leased")).then_some(report),
                Err(e) => {
                    eprintln!("an ingester run died ({e}); again");
                    None
                }
            }
        })
        .await
}

/// Facebook Page posts and insights and LinkedIn organisation posts, each over several
/// pages with malformed items: the stored items equal the fake's valid ones exactly, the
/// malformed ones are review items, and a later run reads only what is new.
#[tokio::test]
async fn facebook_posts_and_insights_and_linkedin_posts_are_ingested_exactly() {
    let stack = Stack::running();
    let t = stack.tenant();
    let page = unique("page");
    let org = unique("org");
    let (fb, insights, li) = (
        format!("fb:{page}"),
        format!("fb-insights:{page}"),
        format!("li:{org}"),
    );
    stack
        .fake(
            "/_admin/timeline",
            json!({"platform": "facebook", "account": page, "count": 120, "text_prefix": "fb",
                   "malformed": {"7": "text_not_string", "60": "bad_time"}}),
        )
        .await;
    stack
        .fake(
            "/_admin/insights",
            json!({"page": page, "days": 20, "malformed": {"3": "value_not_number", "11": "missing_end_time", "12": "negative_value"}}),
        )
        .await;
    stack
        .fake(
            "/_admin/timeline",
            json!({"platform": "linkedin", "account": org, "count": 70, "text_prefix": "li",
                   "malformed": {"10": "text_not_string"}}),
        )
        .await;
    let fb_account = stack.connect_mapped(&t, "facebook", &page).await;
    let li_account = stack.connect_mapped(&t, "linkedin", &org).await;

    let (fb_valid, fb_bad) = fake_posts(&stack, "facebook", &page).await;
    let (li_valid, li_bad) = fake_posts(&stack, "linkedin", &org).await;
    let (values, bad_values) = fake_insights(&stack, &page).await;
    assert_eq!(
        (fb_valid.len(), li_valid.len(), values.len()),
        (118, 69, 37)
    );
    for stream in [&fb, &insights, &li] {
        stack
            .wait_for(Duration::from_secs(120), stream, || async {
                let state = stack.stream_state(&t, stream).await?;
                (state.contains_key("since")
                    && !state.contains_key("cursor")
                    && !state.contains_key("lease_owner"))
                .then_some(())
            })
            .await;
    }
    assert_eq!(stack.stored(&t, &fb).await, fb_valid);
    assert_eq!(stack.stored(&t, &li).await, li_valid);
    assert_eq!(stack.stored_values(&t, &insights).await, values);
    let reviews = stack.review_items(&t).await;
    let reviewed = |stream: &str| -> Vec<Option<String>> {
        let mut ids: Vec<Option<String>> = reviews
            .iter()
            .filter(|r| r["stream"] == json!(stream))
            .map(|r| r["platform_id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        reviewed(&fb),
        fb_bad.iter().cloned().map(Some).collect::<Vec<_>>()
    );
    assert_eq!(
        reviewed(&li),
        li_bad.iter().cloned().map(Some).collect::<Vec<_>>()
    );
    let mut expected = bad_values.clone();
    expected.sort();
    assert_eq!(reviewed(&insights), expected);
    assert_eq!(reviews.len(), 6, "{reviews:?}");
    // 37 values stored once; any later run (a second job the poller queued before the first
    // took the lease, or one resuming after another test's kill) reads the last three days
    // (6 values) again.
    let state = stack.stream_state(&t, &insights).await.unwrap();
    let counted = num(&state, "processed");
    assert!(counted >= 37 && (counted - 37) % 6 == 0, "{state:?}");
    // The ingester's per-page metric lines (what the template's IngestItems* filters count)
    // add up to the same, even when another test's kill ended a run after its pages were
    // stored; they carry the poll run's correlation id, which the poller logged when sending.
    let pages = log_lines("ingester", |l| {
        l["metric"] == json!("ingest.page")
            && l["stream"] == json!(insights)
            && l["dry_run"] == json!(false)
    });
    let processed: i64 = pages.iter().map(|l| l["processed"].as_i64().unwrap()).sum();
    let failed: i64 = pages.iter().map(|l| l["failed"].as_i64().unwrap()).sum();
    assert_eq!((processed, failed), (counted, 3), "{pages:?}");
    assert_eq!(pages[0]["kind"], json!("fb-insights"));
    let correlation = pages[0]["span"]["correlation_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no correlation id: {}", pages[0]))
        .to_owned();
    assert!(correlation.starts_with("poll-"), "{correlation}");
    assert!(
        !log_lines("poller", |l| l["correlation_id"] == json!(correlation)).is_empty(),
        "the poller did not log {correlation}"
    );

    // New posts: the next run stops at the newest one already stored.
    stack
        .fake(
            "/_admin/timeline",
            json!({"platform": "facebook", "account": page, "count": 3, "text_prefix": "fb-new"}),
        )
        .await;
    stack
        .fake(
            "/_admin/timeline",
            json!({"platform": "linkedin", "account": org, "count": 2, "text_prefix": "li-new"}),
        )
        .await;
    for (account, stream) in [(&fb_account, &fb), (&li_account, &li)] {
        // One page, stopped at the newest stored post. (Its new posts may have been stored by
        // an earlier attempt that another test's kill ended; the stored items say.)
        let report = run_again(&stack, &t, account, stream).await;
        assert_eq!(report["outcome"]["kind"], json!("done"), "{report}");
        assert_eq!(report["pages"], json!(1), "{report}");
    }
    assert_eq!(
        stack.stored(&t, &fb).await,
        fake_posts(&stack, "facebook", &page).await.0
    );
    assert_eq!(
        stack.stored(&t, &li).await,
        fake_posts(&stack, "linkedin", &org).await.0
    );
    // Insights: each run reads the last three days again (Meta revises them); a revised
    // value overwrites its item, nothing is added.
    stack
        .fake(
            "/_admin/insights",
            json!({"page": page, "days": 20, "malformed": {"3": "value_not_number", "11": "missing_end_time", "12": "negative_value"}, "revise_last": 500}),
        )
        .await;
    let report = run_again(&stack, &t, &fb_account, &insights).await;
    assert_eq!(report["outcome"]["kind"], json!("done"), "{report}");
    assert_eq!(report["pages"], json!(1), "{report}");
    assert_eq!(report["counters"]["processed"], json!(6), "{report}");
    let (revised, _) = fake_insights(&stack, &page).await;
    assert_ne!(revised, values, "the fake revised the last day");
    assert_eq!(stack.stored_values(&t, &insights).await, revised);
}

/// A Mastodon account's statuses (40 a page at most) and an Instagram account's media (by
/// `after` cursors), with malformed ones: the stored items are the fake's valid ones, their
/// text as written (Mastodon's read back from its HTML); the malformed ones are review items;
/// a later run reads only what is new.
#[tokio::test]
async fn mastodon_statuses_and_instagram_media_are_ingested_as_their_text() {
    let stack = Stack::running();
    let t = stack.tenant();
    for (platform, prefix, user) in [
        ("mastodon", "md", unique("md")),
        ("instagram", "ig", crate::e2e::instagram::instagram_id()),
    ] {
        let stream = format!("{prefix}:{user}");
        stack
            .fake(
                "/_admin/timeline",
                json!({"platform": platform, "account": user, "count": 90, "text_prefix": "toot & co",
                       "malformed": {"5": "text_not_string", "50": "bad_time"}}),
            )
            .await;
        let account = stack.connect_mapped(&t, platform, &user).await;
        let (valid, bad) = fake_posts(&stack, platform, &user).await;
        assert_eq!(valid.len(), 88);
        stack
            .wait_for(Duration::from_secs(120), &stream, || async {
                let state = stack.stream_state(&t, &stream).await?;
                (state.contains_key("since")
                    && !state.contains_key("cursor")
                    && !state.contains_key("lease_owner"))
                .then_some(())
            })
            .await;
        let stored = stack.stored(&t, &stream).await;
        assert_eq!(
            stored, valid,
            "{platform}: the text as written (not Mastodon's HTML)"
        );
        assert!(stored.values().all(|text| text.starts_with("toot & co ")));
        let mut reviewed: Vec<String> = stack
            .review_items(&t)
            .await
            .iter()
            .filter(|r| r["stream"] == json!(stream))
            .filter_map(|r| r["platform_id"].as_str().map(str::to_owned))
            .collect();
        reviewed.sort();
        assert_eq!(reviewed, bad.into_iter().collect::<Vec<_>>(), "{platform}");
        stack
            .fake(
                "/_admin/timeline",
                json!({"platform": platform, "account": user, "count": 2, "text_prefix": "new"}),
            )
            .await;
        let report = run_again(&stack, &t, &account, &stream).await;
        assert_eq!(report["outcome"]["kind"], json!("done"), "{report}");
        assert_eq!(report["pages"], json!(1), "{report}");
        assert_eq!(
            stack.stored(&t, &stream).await,
            fake_posts(&stack, platform, &user).await.0
        );
    }
}

/// Multi-page ingestion with malformed items, a 429 in the middle of a run and the ingester
/// killed mid-stream: the stored items equal the fake's valid items exactly, and the
/// malformed ones are review items.
#[tokio::test]
async fn a_timeline_is_ingested_exactly_through_a_429_malformed_items_and_a_killed_ingester() {
    let stack = Stack::running();
    let t = stack.tenant();
    let user = unique("ingest-");
    let stream = format!("x:{user}");
    stack
        .fake(
            "/_admin/timeline",
            json!({"platform": "x", "account": user, "count": 400, "text_prefix": "post",
                   "malformed": {"5": "missing_text", "77": "bad_time", "150": "text_not_string", "333": "missing_text"}}),
        )
        .await;
    // Slow pages, so a run lasts long enough to be interrupted.
    let slow = json!({"platform": "x", "account": user, "endpoints": "all", "latency_ms": 600});
    let latency = stack.fake("/_admin/faults", slow.clone()).await;
    stack.connect_mapped(&t, "x", &user).await;

    // The poller finds the new account; the first page lands.
    stack
        .wait_for(Duration::from_secs(60), "the first page", || async {
            let s = stack.stream_state(&t, &stream).await?;
            s.contains_key("cursor").then_some(())
        })
        .await;
    // A 429 in the middle of the run: the stream is deferred until its reset. (The first
    // matching rule applies: the 429 goes before the latency.)
    let res = stack
        .http
        .delete(format!(
            "{}/_admin/faults/{}",
            stack.url("FAKE_PLATFORMS_URL"),
            latency["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    stack
        .fake(
            "/_admin/faults",
            json!({"platform": "x", "account": user, "endpoints": "all", "status": 429, "retry_after": 3, "count": 1}),
        )
        .await;
    stack.fake("/_admin/faults", slow).await;
    let deferred = stack
        .wait_for(
            Duration::from_secs(60),
            "the 429 to defer the stream",
            || async {
                let s = stack.stream_state(&t, &stream).await?;
                (num(&s, "rate_limited") >= 1).then_some(s)
            },
        )
        .await;
    assert!(deferred.contains_key("deferred_until"), "{deferred:?}");
    let partial = stack.stored(&t, &stream).await.len();
    assert!(
        partial > 0 && partial < 396,
        "{partial} stored before the 429"
    );

    // After the reset the poller sends the stream again: once that run has stored a page,
    // kill the ingester in the middle of its next one.
    stack
        .wait_for(
            Duration::from_secs(60),
            "the resumed run's first page",
            || async { (stack.stored(&t, &stream).await.len() > partial).then_some(()) },
        )
        .await;
    let killed = stack
        .kill_mid_run("ingester", false, "the ingester to be caught mid-run")
        .await;
    let after_kill = stack.stored(&t, &stream).await.len();
    assert!(after_kill < 396, "the run had finished before the kill");
    // The dead run's lease keeps every other worker off the stream until it expires.
    let held = stack.stream_state(&t, &stream).await.unwrap();
    assert!(held.contains_key("lease_owner"), "{held:?}");
    assert!(held.contains_key("cursor"), "{held:?}");

    // The lease runs out, the poller resends, the run resumes from the checkpoint.
    let (valid, malformed) = fake_timeline(&stack, &user).await;
    assert_eq!((valid.len(), malformed.len()), (396, 4));
    let stored = stack
        .wait_for(
            Duration::from_secs(180),
            "every item to be stored",
            || async {
                let s = stack.stored(&t, &stream).await;
                let state = stack.stream_state(&t, &stream).await?;
                (s.len() >= valid.len() && !state.contains_key("cursor")).then_some(s)
            },
        )
        .await;
    assert_eq!(stored, valid, "stored items differ from the fake's");
    let reviews = stack.review_items(&t).await;
    let reviewed: BTreeSet<String> = reviews
        .iter()
        .map(|r| r["platform_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reviewed, malformed);
    assert_eq!(reviews.len(), 4, "a review item twice: {reviews:?}");
    for r in &reviews {
        assert_eq!(r["stream"], json!(stream));
        assert!(!r["reason"].as_str().unwrap().is_empty());
    }
    let state = stack.stream_state(&t, &stream).await.unwrap();
    assert_eq!(num(&state, "processed"), 396, "{state:?}");
    assert_eq!(
        state["since"].as_s().unwrap(),
        valid.keys().chain(malformed.iter()).max().unwrap()
    );
    assert!(!state.contains_key("lease_owner"));
    println!(
        "ingest e2e: kill {killed:?}, {partial} stored before the 429, {after_kill} at the kill"
    );
}

/// A dry run (one job invoked directly) fetches and validates the new items, says what it
/// would write, and leaves the tenant's items in the table exactly as they were.
#[tokio::test]
async fn a_dry_run_reports_what_it_would_write_and_writes_nothing() {
    let stack = Stack::running();
    let t = stack.tenant();
    let user = unique("dry-");
    let stream = format!("x:{user}");
    stack
        .fake(
            "/_admin/timeline",
            json!({"platform": "x", "account": user, "count": 30, "malformed": {"3": "bad_time"}}),
        )
        .await;
    let account = stack.connect_mapped(&t, "x", &user).await;
    stack
        .wait_for(Duration::from_secs(120), "the first run", || async {
            let s = stack.stored(&t, &stream).await;
            let state = stack.stream_state(&t, &stream).await?;
            (s.len() == 29 && !state.contains_key("lease_owner")).then_some(())
        })
        .await;
    // New items; the stream is not due for minutes, so only the dry run reads them.
    let added = stack
        .fake(
            "/_admin/timeline",
            json!({"platform": "x", "account": user, "count": 12, "malformed": {"0": "missing_text"}}),
        )
        .await;
    let before = stack.tenant_items(&t, &[&stream]).await;
    let report = stack.run_job(&t, &account, &stream, true).await;
    assert_eq!(report["dry_run"], json!(true), "{report}");
    assert_eq!(report["outcome"]["kind"], json!("done"), "{report}");
    let added: Vec<&str> = added["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    let mut would: Vec<&str> = report["would_store"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    would.sort();
    let mut expected: Vec<&str> = added[1..].to_vec();
    expected.sort();
    assert_eq!(would, expected);
    assert_eq!(
        report["would_review"],
        json!([format!("{stream}#{}", added[0])])
    );
    let after = stack.tenant_items(&t, &[&stream]).await;
    assert_eq!(before, after, "the dry run changed the table");
    assert_eq!(stack.stored(&t, &stream).await.len(), 29);
}

/// An admin switches a stream to dry run through the API: a job then writes nothing, and
/// after the CLI switches it back the next job stores. The listing shows the streams; other
/// roles, unknown streams and bad bodies are refused; each change is audited.
#[tokio::test]
async fn a_stream_switched_to_dry_run_writes_nothing_until_switched_back() {
    let stack = Stack::running();
    let t = stack.tenant();
    let user = unique("switch-");
    let stream = format!("x:{user}");
    stack
        .fake(
            "/_admin/timeline",
            json!({"platform": "x", "account": user, "count": 20}),
        )
        .await;
    let account = stack.connect_mapped(&t, "x", &user).await;
    stack
        .wait_for(Duration::from_secs(120), "the first run", || async {
            let state = stack.stream_state(&t, &stream).await?;
            (stack.stored(&t, &stream).await.len() == 20
                && state.contains_key("since")
                && !state.contains_key("lease_owner"))
            .then_some(())
        })
        .await;
    let (s, _, listed) = stack.get("/v1/streams", &t).await;
    assert_eq!(s, StatusCode::OK, "{listed}");
    let mine = &listed["items"].as_array().unwrap()[0];
    assert_eq!(mine["key"], json!(stream), "{listed}");
    assert_eq!(mine["dry_run"], json!(false));
    assert_eq!(mine["counters"]["processed"], json!(20));
    assert!(mine["since"].is_string(), "{mine}");

    let path = format!("/v1/streams/{stream}");
    let (s, _, v) = stack.patch(&path, &t.key, json!({"dry_run": true})).await;
    assert_eq!((s, &v["dry_run"]), (StatusCode::OK, &json!(true)), "{v}");
    stack
        .fake(
            "/_admin/timeline",
            json!({"platform": "x", "account": user, "count": 5}),
        )
        .await;
    // A job as the poller sent it before the switch: it reads only.
    let report = run_again(&stack, &t, &account, &stream).await;
    assert_eq!(report["dry_run"], json!(true), "{report}");
    assert_eq!(
        report["would_store"].as_array().unwrap().len(),
        5,
        "{report}"
    );
    assert_eq!(stack.stored(&t, &stream).await.len(), 20);
    let state = stack.stream_state(&t, &stream).await.unwrap();
    assert!(!state.contains_key("lease_owner"), "{state:?}");

    // The CLI lists it and switches it off; the next job stores.
    let lines = stack.cli(&["streams", "list", "--tenant", &t.id]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["dry_run"], json!(true));
    let off = stack.cli(&["streams", "dry-run", "--tenant", &t.id, &stream, "off"]);
    assert_eq!(off[0]["dry_run"], json!(false));
    let report = run_again(&stack, &t, &account, &stream).await;
    assert_eq!(report["dry_run"], json!(false), "{report}");
    assert_eq!(stack.stored(&t, &stream).await.len(), 25, "{report}");

    // Refusals change nothing.
    let editor = stack.cli(&["api-key", "create", "--tenant", &t.id, "--role", "editor"]);
    let editor_key = editor[0]["api_key"].as_str().unwrap();
    for (key, path, body, status) in [
        (
            editor_key,
            path.as_str(),
            json!({"dry_run": true}),
            StatusCode::FORBIDDEN,
        ),
        (
            t.key.as_str(),
            "/v1/streams/x:someone-else",
            json!({"dry_run": true}),
            StatusCode::NOT_FOUND,
        ),
        (
            t.key.as_str(),
            path.as_str(),
            json!({"dry_run": "yes"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            t.key.as_str(),
            path.as_str(),
            json!({"dry_run": true, "paused": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (s, content_type, v) = stack.patch(path, key, body.clone()).await;
        assert_eq!(s, status, "{path} {body}: {v}");
        assert!(is_problem(&content_type), "{content_type:?}");
    }
    let (_, _, listed) = stack.get("/v1/streams", &t).await;
    assert_eq!(listed["items"][0]["dry_run"], json!(false));
    let (s, _, audit) = stack
        .get(&format!("/v1/audit?entity=stream:{stream}"), &t)
        .await;
    assert_eq!(s, StatusCode::OK, "{audit}");
    let actions: Vec<(&str, &Value)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["action"].as_str().unwrap(), &r["new"]["dry_run"]))
        .collect();
    assert_eq!(
        actions,
        [
            ("stream.dry_run_set", &json!(false)),
            ("stream.dry_run_set", &json!(true))
        ],
        "newest first"
    );
}

/// Review items are the caller's tenant's only; bad queries get problem documents.
#[tokio::test]
async fn review_items_are_tenant_scoped_and_bad_queries_are_refused() {
    let stack = Stack::running();
    let t = stack.tenant();
    let other = stack.tenant();
    let user = unique("rev-");
    stack
        .fake(
            "/_admin/timeline",
            json!({"platform": "x", "account": user, "count": 6, "malformed": {"2": "missing_id"}}),
        )
        .await;
    stack.connect_mapped(&t, "x", &user).await;
    let items = stack
        .wait_for(Duration::from_secs(60), "the review item", || async {
            let items = stack.review_items(&t).await;
            (!items.is_empty()).then_some(items)
        })
        .await;
    assert_eq!(items.len(), 1);
    assert!(items[0]["platform_id"].is_null());
    assert!(
        items[0]["reason"]
            .as_str()
            .unwrap()
            .contains("`id` is missing")
    );
    assert!(items[0]["id"].as_str().unwrap().contains("#sha256:"));
    assert!(stack.review_items(&other).await.is_empty());
    for path in [
        "/v1/review-items?limit=0",
        "/v1/review-items?limit=500",
        "/v1/review-items?cursor=%%%",
        "/v1/review-items?color=blue",
    ] {
        let (s, content_type, v) = stack.get(path, &t).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert!(is_problem(&content_type), "{path}: {content_type:?}");
    }
}
