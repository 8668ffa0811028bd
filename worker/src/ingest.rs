//! The inbox writer: persist, then acknowledge.
//!
//! Deliveries from the bus and entries from replay files arrive here as
//! [`Inbound`] items. They are written to PostgreSQL in batches (one INSERT per
//! batch, duplicates dropped by `message_id`), and only after the transaction
//! commits are the deliveries acknowledged. While the database cannot be
//! reached the writer retries the same batch with capped backoff; the
//! deliveries stay unacknowledged, the broker stops sending once the prefetch
//! window is full, and consumption resumes by itself when the database is back.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use events::{BadBody, Envelope};
use lapin::Acker;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use store::events::{NewEvent, Source};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// A batch write that takes longer than this is abandoned and retried.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How many bytes of a dead body are kept for inspection.
const RAW_BODY_KEPT: usize = 64 * 1024;

/// Something to record, and how to acknowledge it once recorded.
pub struct Inbound {
    pub event: NewEvent,
    pub ack: Ack,
}

/// What to do once an item is durably recorded.
pub enum Ack {
    /// A bus delivery. `session` tells deliveries of different connections
    /// apart: a multiple-ack covers only deliveries of its own channel.
    Delivery { acker: Acker, session: u64 },
    /// Nothing to acknowledge (a replayed entry).
    None,
}

/// A delivery's parts, as the bus adapter hands them over.
pub struct RawMessage<'a> {
    pub topic: &'a str,
    pub message_id: Option<&'a str>,
    pub headers: Headers,
    pub content_encoding: Option<&'a str>,
    pub priority: Option<u8>,
    pub queue: &'a str,
    /// Taken over, so that an accepted body becomes the stored text without a copy.
    pub body: Vec<u8>,
}

/// A delivery's headers, as far as the bus adapter read them.
pub enum Headers {
    /// No header table, or an empty one.
    Absent,
    Table(serde_json::Map<String, serde_json::Value>),
    /// Nested this many levels deep, over [`events::MAX_HEADER_DEPTH`]: not
    /// converted, not kept.
    TooDeep(usize),
}

/// Turn a delivery into an inbox row, dead (with the reason) if it is not a
/// Fedora Messaging message or cannot be stored as one.
pub fn from_delivery(raw: RawMessage<'_>, max_body_bytes: usize) -> NewEvent {
    let message_id = match raw.message_id {
        Some(id) if !id.is_empty() => id.to_owned(),
        // Without an id, the content identifies it, so a redelivery still dedups.
        _ => events::content_hash_id(raw.topic, &raw.body).0,
    };
    let body_size = i32::try_from(raw.body.len()).unwrap_or(i32::MAX);
    let (mut headers, header_problem) = match raw.headers {
        Headers::Absent => (None, None),
        Headers::Table(map) => (Some(map), None),
        Headers::TooDeep(depth) => (
            Some(serde_json::Map::new()),
            Some(format!(
                "headers nest {depth} levels deep, over the limit of {}; they were not kept",
                events::MAX_HEADER_DEPTH
            )),
        ),
    };
    let checked = events::check_body(&raw.body, raw.content_encoding, max_body_bytes);
    // A message without AMQP headers is still one: fedora-messaging's consumer accepts it (and
    // logs an error), and its body and topic are all a decision reads.
    let mut dead_reason = match &checked {
        Err(bad) => Some(bad.to_string()),
        Ok(_) => header_problem,
    };
    // Where the object's text lies in the body (surrounding whitespace excluded).
    let accepted = checked.as_ref().ok().map(|text| {
        (
            text.as_ptr() as usize - raw.body.as_ptr() as usize,
            text.len(),
        )
    });
    let too_large = matches!(checked, Err(BadBody::TooLarge { .. }));
    let mut headers = serde_json::Value::Object(headers.take().unwrap_or_default());
    // PostgreSQL stores no NUL character in text or jsonb: replace it, and
    // keep the message as dead so that nobody acts on an altered copy.
    let mut topic = raw.topic.to_owned();
    let mut message_id = message_id;
    for (what, changed) in [
        ("the routing key", replace_nul_in_text(&mut topic)),
        ("the message id", replace_nul_in_text(&mut message_id)),
        ("a header", replace_nul(&mut headers)),
    ] {
        if changed && dead_reason.is_none() {
            dead_reason = Some(format!(
                "{what} contains a NUL character, which the inbox cannot store"
            ));
        }
    }
    let mut data = raw.body;
    let (body, raw_body) = match (accepted, &dead_reason) {
        (Some((start, len)), None) => {
            data.truncate(start + len);
            data.drain(..start);
            // check_body found these bytes to be UTF-8, so this never copies.
            let mut text = String::from_utf8(data)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            shrink(&mut text);
            (Some(text), None)
        }
        _ => {
            let keep = if too_large {
                0
            } else {
                data.len().min(RAW_BODY_KEPT)
            };
            data.truncate(keep);
            (None, Some(data))
        }
    };
    let sent_at = sent_at(&headers);
    NewEvent {
        message_id,
        topic,
        body,
        headers,
        raw_body,
        body_size,
        sent_at,
        source: Source::Bus,
        queue: Some(raw.queue.to_owned()),
        priority: raw.priority.map(i32::from),
        dead_reason,
    }
}

