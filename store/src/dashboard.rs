//! What the Packit dashboard reads: Koji builds, Testing Farm runs, pipelines
//! (Packit's "runs") and the pull requests of a project, each with the pull
//! request or Bodhi update and the project it belongs to; and the Bodhi
//! updates with their rounds of gating tests. Read-only; the API shapes the
//! answers (docs/api.md).
//!
//! Lists are newest first (by id), as Packit Service orders them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;

/// A Koji build with the pipeline, pull request and project it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct KojiBuildRecord {
    pub id: i64,
    pub task_id: Option<i64>,
    /// Koji's id of the build; official builds come with it.
    pub build_id: Option<i64>,
    pub nvr: Option<String>,
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
    /// The build's pipeline; in [`koji_builds_of_pipelines`], the pipeline
    /// asked for that holds or tests the build.
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
        SELECT b.id, b.task_id, b.build_id, b.nvr, b.scratch, b.status, b.target, b.branch,
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
        SELECT b.id, b.task_id, b.build_id, b.nvr, b.scratch, b.status, b.target, b.branch,
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

/// The Koji builds of these pipelines, oldest first: a pull request's
/// scratch builds, and the official build an update's pipeline tests (one
/// official build is in every round of its update, once per pipeline).
pub async fn koji_builds_of_pipelines(
    executor: impl PgExecutor<'_>,
    pipeline_ids: &[i64],
) -> Result<Vec<KojiBuildRecord>, sqlx::Error> {
    sqlx::query_as!(
        KojiBuildRecord,
        r#"
        SELECT b.id, b.task_id, b.build_id, b.nvr, b.scratch, b.status, b.target, b.branch,
               COALESCE(b.commit_sha, p.commit_sha) AS commit_sha, b.web_url, b.log_urls,
               COALESCE(b.submitted_at, b.created_at) AS "submitted_at!",
               b.started_at, b.finished_at, b.error_message, p.id AS "pipeline_id?",
               pr.number AS "pr_number?", pj.url AS "project_url?",
               pj.namespace AS "namespace?", pj.repo AS "repo?"
        FROM pipelines p
        JOIN koji_builds b ON b.pipeline_id = p.id OR b.id = p.koji_build_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        LEFT JOIN projects pj ON pj.id = COALESCE(b.project_id, p.project_id)
        WHERE p.id = ANY($1)
        ORDER BY b.id, p.id
        "#,
        pipeline_ids,
    )
    .fetch_all(executor)
    .await
}

/// A Bodhi update as a build or test names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateRef {
    /// Bodhi's alias, e.g. `FEDORA-2021-53a7dfa185`.
    pub alias: String,
    pub url: Option<String>,
    /// The release as Bodhi names it (`f34`).
    pub release: Option<String>,
}

/// What a Koji build is part of: the updates that hold it, the pipelines
/// it is in (a pull request's, or each round of testing of an update), and
/// the test runs that tested it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildLinks {
    pub updates: Vec<UpdateRef>,
    pub pipeline_ids: Vec<i64>,
    pub test_run_ids: Vec<i64>,
}

