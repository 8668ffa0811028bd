//! Bodhi updates, the pipelines that test their builds, and the test runs of
//! those pipelines as the gating flow needs them.

use sqlx::PgExecutor;

use crate::flows::OfficialBuild;

/// Record an update (or refresh what its newest message says); its id.
pub async fn upsert_update(
    executor: impl PgExecutor<'_>,
    alias: &str,
    release: Option<&str>,
    url: Option<&str>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        INSERT INTO updates (alias, release, url) VALUES ($1, $2, $3)
        ON CONFLICT (alias) DO UPDATE SET
            release = COALESCE(EXCLUDED.release, updates.release),
            url = COALESCE(EXCLUDED.url, updates.url),
            updated_at = now()
        RETURNING id
        "#,
        alias,
        release,
        url,
    )
    .fetch_one(executor)
    .await
}

/// An official build as gating needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficialBuildRow {
    pub id: i64,
    pub project_id: Option<i64>,
    pub task_id: Option<i64>,
    pub nvr: Option<String>,
    pub target: String,
    pub source_url: String,
    pub commit_sha: Option<String>,
    pub owner: Option<String>,
}

/// The recorded official build with this Koji build id.
pub async fn official_build(
    executor: impl PgExecutor<'_>,
    build_id: i64,
) -> Result<Option<OfficialBuildRow>, sqlx::Error> {
    sqlx::query_as!(
        OfficialBuildRow,
        r#"
        SELECT id, project_id, task_id, nvr, target, source_url, commit_sha, owner
        FROM koji_builds WHERE build_id = $1 AND NOT scratch
        "#,
        build_id,
    )
    .fetch_optional(executor)
    .await
}

/// Record an official build from what Koji or Bodhi says of it, or fill in
/// what the recorded one lacks; its id and its project's.
pub async fn ensure_official_build(
    executor: impl PgExecutor<'_>,
    project: (&str, &str, &str, &str),
    build: &OfficialBuild<'_>,
) -> Result<(i64, i64), sqlx::Error> {
    let (url, forge, namespace, repo) = project;
    let row = sqlx::query!(
        r#"
        WITH new_project AS (
            INSERT INTO projects (url, forge, namespace, repo) VALUES ($1, $2, $3, $4)
            ON CONFLICT (url) DO NOTHING
            RETURNING id
        ), project AS (
            SELECT id FROM new_project
            UNION ALL
            SELECT id FROM projects WHERE url = $1
            LIMIT 1
        ), head AS (
            INSERT INTO commits (project_id, sha)
            SELECT id, $10 FROM project WHERE $10::text IS NOT NULL
            ON CONFLICT (project_id, sha) DO NOTHING
        )
        INSERT INTO koji_builds (project_id, scratch, build_id, task_id, nvr, target, source_url,
                                 commit_sha, status, koji_state, owner, started_at, finished_at,
                                 branch, log_urls)
        SELECT id, false, $5, $6, $7, $8, $9, $10, 'success', 'COMPLETE', $11, $12, $13, $14,
               COALESCE($15, '{}'::jsonb)
        FROM project
        ON CONFLICT (build_id) DO UPDATE SET
            started_at = COALESCE(koji_builds.started_at, EXCLUDED.started_at),
            finished_at = COALESCE(koji_builds.finished_at, EXCLUDED.finished_at),
            branch = COALESCE(koji_builds.branch, EXCLUDED.branch),
            log_urls = CASE WHEN koji_builds.log_urls = '{}'::jsonb THEN EXCLUDED.log_urls
                            ELSE koji_builds.log_urls END,
            task_id = COALESCE(koji_builds.task_id, EXCLUDED.task_id),
            nvr = COALESCE(koji_builds.nvr, EXCLUDED.nvr),
            target = CASE WHEN koji_builds.target = '' THEN EXCLUDED.target
                          ELSE koji_builds.target END,
            source_url = CASE WHEN koji_builds.source_url = '' THEN EXCLUDED.source_url
                              ELSE koji_builds.source_url END,
            commit_sha = COALESCE(koji_builds.commit_sha, EXCLUDED.commit_sha),
            owner = COALESCE(koji_builds.owner, EXCLUDED.owner),
            project_id = COALESCE(koji_builds.project_id, EXCLUDED.project_id),
            updated_at = now()
        RETURNING id, project_id AS "project_id!"
        "#,
        url,
        forge,
        namespace,
        repo,
        build.build_id,
        build.task_id,
        build.nvr,
        build.target,
        build.source_url,
        build.commit_sha,
        build.owner,
        build.started_at,
        build.finished_at,
        build.branch,
        build.log_urls,
    )
    .fetch_one(executor)
    .await?;
    Ok((row.id, row.project_id))
}

