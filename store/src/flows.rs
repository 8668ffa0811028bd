//! The records of the Fedora CI flows: projects, pull requests, pushes and
//! commits, pipelines with their Koji builds, Testing Farm runs and flags.
//!
//! The handlers call these inside the transaction that also records their
//! decisions and jobs. Functions that create something for a decision are
//! idempotent on a key (`trigger_key`, `dedup_key`, a unique pair), and say
//! whether they created it, so deciding an event twice changes nothing.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;

/// What a pull-request message says about the pull request.
#[derive(Debug, Clone)]
pub struct PullRequestUpdate<'a> {
    pub project_url: &'a str,
    pub forge: &'a str,
    pub namespace: &'a str,
    pub repo: &'a str,
    pub number: i64,
    pub pagure_uid: Option<&'a str>,
    pub title: &'a str,
    pub author: &'a str,
    pub target_branch: &'a str,
    pub source_branch: &'a str,
    pub source_url: &'a str,
    pub head_sha: &'a str,
    /// Pagure's `last_updated` of the message; 0 when unknown.
    pub updated: i64,
    pub status: &'a str,
    pub url: Option<&'a str>,
}

/// The pull request as recorded after an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestRow {
    pub id: i64,
    pub project_id: i64,
    pub head_sha: String,
    pub status: String,
    pub target_branch: String,
    pub source_url: String,
}

/// Record a pull request, its project and its head commit in one
/// statement, locking the pull request's row for the rest of the
/// transaction. The head moves only when the message is not older than the
/// one that set the current head, so a late message never takes the pull
/// request back. With `pipeline_trigger`, the pipeline of the message's head
/// is created too (if the head is the pull request's head after the update):
/// returned with whether it was created now.
pub async fn upsert_pull_request(
    executor: impl PgExecutor<'_>,
    pr: &PullRequestUpdate<'_>,
    pipeline_trigger: Option<&str>,
    event_id: i64,
) -> Result<(PullRequestRow, Option<(PipelineRow, bool)>), sqlx::Error> {
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
        ), pr AS (
            INSERT INTO pull_requests (project_id, number, pagure_uid, title, author,
                                       target_branch, source_branch, source_url, head_sha,
                                       head_updated, status, url)
            SELECT id, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM project
            ON CONFLICT (project_id, number) DO UPDATE SET
                pagure_uid = COALESCE(EXCLUDED.pagure_uid, pull_requests.pagure_uid),
                title = CASE WHEN EXCLUDED.head_updated >= pull_requests.head_updated
                             THEN EXCLUDED.title ELSE pull_requests.title END,
                target_branch = CASE WHEN EXCLUDED.head_updated >= pull_requests.head_updated
                             THEN EXCLUDED.target_branch ELSE pull_requests.target_branch END,
                source_branch = CASE WHEN EXCLUDED.head_updated >= pull_requests.head_updated
                             THEN EXCLUDED.source_branch ELSE pull_requests.source_branch END,
                source_url = CASE WHEN EXCLUDED.head_updated >= pull_requests.head_updated
                             THEN EXCLUDED.source_url ELSE pull_requests.source_url END,
                head_sha = CASE WHEN EXCLUDED.head_updated >= pull_requests.head_updated
                             THEN EXCLUDED.head_sha ELSE pull_requests.head_sha END,
                head_updated = GREATEST(EXCLUDED.head_updated, pull_requests.head_updated),
                status = CASE WHEN EXCLUDED.head_updated >= pull_requests.head_updated
                             THEN EXCLUDED.status ELSE pull_requests.status END,
                url = COALESCE(EXCLUDED.url, pull_requests.url),
                updated_at = now()
            RETURNING id, project_id, head_sha, status, target_branch, source_url
        ), head AS (
            -- The commit, with the pull request that brought it.
            INSERT INTO commits (project_id, sha, pull_request_id)
            SELECT project_id, $12, id FROM pr
            ON CONFLICT (project_id, sha) DO UPDATE SET pull_request_id = EXCLUDED.pull_request_id
            WHERE commits.pull_request_id IS NULL
        ), pipeline AS (
            INSERT INTO pipelines (project_id, pull_request_id, commit_sha, trigger, event_id)
            SELECT project_id, id, head_sha, $16, $17 FROM pr
            WHERE $16::text IS NOT NULL AND head_sha = $12
            ON CONFLICT (pull_request_id, commit_sha) DO UPDATE SET updated_at = pipelines.updated_at
            RETURNING id, state, superseded_by, round, (xmax = 0) AS created
        )
        SELECT pr.id AS "id!", pr.project_id AS "project_id!", pr.head_sha AS "head_sha!",
               pr.status AS "status!", pr.target_branch AS "target_branch!",
               pr.source_url AS "source_url!",
               pipeline.id AS "pipeline_id?", pipeline.state AS "pipeline_state?",
               pipeline.superseded_by AS "superseded_by?", pipeline.round AS "round?",
               pipeline.created AS "created?"
        FROM pr LEFT JOIN pipeline ON true
        "#,
        pr.project_url,
        pr.forge,
        pr.namespace,
        pr.repo,
        pr.number,
        pr.pagure_uid,
        pr.title,
        pr.author,
        pr.target_branch,
        pr.source_branch,
        pr.source_url,
        pr.head_sha,
        pr.updated,
        pr.status,
        pr.url,
        pipeline_trigger,
        event_id,
    )
    .fetch_one(executor)
    .await?;
    let pipeline = match (row.pipeline_id, row.pipeline_state) {
        (Some(id), Some(state)) => Some((
            PipelineRow {
                id,
                project_id: row.project_id,
                pull_request_id: Some(row.id),
                commit_sha: row.head_sha.clone(),
                state,
                superseded_by: row.superseded_by,
                round: row.round.unwrap_or(1),
            },
            row.created.unwrap_or(false),
        )),
        _ => None,
    };
    Ok((
        PullRequestRow {
            id: row.id,
            project_id: row.project_id,
            head_sha: row.head_sha,
            status: row.status,
            target_branch: row.target_branch,
            source_url: row.source_url,
        },
        pipeline,
    ))
}

/// A pull request by project and number.
pub async fn find_pull_request(
    executor: impl PgExecutor<'_>,
    project_id: i64,
    number: i64,
) -> Result<Option<PullRequestRow>, sqlx::Error> {
    sqlx::query_as!(
        PullRequestRow,
        r#"
        SELECT id, project_id, head_sha, status, target_branch, source_url
        FROM pull_requests WHERE project_id = $1 AND number = $2
        "#,
        project_id,
        number,
    )
    .fetch_optional(executor)
    .await
}

