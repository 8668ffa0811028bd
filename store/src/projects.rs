//! The projects we know, as the Packit dashboard lists them: every dist-git
//! project a message named (pull requests, pushes, official builds), with how
//! many pull requests and branches we recorded for it, and a project's
//! branches with the official builds of what was pushed to them.
//!
//! A project is named by its forge (the host, Packit's `instance_url`),
//! namespace and repository name, as in the dashboard's paths.

use sqlx::PgExecutor;

use crate::dashboard::KojiBuildRecord;

/// A project with what we recorded of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    pub id: i64,
    /// e.g. `https://src.fedoraproject.org/rpms/optee_os`
    pub url: String,
    /// The host, e.g. `src.fedoraproject.org`.
    pub forge: String,
    pub namespace: String,
    pub repo: String,
    /// The pull requests we recorded, open or not.
    pub pull_requests: i64,
    /// The branches pushes went to or official builds were made for.
    pub branches: i64,
}

/// A page of projects, by namespace and name (Packit orders by namespace),
/// only those of `forge`, and of `namespace`, when given.
///
/// The page is taken first and counted after, so that only its projects'
/// pull requests and pushes are counted (both through their indexes).
pub async fn projects(
    executor: impl PgExecutor<'_>,
    forge: Option<&str>,
    namespace: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<ProjectRecord>, sqlx::Error> {
    sqlx::query_as!(
        ProjectRecord,
        r#"
        SELECT pj.id AS "id!", pj.url AS "url!", pj.forge AS "forge!",
               pj.namespace AS "namespace!", pj.repo AS "repo!",
               (SELECT count(*) FROM pull_requests pr WHERE pr.project_id = pj.id)
                   AS "pull_requests!",
               (SELECT count(DISTINCT branch) FROM (
                    SELECT branch FROM pushes WHERE project_id = pj.id
                    UNION ALL
                    SELECT branch FROM koji_builds
                    WHERE project_id = pj.id AND NOT scratch AND branch IS NOT NULL) known)
                   AS "branches!"
        FROM (
            SELECT id, url, forge, namespace, repo FROM projects
            WHERE ($1::text IS NULL OR forge = $1) AND ($2::text IS NULL OR namespace = $2)
            ORDER BY namespace, repo, id
            LIMIT $3 OFFSET $4
        ) pj
        ORDER BY pj.namespace, pj.repo, pj.id
        "#,
        forge,
        namespace,
        limit,
        offset,
    )
    .fetch_all(executor)
    .await
}

/// One project, with its counts.
pub async fn project(
    executor: impl PgExecutor<'_>,
    forge: &str,
    namespace: &str,
    repo: &str,
) -> Result<Option<ProjectRecord>, sqlx::Error> {
    sqlx::query_as!(
        ProjectRecord,
        r#"
        SELECT pj.id, pj.url, pj.forge, pj.namespace, pj.repo,
               (SELECT count(*) FROM pull_requests pr WHERE pr.project_id = pj.id)
                   AS "pull_requests!",
               (SELECT count(DISTINCT branch) FROM (
                    SELECT branch FROM pushes WHERE project_id = pj.id
                    UNION ALL
                    SELECT branch FROM koji_builds
                    WHERE project_id = pj.id AND NOT scratch AND branch IS NOT NULL) known)
                   AS "branches!"
        FROM projects pj
        WHERE pj.forge = $1 AND pj.namespace = $2 AND pj.repo = $3
        ORDER BY pj.id
        LIMIT 1
        "#,
        forge,
        namespace,
        repo,
    )
    .fetch_optional(executor)
    .await
}

/// A page of the branches of the project that pushes went to or official
/// builds were made for, the most recently active first.
pub async fn branches(
    executor: impl PgExecutor<'_>,
    project_id: i64,
    limit: i64,
    offset: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        SELECT branch AS "branch!" FROM (
            SELECT branch, pushed_at AS at FROM pushes WHERE project_id = $1
            UNION ALL
            SELECT branch, COALESCE(finished_at, created_at) FROM koji_builds
            WHERE project_id = $1 AND NOT scratch AND branch IS NOT NULL
        ) active
        GROUP BY branch
        ORDER BY max(at) DESC, branch
        LIMIT $2 OFFSET $3
        "#,
        project_id,
        limit,
        offset,
    )
    .fetch_all(executor)
    .await
}

/// The official Koji builds of these branches of the project, oldest first:
/// those made for the branch (by their target), and those of the commits
/// pushed to it, each with the branch in `branch`. A commit pushed to two
/// branches (a fast-forward of `f43` to `rawhide`, say) gives each of its
/// builds once per branch; the caller tells them apart by their target.
///
/// Official builds are found by project and commit, for which `koji_builds`
/// has no index: this reads the table once.
pub async fn official_builds_of_branches(
    executor: impl PgExecutor<'_>,
    project_id: i64,
    branches: &[String],
) -> Result<Vec<KojiBuildRecord>, sqlx::Error> {
    sqlx::query_as!(
        KojiBuildRecord,
        r#"
        SELECT b.id, b.task_id, b.build_id, b.nvr, b.scratch, b.status, b.target,
               ps.branch AS "branch?", b.commit_sha, b.web_url, b.log_urls,
               COALESCE(b.submitted_at, b.created_at) AS "submitted_at!",
               b.started_at, b.finished_at, b.error_message, b.pipeline_id,
               NULL::bigint AS "pr_number?", pj.url AS "project_url?",
               pj.namespace AS "namespace?", pj.repo AS "repo?"
        FROM (
            SELECT DISTINCT b.id, ps.branch FROM pushes ps
            JOIN koji_builds b ON b.project_id = ps.project_id AND b.commit_sha = ps.new_sha
                              AND NOT b.scratch
            WHERE ps.project_id = $1 AND ps.branch = ANY($2)
            UNION
            SELECT id, branch FROM koji_builds
            WHERE project_id = $1 AND NOT scratch AND branch = ANY($2)
        ) ps
        JOIN koji_builds b ON b.id = ps.id
        JOIN projects pj ON pj.id = b.project_id
        ORDER BY b.id, ps.branch
        "#,
        project_id,
        branches,
    )
    .fetch_all(executor)
    .await
}

/// The pipelines that tested these official builds (one per build of an
/// update per round), found through the updates that hold the builds.
pub async fn gating_pipelines_of_builds(
    executor: impl PgExecutor<'_>,
    build_ids: &[i64],
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        SELECT p.id FROM update_builds ub
        JOIN pipelines p ON p.update_id = ub.update_id AND p.koji_build_id = ub.koji_build_id
        WHERE ub.koji_build_id = ANY($1)
        ORDER BY p.id
        "#,
        build_ids,
    )
    .fetch_all(executor)
    .await
}
