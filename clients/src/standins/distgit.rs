//! A dist-git (Pagure API 0) stand-in: PR and commit flags, PR comments, PR
//! and project reads, branches, and raw files, for projects and forks
//! (`/api/0/<ns>/<repo>/...`, `/api/0/fork/<user>/<ns>/<repo>/...`).
//!
//! It follows Pagure (`../distgit.rs` lists the facts): form-encoded
//! writes checked for the fields Pagure requires, `Authorization: token`,
//! a flag uid that updates the flag in place ("Flag updated"), and
//! `{"error", "error_code"}` error bodies.
//!
//! It knows only the pull requests a test made exist
//! ([`DistGitStandin::set_pull_request`], or
//! [`DistGitStandin::add_pull_request_from_message`] for the pull request a
//! bus message describes), and their projects. As Pagure's API does
//! (`pagure/api/fork.py`: `_get_repo` raises `ENOPROJECT`, `_get_request`
//! `ENOREQ`), a flag or a comment on a pull request of a project it does not
//! know answers 404 `ENOPROJECT` "Project not found", and on a pull request
//! it does not know 404 `ENOREQ` "Pull-Request not found"; so does a read of
//! either. (Branches and raw files of any project are answered: a push's
//! project has no pull request to make it known.) A flag keeps its uid: posting the same uid again replaces the
//! flag ("Flag updated"), as Pagure's `add_pull_request_flag` does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::distgit::Flag;
use crate::http::standin::{Fault, Server, SharedScript, lock};

/// One call the stand-in received.
pub use crate::http::standin::Call;

/// The flag statuses Pagure accepts (`FLAG_STATUSES_LABELS`).
const FLAG_STATUSES: [&str; 5] = ["success", "failure", "error", "pending", "canceled"];

/// A pull-request comment received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrComment {
    /// `rpms/optee_os` or `fork/<user>/rpms/optee_os`.
    pub project: String,
    pub pr: i64,
    pub text: String,
}

#[derive(Debug, Default)]
struct Inner {
    token: Option<String>,
    pr_flags: BTreeMap<(String, i64), BTreeMap<String, Flag>>,
    commit_flags: BTreeMap<(String, String), BTreeMap<String, Flag>>,
    comments: Vec<PrComment>,
    pull_requests: BTreeMap<(String, i64), Value>,
    projects: BTreeMap<String, Value>,
    branches: BTreeMap<String, Vec<String>>,
    files: BTreeSet<(String, String, String)>,
    next_uid: u64,
    base_url: String,
}

#[derive(Clone)]
struct App {
    inner: Arc<Mutex<Inner>>,
}

/// A running dist-git stand-in; stops when dropped.
#[derive(Debug)]
pub struct DistGitStandin {
    server: Server,
    inner: Arc<Mutex<Inner>>,
    script: SharedScript,
}

