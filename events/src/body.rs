//! Decoding the body of an AMQP delivery.

use serde_json::{Map, Value};

use crate::json_kind;

/// Why an AMQP body cannot become a message. The `Display` text is what
/// operators see as the reason a message was dead-lettered, so it says what
/// was found, not only what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadBody {
    /// Bigger than our limit; checked before anything else so that a huge
    /// body is never decoded or parsed.
    #[error("body is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Size of the body in bytes.
        size: usize,
        /// The limit it exceeded, in bytes.
        limit: usize,
    },
    /// A `content_encoding` other than UTF-8; holds the encoding as given.
    #[error("body has content-encoding {0:?}; only UTF-8 is supported")]
    UnsupportedEncoding(String),
    /// Declared (or assumed) UTF-8 but is not.
    #[error("body is not valid UTF-8 (invalid byte at offset {valid_up_to})")]
    NotUtf8 {
        /// Length of the valid prefix, i.e. the offset of the first bad byte.
        valid_up_to: usize,
    },
    /// Not a JSON document; holds the parser's message with its position.
    #[error("body is not JSON: {0}")]
    NotJson(String),
    /// Valid JSON, but not an object; holds what it is ("array", "string",
    /// "number", "boolean" or "null").
    #[error("body is a JSON {0}, not an object")]
    NotAnObject(&'static str),
}

/// Decode an AMQP body the way a fedora-messaging consumer does, with our size
/// limit first.
///
/// fedora-messaging (`message.get_message`) decodes the bytes with the
/// message's `content_encoding`, assuming UTF-8 when it is absent, parses them
/// with `json.loads` and then requires a JSON object (the base body schema).
/// We do the same, but accept only UTF-8 (`None`, `"utf-8"` or `"utf8"`, any
/// case): that is what every publisher uses, and anything else is more likely
/// a broken publisher than a body worth decoding.
///
/// Known differences from Python's `json.loads`, all for documents no
/// fedora-messaging publisher produces (its `json.dumps` never writes them):
/// we reject `NaN`/`Infinity` literals, lone UTF-16 surrogates in escapes and
/// nesting deeper than 128 levels, which Python would accept.
pub fn decode_body(
    data: &[u8],
    content_encoding: Option<&str>,
    max_bytes: usize,
) -> Result<Map<String, Value>, BadBody> {
    if data.len() > max_bytes {
        return Err(BadBody::TooLarge {
            size: data.len(),
            limit: max_bytes,
        });
    }
    if let Some(encoding) = content_encoding
        && !encoding.eq_ignore_ascii_case("utf-8")
        && !encoding.eq_ignore_ascii_case("utf8")
    {
        return Err(BadBody::UnsupportedEncoding(encoding.to_owned()));
    }
    let text = std::str::from_utf8(data).map_err(|error| BadBody::NotUtf8 {
        valid_up_to: error.valid_up_to(),
    })?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(body)) => Ok(body),
        Ok(other) => Err(BadBody::NotAnObject(json_kind(&other))),
        Err(error) => Err(BadBody::NotJson(error.to_string())),
    }
}
