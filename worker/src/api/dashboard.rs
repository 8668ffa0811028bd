//! The endpoints the Packit dashboard reads, with Packit Service's paths,
//! field names and conventions (`packit_service/service/api/` in
//! packit/packit-service): lists are `206 Partial Content` with
//! `Content-Range: <kind> <first>-<last>/*`, times are epoch seconds, an
//! unknown id is a 404 with `{"error": ...}`. docs/api.md maps every field to
//! our records and names the Copr-only ones we answer with null or `[]`.
//!
//! Bodhi updates' gating runs are pipelines and test runs like a pull
//! request's, so they show up in the same lists. What Packit has no field for
//! (the NVR, the update, the test case, the CI messages) is added beside
//! Packit's fields, never in place of one: docs/api.md lists these
//! extensions.
//!
//! The rest of the dashboard's calls are served beside: its project pages by
//! `projects.rs`, its usage page by `usage.rs`, and its pages of Packit
//! features Fedora CI does not have by `packit_empty.rs`.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use store::dashboard::{KojiBuildRecord, PipelineRecord, TestRunRecord};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState, ErrorBody, only_params, pagination, partial};
use crate::jobs::public::public_error;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_koji_builds))
        .routes(routes!(get_koji_build))
        .routes(routes!(get_koji_build_group))
        .routes(routes!(list_test_runs))
        .routes(routes!(get_test_run))
        .routes(routes!(get_test_run_group))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(get_merged_run))
}

/// Where a build or test came from, as Packit's `get_project_info_from_build`
/// (`packit_service/service/api/utils.py`) tells it. Fedora CI only has pull
/// requests of dist-git projects (and official builds of branches), so the
/// issue, release and Anitya fields are always null.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectInfo {
    /// The pull request's number.
    pr_id: Option<i64>,
    issue_id: Option<i64>,
    /// The branch of an official build; null for pull requests, as in Packit.
    branch_name: Option<String>,
    release: Option<String>,
    anitya_version: Option<String>,
    /// e.g. `rpms`
    repo_namespace: Option<String>,
    repo_name: Option<String>,
    /// e.g. `https://src.fedoraproject.org/rpms/optee_os`
    project_url: Option<String>,
    anitya_project_id: Option<i64>,
    anitya_project_name: Option<String>,
    anitya_package: Option<String>,
    non_git_upstream: bool,
}

impl ProjectInfo {
    fn new(
        pr_id: Option<i64>,
        branch_name: Option<String>,
        project_url: Option<String>,
        namespace: Option<String>,
        repo: Option<String>,
    ) -> Self {
        ProjectInfo {
            pr_id,
            issue_id: None,
            branch_name,
            release: None,
            anitya_version: None,
            repo_namespace: namespace,
            repo_name: repo,
            project_url,
            anitya_project_id: None,
            anitya_project_name: None,
            anitya_package: None,
            non_git_upstream: false,
        }
    }

    fn of_build(b: &KojiBuildRecord) -> Self {
        ProjectInfo::new(
            b.pr_number,
            build_branch_name(b),
            b.project_url.clone(),
            b.namespace.clone(),
            b.repo.clone(),
        )
    }

    fn of_test_run(t: &TestRunRecord) -> Self {
        ProjectInfo::new(
            t.pr_number,
            None,
            Some(t.project_url.clone()),
            Some(t.namespace.clone()),
            Some(t.repo.clone()),
        )
    }

    fn of_pipeline(p: &PipelineRecord) -> Self {
        ProjectInfo::new(
            p.pr_number,
            None,
            Some(p.project_url.clone()),
            Some(p.namespace.clone()),
            Some(p.repo.clone()),
        )
    }
}

/// Packit names a branch only for builds of a branch push, not of a pull request.
fn build_branch_name(b: &KojiBuildRecord) -> Option<String> {
    match b.pr_number {
        Some(_) => None,
        None => b.branch.clone(),
    }
}

pub(super) fn epoch(time: DateTime<Utc>) -> i64 {
    time.timestamp()
}

