//! Counts AWS calls per operation and outcome, through an SDK interceptor, so benchmarks can
//! hold the hot paths to the fewest calls the design allows.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub ok: usize,
    pub failed: usize,
}

/// `"DynamoDB.UpdateItem"` → successes and failures (a failed conditional write is a failure).
#[derive(Debug, Default)]
pub struct CallCounter(Mutex<BTreeMap<String, Tally>>);

impl CallCounter {
    pub fn snapshot(&self) -> BTreeMap<String, Tally> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn reset(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn record(&self, op: String, ok: bool) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let tally = map.entry(op).or_default();
        if ok {
            tally.ok += 1;
        } else {
            tally.failed += 1;
        }
    }
}

#[derive(Debug)]
pub struct Interceptor(pub Arc<CallCounter>);

impl Intercept for Interceptor {
    fn name(&self) -> &'static str {
        "HeraldCallCounter"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // A request still in the context never went out (a presigned URL is signed and handed
        // back, not sent): no call to count.
        if context.response().is_none() && context.request().is_some() {
            return Ok(());
        }
        let op = cfg
            .load::<Metadata>()
            .map(|m| format!("{}.{}", m.service(), m.name()))
            .unwrap_or_else(|| "unknown".to_owned());
        let ok = context.response().is_some_and(|r| r.status().is_success());
        self.0.record(op, ok);
        Ok(())
    }
}
