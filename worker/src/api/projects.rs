//! The project pages of the Packit dashboard, with Packit Service's paths,
//! fields and conventions (`packit_service/service/api/projects.py`): the
//! projects we know (every dist-git project a message named), those of a
//! forge and of a namespace, one project, and its pull requests, branches,
//! releases and issues.
//!
//! A project is named as in the dashboard's paths: the forge's host
//! (`src.fedoraproject.org`, Packit's `instance_url`), the namespace (`rpms`)
//! and the repository (`optee_os`). As in Packit, an unknown project is a 404
//! only where one project is asked for; its lists are empty (`200` with
//! `[]`). Lists answer `206` with `Content-Range: git-project<s|-prs|...>`,
//! and `200` when the page is empty, as Packit's project lists do.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Serialize;
use store::dashboard::KojiBuildRecord;
use store::projects::ProjectRecord;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dashboard::{koji_web_url, packit_page, page_params, test_status, test_target};
use super::{ApiError, AppState, ErrorBody};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects))
        .routes(routes!(list_forge_projects))
        .routes(routes!(list_namespace_projects))
        .routes(routes!(get_project))
        .routes(routes!(list_project_prs))
        .routes(routes!(list_project_branches))
        .routes(routes!(list_project_releases))
        .routes(routes!(list_project_issues))
}

/// A project (Packit's `project_info` of `ProjectsList` and `ProjectInfo`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectItem {
    /// e.g. `rpms`
    namespace: String,
    /// e.g. `optee_os`
    repo_name: String,
    /// e.g. `https://src.fedoraproject.org/rpms/optee_os`
    project_url: String,
    /// The pull requests we recorded, open, closed or merged.
    prs_handled: i64,
    /// The branches we recorded pushes to.
    branches_handled: i64,
    /// Always 0: dist-git projects have no releases Fedora CI acts on.
    releases_handled: i64,
    /// Always 0: Fedora CI acts on no issues.
    issues_handled: i64,
}

impl From<ProjectRecord> for ProjectItem {
    fn from(p: ProjectRecord) -> Self {
        ProjectItem {
            namespace: p.namespace,
            repo_name: p.repo,
            project_url: p.url,
            prs_handled: p.pull_requests,
            branches_handled: p.branches,
            releases_handled: 0,
            issues_handled: 0,
        }
    }
}

async fn project_page(
    state: &AppState,
    forge: Option<&str>,
    namespace: Option<&str>,
    params: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let (per_page, offset) = page_params(params, &[])?;
    let projects =
        store::projects::projects(&state.pool, forge, namespace, per_page, offset).await?;
    let items: Vec<ProjectItem> = projects.into_iter().map(ProjectItem::from).collect();
    Ok(packit_page("git-projects", offset, per_page, items, true))
}