/// Koji's web page of the task: the recorded one, else made from the task id.
pub(super) fn koji_web_url(state: &AppState, b: &KojiBuildRecord) -> Option<String> {
    b.web_url.clone().or_else(|| {
        b.task_id.map(|task| {
            format!(
                "{}/taskinfo?taskID={task}",
                state.koji_web_url.trim_end_matches('/')
            )
        })
    })
}

/// Per architecture, the build log; null until Koji told us, as in Packit.
fn build_logs_urls(b: &KojiBuildRecord) -> Option<BTreeMap<String, String>> {
    let urls: BTreeMap<String, String> = b
        .log_urls
        .as_object()?
        .iter()
        .filter_map(|(arch, url)| Some((arch.clone(), url.as_str()?.to_owned())))
        .collect();
    (!urls.is_empty()).then_some(urls)
}

/// Packit's `TestingFarmResult` for our run's state and result: the result
/// once complete, else the state.
pub(super) fn test_status(t: &TestRunRecord) -> String {
    match (t.state.as_str(), t.result.as_deref()) {
        ("complete", Some(result)) => result.to_owned(),
        (state, _) => state.to_owned(),
    }
}

/// Packit's test `target` for Fedora CI is the Testing Farm compose
/// (`DownstreamTestingFarmHandler` maps the build's branch to it): ours as
/// recorded, else as the branch gives it.
pub(super) fn test_target(t: &TestRunRecord) -> String {
    t.compose
        .clone()
        .or_else(|| checkers::naming::compose(&t.branch, t.variant == "eln"))
        .unwrap_or_else(|| checkers::naming::display_branch(&t.branch))
}

/// A list page the way Packit Service answers one: [`partial`]'s `206
/// Partial Content` (`200` for an empty page where Packit does so), with
/// Packit's own `Content-Range`: first and last counted from 1 over the page
/// asked for, however many items it has (`f"{kind} {first + 1}-{last}/*"`
/// with `first, last = indices()` in `packit_service/service/api/`).
pub(super) fn packit_page<T: Serialize>(
    kind: &str,
    offset: i64,
    per_page: i64,
    items: Vec<T>,
    ok_when_empty: bool,
) -> Response {
    let empty = items.is_empty();
    let mut response = partial(kind, offset, per_page, items);
    if ok_when_empty && empty {
        *response.status_mut() = StatusCode::OK;
    }
    response
}

/// `page` and `per_page`, with nothing else but `extra`.
pub(super) fn page_params(
    params: &HashMap<String, String>,
    extra: &[&str],
) -> Result<(i64, i64), ApiError> {
    let mut allowed = vec!["page", "per_page"];
    allowed.extend_from_slice(extra);
    only_params(params, &allowed)?;
    let (_, per_page, offset) = pagination(params)?;
    Ok((per_page, offset))
}

/// A path id: a whole number, else a 400 naming the parameter.
pub(super) fn path_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("id must be a whole number, not {text:?}")))
}

// ---------------------------------------------------------------- Koji builds

/// One Koji build in `GET /api/koji-builds` (Packit's `KojiBuildsList`).
#[derive(Debug, Serialize, ToSchema)]
pub struct KojiBuildListItem {
    /// Our id of the build.
    packit_id: i64,
    /// Koji's task id, as a string (Packit stores it as text); null until Koji accepted it.
    task_id: Option<String>,
    scratch: bool,
    /// pending, running, success, failure, canceled or error.
    status: String,
    /// Epoch seconds.
    build_submitted_time: i64,
    /// The Koji target, e.g. `rawhide`, `f42`, `eln`.
    chroot: String,
    /// Koji's task page.
    web_url: Option<String>,
    /// Per architecture, the build log.
    build_logs_urls: Option<BTreeMap<String, String>>,
    pr_id: Option<i64>,
    branch_name: Option<String>,
    release: Option<String>,
    project_url: Option<String>,
    repo_namespace: Option<String>,
    repo_name: Option<String>,
    /// Ours: Koji's build id; official builds have one, scratch builds none.
    build_id: Option<i64>,
    /// Ours: the build's name-version-release; known for official builds.
    nvr: Option<String>,
}

