//! JSON objects that refuse duplicate member names.
//!
//! RFC 8725 §2.6 warns about parser differentials: if the issuer reads the first `sub` and we read
//! the last one, a token can mean two things. A token whose header or claims repeat a name is
//! therefore rejected outright instead of relying on last-wins.

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, Visitor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// A JSON object whose top-level member names are unique.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UniqueObject(pub BTreeMap<String, Value>);

impl UniqueObject {
    /// Parses `bytes` as a JSON object, failing on duplicate names, trailing data or any other type.
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The member `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// Whether the member `name` is present (even as `null`).
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

impl<'de> Deserialize<'de> for UniqueObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = UniqueObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object with unique member names")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut members = BTreeMap::new();
                while let Some((name, value)) = access.next_entry::<String, Value>()? {
                    if members.contains_key(&name) {
                        return Err(A::Error::custom(format_args!("duplicate member `{name}`")));
                    }
                    members.insert(name, value);
                }
                Ok(UniqueObject(members))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_unique_members() {
        let object = UniqueObject::parse(br#"{"a":1,"b":{"a":2}}"#).unwrap();
        assert_eq!(object.get("a"), Some(&Value::from(1)));
    }

    #[test]
    fn rejects_duplicate_members() {
        let err = UniqueObject::parse(br#"{"sub":"alice","sub":"admin"}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate member `sub`"), "{err}");
    }

    #[test]
    fn rejects_non_objects_and_trailing_data() {
        assert!(UniqueObject::parse(b"[1]").is_err());
        assert!(UniqueObject::parse(b"{} {}").is_err());
        assert!(UniqueObject::parse(b"\xff\xfe").is_err());
    }
}
