//! The inbox of received messages.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;

/// Where a recorded message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Bus,
    Replay,
    /// A call of one of our webhooks.
    Webhook,
    /// Written by the service itself: what a job found out.
    Internal,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Bus => "bus",
            Source::Replay => "replay",
            Source::Webhook => "webhook",
            Source::Internal => "internal",
        }
    }
}

/// Life cycle of an inbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Received,
    Processed,
    Skipped,
    Failed,
    Dead,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Received,
        Status::Processed,
        Status::Skipped,
        Status::Failed,
        Status::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Processed => "processed",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
            Status::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

/// A message about to be recorded. `body` is `None` exactly when the message
/// is dead on arrival, and then `dead_reason` says why and `raw_body` keeps a
/// prefix of what arrived.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub message_id: String,
    pub topic: String,
    pub headers: serde_json::Value,
    /// The JSON text of the body object, stored as `jsonb`.
    pub body: Option<String>,
    pub raw_body: Option<Vec<u8>>,
    pub body_size: i32,
    pub sent_at: Option<DateTime<Utc>>,
    pub source: Source,
    pub queue: Option<String>,
    pub priority: Option<i32>,
    pub dead_reason: Option<String>,
}

/// Record a batch of messages in one statement. Messages whose id is already
/// recorded are left as they are (redelivery, replay of known messages).
/// Returns how many rows were new.
/// Takes owned events or references, so a caller that keeps its events
/// (for acknowledgement after the commit) need not copy them.
pub async fn insert_batch<E: std::borrow::Borrow<NewEvent>>(
    executor: impl PgExecutor<'_>,
    events: &[E],
) -> Result<u64, sqlx::Error> {
    let n = events.len();
    let mut message_ids = Vec::with_capacity(n);
    let mut topics = Vec::with_capacity(n);
    let mut headers = Vec::with_capacity(n);
    let mut bodies = Vec::with_capacity(n);
    let mut raw_bodies = Vec::with_capacity(n);
    let mut body_sizes = Vec::with_capacity(n);
    let mut sent_ats = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    let mut queues = Vec::with_capacity(n);
    let mut priorities = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut reasons = Vec::with_capacity(n);
    for event in events {
        let event = event.borrow();
        message_ids.push(event.message_id.as_str());
        topics.push(event.topic.as_str());
        headers.push(&event.headers);
        bodies.push(event.body.as_deref());
        raw_bodies.push(event.raw_body.as_deref());
        body_sizes.push(event.body_size);
        sent_ats.push(event.sent_at);
        sources.push(event.source.as_str());
        queues.push(event.queue.as_deref());
        priorities.push(event.priority);
        statuses.push(if event.dead_reason.is_some() {
            Status::Dead.as_str()
        } else {
            Status::Received.as_str()
        });
        reasons.push(event.dead_reason.as_deref());
    }
    // ON CONFLICT DO NOTHING also drops a repeat of an id within the batch.
    let result = sqlx::query!(
        r#"
        INSERT INTO events (message_id, topic, headers, body, raw_body, body_size, sent_at,
                            source, queue, priority, status, reason)
        SELECT m, t, h, b::jsonb, rb, bs, sa, src, q, p, st, r
        FROM UNNEST($1::text[], $2::text[], $3::jsonb[], $4::text[], $5::bytea[],
                    $6::int4[], $7::timestamptz[], $8::text[], $9::text[], $10::int4[],
                    $11::text[], $12::text[]) AS u(m, t, h, b, rb, bs, sa, src, q, p, st, r)
        ON CONFLICT (message_id) DO NOTHING
        "#,
        &message_ids as _,
        &topics as _,
        &headers as _,
        &bodies as _,
        &raw_bodies as _,
        &body_sizes as _,
        &sent_ats as _,
        &sources as _,
        &queues as _,
        &priorities as _,
        &statuses as _,
        &reasons as _,
    )
    .execute(executor)
    .await?;
    Ok(result.rows_affected())
}

/// One inbox row as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct EventSummary {
    pub id: i64,
    pub message_id: String,
    pub topic: String,
    pub sent_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub source: String,
    pub status: String,
    pub reason: Option<String>,
}

/// Filters of `GET /api/events`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub topic: Option<String>,
    pub status: Option<Status>,
    pub since: Option<DateTime<Utc>>,
}

