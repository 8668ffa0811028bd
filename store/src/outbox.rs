//! Messages the service publishes on the bus, kept in PostgreSQL until the
//! broker has confirmed them.
//!
//! A message is written in the transaction that decided it, with its message
//! id, and published afterwards by one publisher at a time, in the order the
//! messages were written. A message the broker confirmed is marked
//! published; one whose confirmation was lost to a crash is published again
//! with the same id, which consumers that deduplicate by id (fedora-messaging
//! consumers, ResultsDB's listener) take as the same message.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// A message to write.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    /// What the message says, once: a second message with the same key is
    /// not written.
    pub dedup_key: &'a str,
    /// The full topic (routing key), prefix included.
    pub topic: &'a str,
    pub headers: &'a serde_json::Value,
    pub body: &'a serde_json::Value,
    pub test_run_id: Option<i64>,
    pub event_id: Option<i64>,
}

/// Write a message; its message id, `None` if its key was written already.
pub async fn enqueue(
    executor: impl PgExecutor<'_>,
    message: &NewMessage<'_>,
    message_id: uuid::Uuid,
) -> Result<Option<uuid::Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        INSERT INTO outbox (message_id, dedup_key, topic, headers, body, test_run_id, event_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (dedup_key) DO NOTHING
        RETURNING message_id
        "#,
        message_id,
        message.dedup_key,
        message.topic,
        message.headers,
        message.body,
        message.test_run_id,
        message.event_id,
    )
    .fetch_optional(executor)
    .await
}

/// A message waiting to be published.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub id: i64,
    pub message_id: uuid::Uuid,
    pub topic: String,
    pub headers: serde_json::Value,
    pub body: serde_json::Value,
    pub attempts: i32,
}

/// The lock that makes one publisher at a time: taken for a transaction,
/// `false` if another publisher holds it.
pub async fn try_lock_publisher(executor: impl PgExecutor<'_>) -> Result<bool, sqlx::Error> {
    // An arbitrary constant naming this lock among the advisory locks.
    const PUBLISHER_LOCK: i64 = 0x6663_695f_6f75_7462;
    sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock($1) AS "locked!""#,
        PUBLISHER_LOCK
    )
    .fetch_one(executor)
    .await
}

/// The oldest messages not yet published, in the order they were written.
pub async fn pending(
    executor: impl PgExecutor<'_>,
    limit: i64,
) -> Result<Vec<Pending>, sqlx::Error> {
    sqlx::query_as!(
        Pending,
        r#"
        SELECT id, message_id, topic, headers, body, attempts FROM outbox
        WHERE published_at IS NULL
        ORDER BY id
        LIMIT $1
        "#,
        limit,
    )
    .fetch_all(executor)
    .await
}

/// The broker confirmed these messages.
pub async fn mark_published(executor: impl PgExecutor<'_>, ids: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        UPDATE outbox SET published_at = now(), attempts = attempts + 1, last_error = NULL
        WHERE id = ANY($1)
        "#,
        ids,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// Publishing this message failed; it stays first in line.
pub async fn record_failure(
    executor: impl PgExecutor<'_>,
    id: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
        id,
        error,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// How many messages wait, and since when the oldest.
pub async fn backlog(
    executor: impl PgExecutor<'_>,
) -> Result<(i64, Option<DateTime<Utc>>), sqlx::Error> {
    let row = sqlx::query!(
        r#"
        SELECT count(*) AS "count!", min(created_at) AS oldest
        FROM outbox WHERE published_at IS NULL
        "#
    )
    .fetch_one(executor)
    .await?;
    Ok((row.count, row.oldest))
}

/// A message as the API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MessageRow {
    pub id: i64,
    pub message_id: uuid::Uuid,
    pub topic: String,
    pub body: serde_json::Value,
    pub test_run_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// The messages of a test run, in order.
pub async fn of_test_run(
    executor: impl PgExecutor<'_>,
    test_run_id: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as!(
        MessageRow,
        r#"
        SELECT id, message_id, topic, body, test_run_id, created_at, published_at, attempts,
               last_error
        FROM outbox WHERE test_run_id = $1 ORDER BY id
        "#,
        test_run_id,
    )
    .fetch_all(executor)
    .await
}