/// Koji builds, newest first: our scratch builds and the official builds
/// we recorded (from Koji's messages, or as builds of a Bodhi update).
#[utoipa::path(get, path = "/api/koji-builds", tag = "dashboard",
    params(
        ("scratch" = Option<bool>, Query, description = "true: scratch builds only; false: official builds only"),
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "A page of Koji builds; Content-Range: koji-builds <first>-<last>/*",
            body = Vec<KojiBuildListItem>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_koji_builds(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (per_page, offset) = page_params(&params, &["scratch"])?;
    let scratch = match params.get("scratch").map(|s| s.to_ascii_lowercase()) {
        None => None,
        Some(text) if text == "true" => Some(true),
        Some(text) if text == "false" => Some(false),
        Some(text) => {
            return Err(ApiError::bad_request(format!(
                "scratch must be true or false, not {text:?}"
            )));
        }
    };
    let builds = store::dashboard::koji_builds(&state.pool, scratch, per_page, offset).await?;
    let items: Vec<KojiBuildListItem> = builds
        .iter()
        .map(|b| KojiBuildListItem {
            packit_id: b.id,
            task_id: b.task_id.map(|t| t.to_string()),
            scratch: b.scratch,
            status: b.status.clone(),
            build_submitted_time: epoch(b.submitted_at),
            chroot: b.target.clone(),
            web_url: koji_web_url(&state, b),
            build_logs_urls: build_logs_urls(b),
            pr_id: b.pr_number,
            branch_name: build_branch_name(b),
            release: None,
            project_url: b.project_url.clone(),
            repo_namespace: b.namespace.clone(),
            repo_name: b.repo.clone(),
            build_id: b.build_id,
            nvr: b.nvr.clone(),
        })
        .collect();
    Ok(packit_page("koji-builds", offset, per_page, items, false))
}

/// `GET /api/koji-builds/{id}` (Packit's `KojiBuildItem`).
#[derive(Debug, Serialize, ToSchema)]
pub struct KojiBuildDetail {
    task_id: Option<String>,
    status: String,
    chroot: String,
    scratch: bool,
    build_start_time: Option<i64>,
    build_finished_time: Option<i64>,
    build_submitted_time: i64,
    commit_sha: Option<String>,
    web_url: Option<String>,
    build_logs_urls: Option<BTreeMap<String, String>>,
    /// Always null: Fedora CI builds from dist-git, without an SRPM build of ours.
    srpm_build_id: Option<i64>,
    /// The runs (pipelines) of the build: a scratch build's pull-request
    /// pipeline; an official build's rounds of gating tests.
    run_ids: Vec<i64>,
    /// Always null: we submit over the API, not with a command.
    build_submission_stdout: Option<String>,
    error_message: Option<String>,
    #[serde(flatten)]
    project: ProjectInfo,
    /// Ours: Koji's build id; official builds have one, scratch builds none.
    build_id: Option<i64>,
    /// Ours: the build's name-version-release; known for official builds.
    nvr: Option<String>,
    /// Ours: the Bodhi updates that hold the build.
    updates: Vec<BuildUpdate>,
    /// Ours: the Testing Farm runs that tested the build (their packit_id).
    test_run_ids: Vec<i64>,
}

/// A Bodhi update that holds a build.
#[derive(Debug, Serialize, ToSchema)]
pub struct BuildUpdate {
    /// Bodhi's alias, e.g. `FEDORA-2021-53a7dfa185`.
    alias: String,
    /// The update's page on Bodhi.
    url: Option<String>,
    /// The release as Bodhi names it, e.g. `f34`.
    release: Option<String>,
}

/// One Koji build.
#[utoipa::path(get, path = "/api/koji-builds/{id}", tag = "dashboard",
    params(("id" = i64, Path, description = "The build's packit_id")),
    responses(
        (status = 200, description = "The build", body = KojiBuildDetail),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 404, description = "No such build", body = ErrorBody)))]
