//! OAuth scope strings (RFC 6749 §3.3): space-separated tokens of visible ASCII without `"` or
//! `\`.

/// A scope string that is not a list of valid scope tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope `{0}` is not a valid scope token")]
pub struct ScopeError(pub String);

/// Parses a space-separated scope list, keeping first occurrences in order.
pub fn parse(text: &str) -> Result<Vec<String>, ScopeError> {
    let mut scopes: Vec<String> = Vec::new();
    for token in text.split(' ').filter(|t| !t.is_empty()) {
        let valid = token.len() <= 128
            && token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !valid {
            return Err(ScopeError(token.chars().take(64).collect()));
        }
        if !scopes.iter().any(|s| s == token) {
            scopes.push(token.to_owned());
        }
    }
    Ok(scopes)
}

/// Joins scopes with single spaces.
pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

/// The requested scopes narrowed to `allowed`; with no request, everything allowed.
pub fn narrow(requested: Option<&[String]>, allowed: &[String]) -> Vec<String> {
    match requested {
        None => allowed.to_vec(),
        Some(requested) => requested
            .iter()
            .filter(|s| allowed.contains(s))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_narrows() {
        assert_eq!(parse("a  b a").unwrap(), vec!["a", "b"]);
        assert!(parse("a\"b").is_err());
        assert!(parse("caf\u{e9}").is_err());
        let allowed = vec!["a".to_string(), "b".to_string()];
        assert_eq!(narrow(Some(&["b".into(), "c".into()]), &allowed), vec!["b"]);
        assert_eq!(narrow(None, &allowed), allowed);
    }
}