/// Remember a commit, with the push or pull request that brought it when
/// known; the first of those to be recorded stays.
pub async fn upsert_commit(
    executor: impl PgExecutor<'_>,
    project_id: i64,
    sha: &str,
    push_id: Option<i64>,
    pull_request_id: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        INSERT INTO commits (project_id, sha, push_id, pull_request_id)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (project_id, sha) DO UPDATE SET
            push_id = COALESCE(commits.push_id, EXCLUDED.push_id),
            pull_request_id = COALESCE(commits.pull_request_id, EXCLUDED.pull_request_id)
        WHERE (commits.push_id IS NULL AND EXCLUDED.push_id IS NOT NULL)
           OR (commits.pull_request_id IS NULL AND EXCLUDED.pull_request_id IS NOT NULL)
        "#,
        project_id,
        sha,
        push_id,
        pull_request_id,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// Mark a pull request closed or merged.
pub async fn set_pull_request_status(
    executor: impl PgExecutor<'_>,
    pull_request_id: i64,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE pull_requests SET status = $2, updated_at = now() WHERE id = $1",
        pull_request_id,
        status,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// A pipeline as the handlers need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineRow {
    pub id: i64,
    pub project_id: i64,
    pub pull_request_id: Option<i64>,
    pub commit_sha: String,
    pub state: String,
    pub superseded_by: Option<String>,
    /// How many times the pipeline has run: 1, then one more each time it runs again.
    pub round: i32,
}

/// The pipeline of a pull request's commit, created if new. The bool says
/// whether it was created now.
pub async fn get_or_create_pipeline(
    executor: impl PgExecutor<'_>,
    project_id: i64,
    pull_request_id: i64,
    commit_sha: &str,
    trigger: &str,
    event_id: i64,
) -> Result<(PipelineRow, bool), sqlx::Error> {
    let row = sqlx::query!(
        r#"
        INSERT INTO pipelines (project_id, pull_request_id, commit_sha, trigger, event_id)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (pull_request_id, commit_sha) DO UPDATE SET updated_at = pipelines.updated_at
        RETURNING id, project_id, pull_request_id, commit_sha, state, superseded_by, round,
                  (xmax = 0) AS "created!"
        "#,
        project_id,
        pull_request_id,
        commit_sha,
        trigger,
        event_id,
    )
    .fetch_one(executor)
    .await?;
    Ok((
        PipelineRow {
            id: row.id,
            project_id: row.project_id,
            pull_request_id: row.pull_request_id,
            commit_sha: row.commit_sha,
            state: row.state,
            superseded_by: row.superseded_by,
            round: row.round,
        },
        row.created,
    ))
}

pub async fn get_pipeline(
    executor: impl PgExecutor<'_>,
    id: i64,
) -> Result<PipelineRow, sqlx::Error> {
    sqlx::query_as!(
        PipelineRow,
        r#"
        SELECT id, project_id, pull_request_id, commit_sha, state, superseded_by, round
        FROM pipelines WHERE id = $1
        "#,
        id,
    )
    .fetch_one(executor)
    .await
}

/// A Koji build as the handlers need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KojiBuildRow {
    pub id: i64,
    pub pipeline_id: Option<i64>,
    pub task_id: Option<i64>,
    pub target: String,
    pub branch: Option<String>,
    pub variant: String,
    pub source_url: String,
    pub commit_sha: Option<String>,
    pub status: String,
    pub koji_state: Option<String>,
    pub superseded: bool,
    pub web_url: Option<String>,
}

/// A scratch build to submit for a pipeline.
#[derive(Debug, Clone)]
pub struct NewScratchBuild<'a> {
    pub pipeline_id: i64,
    pub project_id: i64,
    pub trigger_key: &'a str,
    pub target: &'a str,
    pub branch: &'a str,
    pub variant: &'a str,
    pub source_url: &'a str,
    pub commit_sha: &'a str,
}

/// The build of a Koji task, locked for the transaction.
pub async fn koji_build_by_task(
    executor: impl PgExecutor<'_>,
    task_id: i64,
) -> Result<Option<KojiBuildRow>, sqlx::Error> {
    sqlx::query_as!(
        KojiBuildRow,
        r#"
        SELECT id, pipeline_id, task_id, target, branch, variant, source_url, commit_sha,
               status, koji_state, superseded, web_url
        FROM koji_builds WHERE task_id = $1
        FOR UPDATE
        "#,
        task_id,
    )
    .fetch_optional(executor)
    .await
}

/// What a Koji task message or poll changes on a build.
#[derive(Debug, Clone)]
pub struct KojiBuildProgress<'a> {
    pub id: i64,
    pub koji_state: &'a str,
    pub status: &'a str,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub web_url: Option<&'a str>,
    pub log_urls: &'a serde_json::Value,
}

pub async fn update_koji_build(
    executor: impl PgExecutor<'_>,
    progress: &KojiBuildProgress<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        UPDATE koji_builds SET
            koji_state = $2, status = $3,
            started_at = COALESCE(started_at, $4),
            finished_at = COALESCE($5, finished_at),
            web_url = COALESCE($6, web_url),
            log_urls = CASE WHEN $7::jsonb <> '{}'::jsonb THEN $7 ELSE log_urls END,
            last_heard_at = now(), updated_at = now()
        WHERE id = $1
        "#,
        progress.id,
        progress.koji_state,
        progress.status,
        progress.started_at,
        progress.finished_at,
        progress.web_url,
        progress.log_urls,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// An official (non-scratch) build, recorded once per Koji build id.
#[derive(Debug, Clone)]
pub struct OfficialBuild<'a> {
    pub project_id: Option<i64>,
    pub build_id: i64,
    pub task_id: Option<i64>,
    pub nvr: &'a str,
    pub target: &'a str,
    pub source_url: &'a str,
    pub commit_sha: Option<&'a str>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Who built it.
    pub owner: Option<&'a str>,
    /// The dist-git branch it was built from, as its target names it.
    pub branch: Option<&'a str>,
    /// Per architecture, the build log, when the message names the arch tasks.
    pub log_urls: Option<&'a serde_json::Value>,
}

/// A Testing Farm run as the handlers need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunRow {
    pub id: i64,
    pub pipeline_id: i64,
    pub koji_build_id: Option<i64>,
    pub test_name: String,
    pub branch: String,
    pub variant: String,
    pub request_id: Option<String>,
    pub state: String,
    pub result: Option<String>,
    pub artifacts_url: Option<String>,
    pub superseded: bool,
    pub reads: i32,
    /// When Testing Farm accepted the request.
    pub submitted_at: Option<DateTime<Utc>>,
}

/// A Testing Farm run to submit.
#[derive(Debug, Clone)]
pub struct NewTestRun<'a> {
    pub pipeline_id: i64,
    pub koji_build_id: Option<i64>,
    pub test_name: &'a str,
    pub trigger_key: &'a str,
    pub branch: &'a str,
    pub variant: &'a str,
    pub compose: Option<&'a str>,
    pub payload: &'a serde_json::Value,
}

