//! CPython's `json.dumps` with default arguments, reproduced byte for byte.
//!
//! fedora-messaging publishers encode a body with `json.dumps(body)`, so these
//! are the bytes that were on the wire. We need them whenever a body reaches
//! us without its original bytes (dump files, datagrepper, fedmsg archives)
//! but something is derived from the bytes, such as [`crate::content_hash_id`].

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// Python's `json.dumps(value)` with default arguments, byte for byte.
///
/// That means: `", "` between items and `": "` after keys; keys in the order
/// the map holds them (with serde_json's `preserve_order`, the order of the
/// source document, as Python's dicts do); every character outside printable
/// ASCII escaped as `\uXXXX` with lowercase hex, characters beyond the Basic
/// Multilingual Plane as a UTF-16 surrogate pair, and `\n`, `\r`, `\t`, `\b`,
/// `\f`, `\"`, `\\` in their short forms; floats as Python's `repr()` (the
/// shortest text that reads back as the same float, `1590993124.0` keeping its
/// `.0`, an exponent such as `1e+16` or `1e-05` outside `1e-4 <= |x| < 1e16`).
///
/// Where the parsed value has already lost information, the output cannot
/// match the Python publisher's: integers beyond the 64-bit range were turned
/// into floats by serde_json, `-0` reads as the float `-0.0` (Python: `0`),
/// and duplicate keys kept only the last value (so does Python, at the first
/// key's position, which serde_json's ordered map also does).
pub fn python_json_dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// [`python_json_dumps`] of an object held as a bare map, without cloning it
/// into a `Value` first.
pub(crate) fn dumps_object(map: &Map<String, Value>) -> String {
    let mut out = String::new();
    write_object(&mut out, map);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(out, number),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_object(out: &mut String, map: &Map<String, Value>) {
    out.push('{');
    for (position, (key, value)) in map.iter().enumerate() {
        if position > 0 {
            out.push_str(", ");
        }
        write_string(out, key);
        out.push_str(": ");
        write_value(out, value);
    }
    out.push('}');
}

fn write_number(out: &mut String, number: &Number) {
    if let Some(integer) = number.as_i64() {
        let _ = write!(out, "{integer}");
    } else if let Some(integer) = number.as_u64() {
        let _ = write!(out, "{integer}");
    } else if let Some(float) = number.as_f64() {
        out.push_str(&python_float_repr(float));
    } else {
        // Unreachable without serde_json's arbitrary_precision; its own text
        // is the best we have then.
        let _ = write!(out, "{number}");
    }
}

/// CPython's `float.__repr__` (and json's spelling of the non-finite values,
/// which serde_json values cannot hold anyway).
///
/// CPython prints the shortest digit string that reads back as the same
/// float, which is also what Rust's `{:e}` gives; only the layout differs.
/// With the digits `d1 d2 ...` and the value `0.d1d2... * 10^point`, CPython
/// uses plain notation when `-4 < point <= 16`, and otherwise `d1.d2...e±XX`
/// with a signed exponent of at least two digits; plain notation always has a
/// fractional part, adding `.0` when needed.
fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .into();
    }

    let scientific = format!("{:e}", value.abs());
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return format!("{value:?}");
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return format!("{value:?}");
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let point = exponent + 1;

    let mut out = String::new();
    if value < 0.0 {
        out.push('-');
    }
    if point <= -4 || point > 16 {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exponent.unsigned_abs());
    } else if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
        out.push_str(&digits);
    } else {
        let point = point.unsigned_abs() as usize;
        if point >= digits.len() {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', point - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
    out
}

fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_match_python_repr() {
        // Left: the float; right: what CPython 3.11 prints for json.dumps(x).
        let cases = [
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (0.001, "0.001"),
            (1.5e300, "1.5e+300"),
            (5e-324, "5e-324"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (100.0, "100.0"),
            (1590993124.0, "1590993124.0"),
            (1763385036.123456, "1763385036.123456"),
            (0.30000000000000004, "0.30000000000000004"),
            (1e22, "1e+22"),
            (1234567890123456.7, "1234567890123456.8"),
            (-1.5e-7, "-1.5e-07"),
        ];
        for (input, expected) in cases {
            assert_eq!(python_float_repr(input), expected, "{input:e}");
        }
        assert_eq!(python_float_repr(f64::NAN), "NaN");
        assert_eq!(python_float_repr(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn strings_are_escaped_like_ensure_ascii() {
        // python3 -c 'import json; print(json.dumps({"a":"\x7f\x00\x1f/\u2028\ufeff\U0001F600 é"}))'
        let value = json!({"a": "\u{7f}\u{0}\u{1f}/\u{2028}\u{feff}\u{1F600} é"});
        assert_eq!(
            python_json_dumps(&value),
            r#"{"a": "\u007f\u0000\u001f/\u2028\ufeff\ud83d\ude00 \u00e9"}"#
        );
    }

    #[test]
    fn negative_zero_integer_is_a_known_difference() {
        // Python reads `-0` as the integer 0 and prints "0"; serde_json reads
        // it as the float -0.0, so we print "-0.0". No publisher's json.dumps
        // writes `-0`, so only hand-made files can hit this.
        let value: Value = serde_json::from_str("-0").expect("valid JSON");
        assert_eq!(python_json_dumps(&value), "-0.0");
    }

    #[test]
    fn containers_use_python_separators() {
        let value = json!({"b": [1, [], {}, {"x": null}], "a": true});
        assert_eq!(
            python_json_dumps(&value),
            r#"{"b": [1, [], {}, {"x": null}], "a": true}"#
        );
        assert_eq!(dumps_object(&Map::new()), "{}");
    }
}