async fn get_koji_build(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<KojiBuildDetail>, ApiError> {
    let id = path_id(&id)?;
    let b = store::dashboard::koji_build(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("No info about build stored in DB"))?;
    let links = store::dashboard::build_links(&mut *state.pool.acquire().await?, id).await?;
    Ok(Json(KojiBuildDetail {
        task_id: b.task_id.map(|t| t.to_string()),
        status: b.status.clone(),
        chroot: b.target.clone(),
        scratch: b.scratch,
        build_start_time: b.started_at.map(epoch),
        build_finished_time: b.finished_at.map(epoch),
        build_submitted_time: epoch(b.submitted_at),
        commit_sha: b.commit_sha.clone(),
        web_url: koji_web_url(&state, &b),
        build_logs_urls: build_logs_urls(&b),
        srpm_build_id: None,
        run_ids: links.pipeline_ids,
        build_submission_stdout: None,
        // Public: no URLs, paths or principals (jobs::public).
        error_message: b.error_message.as_deref().map(public_error),
        project: ProjectInfo::of_build(&b),
        build_id: b.build_id,
        nvr: b.nvr.clone(),
        updates: links
            .updates
            .into_iter()
            .map(|u| BuildUpdate {
                alias: u.alias,
                url: u.url,
                release: u.release,
            })
            .collect(),
        test_run_ids: links.test_run_ids,
    }))
}

/// `GET /api/koji-builds/groups/{id}` (Packit's `KojiBuildGroup`): the
/// builds of one pipeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct KojiBuildGroup {
    submitted_time: i64,
    run_ids: Vec<i64>,
    build_target_ids: Vec<i64>,
    #[serde(flatten)]
    project: ProjectInfo,
}

/// The Koji builds of a pipeline: the group id is the pipeline's id.
#[utoipa::path(get, path = "/api/koji-builds/groups/{id}", tag = "dashboard",
    params(("id" = i64, Path, description = "The pipeline's id (koji_build_group_id of a run)")),
    responses(
        (status = 200, description = "The group", body = KojiBuildGroup),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody)))]
async fn get_koji_build_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<KojiBuildGroup>, ApiError> {
    let id = path_id(&id)?;
    let not_found = || ApiError::not_found("No info about group stored in DB");
    let pipeline = store::dashboard::pipeline(&state.pool, id)
        .await?
        .filter(|p| p.has_builds)
        .ok_or_else(not_found)?;
    let builds = store::dashboard::koji_builds_of_pipelines(&state.pool, &[id]).await?;
    Ok(Json(KojiBuildGroup {
        submitted_time: epoch(pipeline.created_at),
        run_ids: vec![pipeline.id],
        build_target_ids: builds.iter().map(|b| b.id).collect(),
        project: ProjectInfo::of_pipeline(&pipeline),
    }))
}

// ---------------------------------------------------------- Testing Farm runs

/// One run in `GET /api/testing-farm/results` (Packit's `TestingFarmResults.get`).
#[derive(Debug, Serialize, ToSchema)]
pub struct TestRunListItem {
    /// Our id of the run.
    packit_id: i64,
    /// The Testing Farm request id; null until Testing Farm accepted the request.
    pipeline_id: Option<String>,
    /// The commit tested.
    #[serde(rename = "ref")]
    commit_ref: String,
    /// new, queued, running, passed, failed, skipped, error, unknown, complete or canceled.
    status: String,
    /// The Testing Farm compose, e.g. `Fedora-Rawhide`.
    target: String,
    /// Testing Farm's artifacts page.
    web_url: Option<String>,
    pr_id: Option<i64>,
    submitted_time: i64,
    repo_namespace: Option<String>,
    repo_name: Option<String>,
    project_url: Option<String>,
    /// Ours: the test case a gating run reports under, e.g.
    /// `fedora-ci.koji-build.tier0.functional`; null for pull requests' runs.
    test_case: Option<String>,
    /// Ours: the Bodhi update a gating run tests; null for pull requests' runs.
    update_alias: Option<String>,
}

