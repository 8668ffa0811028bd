//! Reading whole files of serialized messages.

use serde_json::{Map, Value};

use crate::envelope::{EntryError, Envelope, parse_entry};
use crate::json_kind_with_article;

/// Why a whole file could not be read as messages. Problems with single
/// entries are [`EntryError`]s instead and do not stop the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Nothing but whitespace: almost certainly the wrong file, or a failed
    /// download, rather than "no messages".
    #[error("the file is empty")]
    Empty,
    /// Neither one JSON document nor JSON Lines. Both parse errors are kept:
    /// the first says where a single document broke, the second why the first
    /// non-blank line (1-based `line`) is not a JSON value by itself.
    #[error("not JSON ({document_error}) and not JSON Lines (line {line}: {line_error})")]
    NotJson {
        /// The error from reading the whole text as one document.
        document_error: String,
        /// 1-based number of the first non-blank line.
        line: usize,
        /// The error from reading that line alone.
        line_error: String,
    },
    /// Valid JSON, but a string, number, boolean or null at the top; holds
    /// which, with its article ("a string").
    #[error(
        "the file holds {0}; expected a message object, an array of them, \
         JSON Lines or a datagrepper page"
    )]
    UnexpectedTopLevel(&'static str),
    /// Looks like a datagrepper page (`raw_messages`) but is not a usable one.
    #[error("malformed datagrepper page: {0}")]
    BadPage(String),
    /// A datagrepper error answer (`{"error": ...}`) saved instead of a page.
    #[error("the file is a datagrepper error answer, not messages: {0}")]
    DatagrepperError(String),
}

/// Parse a whole file: object, array, JSON Lines, datagrepper v2 page, legacy
/// fedmsg.
///
/// Each entry parses independently: one bad entry does not stop the others,
/// and comes back as an [`EntryError`] in its place. The shapes accepted:
///
/// - one message object, in fedora-messaging's serialized form or the
///   fedmsg-era shape (see [`Envelope::from_serialized`]);
/// - a JSON array of such objects (what `datanommer-dump` writes);
/// - JSON Lines, one object per line, blank lines skipped (what
///   `fedora-messaging`'s `dumps()` and its CLI write). A line that is not
///   JSON becomes that entry's error, unless it is the first non-blank line:
///   then the text is taken for a broken single document and the whole file
///   fails with [`FormatError::NotJson`];
/// - a datagrepper page: the answer of datagrepper's `/v2/search` (and of the
///   older `/raw`, whose entries are fedmsg-era records). Of the page, only
///   `raw_messages`, an array with one message per entry, is read; `total`,
///   `pages`, `count` and `arguments` describe the query and paging and are
///   ignored, as is each entry's optional `meta`. A `/v2/` entry is
///   datanommer's `as_fedora_message_dict()`: `body`, `headers`, `id`,
///   `queue` (null) and `topic`, without `priority`.
///
/// A UTF-8 byte order mark at the start is skipped. Entry indexes are 0-based
/// positions in the array, or 0-based line numbers for JSON Lines.
pub fn parse_serialized(text: &str) -> Result<Vec<Result<Envelope, EntryError>>, FormatError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(FormatError::Empty);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(document) => parse_document(document),
        Err(document_error) => parse_json_lines(text, &document_error),
    }
}

fn entry(index: usize, value: Value) -> Result<Envelope, EntryError> {
    parse_entry(value).map_err(|reason| EntryError { index, reason })
}

fn entries(items: Vec<Value>) -> Vec<Result<Envelope, EntryError>> {
    items
        .into_iter()
        .enumerate()
        .map(|(index, value)| entry(index, value))
        .collect()
}

fn parse_document(document: Value) -> Result<Vec<Result<Envelope, EntryError>>, FormatError> {
    match document {
        Value::Array(items) => Ok(entries(items)),
        Value::Object(object) => parse_object(object),
        other => Err(FormatError::UnexpectedTopLevel(json_kind_with_article(
            &other,
        ))),
    }
}

fn parse_object(
    mut object: Map<String, Value>,
) -> Result<Vec<Result<Envelope, EntryError>>, FormatError> {
    let is_message = ["topic", "body", "msg"]
        .iter()
        .any(|key| object.contains_key(*key));
    if !is_message {
        if let Some(raw_messages) = object.remove("raw_messages") {
            return match raw_messages {
                Value::Array(items) => Ok(entries(items)),
                other => Err(FormatError::BadPage(format!(
                    "\"raw_messages\" should be an array, found {}",
                    json_kind_with_article(&other)
                ))),
            };
        }
        if let Some(error) = object.get("error") {
            let error = match error {
                Value::String(text) => text.clone(),
                other => crate::python_json_dumps(other),
            };
            return Err(FormatError::DatagrepperError(error));
        }
    }
    Ok(vec![entry(0, Value::Object(object))])
}

fn parse_json_lines(
    text: &str,
    document_error: &serde_json::Error,
) -> Result<Vec<Result<Envelope, EntryError>>, FormatError> {
    let mut results = Vec::new();
    let mut seen_a_line = false;
    for (line_number, line) in text.lines().enumerate() {
        let value = line.trim();
        if value.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(value) {
            Ok(value) => results.push(entry(line_number, value)),
            Err(error) => {
                let indent = line.len() - line.trim_start().len();
                let reason = line_error(&error, indent);
                if !seen_a_line {
                    return Err(FormatError::NotJson {
                        document_error: document_error.to_string(),
                        line: line_number + 1,
                        line_error: reason,
                    });
                }
                results.push(Err(EntryError {
                    index: line_number,
                    reason: format!("line {} is not JSON: {reason}", line_number + 1),
                }));
            }
        }
        seen_a_line = true;
    }
    Ok(results)
}

/// serde_json's message for a single line, with "at line 1 column N" turned
/// into "at column N" counted in the untrimmed line: the line number is
/// already said, and relative to the line alone it is always 1.
fn line_error(error: &serde_json::Error, indent: usize) -> String {
    let full = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match full.strip_suffix(&position) {
        Some(message) if error.line() == 1 => {
            format!("{message} at column {}", error.column() + indent)
        }
        _ => full,
    }
}
