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

/// The shapes a request body may give scopes in: a JSON list, as every response shows them, or
/// (accepted for compatibility) one space-separated string. Both read into the space-separated
/// text the stores parse.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Shapes {
    List(Vec<String>),
    Text(String),
}

impl Shapes {
    fn into_text(self) -> Result<String, String> {
        match self {
            Shapes::Text(text) => Ok(text),
            Shapes::List(items) => {
                if let Some(bad) = items.iter().find(|s| s.is_empty() || s.contains(' ')) {
                    return Err(format!("scope `{bad}` is not a valid scope token"));
                }
                Ok(items.join(" "))
            }
        }
    }
}

/// Serde `deserialize_with` for a scopes field (see [`Shapes`]).
pub fn from_list_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    <Shapes as serde::Deserialize>::deserialize(d)?
        .into_text()
        .map_err(serde::de::Error::custom)
}

/// [`from_list_or_text`] for an optional field.
pub fn from_optional_list_or_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    <Option<Shapes> as serde::Deserialize>::deserialize(d)?
        .map(Shapes::into_text)
        .transpose()
        .map_err(serde::de::Error::custom)
}

/// The schema of a scopes field in a request: a list of scope tokens (or one space-separated
/// string).
pub fn request_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
    let token = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^[\x21\x23-\x5B\x5D-\x7E]{1,128}$"))
    };
    let one_of = OneOfBuilder::new()
        .item(ArrayBuilder::new().items(token()))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^[\x20\x21\x23-\x5B\x5D-\x7E]*$"))
                .description(Some("space separated (accepted for compatibility)")),
        )
        .build();
    Schema::OneOf(one_of)
}

/// [`request_schema`] for an optional field, where `null` keeps the scopes as they are.
pub fn optional_request_schema() -> utoipa::openapi::schema::Schema {
    nullable(request_schema())
}

/// `schema` or `null`.
pub fn nullable(schema: utoipa::openapi::schema::Schema) -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(schema)
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build(),
    )
}
