//! The message envelope and its serialized ("dump") form.

use chrono::{DateTime, FixedOffset, Utc};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::id::{MessageId, content_hash_id};
use crate::pyjson::dumps_object;
use crate::{json_kind_with_article, python_json_dumps};

/// Names of the AMQP headers fedora-messaging sets, so that callers do not
/// spell them out by hand.
pub mod headers {
    /// Entry-point name of the schema class, e.g. `pagure.git.receive`.
    /// fedmsg-era and misbehaving publishers leave it out.
    pub const SCHEMA: &str = "fedora_messaging_schema";
    /// Python distribution that ships the schema, e.g. `pagure_messages`.
    pub const SCHEMA_PACKAGE: &str = "fedora_messaging_schema_package";
    /// 10 (debug), 20 (info), 30 (warning) or 40 (error).
    pub const SEVERITY: &str = "fedora_messaging_severity";
    /// When the publisher built the message: ISO 8601 with an offset, whole
    /// seconds, e.g. `2024-06-20T15:04:24+00:00`.
    pub const SENT_AT: &str = "sent-at";
    /// Copy of the AMQP priority, for debugging only.
    pub const PRIORITY: &str = "priority";
    /// Prefix of the filter headers: `fedora_messaging_<kind>_<name>: true`,
    /// with kind one of `user`, `group`, `rpm`, `container`, `module`,
    /// `flatpak`.
    pub const FILTER_PREFIX: &str = "fedora_messaging_";
}

/// One fedora-messaging message, independent of how it reached us (AMQP,
/// dump file, datagrepper, fedmsg-era archive).
///
/// The fields are the six of fedora-messaging's serialized form. `headers` and
/// `body` stay raw JSON because schemas differ per topic and are interpreted
/// elsewhere; with serde_json's `preserve_order` their key order is kept, which
/// matters for reproducing the wire bytes (see [`python_json_dumps`]).
///
/// Note that `Map` equality ignores key order, so `==` on envelopes does too.
///
/// Serde (de)serializes an envelope as its serialized form, i.e. the same as
/// [`Envelope::to_serialized`] and [`Envelope::from_serialized`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The message id; see [`MessageId`] for what it may look like.
    pub id: MessageId,
    /// The topic (AMQP routing key), e.g. `org.fedoraproject.prod.buildsys.tag`.
    pub topic: String,
    /// The AMQP headers. See [`headers`] for the names fedora-messaging uses.
    pub headers: Map<String, Value>,
    /// The message body, always a JSON object (fedora-messaging requires it).
    pub body: Map<String, Value>,
    /// The queue the message was consumed from, when known.
    pub queue: Option<String>,
    /// The AMQP priority the message was published with, when known.
    pub priority: Option<i64>,
}

/// Why one entry of a file could not be turned into an [`Envelope`].
///
/// One bad entry never stops the others (see [`crate::parse_serialized`]), so
/// the error says which one it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {index}: {reason}")]
pub struct EntryError {
    /// 0-based position of the entry: its index in an array or a datagrepper
    /// page, or its line number in JSON Lines (blank lines count). Always 0
    /// from [`Envelope::from_serialized`], which sees a single entry.
    pub index: usize,
    /// What is wrong with it, for people.
    pub reason: String,
}

impl Envelope {
    /// When the publisher sent the message, from the `sent-at` header.
    ///
    /// `None` when the header is missing, not a string, or not an ISO 8601
    /// date-time with an offset: old and foreign publishers get this wrong, and
    /// a bad timestamp must never make a message unusable.
    pub fn sent_at(&self) -> Option<DateTime<FixedOffset>> {
        let text = self.headers.get(headers::SENT_AT)?.as_str()?;
        DateTime::parse_from_rfc3339(text.trim()).ok()
    }

    /// The schema name from the `fedora_messaging_schema` header, if any.
    pub fn schema(&self) -> Option<&str> {
        self.headers.get(headers::SCHEMA)?.as_str()
    }

    /// The severity from the `fedora_messaging_severity` header.
    ///
    /// Any JSON integer is returned as is, even one fedora-messaging would not
    /// publish (it only uses 10, 20, 30 and 40); judging it is the caller's
    /// business. `None` when missing or not an integer.
    pub fn severity(&self) -> Option<i64> {
        self.headers.get(headers::SEVERITY)?.as_i64()
    }

    /// The names listed by the filter headers of one kind, in header order.
    ///
    /// fedora-messaging marks the users, groups, packages... a message is about
    /// with headers like `fedora_messaging_rpm_gdb: true`; `filter_values("rpm")`
    /// then gives `["gdb"]`. Headers whose value is not `true` are skipped.
    pub fn filter_values(&self, kind: &str) -> Vec<&str> {
        let prefix = format!("{}{kind}_", headers::FILTER_PREFIX);
        self.headers
            .iter()
            .filter(|(_, value)| value.as_bool() == Some(true))
            .filter_map(|(name, _)| name.strip_prefix(prefix.as_str()))
            .filter(|name| !name.is_empty())
            .collect()
    }

