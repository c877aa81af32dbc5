//! Hostcall wrappers that turn every host error into `None`/`false` instead of a trap.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{Bytes, LogLevel, MapType};
use std::time::{SystemTime, UNIX_EPOCH};

/// Logs through the host; a failing log call is ignored.
pub fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

/// Milliseconds since the epoch according to the host clock (0 if unavailable).
pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Nanosecond part of the host clock, used as a cheap jitter source.
pub fn clock_nanos() -> u32 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t: SystemTime| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// All request headers, values as raw bytes.
pub fn request_headers() -> Vec<(String, Bytes)> {
    hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default()
}

/// Sets (or with `None` removes) a request header; returns whether the host accepted it.
pub fn set_request_header(name: &str, value: Option<&str>) -> bool {
    hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value).is_ok()
}

/// Appends a request header value, without looking for an existing one.
pub fn add_request_header(name: &str, value: &str) -> bool {
    hostcalls::add_map_value(MapType::HttpRequestHeaders, name, value).is_ok()
}

/// Response headers of a dispatched call.
pub fn call_response_headers() -> Vec<(String, Bytes)> {
    hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders).unwrap_or_default()
}

/// Body of a dispatched call.
pub fn call_response_body(size: usize) -> Option<Bytes> {
    hostcalls::get_buffer(proxy_wasm::types::BufferType::HttpCallResponseBody, 0, size)
        .ok()
        .flatten()
}

/// A property (e.g. `source.address`).
pub fn property(path: Vec<&str>) -> Option<Bytes> {
    hostcalls::get_property(path).ok().flatten()
}

/// Sets a property; Envoy stores it as filter state `wasm.<name>`, readable by access logs.
pub fn set_property(name: &str, value: &[u8]) {
    let _ = hostcalls::set_property(vec![name], Some(value));
}

/// Sends a local reply.
pub fn send_response(status: u32, headers: Vec<(&str, &str)>, body: &[u8]) {
    if hostcalls::send_http_response(status, headers, Some(body)).is_err() {
        log(LogLevel::Error, "portcullis: failed to send local reply");
    }
}

/// Reads a shared-data value and its CAS token.
pub fn shared_get(key: &str) -> (Option<Bytes>, Option<u32>) {
    hostcalls::get_shared_data(key).unwrap_or((None, None))
}

/// Writes a shared-data value if `cas` still matches; returns whether it was written.
pub fn shared_set(key: &str, value: &[u8], cas: Option<u32>) -> bool {
    hostcalls::set_shared_data(key, Some(value), cas).is_ok()
}