/// Testing Farm runs, newest first: pull requests' runs and Bodhi updates'
/// gating runs alike.
#[utoipa::path(get, path = "/api/testing-farm/results", tag = "dashboard",
    params(
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "A page of runs; Content-Range: test-results <first>-<last>/*",
            body = Vec<TestRunListItem>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_test_runs(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (per_page, offset) = page_params(&params, &[])?;
    let runs = store::dashboard::test_runs(&state.pool, per_page, offset).await?;
    let items: Vec<TestRunListItem> = runs
        .iter()
        .map(|t| TestRunListItem {
            packit_id: t.id,
            pipeline_id: t.request_id.clone(),
            commit_ref: t.commit_sha.clone(),
            status: test_status(t),
            target: test_target(t),
            web_url: t.artifacts_url.clone(),
            pr_id: t.pr_number,
            submitted_time: epoch(t.submitted_at),
            repo_namespace: Some(t.namespace.clone()),
            repo_name: Some(t.repo.clone()),
            project_url: Some(t.project_url.clone()),
            test_case: t.test_case.clone(),
            update_alias: t.update_alias.clone(),
        })
        .collect();
    Ok(packit_page("test-results", offset, per_page, items, false))
}

/// `GET /api/testing-farm/{id}` (Packit's `TestingFarmResult`).
#[derive(Debug, Serialize, ToSchema)]
pub struct TestRunDetail {
    pipeline_id: Option<String>,
    status: String,
    chroot: String,
    commit_sha: String,
    web_url: Option<String>,
    /// Always empty: Fedora CI tests Koji builds, not Copr builds.
    copr_build_ids: Vec<i64>,
    /// The Koji build tested (its packit_id).
    koji_build_ids: Vec<i64>,
    run_ids: Vec<i64>,
    submitted_time: i64,
    #[serde(flatten)]
    project: ProjectInfo,
    /// Ours: as in the list.
    test_case: Option<String>,
    /// Ours: as in the list.
    update_alias: Option<String>,
    /// Ours: the Fedora CI messages a gating run wrote for the bus, in the
    /// order they are published; empty for pull requests' runs.
    ci_messages: Vec<CiMessageItem>,
}

/// A Fedora CI message of a gating run, without its body.
#[derive(Debug, Serialize, ToSchema)]
pub struct CiMessageItem {
    /// The message id it is published with, a UUID.
    message_id: String,
    /// e.g. `org.centos.prod.ci.koji-build.test.complete`.
    topic: String,
    /// The topic's last word: queued, running, complete or error.
    state: String,
    /// When it was written, epoch seconds.
    created_at: i64,
    /// When the broker confirmed it, epoch seconds; null while it waits.
    published_at: Option<i64>,
    /// How many times publishing it was tried.
    attempts: i32,
    /// Why the last try failed, if it did.
    last_error: Option<String>,
}

/// One Testing Farm run.
#[utoipa::path(get, path = "/api/testing-farm/{id}", tag = "dashboard",
    params(("id" = i64, Path, description = "The run's packit_id")),
    responses(
        (status = 200, description = "The run", body = TestRunDetail),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody)))]
async fn get_test_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TestRunDetail>, ApiError> {
    let id = path_id(&id)?;
    // Packit says "build" here too.
    let t = store::dashboard::test_run(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("No info about build stored in DB"))?;
    let messages = store::outbox::of_test_run(&state.pool, id).await?;
    Ok(Json(TestRunDetail {
        pipeline_id: t.request_id.clone(),
        status: test_status(&t),
        chroot: test_target(&t),
        commit_sha: t.commit_sha.clone(),
        web_url: t.artifacts_url.clone(),
        copr_build_ids: Vec::new(),
        koji_build_ids: t.koji_build_id.into_iter().collect(),
        run_ids: vec![t.pipeline_id],
        submitted_time: epoch(t.submitted_at),
        project: ProjectInfo::of_test_run(&t),
        test_case: t.test_case.clone(),
        update_alias: t.update_alias.clone(),
        ci_messages: messages
            .into_iter()
            .map(|m| CiMessageItem {
                message_id: m.message_id.to_string(),
                state: m.topic.rsplit('.').next().unwrap_or_default().to_owned(),
                topic: m.topic,
                created_at: epoch(m.created_at),
                published_at: m.published_at.map(epoch),
                attempts: m.attempts,
                last_error: m.last_error.as_deref().map(public_error),
            })
            .collect(),
    }))
}

