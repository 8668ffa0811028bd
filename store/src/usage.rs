//! Usage numbers, as the Packit dashboard's usage page shows them: how many
//! pull requests and Bodhi updates Fedora CI ran pipelines for, how many Koji
//! builds and Testing Farm runs those pipelines decided, per project, over a
//! period cut into intervals of the same length.
//!
//! Packit counts a job or an event by the time of its pipeline; we count each
//! row by its own `created_at`: a pipeline when it was decided, a build or a
//! test run when it was. None of these tables has an index on `created_at`,
//! so a period is one read of `pipelines`, `koji_builds` and `test_runs`
//! (each once, whatever the number of intervals).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// What [`ActivityRecord::kind`] and [`FirstActivityRecord::kind`] count.
pub mod kind {
    /// Pull requests with a pipeline decided in the interval.
    pub const PULL_REQUEST: &str = "pull_request";
    /// Bodhi updates with a pipeline decided in the interval (a gating round).
    pub const BODHI_UPDATE: &str = "bodhi_update";
    /// Our scratch builds decided in the interval.
    pub const KOJI_BUILD: &str = "koji_build";
    /// Testing Farm runs decided in the interval, pull requests' and gating.
    pub const TEST_RUN: &str = "test_run";
    /// In [`super::first_activity`]: any pipeline, of a pull request or an update.
    pub const PIPELINE: &str = "pipeline";
}

/// How many things of one kind one project had in one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRecord {
    /// From 0, the interval that starts at `start`.
    pub interval: i64,
    pub project_url: String,
    /// The project's host, e.g. `src.fedoraproject.org`.
    pub forge: String,
    /// One of [`kind`]'s, but [`kind::PIPELINE`].
    pub kind: String,
    pub count: i64,
}

/// Per project and per interval of `width_seconds` from `start` to `end`,
/// what was decided: [`kind::PULL_REQUEST`] and [`kind::BODHI_UPDATE`] count
/// distinct pull requests and updates, [`kind::KOJI_BUILD`] and
/// [`kind::TEST_RUN`] rows. Projects without any are not listed.
///
/// Each table is counted apart, by `date_bin` interval and project, before
/// the projects are joined: the rows are summed where they lie instead of
/// being sorted together.
pub async fn activity(
    executor: impl PgExecutor<'_>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    width_seconds: i64,
) -> Result<Vec<ActivityRecord>, sqlx::Error> {
    sqlx::query_as!(
        ActivityRecord,
        r#"
        SELECT (extract(epoch FROM a.bin - $1::timestamptz) / $3::bigint)::bigint AS "interval!",
               pj.url AS "project_url!", pj.forge AS "forge!", a.kind AS "kind!",
               a.count AS "count!"
        FROM (
            SELECT date_bin($3::bigint * interval '1 second', p.created_at, $1) AS bin, p.project_id,
                   CASE p.kind WHEN 'update' THEN 'bodhi_update' ELSE 'pull_request' END AS kind,
                   count(DISTINCT COALESCE(p.update_id, p.pull_request_id, p.id)) AS count
            FROM pipelines p
            WHERE p.created_at >= $1 AND p.created_at < $2
            GROUP BY 1, 2, 3
            UNION ALL
            SELECT date_bin($3::bigint * interval '1 second', b.created_at, $1), p.project_id,
                   'koji_build', count(*)
            FROM koji_builds b JOIN pipelines p ON p.id = b.pipeline_id
            WHERE b.created_at >= $1 AND b.created_at < $2
            GROUP BY 1, 2
            UNION ALL
            SELECT date_bin($3::bigint * interval '1 second', t.created_at, $1), p.project_id,
                   'test_run', count(*)
            FROM test_runs t JOIN pipelines p ON p.id = t.pipeline_id
            WHERE t.created_at >= $1 AND t.created_at < $2
            GROUP BY 1, 2
        ) a
        JOIN projects pj ON pj.id = a.project_id
        ORDER BY 1, pj.url, a.kind
        "#,
        start,
        end,
        width_seconds,
    )
    .fetch_all(executor)
    .await
}

/// When projects first had something of a kind, as [`first_activity`] tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstActivityRecord {
    /// [`kind::PIPELINE`], [`kind::KOJI_BUILD`] or [`kind::TEST_RUN`].
    pub kind: String,
    /// The project, when it first had one within the period; null for the
    /// count of those that had one before.
    pub project_url: Option<String>,
    /// The interval of the first one; null for those before the period.
    pub interval: Option<i64>,
    /// 1 for a project of the period; the number of projects before it.
    pub count: i64,
}

/// Per kind, how many projects had their first pipeline (first scratch
/// build, first test run) before `start`, and which projects had it in which
/// interval of `width_seconds` up to `end`. Reads all of the three tables.
pub async fn first_activity(
    executor: impl PgExecutor<'_>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    width_seconds: i64,
) -> Result<Vec<FirstActivityRecord>, sqlx::Error> {
    sqlx::query_as!(
        FirstActivityRecord,
        r#"
        WITH firsts AS (
            SELECT project_id, kind, min(created_at) AS first_at
            FROM (
                SELECT project_id, 'pipeline' AS kind, created_at FROM pipelines
                UNION ALL
                SELECT p.project_id, 'koji_build', b.created_at
                FROM koji_builds b JOIN pipelines p ON p.id = b.pipeline_id
                UNION ALL
                SELECT p.project_id, 'test_run', t.created_at
                FROM test_runs t JOIN pipelines p ON p.id = t.pipeline_id
            ) x
            GROUP BY project_id, kind
            HAVING min(created_at) < $2
        )
        SELECT kind AS "kind!", NULL::text AS "project_url?", NULL::bigint AS "interval?",
               count(*) AS "count!"
        FROM firsts WHERE first_at < $1
        GROUP BY kind
        UNION ALL
        SELECT f.kind, pj.url,
               floor(extract(epoch FROM f.first_at - $1::timestamptz) / $3::bigint)::bigint,
               1
        FROM firsts f JOIN projects pj ON pj.id = f.project_id
        WHERE f.first_at >= $1
        "#,
        start,
        end,
        width_seconds,
    )
    .fetch_all(executor)
    .await
}

/// How many projects we know on each forge (host).
pub async fn projects_per_forge(
    executor: impl PgExecutor<'_>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"
        SELECT forge, count(*) AS "count!" FROM projects
        GROUP BY forge ORDER BY forge
        "#
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|r| (r.forge, r.count)).collect())
}

/// How many projects ever had a pipeline: Fedora CI ran for them.
pub async fn projects_with_pipelines(executor: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(r#"SELECT count(DISTINCT project_id) AS "count!" FROM pipelines"#)
        .fetch_one(executor)
        .await
}
