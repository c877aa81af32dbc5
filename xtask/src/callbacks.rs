//! Drops the proxy-wasm callbacks a filter does not implement from its module's exports.
//!
//! The Rust SDK exports every `proxy_on_*` callback, and Envoy calls each exported one on every
//! stream (response headers, log, done, ...), even when the filter leaves it at its default.
//! Envoy skips a callback the module does not export, and each call it skips is a V8 entry saved
//! per request. Only the export entries change; the functions stay in the module.

/// The callbacks a filter needs (the rest of the `proxy_on_*` family is dropped). A filter that
/// starts implementing another callback must add it here, or Envoy will never call it (a test
/// scans `plugin/src` for overridden SDK callbacks and checks this list).
pub const KEPT: &[&str] = &[
    "proxy_on_vm_start",
    "proxy_on_configure",
    "proxy_on_context_create",
    "proxy_on_request_headers",
    "proxy_on_http_call_response",
    "proxy_on_tick",
    "proxy_on_delete",
    "proxy_on_memory_allocate",
];

const EXPORT_SECTION: u8 = 7;

/// Returns `module` with every `proxy_on_*` export not in `kept` removed.
pub fn strip(module: &[u8], kept: &[&str]) -> Result<Vec<u8>, String> {
    if module.get(..4) != Some(b"\0asm".as_slice()) || module.len() < 8 {
        return Err("not a wasm module".into());
    }
    let mut out = module[..8].to_vec();
    let mut at = 8;
    while at < module.len() {
        let id = module[at];
        let (size, size_len) = read_leb(module, at + 1)?;
        let start = at + 1 + size_len;
        let end = start
            .checked_add(size)
            .filter(|&end| end <= module.len())
            .ok_or("section runs past the end of the module")?;
        if id == EXPORT_SECTION {
            let body = exports_without(&module[start..end], kept)?;
            out.push(id);
            write_leb(&mut out, body.len());
            out.extend_from_slice(&body);
        } else {
            out.extend_from_slice(&module[at..end]);
        }
        at = end;
    }
    Ok(out)
}

/// Re-encodes an export section body, keeping non-callback exports and the `kept` callbacks.
fn exports_without(section: &[u8], kept: &[&str]) -> Result<Vec<u8>, String> {
    let (count, mut at) = read_leb(section, 0)?;
    let mut entries = Vec::new();
    let mut kept_count = 0;
    for _ in 0..count {
        let entry_start = at;
        let (name_len, len_len) = read_leb(section, at)?;
        let name_start = at + len_len;
        let name = section
            .get(name_start..name_start + name_len)
            .ok_or("export name runs past the section")?;
        let kind_at = name_start + name_len;
        let (_index, index_len) = read_leb(section, kind_at + 1)?;
        at = kind_at + 1 + index_len;
        let name = std::str::from_utf8(name).map_err(|_| "export name is not UTF-8")?;
        if !name.starts_with("proxy_on_") || kept.contains(&name) {
            entries.extend_from_slice(&section[entry_start..at]);
            kept_count += 1;
        }
    }
    if at != section.len() {
        return Err("export section has trailing bytes".into());
    }
    let mut body = Vec::new();
    write_leb(&mut body, kept_count);
    body.extend_from_slice(&entries);
    Ok(body)
}

