//! Request-path normalisation: Cedar must judge the path the upstream will actually serve.
//!
//! The rules follow RFC 3986 §6.2.2 plus slash merging: percent-encoded unreserved characters are
//! decoded (`%2e` → `.`), other escapes are upper-cased, dot segments are removed and repeated
//! slashes merged. An encoded `/` or `\` is refused because upstreams disagree on its meaning
//! (CVE-2021-29492). Envoy's own `normalize_path`/`merge_slashes` should be on as well; the filter
//! rewrites `:path` to this form whenever it differs, so both layers agree by construction.
//!
//! A `;` in a segment starts a path parameter (RFC 3986 §3.3) that servlet containers remove
//! before resolving dot segments, so `/a/..;/admin` is `/admin` to Tomcat or Spring. It is
//! refused by default ([`PathError::Parameter`]); with [`PathParameters::Strip`] every parameter is
//! removed first and the stripped path is the one judged and sent on. An encoded `;` (`%3B`) is
//! refused in both modes, like an encoded slash: Tomcat and Spring decode it after removing
//! parameters (a literal `;` in the segment name) but other servers decode first (a parameter),
//! so no single reading is safe. The query string is never touched.

use crate::config::PathParameters;

/// A normalised request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath {
    /// The path, always starting with `/`.
    pub path: String,
    /// The query string without `?`, if any.
    pub query: Option<String>,
}

impl NormalizedPath {
    /// The path and query as they go upstream.
    pub fn request_target(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }

    /// Whether `received` is already exactly [`NormalizedPath::request_target`] (no allocation:
    /// this runs on every request).
    pub fn is_request_target(&self, received: &str) -> bool {
        match (&self.query, received.strip_prefix(self.path.as_str())) {
            (None, Some(rest)) => rest.is_empty(),
            (Some(query), Some(rest)) => rest.strip_prefix('?') == Some(query.as_str()),
            (_, None) => false,
        }
    }
}

/// Why a path was refused (`400`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Does not start with `/`.
    #[error("path is not absolute")]
    NotAbsolute,
    /// Holds a control character, a non-ASCII byte, a backslash or a broken `%` escape.
    #[error("path contains an invalid character or escape")]
    InvalidCharacter,
    /// Holds `%2F` or `%5C`.
    #[error("path contains an encoded slash")]
    EncodedSlash,
    /// A segment carries a `;` parameter and parameters are refused.
    #[error("path segment carries a `;` parameter")]
    Parameter,
    /// Holds `%3B`, an encoded `;`.
    #[error("path contains an encoded `;`")]
    EncodedSemicolon,
}

/// Longest accepted request target; Envoy's default header limit is larger, this bounds our work.
pub const MAX_PATH_BYTES: usize = 8 * 1024;

/// Normalises an HTTP/2-style `:path` value, refusing path parameters (the filter's default).
pub fn normalize(raw: &str) -> Result<NormalizedPath, PathError> {
    normalize_with(raw, PathParameters::Reject)
}

/// Normalises an HTTP/2-style `:path` value; `parameters` says whether a segment's `;`
/// parameters refuse the path or are removed from it.
pub fn normalize_with(raw: &str, parameters: PathParameters) -> Result<NormalizedPath, PathError> {
    if raw.len() > MAX_PATH_BYTES {
        return Err(PathError::InvalidCharacter);
    }
    let without_fragment = raw.split('#').next().unwrap_or_default();
    let (path, query) = match without_fragment.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (without_fragment, None),
    };
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let decoded = decode_unreserved(path, parameters)?;
    Ok(NormalizedPath {
        path: remove_dot_segments(&decoded),
        query,
    })
}