/// The run of a Testing Farm request, locked for the transaction.
pub async fn test_run_by_request(
    executor: impl PgExecutor<'_>,
    request_id: &str,
) -> Result<Option<TestRunRow>, sqlx::Error> {
    sqlx::query_as!(
        TestRunRow,
        r#"
        SELECT id, pipeline_id, koji_build_id, test_name, branch, variant, request_id, state,
               result, artifacts_url, superseded, reads, submitted_at
        FROM test_runs WHERE request_id = $1
        FOR UPDATE
        "#,
        request_id,
    )
    .fetch_optional(executor)
    .await
}

/// What a Testing Farm report changes on a run.
#[derive(Debug, Clone)]
pub struct TestRunProgress<'a> {
    pub id: i64,
    pub state: &'a str,
    pub result: Option<&'a str>,
    pub summary: Option<&'a str>,
    pub artifacts_url: Option<&'a str>,
}

pub async fn update_test_run(
    executor: impl PgExecutor<'_>,
    progress: &TestRunProgress<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        UPDATE test_runs SET
            state = $2, result = COALESCE($3, result), summary = COALESCE($4, summary),
            artifacts_url = COALESCE($5, artifacts_url),
            started_at = CASE WHEN $2 IN ('running', 'complete', 'error')
                              THEN COALESCE(started_at, now()) ELSE started_at END,
            finished_at = CASE WHEN $2 IN ('complete', 'error', 'canceled')
                               THEN COALESCE(finished_at, now()) ELSE finished_at END,
            updated_at = now()
        WHERE id = $1
        "#,
        progress.id,
        progress.state,
        progress.result,
        progress.summary,
        progress.artifacts_url,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// The flag's desired state.
#[derive(Debug, Clone)]
pub struct FlagState<'a> {
    pub pull_request_id: i64,
    pub pipeline_id: i64,
    pub commit_sha: &'a str,
    pub check_name: &'a str,
    pub uid: &'a str,
    pub status: &'a str,
    pub comment: &'a str,
    pub url: &'a str,
    pub koji_build_id: Option<i64>,
    pub test_run_id: Option<i64>,
}

/// Set a flag's desired state and, when that changed it, queue a `set-flag`
/// job for the new version, in one statement. Returns the flag id and the
/// version queued, `None` when the flag already says exactly this.
pub async fn set_flag(
    executor: impl PgExecutor<'_>,
    flag: &FlagState<'_>,
    event_id: i64,
) -> Result<Option<(i64, i32)>, sqlx::Error> {
    let row = sqlx::query!(
        r#"
        WITH flag AS (
            INSERT INTO flags (pull_request_id, pipeline_id, commit_sha, check_name, uid, status,
                               comment, url, koji_build_id, test_run_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (pull_request_id, uid) DO UPDATE SET
                status = EXCLUDED.status, comment = EXCLUDED.comment, url = EXCLUDED.url,
                pipeline_id = EXCLUDED.pipeline_id,
                koji_build_id = COALESCE(EXCLUDED.koji_build_id, flags.koji_build_id),
                test_run_id = COALESCE(EXCLUDED.test_run_id, flags.test_run_id),
                version = flags.version + 1, updated_at = now()
            WHERE (flags.status, flags.comment, flags.url)
                  IS DISTINCT FROM (EXCLUDED.status, EXCLUDED.comment, EXCLUDED.url)
            RETURNING id, version
        ), job AS (
            INSERT INTO jobs (kind, queue, dedup_key, payload, event_id, pipeline_id)
            SELECT 'set-flag', 'distgit', 'set-flag:' || id || ':' || version,
                   jsonb_build_object('flag_id', id, 'version', version), $11, $2
            FROM flag
            ON CONFLICT (dedup_key) DO NOTHING
        )
        SELECT id, version FROM flag
        "#,
        flag.pull_request_id,
        flag.pipeline_id,
        flag.commit_sha,
        flag.check_name,
        flag.uid,
        flag.status,
        flag.comment,
        flag.url,
        flag.koji_build_id,
        flag.test_run_id,
        event_id,
    )
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|r| (r.id, r.version)))
}

/// The pending flag a new build or test run starts with.
#[derive(Debug, Clone)]
pub struct FirstFlag<'a> {
    pub pull_request_id: i64,
    pub check_name: &'a str,
    pub uid: &'a str,
    pub comment: &'a str,
    /// The flag links to this plus the new row's id (our page for it).
    pub url_prefix: &'a str,
}

/// Decide a scratch build in one statement: the build (unless the decision
/// with its trigger key made it already), its submit job, its pending flag
/// and the job sending the flag. The new build's id, `None` if it existed.
pub async fn decide_scratch_build(
    executor: impl PgExecutor<'_>,
    build: &NewScratchBuild<'_>,
    flag: &FirstFlag<'_>,
    event_id: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        WITH build AS (
            INSERT INTO koji_builds (pipeline_id, project_id, trigger_key, scratch, target, branch,
                                     variant, source_url, commit_sha, status)
            VALUES ($1, $2, $3, true, $4, $5, $6, $7, $8, 'pending')
            ON CONFLICT (trigger_key) DO NOTHING
            RETURNING id
        ), submit AS (
            INSERT INTO jobs (kind, queue, dedup_key, payload, event_id, pipeline_id)
            SELECT 'submit-scratch-build', 'koji', 'submit-scratch-build:' || id,
                   jsonb_build_object('koji_build_id', id, 'source_url', $7::text, 'target', $4::text),
                   $9, $1
            FROM build
            ON CONFLICT (dedup_key) DO NOTHING
        ), flag AS (
            INSERT INTO flags (pull_request_id, pipeline_id, commit_sha, check_name, uid, status,
                               comment, url, koji_build_id)
            SELECT $10, $1, $8, $11, $12, 'pending', $13, $14 || id, id FROM build
            ON CONFLICT (pull_request_id, uid) DO UPDATE SET
                status = EXCLUDED.status, comment = EXCLUDED.comment, url = EXCLUDED.url,
                pipeline_id = EXCLUDED.pipeline_id, koji_build_id = EXCLUDED.koji_build_id,
                version = flags.version + 1, updated_at = now()
            RETURNING id, version
        ), send AS (
            INSERT INTO jobs (kind, queue, dedup_key, payload, event_id, pipeline_id)
            SELECT 'set-flag', 'distgit', 'set-flag:' || id || ':' || version,
                   jsonb_build_object('flag_id', id, 'version', version), $9, $1
            FROM flag
            ON CONFLICT (dedup_key) DO NOTHING
        )
        SELECT id FROM build
        "#,
        build.pipeline_id,
        build.project_id,
        build.trigger_key,
        build.target,
        build.branch,
        build.variant,
        build.source_url,
        build.commit_sha,
        event_id,
        flag.pull_request_id,
        flag.check_name,
        flag.uid,
        flag.comment,
        flag.url_prefix,
    )
    .fetch_optional(executor)
    .await
}