impl DistGitStandin {
    /// A stand-in that takes writes with any token, or none.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_inner(None).await
    }

    /// A stand-in that answers 401 (`EINVALIDTOK`) to writes without
    /// `Authorization: token <token>`.
    pub async fn start_with_token(token: &str) -> std::io::Result<Self> {
        Self::start_inner(Some(token.to_owned())).await
    }

    async fn start_inner(token: Option<String>) -> std::io::Result<Self> {
        let inner = Arc::new(Mutex::new(Inner {
            token,
            ..Inner::default()
        }));
        let script = SharedScript::default();
        let router = Router::new().fallback(dispatch).with_state(App {
            inner: inner.clone(),
        });
        let server = Server::start(router, script.clone()).await?;
        lock(&inner).base_url = server.url();
        Ok(DistGitStandin {
            server,
            inner,
            script,
        })
    }

    /// The base to configure as `[distgit] api_url`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The next `n` calls get `status` instead of an answer.
    /// Forget the scripted failures not used yet: the service is back.
    pub fn recover(&self) {
        lock(&self.script).clear_faults();
    }

    pub fn fail_next(&self, n: usize, status: u16) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        lock(&self.script).push(n, Fault::Status(status));
    }

    /// The next `n` calls get 429 with `Retry-After: <seconds>`.
    pub fn throttle_next(&self, n: usize, retry_after_seconds: u64) {
        lock(&self.script).push(
            n,
            Fault::Throttle {
                retry_after_seconds,
            },
        );
    }

    /// Every answer takes `delay` from now on, as from a slow dist-git.
    pub fn set_delay(&self, delay: std::time::Duration) {
        lock(&self.script).set_delay(delay);
    }

    /// Makes `path` exist at commit `sha` in `project` (`rpms/foo` or
    /// `fork/<user>/rpms/foo`).
    pub fn set_file(&self, project: &str, sha: &str, path: &str) {
        lock(&self.inner).files.insert((
            project.to_owned(),
            sha.to_owned(),
            path.trim_start_matches('/').to_owned(),
        ));
    }

    /// The branches of `project` (by default only `rawhide`).
    pub fn set_branches(&self, project: &str, branches: &[&str]) {
        lock(&self.inner).branches.insert(
            project.to_owned(),
            branches.iter().map(|b| (*b).to_owned()).collect(),
        );
    }

    /// What `GET /api/0/<project>/pull-request/<pr>` answers.
    pub fn set_pull_request(&self, project: &str, pr: i64, body: Value) {
        lock(&self.inner)
            .pull_requests
            .insert((project.to_owned(), pr), body);
    }

    /// Makes the pull request a bus message's `pullrequest` object describes
    /// exist, as it does on dist-git once Pagure announced it: reads of it
    /// answer that object (Pagure's API and its messages serialize a pull
    /// request alike, `PullRequest.to_json`), and writes to it are taken.
    /// False when the object names no project (`project.fullname`) or id.
    pub fn add_pull_request_from_message(&self, pullrequest: &Value) -> bool {
        let project = pullrequest
            .pointer("/project/fullname")
            .and_then(Value::as_str);
        let id = pullrequest.get("id").and_then(Value::as_i64);
        let (Some(project), Some(id)) = (project, id) else {
            return false;
        };
        self.set_pull_request(project, id, pullrequest.clone());
        true
    }

    /// What `GET /api/0/<project>` answers (by default a minimal project).
    pub fn set_project(&self, project: &str, body: Value) {
        lock(&self.inner).projects.insert(project.to_owned(), body);
    }

    /// The current flags of each pull request (project, PR number), by uid:
    /// a flag posted again with the same uid replaced the old one.
    pub fn flags(&self) -> BTreeMap<(String, i64), BTreeMap<String, Flag>> {
        lock(&self.inner).pr_flags.clone()
    }

    /// The current flags of each commit (project, sha), by uid.
    pub fn commit_flags(&self) -> BTreeMap<(String, String), BTreeMap<String, Flag>> {
        lock(&self.inner).commit_flags.clone()
    }

    /// The comments posted, in order.
    pub fn comments(&self) -> Vec<PrComment> {
        lock(&self.inner).comments.clone()
    }

    /// Every call received, with when it came and what it got.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.script).calls()
    }
}

/// Pagure's error body.
fn error(status: StatusCode, code: &str, text: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": text, "error_code": code })),
    )
        .into_response()
}

fn invalid(errors: Value) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "error": "Invalid or incomplete input submitted",
            "error_code": "EINVALIDREQ",
            "errors": errors,
        })),
    )
        .into_response()
}

fn authorized(inner: &Inner, headers: &HeaderMap) -> bool {
    let Some(token) = &inner.token else {
        return true;
    };
    // Pagure takes what follows the word "token".
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once("token"))
        .is_some_and(|(_, given)| given.trim() == token)
}

/// What a path asks for.
enum Route {
    Project(String),
    PullRequest(String, i64),
    PrFlag(String, i64),
    PrComment(String, i64),
    CommitFlag(String, String),
    Branches(String),
    Raw {
        project: String,
        sha: String,
        path: String,
    },
}

