//! What the pages of one pipeline, one Koji build and one Testing Farm run
//! show: the record with its times, what it belongs to, what it holds, the
//! flags set for it on the pull request, and (for a pipeline) the decisions
//! the events that touched it took. These are the pages the flags link to,
//! so a person who clicks a flag sees what we know, in one place.
//!
//! Each page is read in one short read-only transaction, so its parts agree
//! with each other whichever replica answers.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::status::{BuildStatus, TestStatus};

/// How many decisions a pipeline's page lists, at most: the newest. A
/// pipeline with unfinished work collects decisions for as long as it runs.
pub const MAX_DECISIONS: i64 = 200;

/// A pipeline with its pull request or Bodhi update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PipelineDetail {
    pub id: i64,
    /// `pull-request` or `update`.
    pub kind: String,
    /// What made it: `pull_request`, `comment`, `bodhi-update`, `bodhi-retrigger`.
    pub trigger: String,
    /// `active`, `superseded` or `closed`.
    pub state: String,
    /// The commit that superseded it.
    pub superseded_by: Option<String>,
    /// The pipeline of that commit on the same pull request, when we have one.
    pub superseded_by_id: Option<i64>,
    /// 1, and one more each time the pipeline ran again (reopened, head returned, a command).
    pub round: i32,
    pub commit_sha: String,
    pub created_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
    /// e.g. `rpms/optee_os`.
    pub project: String,
    pub project_url: String,
    pub pr_number: Option<i64>,
    pub pr_title: Option<String>,
    pub pr_author: Option<String>,
    pub pr_url: Option<String>,
    /// `open`, `closed` or `merged`.
    pub pr_status: Option<String>,
    pub target_branch: Option<String>,
    /// The repository the commits come from (a fork, or the project).
    pub source_url: Option<String>,
    pub update_alias: Option<String>,
    pub update_url: Option<String>,
    /// The release an update's build is tested on.
    pub release: Option<String>,
    /// The official build an update's pipeline tests.
    pub nvr: Option<String>,
}

/// A flag this service set, or wants set, on a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagRecord {
    pub id: i64,
    pub check_name: String,
    /// pending, success, failure, error, canceled.
    pub status: String,
    pub comment: String,
    pub url: String,
    /// Grows with every change of status, comment or URL.
    pub version: i32,
    /// The version on the pull request (0: none was sent).
    pub sent_version: i32,
    pub commit_sha: String,
    pub koji_build_id: Option<i64>,
    pub test_run_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A decision about a pipeline, with the event that brought it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PipelineDecision {
    pub id: i64,
    pub event_id: i64,
    pub message_id: String,
    pub topic: String,
    /// `bus`, `webhook`, `internal`, `replay`.
    pub source: String,
    pub received_at: DateTime<Utc>,
    pub handler: String,
    /// acted, skipped, waiting, failed.
    pub outcome: String,
    pub subject: Option<String>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// Everything the pipeline page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PipelinePage {
    /// The database's clock: ages on the page are measured from it.
    pub now: DateTime<Utc>,
    pub pipeline: PipelineDetail,
    /// Its scratch builds, or the official build an update's pipeline tests.
    pub builds: Vec<BuildStatus>,
    pub tests: Vec<TestStatus>,
    pub flags: Vec<FlagRecord>,
    /// Oldest first; at most [`MAX_DECISIONS`], the newest.
    pub decisions: Vec<PipelineDecision>,
    /// Decisions left out: the oldest beyond [`MAX_DECISIONS`], and those of
    /// the service's own reads that changed nothing (a request polled in the
    /// same state), which `GET /api/events` has.
    pub decisions_left_out: i64,
}