/// One decision for an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub handler: &'static str,
    pub outcome: Outcome,
    pub subject: Option<String>,
    pub reason: String,
    pub pipeline_id: Option<i64>,
}

/// What came of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Something was recorded to be done (jobs created, state changed).
    Acted,
    /// Nothing to do, for the reason given.
    Skipped,
    /// The decision needs a fact first; it is taken again when the fact arrives.
    Waiting,
    /// The event could not be handled.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Acted => "acted",
            Outcome::Skipped => "skipped",
            Outcome::Waiting => "waiting",
            Outcome::Failed => "failed",
        }
    }
}

/// Decisions of many events in one statement.
pub async fn insert_decisions(
    executor: impl PgExecutor<'_>,
    decisions: &[(i64, &Decision)],
) -> Result<(), sqlx::Error> {
    let mut event_ids = Vec::with_capacity(decisions.len());
    let mut handlers = Vec::with_capacity(decisions.len());
    let mut outcomes = Vec::with_capacity(decisions.len());
    let mut subjects = Vec::with_capacity(decisions.len());
    let mut reasons = Vec::with_capacity(decisions.len());
    let mut pipelines = Vec::with_capacity(decisions.len());
    for (event_id, decision) in decisions {
        event_ids.push(*event_id);
        handlers.push(decision.handler);
        outcomes.push(decision.outcome.as_str());
        subjects.push(decision.subject.as_deref());
        reasons.push(decision.reason.as_str());
        pipelines.push(decision.pipeline_id);
    }
    sqlx::query!(
        r#"
        INSERT INTO decisions (event_id, handler, outcome, subject, reason, pipeline_id)
        SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[])
        "#,
        &event_ids,
        &handlers as _,
        &outcomes as _,
        &subjects as _,
        &reasons as _,
        &pipelines as _,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// A decision as the API and tests read it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionRow {
    pub handler: String,
    pub outcome: String,
    pub subject: Option<String>,
    pub reason: String,
}

pub async fn decisions_of_event(
    executor: impl PgExecutor<'_>,
    event_id: i64,
) -> Result<Vec<DecisionRow>, sqlx::Error> {
    sqlx::query_as!(
        DecisionRow,
        r#"
        SELECT handler, outcome, subject, reason FROM decisions
        WHERE event_id = $1 ORDER BY id
        "#,
        event_id,
    )
    .fetch_all(executor)
    .await
}

/// A fact looked up by a job, if it is known and not older than `max_age`.
pub async fn fact(
    executor: impl PgExecutor<'_>,
    key: &str,
    max_age: Option<chrono::Duration>,
) -> Result<Option<serde_json::Value>, sqlx::Error> {
    let row = sqlx::query!(r#"SELECT value, checked_at FROM facts WHERE key = $1"#, key)
        .fetch_optional(executor)
        .await?;
    Ok(row.and_then(|r| match max_age {
        Some(age) if Utc::now() - r.checked_at > age => None,
        _ => Some(r.value),
    }))
}

pub async fn store_fact(
    executor: impl PgExecutor<'_>,
    key: &str,
    value: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        INSERT INTO facts (key, value) VALUES ($1, $2)
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, checked_at = now()
        "#,
        key,
        value,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// Park an event until a fact arrives.
/// Serialize waiting for a fact with its arrival: a decision that parks its
/// event takes the key's lock shared, the fact's arrival takes it
/// exclusively, each until its transaction ends. So an arrival that commits
/// first is seen by the waiter's next read of the fact, and a waiter that
/// commits first is seen by the arrival's wake-up: no event waits for a fact
/// that is already known.
pub async fn lock_fact(
    executor: impl PgExecutor<'_>,
    key: &str,
    exclusive: bool,
) -> Result<(), sqlx::Error> {
    // Fact keys share the advisory lock space through a hash; a collision
    // only makes two keys wait for each other.
    if exclusive {
        sqlx::query!("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", key)
            .execute(executor)
            .await
            .map(|_| ())
    } else {
        sqlx::query!(
            "SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 7))",
            key
        )
        .execute(executor)
        .await
        .map(|_| ())
    }
}

pub async fn wait_for_fact(
    executor: impl PgExecutor<'_>,
    key: &str,
    event_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        INSERT INTO waiting_events (fact_key, event_id) VALUES ($1, $2)
        ON CONFLICT DO NOTHING
        "#,
        key,
        event_id,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// Put the events waiting for a fact back in line for their decisions; the
/// ids of those events.
pub async fn wake_waiting_events(
    executor: impl PgExecutor<'_>,
    key: &str,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        WITH woken AS (DELETE FROM waiting_events WHERE fact_key = $1 RETURNING event_id)
        UPDATE events SET status = 'received', processed_at = NULL
        WHERE id IN (SELECT event_id FROM woken)
        RETURNING id
        "#,
        key,
    )
    .fetch_all(executor)
    .await
}

/// The pull request of a pipeline, with its project, as the flows need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelinePullRequest {
    pub pull_request_id: i64,
    pub number: i64,
    pub target_branch: String,
    pub head_sha: String,
    pub source_url: String,
    pub project_url: String,
}

pub async fn pull_request_of_pipeline(
    executor: impl PgExecutor<'_>,
    pipeline_id: i64,
) -> Result<Option<PipelinePullRequest>, sqlx::Error> {
    sqlx::query_as!(
        PipelinePullRequest,
        r#"
        SELECT pr.id AS pull_request_id, pr.number, pr.target_branch, pr.head_sha, pr.source_url,
               p.url AS project_url
        FROM pipelines pl
        JOIN pull_requests pr ON pr.id = pl.pull_request_id
        JOIN projects p ON p.id = pr.project_id
        WHERE pl.id = $1
        "#,
        pipeline_id,
    )
    .fetch_optional(executor)
    .await
}

/// The newest build of a pipeline for a variant, any status; with `successful`, the newest
/// that Koji finished successfully (`CLOSED`): what tests asked for by a comment run against,
/// as in Packit Service, even when a newer build of the same commit failed or still runs.
pub async fn latest_koji_build(
    executor: impl PgExecutor<'_>,
    pipeline_id: i64,
    variant: &str,
    successful: bool,
) -> Result<Option<KojiBuildRow>, sqlx::Error> {
    sqlx::query_as!(
        KojiBuildRow,
        r#"
        SELECT id, pipeline_id, task_id, target, branch, variant, source_url, commit_sha,
               status, koji_state, superseded, web_url
        FROM koji_builds
        WHERE pipeline_id = $1 AND variant = $2 AND (NOT $3 OR koji_state = 'CLOSED')
        ORDER BY id DESC LIMIT 1
        "#,
        pipeline_id,
        variant,
        successful,
    )
    .fetch_optional(executor)
    .await
}

/// Make an ended pipeline run again, in a new round: the pull request was reopened, its head
/// returned to this commit, or a packager asked for work on it. The new round, `None` when the
/// pipeline was already active (so deciding the same event twice starts one round).
pub async fn restart_pipeline(
    executor: impl PgExecutor<'_>,
    pipeline_id: i64,
) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        UPDATE pipelines SET state = 'active', superseded_by = NULL, round = round + 1,
            updated_at = now()
        WHERE id = $1 AND state <> 'active'
        RETURNING round
        "#,
        pipeline_id,
    )
    .fetch_optional(executor)
    .await
}

