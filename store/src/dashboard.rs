//! What the Packit dashboard reads: Koji builds, Testing Farm runs, pipelines
//! (Packit's "runs") and the pull requests of a project, each with the pull
//! request and project it belongs to. Read-only; the API shapes the answers
//! (docs/api.md).
//!
//! Lists are newest first (by id), as Packit Service orders them.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// A Koji build with the pipeline, pull request and project it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct KojiBuildRecord {
    pub id: i64,
    pub task_id: Option<i64>,
    pub scratch: bool,
    pub status: String,
    pub target: String,
    pub branch: Option<String>,
    /// The build's commit, else its pipeline's.
    pub commit_sha: Option<String>,
    pub web_url: Option<String>,
    /// `{"x86_64": "https://.../build.log"}`; `{}` until Koji told us.
    pub log_urls: serde_json::Value,
    /// When Koji accepted the build, else when we decided it.
    pub submitted_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error_message: Option<String>,
    pub pipeline_id: Option<i64>,
    pub pr_number: Option<i64>,
    pub project_url: Option<String>,
    pub namespace: Option<String>,
    pub repo: Option<String>,
}

/// A page of Koji builds, newest first; only scratch (or only official)
/// builds when `scratch` says so.
pub async fn koji_builds(
    executor: impl PgExecutor<'_>,
    scratch: Option<bool>,
    limit: i64,
    offset: i64,
) -> Result<Vec<KojiBuildRecord>, sqlx::Error> {
    sqlx::query_as!(
        KojiBuildRecord,
        r#"
        SELECT b.id, b.task_id, b.scratch, b.status, b.target, b.branch,
               COALESCE(b.commit_sha, p.commit_sha) AS commit_sha, b.web_url, b.log_urls,
               COALESCE(b.submitted_at, b.created_at) AS "submitted_at!",
               b.started_at, b.finished_at, b.error_message, b.pipeline_id,
               pr.number AS "pr_number?", pj.url AS "project_url?",
               pj.namespace AS "namespace?", pj.repo AS "repo?"
        FROM koji_builds b
        LEFT JOIN pipelines p ON p.id = b.pipeline_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        LEFT JOIN projects pj ON pj.id = COALESCE(b.project_id, p.project_id)
        WHERE $1::boolean IS NULL OR b.scratch = $1
        ORDER BY b.id DESC
        LIMIT $2 OFFSET $3
        "#,
        scratch,
        limit,
        offset,
    )
    .fetch_all(executor)
    .await
}

pub async fn koji_build(
    executor: impl PgExecutor<'_>,
    id: i64,
) -> Result<Option<KojiBuildRecord>, sqlx::Error> {
    sqlx::query_as!(
        KojiBuildRecord,
        r#"
        SELECT b.id, b.task_id, b.scratch, b.status, b.target, b.branch,
               COALESCE(b.commit_sha, p.commit_sha) AS commit_sha, b.web_url, b.log_urls,
               COALESCE(b.submitted_at, b.created_at) AS "submitted_at!",
               b.started_at, b.finished_at, b.error_message, b.pipeline_id,
               pr.number AS "pr_number?", pj.url AS "project_url?",
               pj.namespace AS "namespace?", pj.repo AS "repo?"
        FROM koji_builds b
        LEFT JOIN pipelines p ON p.id = b.pipeline_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        LEFT JOIN projects pj ON pj.id = COALESCE(b.project_id, p.project_id)
        WHERE b.id = $1
        "#,
        id,
    )
    .fetch_optional(executor)
    .await
}

/// The Koji builds of these pipelines, oldest first.
pub async fn koji_builds_of_pipelines(
    executor: impl PgExecutor<'_>,
    pipeline_ids: &[i64],
) -> Result<Vec<KojiBuildRecord>, sqlx::Error> {
    sqlx::query_as!(
        KojiBuildRecord,
        r#"
        SELECT b.id, b.task_id, b.scratch, b.status, b.target, b.branch,
               COALESCE(b.commit_sha, p.commit_sha) AS commit_sha, b.web_url, b.log_urls,
               COALESCE(b.submitted_at, b.created_at) AS "submitted_at!",
               b.started_at, b.finished_at, b.error_message, b.pipeline_id,
               pr.number AS "pr_number?", pj.url AS "project_url?",
               pj.namespace AS "namespace?", pj.repo AS "repo?"
        FROM koji_builds b
        JOIN pipelines p ON p.id = b.pipeline_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        LEFT JOIN projects pj ON pj.id = COALESCE(b.project_id, p.project_id)
        WHERE b.pipeline_id = ANY($1)
        ORDER BY b.id
        "#,
        pipeline_ids,
    )
    .fetch_all(executor)
    .await
}

/// A Testing Farm run with the pipeline, pull request and project it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunRecord {
    pub id: i64,
    /// The Testing Farm request id, once Testing Farm accepted the request.
    pub request_id: Option<String>,
    pub test_name: String,
    pub branch: String,
    pub variant: String,
    pub compose: Option<String>,
    pub state: String,
    pub result: Option<String>,
    pub artifacts_url: Option<String>,
    /// When Testing Farm accepted the request, else when we decided it.
    pub submitted_at: DateTime<Utc>,
    pub koji_build_id: Option<i64>,
    pub pipeline_id: i64,
    pub commit_sha: String,
    pub pr_number: Option<i64>,
    pub project_url: String,
    pub namespace: String,
    pub repo: String,
}

