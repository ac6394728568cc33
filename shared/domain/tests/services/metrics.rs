//! What the publish path records through the `metrics` facade (each function's recorder
//! writes it as CloudWatch EMF): outcomes by class, deferrals by reason, lateness against
//! `scheduled_at`, attempts.

use super::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// A recorded metric: its name, its labels sorted, its value.
type Seen = (String, Vec<(String, String)>, DebugValue);

/// What was recorded since the last look (a look drains counters and histograms), as
/// (name, sorted labels) -> value.
fn look(snapshotter: &Snapshotter) -> Vec<Seen> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            (key.name().to_owned(), labels, value)
        })
        .collect()
}

fn find<'a>(seen: &'a [Seen], name: &str, labels: &[(&str, &str)]) -> Option<&'a DebugValue> {
    let mut wanted: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    wanted.sort();
    seen.iter()
        .find(|(n, l, _)| n == name && *l == wanted)
        .map(|(.., v)| v)
}

#[tokio::test]
async fn publishing_records_its_outcome_deferrals_lateness_and_attempts() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recording = ::metrics::set_default_local_recorder(&recorder);
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    w.store
        .put_crisis(&Crisis {
            tenant_id: post.tenant_id.clone(),
            platforms: vec![],
            reason: "storm".into(),
            started_by: ApiKeyId("key_1".into()),
            started_at: w.clock.now(),
            expires_at: w.clock.now() + time::Duration::hours(1),
        })
        .await
        .unwrap();
    let Disposition::Defer { copy, .. } = w.deliver(&m, 1).await else {
        panic!("a paused variant is deferred")
    };
    let seen = look(&snapshotter);
    let paused = [("platform", "x"), ("reason", "paused")];
    assert_eq!(
        find(&seen, "publish.deferred", &paused),
        Some(&DebugValue::Counter(1))
    );
    assert_eq!(find(&seen, "publish.outcome", &[]), None, "no outcome yet");

    w.store.delete_crisis(&post.tenant_id).await.unwrap();
    w.clock.advance(time::Duration::seconds(90));
    assert_eq!(
        w.deliver(&copy, 1).await,
        Disposition::Done(Done::Published)
    );
    let seen = look(&snapshotter);
    let published = [
        ("platform", "x"),
        ("outcome", "published"),
        ("error", "none"),
    ];
    assert_eq!(
        find(&seen, "publish.outcome", &published),
        Some(&DebugValue::Counter(1))
    );
    let histogram = |name| match find(&seen, name, &[("platform", "x")]) {
        Some(DebugValue::Histogram(values)) => {
            values.iter().map(|v| v.into_inner()).collect::<Vec<f64>>()
        }
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(
        histogram("publish.lateness_ms"),
        vec![90_000.0],
        "published 90 s after it was due"
    );
    assert_eq!(
        histogram("publish.attempts"),
        vec![1.0],
        "the pause cost no attempt"
    );

    // A duplicate delivery records no second outcome.
    assert_eq!(
        w.deliver(&copy, 2).await,
        Disposition::Done(Done::Duplicate)
    );
    let seen = look(&snapshotter);
    assert!(
        matches!(
            find(&seen, "publish.outcome", &published),
            None | Some(DebugValue::Counter(0))
        ),
        "a look drains counters, so anything here is new"
    );
}