/// Newest first, `limit` rows after skipping `offset`.
pub async fn list(
    executor: impl PgExecutor<'_>,
    filter: &EventFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<EventSummary>, sqlx::Error> {
    sqlx::query_as!(
        EventSummary,
        r#"
        SELECT id, message_id, topic, sent_at, received_at, source, status, reason
        FROM events
        WHERE ($1::text IS NULL OR topic = $1)
          AND ($2::text IS NULL OR status = $2)
          AND ($3::timestamptz IS NULL OR received_at >= $3)
        ORDER BY id DESC
        LIMIT $4 OFFSET $5
        "#,
        filter.topic.as_deref(),
        filter.status.map(Status::as_str),
        filter.since,
        limit,
        offset,
    )
    .fetch_all(executor)
    .await
}

/// Everything recorded about one message, for `GET /api/events/{message_id}`.
#[derive(Debug, Clone, Serialize)]
pub struct EventDetail {
    pub id: i64,
    pub message_id: String,
    pub topic: String,
    pub headers: serde_json::Value,
    pub body: Option<serde_json::Value>,
    pub body_size: i32,
    pub sent_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub source: String,
    pub queue: Option<String>,
    pub priority: Option<i32>,
    pub status: String,
    pub reason: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
}

/// The recorded event, or `None`. Headers and body are read from their text
/// here, not by the driver, so that one that cannot be read back (recorded
/// before ingest refused such messages) is a [`sqlx::Error::Decode`] that
/// names the event and says what is wrong, rather than a bare column error.
pub async fn get(
    executor: impl PgExecutor<'_>,
    message_id: &str,
) -> Result<Option<EventDetail>, sqlx::Error> {
    let Some(row) = sqlx::query!(
        r#"
        SELECT id, message_id, topic, headers::text AS "headers!", body::text AS body, body_size,
               sent_at, received_at, source, queue, priority, status, reason, processed_at
        FROM events WHERE message_id = $1
        "#,
        message_id,
    )
    .fetch_optional(executor)
    .await?
    else {
        return Ok(None);
    };
    let unreadable = |what: &str, error: serde_json::Error| {
        sqlx::Error::Decode(
            format!(
                "event {:?} is recorded, but its {what} cannot be read back ({error})",
                row.message_id
            )
            .into(),
        )
    };
    let headers = serde_json::from_str(&row.headers).map_err(|e| unreadable("headers", e))?;
    let body = row
        .body
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| unreadable("body", e))?;
    Ok(Some(EventDetail {
        id: row.id,
        message_id: row.message_id,
        topic: row.topic,
        headers,
        body,
        body_size: row.body_size,
        sent_at: row.sent_at,
        received_at: row.received_at,
        source: row.source,
        queue: row.queue,
        priority: row.priority,
        status: row.status,
        reason: row.reason,
        processed_at: row.processed_at,
    }))
}

/// Count of rows per status, for metrics and the status page.
pub async fn count_by_status(
    executor: impl PgExecutor<'_>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT status, count(*) AS "count!" FROM events GROUP BY status ORDER BY status"#
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|r| (r.status, r.count)).collect())
}

/// An event waiting for its decisions.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub id: i64,
    pub topic: String,
    pub body: Option<serde_json::Value>,
}

/// A claimed event whose recorded body cannot be read back as JSON (one
/// recorded before ingest refused such bodies, say); it is never decided.
#[derive(Debug, Clone)]
pub struct UnreadableEvent {
    pub id: i64,
    pub topic: String,
    /// Why, in words: the reader's error.
    pub reason: String,
}

/// What [`claim_received`] locked: the events to decide, and the ones that
/// cannot be.
#[derive(Debug, Clone, Default)]
pub struct Claimed {
    pub events: Vec<PendingEvent>,
    pub unreadable: Vec<UnreadableEvent>,
}

impl Claimed {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.unreadable.is_empty()
    }
}

/// Lock up to `limit` events that wait for their decisions, oldest first;
/// events another decider holds are skipped, so deciders never wait on each other.
///
/// Each body is read from its text on its own: a body that cannot be read
/// back ends up in [`Claimed::unreadable`] instead of failing the whole
/// batch, which would stop every event behind it (they are claimed in order).
pub async fn claim_received(
    executor: impl PgExecutor<'_>,
    limit: i64,
) -> Result<Claimed, sqlx::Error> {
    let rows = sqlx::query!(
        r#"
        SELECT id, topic, body::text AS body FROM events
        WHERE status = 'received'
        ORDER BY id
        LIMIT $1
        FOR UPDATE SKIP LOCKED
        "#,
        limit,
    )
    .fetch_all(executor)
    .await?;
    let mut claimed = Claimed {
        events: Vec::with_capacity(rows.len()),
        unreadable: Vec::new(),
    };
    for row in rows {
        let body = match row.body.as_deref().map(serde_json::from_str).transpose() {
            Ok(body) => body,
            Err(error) => {
                claimed.unreadable.push(UnreadableEvent {
                    id: row.id,
                    topic: row.topic,
                    reason: format!("its recorded body cannot be read back: {error}"),
                });
                continue;
            }
        };
        claimed.events.push(PendingEvent {
            id: row.id,
            topic: row.topic,
            body,
        });
    }
    Ok(claimed)
}