/// A page of Testing Farm runs, newest first.
pub async fn test_runs(
    executor: impl PgExecutor<'_>,
    limit: i64,
    offset: i64,
) -> Result<Vec<TestRunRecord>, sqlx::Error> {
    sqlx::query_as!(
        TestRunRecord,
        r#"
        SELECT t.id, t.request_id, t.test_name, t.branch, t.variant, t.compose, t.state,
               t.result, t.artifacts_url,
               COALESCE(t.submitted_at, t.created_at) AS "submitted_at!",
               t.koji_build_id, t.pipeline_id, p.commit_sha,
               pr.number AS "pr_number?", pj.url AS project_url, pj.namespace, pj.repo
        FROM test_runs t
        JOIN pipelines p ON p.id = t.pipeline_id
        JOIN projects pj ON pj.id = p.project_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        ORDER BY t.id DESC
        LIMIT $1 OFFSET $2
        "#,
        limit,
        offset,
    )
    .fetch_all(executor)
    .await
}

pub async fn test_run(
    executor: impl PgExecutor<'_>,
    id: i64,
) -> Result<Option<TestRunRecord>, sqlx::Error> {
    sqlx::query_as!(
        TestRunRecord,
        r#"
        SELECT t.id, t.request_id, t.test_name, t.branch, t.variant, t.compose, t.state,
               t.result, t.artifacts_url,
               COALESCE(t.submitted_at, t.created_at) AS "submitted_at!",
               t.koji_build_id, t.pipeline_id, p.commit_sha,
               pr.number AS "pr_number?", pj.url AS project_url, pj.namespace, pj.repo
        FROM test_runs t
        JOIN pipelines p ON p.id = t.pipeline_id
        JOIN projects pj ON pj.id = p.project_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        WHERE t.id = $1
        "#,
        id,
    )
    .fetch_optional(executor)
    .await
}

/// The Testing Farm runs of these pipelines, oldest first.
pub async fn test_runs_of_pipelines(
    executor: impl PgExecutor<'_>,
    pipeline_ids: &[i64],
) -> Result<Vec<TestRunRecord>, sqlx::Error> {
    sqlx::query_as!(
        TestRunRecord,
        r#"
        SELECT t.id, t.request_id, t.test_name, t.branch, t.variant, t.compose, t.state,
               t.result, t.artifacts_url,
               COALESCE(t.submitted_at, t.created_at) AS "submitted_at!",
               t.koji_build_id, t.pipeline_id, p.commit_sha,
               pr.number AS "pr_number?", pj.url AS project_url, pj.namespace, pj.repo
        FROM test_runs t
        JOIN pipelines p ON p.id = t.pipeline_id
        JOIN projects pj ON pj.id = p.project_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        WHERE t.pipeline_id = ANY($1)
        ORDER BY t.id
        "#,
        pipeline_ids,
    )
    .fetch_all(executor)
    .await
}

/// A pipeline (Packit's "run") with its pull request and project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineRecord {
    pub id: i64,
    pub commit_sha: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub pr_number: Option<i64>,
    pub project_url: String,
    pub namespace: String,
    pub repo: String,
    pub has_builds: bool,
    pub has_test_runs: bool,
}

/// A page of pipelines, newest first.
pub async fn pipelines(
    executor: impl PgExecutor<'_>,
    limit: i64,
    offset: i64,
) -> Result<Vec<PipelineRecord>, sqlx::Error> {
    sqlx::query_as!(
        PipelineRecord,
        r#"
        SELECT p.id, p.commit_sha, p.state, p.created_at, pr.number AS "pr_number?",
               pj.url AS project_url, pj.namespace, pj.repo,
               EXISTS (SELECT 1 FROM koji_builds b WHERE b.pipeline_id = p.id) AS "has_builds!",
               EXISTS (SELECT 1 FROM test_runs t WHERE t.pipeline_id = p.id) AS "has_test_runs!"
        FROM pipelines p
        JOIN projects pj ON pj.id = p.project_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        ORDER BY p.id DESC
        LIMIT $1 OFFSET $2
        "#,
        limit,
        offset,
    )
    .fetch_all(executor)
    .await
}

pub async fn pipeline(
    executor: impl PgExecutor<'_>,
    id: i64,
) -> Result<Option<PipelineRecord>, sqlx::Error> {
    sqlx::query_as!(
        PipelineRecord,
        r#"
        SELECT p.id, p.commit_sha, p.state, p.created_at, pr.number AS "pr_number?",
               pj.url AS project_url, pj.namespace, pj.repo,
               EXISTS (SELECT 1 FROM koji_builds b WHERE b.pipeline_id = p.id) AS "has_builds!",
               EXISTS (SELECT 1 FROM test_runs t WHERE t.pipeline_id = p.id) AS "has_test_runs!"
        FROM pipelines p
        JOIN projects pj ON pj.id = p.project_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        WHERE p.id = $1
        "#,
        id,
    )
    .fetch_optional(executor)
    .await
}

/// A pull request of a project, with the pipelines it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestRecord {
    pub id: i64,
    pub number: i64,
    pub pipeline_ids: Vec<i64>,
}

/// A page of a project's pull requests, highest number first, as Packit
/// Service orders them. The project is named by its forge (host), namespace
/// and repository name.
pub async fn project_pull_requests(
    executor: impl PgExecutor<'_>,
    forge: &str,
    namespace: &str,
    repo: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<PullRequestRecord>, sqlx::Error> {
    sqlx::query_as!(
        PullRequestRecord,
        r#"
        SELECT pr.id, pr.number,
               ARRAY(SELECT p.id FROM pipelines p WHERE p.pull_request_id = pr.id ORDER BY p.id)
                   AS "pipeline_ids!"
        FROM pull_requests pr
        JOIN projects pj ON pj.id = pr.project_id
        WHERE pj.forge = $1 AND pj.namespace = $2 AND pj.repo = $3
        ORDER BY pr.number DESC
        LIMIT $4 OFFSET $5
        "#,
        forge,
        namespace,
        repo,
        limit,
        offset,
    )
    .fetch_all(executor)
    .await
}
