//! Finding the bearer token (RFC 6750 §2.1).
//!
//! One rule, documented in the README: the token comes only from a single `Authorization` header
//! whose scheme is `Bearer` in any letter case, followed by one or more spaces and a `b64token`.
//! A token in the query string (`access_token=`) or two `Authorization` headers is a malformed
//! request (`400 invalid_request`): accepting them would leak tokens into logs or let two
//! components read different credentials.

/// Why no usable bearer token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// No `Authorization: Bearer` header at all (`401` without an error code).
    #[error("no bearer token")]
    Missing,
    /// The header is `Bearer` but what follows is not a token (`401 invalid_token`).
    #[error("malformed bearer token")]
    Malformed,
    /// More than one `Authorization` header (`400 invalid_request`).
    #[error("more than one authorization header")]
    MultipleHeaders,
    /// `access_token` in the query string (`400 invalid_request`).
    #[error("access token in the query string")]
    QueryToken,
}

/// Extracts the token from the `Authorization` header values and the query string.
pub fn extract<'a>(
    authorization: &[&'a [u8]],
    query: Option<&str>,
) -> Result<&'a str, BearerError> {
    if query.is_some_and(has_access_token_param) {
        return Err(BearerError::QueryToken);
    }
    let value = match authorization {
        [] => return Err(BearerError::Missing),
        [value] => *value,
        _ => return Err(BearerError::MultipleHeaders),
    };
    let value = std::str::from_utf8(value).map_err(|_| BearerError::Malformed)?;
    // Envoy joins repeated `Authorization` headers into one value with commas, and a b64token
    // never contains a comma.
    if value.contains(',') {
        return Err(BearerError::MultipleHeaders);
    }
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::Missing);
    }
    let token = rest.trim_start_matches(' ');
    if is_b64token(token) {
        Ok(token)
    } else {
        Err(BearerError::Malformed)
    }
}

fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| matches!(b, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

fn has_access_token_param(query: &str) -> bool {
    query.split('&').any(|pair| {
        let name = pair.split('=').next().unwrap_or_default();
        name.eq_ignore_ascii_case("access_token") || name.eq_ignore_ascii_case("access%5Ftoken")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_bearer_in_any_case() {
        for header in [
            "Bearer abc.def.ghi",
            "bearer abc.def.ghi",
            "BEARER  abc.def.ghi",
        ] {
            assert_eq!(
                extract(&[header.as_bytes()], None),
                Ok("abc.def.ghi"),
                "{header}"
            );
        }
    }

    #[test]
    fn documented_failures() {
        type Case<'a> = (&'a [&'a [u8]], Option<&'a str>, BearerError);
        let cases: [Case<'_>; 10] = [
            (&[], None, BearerError::Missing),
            (&[b"Basic dXNlcjpwYXNz"], None, BearerError::Missing),
            (&[b"Bearer"], None, BearerError::Malformed),
            (&[b"Bearer "], None, BearerError::Malformed),
            (&[b"Bearer a b"], None, BearerError::Malformed),
            (&[b"Bearer \xff\xfe"], None, BearerError::Malformed),
            (
                &[b"Bearer a", b"Bearer b"],
                None,
                BearerError::MultipleHeaders,
            ),
            (&[b"Bearer a,Bearer b"], None, BearerError::MultipleHeaders),
            (
                &[b"Bearer a"],
                Some("x=1&access_token=a"),
                BearerError::QueryToken,
            ),
            (&[], Some("ACCESS_TOKEN=a"), BearerError::QueryToken),
        ];
        for (headers, query, expected) in cases {
            assert_eq!(
                extract(headers, query),
                Err(expected),
                "{headers:?} {query:?}"
            );
        }
    }

    #[test]
    fn unrelated_query_parameters_are_fine() {
        assert_eq!(extract(&[b"Bearer t"], Some("token=x&access=y")), Ok("t"));
    }
}
