//! Strict JSON reading for headers, keys and claims.
//!
//! serde_json keeps the last of two members with the same name. JOSE
//! implementations disagree on which one wins, so a token whose header says
//! two things at once is rejected here instead of being resolved.

use std::{cell::Cell, fmt};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Maximum nesting of arrays and objects accepted in any JSON input.
pub const MAX_DEPTH: usize = 16;

/// Maximum number of JSON values (scalars, arrays and objects) in one input.
/// Each value takes about 72 bytes in memory, so this bounds what a 16 KiB
/// claims set of tiny numbers can cost: without it, 4365 two-byte numbers
/// grew to 900 KB.
pub const MAX_VALUES: usize = 1024;

/// Parses `input` as JSON, rejecting duplicate object members, nesting
/// deeper than [`MAX_DEPTH`] and more than [`MAX_VALUES`] values.
///
/// # Errors
///
/// Returns the serde_json error for malformed input, duplicate members or
/// excessive depth. The message names no input bytes beyond a member name.
pub fn parse_strict(input: &[u8]) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(input);
    let budget = Cell::new(MAX_VALUES);
    let value = StrictSeed {
        depth: 0,
        budget: &budget,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Parses `input` as a JSON object; see [`parse_strict`].
///
/// # Errors
///
/// Returns an error for anything [`parse_strict`] rejects and for a value
/// that is not an object.
pub fn parse_object(input: &[u8]) -> Result<Map<String, Value>, serde_json::Error> {
    match parse_strict(input)? {
        Value::Object(map) => Ok(map),
        _ => Err(de::Error::custom("expected a JSON object")),
    }
}

struct StrictSeed<'b> {
    depth: usize,
    budget: &'b Cell<usize>,
}

// === impl StrictSeed ===

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self.budget.get().checked_sub(1) {
            Some(left) => self.budget.set(left),
            None => return Err(de::Error::custom(format_args!("more than {MAX_VALUES} values"))),
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.nested::<A::Error>()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictSeed {
            depth,
            budget: self.budget,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let depth = self.nested::<A::Error>()?;
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate member {key:?}")));
            }
            let value = access.next_value_seed(StrictSeed {
                depth,
                budget: self.budget,
            })?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

impl StrictSeed<'_> {
    fn nested<E: de::Error>(&self) -> Result<usize, E> {
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(E::custom(format_args!("nesting deeper than {MAX_DEPTH}")));
        }
        Ok(depth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_duplicate_member() {
        let err = parse_strict(br#"{"alg":"dir","alg":"RSA1_5"}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate member"), "{err}");
    }

    #[test]
    fn rejects_duplicate_member_in_nested_object() {
        assert!(parse_strict(br#"{"epk":{"x":"a","x":"b"}}"#).is_err());
    }

    #[test]
    fn rejects_deep_nesting() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse_strict(deep.as_bytes()).is_err());
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_strict(ok.as_bytes()).is_ok());
    }

    #[test]
    fn rejects_more_than_max_values() {
        let items = |n: usize| format!("[{}]", vec!["0"; n].join(","));
        // The outer array is one value of its own.
        assert!(parse_strict(items(MAX_VALUES - 1).as_bytes()).is_ok());
        let err = parse_strict(items(MAX_VALUES).as_bytes()).unwrap_err();
        assert!(err.to_string().contains("values"), "{err}");
    }

    #[test]
    fn rejects_trailing_bytes() {
        assert!(parse_strict(br#"{"a":1} x"#).is_err());
    }

    #[test]
    fn keeps_member_order_and_numbers() {
        let value = parse_strict(br#"{"z":1,"a":-2,"f":1.5,"big":18446744073709551615}"#).unwrap();
        let text = serde_json::to_string(&value).unwrap();
        assert_eq!(text, r#"{"z":1,"a":-2,"f":1.5,"big":18446744073709551615}"#);
    }

    #[test]
    fn parse_object_rejects_array() {
        assert!(parse_object(b"[1]").is_err());
    }
}