/// `GET /api/testing-farm/groups/{id}` (Packit's `TestingFarmGroup`): the
/// runs of one pipeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestRunGroup {
    submitted_time: i64,
    run_ids: Vec<i64>,
    test_target_ids: Vec<i64>,
    #[serde(flatten)]
    project: ProjectInfo,
}

/// The Testing Farm runs of a pipeline: the group id is the pipeline's id.
#[utoipa::path(get, path = "/api/testing-farm/groups/{id}", tag = "dashboard",
    params(("id" = i64, Path, description = "The pipeline's id (test_run_group_id of a run)")),
    responses(
        (status = 200, description = "The group", body = TestRunGroup),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody)))]
async fn get_test_run_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TestRunGroup>, ApiError> {
    let id = path_id(&id)?;
    let not_found = || ApiError::not_found("No info about group stored in DB");
    let pipeline = store::dashboard::pipeline(&state.pool, id)
        .await?
        .filter(|p| p.has_test_runs)
        .ok_or_else(not_found)?;
    let runs = store::dashboard::test_runs_of_pipelines(&state.pool, &[id]).await?;
    Ok(Json(TestRunGroup {
        submitted_time: epoch(pipeline.created_at),
        run_ids: vec![pipeline.id],
        test_target_ids: runs.iter().map(|t| t.id).collect(),
        project: ProjectInfo::of_pipeline(&pipeline),
    }))
}

// ----------------------------------------------------------------------- Runs

/// A build or test of a run: `{packit_id, target, status}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunTarget {
    packit_id: i64,
    target: String,
    status: String,
}

/// The SRPM build of a Packit run; Fedora CI has none.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunSrpm {
    packit_id: i64,
    status: String,
}

/// One run in `GET /api/runs` and `GET /api/runs/merged/{id}` (Packit's
/// `process_runs`): a pipeline with its builds and tests.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunItem {
    /// The pipeline's id.
    merged_run_id: i64,
    /// Always null.
    srpm: Option<RunSrpm>,
    /// Always empty.
    copr: Vec<RunTarget>,
    koji: Vec<RunTarget>,
    test_run: Vec<RunTarget>,
    /// Always empty.
    propose_downstream: Vec<RunTarget>,
    /// Always empty.
    pull_from_upstream: Vec<RunTarget>,
    /// Always empty.
    bodhi_update: Vec<RunTarget>,
    /// Always empty.
    vm_image_build: Vec<RunTarget>,
    /// When the pipeline was created, epoch seconds.
    time_submitted: i64,
    trigger: ProjectInfo,
    #[serde(flatten)]
    pipeline: PipelineKind,
}

/// What kind of pipeline a run is, and what started it: our extension of a
/// run, since Packit's `trigger` is the project info.
#[derive(Debug, Serialize, ToSchema)]
pub struct PipelineKind {
    /// `pull-request` (a pull request's head commit) or `update` (one build
    /// of a Bodhi update in one round of testing).
    kind: String,
    /// What started it: `pull_request`, or for an update `bodhi-update` (the
    /// first round) or `bodhi-retrigger`.
    pipeline_trigger: String,
    /// The Bodhi update of an update's pipeline; null for pull requests.
    update_alias: Option<String>,
}

impl PipelineKind {
    fn of(p: &PipelineRecord) -> Self {
        PipelineKind {
            kind: p.kind.clone(),
            pipeline_trigger: p.trigger.clone(),
            update_alias: p.update_alias.clone(),
        }
    }
}