/// The pipeline's page, `None` if there is no such pipeline.
pub async fn pipeline_page(pool: &PgPool, id: i64) -> Result<Option<PipelinePage>, sqlx::Error> {
    let mut tx = read_only(pool).await?;
    let Some(pipeline) = pipeline_detail(&mut tx, id).await? else {
        return Ok(None);
    };
    let builds = sqlx::query_as!(
        BuildStatus,
        r#"
        SELECT b.id, p.id AS "pipeline_id!", b.task_id, b.target, b.variant, b.status,
               b.koji_state, b.superseded, b.web_url, b.error_message, b.created_at,
               b.started_at, b.finished_at
        FROM pipelines p
        JOIN koji_builds b ON b.pipeline_id = p.id OR b.id = p.koji_build_id
        WHERE p.id = $1
        ORDER BY b.id
        "#,
        id,
    )
    .fetch_all(&mut *tx)
    .await?;
    let tests = crate::status::tests_of(&mut *tx, &[id]).await?;
    let flags = sqlx::query_as!(
        FlagRecord,
        r#"
        SELECT id, check_name, status, comment, url, version, sent_version, commit_sha,
               koji_build_id, test_run_id, created_at, updated_at
        FROM flags WHERE pipeline_id = $1
        ORDER BY id
        "#,
        id,
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut decisions = sqlx::query_as!(
        PipelineDecision,
        r#"
        SELECT d.id, d.event_id, e.message_id, e.topic, e.source, e.received_at, d.handler,
               d.outcome, d.subject, d.reason, d.created_at
        FROM decisions d JOIN events e ON e.id = d.event_id
        WHERE d.pipeline_id = $1 AND NOT (e.source = 'internal' AND e.status = 'skipped')
        ORDER BY d.id DESC
        LIMIT $2
        "#,
        id,
        MAX_DECISIONS,
    )
    .fetch_all(&mut *tx)
    .await?;
    decisions.reverse();
    let all: i64 = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM decisions WHERE pipeline_id = $1"#,
        id,
    )
    .fetch_one(&mut *tx)
    .await?;
    let now = now(&mut tx).await?;
    tx.commit().await?;
    Ok(Some(PipelinePage {
        now,
        pipeline,
        builds,
        tests,
        flags,
        decisions_left_out: all - i64::try_from(decisions.len()).unwrap_or(i64::MAX),
        decisions,
    }))
}

async fn pipeline_detail(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<PipelineDetail>, sqlx::Error> {
    sqlx::query_as!(
        PipelineDetail,
        r#"
        SELECT p.id, p.kind, p.trigger, p.state, p.superseded_by,
               (SELECT newer.id FROM pipelines newer
                WHERE newer.pull_request_id = p.pull_request_id
                  AND newer.commit_sha = p.superseded_by) AS superseded_by_id,
               p.round, p.commit_sha, p.created_at, p.updated_at,
               proj.namespace || '/' || proj.repo AS "project!",
               proj.url AS project_url,
               pr.number AS "pr_number?",
               pr.title AS "pr_title?",
               pr.author AS "pr_author?",
               COALESCE(pr.url, proj.url || '/pull-request/' || pr.number) AS "pr_url?",
               pr.status AS "pr_status?",
               pr.target_branch AS "target_branch?",
               pr.source_url AS "source_url?",
               u.alias AS "update_alias?",
               u.url AS "update_url?",
               p.release,
               b.nvr AS "nvr?"
        FROM pipelines p
        JOIN projects proj ON proj.id = p.project_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        LEFT JOIN updates u ON u.id = p.update_id
        LEFT JOIN koji_builds b ON b.id = p.koji_build_id
        WHERE p.id = $1
        "#,
        id,
    )
    .fetch_optional(&mut *conn)
    .await
}

/// A Koji build: a pull request's scratch build, or an official build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildDetail {
    pub id: i64,
    /// A scratch build's pipeline; official builds have none of their own.
    pub pipeline_id: Option<i64>,
    pub task_id: Option<i64>,
    /// Koji's build id; official builds have one.
    pub build_id: Option<i64>,
    pub nvr: Option<String>,
    pub scratch: bool,
    /// The Koji target (`rawhide`, `f42`, `eln`).
    pub target: String,
    pub branch: Option<String>,
    /// `default` or `eln`.
    pub variant: String,
    /// What Koji builds from: `git+https://...#<sha>`.
    pub source_url: String,
    pub commit_sha: Option<String>,
    /// Ours: pending, running, success, failure, canceled, error.
    pub status: String,
    /// Koji's task state as last recorded (FREE, OPEN, CLOSED, ...).
    pub koji_state: Option<String>,
    pub superseded: bool,
    pub web_url: Option<String>,
    /// `{"x86_64": "https://.../build.log"}`.
    pub log_urls: serde_json::Value,
    pub error_message: Option<String>,
    /// When it was decided.
    pub created_at: DateTime<Utc>,
    /// When Koji accepted it.
    pub submitted_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When Koji last told us about it (a message or a poll).
    pub last_heard_at: Option<DateTime<Utc>>,
    pub project: Option<String>,
    pub project_url: Option<String>,
    pub pr_number: Option<i64>,
    pub pr_title: Option<String>,
    pub pr_url: Option<String>,
}