/// lapin grows a delivery's buffer by doubling as the body's frames arrive,
/// so a 1 MiB body can sit in a 2 MiB allocation while it waits for its
/// batch; giving back what is unused keeps the in-flight window at the size
/// of the bodies it holds.
fn shrink(text: &mut String) {
    if text.capacity() - text.len() > text.len() / 8 + 4096 {
        text.shrink_to_fit();
    }
}

/// An entry of a replay file as an inbox row.
pub fn from_envelope(envelope: &Envelope) -> NewEvent {
    let text = serde_json::to_string(&envelope.body).unwrap_or_default();
    let body_size = i32::try_from(text.len()).unwrap_or(i32::MAX);
    let mut headers = serde_json::Value::Object(envelope.headers.clone());
    let mut topic = envelope.topic.clone();
    let mut message_id = envelope.id.0.clone();
    let header_depth = events::value_depth(&headers);
    let mut dead_reason = events::check_body(text.as_bytes(), None, usize::MAX)
        .err()
        .map(|bad| bad.to_string());
    if header_depth > events::MAX_HEADER_DEPTH {
        headers = serde_json::Value::Object(serde_json::Map::new());
        dead_reason.get_or_insert_with(|| {
            format!(
                "headers nest {header_depth} levels deep, over the limit of {}; they were not kept",
                events::MAX_HEADER_DEPTH
            )
        });
    }
    for (what, changed) in [
        ("the topic", replace_nul_in_text(&mut topic)),
        ("the message id", replace_nul_in_text(&mut message_id)),
        ("a header", replace_nul(&mut headers)),
    ] {
        if changed && dead_reason.is_none() {
            dead_reason = Some(format!(
                "{what} contains a NUL character, which the inbox cannot store"
            ));
        }
    }
    let (body, raw_body) = match dead_reason {
        None => (Some(text), None),
        Some(_) => (None, Some(text.into_bytes())),
    };
    NewEvent {
        message_id,
        topic,
        sent_at: envelope.sent_at().map(|t| t.with_timezone(&Utc)),
        headers,
        body,
        raw_body,
        body_size,
        source: Source::Replay,
        queue: envelope.queue.clone(),
        priority: envelope.priority.and_then(|p| i32::try_from(p).ok()),
        dead_reason,
    }
}

/// Replaces NUL characters in keys and strings with U+FFFD; whether any was found.
fn replace_nul(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => replace_nul_in_text(s),
        serde_json::Value::Array(items) => items
            .iter_mut()
            .fold(false, |found, v| replace_nul(v) | found),
        serde_json::Value::Object(map) => {
            let mut found = false;
            if map.keys().any(|k| k.contains('\0')) {
                let old = std::mem::take(map);
                *map = old
                    .into_iter()
                    .map(|(k, v)| (k.replace('\0', "\u{fffd}"), v))
                    .collect();
                found = true;
            }
            map.values_mut()
                .fold(found, |found, v| replace_nul(v) | found)
        }
        _ => false,
    }
}

fn replace_nul_in_text(text: &mut String) -> bool {
    if text.contains('\0') {
        *text = text.replace('\0', "\u{fffd}");
        true
    } else {
        false
    }
}

fn sent_at(headers: &serde_json::Value) -> Option<DateTime<Utc>> {
    let text = headers.get("sent-at")?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What a writer recorded over its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub recorded: u64,
    pub duplicates: u64,
    pub dead: u64,
}

#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub batch_size: usize,
    /// A batch closes once its messages' bodies and headers reach this many
    /// bytes, however few they are: what one INSERT copies is bounded.
    pub batch_max_bytes: usize,
    pub batch_wait: Duration,
    pub retry_max: Duration,
}

impl WriterConfig {
    /// The `[ingest]` section as the writer uses it.
    pub fn from_settings(ingest: &crate::config::Ingest) -> Self {
        WriterConfig {
            batch_size: ingest.batch_size,
            batch_max_bytes: ingest.batch_max_bytes,
            batch_wait: Duration::from_millis(ingest.batch_wait_ms),
            retry_max: Duration::from_secs(ingest.retry_max_seconds),
        }
    }
}

