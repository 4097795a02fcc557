//! The values of a manifest's `[config]` table: what TOML values it takes
//! and the text each becomes.
//!
//! The actor reads config values as strings (the `wactor:actor/config`
//! import). A manifest may write them as strings, integers, floats or
//! booleans; a non-string is passed as its TOML text in a normal form
//! (`200000`, `-3`, `2.5`, `1000.0`, `true`; `1_000` and `0x10` become
//! `1000` and `16`). Arrays, tables and dates are refused with an error
//! that names the key: the actor could not read them back as one value
//! without parsing TOML itself, so the manifest should quote them.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};

/// Deserializes `[config]`: keys to strings, numbers and booleans, each
/// turned into its text.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    d.deserialize_map(ConfigVisitor)
}

/// The text an actor reads for a config value, or why the value is
/// refused (the reason, without the key).
pub fn value_text(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Integer(n) => Ok(n.to_string()),
        toml::Value::Float(x) => Ok(float_text(*x)),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Datetime(at) => Err(format!(
            "a date or time ({at}) is not a config value; quote it (\"{at}\")"
        )),
        toml::Value::Array(_) => Err(
            "an array is not a config value; write a string (e.g. \"a,b,c\" or a JSON text) \
             and split or parse it in the actor"
                .into(),
        ),
        toml::Value::Table(_) => Err(
            "a table is not a config value; use one key per value (`[config]` is flat), \
             or write a JSON text as a string"
                .into(),
        ),
    }
}

/// A float as TOML writes it: always with a fraction or an exponent
/// (`1000.0`, `2.5`, `1e300`), and `inf`, `-inf`, `nan` as TOML spells
/// them.
fn float_text(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        // Debug is the shortest text that reads back as the same f64, and
        // keeps a `.0` on whole numbers.
        format!("{x:?}")
    }
}

struct ConfigVisitor;

impl<'de> Visitor<'de> for ConfigVisitor {
    type Value = BTreeMap<String, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of config keys and values (strings, numbers or booleans)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: toml::Value = map.next_value()?;
            let text = value_text(&value)
                .map_err(|reason| de::Error::custom(format!("config key `{key}`: {reason}")))?;
            out.insert(key, text);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn floats_keep_their_fraction_and_read_back() {
        for (x, text) in [
            (1000.0, "1000.0"),
            (2.5, "2.5"),
            (-0.125, "-0.125"),
            (1e300, "1e300"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ] {
            assert_eq!(float_text(x), text);
        }
        assert_eq!(float_text(0.1).parse::<f64>().unwrap(), 0.1);
    }
}