/// A build by id, locked for the transaction.
pub async fn koji_build(
    executor: impl PgExecutor<'_>,
    id: i64,
) -> Result<Option<KojiBuildRow>, sqlx::Error> {
    sqlx::query_as!(
        KojiBuildRow,
        r#"
        SELECT id, pipeline_id, task_id, target, branch, variant, source_url, commit_sha,
               status, koji_state, superseded, web_url
        FROM koji_builds WHERE id = $1
        FOR UPDATE
        "#,
        id,
    )
    .fetch_optional(executor)
    .await
}

/// End a build that will not finish by itself (its submission gave up, or
/// nothing was heard of it in time) as `error`.
pub async fn fail_koji_build(
    executor: impl PgExecutor<'_>,
    id: i64,
    message: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        UPDATE koji_builds SET status = 'error', error_message = $2,
            finished_at = COALESCE(finished_at, now()), updated_at = now()
        WHERE id = $1
        "#,
        id,
        message,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// A test run by id, locked for the transaction.
pub async fn test_run(
    executor: impl PgExecutor<'_>,
    id: i64,
) -> Result<Option<TestRunRow>, sqlx::Error> {
    sqlx::query_as!(
        TestRunRow,
        r#"
        SELECT id, pipeline_id, koji_build_id, test_name, branch, variant, request_id, state,
               result, artifacts_url, superseded, reads, submitted_at
        FROM test_runs WHERE id = $1
        FOR UPDATE
        "#,
        id,
    )
    .fetch_optional(executor)
    .await
}

/// Koji accepted the build as `task_id`.
pub async fn set_build_task(
    executor: impl PgExecutor<'_>,
    id: i64,
    task_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        UPDATE koji_builds SET task_id = $2, submitted_at = now(), last_heard_at = now(),
            updated_at = now()
        WHERE id = $1
        "#,
        id,
        task_id,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// A note on a build, e.g. that a dry run recorded it instead of sending it.
pub async fn note_build(
    executor: impl PgExecutor<'_>,
    id: i64,
    note: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE koji_builds SET error_message = $2, updated_at = now() WHERE id = $1",
        id,
        note,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// What submitting a test run needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunToSubmit {
    pub id: i64,
    pub payload: serde_json::Value,
    pub request_id: Option<String>,
    pub state: String,
    pub superseded: bool,
}

pub async fn run_to_submit(
    executor: impl PgExecutor<'_>,
    id: i64,
) -> Result<Option<RunToSubmit>, sqlx::Error> {
    sqlx::query_as!(
        RunToSubmit,
        "SELECT id, payload, request_id, state, superseded FROM test_runs WHERE id = $1",
        id,
    )
    .fetch_optional(executor)
    .await
}

/// Testing Farm accepted the run as `request_id`.
pub async fn set_run_request(
    executor: impl PgExecutor<'_>,
    id: i64,
    request_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        UPDATE test_runs SET request_id = $2, submitted_at = now(), updated_at = now()
        WHERE id = $1
        "#,
        id,
        request_id,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// A note on a run, e.g. that a dry run recorded it instead of sending it.
pub async fn note_run(
    executor: impl PgExecutor<'_>,
    id: i64,
    note: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE test_runs SET summary = $2, updated_at = now() WHERE id = $1",
        id,
        note,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// A flag with what sending it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagToSend {
    pub id: i64,
    pub check_name: String,
    pub uid: String,
    pub status: String,
    pub comment: String,
    pub url: String,
    pub version: i32,
    pub sent_version: i32,
    pub pr_number: i64,
    pub project_url: String,
}

pub async fn flag_to_send(
    executor: impl PgExecutor<'_>,
    id: i64,
) -> Result<Option<FlagToSend>, sqlx::Error> {
    sqlx::query_as!(
        FlagToSend,
        r#"
        SELECT f.id, f.check_name, f.uid, f.status, f.comment, f.url, f.version, f.sent_version,
               pr.number AS pr_number, p.url AS project_url
        FROM flags f
        JOIN pull_requests pr ON pr.id = f.pull_request_id
        JOIN projects p ON p.id = pr.project_id
        WHERE f.id = $1
        "#,
        id,
    )
    .fetch_optional(executor)
    .await
}

/// The flag's state of `version` is on the pull request.
pub async fn flag_sent(
    executor: impl PgExecutor<'_>,
    id: i64,
    version: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE flags SET sent_version = GREATEST(sent_version, $2) WHERE id = $1",
        id,
        version,
    )
    .execute(executor)
    .await
    .map(|_| ())
}

/// Which of these Koji tasks are builds this service submitted.
pub async fn known_tasks(
    executor: impl PgExecutor<'_>,
    task_ids: &[i64],
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT task_id AS "task_id!" FROM koji_builds WHERE task_id = ANY($1)"#,
        task_ids,
    )
    .fetch_all(executor)
    .await
}

/// A push as a message reports it.
#[derive(Debug, Clone)]
pub struct NewPush<'a> {
    pub event_id: i64,
    pub project_url: &'a str,
    pub forge: &'a str,
    pub namespace: &'a str,
    pub repo: &'a str,
    pub branch: &'a str,
    pub old_sha: Option<&'a str>,
    pub new_sha: &'a str,
    pub pusher: Option<&'a str>,
    pub forced: bool,
    pub total_commits: Option<i32>,
    /// The pull request Pagure says the push merged.
    pub merged_pr: Option<i64>,
}