/// The projects we know, by namespace and name.
#[utoipa::path(get, path = "/api/projects", tag = "dashboard",
    params(
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "A page of projects; Content-Range: git-projects <first>-<last>/*",
            body = Vec<ProjectItem>),
        (status = 200, description = "No projects on this page, as in Packit", body = Vec<ProjectItem>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_projects(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    project_page(&state, None, None, &params).await
}

/// The projects of one forge, by namespace and name.
#[utoipa::path(get, path = "/api/projects/{forge}", tag = "dashboard",
    params(
        ("forge" = String, Path, description = "The forge's host, e.g. src.fedoraproject.org"),
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "A page of projects; Content-Range: git-projects <first>-<last>/*",
            body = Vec<ProjectItem>),
        (status = 200, description = "No projects on this page (or no such forge), as in Packit",
            body = Vec<ProjectItem>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_forge_projects(
    State(state): State<AppState>,
    Path(forge): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    project_page(&state, Some(&forge), None, &params).await
}

/// The projects of one namespace of a forge, by name.
#[utoipa::path(get, path = "/api/projects/{forge}/{namespace}", tag = "dashboard",
    params(
        ("forge" = String, Path, description = "The forge's host, e.g. src.fedoraproject.org"),
        ("namespace" = String, Path, description = "e.g. rpms"),
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "A page of projects; Content-Range: git-projects <first>-<last>/*",
            body = Vec<ProjectItem>),
        (status = 200, description = "No projects on this page (or no such namespace), as in Packit",
            body = Vec<ProjectItem>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_namespace_projects(
    State(state): State<AppState>,
    Path((forge, namespace)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    project_page(&state, Some(&forge), Some(&namespace), &params).await
}

/// One project.
#[utoipa::path(get, path = "/api/projects/{forge}/{namespace}/{repo}", tag = "dashboard",
    params(
        ("forge" = String, Path, description = "The forge's host, e.g. src.fedoraproject.org"),
        ("namespace" = String, Path, description = "e.g. rpms"),
        ("repo" = String, Path, description = "e.g. optee_os"),
    ),
    responses(
        (status = 200, description = "The project", body = ProjectItem),
        (status = 400, description = "A value the database cannot take (a NUL character)", body = ErrorBody),
        (status = 404, description = "No such project", body = ErrorBody)))]
async fn get_project(
    State(state): State<AppState>,
    Path((forge, namespace, repo)): Path<(String, String, String)>,
) -> Result<Json<ProjectItem>, ApiError> {
    store::projects::project(&state.pool, &forge, &namespace, &repo)
        .await?
        .map(|p| Json(ProjectItem::from(p)))
        .ok_or_else(|| ApiError::not_found("No info about project stored in DB"))
}

// -------------------------------------------- what a pull request or branch had

/// A Copr build of a pull request or branch; Fedora CI has none.
#[derive(Debug, Serialize, ToSchema)]
pub struct CoprBuildShort {
    build_id: String,
    chroot: String,
    status: String,
    web_url: Option<String>,
}

/// A Koji build of a pull request or branch.
#[derive(Debug, Serialize, ToSchema)]
pub struct KojiBuildShort {
    task_id: Option<String>,
    chroot: String,
    status: String,
    web_url: Option<String>,
}

/// An SRPM build of a pull request or branch; Fedora CI has none.
#[derive(Debug, Serialize, ToSchema)]
pub struct SrpmBuildShort {
    srpm_build_id: i64,
    status: String,
    log_url: String,
}

/// A Testing Farm run of a pull request or branch.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestRunShort {
    pipeline_id: Option<String>,
    chroot: String,
    status: String,
    web_url: Option<String>,
}

fn koji_build_short(state: &AppState, b: &KojiBuildRecord) -> KojiBuildShort {
    KojiBuildShort {
        task_id: b.task_id.map(|t| t.to_string()),
        chroot: b.target.clone(),
        status: b.status.clone(),
        web_url: koji_web_url(state, b),
    }
}

fn test_run_short(t: &store::dashboard::TestRunRecord) -> TestRunShort {
    TestRunShort {
        pipeline_id: t.request_id.clone(),
        chroot: test_target(t),
        status: test_status(t),
        web_url: t.artifacts_url.clone(),
    }
}

// ------------------------------------------------------------- pull requests

/// One pull request in `GET /api/projects/{forge}/{namespace}/{repo}/prs`
/// (Packit's `ProjectsPRs`), with the builds and tests of all its commits.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectPullRequest {
    pr_id: i64,
    /// Always empty: Copr builds.
    builds: Vec<CoprBuildShort>,
    koji_builds: Vec<KojiBuildShort>,
    /// Always empty.
    srpm_builds: Vec<SrpmBuildShort>,
    tests: Vec<TestRunShort>,
}

