//! Fedora Messaging envelopes and the forms they are stored in, with no I/O.
//!
//! Everything that touches raw fedora-messaging JSON lives here, so the rest of
//! the worker deals in [`Envelope`]s and never re-learns the wire format:
//!
//! - [`decode_body`] turns the bytes of an AMQP delivery into a body the way a
//!   fedora-messaging consumer does, after checking our own size limit.
//! - [`parse_serialized`] reads the files people hand us for replays and tests:
//!   `fedora-messaging`'s dump format (one object, an array, JSON Lines), a
//!   datagrepper `/v2/search` page, and fedmsg-era messages.
//! - [`Envelope::to_serialized`] writes the dump format back.
//! - [`python_json_dumps`] reproduces the exact bytes a Python publisher put on
//!   the wire, so that hashes and ids computed from a body agree no matter
//!   whether the body came from the broker or from a file.
//!
//! ```
//! let text = r#"{"topic": "org.fedoraproject.prod.buildsys.tag",
//!               "headers": {"sent-at": "2024-06-20T15:04:24+00:00"},
//!               "id": "0b2addd5-e1b8-4ebe-9e2a-9b1b21a8bbad",
//!               "body": {"name": "python-specfile", "tag": "f40-build-side-12345"}}"#;
//! let entries = events::parse_serialized(text)?;
//! let envelope = entries.into_iter().next().expect("one entry")?;
//! assert_eq!(envelope.id.as_str(), "0b2addd5-e1b8-4ebe-9e2a-9b1b21a8bbad");
//! assert_eq!(
//!     events::python_json_dumps(&envelope.to_serialized()["body"]),
//!     r#"{"name": "python-specfile", "tag": "f40-build-side-12345"}"#
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The fedora-messaging behaviour mirrored here was read in fedora_messaging
//! 3.9.1 (`fedora_messaging/message.py`).

mod body;
mod envelope;
mod id;
mod pyjson;
mod serialized;
pub mod states;
pub mod typed;

pub use body::{
    BadBody, MAX_BODY_DEPTH, MAX_HEADER_DEPTH, check_body, decode_body, nesting_depth, value_depth,
};
pub use envelope::{EntryError, Envelope, headers};
pub use id::{MessageId, content_hash_id};
pub use pyjson::python_json_dumps;
pub use serialized::{FormatError, parse_serialized};

use serde_json::Value;

/// The JSON type of a value with an article ("an array", "a string", ...),
/// to read well after "found".
pub(crate) fn json_kind_with_article(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