fn route(path: &str) -> Option<Route> {
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let project = |segments: &[String]| {
        let valid = match segments {
            [fork, _, _, _] => fork == "fork",
            [ns, _] => ns != "fork",
            _ => false,
        };
        valid.then(|| segments.join("/"))
    };
    if let Some(rest) = segments.strip_prefix(&["api".to_owned(), "0".to_owned()]) {
        let n = rest.len();
        let tail: Vec<&str> = rest.iter().map(String::as_str).collect();
        return match tail.as_slice() {
            [.., "pull-request", pr, action @ ("flag" | "comment")] => {
                let project = project(&rest[..n - 3])?;
                let pr = pr.parse().ok()?;
                Some(if *action == "flag" {
                    Route::PrFlag(project, pr)
                } else {
                    Route::PrComment(project, pr)
                })
            }
            [.., "pull-request", pr] => Some(Route::PullRequest(
                project(&rest[..n - 2])?,
                pr.parse().ok()?,
            )),
            [.., "c", sha, "flag"] => Some(Route::CommitFlag(
                project(&rest[..n - 3])?,
                (*sha).to_owned(),
            )),
            [.., "git", "branches"] => Some(Route::Branches(project(&rest[..n - 2])?)),
            _ => Some(Route::Project(project(rest)?)),
        };
    }
    // `/<project>/raw/<sha>/f/<path...>`
    let raw = segments.iter().position(|s| s == "raw")?;
    if segments.get(raw + 2).map(String::as_str) != Some("f") || segments.len() < raw + 4 {
        return None;
    }
    Some(Route::Raw {
        project: project(&segments[..raw])?,
        sha: segments[raw + 1].clone(),
        path: segments[raw + 3..].join("/"),
    })
}

async fn dispatch(State(app): State<App>, request: Request) -> Response {
    let method = request.method().as_str().to_owned();
    let headers = request.headers().clone();
    let path = request.uri().path().to_owned();
    let body = match axum::body::to_bytes(request.into_body(), 1 << 20).await {
        Ok(body) => body,
        Err(_) => return error(StatusCode::BAD_REQUEST, "ENOCODE", "Body too large"),
    };
    let Some(route) = route(&path) else {
        return error(StatusCode::NOT_FOUND, "ENOCODE", "Not found");
    };
    let mut inner = lock(&app.inner);
    match (method.as_str(), route) {
        ("POST", Route::PrFlag(project, pr)) => {
            if !authorized(&inner, &headers) {
                return invalid_token();
            }
            if let Some(response) = inner.missing_pull_request(&project, pr) {
                return response;
            }
            let flag = match read_flag(&body, &mut inner) {
                Ok(flag) => flag,
                Err(errors) => return invalid(errors),
            };
            let flags = inner.pr_flags.entry((project, pr)).or_default();
            let updated = flags.insert(flag.uid.clone(), flag.clone()).is_some();
            flag_answer(&flag, updated, None)
        }
        ("POST", Route::CommitFlag(project, sha)) => {
            if !authorized(&inner, &headers) {
                return invalid_token();
            }
            let flag = match read_flag(&body, &mut inner) {
                Ok(flag) => flag,
                Err(errors) => return invalid(errors),
            };
            let flags = inner
                .commit_flags
                .entry((project, sha.clone()))
                .or_default();
            let updated = flags.insert(flag.uid.clone(), flag.clone()).is_some();
            flag_answer(&flag, updated, Some(&sha))
        }
        ("POST", Route::PrComment(project, pr)) => {
            if !authorized(&inner, &headers) {
                return invalid_token();
            }
            if let Some(response) = inner.missing_pull_request(&project, pr) {
                return response;
            }
            let form = form(&body);
            let Some(text) = form.get("comment").filter(|c| !c.trim().is_empty()) else {
                return invalid(json!({ "comment": ["This field is required."] }));
            };
            inner.comments.push(PrComment {
                project,
                pr,
                text: text.clone(),
            });
            axum::Json(json!({
                "message": "Comment added",
                "avatar_url": "https://seccdn.libravatar.org/avatar/0",
                "user": "fedora-ci",
            }))
            .into_response()
        }
        ("GET", Route::PullRequest(project, pr)) => {
            if let Some(response) = inner.missing_pull_request(&project, pr) {
                return response;
            }
            axum::Json(inner.pull_requests[&(project, pr)].clone()).into_response()
        }
        ("GET", Route::Project(project)) => {
            // A project it has: set up, or one of a pull request's.
            let known = inner.projects.contains_key(&project)
                || inner.pull_requests.keys().any(|(p, _)| *p == project);
            if !known {
                return error(StatusCode::NOT_FOUND, "ENOPROJECT", "Project not found");
            }
            let body = inner
                .projects
                .get(&project)
                .cloned()
                .unwrap_or_else(|| default_project(&inner.base_url, &project));
            axum::Json(body).into_response()
        }
        ("GET", Route::Branches(project)) => {
            let branches = inner
                .branches
                .get(&project)
                .cloned()
                .unwrap_or_else(|| vec!["rawhide".to_owned()]);
            axum::Json(json!({
                "total_branches": branches.len(),
                "branches": branches,
            }))
            .into_response()
        }
        ("GET" | "HEAD", Route::Raw { project, sha, path }) => {
            if inner.files.contains(&(project, sha, path)) {
                (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "").into_response()
            } else {
                // The web UI's 404 is a page, not JSON.
                (StatusCode::NOT_FOUND, "File not found").into_response()
            }
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "ENOCODE",
            "Method not allowed",
        ),
    }
}

