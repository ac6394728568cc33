//! `GET /v1/metrics` for the operator: OpenMetrics text for Prometheus, the gauges that can be
//! read on demand. They are the operator's health checks' measurements (one read of each
//! dependency per scrape, each bounded in time), named as Prometheus users expect, plus each
//! check's status (0 pass, 1 warn, 2 fail). The per-event counters (publishes, deferrals,
//! requests) are CloudWatch metrics from every function (`herald_domain::metrics`): a
//! scrape of one API instance could not see them.

use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use herald_domain::health::{Audience, Check, Observed, Status};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;
type Gauges = Family<Labels, Gauge<f64, AtomicU64>>;

/// Where a check's measurement goes: the metric's name, help, unit and the label naming the
/// component.
struct Gauged {
    check: &'static str,
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    label: &'static str,
}

const GAUGED: [Gauged; 10] = [
    Gauged {
        check: "sqs:depth",
        name: "queue_messages",
        help: "Messages waiting in a queue (visible and delayed)",
        unit: None,
        label: "queue",
    },
    Gauged {
        check: "sqs:oldestMessageAge",
        name: "queue_oldest_message_age",
        help: "Age of a queue's oldest message (CloudWatch, last 5 minutes)",
        unit: Some(Unit::Seconds),
        label: "queue",
    },
    Gauged {
        check: "deadLetters:count",
        name: "dead_letters",
        help: "Messages waiting in a queue's dead-letter queue",
        unit: None,
        label: "queue",
    },
    Gauged {
        check: "deadLetters:pending",
        name: "dead_letters_pending",
        help: "Dead letters moved out of a queue's DLQ and waiting for someone (records)",
        unit: None,
        label: "queue",
    },
    Gauged {
        check: "heartbeat:age",
        name: "heartbeat_age",
        help: "Time since a scheduled function last finished a run",
        unit: Some(Unit::Seconds),
        label: "function",
    },
    Gauged {
        check: "dynamodb:responseTime",
        name: "dynamodb_response_time_ms",
        help: "One read of a table",
        unit: None,
        label: "table",
    },
    Gauged {
        check: "accounts:needsReauth",
        name: "accounts_needing_reauth",
        help: "Accounts whose token was refused, every tenant's",
        unit: None,
        label: "scope",
    },
    Gauged {
        check: "accounts:total",
        name: "accounts",
        help: "Connected accounts, every tenant's",
        unit: None,
        label: "scope",
    },
    Gauged {
        check: "tokens:expiringWithin24h",
        name: "tokens_expiring_within_24h",
        help: "Active accounts whose token expires within 24 hours",
        unit: None,
        label: "scope",
    },
    Gauged {
        check: "platform:appBlock",
        name: "platform_blocked_until",
        help: "When a platform's app-wide block ends (Unix time; absent: none)",
        unit: Some(Unit::Seconds),
        label: "platform",
    },
];

/// The operator's gauges in OpenMetrics text.
#[utoipa::path(get, path = "/v1/metrics", tag = "meta",
    responses((status = 200, content_type = "application/openmetrics-text", body = String, description = "OpenMetrics text, ending `# EOF`"),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let report = state.health.report(&Audience::Operator).await;
    let mut registry = Registry::with_prefix("herald");
    let status = Gauges::default();
    registry.register(
        "check_status",
        "Each health check's status: 0 pass, 1 warn, 2 fail",
        status.clone(),
    );
    let families: Vec<(&Gauged, Gauges)> = GAUGED
        .iter()
        .map(|g| {
            let family = Gauges::default();
            match &g.unit {
                Some(unit) => {
                    registry.register_with_unit(g.name, g.help, unit.clone(), family.clone())
                }
                None => registry.register(g.name, g.help, family.clone()),
            }
            (g, family)
        })
        .collect();
    for check in &report.checks {
        let level = match check.status {
            Status::Pass => 0.0,
            Status::Warn => 1.0,
            Status::Fail => 2.0,
        };
        status
            .get_or_create(&vec![
                ("check".into(), check.name.clone()),
                ("component".into(), check.component_id.clone()),
            ])
            .set(level);
        if let Some((g, family)) = families.iter().find(|(g, _)| g.check == check.name)
            && let Some(value) = value(check)
        {
            family
                .get_or_create(&vec![(g.label.into(), check.component_id.clone())])
                .set(value);
        }
    }
    let mut body = String::new();
    encode(&mut body, &registry).map_err(|e| ApiError::internal(&e))?;
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
    Ok(response)
}

fn value(check: &Check) -> Option<f64> {
    Some(match check.observed.as_ref()? {
        Observed::Count(n) => *n as f64,
        Observed::Millis(ms) => *ms as f64,
        Observed::Seconds(s) => *s as f64,
        Observed::Time(t) => t.unix_timestamp() as f64,
    })
}
