//! What the status page at `/` shows: queue depths, the inbox's backlog,
//! the outbox's backlog of Fedora CI messages, the ELN package list, the
//! circuit breakers, the pull requests' pipelines with their builds and
//! tests, the updates' gating runs, the latest events with their decisions,
//! and the dead jobs.
//!
//! The page refreshes itself every few seconds, so every list is bounded by
//! a limit ([`Limits`]) and all of it is read in one short read-only
//! transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgExecutor, PgPool};

use crate::dashboard::GatingTestRecord;

/// How much the page shows.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The latest events, with their decisions (but the service's own
    /// reads that changed nothing).
    pub events: i64,
    /// The latest pipelines; pipelines with unfinished work are shown besides.
    pub pipelines: i64,
    /// At most this many pipelines in all.
    pub max_pipelines: i64,
    /// The latest update runs (gating); runs with unfinished tests are shown
    /// besides.
    pub update_runs: i64,
    /// At most this many update runs in all.
    pub max_update_runs: i64,
    pub dead_jobs: i64,
    /// Breakers of runners that reported within this.
    pub breakers_recent: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            events: 30,
            pipelines: 10,
            max_pipelines: 50,
            update_runs: 10,
            max_update_runs: 50,
            dead_jobs: 20,
            breakers_recent: std::time::Duration::from_secs(120),
        }
    }
}

/// Everything the page shows, read in one snapshot of the database.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub inbox: Inbox,
    /// Events received in the last hour, by status.
    pub last_hour: Vec<StatusCount>,
    pub outbox: OutboxStatus,
    /// The ELN package list: how many, when, from where, the last failure.
    pub eln: crate::eln::ElnStatus,
    pub queues: Vec<QueueDepth>,
    pub breakers: Vec<BreakerState>,
    pub pipelines: Vec<PipelineStatus>,
    pub update_runs: Vec<UpdateRunStatus>,
    pub events: Vec<RecentEvent>,
    pub dead_jobs: Vec<DeadJob>,
}

/// Read everything the page shows in one read-only transaction, so that the
/// numbers agree with each other.
pub async fn snapshot(pool: &PgPool, limits: &Limits) -> Result<Snapshot, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let inbox = inbox(&mut *tx).await?;
    let last_hour = events_last_hour(&mut *tx).await?;
    let outbox = outbox(&mut *tx).await?;
    let eln = crate::eln::status(&mut *tx).await?;
    let queues = queue_depths(&mut *tx).await?;
    let breakers = breakers(&mut *tx, limits.breakers_recent).await?;
    let pipelines = pipelines(&mut tx, limits.pipelines, limits.max_pipelines).await?;
    let update_runs = update_runs(&mut tx, limits.update_runs, limits.max_update_runs).await?;
    let events = recent_events(&mut tx, limits.events).await?;
    let dead_jobs = dead_jobs(&mut *tx, limits.dead_jobs).await?;
    tx.commit().await?;
    Ok(Snapshot {
        inbox,
        last_hour,
        outbox,
        eln,
        queues,
        breakers,
        pipelines,
        update_runs,
        events,
        dead_jobs,
    })
}

/// The backlog of the decider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inbox {
    /// The database's clock: ages on the page are measured from it.
    pub now: DateTime<Utc>,
    /// Events received and not decided yet.
    pub waiting: i64,
    /// When the oldest of them was received: the inbox's lag.
    pub oldest_waiting: Option<DateTime<Utc>>,
    /// Events parked until a fact is looked up.
    pub waiting_for_facts: i64,
    pub last_received: Option<DateTime<Utc>>,
}