async fn run_items(
    state: &AppState,
    pipelines: &[PipelineRecord],
) -> Result<Vec<RunItem>, ApiError> {
    let ids: Vec<i64> = pipelines.iter().map(|p| p.id).collect();
    let builds = store::dashboard::koji_builds_of_pipelines(&state.pool, &ids).await?;
    let tests = store::dashboard::test_runs_of_pipelines(&state.pool, &ids).await?;
    Ok(pipelines
        .iter()
        .map(|p| RunItem {
            merged_run_id: p.id,
            srpm: None,
            copr: Vec::new(),
            koji: builds
                .iter()
                .filter(|b| b.pipeline_id == Some(p.id))
                .map(|b| RunTarget {
                    packit_id: b.id,
                    target: b.target.clone(),
                    status: b.status.clone(),
                })
                .collect(),
            test_run: tests
                .iter()
                .filter(|t| t.pipeline_id == p.id)
                .map(|t| RunTarget {
                    packit_id: t.id,
                    target: test_target(t),
                    status: test_status(t),
                })
                .collect(),
            propose_downstream: Vec::new(),
            pull_from_upstream: Vec::new(),
            bodhi_update: Vec::new(),
            vm_image_build: Vec::new(),
            time_submitted: epoch(p.created_at),
            trigger: ProjectInfo::of_pipeline(p),
            pipeline: PipelineKind::of(p),
        })
        .collect())
}

/// Runs (our pipelines: one per pull-request head commit, and one per build
/// of a Bodhi update per round of testing), newest first.
#[utoipa::path(get, path = "/api/runs", tag = "dashboard",
    params(
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "A page of runs; Content-Range: runs <first>-<last>/*",
            body = Vec<RunItem>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_runs(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (per_page, offset) = page_params(&params, &[])?;
    let pipelines = store::dashboard::pipelines(&state.pool, per_page, offset).await?;
    let items = run_items(&state, &pipelines).await?;
    Ok(packit_page("runs", offset, per_page, items, false))
}

/// One run with its builds and tests.
#[utoipa::path(get, path = "/api/runs/merged/{id}", tag = "dashboard",
    params(("id" = i64, Path, description = "The pipeline's id (merged_run_id)")),
    responses(
        (status = 200, description = "The run", body = RunItem),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody)))]
async fn get_merged_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RunItem>, ApiError> {
    let id = path_id(&id)?;
    let pipeline = store::dashboard::pipeline(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("No run has been found in DB"))?;
    let mut items = run_items(&state, std::slice::from_ref(&pipeline)).await?;
    items
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("No run has been found in DB"))
}

/// `GET /api/runs/{id}` (Packit's `Run`).
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    run_id: i64,
    trigger: ProjectInfo,
    /// Always null.
    srpm_build_id: Option<i64>,
    /// Always null.
    copr_build_group_id: Option<i64>,
    /// The pipeline's id when it has Koji builds (see /api/koji-builds/groups/{id}).
    koji_build_group_id: Option<i64>,
    /// The pipeline's id when it has test runs (see /api/testing-farm/groups/{id}).
    test_run_group_id: Option<i64>,
    /// Always null.
    bodhi_update_group_id: Option<i64>,
    #[serde(flatten)]
    pipeline: PipelineKind,
}

/// One run (pipeline).
#[utoipa::path(get, path = "/api/runs/{id}", tag = "dashboard",
    params(("id" = i64, Path, description = "The pipeline's id")),
    responses(
        (status = 200, description = "The run", body = RunDetail),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody)))]
async fn get_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>, ApiError> {
    let id = path_id(&id)?;
    let p = store::dashboard::pipeline(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("No run has been found in DB"))?;
    Ok(Json(RunDetail {
        run_id: p.id,
        trigger: ProjectInfo::of_pipeline(&p),
        srpm_build_id: None,
        copr_build_group_id: None,
        koji_build_group_id: p.has_builds.then_some(p.id),
        test_run_group_id: p.has_test_runs.then_some(p.id),
        bodhi_update_group_id: None,
        pipeline: PipelineKind::of(&p),
    }))
}
