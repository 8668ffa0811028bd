//! The ELN package lists as the service last fetched them, kept in the
//! `facts` table beside the other looked-up facts: the row
//! [`LIST_KEY`] holds the last good list (its names, sorted, with the URLs
//! it came from and how many names each gave; `checked_at` is when it was
//! fetched), and the row [`FAILURE_KEY`] the last failed fetch (when, which
//! URL, why). A failed fetch leaves the last good list in place: a missing
//! list would silently end every package's ELN builds. Neither row is ever
//! deleted by [`crate::periodic::clean_up`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgExecutor;

/// The `facts` key of the last good list.
pub const LIST_KEY: &str = "eln-packages";
/// The `facts` key of the last failed fetch.
pub const FAILURE_KEY: &str = "eln-packages-error";

/// One list the fetch read: its URL (without credentials) and how many
/// names it gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSource {
    pub url: String,
    pub count: i64,
}

/// Record a fetch that succeeded: `packages` (sorted, each once) is the
/// union of the lists of `sources`, fetched at `fetched_at`.
pub async fn store_list(
    executor: impl PgExecutor<'_>,
    packages: &[String],
    sources: &[ListSource],
    fetched_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let value = json!({
        "packages": packages,
        "count": packages.len(),
        "sources": sources,
    });
    store(executor, LIST_KEY, &value, fetched_at).await
}

/// A fetch that failed: when, the URL that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub at: DateTime<Utc>,
    pub url: String,
    pub error: String,
}

/// Record a fetch that failed; the last good list stays.
pub async fn store_failure(
    executor: impl PgExecutor<'_>,
    failure: &Failure,
) -> Result<(), sqlx::Error> {
    let value = json!({"url": failure.url, "error": failure.error});
    store(executor, FAILURE_KEY, &value, failure.at).await
}

async fn store(
    executor: impl PgExecutor<'_>,
    key: &str,
    value: &serde_json::Value,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        INSERT INTO facts (key, value, checked_at) VALUES ($1, $2, $3)
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, checked_at = EXCLUDED.checked_at
        "#,
        key,
        value,
        at,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// What the last good list says of one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub listed: bool,
    pub fetched_at: DateTime<Utc>,
    /// The URLs the list came from.
    pub sources: Vec<String>,
}

/// Whether `package` is on the last good list; `None` when no list was
/// ever fetched. The list is searched in the database, not read whole.
pub async fn listing(
    executor: impl PgExecutor<'_>,
    package: &str,
) -> Result<Option<Listing>, sqlx::Error> {
    let row = sqlx::query!(
        r#"
        SELECT checked_at, COALESCE((value->'packages') ? $2, false) AS "listed!",
               value->'sources' AS sources
        FROM facts WHERE key = $1
        "#,
        LIST_KEY,
        package,
    )
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|row| Listing {
        listed: row.listed,
        fetched_at: row.checked_at,
        sources: sources(row.sources)
            .into_iter()
            .map(|source| source.url)
            .collect(),
    }))
}

/// The last good list without its names: how many, when, from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListSummary {
    pub count: i64,
    pub fetched_at: DateTime<Utc>,
    pub sources: Vec<ListSource>,
}

/// The lists' state, for the status page, the metrics and the periodic pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElnStatus {
    /// The last good list; `None` when none was ever fetched.
    pub list: Option<ListSummary>,
    /// The last failed fetch, however old.
    pub last_failure: Option<Failure>,
}

impl ElnStatus {
    /// The last failure, when it came after the last good list: the list
    /// shown is older than it should be.
    pub fn failing(&self) -> Option<&Failure> {
        self.last_failure.as_ref().filter(|failure| {
            self.list
                .as_ref()
                .is_none_or(|list| failure.at > list.fetched_at)
        })
    }
}

pub async fn status(executor: impl PgExecutor<'_>) -> Result<ElnStatus, sqlx::Error> {
    let row = sqlx::query!(
        r#"
        SELECT (SELECT checked_at FROM facts WHERE key = $1) AS fetched_at,
               (SELECT (value->>'count')::int8 FROM facts WHERE key = $1) AS count,
               (SELECT value->'sources' FROM facts WHERE key = $1) AS sources,
               (SELECT checked_at FROM facts WHERE key = $2) AS failed_at,
               (SELECT value->>'url' FROM facts WHERE key = $2) AS failed_url,
               (SELECT value->>'error' FROM facts WHERE key = $2) AS failed_error
        "#,
        LIST_KEY,
        FAILURE_KEY,
    )
    .fetch_one(executor)
    .await?;
    Ok(ElnStatus {
        list: row.fetched_at.map(|fetched_at| ListSummary {
            count: row.count.unwrap_or(0),
            fetched_at,
            sources: sources(row.sources),
        }),
        last_failure: row.failed_at.map(|at| Failure {
            at,
            url: row.failed_url.unwrap_or_default(),
            error: row.failed_error.unwrap_or_default(),
        }),
    })
}

/// The recorded sources; a value this code did not write reads as none.
fn sources(value: Option<serde_json::Value>) -> Vec<ListSource> {
    value
        .and_then(|value| serde_json::from_value(value).ok())
        .unwrap_or_default()
}
