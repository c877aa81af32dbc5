//! Constants and wire encodings of the proxy-wasm 0.2 ABI, as the Rust SDK reads and writes them.

/// A header map: names with raw byte values, in order.
pub type HeaderMap = Vec<(String, Vec<u8>)>;

/// `proxy_status_t` values the host returns.
pub mod status {
    /// Success.
    pub const OK: u32 = 0;
    /// The key, property or buffer does not exist.
    pub const NOT_FOUND: u32 = 1;
    /// An argument (map or buffer type, metric id) is not one the host knows.
    pub const BAD_ARGUMENT: u32 = 2;
    /// A shared-data write whose CAS token no longer matches.
    pub const CAS_MISMATCH: u32 = 8;
}

/// `proxy_map_type_t` values the host serves.
pub mod map_type {
    /// Request headers of the current stream.
    pub const HTTP_REQUEST_HEADERS: u32 = 0;
    /// Response headers of the dispatched call being delivered.
    pub const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
}

/// `proxy_buffer_type_t` values the host serves.
pub mod buffer_type {
    /// Body of the dispatched call being delivered.
    pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
    /// The VM configuration.
    pub const VM_CONFIGURATION: u32 = 6;
    /// The plugin configuration.
    pub const PLUGIN_CONFIGURATION: u32 = 7;
}

/// `proxy_action_t` returned by stream callbacks.
pub mod action {
    /// Let the stream go on.
    pub const CONTINUE: u32 = 0;
    /// Stop iteration (the filter answered, or will resume the stream later).
    pub const PAUSE: u32 = 1;
}

/// Encodes a map: count, then each (name size, value size) pair, then the NUL-terminated names
/// and values.
pub fn encode_map(map: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let size = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    bytes.extend_from_slice(&size(map.len()));
    for (name, value) in map {
        bytes.extend_from_slice(&size(name.len()));
        bytes.extend_from_slice(&size(value.len()));
    }
    for (name, value) in map {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(value);
        bytes.push(0);
    }
    bytes
}

/// Decodes a map written by the guest; `None` if it is malformed or a name is not UTF-8.
pub fn decode_map(bytes: &[u8]) -> Option<HeaderMap> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let word = |at: usize| -> Option<usize> {
        let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(raw)).ok()
    };
    let count = word(0)?;
    let mut at = count.checked_mul(8)?.checked_add(4)?;
    let mut take = |len: usize| -> Option<Vec<u8>> {
        let end = at.checked_add(len)?;
        let slice = bytes.get(at..end)?.to_vec();
        at = end.checked_add(1)?;
        Some(slice)
    };
    let mut map = Vec::with_capacity(count.min(1024));
    for n in 0..count {
        let name = take(word(4 + n * 8)?)?;
        let value = take(word(8 + n * 8)?)?;
        map.push((String::from_utf8(name).ok()?, value));
    }
    Some(map)
}

/// A property path: segments separated by NUL, joined here with `.` (`source.address`).
pub fn property_name(path: &[u8]) -> String {
    String::from_utf8_lossy(path).replace('\0', ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_round_trip_in_the_sdk_layout() {
        let map = vec![
            (":method".to_owned(), b"GET".to_vec()),
            ("x".to_owned(), vec![0xff, 0x00]),
        ];
        let bytes = encode_map(&map);
        assert_eq!(&bytes[..12], &[2, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&bytes[20..28], b":method\0");
        assert_eq!(decode_map(&bytes), Some(map));
        assert_eq!(decode_map(&bytes[..bytes.len() - 3]), None);
        assert_eq!(decode_map(&[]), Some(vec![]));
    }

    #[test]
    fn property_paths_join_with_dots() {
        assert_eq!(property_name(b"source\0address"), "source.address");
    }
}
