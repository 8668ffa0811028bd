//! The Packit dashboard's pages of Packit features that Fedora CI does not
//! have, answered as Packit Service answers when it has none: each list is
//! an empty page (`206 Partial Content` with `[]` and Packit's
//! `Content-Range`; Packit's lists of these answer `206` even when empty),
//! and each id is `404` with Packit's sentence, which the dashboard shows as
//! "not found". So its job pages render, empty, instead of failing.
//!
//! - Copr builds and SRPM builds (`copr_builds.py`, `srpm_builds.py`):
//!   Fedora CI builds in Koji from dist-git, without Copr or an SRPM step.
//! - Koji tag requests (`koji_tag_requests.py`): Packit's tagging of builds
//!   into side tags; Fedora CI tags nothing.
//! - Bodhi updates (`bodhi_updates.py`): Packit lists the Bodhi updates *it
//!   created* (a job per branch, its status being whether creating the update
//!   worked). Fedora CI creates none; it tests updates others created, and
//!   those are at `/api/updates` with their rounds of gating tests. Shown
//!   here, they would read as updates we made.
//! - Log Detective runs and groups (`logdetective.py`): issue 17 brings Log
//!   Detective analyses of failed scratch builds; until then there are none.
//! - OpenScanHub scans (`osh_scans.py`): Packit scans Copr builds; we have none.
//! - Propose downstream and pull from upstream (`propose_downstream.py`,
//!   `pull_from_upstream.py`): Packit's release syncing into dist-git;
//!   Fedora CI only tests what is proposed there.
//!
//! Any id is a 404, one that is not a number too: Packit's `<int:id>` routes
//! answer 404 for it as well, and here nothing exists to be named wrongly.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dashboard::{packit_page, page_params};
use super::{ApiError, AppState, ErrorBody};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_copr_builds))
        .routes(routes!(get_copr_build))
        .routes(routes!(list_srpm_builds))
        .routes(routes!(get_srpm_build))
        .routes(routes!(list_koji_tag_requests))
        .routes(routes!(get_koji_tag_request))
        .routes(routes!(list_bodhi_updates))
        .routes(routes!(get_bodhi_update))
        .routes(routes!(list_log_detective_runs))
        .routes(routes!(get_log_detective_run))
        .routes(routes!(get_log_detective_group))
        .routes(routes!(list_openscanhub_scans))
        .routes(routes!(get_openscanhub_scan))
        .routes(routes!(list_propose_downstreams))
        .routes(routes!(get_propose_downstream))
        .routes(routes!(list_pull_from_upstreams))
        .routes(routes!(get_pull_from_upstream))
}

/// An empty page of `kind`, after checking `page` and `per_page` as every
/// list does.
fn empty_page(kind: &str, params: &HashMap<String, String>) -> Result<Response, ApiError> {
    let (per_page, offset) = page_params(params, &[])?;
    Ok(packit_page(
        kind,
        offset,
        per_page,
        Vec::<serde_json::Value>::new(),
        false,
    ))
}

type Params = Query<HashMap<String, String>>;

/// Copr builds: always none, since Fedora CI builds in Koji.
#[utoipa::path(get, path = "/api/copr-builds", tag = "dashboard",
    params(
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "Always empty; Content-Range: copr-builds <first>-<last>/*",
            body = Vec<serde_json::Value>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_copr_builds(Query(params): Params) -> Result<Response, ApiError> {
    empty_page("copr-builds", &params)
}

/// A Copr build: none exists.
#[utoipa::path(get, path = "/api/copr-builds/{id}", tag = "dashboard",
    params(("id" = i64, Path, description = "Packit's id of a Copr build")),
    responses(
        (status = 404, description = "No such build: Fedora CI has no Copr builds", body = ErrorBody)))]
async fn get_copr_build(Path(_id): Path<String>) -> ApiError {
    ApiError::not_found("No info about build stored in DB")
}

/// SRPM builds: always none, since Fedora CI builds from dist-git.
#[utoipa::path(get, path = "/api/srpm-builds", tag = "dashboard",
    params(
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "Always empty; Content-Range: srpm-builds <first>-<last>/*",
            body = Vec<serde_json::Value>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_srpm_builds(Query(params): Params) -> Result<Response, ApiError> {
    empty_page("srpm-builds", &params)
}

/// An SRPM build: none exists.
#[utoipa::path(get, path = "/api/srpm-builds/{id}", tag = "dashboard",
    params(("id" = i64, Path, description = "Packit's id of an SRPM build")),
    responses(
        (status = 404, description = "No such build: Fedora CI has no SRPM builds", body = ErrorBody)))]
async fn get_srpm_build(Path(_id): Path<String>) -> ApiError {
    ApiError::not_found("No info about build stored in DB")
}

/// Koji tagging requests: always none, since Fedora CI tags no builds.
#[utoipa::path(get, path = "/api/koji-tag-requests", tag = "dashboard",
    params(
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "Always empty; Content-Range: koji-tag-requests <first>-<last>/*",
            body = Vec<serde_json::Value>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_koji_tag_requests(Query(params): Params) -> Result<Response, ApiError> {
    empty_page("koji-tag-requests", &params)
}

/// A Koji tagging request: none exists.
#[utoipa::path(get, path = "/api/koji-tag-requests/{id}", tag = "dashboard",
    params(("id" = i64, Path, description = "Packit's id of a tagging request")),
    responses(
        (status = 404, description = "No such request: Fedora CI tags no builds", body = ErrorBody)))]