/// Everything the build page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildPage {
    pub now: DateTime<Utc>,
    pub build: BuildDetail,
    /// The Bodhi updates that hold an official build.
    pub updates: Vec<crate::dashboard::UpdateRef>,
    /// The test runs of this build, in every pipeline it is in.
    pub tests: Vec<TestStatus>,
    pub flags: Vec<FlagRecord>,
}

/// The build's page, `None` if there is no such build.
pub async fn build_page(pool: &PgPool, id: i64) -> Result<Option<BuildPage>, sqlx::Error> {
    let mut tx = read_only(pool).await?;
    let build = sqlx::query_as!(
        BuildDetail,
        r#"
        SELECT b.id, b.pipeline_id, b.task_id, b.build_id, b.nvr, b.scratch, b.target, b.branch,
               b.variant, b.source_url, COALESCE(b.commit_sha, p.commit_sha) AS commit_sha,
               b.status, b.koji_state, b.superseded, b.web_url, b.log_urls, b.error_message,
               b.created_at, b.submitted_at, b.started_at, b.finished_at, b.last_heard_at,
               pj.namespace || '/' || pj.repo AS project,
               pj.url AS "project_url?",
               pr.number AS "pr_number?",
               pr.title AS "pr_title?",
               COALESCE(pr.url, pj.url || '/pull-request/' || pr.number) AS pr_url
        FROM koji_builds b
        LEFT JOIN pipelines p ON p.id = b.pipeline_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        LEFT JOIN projects pj ON pj.id = COALESCE(b.project_id, p.project_id)
        WHERE b.id = $1
        "#,
        id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(build) = build else {
        return Ok(None);
    };
    let updates = crate::dashboard::build_links(&mut tx, id).await?.updates;
    let tests = sqlx::query_as!(
        TestStatus,
        r#"
        SELECT id, pipeline_id, test_name, branch, variant, request_id, state, result, summary,
               artifacts_url, superseded, created_at, started_at, finished_at
        FROM test_runs WHERE koji_build_id = $1
        ORDER BY id
        "#,
        id,
    )
    .fetch_all(&mut *tx)
    .await?;
    let flags = sqlx::query_as!(
        FlagRecord,
        r#"
        SELECT id, check_name, status, comment, url, version, sent_version, commit_sha,
               koji_build_id, test_run_id, created_at, updated_at
        FROM flags WHERE koji_build_id = $1
        ORDER BY id
        "#,
        id,
    )
    .fetch_all(&mut *tx)
    .await?;
    let now = now(&mut tx).await?;
    tx.commit().await?;
    Ok(Some(BuildPage {
        now,
        build,
        updates,
        tests,
        flags,
    }))
}

/// A Testing Farm run with its pipeline's pull request or update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestDetail {
    pub id: i64,
    pub pipeline_id: i64,
    /// `active`, `superseded` or `closed`.
    pub pipeline_state: String,
    /// The build it tests.
    pub koji_build_id: Option<i64>,
    pub test_name: String,
    /// A gating run's test case (`fedora-ci.koji-build.installability.functional`).
    pub test_case: Option<String>,
    pub branch: String,
    pub variant: String,
    /// The Testing Farm compose (`Fedora-Rawhide`).
    pub compose: Option<String>,
    pub request_id: Option<String>,
    /// new, queued, running, complete, error, canceled.
    pub state: String,
    pub result: Option<String>,
    pub summary: Option<String>,
    pub artifacts_url: Option<String>,
    pub xunit_url: Option<String>,
    pub superseded: bool,
    /// When it was decided.
    pub created_at: DateTime<Utc>,
    /// When Testing Farm accepted the request.
    pub submitted_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub commit_sha: String,
    pub project: String,
    pub project_url: String,
    pub pr_number: Option<i64>,
    pub pr_title: Option<String>,
    pub pr_url: Option<String>,
    pub update_alias: Option<String>,
    pub update_url: Option<String>,
}