/// Write what arrives on `rx` until the channel closes (every sender dropped)
/// and everything received is recorded, or until `abort` fires (the shutdown
/// grace period is over), whichever is first.
pub async fn run_writer(
    pool: store::PgPool,
    config: WriterConfig,
    mut rx: mpsc::Receiver<Inbound>,
    abort: CancellationToken,
) -> Totals {
    let mut totals = Totals::default();
    let mut batch: Vec<Inbound> = Vec::with_capacity(config.batch_size);
    loop {
        let first = tokio::select! {
            item = rx.recv() => item,
            () = abort.cancelled() => None,
        };
        let Some(first) = first else { break };
        let mut bytes = size_of_event(&first.event);
        batch.push(first);
        let deadline = tokio::time::Instant::now() + config.batch_wait;
        while batch.len() < config.batch_size && bytes < config.batch_max_bytes {
            let item = match rx.try_recv() {
                Ok(item) => item,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(item)) => item,
                        Ok(None) | Err(_) => break,
                    }
                }
            };
            bytes += size_of_event(&item.event);
            batch.push(item);
        }
        let Some(written) = write_with_retry(&pool, &config, &mut batch, &abort).await else {
            // Shutting down with the database unreachable: the deliveries stay
            // unacknowledged and the broker hands them out again.
            warn!(
                unrecorded = batch.len(),
                "stopping before these messages were recorded; the broker will redeliver them"
            );
            break;
        };
        totals.recorded += written.recorded;
        totals.duplicates += written.duplicates;
        totals.dead += written.dead;
        acknowledge(std::mem::take(&mut batch)).await;
    }
    totals
}

/// What a message weighs in a batch: the bytes the INSERT copies for it.
fn size_of_event(event: &NewEvent) -> usize {
    // Headers are shallow (MAX_HEADER_DEPTH) and at most one AMQP frame:
    // their names and string values are counted, anything else as 16 bytes.
    let headers: usize = event.headers.as_object().map_or(0, |map| {
        map.iter()
            .map(|(name, value)| name.len() + value.as_str().map_or(16, str::len))
            .sum()
    });
    event.body.as_ref().map_or(0, String::len)
        + event.raw_body.as_ref().map_or(0, Vec::len)
        + headers
        + event.message_id.len()
        + event.topic.len()
}

/// Returns `None` only when `abort` fired before the batch could be written.
async fn write_with_retry(
    pool: &store::PgPool,
    config: &WriterConfig,
    batch: &mut [Inbound],
    abort: &CancellationToken,
) -> Option<Totals> {
    let mut delay = Duration::from_millis(100);
    let mut failing_since: Option<Instant> = None;
    loop {
        let started = Instant::now();
        match write_batch(pool, batch).await {
            Ok(totals) => {
                let seconds = started.elapsed().as_secs_f64();
                metrics::histogram!("fedora_ci_inbox_write_seconds").record(seconds);
                metrics::histogram!("fedora_ci_inbox_batch_size").record(batch.len() as f64);
                metrics::counter!("fedora_ci_inbox_messages_total", "outcome" => "recorded")
                    .increment(totals.recorded);
                metrics::counter!("fedora_ci_inbox_messages_total", "outcome" => "duplicate")
                    .increment(totals.duplicates);
                metrics::counter!("fedora_ci_inbox_dead_total").increment(totals.dead);
                let now = Utc::now();
                for item in batch.iter() {
                    if let Some(sent) = item.event.sent_at {
                        let lag = (now - sent).num_milliseconds().max(0) as f64 / 1000.0;
                        metrics::histogram!("fedora_ci_inbox_lag_seconds").record(lag);
                    }
                }
                if let Some(since) = failing_since {
                    info!(
                        down_for = ?since.elapsed(),
                        "the database answers again; recording resumed"
                    );
                }
                debug!(
                    batch = batch.len(),
                    new = totals.recorded,
                    duplicates = totals.duplicates,
                    dead = totals.dead,
                    "batch recorded"
                );
                return Some(totals);
            }
            Err(error) => {
                metrics::counter!("fedora_ci_inbox_write_errors_total").increment(1);
                if failing_since.is_none() {
                    failing_since = Some(Instant::now());
                }
                warn!(
                    %error,
                    batch = batch.len(),
                    retry_in = ?delay,
                    "cannot record messages; consumption pauses until the database answers"
                );
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = abort.cancelled() => return None,
                }
                delay = (delay * 2).min(config.retry_max);
            }
        }
    }
}

