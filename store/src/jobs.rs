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
    FetchElnPackages,
}

impl JobKind {
    pub const ALL: [JobKind; 10] = [
        JobKind::SubmitScratchBuild,
        JobKind::CancelKojiTask,
        JobKind::PollKojiTask,
        JobKind::SubmitTestingFarm,
        JobKind::CancelTestingFarm,
        JobKind::FetchTestingFarm,
        JobKind::SetFlag,
        JobKind::PostComment,
        JobKind::LookupFact,
        JobKind::FetchElnPackages,
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
            JobKind::FetchElnPackages => "fetch-eln-packages",
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
            // Reads, like the look-ups.
            JobKind::LookupFact | JobKind::FetchElnPackages => "lookup",
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
    enqueue_after(executor, job, std::time::Duration::ZERO).await
}

/// [`enqueue`], due only after `delay`: jobs asked for again within it fold
/// into the one waiting (by its key).
pub async fn enqueue_after(
    executor: impl PgExecutor<'_>,
    job: &NewJob,
    delay: std::time::Duration,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        INSERT INTO jobs (kind, queue, dedup_key, payload, event_id, pipeline_id, run_at)
        VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))
        ON CONFLICT (dedup_key) DO NOTHING
        RETURNING id
        "#,
        job.kind.as_str(),
        job.kind.queue(),
        job.dedup_key,
        job.payload,
        job.event_id,
        job.pipeline_id,
        delay.as_secs_f64(),
    )
    .fetch_optional(executor)
    .await
}

/// Create a fact look-up job unless the fact is known already.
pub async fn enqueue_unless_known(
    executor: impl PgExecutor<'_>,
    job: &NewJob,
    fact_key: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        INSERT INTO jobs (kind, queue, dedup_key, payload, event_id, pipeline_id)
        SELECT $1, $2, $3, $4, $5, $6
        WHERE NOT EXISTS (SELECT 1 FROM facts WHERE key = $7)
        ON CONFLICT (dedup_key) DO NOTHING
        RETURNING id
        "#,
        job.kind.as_str(),
        job.kind.queue(),
        job.dedup_key,
        job.payload,
        job.event_id,
        job.pipeline_id,
        fact_key,
    )
    .fetch_optional(executor)
    .await
}

/// Cancel a job that has not started; whether it was canceled (false when it
/// already runs or ran, or does not exist).
///
/// The state test is spelled `IS NOT DISTINCT FROM` so that the planner goes
/// by the unique `dedup_key` index: with `state = 'pending'` it may read the
/// whole `jobs_ready` index instead, which is slow when many jobs wait.
pub async fn cancel_pending(
    executor: impl PgExecutor<'_>,
    dedup_key: &str,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let canceled = sqlx::query!(
        r#"
        UPDATE jobs SET state = 'canceled', last_error = $2, finished_at = now(), updated_at = now()
        WHERE dedup_key = $1 AND state IS NOT DISTINCT FROM 'pending'
        "#,
        dedup_key,
        reason,
    )
    .execute(executor)
    .await?;
    Ok(canceled.rows_affected() > 0)
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

/// A job claimed by a runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: String,
    pub queue: String,
    pub dedup_key: String,
    pub payload: serde_json::Value,
    /// This attempt's number, from 1.
    pub attempts: i32,
    pub max_attempts: i32,
    pub event_id: Option<i64>,
    pub pipeline_id: Option<i64>,
}

/// Take up to `limit` jobs of a queue that are due, or whose runner's lease
/// ran out (it was killed): they are `running`, leased to `runner` until
/// `lease` from now. Other runners skip the rows this one holds. Periodic
/// polls (priority 1) come after every other due job of the queue.
pub async fn claim(
    executor: impl PgExecutor<'_>,
    queue: &str,
    runner: &str,
    lease: std::time::Duration,
    limit: i64,
) -> Result<Vec<ClaimedJob>, sqlx::Error> {
    let lease_seconds = lease.as_secs_f64();
    sqlx::query_as!(
        ClaimedJob,
        r#"
        UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $2,
            locked_until = now() + make_interval(secs => $3), updated_at = now()
        WHERE id IN (
            SELECT id FROM jobs
            WHERE queue = $1
              AND ((state = 'pending' AND run_at <= now())
                   OR (state = 'running' AND locked_until < now()))
            ORDER BY priority, run_at, id
            LIMIT $4
            FOR UPDATE SKIP LOCKED
        )
        RETURNING id, kind, queue, dedup_key, payload, attempts, max_attempts, event_id, pipeline_id
        "#,
        queue,
        runner,
        lease_seconds,
        limit,
    )
    .fetch_all(executor)
    .await
}

