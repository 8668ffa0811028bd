//! Bodhi updates and their gating runs (SPEC F6): ours, beside the endpoints
//! the Packit dashboard reads and in their conventions (`page`/`per_page`,
//! `206 Partial Content` with `Content-Range`, epoch seconds, the same ids).
//! An update is shown with its official builds and its rounds of testing:
//! each round is one build's pipeline, with its test runs and how far their
//! Fedora CI messages got to the bus.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Serialize;
use store::dashboard::{GatingTestRecord, RoundRecord, UpdateBuildRecord, UpdateRecord};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dashboard::{epoch, packit_page, page_params};
use super::{ApiError, AppState, ErrorBody};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_updates))
        .routes(routes!(get_update))
}

/// A Bodhi update whose builds were tested.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpdateItem {
    /// Bodhi's alias, e.g. `FEDORA-2021-53a7dfa185`.
    alias: String,
    /// The update's page on Bodhi.
    url: Option<String>,
    /// The release as Bodhi names it, e.g. `f34`.
    release: Option<String>,
    /// When Bodhi first announced it, epoch seconds.
    submitted_time: i64,
    /// When Bodhi last announced it (a re-trigger, say), epoch seconds.
    updated_time: i64,
    builds: Vec<UpdateBuild>,
    /// Oldest first: each build of the update in each round of testing.
    rounds: Vec<UpdateRound>,
}

/// An official build of an update.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpdateBuild {
    /// Our id of the build (see /api/koji-builds/{id}).
    packit_id: i64,
    /// Koji's build id.
    build_id: Option<i64>,
    /// Koji's task id, as a string like in /api/koji-builds.
    task_id: Option<String>,
    nvr: Option<String>,
    /// The dist-git commit it was built from.
    commit_sha: Option<String>,
    /// e.g. `https://src.fedoraproject.org/rpms/gdb`
    project_url: Option<String>,
}

/// One build of an update in one round of testing: a pipeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpdateRound {
    /// The pipeline's id (see /api/runs/{id}).
    run_id: i64,
    /// `bodhi-update` (Bodhi's first announcement) or `bodhi-retrigger`.
    trigger: String,
    /// Our id of the build tested.
    koji_build_id: Option<i64>,
    nvr: Option<String>,
    /// The release the build is tested on, e.g. `f34` or `rawhide`.
    release: Option<String>,
    /// When the round was decided, epoch seconds.
    submitted_time: i64,
    tests: Vec<UpdateTest>,
}

/// A gating test run.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpdateTest {
    /// Our id of the run (see /api/testing-farm/{id}).
    packit_id: i64,
    /// e.g. `installability`.
    test_name: String,
    /// The test case it reports under, e.g. `fedora-ci.koji-build.installability.functional`.
    test_case: Option<String>,
    /// new, queued, running, complete, error or canceled.
    state: String,
    /// Once complete: passed, failed, skipped, unknown or error.
    result: Option<String>,
    /// Testing Farm's artifacts page.
    web_url: Option<String>,
    /// Its Fedora CI messages the broker confirmed.
    messages_published: i64,
    /// Its Fedora CI messages waiting in the outbox.
    messages_pending: i64,
}

/// The updates with their builds and rounds, in as many reads as there are
/// kinds of rows, whatever the number of updates.
async fn update_items(
    state: &AppState,
    updates: Vec<UpdateRecord>,
) -> Result<Vec<UpdateItem>, ApiError> {
    let ids: Vec<i64> = updates.iter().map(|u| u.id).collect();
    let builds = store::dashboard::builds_of_updates(&state.pool, &ids).await?;
    let rounds = store::dashboard::rounds_of_updates(&state.pool, &ids).await?;
    let round_ids: Vec<i64> = rounds.iter().map(|r| r.id).collect();
    let mut tests: HashMap<i64, Vec<GatingTestRecord>> = HashMap::new();
    for test in store::dashboard::gating_tests_of_pipelines(&state.pool, &round_ids).await? {
        tests.entry(test.pipeline_id).or_default().push(test);
    }
    Ok(updates
        .into_iter()
        .map(|u| UpdateItem {
            builds: builds
                .iter()
                .filter(|b| b.update_id == u.id)
                .map(update_build)
                .collect(),
            rounds: rounds
                .iter()
                .filter(|r| r.update_id == u.id)
                .map(|r| update_round(r, tests.remove(&r.id).unwrap_or_default()))
                .collect(),
            alias: u.alias,
            url: u.url,
            release: u.release,
            submitted_time: epoch(u.created_at),
            updated_time: epoch(u.updated_at),
        })
        .collect())
}

fn update_build(b: &UpdateBuildRecord) -> UpdateBuild {
    UpdateBuild {
        packit_id: b.id,
        build_id: b.build_id,
        task_id: b.task_id.map(|t| t.to_string()),
        nvr: b.nvr.clone(),
        commit_sha: b.commit_sha.clone(),
        project_url: b.project_url.clone(),
    }
}

fn update_round(r: &RoundRecord, tests: Vec<GatingTestRecord>) -> UpdateRound {
    UpdateRound {
        run_id: r.id,
        trigger: r.trigger.clone(),
        koji_build_id: r.koji_build_id,
        nvr: r.nvr.clone(),
        release: r.release.clone(),
        submitted_time: epoch(r.created_at),
        tests: tests
            .into_iter()
            .map(|t| UpdateTest {
                packit_id: t.id,
                test_name: t.test_name,
                test_case: t.test_case,
                state: t.state,
                result: t.result,
                web_url: t.artifacts_url,
                messages_published: t.messages_published,
                messages_pending: t.messages_pending,
            })
            .collect(),
    }
}

/// Bodhi updates whose builds were tested, newest first.
#[utoipa::path(get, path = "/api/updates", tag = "dashboard",
    params(
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "A page of updates; Content-Range: updates <first>-<last>/*",
            body = Vec<UpdateItem>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_updates(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (per_page, offset) = page_params(&params, &[])?;
    let updates = store::dashboard::updates(&state.pool, per_page, offset).await?;
    let items = update_items(&state, updates).await?;
    Ok(packit_page("updates", offset, per_page, items, false))
}

/// One Bodhi update, by its alias.
#[utoipa::path(get, path = "/api/updates/{alias}", tag = "dashboard",
    params(("alias" = String, Path, description = "Bodhi's alias, e.g. FEDORA-2021-53a7dfa185")),
    responses(
        (status = 200, description = "The update", body = UpdateItem),
        (status = 404, description = "No such update", body = ErrorBody)))]
async fn get_update(
    State(state): State<AppState>,
    Path(alias): Path<String>,
) -> Result<Json<UpdateItem>, ApiError> {
    let not_found = || ApiError::not_found(format!("no update {alias:?} has been tested"));
    // PostgreSQL's text holds no NUL, so no alias has one; the database
    // would refuse to compare it.
    if alias.contains('\0') {
        return Err(not_found());
    }
    let update = store::dashboard::update(&state.pool, &alias)
        .await?
        .ok_or_else(not_found)?;
    update_items(&state, vec![update])
        .await?
        .pop()
        .map(Json)
        .ok_or_else(not_found)
}
