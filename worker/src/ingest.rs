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
    pub headers: Option<serde_json::Map<String, serde_json::Value>>,
    pub content_encoding: Option<&'a str>,
    pub priority: Option<u8>,
    pub queue: &'a str,
    pub body: &'a [u8],
}

/// Turn a delivery into an inbox row, dead (with the reason) if it is not a
/// Fedora Messaging message.
pub fn from_delivery(raw: RawMessage<'_>, max_body_bytes: usize) -> NewEvent {
    let message_id = match raw.message_id {
        Some(id) if !id.is_empty() => id.to_owned(),
        // Without an id, the content identifies it, so a redelivery still dedups.
        _ => events::content_hash_id(raw.topic, raw.body).0,
    };
    let body_size = i32::try_from(raw.body.len()).unwrap_or(i32::MAX);
    let headers = raw.headers.clone().unwrap_or_default();
    let decoded = events::decode_body(raw.body, raw.content_encoding, max_body_bytes);
    let dead_reason = match (&decoded, &raw.headers) {
        (Err(bad), _) => Some(bad.to_string()),
        (Ok(_), None) => Some(
            "no AMQP headers: every Fedora Messaging publisher sets fedora_messaging_severity \
             and sent-at, so this did not come from one"
                .to_owned(),
        ),
        (Ok(_), Some(_)) => None,
    };
    let raw_body = dead_reason.as_ref().map(|_| {
        let keep = match &decoded {
            Err(BadBody::TooLarge { .. }) => 0,
            _ => raw.body.len().min(RAW_BODY_KEPT),
        };
        raw.body[..keep].to_vec()
    });
    let sent_at = sent_at(&headers);
    NewEvent {
        message_id,
        topic: raw.topic.to_owned(),
        headers: serde_json::Value::Object(headers),
        body: decoded.ok().map(serde_json::Value::Object),
        raw_body,
        body_size,
        sent_at,
        source: Source::Bus,
        queue: Some(raw.queue.to_owned()),
        priority: raw.priority.map(i32::from),
        dead_reason,
    }
}

/// An entry of a replay file as an inbox row.
pub fn from_envelope(envelope: &Envelope) -> NewEvent {
    let body = serde_json::Value::Object(envelope.body.clone());
    let body_size = serde_json::to_vec(&body).map_or(0, |b| b.len());
    NewEvent {
        message_id: envelope.id.0.clone(),
        topic: envelope.topic.clone(),
        headers: serde_json::Value::Object(envelope.headers.clone()),
        body: Some(body),
        raw_body: None,
        body_size: i32::try_from(body_size).unwrap_or(i32::MAX),
        sent_at: envelope.sent_at().map(|t| t.with_timezone(&Utc)),
        source: Source::Replay,
        queue: envelope.queue.clone(),
        priority: envelope.priority.and_then(|p| i32::try_from(p).ok()),
        dead_reason: None,
    }
}

fn sent_at(headers: &serde_json::Map<String, serde_json::Value>) -> Option<DateTime<Utc>> {
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
    pub batch_wait: Duration,
    pub retry_max: Duration,
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
        batch.push(first);
        let deadline = tokio::time::Instant::now() + config.batch_wait;
        while batch.len() < config.batch_size {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(item)) => batch.push(item),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        let Some(written) = write_with_retry(&pool, &config, &batch, &abort).await else {
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

/// Returns `None` only when `abort` fired before the batch could be written.
async fn write_with_retry(
    pool: &store::PgPool,
    config: &WriterConfig,
    batch: &[Inbound],
    abort: &CancellationToken,
) -> Option<Totals> {
    let events: Vec<&NewEvent> = batch.iter().map(|item| &item.event).collect();
    let mut delay = Duration::from_millis(100);
    let mut failing_since: Option<Instant> = None;
    loop {
        let started = Instant::now();
        // A connection can die without the socket saying so; do not wait on it forever.
        let attempt =
            tokio::time::timeout(WRITE_TIMEOUT, store::events::insert_batch(pool, &events))
                .await
                .unwrap_or_else(|_| Err(sqlx::Error::PoolTimedOut));
        match attempt {
            Ok(new) => {
                let seconds = started.elapsed().as_secs_f64();
                metrics::histogram!("fedora_ci_inbox_write_seconds").record(seconds);
                metrics::histogram!("fedora_ci_inbox_batch_size").record(events.len() as f64);
                let dead = events.iter().filter(|e| e.dead_reason.is_some()).count();
                let duplicates = events.len() as u64 - new;
                metrics::counter!("fedora_ci_inbox_messages_total", "outcome" => "recorded")
                    .increment(new);
                metrics::counter!("fedora_ci_inbox_messages_total", "outcome" => "duplicate")
                    .increment(duplicates);
                metrics::counter!("fedora_ci_inbox_dead_total").increment(dead as u64);
                let now = Utc::now();
                for event in &events {
                    if let Some(sent) = event.sent_at {
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
                    batch = events.len(),
                    new, duplicates, dead, "batch recorded"
                );
                return Some(Totals {
                    recorded: new,
                    duplicates,
                    dead: dead as u64,
                });
            }
            Err(error) => {
                metrics::counter!("fedora_ci_inbox_write_errors_total").increment(1);
                if failing_since.is_none() {
                    failing_since = Some(Instant::now());
                }
                warn!(
                    %error,
                    batch = events.len(),
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
