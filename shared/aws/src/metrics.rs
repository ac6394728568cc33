//! Metrics out of every function in CloudWatch's Embedded Metric Format: the recorder behind
//! the `metrics` facade (which the domain records through) is `metrics_cloudwatch_embedded`'s
//! collector, which writes one JSON document to stdout after each invocation; CloudWatch Logs
//! turns it into metrics, with no API call on the request path. Every metric carries the
//! `function` dimension; the first invocation of a process also counts `cold_start`.

use metrics_cloudwatch_embedded::{Builder, Collector};

/// The namespace when `HERALD_METRICS_NAMESPACE` names none (the template sets
/// `Herald/<stack>`, so two stacks in one account do not mix).
pub const DEFAULT_NAMESPACE: &str = "Herald";

/// Installs the process's recorder, once, for `function` (its dimension).
pub fn install(function: &'static str) -> Result<&'static Collector, lambda_runtime::Error> {
    let namespace = std::env::var("HERALD_METRICS_NAMESPACE")
        .ok()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    Builder::new()
        .cloudwatch_namespace(namespace)
        .with_dimension("function", function)
        .lambda_cold_start_metric("cold_start")
        .init()
        .map_err(|e| lambda_runtime::Error::from(format!("installing the metrics recorder: {e}")))
}