/// Decodes unreserved escapes and, with [`PathParameters::Strip`], drops each segment's
/// parameters: the whole path is checked as usual, then what followed the `;` is cut off again at
/// the segment's end (no second buffer, and nothing extra to do on a path without `;`).
fn decode_unreserved(path: &str, parameters: PathParameters) -> Result<String, PathError> {
    let mut out = String::with_capacity(path.len());
    let mut bytes = path.bytes();
    // Where the current segment's parameters start in `out`, while inside them.
    let mut parameter_at = None;
    while let Some(byte) = bytes.next() {
        match byte {
            b';' => match parameters {
                PathParameters::Reject => return Err(PathError::Parameter),
                PathParameters::Strip => {
                    parameter_at.get_or_insert(out.len());
                }
            },
            b'/' => {
                if let Some(at) = parameter_at.take() {
                    out.truncate(at);
                }
                out.push('/');
            }
            b'%' => {
                let high = bytes
                    .next()
                    .and_then(hex_value)
                    .ok_or(PathError::InvalidCharacter)?;
                let low = bytes
                    .next()
                    .and_then(hex_value)
                    .ok_or(PathError::InvalidCharacter)?;
                let value = high * 16 + low;
                match value {
                    b'/' | b'\\' => return Err(PathError::EncodedSlash),
                    b';' => return Err(PathError::EncodedSemicolon),
                    v if v.is_ascii_alphanumeric() || b"-._~".contains(&v) => {
                        out.push(char::from(v))
                    }
                    v => {
                        out.push('%');
                        out.push(char::from(
                            HEX_UPPER.get(usize::from(v >> 4)).copied().unwrap_or(b'0'),
                        ));
                        out.push(char::from(
                            HEX_UPPER.get(usize::from(v & 0xf)).copied().unwrap_or(b'0'),
                        ));
                    }
                }
            }
            b'\\' => return Err(PathError::InvalidCharacter),
            b if b.is_ascii_graphic() => out.push(char::from(b)),
            _ => return Err(PathError::InvalidCharacter),
        }
    }
    if let Some(at) = parameter_at {
        out.truncate(at);
    }
    Ok(out)
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in path.split('/').skip(1) {
        trailing_slash = matches!(segment, "" | "." | "..");
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_received_path_is_the_request_target_only_when_identical() {
        for received in [
            "/a/b",
            "/a/b?x=1",
            "/a//b",
            "/a/./b?x=1",
            "/a/b?",
            "/a/b?x=1&y",
        ] {
            let normalized = normalize(received).unwrap();
            assert_eq!(
                normalized.is_request_target(received),
                normalized.request_target() == received,
                "{received}"
            );
        }
    }

    fn norm(raw: &str) -> Result<String, PathError> {
        normalize(raw).map(|n| n.request_target())
    }

    #[test]
    fn normalises_traversal_and_slashes() {
        let cases = [
            ("/", "/"),
            ("/api/items", "/api/items"),
            ("//admin", "/admin"),
            ("/a/../admin", "/admin"),
            ("/a/./b", "/a/b"),
            ("/%2e%2e/admin", "/admin"),
            ("/a/%2E%2E/admin", "/admin"),
            ("/../../..", "/"),
            ("/a/b/", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/%61dmin", "/admin"),
            ("/a%20b", "/a%20b"),
            ("/a%c3%a9", "/a%C3%A9"),
            ("/x?y=/../z", "/x?y=/../z"),
            ("/x#frag", "/x"),
            ("/A", "/A"),
        ];
        for (raw, expected) in cases {
            assert_eq!(norm(raw), Ok(expected.to_owned()), "{raw}");
        }
    }

    #[test]
    fn refuses_ambiguous_paths() {
        assert_eq!(norm("/a%2Fb"), Err(PathError::EncodedSlash));
        assert_eq!(norm("/a%2fb"), Err(PathError::EncodedSlash));
        assert_eq!(norm("/a%5cb"), Err(PathError::EncodedSlash));
        assert_eq!(norm("/a\\b"), Err(PathError::InvalidCharacter));
        assert_eq!(norm("/a%zz"), Err(PathError::InvalidCharacter));
        assert_eq!(norm("/a%4"), Err(PathError::InvalidCharacter));
        assert_eq!(norm("/a b"), Err(PathError::InvalidCharacter));
        assert_eq!(norm("/é"), Err(PathError::InvalidCharacter));
        assert_eq!(norm("admin"), Err(PathError::NotAbsolute));
        assert_eq!(norm("*"), Err(PathError::NotAbsolute));
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for raw in ["/a/../b//c/./d/", "/%2e/x", "/a%7e"] {
            let once = norm(raw).unwrap();
            assert_eq!(norm(&once).unwrap(), once);
        }
        for raw in ["/a/..;/b;x/c;", "/x;y?z=;"] {
            let once = strip(raw).unwrap();
            assert_eq!(strip(&once).unwrap(), once, "{raw}");
            assert_eq!(
                norm(&once).unwrap(),
                once,
                "stripped, then judged by default: {raw}"
            );
        }
    }

    fn strip(raw: &str) -> Result<String, PathError> {
        normalize_with(raw, PathParameters::Strip).map(|n| n.request_target())
    }

    #[test]
    fn a_path_parameter_is_refused_by_default() {
        for raw in [
            "/api/items/..;/admin",
            "/api/items;v=2/7",
            "/a;jsessionid=1/b",
            "/a/b;",
            "/;/x",
            "/a;x%3B/b",
        ] {
            assert_eq!(norm(raw), Err(PathError::Parameter), "{raw}");
        }
        assert_eq!(
            norm("/x?a=1;b=2"),
            Ok("/x?a=1;b=2".to_owned()),
            "the query string may hold `;`"
        );
    }

    #[test]
    fn stripped_parameters_are_gone_before_dot_segments_are_resolved() {
        let cases = [
            ("/api/items/..;/admin", "/api/admin"),
            ("/api/items/..;x=1/admin", "/api/admin"),
            ("/api/items;v=2/7", "/api/items/7"),
            ("/a;x;y=2/b", "/a/b"),
            ("/a/.;x/b", "/a/b"),
            ("/a/b;x", "/a/b"),
            ("/a/b/..;", "/a/"),
            ("/;x/admin", "/admin"),
            ("/a;%2e%2e/b", "/a/b"),
            ("/a;x//b", "/a/b"),
            ("/x;p?q=1;r", "/x?q=1;r"),
            ("/api/items", "/api/items"),
        ];
        for (raw, expected) in cases {
            assert_eq!(strip(raw), Ok(expected.to_owned()), "{raw}");
        }
    }

    #[test]
    fn a_stripped_parameter_is_still_checked_like_the_rest_of_the_path() {
        assert_eq!(strip("/a;%2F/b"), Err(PathError::EncodedSlash));
        assert_eq!(strip("/a;x\\y/b"), Err(PathError::InvalidCharacter));
        assert_eq!(strip("/a;\u{e9}/b"), Err(PathError::InvalidCharacter));
        assert_eq!(strip("/a;%zz/b"), Err(PathError::InvalidCharacter));
    }

    #[test]
    fn an_encoded_semicolon_is_refused_in_either_mode() {
        for raw in ["/a%3Bb", "/api/items/..%3b/admin", "/a/%3B"] {
            assert_eq!(norm(raw), Err(PathError::EncodedSemicolon), "{raw}");
            assert_eq!(strip(raw), Err(PathError::EncodedSemicolon), "{raw}");
        }
        assert_eq!(strip("/a;x%3B/b"), Err(PathError::EncodedSemicolon));
    }
}