/// Keep a running job's lease; false if the job is no longer ours.
pub async fn extend_lease(
    executor: impl PgExecutor<'_>,
    id: i64,
    runner: &str,
    lease: std::time::Duration,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        r#"
        UPDATE jobs SET locked_until = now() + make_interval(secs => $3)
        WHERE id = $1 AND locked_by = $2 AND state = 'running'
        "#,
        id,
        runner,
        lease.as_secs_f64(),
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The job did its work. False if it was no longer ours (canceled, or
/// taken over after our lease ran out).
pub async fn complete(
    executor: impl PgExecutor<'_>,
    id: i64,
    runner: &str,
    result: &serde_json::Value,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        r#"
        UPDATE jobs SET state = 'done', result = $3, last_error = NULL, locked_by = NULL,
            locked_until = NULL, finished_at = now(), updated_at = now()
        WHERE id = $1 AND locked_by = $2 AND state = 'running'
        "#,
        id,
        runner,
        result,
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The attempt failed and may be tried again at `run_at`.
pub async fn retry_later(
    executor: impl PgExecutor<'_>,
    id: i64,
    runner: &str,
    error: &str,
    delay: std::time::Duration,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        r#"
        UPDATE jobs SET state = 'pending', last_error = $3, locked_by = NULL, locked_until = NULL,
            run_at = now() + make_interval(secs => $4), updated_at = now()
        WHERE id = $1 AND locked_by = $2 AND state = 'running'
        "#,
        id,
        runner,
        error,
        delay.as_secs_f64(),
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The job gave up: it stays visible as `dead` with its error, for an
/// operator to retry.
pub async fn bury(
    executor: impl PgExecutor<'_>,
    id: i64,
    runner: &str,
    error: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        r#"
        UPDATE jobs SET state = 'dead', last_error = $3, locked_by = NULL, locked_until = NULL,
            finished_at = now(), updated_at = now()
        WHERE id = $1 AND locked_by = $2 AND state = 'running'
        "#,
        id,
        runner,
        error,
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Hand a job back unfinished (the runner is shutting down): due at once,
/// and this attempt does not count.
pub async fn release(
    executor: impl PgExecutor<'_>,
    id: i64,
    runner: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        r#"
        UPDATE jobs SET state = 'pending', attempts = GREATEST(attempts - 1, 0), locked_by = NULL,
            locked_until = NULL, run_at = now(), updated_at = now()
        WHERE id = $1 AND locked_by = $2 AND state = 'running'
        "#,
        id,
        runner,
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Put a dead job back in line with fresh attempts; false if it is not dead.
/// A submission's give-up ended its build or test run as an error, and its
/// flag with it: retrying it opens them again (unless they were superseded
/// meanwhile), and the flag goes back to `pending` with `build_text` or
/// `test_text`, sent by a `set-flag` job, so the pull request shows the
/// retry and a later cancellation or result finds the flag open.
pub async fn retry_dead(
    executor: impl PgExecutor<'_>,
    id: i64,
    build_text: &str,
    test_text: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        r#"
        WITH job AS (
            UPDATE jobs SET state = 'pending', attempts = 0, run_at = now(), finished_at = NULL,
                updated_at = now()
            WHERE id = $1 AND state = 'dead'
            RETURNING kind, payload, event_id
        ), run AS (
            UPDATE test_runs SET state = 'new', result = NULL, summary = NULL, finished_at = NULL,
                updated_at = now()
            WHERE id = (SELECT (payload->>'test_run_id')::int8 FROM job
                        WHERE kind = 'submit-testing-farm')
              AND state = 'error' AND request_id IS NULL AND NOT superseded
            RETURNING id
        ), build AS (
            UPDATE koji_builds SET status = 'pending', error_message = NULL, finished_at = NULL,
                updated_at = now()
            WHERE id = (SELECT (payload->>'koji_build_id')::int8 FROM job
                        WHERE kind = 'submit-scratch-build')
              AND status = 'error' AND task_id IS NULL AND NOT superseded
            RETURNING id
        ), flag AS (
            UPDATE flags SET status = 'pending',
                comment = CASE WHEN test_run_id IS NOT NULL THEN $3 ELSE $2 END,
                version = version + 1, updated_at = now()
            WHERE (test_run_id IN (SELECT id FROM run)
                   OR (koji_build_id IN (SELECT id FROM build) AND test_run_id IS NULL))
              AND status <> 'pending'
            RETURNING id, version, pipeline_id
        ), flag_job AS (
            INSERT INTO jobs (kind, queue, dedup_key, payload, event_id, pipeline_id)
            SELECT 'set-flag', 'distgit', 'set-flag:' || flag.id || ':' || flag.version,
                   jsonb_build_object('flag_id', flag.id, 'version', flag.version),
                   (SELECT event_id FROM job), flag.pipeline_id
            FROM flag
            ON CONFLICT (dedup_key) DO NOTHING
        )
        SELECT count(*) AS "retried!" FROM job
        "#,
        id,
        build_text,
        test_text,
    )
    .fetch_one(executor)
    .await?;
    Ok(done.retried > 0)
}

/// When the next job of a queue is due, if any is waiting.
pub async fn next_due(
    executor: impl PgExecutor<'_>,
    queue: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        SELECT min(t) AS "t" FROM (
            SELECT min(run_at) AS t FROM jobs WHERE queue = $1 AND state = 'pending'
            UNION ALL
            SELECT min(locked_until) FROM jobs WHERE queue = $1 AND state = 'running'
        ) due
        "#,
        queue,
    )
    .fetch_one(executor)
    .await
}

/// Job counts per queue and state, for metrics and the status page.
pub async fn counts(
    executor: impl PgExecutor<'_>,
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"
        SELECT queue, state, count(*) AS "count!" FROM jobs
        WHERE state IN ('pending', 'running', 'dead')
        GROUP BY queue, state ORDER BY queue, state
        "#
    )
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.queue, r.state, r.count))
        .collect())
}