/// The pull requests of a project, highest number first.
#[utoipa::path(get, path = "/api/projects/{forge}/{namespace}/{repo}/prs", tag = "dashboard",
    params(
        ("forge" = String, Path, description = "The forge's host, e.g. src.fedoraproject.org"),
        ("namespace" = String, Path, description = "e.g. rpms"),
        ("repo" = String, Path, description = "e.g. optee_os"),
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "A page of pull requests; Content-Range: git-project-prs <first>-<last>/*",
            body = Vec<ProjectPullRequest>),
        (status = 200, description = "No pull requests on this page (or no such project), as in Packit",
            body = Vec<ProjectPullRequest>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_project_prs(
    State(state): State<AppState>,
    Path((forge, namespace, repo)): Path<(String, String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (per_page, offset) = page_params(&params, &[])?;
    let prs = store::dashboard::project_pull_requests(
        &state.pool,
        &forge,
        &namespace,
        &repo,
        per_page,
        offset,
    )
    .await?;
    let pipeline_ids: Vec<i64> = prs.iter().flat_map(|pr| pr.pipeline_ids.clone()).collect();
    let builds = store::dashboard::koji_builds_of_pipelines(&state.pool, &pipeline_ids).await?;
    let tests = store::dashboard::test_runs_of_pipelines(&state.pool, &pipeline_ids).await?;
    let items: Vec<ProjectPullRequest> = prs
        .iter()
        .map(|pr| ProjectPullRequest {
            pr_id: pr.number,
            builds: Vec::new(),
            koji_builds: builds
                .iter()
                .filter(|b| b.pipeline_id.is_some_and(|p| pr.pipeline_ids.contains(&p)))
                .map(|b| koji_build_short(&state, b))
                .collect(),
            srpm_builds: Vec::new(),
            tests: tests
                .iter()
                .filter(|t| pr.pipeline_ids.contains(&t.pipeline_id))
                .map(test_run_short)
                .collect(),
        })
        .collect();
    Ok(packit_page(
        "git-project-prs",
        offset,
        per_page,
        items,
        true,
    ))
}

// ------------------------------------------------------------------ branches

/// One branch in `GET /api/projects/{forge}/{namespace}/{repo}/branches`
/// (Packit's `ProjectBranches`): what was built and tested of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectBranch {
    /// The branch's name, e.g. `rawhide`, `f43`.
    branch: String,
    /// Always empty: Copr builds.
    builds: Vec<CoprBuildShort>,
    /// The official Koji builds made for the branch or of the commits pushed to it.
    koji_builds: Vec<KojiBuildShort>,
    /// Always empty.
    srpm_builds: Vec<SrpmBuildShort>,
    /// The gating runs (SPEC F6) that tested those builds.
    tests: Vec<TestRunShort>,
}

/// Whether an official build of a commit pushed to `branch` belongs to the
/// branch: a build for a release's target (`f43-candidate`, `rawhide`,
/// `epel10.1-candidate`) belongs to that release's branch only; a build for
/// any other target (a side tag) to every branch its commit was pushed to.
fn built_for_branch(target: &str, branch: &str) -> bool {
    use checkers::naming::{Release, display_branch};
    let release = target.strip_suffix("-candidate").unwrap_or(target);
    match Release::from_branch(release) {
        Some(_) => display_branch(release) == display_branch(branch),
        None => true,
    }
}

/// The branches of a project that we recorded pushes to or official builds
/// for, the most recently active first. Packit lists the branches it ran jobs
/// for on push; Fedora CI runs none on push, but records every push (SPEC F7)
/// and every official Koji build with its commit and branch, and tests
/// official builds in Bodhi updates (F6): so each branch comes with its
/// official builds and the gating runs of those builds.
#[utoipa::path(get, path = "/api/projects/{forge}/{namespace}/{repo}/branches", tag = "dashboard",
    params(
        ("forge" = String, Path, description = "The forge's host, e.g. src.fedoraproject.org"),
        ("namespace" = String, Path, description = "e.g. rpms"),
        ("repo" = String, Path, description = "e.g. optee_os"),
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 206, description = "A page of branches; Content-Range: git-project-branches <first>-<last>/*",
            body = Vec<ProjectBranch>),
        (status = 200, description = "No branches on this page (or no such project), as in Packit",
            body = Vec<ProjectBranch>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_project_branches(
    State(state): State<AppState>,
    Path((forge, namespace, repo)): Path<(String, String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (per_page, offset) = page_params(&params, &[])?;
    let Some(project) = store::projects::project(&state.pool, &forge, &namespace, &repo).await?
    else {
        return Ok(packit_page(
            "git-project-branches",
            offset,
            per_page,
            Vec::<ProjectBranch>::new(),
            true,
        ));
    };
    let branches = store::projects::branches(&state.pool, project.id, per_page, offset).await?;
    let builds: Vec<KojiBuildRecord> =
        store::projects::official_builds_of_branches(&state.pool, project.id, &branches)
            .await?
            .into_iter()
            .filter(|b| {
                b.branch
                    .as_deref()
                    .is_some_and(|branch| built_for_branch(&b.target, branch))
            })
            .collect();
    let mut build_ids: Vec<i64> = builds.iter().map(|b| b.id).collect();
    build_ids.dedup();
    let pipelines = store::projects::gating_pipelines_of_builds(&state.pool, &build_ids).await?;
    let tests = store::dashboard::test_runs_of_pipelines(&state.pool, &pipelines).await?;
    let items: Vec<ProjectBranch> = branches
        .into_iter()
        .map(|branch| {
            let of_branch: Vec<&KojiBuildRecord> = builds
                .iter()
                .filter(|b| b.branch.as_deref() == Some(branch.as_str()))
                .collect();
            ProjectBranch {
                builds: Vec::new(),
                koji_builds: of_branch
                    .iter()
                    .map(|b| koji_build_short(&state, b))
                    .collect(),
                srpm_builds: Vec::new(),
                tests: tests
                    .iter()
                    .filter(|t| {
                        t.koji_build_id
                            .is_some_and(|id| of_branch.iter().any(|b| b.id == id))
                    })
                    .map(test_run_short)
                    .collect(),
                branch,
            }
        })
        .collect();
    Ok(packit_page(
        "git-project-branches",
        offset,
        per_page,
        items,
        true,
    ))
}

// --------------------------------------------------------- releases, issues

/// A release in `GET /api/projects/{forge}/{namespace}/{repo}/releases`
/// (Packit's `ProjectReleases`). Fedora CI never has one: the type documents
/// Packit's entry for the OpenAPI document.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectRelease {
    tag_name: String,
    commit_hash: String,
}

/// The releases of a project: always none. Packit lists the upstream
/// releases it ran jobs for; a dist-git project has no releases, and Fedora
/// CI acts on pull requests, pushes and Bodhi updates only.
#[utoipa::path(get, path = "/api/projects/{forge}/{namespace}/{repo}/releases", tag = "dashboard",
    params(
        ("forge" = String, Path, description = "The forge's host, e.g. src.fedoraproject.org"),
        ("namespace" = String, Path, description = "e.g. rpms"),
        ("repo" = String, Path, description = "e.g. optee_os"),
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 200, description = "Always empty; Content-Range: git-project-releases <first>-<last>/*",
            body = Vec<ProjectRelease>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_project_releases(
    Path(_project): Path<(String, String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (per_page, offset) = page_params(&params, &[])?;
    Ok(packit_page(
        "git-project-releases",
        offset,
        per_page,
        Vec::<ProjectRelease>::new(),
        true,
    ))
}

/// The issues of a project (Packit answers their numbers): always none,
/// since Fedora CI acts on no issues.
#[utoipa::path(get, path = "/api/projects/{forge}/{namespace}/{repo}/issues", tag = "dashboard",
    params(
        ("forge" = String, Path, description = "The forge's host, e.g. src.fedoraproject.org"),
        ("namespace" = String, Path, description = "e.g. rpms"),
        ("repo" = String, Path, description = "e.g. optee_os"),
        ("page" = Option<i64>, Query, description = "From 1, default 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 200, description = "Always empty; Content-Range: git-project-issues <first>-<last>/*",
            body = Vec<i64>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_project_issues(
    Path(_project): Path<(String, String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (per_page, offset) = page_params(&params, &[])?;
    Ok(packit_page(
        "git-project-issues",
        offset,
        per_page,
        Vec::<i64>::new(),
        true,
    ))
}

#[cfg(test)]
mod tests {
    use super::built_for_branch;

    #[test]
    fn a_release_build_belongs_to_its_own_branch_only() {
        for (target, branch, belongs) in [
            ("f43-candidate", "f43", true),
            ("f43-candidate", "rawhide", false),
            ("rawhide", "rawhide", true),
            ("rawhide", "main", true),
            ("rawhide", "f43", false),
            ("epel10.1-candidate", "epel10.1", true),
            ("epel9-candidate", "epel10", false),
            ("eln", "eln", true),
            // A side tag says nothing of the branch.
            ("f43-build-side-12345", "f43", true),
            ("f43-build-side-12345", "rawhide", true),
        ] {
            assert_eq!(
                built_for_branch(target, branch),
                belongs,
                "{target} on {branch}"
            );
        }
    }
}