    /// The serialized ("dump") form: one JSON object with the keys `topic`,
    /// `headers`, `id`, `body`, `queue` and `priority`, in that order, all
    /// always present (`queue` and `priority` as `null` when unknown).
    ///
    /// fedora-messaging's own `dumps()` sorts keys; we keep a fixed order
    /// instead so that files we write are easy to read top-down. Both read
    /// back the same.
    pub fn to_serialized(&self) -> Value {
        let mut object = Map::with_capacity(6);
        object.insert("topic".into(), Value::String(self.topic.clone()));
        object.insert("headers".into(), Value::Object(self.headers.clone()));
        object.insert("id".into(), Value::String(self.id.0.clone()));
        object.insert("body".into(), Value::Object(self.body.clone()));
        object.insert(
            "queue".into(),
            self.queue.clone().map_or(Value::Null, Value::String),
        );
        object.insert(
            "priority".into(),
            self.priority.map_or(Value::Null, Value::from),
        );
        Value::Object(object)
    }

    /// Read one message in fedora-messaging's serialized form, or in the
    /// fedmsg-era shape.
    ///
    /// Serialized form (what `fedora-messaging`'s `dumps()` writes and
    /// datagrepper's `/v2/` serves): `topic` (string) and `body` (object) are
    /// required. `headers` may be missing or null (empty then), `queue` and
    /// `priority` may be missing or null. A missing, null or empty `id` is
    /// replaced by [`content_hash_id`] of the topic and the body as a Python
    /// publisher would have encoded it, so that the same message always gets
    /// the same id. Unknown keys (datagrepper's `meta`, for one) are ignored.
    ///
    /// fedmsg-era shape (datanommer/datagrepper `/raw` records: `msg_id`,
    /// `topic`, `msg`, `timestamp`, optional `headers`, plus `i`, `username`,
    /// `signature`, `certificate`... which are dropped), recognised by having
    /// `msg` and no `body`: the id is `msg_id` (content hash when missing),
    /// the body is `msg`, the headers are the record's `headers` plus, unless
    /// already there, a `sent-at` made from `timestamp` (epoch seconds) the way
    /// fedora-messaging formats it, e.g. `2021-12-08T16:00:02+00:00`. Queue and
    /// priority are unknown.
    ///
    /// The returned [`EntryError`] has index 0.
    pub fn from_serialized(value: Value) -> Result<Envelope, EntryError> {
        parse_entry(value).map_err(|reason| EntryError { index: 0, reason })
    }
}

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("topic", &self.topic)?;
        map.serialize_entry("headers", &self.headers)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("body", &self.body)?;
        map.serialize_entry("queue", &self.queue)?;
        map.serialize_entry("priority", &self.priority)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        parse_entry(value).map_err(serde::de::Error::custom)
    }
}

/// The work of [`Envelope::from_serialized`], with a bare reason as error so
/// that callers can attach the entry's position.
pub(crate) fn parse_entry(value: Value) -> Result<Envelope, String> {
    let Value::Object(mut object) = value else {
        return Err(format!(
            "expected a message object, found {}",
            json_kind_with_article(&value)
        ));
    };
    if !object.contains_key("body")
        && let Some(msg) = object.remove("msg")
    {
        return parse_legacy(object, msg);
    }

    let topic = take_topic(&mut object)?;
    let body = match object.remove("body") {
        Some(Value::Object(body)) => body,
        Some(other) => {
            return Err(format!(
                "\"body\" must be a JSON object, found {}",
                json_kind_with_article(&other)
            ));
        }
        None => {
            return Err(
                "missing \"body\" (and no \"msg\", so not a fedmsg-era message either)".into(),
            );
        }
    };
    let headers = take_headers(&mut object)?;
    let id = match take_optional_string(&mut object, "id")? {
        Some(id) if !id.is_empty() => MessageId(id),
        _ => hash_id(&topic, &body),
    };
    let queue = take_optional_string(&mut object, "queue")?;
    let priority = match object.remove("priority") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(other) => {
            return Err(format!(
                "\"priority\" must be an integer or null, found {}",
                describe(&other)
            ));
        }
    };
    Ok(Envelope {
        id,
        topic,
        headers,
        body,
        queue,
        priority,
    })
}