/// Record a push, once per event, in one statement: its project, the push
/// linked to the pull requests it merged or updated (the one Pagure names,
/// and the open ones made from the pushed branch), and its head commit.
/// Returns the numbers of the linked pull requests.
pub async fn record_push(
    executor: impl PgExecutor<'_>,
    push: &NewPush<'_>,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        WITH new_project AS (
            INSERT INTO projects (url, forge, namespace, repo) VALUES ($2, $3, $4, $5)
            ON CONFLICT (url) DO NOTHING
            RETURNING id
        ), project AS (
            SELECT id FROM new_project
            UNION ALL
            SELECT id FROM projects WHERE url = $2
            LIMIT 1
        ), linked AS (
            -- Two look-ups, each by its own index (an OR of them would scan).
            SELECT pr.id, pr.number FROM pull_requests pr, project
            WHERE pr.project_id = project.id AND pr.number = $12
            UNION
            SELECT pr.id, pr.number FROM pull_requests pr
            WHERE pr.source_url = $2 AND pr.source_branch = $6 AND pr.status = 'open'
        ), push AS (
            INSERT INTO pushes (event_id, project_id, branch, old_sha, new_sha, pusher, forced,
                                total_commits, pull_request_id)
            SELECT $1, project.id, $6, $7, $8, $9, $10, $11, (SELECT min(id) FROM linked)
            FROM project
            ON CONFLICT (event_id) DO NOTHING
            RETURNING id, project_id, pull_request_id
        ), head AS (
            INSERT INTO commits (project_id, sha, push_id, pull_request_id)
            SELECT project_id, $8, id, pull_request_id FROM push
            ON CONFLICT (project_id, sha) DO UPDATE SET
                push_id = COALESCE(commits.push_id, EXCLUDED.push_id),
                pull_request_id = COALESCE(commits.pull_request_id, EXCLUDED.pull_request_id)
            WHERE (commits.push_id IS NULL AND EXCLUDED.push_id IS NOT NULL)
               OR (commits.pull_request_id IS NULL AND EXCLUDED.pull_request_id IS NOT NULL)
        )
        SELECT number AS "number!" FROM linked ORDER BY number
        "#,
        push.event_id,
        push.project_url,
        push.forge,
        push.namespace,
        push.repo,
        push.branch,
        push.old_sha,
        push.new_sha,
        push.pusher,
        push.forced,
        push.total_commits,
        push.merged_pr,
    )
    .fetch_all(executor)
    .await
}

/// Record a COMPLETE official build in one statement, with its project and
/// commit; its id, `None` if the build was recorded already.
pub async fn record_official_build_of(
    executor: impl PgExecutor<'_>,
    project: (&str, &str, &str, &str),
    build: &OfficialBuild<'_>,
) -> Result<Option<i64>, sqlx::Error> {
    let (url, forge, namespace, repo) = project;
    // Known already (a Bodhi update asked Koji about it first): what the message adds, its
    // times, branch and logs, fills what the record lacks; it is not recorded again.
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
            SELECT id, $11 FROM project WHERE $11::text IS NOT NULL
            ON CONFLICT (project_id, sha) DO NOTHING
        )
        INSERT INTO koji_builds (project_id, scratch, build_id, task_id, nvr, target, source_url,
                                 commit_sha, status, koji_state, started_at, finished_at, owner,
                                 branch, log_urls)
        SELECT id, false, $5, $6, $7, $8, $9, $11, 'success', 'COMPLETE', $13, $10, $12, $14,
               COALESCE($15, '{}'::jsonb)
        FROM project
        ON CONFLICT (build_id) DO UPDATE SET
            started_at = COALESCE(koji_builds.started_at, EXCLUDED.started_at),
            finished_at = COALESCE(koji_builds.finished_at, EXCLUDED.finished_at),
            branch = COALESCE(koji_builds.branch, EXCLUDED.branch),
            log_urls = CASE WHEN koji_builds.log_urls = '{}'::jsonb THEN EXCLUDED.log_urls
                            ELSE koji_builds.log_urls END,
            updated_at = now()
        RETURNING id, (xmax = 0) AS "inserted!"
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
        build.finished_at,
        build.commit_sha,
        build.owner,
        build.started_at,
        build.branch,
        build.log_urls,
    )
    .fetch_one(executor)
    .await?;
    Ok(row.inserted.then_some(row.id))
}

/// One test of [`decide_test_runs`].
#[derive(Debug, Clone)]
pub struct TestToDecide<'a> {
    pub test_name: &'a str,
    pub trigger_key: &'a str,
    pub compose: Option<&'a str>,
    pub payload: &'a serde_json::Value,
    pub check_name: &'a str,
    pub uid: &'a str,
}

/// What [`decide_test_runs`] shares between its tests.
#[derive(Debug, Clone)]
pub struct TestsOf<'a> {
    pub pipeline_id: i64,
    pub koji_build_id: Option<i64>,
    pub branch: &'a str,
    pub variant: &'a str,
    pub pull_request_id: i64,
    pub commit_sha: &'a str,
    /// The first flag's comment.
    pub comment: &'a str,
    /// Flags link to this plus the new run's id (our page for it).
    pub url_prefix: &'a str,
}

/// Decide several test runs in one statement: each run (unless the decision
/// with its trigger key made it already), its submit job, its pending flag
/// and the job sending the flag. Returns the tests whose runs were created,
/// with their ids.
pub async fn decide_test_runs(
    executor: impl PgExecutor<'_>,
    of: &TestsOf<'_>,
    tests: &[TestToDecide<'_>],
    event_id: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let names: Vec<&str> = tests.iter().map(|t| t.test_name).collect();
    let keys: Vec<&str> = tests.iter().map(|t| t.trigger_key).collect();
    let composes: Vec<Option<&str>> = tests.iter().map(|t| t.compose).collect();
    let payloads: Vec<&serde_json::Value> = tests.iter().map(|t| t.payload).collect();
    let check_names: Vec<&str> = tests.iter().map(|t| t.check_name).collect();
    let uids: Vec<&str> = tests.iter().map(|t| t.uid).collect();
    let rows = sqlx::query!(
        r#"
        WITH input AS (
            SELECT * FROM UNNEST($3::text[], $4::text[], $5::text[], $6::jsonb[], $7::text[],
                                 $8::text[])
                AS i(test_name, trigger_key, compose, payload, check_name, uid)
        ), run AS (
            INSERT INTO test_runs (pipeline_id, koji_build_id, test_name, trigger_key, branch,
                                   variant, compose, payload)
            SELECT $1, $2, test_name, trigger_key, $9, $10, compose, payload FROM input
            ON CONFLICT (trigger_key) DO NOTHING
            RETURNING id, test_name
        ), submit AS (
            INSERT INTO jobs (kind, queue, dedup_key, payload, event_id, pipeline_id)
            SELECT 'submit-testing-farm', 'testing-farm', 'submit-testing-farm:' || id,
                   jsonb_build_object('test_run_id', id), $11, $1
            FROM run
            ON CONFLICT (dedup_key) DO NOTHING
        ), flag AS (
            INSERT INTO flags (pull_request_id, pipeline_id, commit_sha, check_name, uid, status,
                               comment, url, test_run_id)
            SELECT $12, $1, $13, input.check_name, input.uid, 'pending', $14, $15 || run.id, run.id
            FROM run JOIN input USING (test_name)
            ON CONFLICT (pull_request_id, uid) DO UPDATE SET
                status = EXCLUDED.status, comment = EXCLUDED.comment, url = EXCLUDED.url,
                pipeline_id = EXCLUDED.pipeline_id, test_run_id = EXCLUDED.test_run_id,
                version = flags.version + 1, updated_at = now()
            RETURNING id, version
        ), send AS (
            INSERT INTO jobs (kind, queue, dedup_key, payload, event_id, pipeline_id)
            SELECT 'set-flag', 'distgit', 'set-flag:' || id || ':' || version,
                   jsonb_build_object('flag_id', id, 'version', version), $11, $1
            FROM flag
            ON CONFLICT (dedup_key) DO NOTHING
        )
        SELECT test_name AS "test_name!", id AS "id!" FROM run
        "#,
        of.pipeline_id,
        of.koji_build_id,
        &names as _,
        &keys as _,
        &composes as _,
        &payloads as _,
        &check_names as _,
        &uids as _,
        of.branch,
        of.variant,
        event_id,
        of.pull_request_id,
        of.commit_sha,
        of.comment,
        of.url_prefix,
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|r| (r.test_name, r.id)).collect())
}