pub async fn inbox(executor: impl PgExecutor<'_>) -> Result<Inbox, sqlx::Error> {
    sqlx::query_as!(
        Inbox,
        r#"
        SELECT now() AS "now!",
               (SELECT count(*) FROM events WHERE status = 'received') AS "waiting!",
               (SELECT received_at FROM events WHERE status = 'received'
                ORDER BY id LIMIT 1) AS oldest_waiting,
               (SELECT count(DISTINCT event_id) FROM waiting_events) AS "waiting_for_facts!",
               (SELECT max(received_at) FROM events) AS last_received
        "#
    )
    .fetch_one(executor)
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusCount {
    pub status: String,
    pub count: i64,
}

pub async fn events_last_hour(
    executor: impl PgExecutor<'_>,
) -> Result<Vec<StatusCount>, sqlx::Error> {
    sqlx::query_as!(
        StatusCount,
        r#"
        SELECT status, count(*) AS "count!" FROM events
        WHERE received_at > now() - interval '1 hour'
        GROUP BY status ORDER BY status
        "#
    )
    .fetch_all(executor)
    .await
}

/// The Fedora CI messages waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxStatus {
    /// Messages written and not confirmed by the broker yet.
    pub waiting: i64,
    /// When the oldest of them was written: how far behind the bus is.
    pub oldest_waiting: Option<DateTime<Utc>>,
    /// Why publishing the first in line failed last, if it did.
    pub last_error: Option<String>,
    /// How many times the first in line was tried.
    pub attempts: Option<i32>,
    /// When the broker last confirmed a message.
    pub last_published: Option<DateTime<Utc>>,
}

/// The publisher takes messages in order and records a failure on the first
/// in line, so that one's error is the publisher's current trouble.
pub async fn outbox(executor: impl PgExecutor<'_>) -> Result<OutboxStatus, sqlx::Error> {
    sqlx::query_as!(
        OutboxStatus,
        r#"
        WITH first AS (
            SELECT created_at, last_error, attempts FROM outbox
            WHERE published_at IS NULL ORDER BY id LIMIT 1
        )
        SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS "waiting!",
               (SELECT created_at FROM first) AS oldest_waiting,
               (SELECT last_error FROM first) AS last_error,
               (SELECT attempts FROM first) AS attempts,
               (SELECT published_at FROM outbox WHERE published_at IS NOT NULL
                ORDER BY id DESC LIMIT 1) AS last_published
        "#
    )
    .fetch_one(executor)
    .await
}

/// A job queue's backlog. Queues without unfinished or dead jobs are absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    pub queue: String,
    /// Pending and due now.
    pub due: i64,
    /// Pending and due later (a retry's backoff, a scheduled read).
    pub scheduled: i64,
    pub running: i64,
    pub dead: i64,
    /// When the longest-waiting due job became due.
    pub oldest_due: Option<DateTime<Utc>>,
}

pub async fn queue_depths(executor: impl PgExecutor<'_>) -> Result<Vec<QueueDepth>, sqlx::Error> {
    sqlx::query_as!(
        QueueDepth,
        r#"
        SELECT queue,
               count(*) FILTER (WHERE state = 'pending' AND run_at <= now()) AS "due!",
               count(*) FILTER (WHERE state = 'pending' AND run_at > now()) AS "scheduled!",
               count(*) FILTER (WHERE state = 'running') AS "running!",
               count(*) FILTER (WHERE state = 'dead') AS "dead!",
               min(run_at) FILTER (WHERE state = 'pending' AND run_at <= now()) AS oldest_due
        FROM jobs WHERE state IN ('pending', 'running', 'dead')
        GROUP BY queue ORDER BY queue
        "#
    )
    .fetch_all(executor)
    .await
}

/// A job runner's circuit breaker for a queue, as the runner last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerState {
    pub queue: String,
    pub runner: String,
    /// `closed`, `open` or `half-open`.
    pub state: String,
    /// While open: when the next probe goes.
    pub until: Option<DateTime<Utc>>,
    /// Consecutive failures counted.
    pub failures: i32,
    pub updated_at: DateTime<Utc>,
}