/// Wake the job runners (`NOTIFY fedora_ci_jobs`), when the transaction commits.
pub async fn notify_runners(executor: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT pg_notify('fedora_ci_jobs', '')")
        .execute(executor)
        .await
        .map(|_| ())
}

/// A job as an operator lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobSummary {
    pub id: i64,
    pub kind: String,
    pub queue: String,
    pub state: String,
    pub attempts: i32,
    pub dedup_key: String,
    pub last_error: Option<String>,
    pub run_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Jobs, newest first, optionally of one state, kind and queue.
pub async fn list(
    executor: impl PgExecutor<'_>,
    state: Option<&str>,
    kind: Option<&str>,
    queue: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<JobSummary>, sqlx::Error> {
    sqlx::query_as!(
        JobSummary,
        r#"
        SELECT id, kind, queue, state, attempts, dedup_key, last_error, run_at, updated_at
        FROM jobs
        WHERE ($1::text IS NULL OR state = $1)
          AND ($2::text IS NULL OR kind = $2)
          AND ($3::text IS NULL OR queue = $3)
        ORDER BY id DESC
        LIMIT $4 OFFSET $5
        "#,
        state,
        kind,
        queue,
        limit,
        offset,
    )
    .fetch_all(executor)
    .await
}

/// A job an operator canceled: what the flows need to end what waited on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanceledJob {
    pub kind: String,
    pub payload: serde_json::Value,
}

/// Cancel a job that has not started, by id; the job, if it was.
pub async fn cancel(
    executor: impl PgExecutor<'_>,
    id: i64,
    reason: &str,
) -> Result<Option<CanceledJob>, sqlx::Error> {
    sqlx::query_as!(
        CanceledJob,
        r#"
        UPDATE jobs SET state = 'canceled', last_error = $2, finished_at = now(), updated_at = now()
        WHERE id = $1 AND state = 'pending'
        RETURNING kind, payload
        "#,
        id,
        reason,
    )
    .fetch_optional(executor)
    .await
}

/// Record a runner's breaker state for a queue.
pub async fn record_breaker(
    executor: impl PgExecutor<'_>,
    queue: &str,
    runner: &str,
    state: &str,
    until: Option<chrono::DateTime<chrono::Utc>>,
    failures: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        INSERT INTO breakers (queue, runner, state, until, failures) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (queue, runner) DO UPDATE SET state = EXCLUDED.state, until = EXCLUDED.until,
            failures = EXCLUDED.failures, updated_at = now()
        "#,
        queue,
        runner,
        state,
        until,
        failures,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// A runner's breaker, as the status page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerRow {
    pub queue: String,
    pub runner: String,
    pub state: String,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub failures: i32,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Breakers of runners heard of in the last `recent`.
pub async fn breakers(
    executor: impl PgExecutor<'_>,
    recent: std::time::Duration,
) -> Result<Vec<BreakerRow>, sqlx::Error> {
    sqlx::query_as!(
        BreakerRow,
        r#"
        SELECT queue, runner, state, until, failures, updated_at FROM breakers
        WHERE updated_at > now() - make_interval(secs => $1)
        ORDER BY queue, runner
        "#,
        recent.as_secs_f64(),
    )
    .fetch_all(executor)
    .await
}

/// A job's state, if the job exists.
pub async fn state_of(
    executor: impl PgExecutor<'_>,
    id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!("SELECT state FROM jobs WHERE id = $1", id)
        .fetch_optional(executor)
        .await
}
