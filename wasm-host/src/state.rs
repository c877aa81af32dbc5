//! What the host knows and records: the data behind every hostcall, with no wasm in sight.

use crate::abi::HeaderMap;
use std::collections::HashMap;

/// An HTTP call the guest dispatched (`proxy_http_call`), waiting for the test to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Token the guest will be called back with.
    pub token: u32,
    /// Upstream cluster name.
    pub cluster: String,
    /// Request headers, pseudo-headers included.
    pub headers: HeaderMap,
    /// Request body.
    pub body: Vec<u8>,
    /// Timeout asked for, in milliseconds.
    pub timeout_ms: u32,
}

impl Call {
    /// The first header called `name`, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        header(&self.headers, name)
    }
}

/// A local reply the guest sent (`proxy_send_local_response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// HTTP status.
    pub status: u32,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body.
    pub body: Vec<u8>,
}

impl LocalResponse {
    /// The first header called `name`, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        header(&self.headers, name)
    }
}

/// A metric the guest defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    /// Full name as defined.
    pub name: String,
    /// Current value.
    pub value: u64,
}

/// A log line from `proxy_log` (level as in the ABI: 0 trace … 5 critical) or WASI stdio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Log level; stdio output is logged at 4 (error).
    pub level: u32,
    /// The message.
    pub message: String,
}

/// Host state behind the store.
#[derive(Debug, Default)]
pub struct HostState {
    /// The host clock, ms since the epoch; moves only when the test says so.
    pub now_ms: u64,
    /// VM configuration bytes.
    pub vm_config: Vec<u8>,
    /// Plugin configuration bytes.
    pub plugin_config: Vec<u8>,
    /// Request headers of the stream being processed.
    pub request_headers: HeaderMap,
    /// Local reply of the stream being processed.
    pub local_response: Option<LocalResponse>,
    /// Properties the host serves (`source.address` …).
    pub properties: HashMap<String, Vec<u8>>,
    /// Properties the guest set (Envoy's filter state) during the last stream.
    pub filter_state: HashMap<String, Vec<u8>>,
    /// Shared data: key → (value, CAS token).
    pub shared: HashMap<String, (Vec<u8>, u32)>,
    /// Last CAS token handed out.
    pub last_cas: u32,
    /// Metrics by id (index + 1).
    pub metrics: Vec<Metric>,
    /// Dispatched calls not answered yet.
    pub pending: Vec<Call>,
    /// Last call token handed out.
    pub last_token: u32,
    /// The call response being delivered: headers and body.
    pub call_response: Option<(HeaderMap, Vec<u8>)>,
    /// Tick period the guest asked for, in ms (0: none).
    pub tick_period_ms: u32,
    /// Everything logged.
    pub logs: Vec<LogLine>,
    /// The environment the guest sees (Envoy's `vm_config.environment_variables`).
    pub env: Vec<(String, String)>,
    /// State of the deterministic `random_get` generator.
    pub random: u64,
}

impl HostState {
    /// A header map the guest may read or change, by ABI map type.
    pub fn map_mut(&mut self, map_type: u32) -> Option<&mut HeaderMap> {
        match map_type {
            crate::abi::map_type::HTTP_REQUEST_HEADERS => Some(&mut self.request_headers),
            crate::abi::map_type::HTTP_CALL_RESPONSE_HEADERS => {
                self.call_response.as_mut().map(|(headers, _)| headers)
            }
            _ => None,
        }
    }

    /// A buffer the guest may read, by ABI buffer type.
    pub fn buffer(&self, buffer_type: u32) -> Option<&[u8]> {
        match buffer_type {
            crate::abi::buffer_type::HTTP_CALL_RESPONSE_BODY => {
                self.call_response.as_ref().map(|(_, body)| body.as_slice())
            }
            crate::abi::buffer_type::VM_CONFIGURATION => Some(&self.vm_config),
            crate::abi::buffer_type::PLUGIN_CONFIGURATION => Some(&self.plugin_config),
            _ => None,
        }
    }

    /// Writes shared data unless `cas` is set and stale (Envoy's semantics: a CAS on a missing
    /// key succeeds).
    pub fn set_shared(&mut self, key: String, value: Vec<u8>, cas: u32) -> bool {
        if let Some((_, current)) = self.shared.get(&key) {
            if cas != 0 && cas != *current {
                return false;
            }
        }
        self.last_cas += 1;
        self.shared.insert(key, (value, self.last_cas));
        true
    }

    /// Defines a metric, or returns the id of the one already called `name`.
    pub fn define_metric(&mut self, name: String) -> u32 {
        let index = match self.metrics.iter().position(|m| m.name == name) {
            Some(index) => index,
            None => {
                self.metrics.push(Metric { name, value: 0 });
                self.metrics.len() - 1
            }
        };
        u32::try_from(index + 1).unwrap_or(u32::MAX)
    }

    /// The metric with ABI id `id`.
    pub fn metric_mut(&mut self, id: u32) -> Option<&mut Metric> {
        let index = usize::try_from(id).ok()?.checked_sub(1)?;
        self.metrics.get_mut(index)
    }

    /// Deterministic bytes for WASI `random_get` (xorshift64*): runs are reproducible.
    pub fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let mut x = self.random | 1;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.random = x;
            out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// Header names compare case-insensitively, as in Envoy.
pub fn header(map: &[(String, Vec<u8>)], name: &str) -> Option<String> {
    map.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

/// Replaces every header called `name` by one with `value`, or removes them all with `None`.
pub fn set_header(map: &mut HeaderMap, name: &str, value: Option<Vec<u8>>) {
    let position = map.iter().position(|(n, _)| n.eq_ignore_ascii_case(name));
    map.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    if let Some(value) = value {
        let at = position.unwrap_or(map.len()).min(map.len());
        map.insert(at, (name.to_ascii_lowercase(), value));
    }
}