/// The breakers of runners that reported within `recent` (a live runner
/// reports at least every 30 s).
pub async fn breakers(
    executor: impl PgExecutor<'_>,
    recent: std::time::Duration,
) -> Result<Vec<BreakerState>, sqlx::Error> {
    sqlx::query_as!(
        BreakerState,
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

/// A pipeline with its pull request, builds and test runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PipelineStatus {
    pub id: i64,
    pub project: String,
    pub project_url: String,
    pub pr_number: Option<i64>,
    pub pr_title: Option<String>,
    pub pr_author: Option<String>,
    pub pr_url: Option<String>,
    pub target_branch: Option<String>,
    pub commit_sha: String,
    /// `active`, `superseded` or `closed`.
    pub state: String,
    pub trigger: String,
    /// Whether a build or test of it has not finished.
    pub running: bool,
    pub created_at: DateTime<Utc>,
    pub builds: Vec<BuildStatus>,
    pub tests: Vec<TestStatus>,
}

struct PipelineRow {
    id: i64,
    project: String,
    project_url: String,
    pr_number: Option<i64>,
    pr_title: Option<String>,
    pr_author: Option<String>,
    pr_url: Option<String>,
    target_branch: Option<String>,
    commit_sha: String,
    state: String,
    trigger: String,
    running: bool,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildStatus {
    pub id: i64,
    pub pipeline_id: i64,
    pub task_id: Option<i64>,
    pub target: String,
    pub variant: String,
    /// Ours: pending, running, success, failure, canceled, error.
    pub status: String,
    pub koji_state: Option<String>,
    pub superseded: bool,
    /// The Koji task page.
    pub web_url: Option<String>,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestStatus {
    pub id: i64,
    pub pipeline_id: i64,
    pub test_name: String,
    pub branch: String,
    pub variant: String,
    pub request_id: Option<String>,
    /// new, queued, running, complete, error, canceled.
    pub state: String,
    pub result: Option<String>,
    pub summary: Option<String>,
    pub artifacts_url: Option<String>,
    pub superseded: bool,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The latest `recent` pull-request pipelines and every one with unfinished
/// work (at most `max` in all), unfinished first, newest first. Updates'
/// pipelines are [`update_runs`].
pub async fn pipelines(
    executor: &mut sqlx::PgConnection,
    recent: i64,
    max: i64,
) -> Result<Vec<PipelineStatus>, sqlx::Error> {
    let rows = sqlx::query_as!(
        PipelineRow,
        r#"
        WITH unfinished AS (
            SELECT pipeline_id FROM koji_builds
            WHERE status IN ('pending', 'running') AND pipeline_id IS NOT NULL
            UNION
            SELECT pipeline_id FROM test_runs WHERE state IN ('new', 'queued', 'running')
        ), latest AS (
            SELECT id FROM pipelines WHERE kind = 'pull-request' ORDER BY id DESC LIMIT $1
        )
        SELECT p.id AS "id!",
               proj.namespace || '/' || proj.repo AS "project!",
               proj.url AS "project_url!",
               pr.number AS "pr_number?",
               pr.title AS "pr_title?",
               pr.author AS "pr_author?",
               COALESCE(pr.url, proj.url || '/pull-request/' || pr.number) AS "pr_url?",
               pr.target_branch AS "target_branch?",
               p.commit_sha AS "commit_sha!",
               p.state AS "state!",
               p.trigger AS "trigger!",
               (p.id IN (SELECT pipeline_id FROM unfinished)) AS "running!",
               p.created_at AS "created_at!"
        FROM pipelines p
        JOIN projects proj ON proj.id = p.project_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        WHERE p.kind = 'pull-request'
          AND (p.id IN (SELECT pipeline_id FROM unfinished) OR p.id IN (SELECT id FROM latest))
        ORDER BY "running!" DESC, p.id DESC
        LIMIT $2
        "#,
        recent,
        max,
    )
    .fetch_all(&mut *executor)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|p| p.id).collect();
    let mut builds: HashMap<i64, Vec<BuildStatus>> = HashMap::new();
    for build in builds_of(&mut *executor, &ids).await? {
        builds.entry(build.pipeline_id).or_default().push(build);
    }
    let mut tests: HashMap<i64, Vec<TestStatus>> = HashMap::new();
    for test in tests_of(&mut *executor, &ids).await? {
        tests.entry(test.pipeline_id).or_default().push(test);
    }
    Ok(rows
        .into_iter()
        .map(|p| PipelineStatus {
            builds: builds.remove(&p.id).unwrap_or_default(),
            tests: tests.remove(&p.id).unwrap_or_default(),
            id: p.id,
            project: p.project,
            project_url: p.project_url,
            pr_number: p.pr_number,
            pr_title: p.pr_title,
            pr_author: p.pr_author,
            pr_url: p.pr_url,
            target_branch: p.target_branch,
            commit_sha: p.commit_sha,
            state: p.state,
            trigger: p.trigger,
            running: p.running,
            created_at: p.created_at,
        })
        .collect())
}

/// The builds of some pipelines, oldest first.
pub async fn builds_of(
    executor: impl PgExecutor<'_>,
    pipeline_ids: &[i64],
) -> Result<Vec<BuildStatus>, sqlx::Error> {
    sqlx::query_as!(
        BuildStatus,
        r#"
        SELECT id, pipeline_id AS "pipeline_id!", task_id, target, variant, status, koji_state,
               superseded, web_url, error_message, created_at, started_at, finished_at
        FROM koji_builds WHERE pipeline_id = ANY($1)
        ORDER BY id
        "#,
        pipeline_ids,
    )
    .fetch_all(executor)
    .await
}

/// The test runs of some pipelines, oldest first.
pub async fn tests_of(
    executor: impl PgExecutor<'_>,
    pipeline_ids: &[i64],
) -> Result<Vec<TestStatus>, sqlx::Error> {
    sqlx::query_as!(
        TestStatus,
        r#"
        SELECT id, pipeline_id, test_name, branch, variant, request_id, state, result, summary,
               artifacts_url, superseded, created_at, started_at, finished_at
        FROM test_runs WHERE pipeline_id = ANY($1)
        ORDER BY id
        "#,
        pipeline_ids,
    )
    .fetch_all(executor)
    .await
}

/// One build of a Bodhi update in one round of testing, with its tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateRunStatus {
    /// The pipeline's id.
    pub id: i64,
    pub alias: String,
    pub update_url: Option<String>,
    pub nvr: Option<String>,
    pub task_id: Option<i64>,
    /// e.g. `rpms/gdb`.
    pub project: String,
    /// The release the build is tested on (`f34`, `rawhide`).
    pub release: Option<String>,
    pub commit_sha: String,
    /// `bodhi-update` (the first round) or `bodhi-retrigger`.
    pub trigger: String,
    /// Whether a test of it has not finished.
    pub running: bool,
    pub created_at: DateTime<Utc>,
    pub tests: Vec<GatingTestRecord>,
}

struct UpdateRunRow {
    id: i64,
    alias: String,
    update_url: Option<String>,
    nvr: Option<String>,
    task_id: Option<i64>,
    project: String,
    release: Option<String>,
    commit_sha: String,
    trigger: String,
    running: bool,
    created_at: DateTime<Utc>,
}

/// The latest `recent` update runs and every one with unfinished tests (at
/// most `max` in all), unfinished first, newest first.
pub async fn update_runs(
    executor: &mut sqlx::PgConnection,
    recent: i64,
    max: i64,
) -> Result<Vec<UpdateRunStatus>, sqlx::Error> {
    let rows = sqlx::query_as!(
        UpdateRunRow,
        r#"
        WITH unfinished AS (
            SELECT pipeline_id FROM test_runs WHERE state IN ('new', 'queued', 'running')
        ), latest AS (
            SELECT id FROM pipelines WHERE kind = 'update' ORDER BY id DESC LIMIT $1
        )
        SELECT p.id AS "id!",
               u.alias AS "alias!",
               u.url AS update_url,
               b.nvr AS "nvr?",
               b.task_id AS "task_id?",
               proj.namespace || '/' || proj.repo AS "project!",
               p.release,
               p.commit_sha AS "commit_sha!",
               p.trigger AS "trigger!",
               (p.id IN (SELECT pipeline_id FROM unfinished)) AS "running!",
               p.created_at AS "created_at!"
        FROM pipelines p
        JOIN updates u ON u.id = p.update_id
        JOIN projects proj ON proj.id = p.project_id
        LEFT JOIN koji_builds b ON b.id = p.koji_build_id
        WHERE p.kind = 'update'
          AND (p.id IN (SELECT pipeline_id FROM unfinished) OR p.id IN (SELECT id FROM latest))
        ORDER BY "running!" DESC, p.id DESC
        LIMIT $2
        "#,
        recent,
        max,
    )
    .fetch_all(&mut *executor)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut tests: HashMap<i64, Vec<GatingTestRecord>> = HashMap::new();
    for test in crate::dashboard::gating_tests_of_pipelines(&mut *executor, &ids).await? {
        tests.entry(test.pipeline_id).or_default().push(test);
    }
    Ok(rows
        .into_iter()
        .map(|r| UpdateRunStatus {
            tests: tests.remove(&r.id).unwrap_or_default(),
            id: r.id,
            alias: r.alias,
            update_url: r.update_url,
            nvr: r.nvr,
            task_id: r.task_id,
            project: r.project,
            release: r.release,
            commit_sha: r.commit_sha,
            trigger: r.trigger,
            running: r.running,
            created_at: r.created_at,
        })
        .collect())
}

/// An event with its decisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecentEvent {
    pub id: i64,
    pub message_id: String,
    pub topic: String,
    pub source: String,
    pub status: String,
    pub reason: Option<String>,
    pub received_at: DateTime<Utc>,
    pub decisions: Vec<EventDecision>,
}

struct EventRow {
    id: i64,
    message_id: String,
    topic: String,
    source: String,
    status: String,
    reason: Option<String>,
    received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventDecision {
    pub event_id: i64,
    pub handler: String,
    /// acted, skipped, waiting, failed.
    pub outcome: String,
    pub subject: Option<String>,
    pub reason: String,
}

/// The latest `limit` events, newest first, each with its decisions in order.
/// The service's own reads that changed nothing (a Testing Farm request or a
/// Koji task polled in the same state) are left out: while work is
/// unfinished there are several a second, and they would push everything
/// else off the page. `GET /api/events` has them.
pub async fn recent_events(
    executor: &mut sqlx::PgConnection,
    limit: i64,
) -> Result<Vec<RecentEvent>, sqlx::Error> {
    let rows = sqlx::query_as!(
        EventRow,
        r#"
        SELECT id, message_id, topic, source, status, reason, received_at
        FROM events WHERE NOT (source = 'internal' AND status = 'skipped')
        ORDER BY id DESC LIMIT $1
        "#,
        limit,
    )
    .fetch_all(&mut *executor)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|e| e.id).collect();
    let decisions = sqlx::query_as!(
        EventDecision,
        r#"
        SELECT event_id, handler, outcome, subject, reason FROM decisions
        WHERE event_id = ANY($1) ORDER BY event_id, id
        "#,
        &ids,
    )
    .fetch_all(&mut *executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|e| RecentEvent {
            decisions: decisions
                .iter()
                .filter(|d| d.event_id == e.id)
                .cloned()
                .collect(),
            id: e.id,
            message_id: e.message_id,
            topic: e.topic,
            source: e.source,
            status: e.status,
            reason: e.reason,
            received_at: e.received_at,
        })
        .collect())
}

/// A job that gave up, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadJob {
    pub id: i64,
    pub kind: String,
    pub queue: String,
    pub dedup_key: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    pub died_at: DateTime<Utc>,
}

/// The latest dead jobs, latest first.
pub async fn dead_jobs(
    executor: impl PgExecutor<'_>,
    limit: i64,
) -> Result<Vec<DeadJob>, sqlx::Error> {
    sqlx::query_as!(
        DeadJob,
        r#"
        SELECT id, kind, queue, dedup_key, attempts, max_attempts, last_error,
               COALESCE(finished_at, updated_at) AS "died_at!"
        FROM jobs WHERE state = 'dead'
        ORDER BY COALESCE(finished_at, updated_at) DESC, id DESC
        LIMIT $1
        "#,
        limit,
    )
    .fetch_all(executor)
    .await
}