pub async fn build_links(
    executor: &mut sqlx::PgConnection,
    id: i64,
) -> Result<BuildLinks, sqlx::Error> {
    let updates = sqlx::query_as!(
        UpdateRef,
        r#"
        SELECT u.alias, u.url, u.release
        FROM update_builds ub JOIN updates u ON u.id = ub.update_id
        WHERE ub.koji_build_id = $1
        ORDER BY u.id
        "#,
        id,
    )
    .fetch_all(&mut *executor)
    .await?;
    // Through update_builds, whose index finds an official build's rounds
    // without reading every pipeline.
    let row = sqlx::query!(
        r#"
        WITH runs AS (
            SELECT pipeline_id AS id FROM koji_builds WHERE id = $1 AND pipeline_id IS NOT NULL
            UNION
            SELECT p.id FROM update_builds ub
            JOIN pipelines p ON p.update_id = ub.update_id AND p.koji_build_id = ub.koji_build_id
            WHERE ub.koji_build_id = $1
        )
        SELECT ARRAY(SELECT id FROM runs ORDER BY id) AS "pipeline_ids!",
               ARRAY(SELECT t.id FROM test_runs t
                     WHERE t.pipeline_id IN (SELECT id FROM runs) AND t.koji_build_id = $1
                     ORDER BY t.id) AS "test_run_ids!"
        "#,
        id,
    )
    .fetch_one(&mut *executor)
    .await?;
    Ok(BuildLinks {
        updates,
        pipeline_ids: row.pipeline_ids,
        test_run_ids: row.test_run_ids,
    })
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
    /// A gating run's test case (`fedora-ci.koji-build.tier0.functional`).
    pub test_case: Option<String>,
    /// The Bodhi update a gating run tests.
    pub update_alias: Option<String>,
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
               pr.number AS "pr_number?", t.test_case, u.alias AS "update_alias?",
               pj.url AS project_url, pj.namespace, pj.repo
        FROM test_runs t
        JOIN pipelines p ON p.id = t.pipeline_id
        JOIN projects pj ON pj.id = p.project_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        LEFT JOIN updates u ON u.id = p.update_id
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
               pr.number AS "pr_number?", t.test_case, u.alias AS "update_alias?",
               pj.url AS project_url, pj.namespace, pj.repo
        FROM test_runs t
        JOIN pipelines p ON p.id = t.pipeline_id
        JOIN projects pj ON pj.id = p.project_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        LEFT JOIN updates u ON u.id = p.update_id
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
               pr.number AS "pr_number?", t.test_case, u.alias AS "update_alias?",
               pj.url AS project_url, pj.namespace, pj.repo
        FROM test_runs t
        JOIN pipelines p ON p.id = t.pipeline_id
        JOIN projects pj ON pj.id = p.project_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        LEFT JOIN updates u ON u.id = p.update_id
        WHERE t.pipeline_id = ANY($1)
        ORDER BY t.id
        "#,
        pipeline_ids,
    )
    .fetch_all(executor)
    .await
}

/// A pipeline (Packit's "run") with its pull request or update, and project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineRecord {
    pub id: i64,
    /// `pull-request` or `update`.
    pub kind: String,
    /// What made it: `pull_request`, `bodhi-update`, `bodhi-retrigger`.
    pub trigger: String,
    pub commit_sha: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub pr_number: Option<i64>,
    pub update_alias: Option<String>,
    pub project_url: String,
    pub namespace: String,
    pub repo: String,
    /// Whether it has Koji builds: its own, or the official build it tests.
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
        SELECT p.id, p.kind, p.trigger, p.commit_sha, p.state, p.created_at,
               pr.number AS "pr_number?", u.alias AS "update_alias?",
               pj.url AS project_url, pj.namespace, pj.repo,
               (p.koji_build_id IS NOT NULL
                OR EXISTS (SELECT 1 FROM koji_builds b WHERE b.pipeline_id = p.id)) AS "has_builds!",
               EXISTS (SELECT 1 FROM test_runs t WHERE t.pipeline_id = p.id) AS "has_test_runs!"
        FROM pipelines p
        JOIN projects pj ON pj.id = p.project_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        LEFT JOIN updates u ON u.id = p.update_id
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
        SELECT p.id, p.kind, p.trigger, p.commit_sha, p.state, p.created_at,
               pr.number AS "pr_number?", u.alias AS "update_alias?",
               pj.url AS project_url, pj.namespace, pj.repo,
               (p.koji_build_id IS NOT NULL
                OR EXISTS (SELECT 1 FROM koji_builds b WHERE b.pipeline_id = p.id)) AS "has_builds!",
               EXISTS (SELECT 1 FROM test_runs t WHERE t.pipeline_id = p.id) AS "has_test_runs!"
        FROM pipelines p
        JOIN projects pj ON pj.id = p.project_id
        LEFT JOIN pull_requests pr ON pr.id = p.pull_request_id
        LEFT JOIN updates u ON u.id = p.update_id
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

/// A Bodhi update whose builds were tested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRecord {
    pub id: i64,
    pub alias: String,
    pub release: Option<String>,
    pub url: Option<String>,
    /// When Bodhi first announced it to us.
    pub created_at: DateTime<Utc>,
    /// When Bodhi last announced it (a re-trigger, say).
    pub updated_at: DateTime<Utc>,
}

/// A page of updates, newest first.
pub async fn updates(
    executor: impl PgExecutor<'_>,
    limit: i64,
    offset: i64,
) -> Result<Vec<UpdateRecord>, sqlx::Error> {
    sqlx::query_as!(
        UpdateRecord,
        r#"
        SELECT id, alias, release, url, created_at, updated_at FROM updates
        ORDER BY id DESC
        LIMIT $1 OFFSET $2
        "#,
        limit,
        offset,
    )
    .fetch_all(executor)
    .await
}