/// The build is part of the update.
pub async fn link_update_build(
    executor: impl PgExecutor<'_>,
    update_id: i64,
    koji_build_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        INSERT INTO update_builds (update_id, koji_build_id) VALUES ($1, $2)
        ON CONFLICT DO NOTHING
        "#,
        update_id,
        koji_build_id,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// One build of an update in one round of testing.
#[derive(Debug, Clone)]
pub struct UpdatePipeline<'a> {
    pub trigger_key: &'a str,
    /// `bodhi-update` or `bodhi-retrigger`.
    pub trigger: &'a str,
    pub project_id: i64,
    pub update_id: i64,
    pub koji_build_id: i64,
    pub commit_sha: &'a str,
    /// The release the build is tested on (`rawhide`, `f43`).
    pub release: &'a str,
    pub event_id: i64,
}

/// The pipeline of a build in a round, created if new; its id, and whether
/// it was created now.
pub async fn get_or_create_update_pipeline(
    executor: impl PgExecutor<'_>,
    pipeline: &UpdatePipeline<'_>,
) -> Result<(i64, bool), sqlx::Error> {
    let row = sqlx::query!(
        r#"
        INSERT INTO pipelines (kind, project_id, commit_sha, trigger, event_id, update_id,
                               koji_build_id, trigger_key, release)
        VALUES ('update', $1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (trigger_key) DO UPDATE SET updated_at = pipelines.updated_at
        RETURNING id, (xmax = 0) AS "created!"
        "#,
        pipeline.project_id,
        pipeline.commit_sha,
        pipeline.trigger,
        pipeline.event_id,
        pipeline.update_id,
        pipeline.koji_build_id,
        pipeline.trigger_key,
        pipeline.release,
    )
    .fetch_one(executor)
    .await?;
    Ok((row.id, row.created))
}

/// One gating test to decide.
#[derive(Debug, Clone)]
pub struct GatingTest<'a> {
    pub test_name: &'a str,
    pub trigger_key: &'a str,
    pub test_case: &'a str,
    pub compose: Option<&'a str>,
    pub payload: &'a serde_json::Value,
}

/// Decide the test runs of an update's pipeline in one statement: each run
/// (unless its trigger key made it already) with its submit job. Returns the
/// tests whose runs were created, with their ids.
pub async fn decide_gating_runs(
    executor: impl PgExecutor<'_>,
    pipeline_id: i64,
    koji_build_id: i64,
    release: &str,
    tests: &[GatingTest<'_>],
    event_id: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let names: Vec<&str> = tests.iter().map(|t| t.test_name).collect();
    let keys: Vec<&str> = tests.iter().map(|t| t.trigger_key).collect();
    let cases: Vec<&str> = tests.iter().map(|t| t.test_case).collect();
    let composes: Vec<Option<&str>> = tests.iter().map(|t| t.compose).collect();
    let payloads: Vec<&serde_json::Value> = tests.iter().map(|t| t.payload).collect();
    let rows = sqlx::query!(
        r#"
        WITH input AS (
            SELECT * FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[])
                AS i(test_name, trigger_key, test_case, compose, payload)
        ), run AS (
            INSERT INTO test_runs (pipeline_id, koji_build_id, test_name, trigger_key, branch,
                                   compose, payload, test_case)
            SELECT $1, $2, test_name, trigger_key, $8, compose, payload, test_case FROM input
            ON CONFLICT (trigger_key) DO NOTHING
            RETURNING id, test_name
        ), submit AS (
            INSERT INTO jobs (kind, queue, dedup_key, payload, event_id, pipeline_id)
            SELECT 'submit-testing-farm', 'testing-farm', 'submit-testing-farm:' || id,
                   jsonb_build_object('test_run_id', id), $9, $1
            FROM run
            ON CONFLICT (dedup_key) DO NOTHING
        )
        SELECT test_name AS "test_name!", id AS "id!" FROM run
        "#,
        pipeline_id,
        koji_build_id,
        &names as _,
        &keys as _,
        &cases as _,
        &composes as _,
        &payloads as _,
        release,
        event_id,
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|r| (r.test_name, r.id)).collect())
}

