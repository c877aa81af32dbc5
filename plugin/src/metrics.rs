//! Filter metrics, defined on first use. Envoy exposes them as `wasmcustom.portcullis.*`.
//!
//! Counters accumulate in the VM and reach Envoy on the next tick (every 100 ms): a hostcall per
//! counter per request would cost more than the cached decision itself.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::collections::HashMap;

/// Lazily defined counters and gauges of one worker.
#[derive(Debug, Default)]
pub struct Metrics {
    ids: HashMap<String, u32>,
    /// A short list (a handful of names per worker), scanned rather than hashed: cheaper per
    /// request in wasm than hashing the name.
    pending: Vec<(&'static str, i64)>,
    pending_dynamic: HashMap<String, i64>,
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

    /// Adds one to the counter `name` (reported on the next [`Metrics::flush`]).
    pub fn count(&mut self, name: &'static str) {
        match self
            .pending
            .iter_mut()
            .find(|(pending, _)| *pending == name)
        {
            Some((_, count)) => *count += 1,
            None => self.pending.push((name, 1)),
        }
    }

    /// Adds one to a counter whose name is built at run time.
    pub fn count_dynamic(&mut self, name: String) {
        *self.pending_dynamic.entry(name).or_default() += 1;
    }

    /// Sends the accumulated counts to Envoy.
    pub fn flush(&mut self) {
        let pending: Vec<(String, i64)> = self
            .pending
            .drain(..)
            .map(|(n, v)| (n.to_owned(), v))
            .chain(self.pending_dynamic.drain())
            .collect();
        for (name, value) in pending {
            if let Some(id) = self.id(MetricType::Counter, &name) {
                let _ = hostcalls::increment_metric(id, value);
            }
        }
    }

    /// Sets the gauge `name`.
    pub fn gauge(&mut self, name: &str, value: u64) {
        if let Some(id) = self.id(MetricType::Gauge, name) {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}