impl Inner {
    /// Pagure's `_get_repo` then `_get_request`: 404 `ENOPROJECT` for a
    /// project it does not have, 404 `ENOREQ` for a pull request it does not;
    /// `None` when the pull request exists.
    fn missing_pull_request(&self, project: &str, pr: i64) -> Option<Response> {
        if self.pull_requests.contains_key(&(project.to_owned(), pr)) {
            return None;
        }
        let known_project = self.projects.contains_key(project)
            || self.pull_requests.keys().any(|(p, _)| p == project);
        Some(if known_project {
            error(StatusCode::NOT_FOUND, "ENOREQ", "Pull-Request not found")
        } else {
            error(StatusCode::NOT_FOUND, "ENOPROJECT", "Project not found")
        })
    }
}

fn invalid_token() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "EINVALIDTOK",
        "Invalid or expired token. Please visit https://src.fedoraproject.org/settings#nav-api-tab to get or renew your API token.",
    )
}

fn form(body: &Bytes) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// A flag from a form, checked as Pagure's `AddPullRequestFlagForm` checks
/// it; the form errors as Pagure lists them otherwise.
fn read_flag(body: &Bytes, inner: &mut Inner) -> Result<Flag, Value> {
    let form = form(body);
    let field = |name: &str| {
        form.get(name)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let mut errors = serde_json::Map::new();
    for name in ["username", "comment", "url"] {
        if field(name).is_empty() {
            errors.insert(name.to_owned(), json!(["This field is required."]));
        }
    }
    let status = field("status");
    if !FLAG_STATUSES.contains(&status.as_str()) {
        errors.insert("status".to_owned(), json!(["Not a valid choice"]));
    }
    let mut uid = field("uid");
    if uid.chars().count() > 32 {
        errors.insert(
            "uid".to_owned(),
            json!(["Field cannot be longer than 32 characters."]),
        );
    }
    if !errors.is_empty() {
        return Err(Value::Object(errors));
    }
    if uid.is_empty() {
        inner.next_uid += 1;
        uid = format!("{:032x}", inner.next_uid);
    }
    Ok(Flag {
        username: field("username"),
        status,
        comment: field("comment"),
        url: field("url"),
        uid,
    })
}

fn flag_answer(flag: &Flag, updated: bool, commit: Option<&str>) -> Response {
    let mut stored = json!({
        "comment": flag.comment,
        "date_created": chrono::Utc::now().timestamp().to_string(),
        "percent": null,
        "status": flag.status,
        "url": flag.url,
        "user": { "fullname": "Fedora CI", "name": "fedora-ci" },
        "username": flag.username,
    });
    if let Some(commit) = commit {
        stored["commit_hash"] = json!(commit);
    }
    axum::Json(json!({
        "flag": stored,
        "message": if updated { "Flag updated" } else { "Flag added" },
        "uid": flag.uid,
        "avatar_url": "https://seccdn.libravatar.org/avatar/0",
        "user": "fedora-ci",
    }))
    .into_response()
}

fn default_project(base_url: &str, project: &str) -> Value {
    let parts: Vec<&str> = project.split('/').collect();
    let (fork_owner, namespace, name) = match parts.as_slice() {
        ["fork", owner, ns, name] => (Some(*owner), *ns, *name),
        [ns, name] => (None, *ns, *name),
        _ => (None, "", project),
    };
    json!({
        "name": name,
        "namespace": namespace,
        "fullname": match fork_owner {
            Some(owner) => format!("forks/{owner}/{namespace}/{name}"),
            None => format!("{namespace}/{name}"),
        },
        "url_path": project,
        "full_url": format!("{base_url}/{project}"),
        "parent": fork_owner.map(|_| json!({
            "name": name,
            "namespace": namespace,
            "fullname": format!("{namespace}/{name}"),
            "url_path": format!("{namespace}/{name}"),
        })),
        "user": { "name": fork_owner.unwrap_or("orphan") },
    })
}

/// A path segment with its `%XX` escapes decoded.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
