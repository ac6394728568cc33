//! Health probes of what only the adapters reach: the tables, the queues (their depth, the
//! oldest message's age from CloudWatch, the dead letters waiting), Secrets Manager and the
//! media bucket. Each answers a `fail` check when its dependency errs; the domain's
//! `HealthService` bounds each in time.

use crate::Lazy;
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use herald_domain::health::{Check, Observed, Probe, Status, Target};
use std::time::Instant;
use time::OffsetDateTime;

/// A call slower than this is a `warn`: every request waits for these.
const SLOW_MS: u64 = 1000;

fn timed(check: Check, started: Instant) -> Check {
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let check = check.observed(Observed::Millis(ms));
    if ms > SLOW_MS {
        check.status(Status::Warn, format!("answered in {ms} ms"))
    } else {
        check
    }
}

/// One table, read by key: a GetItem of a key nobody writes proves the table is there and
/// this function may read it, at the price of one read unit.
#[derive(Debug, Clone)]
pub struct TableProbe {
    pub client: Lazy<aws_sdk_dynamodb::Client>,
    pub table: String,
    /// How the operator knows it (`main`, `audit`, `idempotency`).
    pub label: &'static str,
    /// Whether the table's key has a sort key `sk` beside `pk`.
    pub sort_key: bool,
}

#[async_trait]
impl Probe for TableProbe {
    fn target(&self) -> Target {
        Target::new("dynamodb:responseTime", self.label, "datastore")
    }

    async fn check(&self, now: OffsetDateTime) -> Vec<Check> {
        let check = self.target().check(now);
        let started = Instant::now();
        let mut get = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S("HEALTH#probe".into()));
        if self.sort_key {
            get = get.key("sk", AttributeValue::S("HEALTH".into()));
        }
        vec![match get.send().await {
            Ok(_) => timed(check, started),
            Err(e) => check.failed(store_error(e)),
        }]
    }
}

/// A queue and its dead-letter queue: how many messages wait, how old the oldest is (from
/// CloudWatch's `ApproximateAgeOfOldestMessage`, the only place SQS tells it without
/// receiving, which would count against the messages' redrive), and how many dead letters
/// wait for an operator.
#[derive(Debug, Clone)]
pub struct QueueProbe {
    pub sqs: Lazy<aws_sdk_sqs::Client>,
    pub cloudwatch: Lazy<aws_sdk_cloudwatch::Client>,
    /// `publish`, `ingest`, `webhook`, `outbound`.
    pub label: &'static str,
    pub url: String,
    pub dead_letter_url: Option<String>,
    /// An oldest message older than these is a `warn`, a `fail`.
    pub age_warn: time::Duration,
    pub age_fail: time::Duration,
}

/// A queue's name is its URL's last segment.
fn queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

impl QueueProbe {
    async fn waiting(&self, url: &str) -> Result<u64, String> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| store_error(e).to_string())?;
        Ok(out
            .attributes()
            .into_iter()
            .flat_map(|attrs| attrs.values())
            .filter_map(|v| v.parse::<u64>().ok())
            .sum())
    }

    /// The largest age in the last five minutes, in seconds; `None` when CloudWatch has no
    /// datapoint (a queue that has been empty for hours stops reporting).
    async fn oldest_age(&self, now: OffsetDateTime) -> Result<Option<f64>, String> {
        use aws_sdk_cloudwatch::primitives::DateTime;
        use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
        let metric = Metric::builder()
            .namespace("AWS/SQS")
            .metric_name("ApproximateAgeOfOldestMessage")
            .dimensions(
                Dimension::builder()
                    .name("QueueName")
                    .value(queue_name(&self.url))
                    .build(),
            )
            .build();
        let query = MetricDataQuery::builder()
            .id("age")
            .metric_stat(
                MetricStat::builder()
                    .metric(metric)
                    .period(60)
                    .stat("Maximum")
                    .build(),
            )
            .build();
        let out = self
            .cloudwatch
            .get_metric_data()
            .metric_data_queries(query)
            .start_time(DateTime::from_secs(
                (now - time::Duration::minutes(5)).unix_timestamp(),
            ))
            .end_time(DateTime::from_secs(now.unix_timestamp() + 60))
            .send()
            .await
            .map_err(|e| store_error(e).to_string())?;
        Ok(out
            .metric_data_results()
            .iter()
            .flat_map(|r| r.values())
            .copied()
            .reduce(f64::max))
    }

    fn age_check(&self, now: OffsetDateTime, age: Result<Option<f64>, String>) -> Check {
        let check = Check::new("sqs:oldestMessageAge", self.label, "queue", now);
        let seconds = match age {
            Err(e) => return check.failed(format!("CloudWatch did not answer: {e}")),
            Ok(None) => return check,
            Ok(Some(seconds)) => seconds,
        };
        let age = time::Duration::seconds_f64(seconds);
        let check = check.observed(Observed::Seconds(age.whole_seconds()));
        let status = if age > self.age_fail {
            Status::Fail
        } else if age > self.age_warn {
            Status::Warn
        } else {
            return check;
        };
        check.status(
            status,
            format!(
                "the oldest message has waited {} s: the queue's consumer is behind or failing",
                age.whole_seconds()
            ),
        )
    }
}