pub async fn update(
    executor: impl PgExecutor<'_>,
    alias: &str,
) -> Result<Option<UpdateRecord>, sqlx::Error> {
    sqlx::query_as!(
        UpdateRecord,
        r#"
        SELECT id, alias, release, url, created_at, updated_at FROM updates
        WHERE alias = $1
        "#,
        alias,
    )
    .fetch_optional(executor)
    .await
}

/// An official build of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateBuildRecord {
    pub update_id: i64,
    /// Our id of the build.
    pub id: i64,
    /// Koji's id of the build.
    pub build_id: Option<i64>,
    pub task_id: Option<i64>,
    pub nvr: Option<String>,
    pub commit_sha: Option<String>,
    pub project_url: Option<String>,
}

/// The builds of these updates, in the order they were recorded.
pub async fn builds_of_updates(
    executor: impl PgExecutor<'_>,
    update_ids: &[i64],
) -> Result<Vec<UpdateBuildRecord>, sqlx::Error> {
    sqlx::query_as!(
        UpdateBuildRecord,
        r#"
        SELECT ub.update_id, b.id, b.build_id, b.task_id, b.nvr, b.commit_sha,
               pj.url AS "project_url?"
        FROM update_builds ub
        JOIN koji_builds b ON b.id = ub.koji_build_id
        LEFT JOIN projects pj ON pj.id = b.project_id
        WHERE ub.update_id = ANY($1)
        ORDER BY ub.update_id, b.id
        "#,
        update_ids,
    )
    .fetch_all(executor)
    .await
}

/// One build of an update in one round of testing: an update's pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundRecord {
    /// The pipeline's id.
    pub id: i64,
    pub update_id: i64,
    /// Our id of the official build tested.
    pub koji_build_id: Option<i64>,
    pub nvr: Option<String>,
    /// `bodhi-update` (the first announcement) or `bodhi-retrigger`.
    pub trigger: String,
    /// The release the build is tested on (`f34`, `rawhide`).
    pub release: Option<String>,
    pub state: String,
    pub created_at: DateTime<Utc>,
}

/// The rounds of these updates, oldest first.
pub async fn rounds_of_updates(
    executor: impl PgExecutor<'_>,
    update_ids: &[i64],
) -> Result<Vec<RoundRecord>, sqlx::Error> {
    sqlx::query_as!(
        RoundRecord,
        r#"
        SELECT p.id, p.update_id AS "update_id!", p.koji_build_id, b.nvr AS "nvr?", p.trigger,
               p.release, p.state, p.created_at
        FROM pipelines p
        LEFT JOIN koji_builds b ON b.id = p.koji_build_id
        WHERE p.update_id = ANY($1)
        ORDER BY p.id
        "#,
        update_ids,
    )
    .fetch_all(executor)
    .await
}

/// A test run of an update's build, with how far its Fedora CI messages
/// got to the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatingTestRecord {
    pub id: i64,
    pub pipeline_id: i64,
    pub test_name: String,
    pub test_case: Option<String>,
    /// The Testing Farm request id, once Testing Farm accepted the request.
    pub request_id: Option<String>,
    /// new, queued, running, complete, error, canceled.
    pub state: String,
    pub result: Option<String>,
    pub summary: Option<String>,
    /// Testing Farm's artifacts page.
    pub artifacts_url: Option<String>,
    pub xunit_url: Option<String>,
    pub superseded: bool,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Its CI messages the broker confirmed.
    pub messages_published: i64,
    /// Its CI messages waiting in the outbox.
    pub messages_pending: i64,
}

/// The test runs of these pipelines, oldest first, each with its CI
/// messages counted.
pub async fn gating_tests_of_pipelines(
    executor: impl PgExecutor<'_>,
    pipeline_ids: &[i64],
) -> Result<Vec<GatingTestRecord>, sqlx::Error> {
    sqlx::query_as!(
        GatingTestRecord,
        r#"
        SELECT t.id, t.pipeline_id, t.test_name, t.test_case, t.request_id, t.state, t.result,
               t.summary, t.artifacts_url, t.xunit_url, t.superseded, t.created_at,
               t.started_at, t.finished_at,
               count(o.id) FILTER (WHERE o.published_at IS NOT NULL) AS "messages_published!",
               count(o.id) FILTER (WHERE o.published_at IS NULL) AS "messages_pending!"
        FROM test_runs t
        LEFT JOIN outbox o ON o.test_run_id = t.id
        WHERE t.pipeline_id = ANY($1)
        GROUP BY t.id
        ORDER BY t.id
        "#,
        pipeline_ids,
    )
    .fetch_all(executor)
    .await
}
