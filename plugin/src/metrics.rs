//! Filter metrics, defined on first use. Envoy exposes them as `wasmcustom.portcullis.*`.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::collections::HashMap;

/// Lazily defined counters and gauges of one worker.
#[derive(Debug, Default)]
pub struct Metrics {
    ids: HashMap<String, u32>,
}

impl Metrics {
    fn id(&mut self, kind: MetricType, name: &str) -> Option<u32> {
        if let Some(id) = self.ids.get(name) {
            return Some(*id);
        }
        let id = hostcalls::define_metric(kind, &format!("portcullis.{name}")).ok()?;
        self.ids.insert(name.to_owned(), id);
        Some(id)
    }

    /// Adds one to the counter `name`.
    pub fn count(&mut self, name: &str) {
        if let Some(id) = self.id(MetricType::Counter, name) {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// Sets the gauge `name`.
    pub fn gauge(&mut self, name: &str, value: u64) {
        if let Some(id) = self.id(MetricType::Gauge, name) {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}