/// Reads an unsigned LEB128 value at `at`; returns it and its encoded length.
fn read_leb(bytes: &[u8], at: usize) -> Result<(usize, usize), String> {
    let mut value: usize = 0;
    for (i, byte) in bytes.iter().skip(at).take(5).enumerate() {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(format!("bad LEB128 at byte {at}"))
}

fn write_leb(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module with an export section (name, function index) between two custom sections.
    fn module(exports: &[(&str, usize)]) -> Vec<u8> {
        let mut body = Vec::new();
        write_leb(&mut body, exports.len());
        for (name, index) in exports {
            write_leb(&mut body, name.len());
            body.extend_from_slice(name.as_bytes());
            body.push(0);
            write_leb(&mut body, *index);
        }
        let mut out = b"\0asm\x01\0\0\0".to_vec();
        out.extend_from_slice(&[0, 3, 1, b'x', 9]);
        out.push(EXPORT_SECTION);
        write_leb(&mut out, body.len());
        out.extend_from_slice(&body);
        out.extend_from_slice(&[0, 2, 0, 7]);
        out
    }

    #[test]
    fn drops_only_unkept_callbacks() {
        let input = module(&[
            ("memory", 0),
            ("proxy_on_log", 300),
            ("proxy_on_request_headers", 301),
            ("proxy_on_done", 302),
            ("_initialize", 303),
        ]);
        let expected = module(&[
            ("memory", 0),
            ("proxy_on_request_headers", 301),
            ("_initialize", 303),
        ]);
        assert_eq!(strip(&input, KEPT).unwrap(), expected);
        assert_eq!(strip(&expected, KEPT).unwrap(), expected, "idempotent");
    }

    /// The proxy-wasm ABI exports through which the Rust SDK (0.2) calls each trait method.
    const SDK_CALLBACKS: &[(&str, &[&str])] = &[
        ("on_vm_start", &["proxy_on_vm_start"]),
        ("on_configure", &["proxy_on_configure"]),
        ("on_tick", &["proxy_on_tick"]),
        ("on_queue_ready", &["proxy_on_queue_ready"]),
        ("on_done", &["proxy_on_done"]),
        ("on_log", &["proxy_on_log"]),
        ("on_foreign_function", &["proxy_on_foreign_function"]),
        ("on_http_request_headers", &["proxy_on_request_headers"]),
        ("on_http_request_body", &["proxy_on_request_body"]),
        ("on_http_request_trailers", &["proxy_on_request_trailers"]),
        ("on_http_response_headers", &["proxy_on_response_headers"]),
        ("on_http_response_body", &["proxy_on_response_body"]),
        ("on_http_response_trailers", &["proxy_on_response_trailers"]),
        ("on_http_call_response", &["proxy_on_http_call_response"]),
        (
            "on_grpc_call_response",
            &["proxy_on_grpc_receive", "proxy_on_grpc_close"],
        ),
        (
            "on_grpc_stream_initial_metadata",
            &["proxy_on_grpc_receive_initial_metadata"],
        ),
        ("on_grpc_stream_message", &["proxy_on_grpc_receive"]),
        (
            "on_grpc_stream_trailing_metadata",
            &["proxy_on_grpc_receive_trailing_metadata"],
        ),
        ("on_grpc_stream_close", &["proxy_on_grpc_close"]),
        ("on_new_connection", &["proxy_on_new_connection"]),
        ("on_downstream_data", &["proxy_on_downstream_data"]),
        (
            "on_downstream_close",
            &["proxy_on_downstream_connection_close"],
        ),
        ("on_upstream_data", &["proxy_on_upstream_data"]),
        ("on_upstream_close", &["proxy_on_upstream_connection_close"]),
    ];

    /// Every SDK callback the filter's source overrides keeps its export: otherwise Envoy would
    /// silently never call it.
    #[test]
    fn every_callback_the_filter_implements_is_kept() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin/src");
        let mut implemented = Vec::new();
        for entry in std::fs::read_dir(&src).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for (method, exports) in SDK_CALLBACKS {
                if text.contains(&format!("fn {method}(")) {
                    implemented.push(*method);
                    for export in *exports {
                        assert!(
                            KEPT.contains(export),
                            "the filter implements `{method}` but `{export}` is not in KEPT"
                        );
                    }
                }
            }
        }
        for expected in [
            "on_http_request_headers",
            "on_tick",
            "on_http_call_response",
        ] {
            assert!(
                implemented.contains(&expected),
                "{expected} not found in {src:?}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_module() {
        assert!(strip(b"hello world", KEPT).is_err());
        let mut truncated = module(&[("proxy_on_log", 1)]);
        truncated.truncate(truncated.len() - 6);
        assert!(strip(&truncated, KEPT).is_err());
    }

    #[test]
    fn leb128_round_trips() {
        for value in [0, 1, 127, 128, 300, 16_384, 1 << 27] {
            let mut bytes = Vec::new();
            write_leb(&mut bytes, value);
            assert_eq!(read_leb(&bytes, 0).unwrap(), (value, bytes.len()));
        }
    }
}