/// A Fedora CI message a gating run wrote for the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CiMessage {
    pub topic: String,
    pub created_at: DateTime<Utc>,
    /// When the broker confirmed it; `None` while it waits in the outbox.
    pub published_at: Option<DateTime<Utc>>,
}

/// Everything the test run page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestPage {
    pub now: DateTime<Utc>,
    pub test: TestDetail,
    pub flags: Vec<FlagRecord>,
    /// A gating run's Fedora CI messages, oldest first.
    pub messages: Vec<CiMessage>,
}

/// The test run's page, `None` if there is no such run.
pub async fn test_page(pool: &PgPool, id: i64) -> Result<Option<TestPage>, sqlx::Error> {
    let mut tx = read_only(pool).await?;
    let test = sqlx::query_as!(
        TestDetail,
        r#"
        SELECT t.id, t.pipeline_id, p.state AS pipeline_state, t.koji_build_id, t.test_name,
               t.test_case, t.branch, t.variant, t.compose, t.request_id, t.state, t.result,
               t.summary, t.artifacts_url, t.xunit_url, t.superseded, t.created_at,
               t.submitted_at, t.started_at, t.finished_at, t.updated_at, p.commit_sha,
               pj.namespace || '/' || pj.repo AS "project!",
               pj.url AS project_url,
               pr.number AS "pr_number?",
               pr.title AS "pr_title?",
               COALESCE(pr.url, pj.url || '/pull-request/' || pr.number) AS "pr_url?",
               u.alias AS "update_alias?",
               u.url AS "update_url?"
        FROM test_runs t
        JOIN pipelines p ON p.id = t.pipeline_id
        JOIN projects pj ON pj.id = p.project_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        LEFT JOIN updates u ON u.id = p.update_id
        WHERE t.id = $1
        "#,
        id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(test) = test else {
        return Ok(None);
    };
    let flags = sqlx::query_as!(
        FlagRecord,
        r#"
        SELECT id, check_name, status, comment, url, version, sent_version, commit_sha,
               koji_build_id, test_run_id, created_at, updated_at
        FROM flags WHERE test_run_id = $1
        ORDER BY id
        "#,
        id,
    )
    .fetch_all(&mut *tx)
    .await?;
    let messages = sqlx::query_as!(
        CiMessage,
        r#"
        SELECT topic, created_at, published_at FROM outbox
        WHERE test_run_id = $1
        ORDER BY id
        "#,
        id,
    )
    .fetch_all(&mut *tx)
    .await?;
    let now = now(&mut tx).await?;
    tx.commit().await?;
    Ok(Some(TestPage {
        now,
        test,
        flags,
        messages,
    }))
}

async fn read_only(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

async fn now(conn: &mut PgConnection) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
        .fetch_one(conn)
        .await
}