async fn get_koji_tag_request(Path(_id): Path<String>) -> ApiError {
    ApiError::not_found("No info about tagging request stored in DB")
}

/// Bodhi updates Packit created: always none. The updates whose builds
/// Fedora CI tested are at `/api/updates`.
#[utoipa::path(get, path = "/api/bodhi-updates", tag = "dashboard",
    params(
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "Always empty (Fedora CI creates no updates; the ones it tested are at /api/updates); Content-Range: bodhi-updates <first>-<last>/*",
            body = Vec<serde_json::Value>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_bodhi_updates(Query(params): Params) -> Result<Response, ApiError> {
    empty_page("bodhi-updates", &params)
}

/// A Bodhi update Packit created: none exists.
#[utoipa::path(get, path = "/api/bodhi-updates/{id}", tag = "dashboard",
    params(("id" = i64, Path, description = "Packit's id of an update it created")),
    responses(
        (status = 404, description = "No such update: Fedora CI creates none (see /api/updates/{alias})",
            body = ErrorBody)))]
async fn get_bodhi_update(Path(_id): Path<String>) -> ApiError {
    ApiError::not_found("No info about update stored in DB")
}

/// Log Detective runs: none yet (issue 17 brings them).
#[utoipa::path(get, path = "/api/log-detective", tag = "dashboard",
    params(
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "Always empty for now; Content-Range: log-detective-results <first>-<last>/*",
            body = Vec<serde_json::Value>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_log_detective_runs(Query(params): Params) -> Result<Response, ApiError> {
    empty_page("log-detective-results", &params)
}

/// A Log Detective run: none exists yet.
#[utoipa::path(get, path = "/api/log-detective/{id}", tag = "dashboard",
    params(("id" = i64, Path, description = "Packit's id of a Log Detective run")),
    responses(
        (status = 404, description = "No such run", body = ErrorBody)))]
async fn get_log_detective_run(Path(_id): Path<String>) -> ApiError {
    ApiError::not_found("No info about Log Detective run stored in DB")
}

/// A group of Log Detective runs: none exists yet.
#[utoipa::path(get, path = "/api/log-detective/groups/{id}", tag = "dashboard",
    params(("id" = i64, Path, description = "Packit's id of a Log Detective run group")),
    responses(
        (status = 404, description = "No such group", body = ErrorBody)))]
async fn get_log_detective_group(Path(_id): Path<String>) -> ApiError {
    ApiError::not_found("No info about group stored in DB")
}

/// OpenScanHub scans: always none, since Packit scans Copr builds.
#[utoipa::path(get, path = "/api/openscanhub-scans", tag = "dashboard",
    params(
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "Always empty; Content-Range: openscanhub-scans <first>-<last>/*",
            body = Vec<serde_json::Value>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_openscanhub_scans(Query(params): Params) -> Result<Response, ApiError> {
    empty_page("openscanhub-scans", &params)
}

/// An OpenScanHub scan: none exists.
#[utoipa::path(get, path = "/api/openscanhub-scans/{id}", tag = "dashboard",
    params(("id" = i64, Path, description = "Packit's id of a scan")),
    responses(
        (status = 404, description = "No such scan", body = ErrorBody)))]
async fn get_openscanhub_scan(Path(_id): Path<String>) -> ApiError {
    ApiError::not_found("No info about scan stored in DB")
}

/// Propose-downstream runs: always none, since Fedora CI syncs no releases.
#[utoipa::path(get, path = "/api/propose-downstream", tag = "dashboard",
    params(
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "Always empty; Content-Range: propose-downstreams <first>-<last>/*",
            body = Vec<serde_json::Value>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_propose_downstreams(Query(params): Params) -> Result<Response, ApiError> {
    empty_page("propose-downstreams", &params)
}

/// A propose-downstream target: none exists.
#[utoipa::path(get, path = "/api/propose-downstream/{id}", tag = "dashboard",
    params(("id" = i64, Path, description = "Packit's id of a propose-downstream target")),
    responses(
        (status = 404, description = "No such target", body = ErrorBody)))]
async fn get_propose_downstream(Path(_id): Path<String>) -> ApiError {
    ApiError::not_found("No info about propose downstream target stored in DB")
}

/// Pull-from-upstream runs: always none, since Fedora CI syncs no releases.
#[utoipa::path(get, path = "/api/pull-from-upstream", tag = "dashboard",
    params(
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "Always empty; Content-Range: pull-from-upstreams <first>-<last>/*",
            body = Vec<serde_json::Value>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_pull_from_upstreams(Query(params): Params) -> Result<Response, ApiError> {
    empty_page("pull-from-upstreams", &params)
}

/// A pull-from-upstream target: none exists.
#[utoipa::path(get, path = "/api/pull-from-upstream/{id}", tag = "dashboard",
    params(("id" = i64, Path, description = "Packit's id of a pull-from-upstream target")),
    responses(
        (status = 404, description = "No such target", body = ErrorBody)))]
async fn get_pull_from_upstream(Path(_id): Path<String>) -> ApiError {
    ApiError::not_found("No info about pull from upstream target stored in DB")
}