/// A gating test run with what its CI messages say, locked for the
/// transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatingRun {
    pub id: i64,
    pub pipeline_id: i64,
    pub trigger_key: String,
    pub test_name: String,
    pub test_case: Option<String>,
    pub state: String,
    pub compose: Option<String>,
    pub request_id: Option<String>,
    pub summary: Option<String>,
    pub artifacts_url: Option<String>,
    pub xunit_url: Option<String>,
    pub task_id: Option<i64>,
    pub nvr: Option<String>,
    pub owner: Option<String>,
    pub component: Option<String>,
    pub update_alias: Option<String>,
}

/// The run, if it is a test of an update's build.
pub async fn gating_run(
    executor: impl PgExecutor<'_>,
    run_id: i64,
) -> Result<Option<GatingRun>, sqlx::Error> {
    sqlx::query_as!(
        GatingRun,
        r#"
        SELECT r.id, r.pipeline_id, r.trigger_key, r.test_name, r.test_case, r.state, r.compose,
               r.request_id, r.summary, r.artifacts_url, r.xunit_url,
               b.task_id AS "task_id?", b.nvr AS "nvr?", b.owner AS "owner?",
               p.repo AS "component?", u.alias AS "update_alias?"
        FROM test_runs r
        JOIN pipelines pl ON pl.id = r.pipeline_id AND pl.kind = 'update'
        LEFT JOIN koji_builds b ON b.id = pl.koji_build_id
        LEFT JOIN projects p ON p.id = pl.project_id
        LEFT JOIN updates u ON u.id = pl.update_id
        WHERE r.id = $1
        FOR UPDATE OF r
        "#,
        run_id,
    )
    .fetch_optional(executor)
    .await
}

/// Testing Farm's link to a run's JUnit results.
pub async fn set_xunit_url(
    executor: impl PgExecutor<'_>,
    run_id: i64,
    url: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE test_runs SET xunit_url = $2 WHERE id = $1",
        run_id,
        url
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// Whether a test run tests a build of an update (rather than a pull request).
pub async fn is_gating_run(
    executor: impl PgExecutor<'_>,
    run_id: i64,
) -> Result<bool, sqlx::Error> {
    let kind = sqlx::query_scalar!(
        r#"
        SELECT pl.kind FROM test_runs r JOIN pipelines pl ON pl.id = r.pipeline_id
        WHERE r.id = $1
        "#,
        run_id
    )
    .fetch_optional(executor)
    .await?;
    Ok(kind.as_deref() == Some("update"))
}

/// The runs of an update's pipeline that have not ended.
pub async fn unfinished_runs(
    executor: impl PgExecutor<'_>,
    pipeline_id: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        SELECT r.id FROM test_runs r JOIN pipelines pl ON pl.id = r.pipeline_id
        WHERE r.pipeline_id = $1 AND pl.kind = 'update'
          AND r.state IN ('new', 'queued', 'running') AND NOT r.superseded
        ORDER BY r.id
        "#,
        pipeline_id,
    )
    .fetch_all(executor)
    .await
}