#[async_trait]
impl Probe for QueueProbe {
    fn target(&self) -> Target {
        Target::new("sqs:depth", self.label, "queue")
    }

    async fn check(&self, now: OffsetDateTime) -> Vec<Check> {
        let dead = async {
            match &self.dead_letter_url {
                Some(url) => Some(self.waiting(url).await),
                None => None,
            }
        };
        let (depth, age, dead) =
            futures::join!(self.waiting(&self.url), self.oldest_age(now), dead);
        let depth_check = self.target().check(now);
        let mut checks = vec![
            match depth {
                Ok(n) => depth_check.observed(Observed::Count(n)),
                Err(e) => depth_check.failed(e),
            },
            self.age_check(now, age),
        ];
        if let Some(dead) = dead {
            let check = Check::new("deadLetters:count", self.label, "queue", now);
            checks.push(match dead {
                Err(e) => check.failed(e),
                Ok(0) => check.observed(Observed::Count(0)),
                Ok(n) => check.observed(Observed::Count(n)).status(
                    Status::Warn,
                    format!("{n} message(s) wait in the dead-letter queue: inspect, requeue or delete them"),
                ),
            });
        }
        checks
    }
}

/// Secrets Manager, by describing one secret every function needs (no value is read).
#[derive(Debug, Clone)]
pub struct SecretProbe {
    pub client: Lazy<aws_sdk_secretsmanager::Client>,
    pub secret_id: String,
    /// How the operator knows it (`token-encryption-key`).
    pub label: &'static str,
}

#[async_trait]
impl Probe for SecretProbe {
    fn target(&self) -> Target {
        Target::new("secretsmanager:responseTime", self.label, "datastore")
    }

    async fn check(&self, now: OffsetDateTime) -> Vec<Check> {
        let check = self.target().check(now);
        let started = Instant::now();
        vec![match self
            .client
            .describe_secret()
            .secret_id(&self.secret_id)
            .send()
            .await
        {
            Ok(out) if out.deleted_date().is_some() => {
                check.failed("the secret is scheduled for deletion")
            }
            Ok(_) => timed(check, started),
            Err(e) => check.failed(store_error(e)),
        }]
    }
}

/// The media bucket, by HeadBucket.
#[derive(Debug, Clone)]
pub struct BucketProbe {
    pub client: Lazy<aws_sdk_s3::Client>,
    pub bucket: String,
}

#[async_trait]
impl Probe for BucketProbe {
    fn target(&self) -> Target {
        Target::new("s3:responseTime", "media", "datastore")
    }

    async fn check(&self, now: OffsetDateTime) -> Vec<Check> {
        let check = self.target().check(now);
        let started = Instant::now();
        vec![
            match self.client.head_bucket().bucket(&self.bucket).send().await {
                Ok(_) => timed(check, started),
                Err(e) => check.failed(store_error(e)),
            },
        ]
    }
}