fn parse_legacy(mut object: Map<String, Value>, msg: Value) -> Result<Envelope, String> {
    let topic = take_topic(&mut object)?;
    let body = match msg {
        Value::Object(body) => body,
        other => {
            return Err(format!(
                "fedmsg-era message: \"msg\" must be a JSON object, found {}",
                json_kind_with_article(&other)
            ));
        }
    };
    let mut headers = take_headers(&mut object)?;
    if !headers.contains_key(headers::SENT_AT)
        && let Some(sent_at) = object.get("timestamp").and_then(epoch_to_sent_at)
    {
        headers.insert(headers::SENT_AT.into(), Value::String(sent_at));
    }
    let id = match take_optional_string(&mut object, "msg_id")? {
        Some(id) if !id.is_empty() => MessageId(id),
        _ => hash_id(&topic, &body),
    };
    Ok(Envelope {
        id,
        topic,
        headers,
        body,
        queue: None,
        priority: None,
    })
}

fn take_topic(object: &mut Map<String, Value>) -> Result<String, String> {
    match object.remove("topic") {
        Some(Value::String(topic)) => Ok(topic),
        Some(other) => Err(format!(
            "\"topic\" must be a string, found {}",
            json_kind_with_article(&other)
        )),
        None => Err("missing \"topic\"".into()),
    }
}

fn take_headers(object: &mut Map<String, Value>) -> Result<Map<String, Value>, String> {
    match object.remove("headers") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(headers)) => Ok(headers),
        Some(other) => Err(format!(
            "\"headers\" must be a JSON object, found {}",
            json_kind_with_article(&other)
        )),
    }
}

fn take_optional_string(
    object: &mut Map<String, Value>,
    key: &str,
) -> Result<Option<String>, String> {
    match object.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(format!(
            "\"{key}\" must be a string or null, found {}",
            json_kind_with_article(&other)
        )),
    }
}

/// A value for an error message: short values are quoted as they are, to make
/// "priority must be an integer, found 2.5" obvious; long ones only by type.
fn describe(value: &Value) -> String {
    let text = python_json_dumps(value);
    if text.len() <= 40 && !matches!(value, Value::Array(_) | Value::Object(_)) {
        text
    } else {
        json_kind_with_article(value).to_owned()
    }
}

fn hash_id(topic: &str, body: &Map<String, Value>) -> MessageId {
    content_hash_id(topic, dumps_object(body).as_bytes())
}

/// fedmsg `timestamp` (epoch seconds, integer or float) to a `sent-at` value
/// as fedora-messaging writes it: Python's
/// `datetime.fromtimestamp(ts, timezone.utc).replace(microsecond=0).isoformat()`.
///
/// Python first rounds to the microsecond (half to even) and then drops the
/// microseconds, so 1.9999999 becomes 2 but 1.9999 stays 1. `None` for values
/// Python's datetime could not hold (years outside 1..=9999).
fn epoch_to_sent_at(timestamp: &Value) -> Option<String> {
    let seconds = timestamp.as_f64()?;
    if !seconds.is_finite() {
        return None;
    }
    let whole = seconds.trunc();
    let micros = ((seconds - whole) * 1e6).round_ties_even();
    // Far outside chrono's and Python's range anyway; keeps the cast exact.
    if whole.abs() > 1e15 {
        return None;
    }
    let mut whole = whole as i64;
    if micros >= 1e6 {
        whole += 1;
    } else if micros < 0.0 {
        whole -= 1;
    }
    let when = DateTime::<Utc>::from_timestamp(whole, 0)?;
    let year = chrono::Datelike::year(&when);
    if !(1..=9999).contains(&year) {
        return None;
    }
    Some(when.format("%Y-%m-%dT%H:%M:%S+00:00").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn epoch_conversion_follows_python_rounding() {
        // Expected values printed by CPython 3.11:
        // datetime.fromtimestamp(t, timezone.utc).replace(microsecond=0).isoformat()
        let cases = [
            (json!(1638979202.0), "2021-12-08T16:00:02+00:00"),
            (json!(1493386183), "2017-04-28T13:29:43+00:00"),
            (json!(1.9999999), "1970-01-01T00:00:02+00:00"),
            (json!(-0.5), "1969-12-31T23:59:59+00:00"),
            (json!(1493386183.9999996), "2017-04-28T13:29:44+00:00"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                epoch_to_sent_at(&input).as_deref(),
                Some(expected),
                "{input}"
            );
        }
        assert_eq!(epoch_to_sent_at(&json!("1638979202")), None);
        assert_eq!(epoch_to_sent_at(&json!(1e14)), None);
    }

    #[test]
    fn describe_quotes_short_scalars_only() {
        assert_eq!(describe(&json!(2.5)), "2.5");
        assert_eq!(describe(&json!("high")), "\"high\"");
        assert_eq!(describe(&json!([1])), "an array");
        assert_eq!(describe(&json!("x".repeat(100))), "a string");
    }
}
