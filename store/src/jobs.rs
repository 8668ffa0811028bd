//! Jobs: the durable work that carries decisions out.
//!
//! A job is created in the same transaction as the decision that asks for
//! it. Its `dedup_key` names the intent (`submit-scratch-build:17`), and a
//! second job with the same key is never created, so deciding an event twice,
//! or two replicas deciding it, leads to one external call.

use serde::Serialize;
use sqlx::PgExecutor;

/// The kinds of job, with the queue each runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    SubmitScratchBuild,
    CancelKojiTask,
    PollKojiTask,
    SubmitTestingFarm,
    CancelTestingFarm,
    FetchTestingFarm,
    SetFlag,
    PostComment,
    LookupFact,
}

impl JobKind {
    pub const ALL: [JobKind; 9] = [
        JobKind::SubmitScratchBuild,
        JobKind::CancelKojiTask,
        JobKind::PollKojiTask,
        JobKind::SubmitTestingFarm,
        JobKind::CancelTestingFarm,
        JobKind::FetchTestingFarm,
        JobKind::SetFlag,
        JobKind::PostComment,
        JobKind::LookupFact,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::SubmitScratchBuild => "submit-scratch-build",
            JobKind::CancelKojiTask => "cancel-koji-task",
            JobKind::PollKojiTask => "poll-koji-task",
            JobKind::SubmitTestingFarm => "submit-testing-farm",
            JobKind::CancelTestingFarm => "cancel-testing-farm",
            JobKind::FetchTestingFarm => "fetch-testing-farm",
            JobKind::SetFlag => "set-flag",
            JobKind::PostComment => "post-comment",
            JobKind::LookupFact => "lookup-fact",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The queue: one per external service, so each has its own concurrency
    /// and a slow service holds up only its own work.
    pub fn queue(self) -> &'static str {
        match self {
            JobKind::SubmitScratchBuild | JobKind::CancelKojiTask | JobKind::PollKojiTask => "koji",
            JobKind::SubmitTestingFarm | JobKind::CancelTestingFarm | JobKind::FetchTestingFarm => {
                "testing-farm"
            }
            JobKind::SetFlag | JobKind::PostComment => "distgit",
            JobKind::LookupFact => "lookup",
        }
    }
}

/// A job to create.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: JobKind,
    pub dedup_key: String,
    pub payload: serde_json::Value,
    pub event_id: Option<i64>,
    pub pipeline_id: Option<i64>,
}

/// Create a job unless one with its key exists; its id when created.
pub async fn enqueue(
    executor: impl PgExecutor<'_>,
    job: &NewJob,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        INSERT INTO jobs (kind, queue, dedup_key, payload, event_id, pipeline_id)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (dedup_key) DO NOTHING
        RETURNING id
        "#,
        job.kind.as_str(),
        job.kind.queue(),
        job.dedup_key,
        job.payload,
        job.event_id,
        job.pipeline_id,
    )
    .fetch_optional(executor)
    .await
}

/// Cancel a job that has not started; whether it was canceled (false when it
/// already runs or ran, or does not exist).
pub async fn cancel_pending(
    executor: impl PgExecutor<'_>,
    dedup_key: &str,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let canceled = sqlx::query!(
        r#"
        UPDATE jobs SET state = 'canceled', last_error = $2, finished_at = now(), updated_at = now()
        WHERE dedup_key = $1 AND state = 'pending'
        "#,
        dedup_key,
        reason,
    )
    .execute(executor)
    .await?;
    Ok(canceled.rows_affected() > 0)
}

/// Cancel every pending job of some kinds for a pipeline; how many.
pub async fn cancel_pending_of_pipeline(
    executor: impl PgExecutor<'_>,
    pipeline_id: i64,
    kinds: &[JobKind],
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let canceled = sqlx::query!(
        r#"
        UPDATE jobs SET state = 'canceled', last_error = $3, finished_at = now(), updated_at = now()
        WHERE pipeline_id = $1 AND kind = ANY($2) AND state = 'pending'
        "#,
        pipeline_id,
        &kinds as _,
        reason,
    )
    .execute(executor)
    .await?;
    Ok(canceled.rows_affected())
}

/// A job as tests and the API read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub queue: String,
    pub dedup_key: String,
    pub payload: serde_json::Value,
    pub state: String,
    pub pipeline_id: Option<i64>,
}

/// Every job, oldest first.
pub async fn all(executor: impl PgExecutor<'_>) -> Result<Vec<JobRow>, sqlx::Error> {
    sqlx::query_as!(
        JobRow,
        "SELECT id, kind, queue, dedup_key, payload, state, pipeline_id FROM jobs ORDER BY id"
    )
    .fetch_all(executor)
    .await
}
