//! The one strict JSON reader for signed or money-carrying bodies: an object that repeats a key,
//! at any depth, is refused with an error naming the key and where it is. A plain JSON parser
//! keeps the last value of a repeated key while another reader may keep the first, so a signed
//! body with a repeated key could mean two things; refusing it keeps what was signed and what
//! is acted on the same. Peers read every request body that carries a signature or money
//! through [`from_slice`] or [`to_value`] (decision 38 in `docs/protocol-decisions.md`).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use serde_json::Value;

use crate::error::{ProtocolError, Result};

/// Parses `bytes` into `T` after [`check_unique_keys`]. Errors are [`ProtocolError::Json`]:
/// serde's message (which names a bad field) or the repeated key.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    check_unique_keys(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| ProtocolError::Json(e.to_string()))
}

/// Parses `bytes` into a [`Value`] after [`check_unique_keys`].
pub fn to_value(bytes: &[u8]) -> Result<Value> {
    from_slice(bytes)
}

/// `Ok` when `bytes` is one JSON value in which no object repeats a key (keys are compared
/// after unescaping, so `"a"` and `"\u0061"` are the same key); otherwise
/// [`ProtocolError::Json`] saying `duplicate key "k" in <path>` (or what makes it invalid).
pub fn check_unique_keys(bytes: &[u8]) -> Result<()> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    UniqueKeys {
        path: String::new(),
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end())
    .map_err(|e| ProtocolError::Json(e.to_string()))
}

/// Walks one JSON value, refusing an object that repeats a key; `path` is where the value is
/// (`""` for the top level, `consent`, `items[2]`).
struct UniqueKeys {
    path: String,
}

impl UniqueKeys {
    fn child_key(&self, key: &str) -> UniqueKeys {
        let path = if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        };
        UniqueKeys { path }
    }

    fn where_(&self) -> String {
        if self.path.is_empty() {
            "the top-level object".to_string()
        } else {
            format!("object {}", self.path)
        }
    }
}

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        let mut index = 0usize;
        while seq
            .next_element_seed(UniqueKeys {
                path: format!("{}[{index}]", self.path),
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key {key:?} in {}: send each key once",
                    self.where_()
                )));
            }
            map.next_value_seed(self.child_key(&key))?;
            seen.insert(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        match check_unique_keys(text.as_bytes()) {
            Err(ProtocolError::Json(message)) => message,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn repeated_keys_are_refused_at_any_depth_naming_key_and_place() {
        let top = refused(r#"{"amount":"1.00","amount":"9.00"}"#);
        assert!(
            top.contains(r#"duplicate key "amount" in the top-level object"#),
            "{top}"
        );
        let nested =
            refused(r#"{"consent":{"amount":"1.00","x":1,"amount":"9.00"},"signature":"s"}"#);
        assert!(
            nested.contains(r#"duplicate key "amount" in object consent"#),
            "{nested}"
        );
        let in_array = refused(r#"{"items":[{"id":"a"},{"id":"b","id":"c"}]}"#);
        assert!(in_array.contains("object items[1]"), "{in_array}");
        // An escaped spelling of the same key is the same key.
        let escaped = refused(r#"{"a":1,"\u0061":2}"#);
        assert!(escaped.contains(r#"duplicate key "a""#), "{escaped}");
        // Unknown keys count too: a repeated key is refused whatever it is.
        refused(r#"{"extra":1,"extra":2}"#);
    }

    #[test]
    fn unique_keys_and_other_values_pass() {
        for text in [
            r#"{"a":1,"b":{"a":1},"c":[{"a":1},{"a":2}],"d":null,"e":true,"f":-1.5,"g":"x"}"#,
            "[]",
            "\"text\"",
            "  {}  ",
        ] {
            check_unique_keys(text.as_bytes()).unwrap();
        }
        let value = to_value(br#"{"a":{"b":[1,2]}}"#).unwrap();
        assert_eq!(value["a"]["b"][1], 2);
        #[derive(serde::Deserialize)]
        struct T {
            a: u32,
        }
        assert_eq!(from_slice::<T>(br#"{"a":7}"#).unwrap().a, 7);
    }

    #[test]
    fn malformed_json_is_an_error() {
        for text in ["", "{", r#"{"a":1} x"#, r#"{"a":}"#] {
            assert!(check_unique_keys(text.as_bytes()).is_err(), "{text:?}");
        }
        assert!(from_slice::<Value>(br#"{"a":1,"a":2}"#).is_err());
    }
}