/// Set the status and reason of decided events, in one statement.
pub async fn set_outcomes(
    executor: impl PgExecutor<'_>,
    outcomes: &[(i64, &str, &str)],
) -> Result<(), sqlx::Error> {
    let ids: Vec<i64> = outcomes.iter().map(|o| o.0).collect();
    let statuses: Vec<&str> = outcomes.iter().map(|o| o.1).collect();
    let reasons: Vec<&str> = outcomes.iter().map(|o| o.2).collect();
    sqlx::query!(
        r#"
        UPDATE events SET status = u.status, reason = u.reason, processed_at = now()
        FROM UNNEST($1::int8[], $2::text[], $3::text[]) AS u(id, status, reason)
        WHERE events.id = u.id
        "#,
        &ids,
        &statuses as _,
        &reasons as _,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// Lock one event again if it still waits for its decisions; false if it
/// was decided or another decider holds it.
pub async fn relock_received(executor: impl PgExecutor<'_>, id: i64) -> Result<bool, sqlx::Error> {
    let row = sqlx::query_scalar!(
        "SELECT id FROM events WHERE id = $1 AND status = 'received' FOR UPDATE SKIP LOCKED",
        id,
    )
    .fetch_optional(executor)
    .await?;
    Ok(row.is_some())
}

/// Record an event the service writes itself (a job's finding, a webhook
/// call, a timeout). `message_id` makes writing it twice harmless; whether
/// it was new.
pub async fn insert_internal(
    executor: impl PgExecutor<'_>,
    message_id: &str,
    topic: &str,
    body: &serde_json::Value,
    source: Source,
) -> Result<bool, sqlx::Error> {
    let text = body.to_string();
    let event = NewEvent {
        message_id: message_id.to_owned(),
        topic: topic.to_owned(),
        headers: serde_json::json!({}),
        body_size: i32::try_from(text.len()).unwrap_or(i32::MAX),
        body: Some(text),
        raw_body: None,
        sent_at: Some(Utc::now()),
        source,
        queue: None,
        priority: None,
        dead_reason: None,
    };
    Ok(insert_batch(executor, &[event]).await? > 0)
}

/// Put an event back in line for its decisions (an operator's re-run);
/// false if there is no such event or it is dead (it has no body to decide).
pub async fn redecide(
    executor: impl PgExecutor<'_>,
    message_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        r#"
        UPDATE events SET status = 'received', processed_at = NULL
        WHERE message_id = $1 AND status <> 'dead'
        "#,
        message_id,
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Put every decided event received in `[since, until)` (of one topic, if
/// given) back in line for its decisions; how many.
pub async fn redecide_window(
    executor: impl PgExecutor<'_>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    topic: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        r#"
        UPDATE events SET status = 'received', processed_at = NULL
        WHERE received_at >= $1 AND received_at < $2
          AND status IN ('processed', 'skipped', 'failed')
          AND ($3::text IS NULL OR topic = $3)
        "#,
        since,
        until,
        topic,
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

/// Events waiting for their decisions, and the age of the oldest, in seconds.
pub async fn waiting(executor: impl PgExecutor<'_>) -> Result<(i64, f64), sqlx::Error> {
    let row = sqlx::query!(
        r#"
        SELECT count(*) AS "waiting!",
               COALESCE(EXTRACT(EPOCH FROM now() - min(received_at))::float8, 0) AS "oldest!"
        FROM events WHERE status = 'received'
        "#
    )
    .fetch_one(executor)
    .await?;
    Ok((row.waiting, row.oldest))
}

/// The topics of the events that start work a packager waits to see on the
/// pull request: one opened, updated, rebased or reopened, and a comment
/// (a command); as a regular expression over the full topic, whatever its
/// environment's prefix.
const INITIAL_STATUS_TOPICS: &str =
    r"\.pagure\.pull-request\.(new|updated|rebased|reopened|comment\.added)$";

/// A pending flag `event_id` asked for is on its pull request. The first
/// time for an event from the bus of those topics, the event is marked and
/// the answer is how long it took from its message (its `sent-at`, else when
/// it was received), in seconds; `None` for the event's later flags and for
/// events of other kinds. The mark makes flag jobs that finish at once, and
/// replicas, count an event once.
pub async fn initial_status_set(
    executor: impl PgExecutor<'_>,
    event_id: i64,
) -> Result<Option<f64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        UPDATE events SET initial_status_at = now()
        WHERE id = $1 AND initial_status_at IS NULL AND source = 'bus' AND topic ~ $2
        RETURNING EXTRACT(EPOCH FROM now() - COALESCE(sent_at, received_at))::float8 AS "seconds!"
        "#,
        event_id,
        INITIAL_STATUS_TOPICS,
    )
    .fetch_optional(executor)
    .await
}