/// A Koji task's build with its pipeline and pull request, the build locked
/// for the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskBuild {
    pub id: i64,
    pub variant: String,
    pub koji_state: Option<String>,
    pub superseded: bool,
    pub pipeline_id: Option<i64>,
    pub pipeline_state: Option<String>,
    pub pipeline_round: Option<i32>,
    pub superseded_by: Option<String>,
    pub commit_sha: Option<String>,
    pub project_id: Option<i64>,
    pub pull_request_id: Option<i64>,
    pub target_branch: Option<String>,
    pub source_url: Option<String>,
    pub project_url: Option<String>,
    /// When Koji accepted the submission.
    pub submitted_at: Option<DateTime<Utc>>,
}

pub async fn task_build(
    executor: impl PgExecutor<'_>,
    task_id: i64,
) -> Result<Option<TaskBuild>, sqlx::Error> {
    sqlx::query_as!(
        TaskBuild,
        r#"
        SELECT b.id, b.variant, b.koji_state, b.superseded, b.pipeline_id,
               pl.state AS "pipeline_state?", pl.round AS "pipeline_round?", pl.superseded_by,
               pl.commit_sha AS "commit_sha?", pl.project_id AS "project_id?",
               pr.id AS "pull_request_id?", pr.target_branch AS "target_branch?",
               pr.source_url AS "source_url?", p.url AS "project_url?", b.submitted_at
        FROM koji_builds b
        LEFT JOIN pipelines pl ON pl.id = b.pipeline_id
        LEFT JOIN pull_requests pr ON pr.id = pl.pull_request_id
        LEFT JOIN projects p ON p.id = pr.project_id
        WHERE b.task_id = $1
        FOR UPDATE OF b
        "#,
        task_id,
    )
    .fetch_optional(executor)
    .await
}

/// A pipeline [`end_pipelines`] ended, with what it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedPipeline {
    pub id: i64,
    pub commit_sha: String,
    /// Builds and test runs stopped ("Koji build 7", "rpmlint test").
    pub stopped: Vec<String>,
    /// Updates of flags still pending that were not sent yet and never will
    /// be: the flags are set to canceled instead.
    pub dropped_flags: i64,
}

/// End the active pipelines of a pull request other than the one of
/// `keep_sha`, as `state` (`superseded` by `superseded_by`, or `closed`):
/// their jobs that have not started (submissions, flag updates) are
/// canceled, with `reason`; their unfinished builds and test runs are marked
/// superseded, and canceled outright when never submitted; those already
/// submitted get a job to cancel them at Koji or Testing Farm. The caller
/// holds the pull request's row lock.
///
/// Two statements, the second only when a pipeline ended: the pipelines'
/// ids go to the second as a parameter, so that its plan (also the generic
/// plan of the prepared statement) looks them up through the indexes
/// however many jobs wait.
pub async fn end_pipelines(
    conn: &mut sqlx::PgConnection,
    pull_request_id: i64,
    keep_sha: Option<&str>,
    state: &str,
    superseded_by: Option<&str>,
    reason: &str,
    event_id: i64,
) -> Result<Vec<EndedPipeline>, sqlx::Error> {
    let ended = sqlx::query!(
        r#"
        UPDATE pipelines SET state = $3, superseded_by = $4, updated_at = now()
        WHERE pull_request_id = $1 AND state = 'active'
          AND ($2::text IS NULL OR commit_sha <> $2)
        RETURNING id, commit_sha
        "#,
        pull_request_id,
        keep_sha,
        state,
        superseded_by,
    )
    .fetch_all(&mut *conn)
    .await?;
    if ended.is_empty() {
        return Ok(Vec::new());
    }
    let ended: Vec<(i64, String)> = ended.into_iter().map(|p| (p.id, p.commit_sha)).collect();
    stop_pipelines(conn, &ended, reason, Some(event_id)).await
}

