//! Message ids.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The id of a fedora-messaging message (the AMQP `message_id` property, or
/// `id` in the dump format).
///
/// It is kept as an opaque string on purpose: publishers use uuid4s, but
/// fedmsg-era messages carry ids such as `2022-08e2102d-...`, and messages that
/// came without any id get a [`content_hash_id`]. Nothing may assume a shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub String);

impl MessageId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for MessageId {
    fn from(value: String) -> Self {
        MessageId(value)
    }
}

impl From<&str> for MessageId {
    fn from(value: &str) -> Self {
        MessageId(value.to_owned())
    }
}

impl AsRef<str> for MessageId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// Lets a `HashMap<MessageId, _>` be looked up with a plain `&str`; sound because
// `Hash` and `Eq` are those of the inner `String`.
impl Borrow<str> for MessageId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Id for a message that arrived without one: `"sha256:"` followed by the
/// lowercase hex SHA-256 of `topic + "\n" + body`.
///
/// Deduplication needs an id that is the same every time the same message is
/// seen; a fresh uuid (what fedora-messaging itself would invent) would make
/// every redelivery look new. `body` should be the body bytes as they were on
/// the wire. For messages read from files, where those bytes are gone, this
/// crate regenerates them with [`crate::python_json_dumps`], which is exactly
/// how a Python publisher encodes a body, so both paths give the same id.
pub fn content_hash_id(topic: &str, body: &[u8]) -> MessageId {
    let mut hasher = Sha256::new();
    hasher.update(topic.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    MessageId(format!("sha256:{}", hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_matches_python_hashlib() {
        // python3 -c 'import hashlib; print(hashlib.sha256(b"org.example.topic\n{\"a\": 1}").hexdigest())'
        assert_eq!(
            content_hash_id("org.example.topic", br#"{"a": 1}"#).as_str(),
            "sha256:3e48783d1eafca28e251ed869d79ba7c7bc05fde7fa7ae061abcf2861a9563e2"
        );
    }

    #[test]
    fn content_hash_separates_topic_from_body() {
        // Without the separator these two would hash the same bytes.
        assert_ne!(
            content_hash_id("a.b", b"c{}"),
            content_hash_id("a.bc", b"{}")
        );
    }

    #[test]
    fn message_id_is_a_transparent_string() {
        let id = MessageId::from("2022-08e2102d-9514-4f85-a6ae-43761657adfd");
        assert_eq!(
            serde_json::to_string(&id).ok().as_deref(),
            Some(r#""2022-08e2102d-9514-4f85-a6ae-43761657adfd""#)
        );
        assert_eq!(id.to_string(), id.as_str());
        let back: Result<MessageId, _> = serde_json::from_str(r#""abc""#);
        assert_eq!(back.ok(), Some(MessageId("abc".to_owned())));
    }
}
