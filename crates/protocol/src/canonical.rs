//! Canonical JSON: the exact bytes that Opencharge signatures cover.
//!
//! The normative form is recursive (RFC 8785 / JCS style): object keys sorted by UTF-16 code
//! units at every level, no whitespace, strings escaped as ECMAScript `JSON.stringify` does, and
//! numbers restricted to integers that JavaScript represents exactly (|n| ≤ 2^53 − 1). Money is a
//! string, so a fractional or huge number inside a signed object is an error, not a guess.
//!
//! The legacy "replacer form" (`JSON.stringify(obj, Object.keys(obj).sort())`, used by the public
//! samples) is reproduced by [`replacer_form`] for verification of legacy peers only; it drops
//! nested fields, so anything verified through it is weak.

use crate::error::{ProtocolError, Result};
use serde::Serialize;
use serde_json::Value;

/// Largest integer JavaScript represents exactly (2^53 − 1).
pub const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// Deepest nesting accepted, so hostile input cannot exhaust the stack.
pub const MAX_DEPTH: usize = 64;

/// Returns the recursive canonical form of `value`.
pub fn canonicalize(value: &Value) -> Result<String> {
    let mut out = String::with_capacity(256);
    write_value(value, &mut out, 0)?;
    Ok(out)
}

/// Serialises `value` with serde, then canonicalises it.
pub fn canonicalize_serialize<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    canonicalize(&serde_json::to_value(value)?)
}

/// Parses JSON text and returns its canonical form.
pub fn canonicalize_str(json: &str) -> Result<String> {
    let value: Value = serde_json::from_str(json)?;
    canonicalize(&value)
}

fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

fn write_value(value: &Value, out: &mut String, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError::Canonical(format!(
            "nesting deeper than {MAX_DEPTH} levels"
        )));
    }
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out, depth + 1)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| utf16_cmp(a, b));
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                if let Some(v) = map.get(key.as_str()) {
                    write_value(v, out, depth + 1)?;
                }
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_number(n: &serde_json::Number, out: &mut String) -> Result<()> {
    let int = if let Some(i) = n.as_i64() {
        Some(i)
    } else if let Some(u) = n.as_u64() {
        i64::try_from(u).ok()
    } else {
        None
    };
    match int {
        Some(i) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&i) => {
            out.push_str(&i.to_string());
            Ok(())
        }
        Some(i) => Err(ProtocolError::Canonical(format!(
            "integer {i} is outside the range JavaScript represents exactly"
        ))),
        None => Err(ProtocolError::Canonical(format!(
            "non-integer number {n} in a signed object (money must be a decimal string)"
        ))),
    }
}

/// Writes a JSON string literal escaped exactly as ECMAScript `JSON.stringify` (RFC 8785 §3.2.2.2).
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{09}' => out.push_str("\\t"),
            '\u{0a}' => out.push_str("\\n"),
            '\u{0c}' => out.push_str("\\f"),
            '\u{0d}' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Reproduces the legacy `JSON.stringify(obj, Object.keys(obj).sort())` form: the top-level
/// keys, sorted, act as an allow-list (and a property order) at every nesting level.
/// Only objects are accepted at the top level. The result authenticates nested data only
/// where nested keys happen to share names with top-level keys: treat it as weak.
pub fn replacer_form(value: &Value) -> Result<String> {
    let Value::Object(map) = value else {
        return Err(ProtocolError::Canonical(
            "replacer form needs a JSON object".into(),
        ));
    };
    let mut allow: Vec<&String> = map.keys().collect();
    allow.sort_by(|a, b| utf16_cmp(a, b));
    let mut out = String::with_capacity(256);
    write_replacer(value, &allow, &mut out, 0)?;
    Ok(out)
}