/// One attempt at recording a batch. When the database refuses the batch's
/// data (rather than being unreachable), the messages are recorded one by
/// one, and each one it still refuses is recorded as dead with the
/// database's reason, so one odd message never stops the inbox.
async fn write_batch(pool: &store::PgPool, batch: &mut [Inbound]) -> Result<Totals, sqlx::Error> {
    let events: Vec<&NewEvent> = batch.iter().map(|item| &item.event).collect();
    match insert(pool, &events).await {
        Ok(new) => Ok(Totals {
            recorded: new,
            duplicates: events.len() as u64 - new,
            dead: events.iter().filter(|e| e.dead_reason.is_some()).count() as u64,
        }),
        Err(error) if store::is_data_error(&error) => {
            warn!(%error, batch = batch.len(), "the database refused a batch; recording its messages one by one");
            let mut totals = Totals::default();
            for item in batch.iter_mut() {
                let new = match insert(pool, &[&item.event]).await {
                    Ok(new) => new,
                    Err(error) if store::is_data_error(&error) => {
                        warn!(
                            message_id = %item.event.message_id,
                            topic = %item.event.topic,
                            %error,
                            "the database refused a message: recording it as dead"
                        );
                        item.event = refused(&item.event, &error, true);
                        match insert(pool, &[&item.event]).await {
                            Err(error) if store::is_data_error(&error) => {
                                item.event = refused(&item.event, &error, false);
                                insert(pool, &[&item.event]).await?
                            }
                            other => other?,
                        }
                    }
                    Err(error) => return Err(error),
                };
                totals.recorded += new;
                totals.duplicates += 1 - new.min(1);
                totals.dead += u64::from(item.event.dead_reason.is_some());
            }
            Ok(totals)
        }
        Err(error) => Err(error),
    }
}

/// A connection keeps the buffers its largest statement needed; after a
/// batch bigger than this they are given back, so that every connection of
/// the pool does not end up holding a batch's worth of memory.
const SHRINK_AFTER_BYTES: usize = 256 * 1024;

async fn insert(pool: &store::PgPool, events: &[&NewEvent]) -> Result<u64, sqlx::Error> {
    use sqlx::Connection as _;
    let bytes: usize = events.iter().map(|event| size_of_event(event)).sum();
    // A connection can die without the socket saying so; do not wait on it forever.
    tokio::time::timeout(WRITE_TIMEOUT, async {
        let mut connection = pool.acquire().await?;
        let inserted = store::events::insert_batch(&mut *connection, events).await;
        if bytes > SHRINK_AFTER_BYTES {
            connection.shrink_buffers();
        }
        inserted
    })
    .await
    .unwrap_or(Err(sqlx::Error::PoolTimedOut))
}

/// A message the database refused, as a dead row: the body kept as bytes,
/// and the headers too unless `keep_headers` is false (when they were the
/// problem).
fn refused(event: &NewEvent, error: &sqlx::Error, keep_headers: bool) -> NewEvent {
    let raw = match (&event.raw_body, &event.body) {
        (Some(raw), _) => raw.clone(),
        (None, Some(text)) => text.as_bytes().to_vec(),
        (None, None) => Vec::new(),
    };
    let reason = match (&event.dead_reason, keep_headers) {
        (Some(reason), false) => format!("{reason} (its headers could not be stored either)"),
        (Some(reason), true) => format!("{reason}; the database refused it as it was: {error}"),
        (None, _) => format!("the database refused to store it: {error}"),
    };
    NewEvent {
        message_id: event.message_id.clone(),
        topic: event.topic.clone(),
        headers: if keep_headers {
            event.headers.clone()
        } else {
            serde_json::Value::Object(serde_json::Map::new())
        },
        body: None,
        raw_body: Some(raw[..raw.len().min(RAW_BODY_KEPT)].to_vec()),
        body_size: event.body_size,
        sent_at: event.sent_at,
        source: event.source,
        queue: event.queue.clone(),
        priority: event.priority,
        dead_reason: Some(reason),
    }
}

/// Acknowledge a recorded batch: a reject (without requeue) for each dead
/// message, then one multiple-ack per channel for the rest.
async fn acknowledge(batch: Vec<Inbound>) {
    let mut last_per_session: Vec<(u64, Acker)> = Vec::new();
    for item in batch {
        match item.ack {
            Ack::Delivery { acker, session } => {
                if item.event.dead_reason.is_some() {
                    // Recorded with its reason; the broker may drop it (or dead-letter it).
                    if let Err(error) = acker
                        .nack(BasicNackOptions {
                            multiple: false,
                            requeue: false,
                        })
                        .await
                    {
                        debug!(%error, "nack of a dead message failed; the channel is gone");
                    }
                    continue;
                }
                match last_per_session.iter_mut().find(|(s, _)| *s == session) {
                    Some(entry) => entry.1 = acker,
                    None => last_per_session.push((session, acker)),
                }
            }
            Ack::None => {}
        }
    }
    for (_, acker) in last_per_session {
        // A failure means the channel closed: the broker redelivers, and the
        // inbox drops the copies by message id.
        if let Err(error) = acker.ack(BasicAckOptions { multiple: true }).await {
            debug!(%error, "ack failed; the channel is gone and the broker will redeliver");
        }
    }
}
