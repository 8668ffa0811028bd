//! Decoding the body of an AMQP delivery.

use serde_json::{Map, Value};

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
    /// Valid JSON with a NUL character (`\u0000`) in a string or a key.
    /// Python accepts it, but PostgreSQL cannot store it in `jsonb` or `text`,
    /// so such a body is kept as bytes and recorded as dead.
    #[error("body contains a NUL character (\\u0000), which the inbox cannot store as JSON")]
    ContainsNul,
    /// Valid JSON nested deeper than [`MAX_BODY_DEPTH`]: stored, it could
    /// not be read back (serde_json stops at 128 levels), so it is refused
    /// before it reaches the inbox.
    #[error("body nests {depth} levels deep, over the limit of {limit}")]
    TooDeep {
        /// How deep the body nests (an object of scalars is 1).
        depth: usize,
        /// The limit, [`MAX_BODY_DEPTH`].
        limit: usize,
    },
}

/// The deepest nesting of arrays and objects a body may have. Real Fedora
/// messages nest fewer than ten levels; serde_json, which the decider and
/// the API read bodies back with, refuses more than 128. Half of that leaves
/// room for the envelope a body is sometimes wrapped in (a replay file, a
/// datagrepper page) without coming near the reader's limit.
pub const MAX_BODY_DEPTH: usize = 64;

/// The deepest nesting a message's headers may have, the header table itself
/// counted as the first level. fedora-messaging's headers are flat (strings,
/// numbers and booleans: 1), so deeper headers come from no Fedora Messaging
/// publisher; the limit keeps every later step over them (conversion, NUL
/// check, storage, the API) shallow.
pub const MAX_HEADER_DEPTH: usize = 32;

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
/// nesting deeper than [`MAX_BODY_DEPTH`] levels ([`BadBody::TooDeep`]),
/// which Python would accept; and NUL characters, which Python accepts but
/// PostgreSQL cannot store ([`BadBody::ContainsNul`]).
pub fn decode_body(
    data: &[u8],
    content_encoding: Option<&str>,
    max_bytes: usize,
) -> Result<Map<String, Value>, BadBody> {
    let text = check_body(data, content_encoding, max_bytes)?;
    serde_json::from_str(text).map_err(|error| BadBody::NotJson(error.to_string()))
}

/// [`decode_body`]'s checks without building the body: returns the JSON text
/// of the object (surrounding whitespace removed), for a caller that stores
/// the text as it is. The ingest path uses this, so a message is parsed once
/// (here, to validate it) and never turned into a tree and back into text.
pub fn check_body<'a>(
    data: &'a [u8],
    content_encoding: Option<&str>,
    max_bytes: usize,
) -> Result<&'a str, BadBody> {
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
    let raw: &serde_json::value::RawValue =
        serde_json::from_str(text).map_err(|error| BadBody::NotJson(error.to_string()))?;
    let json = raw.get();
    let kind = match json.as_bytes().first() {
        Some(b'{') => None,
        Some(b'[') => Some("array"),
        Some(b'"') => Some("string"),
        Some(b't' | b'f') => Some("boolean"),
        Some(b'n') => Some("null"),
        _ => Some("number"),
    };
    if let Some(kind) = kind {
        return Err(BadBody::NotAnObject(kind));
    }
    let depth = nesting_depth(json);
    if depth > MAX_BODY_DEPTH {
        return Err(BadBody::TooDeep {
            depth,
            limit: MAX_BODY_DEPTH,
        });
    }
    if json.contains("u0000") && has_nul(json) {
        return Err(BadBody::ContainsNul);
    }
    Ok(json)
}

/// How deeply a JSON document (known to be valid) nests its arrays and
/// objects, read off its text in one pass: the parser that validated it
/// ([`serde_json::value::RawValue`]) has no depth limit, and no tree is built.
pub fn nesting_depth(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &byte in json.as_bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// How deeply a JSON value nests (a scalar is 0, an object of scalars 1),
/// counted without recursion, so that any value can be measured.
pub fn value_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        match value {
            Value::Array(items) => {
                deepest = deepest.max(depth + 1);
                stack.extend(items.iter().map(|v| (v, depth + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(depth + 1);
                stack.extend(map.values().map(|v| (v, depth + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// Whether a JSON document (known to be valid) has a NUL character in a key
/// or a string. Only called when the text contains `u0000`, so the common
/// case never builds a tree.
fn has_nul(json: &str) -> bool {
    fn walk(value: &Value) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(walk),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || walk(v)),
            _ => false,
        }
    }
    serde_json::from_str::<Value>(json).is_ok_and(|value| walk(&value))
}
