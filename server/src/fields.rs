//! Reading the fields of a JSON object, for both ingest paths: one set of
//! readers, strict for `POST /api/ingest` (an API with a contract: a number
//! is a JSON number) and lenient for MQTT (observers' firmware writes
//! `"SNR": "7.25 dB"`, names fields in two spellings, sends `""` for
//! nothing). Errors name the key and what is wrong with it.

use serde_json::{Map, Value};

/// How forgiving a reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// JSON strings and numbers only, as they are.
    Strict,
    /// Strings trimmed (empty means absent), numbers written out as text,
    /// and strings that start with a number read as that number.
    Lenient,
}

/// A field with a value of the wrong kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadField {
    pub(crate) key: &'static str,
    pub(crate) message: String,
}

impl std::fmt::Display for BadField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

fn bad(key: &'static str, message: String) -> BadField {
    BadField { key, message }
}

/// How an unexpected JSON value is named in error messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The first of `keys` present with a non-null value.
fn first<'a>(
    obj: &'a Map<String, Value>,
    keys: &[&'static str],
) -> Option<(&'static str, &'a Value)> {
    keys.iter()
        .find_map(|k| obj.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
}

/// The first present key among `keys` as text.
pub(crate) fn text(
    obj: &Map<String, Value>,
    keys: &[&'static str],
    mode: Mode,
) -> Result<Option<String>, BadField> {
    match (first(obj, keys), mode) {
        (None, _) => Ok(None),
        (Some((_, Value::String(s))), Mode::Strict) => Ok(Some(s.clone())),
        (Some((_, Value::String(s))), Mode::Lenient) => {
            let s = s.trim();
            Ok((!s.is_empty()).then(|| s.to_string()))
        }
        (Some((_, Value::Number(n))), Mode::Lenient) => Ok(Some(n.to_string())),
        (Some((k, other)), _) => Err(bad(k, format!("must be a string, got {}", kind(other)))),
    }
}

/// The first present key among `keys` as a finite number.
pub(crate) fn number(
    obj: &Map<String, Value>,
    keys: &[&'static str],
    mode: Mode,
) -> Result<Option<f64>, BadField> {
    match (first(obj, keys), mode) {
        (None, _) => Ok(None),
        (Some((k, Value::Number(n))), _) => n
            .as_f64()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| bad(k, "must be a finite number".into())),
        (Some((k, Value::String(s))), Mode::Lenient) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            leading_number(s)
                .map(Some)
                .ok_or_else(|| bad(k, format!("{s:?} does not start with a number")))
        }
        (Some((k, other)), _) => Err(bad(k, format!("must be a number, got {}", kind(other)))),
    }
}

/// The first present key among `keys` as an integer: strictly a JSON
/// integer; leniently any number rounded (within ±10^15).
pub(crate) fn integer(
    obj: &Map<String, Value>,
    keys: &[&'static str],
    mode: Mode,
) -> Result<Option<i64>, BadField> {
    if mode == Mode::Strict {
        return match first(obj, keys) {
            None => Ok(None),
            Some((k, Value::Number(n))) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| bad(k, "must be an integer".into())),
            Some((k, other)) => Err(bad(k, format!("must be an integer, got {}", kind(other)))),
        };
    }
    let Some(v) = number(obj, keys, mode)? else {
        return Ok(None);
    };
    let r = v.round();
    if r.abs() < 1e15 {
        Ok(Some(r as i64))
    } else {
        Err(bad(keys[0], format!("{v} is out of range")))
    }
}

/// `"-92 dBm"` → -92.0: the longest prefix of sign, digits and one decimal
/// point, parsed.
fn leading_number(s: &str) -> Option<f64> {
    let mut end = 0;
    let mut seen_dot = false;
    for (i, c) in s.char_indices() {
        let ok = match c {
            '+' | '-' => i == 0,
            '.' if !seen_dot => {
                seen_dot = true;
                true
            }
            '0'..='9' => true,
            _ => false,
        };
        if !ok {
            break;
        }
        end = i + c.len_utf8();
    }
    s[..end].parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn strict_takes_json_types_only() {
        let o = obj(json!({"a": "x", "n": 7.5, "s": "7", "i": 3, "f": 1.5, "z": null}));
        assert_eq!(text(&o, &["a"], Mode::Strict), Ok(Some("x".into())));
        assert_eq!(
            text(&o, &["z", "a"], Mode::Strict),
            Ok(Some("x".into())),
            "null is absent"
        );
        assert!(text(&o, &["n"], Mode::Strict)
            .unwrap_err()
            .message
            .contains("got a number"));
        assert_eq!(number(&o, &["n"], Mode::Strict), Ok(Some(7.5)));
        assert!(number(&o, &["s"], Mode::Strict)
            .unwrap_err()
            .message
            .contains("got a string"));
        assert_eq!(integer(&o, &["i"], Mode::Strict), Ok(Some(3)));
        assert_eq!(
            integer(&o, &["f"], Mode::Strict).unwrap_err().to_string(),
            "f: must be an integer"
        );
    }

    #[test]
    fn lenient_reads_what_firmware_sends() {
        let o = obj(json!({"SNR": "7.25 dB", "rssi": "-92dBm", "e": " ", "v": 12, "big": 1e300}));
        assert_eq!(number(&o, &["SNR", "snr"], Mode::Lenient), Ok(Some(7.25)));
        assert_eq!(
            number(&o, &["RSSI", "rssi"], Mode::Lenient),
            Ok(Some(-92.0))
        );
        assert_eq!(
            number(&o, &["e"], Mode::Lenient),
            Ok(None),
            "empty is absent"
        );
        assert_eq!(text(&o, &["e"], Mode::Lenient), Ok(None));
        assert_eq!(text(&o, &["v"], Mode::Lenient), Ok(Some("12".into())));
        assert!(integer(&o, &["big"], Mode::Lenient)
            .unwrap_err()
            .message
            .contains("out of range"));
        let n = obj(json!({"x": "n/a"}));
        assert_eq!(
            number(&n, &["x"], Mode::Lenient).unwrap_err().to_string(),
            "x: \"n/a\" does not start with a number"
        );
        assert_eq!(leading_number("+3.5.1"), Some(3.5));
        assert_eq!(leading_number("-"), None);
    }
}