/// End one active pipeline as `closed` (an operator's cancel), stopping what
/// it runs as [`end_pipelines`] does; `None` if it was not active.
pub async fn close_pipeline(
    conn: &mut sqlx::PgConnection,
    pipeline_id: i64,
    reason: &str,
    event_id: i64,
) -> Result<Option<EndedPipeline>, sqlx::Error> {
    let ended = sqlx::query!(
        r#"
        UPDATE pipelines SET state = 'closed', updated_at = now()
        WHERE id = $1 AND state = 'active'
        RETURNING id, commit_sha
        "#,
        pipeline_id,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(ended) = ended else {
        return Ok(None);
    };
    Ok(stop_pipelines(
        conn,
        &[(ended.id, ended.commit_sha)],
        reason,
        Some(event_id),
    )
    .await?
    .pop())
}

/// Stop what ended pipelines run: their jobs that have not started are
/// canceled, their unfinished builds and test runs are marked superseded
/// (canceled outright when never submitted), and those already submitted get
/// a job to cancel them at Koji or Testing Farm.
async fn stop_pipelines(
    conn: &mut sqlx::PgConnection,
    ended: &[(i64, String)],
    reason: &str,
    event_id: Option<i64>,
) -> Result<Vec<EndedPipeline>, sqlx::Error> {
    let ids: Vec<i64> = ended.iter().map(|(id, _)| *id).collect();
    let rows = sqlx::query!(
        r#"
        WITH dropped AS (
            UPDATE jobs SET state = 'canceled', last_error = $2, finished_at = now(),
                updated_at = now()
            WHERE pipeline_id = ANY($1) AND state = 'pending'
              AND kind IN ('submit-scratch-build', 'submit-testing-farm', 'set-flag')
              -- A result decided while the commit was the head is still
              -- sent; a flag still pending is set to canceled instead.
              AND (kind <> 'set-flag' OR EXISTS (
                  SELECT 1 FROM flags f
                  WHERE f.id = (jobs.payload->>'flag_id')::int8 AND f.status = 'pending'))
            RETURNING kind, payload, pipeline_id
        ), unsent_builds AS (
            SELECT (payload->>'koji_build_id')::int8 AS id FROM dropped
            WHERE kind = 'submit-scratch-build'
        ), unsent_runs AS (
            SELECT (payload->>'test_run_id')::int8 AS id FROM dropped
            WHERE kind = 'submit-testing-farm'
        ), builds AS (
            UPDATE koji_builds SET superseded = true,
                status = CASE WHEN id IN (SELECT id FROM unsent_builds) THEN 'canceled'
                              ELSE status END,
                error_message = CASE WHEN id IN (SELECT id FROM unsent_builds)
                                     THEN 'superseded before it was submitted'
                                     ELSE error_message END,
                finished_at = CASE WHEN id IN (SELECT id FROM unsent_builds) THEN now()
                                   ELSE finished_at END,
                updated_at = now()
            WHERE pipeline_id = ANY($1) AND status IN ('pending', 'running') AND NOT superseded
            RETURNING id, pipeline_id, id IN (SELECT id FROM unsent_builds) AS unsent
        ), runs AS (
            UPDATE test_runs SET superseded = true,
                state = CASE WHEN id IN (SELECT id FROM unsent_runs) THEN 'canceled'
                             ELSE state END,
                summary = CASE WHEN id IN (SELECT id FROM unsent_runs)
                               THEN 'superseded before it was submitted' ELSE summary END,
                finished_at = CASE WHEN id IN (SELECT id FROM unsent_runs) THEN now()
                                   ELSE finished_at END,
                updated_at = now()
            WHERE pipeline_id = ANY($1) AND state IN ('new', 'queued', 'running')
              AND NOT superseded
            RETURNING id, pipeline_id, test_name, id IN (SELECT id FROM unsent_runs) AS unsent
        ), cancel_builds AS (
            INSERT INTO jobs (kind, queue, dedup_key, payload, event_id, pipeline_id)
            SELECT 'cancel-koji-task', 'koji', 'cancel-koji-task:' || id,
                   jsonb_build_object('koji_build_id', id, 'reason', $2::text), $3, pipeline_id
            FROM builds WHERE NOT unsent
            ON CONFLICT (dedup_key) DO NOTHING
        ), cancel_runs AS (
            INSERT INTO jobs (kind, queue, dedup_key, payload, event_id, pipeline_id)
            SELECT 'cancel-testing-farm', 'testing-farm', 'cancel-testing-farm:' || id,
                   jsonb_build_object('test_run_id', id, 'reason', $2::text), $3, pipeline_id
            FROM runs WHERE NOT unsent
            ON CONFLICT (dedup_key) DO NOTHING
        )
        SELECT p.id AS "id!",
               ARRAY(SELECT 'Koji build ' || b.id FROM builds b WHERE b.pipeline_id = p.id
                     ORDER BY b.id)
               || ARRAY(SELECT r.test_name || ' test' FROM runs r WHERE r.pipeline_id = p.id
                        ORDER BY r.id) AS "stopped!",
               (SELECT count(*) FROM dropped d WHERE d.pipeline_id = p.id
                  AND d.kind = 'set-flag') AS "dropped_flags!"
        FROM UNNEST($1::int8[]) AS p(id)
        "#,
        &ids,
        reason,
        event_id,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(ended
        .iter()
        .map(|(id, commit_sha)| {
            let row = rows.iter().find(|r| r.id == *id);
            EndedPipeline {
                id: *id,
                commit_sha: commit_sha.clone(),
                stopped: row.map(|r| r.stopped.clone()).unwrap_or_default(),
                dropped_flags: row.map_or(0, |r| r.dropped_flags),
            }
        })
        .collect())
}

/// The flags of a pipeline still showing `pending`, to end them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFlag {
    pub pull_request_id: i64,
    pub commit_sha: String,
    pub check_name: String,
    pub uid: String,
    pub url: String,
    pub koji_build_id: Option<i64>,
    pub test_run_id: Option<i64>,
}

pub async fn pending_flags(
    executor: impl PgExecutor<'_>,
    pipeline_id: i64,
) -> Result<Vec<PendingFlag>, sqlx::Error> {
    sqlx::query_as!(
        PendingFlag,
        r#"
        SELECT pull_request_id, commit_sha, check_name, uid, url, koji_build_id, test_run_id
        FROM flags WHERE pipeline_id = $1 AND status = 'pending'
        ORDER BY id
        "#,
        pipeline_id,
    )
    .fetch_all(executor)
    .await
}

/// A Testing Farm request's run with its pipeline and pull request, the run
/// locked for the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRun {
    pub id: i64,
    pub pipeline_id: i64,
    pub test_name: String,
    pub branch: String,
    pub variant: String,
    pub state: String,
    pub artifacts_url: Option<String>,
    pub superseded: bool,
    pub pipeline_state: String,
    pub commit_sha: String,
    pub pull_request_id: Option<i64>,
    /// When Testing Farm accepted the request.
    pub submitted_at: Option<DateTime<Utc>>,
}

pub async fn request_run(
    executor: impl PgExecutor<'_>,
    request_id: &str,
) -> Result<Option<RequestRun>, sqlx::Error> {
    sqlx::query_as!(
        RequestRun,
        r#"
        SELECT r.id, r.pipeline_id, r.test_name, r.branch, r.variant, r.state, r.artifacts_url,
               r.superseded, pl.state AS pipeline_state, pl.commit_sha, pl.pull_request_id,
               r.submitted_at
        FROM test_runs r JOIN pipelines pl ON pl.id = r.pipeline_id
        WHERE r.request_id = $1
        FOR UPDATE OF r
        "#,
        request_id,
    )
    .fetch_optional(executor)
    .await
}

/// A pipeline's state, if it exists.
pub async fn pipeline_state(
    executor: impl PgExecutor<'_>,
    id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!("SELECT state FROM pipelines WHERE id = $1", id)
        .fetch_optional(executor)
        .await
}

/// A read of the run's Testing Farm request was decided on.
pub async fn count_read(executor: impl PgExecutor<'_>, run_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE test_runs SET reads = reads + 1 WHERE id = $1",
        run_id
    )
    .execute(executor)
    .await
    .map(|_| ())
}