fn write_replacer(value: &Value, allow: &[&String], out: &mut String, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError::Canonical(format!(
            "nesting deeper than {MAX_DEPTH} levels"
        )));
    }
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_replacer(item, allow, out, depth + 1)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            let mut first = true;
            for key in allow {
                if let Some(v) = map.get(key.as_str()) {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    write_string(key, out);
                    out.push(':');
                    write_replacer(v, allow, out, depth + 1)?;
                }
            }
            out.push('}');
        }
        scalar => write_value(scalar, out, depth)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tv3_nested_proof_recursive_and_replacer_forms() {
        let proof = json!({"txid":"barclays_tx_456","issuer":100,
            "from":{"ocid":200,"reference":"paypal_tx_123"},
            "to":{"reference":"momo_tx_789","ocid":300},
            "amount":"10000.00","currency":"UGX","timestamp":1706500500,
            "memo":"Settlement for ORD-2024-001"});
        assert_eq!(
            canonicalize(&proof).unwrap(),
            r#"{"amount":"10000.00","currency":"UGX","from":{"ocid":200,"reference":"paypal_tx_123"},"issuer":100,"memo":"Settlement for ORD-2024-001","timestamp":1706500500,"to":{"ocid":300,"reference":"momo_tx_789"},"txid":"barclays_tx_456"}"#
        );
        assert_eq!(
            replacer_form(&proof).unwrap(),
            r#"{"amount":"10000.00","currency":"UGX","from":{},"issuer":100,"memo":"Settlement for ORD-2024-001","timestamp":1706500500,"to":{},"txid":"barclays_tx_456"}"#
        );
    }

    #[test]
    fn tv4_order_recursive_and_replacer_forms() {
        let order = json!({"id":"ord_abc123","ocid":500,"amount":"15.00","currency":"USD",
            "items":[{"id":"item_001","name":"Large Coffee","quantity":2,"price":"5.00"},
                     {"id":"item_002","name":"Croissant","quantity":1,"price":"5.00"}],
            "createdAt":1706313600,"expiresAt":1706400000,"accepts":[100,101,102]});
        assert_eq!(
            canonicalize(&order).unwrap(),
            r#"{"accepts":[100,101,102],"amount":"15.00","createdAt":1706313600,"currency":"USD","expiresAt":1706400000,"id":"ord_abc123","items":[{"id":"item_001","name":"Large Coffee","price":"5.00","quantity":2},{"id":"item_002","name":"Croissant","price":"5.00","quantity":1}],"ocid":500}"#
        );
        assert_eq!(
            replacer_form(&order).unwrap(),
            r#"{"accepts":[100,101,102],"amount":"15.00","createdAt":1706313600,"currency":"USD","expiresAt":1706400000,"id":"ord_abc123","items":[{"id":"item_001"},{"id":"item_002"}],"ocid":500}"#
        );
    }

    #[test]
    fn tv2_old_proof_is_already_canonical() {
        let s = r#"{"amount":"10000.00","currency":"UGX","from":200,"issuer":100,"timestamp":1706500500,"to":300,"txid":"test_tx_001"}"#;
        assert_eq!(canonicalize_str(s).unwrap(), s);
    }

    #[test]
    fn keys_sort_by_utf16_code_units_not_bytes() {
        // U+FF61 (one UTF-16 unit 0xFF61) sorts after U+1F600 (surrogates 0xD83D...) in UTF-16,
        // but before it in UTF-8 byte order. RFC 8785 §3.2.3 requires UTF-16 order.
        let v = json!({"\u{ff61}": 1, "\u{1f600}": 2, "a": 3, "B": 4});
        assert_eq!(
            canonicalize(&v).unwrap(),
            "{\"B\":4,\"a\":3,\"\u{1f600}\":2,\"\u{ff61}\":1}"
        );
    }

    #[test]
    fn strings_escape_like_json_stringify() {
        let v = json!({"s": "q\"b\\\u{08}\u{09}\n\u{0c}\r\u{01}\u{1f}/é\u{2028}"});
        assert_eq!(
            canonicalize(&v).unwrap(),
            "{\"s\":\"q\\\"b\\\\\\b\\t\\n\\f\\r\\u0001\\u001f/é\u{2028}\"}"
        );
    }

    #[test]
    fn rejects_floats_and_unsafe_integers() {
        for bad in [
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":9007199254740992}"#,
            r#"{"a":-9007199254740992}"#,
            r#"{"a":18446744073709551615}"#,
        ] {
            assert!(
                matches!(canonicalize_str(bad), Err(ProtocolError::Canonical(_))),
                "{bad} must be rejected"
            );
        }
        assert_eq!(
            canonicalize_str(r#"{"a":-9007199254740991,"b":0}"#).unwrap(),
            r#"{"a":-9007199254740991,"b":0}"#
        );
    }

    #[test]
    fn rejects_excessive_depth_without_overflowing() {
        let mut v = json!(1);
        for _ in 0..(MAX_DEPTH + 5) {
            v = json!([v]);
        }
        assert!(canonicalize(&v).is_err());
        assert!(replacer_form(&json!({ "a": v })).is_err());
    }

    #[test]
    fn bad_json_text_is_an_error() {
        for bad in ["", "{", "{\"a\":}", "nul", "[1,]", "\u{feff}{}"] {
            assert!(canonicalize_str(bad).is_err(), "{bad:?}");
        }
        assert!(replacer_form(&json!([1, 2])).is_err());
    }

    proptest::proptest! {
        #[test]
        fn canonical_form_is_a_fixed_point(keys in proptest::collection::vec("\\PC{0,8}", 0..8),
                                           n in -1000i64..1000) {
            let mut map = serde_json::Map::new();
            for (i, k) in keys.iter().enumerate() {
                map.insert(k.clone(), json!([n, i, k]));
            }
            let once = canonicalize(&Value::Object(map)).unwrap();
            let twice = canonicalize_str(&once).unwrap();
            proptest::prop_assert_eq!(once, twice);
        }
    }
}
