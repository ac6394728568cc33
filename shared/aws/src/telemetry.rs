//! Structured JSON logs. Fields, not prose: `correlation_id` follows a post from the API
//! through the queue to the publisher. Never log tokens, keys, bodies or personal data.

/// The levels a deployment may log at (`HERALD_LOG_LEVEL`, the template's `LogLevel`). No
/// `trace`: there the Lambda runtime logs every raw event, with its bearer keys and tokens.
pub const LEVELS: [&str; 4] = ["error", "warn", "info", "debug"];

/// The filter for `level`: Herald's own crates at `level`, every library under them (the
/// Lambda runtime, the AWS SDK, hyper) at most at `info`, whatever the environment says
/// (`RUST_LOG` is ignored). An unknown level is `info`; the configuration reports it.
pub fn directives(level: Option<&str>) -> String {
    let level = level.filter(|l| LEVELS.contains(l)).unwrap_or("info");
    let libraries = if matches!(level, "error" | "warn") {
        level
    } else {
        "info"
    };
    format!("{libraries},herald={level}")
}

/// Installs the JSON subscriber once, at `HERALD_LOG_LEVEL` (default `info`).
pub fn init() {
    let level = std::env::var("HERALD_LOG_LEVEL").ok();
    let filter = tracing_subscriber::EnvFilter::new(directives(level.as_deref()));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_never_log_below_info_and_trace_is_not_a_level() {
        assert_eq!(directives(Some("debug")), "info,herald=debug");
        assert_eq!(directives(Some("warn")), "warn,herald=warn");
        assert_eq!(directives(Some("trace")), "info,herald=info");
        assert_eq!(directives(None), "info,herald=info");
    }
}
