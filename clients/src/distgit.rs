//! Dist-git: Pagure's API 0 (SPEC §3). Dist-git is moving to Forgejo, so the
//! flows see only this trait.
//!
//! [`PagureClient`] is the real implementation. Facts it relies on (Pagure's
//! `pagure/api/__init__.py`, `pagure/api/fork.py`, `pagure/api/project.py`,
//! `pagure/ui/repo.py`):
//! - the API lives under `/api/0/`; a project is `<ns>/<repo>`, a fork
//!   `fork/<user>/<ns>/<repo>` (`/api/0/fork/<user>/<ns>/<repo>/...`);
//! - the token goes in `Authorization: token <token>`; a bad one gets 401
//!   `{"error": "Invalid or expired token...", "error_code": "EINVALIDTOK"}`;
//! - flags: `POST .../pull-request/<id>/flag` and `POST .../c/<sha>/flag`, form
//!   fields `username`, `comment`, `url` (required), `status`, `uid` (at most
//!   32 characters; a known uid updates that flag: `"message": "Flag updated"`);
//! - comments: `POST .../pull-request/<id>/comment`, form field `comment`;
//! - branches: `GET .../git/branches` gives `{"total_branches", "branches"}`;
//! - files: `GET /<project>/raw/<commit>/f/<path>` (the web UI, not the API)
//!   answers 200 or 404;
//! - errors are `{"error": ..., "error_code": ...}`, with `"errors"` listing
//!   the form fields for `EINVALIDREQ`.

use async_trait::async_trait;
use events::typed::{ProjectUrlError, is_commit_sha, project_names};
use reqwest::header::AUTHORIZATION;
use reqwest::{Method, RequestBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use url::Url;

use crate::http::{self, Timeouts};
use crate::{ClientError, DryRunRequest};

/// A flag as Pagure takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flag {
    /// The check name, e.g. `Fedora CI - installability - rawhide [beaf90b]`.
    pub username: String,
    /// `pending`, `success`, `failure`, `error` or `canceled`.
    pub status: String,
    /// At most 140 characters.
    pub comment: String,
    /// Never empty.
    pub url: String,
    /// At most 32 characters; the same uid updates the same flag.
    pub uid: String,
}

/// What became of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Done,
    /// Dry-run (no token): nothing was sent; this is what would have been.
    DryRun(DryRunRequest),
}

/// Projects are named by their web URL as messages give it, e.g.
/// `https://src.fedoraproject.org/rpms/optee_os` or
/// `https://src.fedoraproject.org/fork/zbyszek/rpms/optee_os`; the client maps
/// it onto its API URL.
#[async_trait]
pub trait DistGit: Send + Sync {
    /// `POST /api/0/<ns>/<repo>/pull-request/<id>/flag`.
    async fn set_pr_flag(
        &self,
        project_url: &str,
        pr: i64,
        flag: &Flag,
    ) -> Result<Written, ClientError>;
    /// `POST /api/0/<ns>/<repo>/c/<sha>/flag`.
    async fn set_commit_flag(
        &self,
        project_url: &str,
        sha: &str,
        flag: &Flag,
    ) -> Result<Written, ClientError>;
    /// `POST /api/0/<ns>/<repo>/pull-request/<id>/comment`.
    async fn post_pr_comment(
        &self,
        project_url: &str,
        pr: i64,
        text: &str,
    ) -> Result<Written, ClientError>;
    /// `GET /api/0/<ns>/<repo>/pull-request/<id>`, unchanged.
    async fn pull_request(
        &self,
        project_url: &str,
        pr: i64,
    ) -> Result<serde_json::Value, ClientError>;
    /// `GET /api/0/<ns>/<repo>`, unchanged.
    async fn project(&self, project_url: &str) -> Result<serde_json::Value, ClientError>;
    /// Whether a file exists in the repository at a commit.
    async fn file_exists(
        &self,
        project_url: &str,
        sha: &str,
        path: &str,
    ) -> Result<bool, ClientError>;
    /// Whether the repository has a branch.
    async fn branch_exists(&self, project_url: &str, branch: &str) -> Result<bool, ClientError>;
    /// Whether writes are only recorded.
    fn dry_run(&self) -> bool;
}

/// The service name in errors and dry-run records.
pub const SERVICE: &str = "dist-git";

/// Where a project lives on dist-git: the path of its web URL below the
/// dist-git base, which is also its path below `/api/0/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProjectPath {
    /// `rpms`, `tests`, ...
    pub namespace: String,
    pub repo: String,
    /// The owner of a fork; `None` for the project itself.
    pub fork_owner: Option<String>,
}

impl ProjectPath {
    /// Reads a project URL as messages give it: `<base>/<ns>/<repo>`, or a fork
    /// as `<base>/fork/<user>/<ns>/<repo>` (web) or `<base>/forks/<user>/<ns>/<repo>`
    /// (git), each with or without a trailing `.git` or `/`. A URL not under
    /// `public_base`, or whose names are not valid Pagure names (`..`, `%2e`,
    /// a space, ...), is a permanent error: the names become path segments of
    /// the API URL, where `.` and `..` would name another project.
    pub fn parse(public_base: &str, project_url: &str) -> Result<ProjectPath, ClientError> {
        let names = project_names(public_base, project_url).map_err(|error| {
            let message = match error {
                ProjectUrlError::NotUnderBase => {
                    format!("{project_url:?} is not a dist-git project under {public_base}")
                }
                ProjectUrlError::InvalidName { part, name } => format!(
                    "{project_url:?} is not a dist-git project: the {part} {name:?} is not a valid Pagure name"
                ),
            };
            ClientError::Permanent {
                service: SERVICE,
                message,
            }
        })?;
        Ok(ProjectPath {
            namespace: names.namespace.to_owned(),
            repo: names.repo.to_owned(),
            fork_owner: names.fork_owner.map(str::to_owned),
        })
    }

    /// The path segments: `[ns, repo]` or `["fork", user, ns, repo]`.
    pub fn segments(&self) -> Vec<&str> {
        match &self.fork_owner {
            Some(owner) => vec!["fork", owner, &self.namespace, &self.repo],
            None => vec![&self.namespace, &self.repo],
        }
    }
}

impl std::fmt::Display for ProjectPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.segments().join("/"))
    }
}

/// Dist-git through Pagure's API 0.
///
/// Project URLs are read against `public_base` (`[distgit] url`, the
/// identity in messages) and the calls go to `api_url` (`[distgit] api_url`),
/// so tests point the calls at a stand-in while messages stay real. Without
/// a token it runs in dry-run: writes (flags, comments) send nothing and
/// return what they would have sent. Reads are always anonymous: dist-git's
/// data is public, and an expired token would only make them fail.
pub struct PagureClient {
    http: reqwest::Client,
    public_base: String,
    api_url: Url,
    token: Option<SecretString>,
}

impl std::fmt::Debug for PagureClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagureClient")
            .field("public_base", &self.public_base)
            .field("api_url", &self.api_url.as_str())
            .field("dry_run", &self.token.is_none())
            .finish()
    }
}

impl PagureClient {
    pub fn new(
        public_base: &str,
        api_url: &str,
        token: Option<SecretString>,
        timeouts: Timeouts,
    ) -> Result<Self, ClientError> {
        http::parse_base_url(SERVICE, "distgit.url", public_base)?;
        let api_url = http::parse_base_url(SERVICE, "distgit.api_url", api_url)?;
        let client = http::build_client(SERVICE, timeouts)?;
        let token = token.filter(|t| !t.expose_secret().is_empty());
        if token.is_none() {
            tracing::warn!(api_url = %api_url, "dist-git: no token, dry-run: flags and comments are only recorded");
        }
        Ok(PagureClient {
            http: client,
            public_base: public_base.trim().trim_end_matches('/').to_owned(),
            api_url,
            token,
        })
    }

    /// Where `project_url` lives, or a permanent error for a URL that is not
    /// under `[distgit] url`.
    pub fn project_path(&self, project_url: &str) -> Result<ProjectPath, ClientError> {
        ProjectPath::parse(&self.public_base, project_url)
    }

    /// `<api_url>/api/0/<project>/<rest...>`.
    fn api(&self, project: &ProjectPath, rest: &[&str]) -> Result<Url, ClientError> {
        let mut segments = vec!["api", "0"];
        segments.extend(project.segments());
        segments.extend(rest);
        http::join(SERVICE, &self.api_url, &segments)
    }

    /// A form POST with the token, or its dry-run record without one.
    async fn write(&self, url: Url, form: &[(&str, &str)]) -> Result<Written, ClientError> {
        let Some(token) = &self.token else {
            tracing::info!(%url, "dry-run: dist-git write not sent");
            let body: serde_json::Map<String, serde_json::Value> = form
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                .collect();
            return Ok(Written::DryRun(DryRunRequest {
                service: SERVICE,
                method: "POST".to_owned(),
                url: url.to_string(),
                body: Some(serde_json::Value::Object(body)),
            }));
        };
        let mut request = self.http.post(url).form(form);
        if let Some(auth) = http::authorization("token", token) {
            request = request.header(AUTHORIZATION, auth);
        }
        let result = http::call(SERVICE, request).await.map(|_| Written::Done);
        self.finish(result)
    }

    async fn read(&self, url: Url) -> Result<serde_json::Value, ClientError> {
        let result = async {
            let response = http::call(SERVICE, self.http.request(Method::GET, url)).await?;
            http::json(SERVICE, response).await
        }
        .await;
        self.finish(result)
    }

    /// Sends a GET and tells 200 from 404; other statuses are errors.
    async fn exists(&self, request: RequestBuilder) -> Result<bool, ClientError> {
        let response = http::send(SERVICE, request).await?;
        match response.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(self.finish_err(http::error_from_response(SERVICE, response).await)),
        }
    }

    fn finish<T>(&self, result: Result<T, ClientError>) -> Result<T, ClientError> {
        result.map_err(|err| self.finish_err(err))
    }

    fn finish_err(&self, err: ClientError) -> ClientError {
        http::redact(err, self.token.as_ref())
    }

    fn flag_form(flag: &Flag) -> [(&'static str, &str); 5] {
        [
            ("username", flag.username.as_str()),
            ("status", flag.status.as_str()),
            ("comment", flag.comment.as_str()),
            ("url", flag.url.as_str()),
            ("uid", flag.uid.as_str()),
        ]
    }
}

#[async_trait]
impl DistGit for PagureClient {
    async fn set_pr_flag(
        &self,
        project_url: &str,
        pr: i64,
        flag: &Flag,
    ) -> Result<Written, ClientError> {
        let project = self.project_path(project_url)?;
        let url = self.api(&project, &["pull-request", &pr.to_string(), "flag"])?;
        self.write(url, &Self::flag_form(flag)).await
    }

    async fn set_commit_flag(
        &self,
        project_url: &str,
        sha: &str,
        flag: &Flag,
    ) -> Result<Written, ClientError> {
        let project = self.project_path(project_url)?;
        check_sha(sha)?;
        let url = self.api(&project, &["c", sha, "flag"])?;
        self.write(url, &Self::flag_form(flag)).await
    }

    async fn post_pr_comment(
        &self,
        project_url: &str,
        pr: i64,
        text: &str,
    ) -> Result<Written, ClientError> {
        let project = self.project_path(project_url)?;
        let url = self.api(&project, &["pull-request", &pr.to_string(), "comment"])?;
        self.write(url, &[("comment", text)]).await
    }

    async fn pull_request(
        &self,
        project_url: &str,
        pr: i64,
    ) -> Result<serde_json::Value, ClientError> {
        let project = self.project_path(project_url)?;
        self.read(self.api(&project, &["pull-request", &pr.to_string()])?)
            .await
    }

    async fn project(&self, project_url: &str) -> Result<serde_json::Value, ClientError> {
        let project = self.project_path(project_url)?;
        self.read(self.api(&project, &[])?).await
    }

    /// `GET <api_url>/<project>/raw/<sha>/f/<path>`: 200 or 404. The body is
    /// not read.
    async fn file_exists(
        &self,
        project_url: &str,
        sha: &str,
        path: &str,
    ) -> Result<bool, ClientError> {
        let project = self.project_path(project_url)?;
        check_sha(sha)?;
        let mut segments = project.segments();
        segments.extend(["raw", sha, "f"]);
        segments.extend(path.split('/').filter(|s| !s.is_empty()));
        let url = http::join(SERVICE, &self.api_url, &segments)?;
        self.exists(self.http.get(url)).await
    }

    /// `GET .../git/branches` and a look for `branch` in the list.
    async fn branch_exists(&self, project_url: &str, branch: &str) -> Result<bool, ClientError> {
        let project = self.project_path(project_url)?;
        let answer = self.read(self.api(&project, &["git", "branches"])?).await?;
        let branches = answer
            .get("branches")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| ClientError::Permanent {
                service: SERVICE,
                message: format!("{project}: the branch list has no \"branches\""),
            })?;
        Ok(branches.iter().any(|b| b.as_str() == Some(branch)))
    }

    fn dry_run(&self) -> bool {
        self.token.is_none()
    }
}

/// A commit named in a URL must be a full hash: anything else from a
/// message (`..`, a branch) would name another path.
fn check_sha(sha: &str) -> Result<(), ClientError> {
    if is_commit_sha(sha) {
        return Ok(());
    }
    let shown: String = sha.chars().take(64).collect();
    Err(ClientError::Permanent {
        service: SERVICE,
        message: format!("{shown:?} is not a commit hash (40 lowercase hexadecimal digits)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://src.fedoraproject.org";

    fn path(url: &str) -> Result<String, ClientError> {
        ProjectPath::parse(BASE, url).map(|p| p.to_string())
    }

    #[test]
    fn project_urls_map_to_api_paths() {
        for (url, expected) in [
            (
                "https://src.fedoraproject.org/rpms/optee_os",
                "rpms/optee_os",
            ),
            (
                "https://src.fedoraproject.org/rpms/optee_os/",
                "rpms/optee_os",
            ),
            (
                "https://src.fedoraproject.org/rpms/optee_os.git",
                "rpms/optee_os",
            ),
            (
                "https://src.fedoraproject.org/tests/selinux",
                "tests/selinux",
            ),
            (
                "https://src.fedoraproject.org/fork/zbyszek/rpms/optee_os",
                "fork/zbyszek/rpms/optee_os",
            ),
            (
                "https://src.fedoraproject.org/forks/zbyszek/rpms/optee_os.git",
                "fork/zbyszek/rpms/optee_os",
            ),
            (
                "https://src.fedoraproject.org/rpms/libstdc++",
                "rpms/libstdc++",
            ),
            (
                "https://src.fedoraproject.org/rpms/python3.12",
                "rpms/python3.12",
            ),
        ] {
            assert_eq!(path(url).expect(url), expected);
        }
    }

    #[test]
    fn invalid_names_are_named_in_the_error() {
        assert_eq!(
            path("https://src.fedoraproject.org/fork/../rpms/bash")
                .expect_err("..")
                .to_string(),
            "dist-git: \"https://src.fedoraproject.org/fork/../rpms/bash\" is not a dist-git project: the fork owner \"..\" is not a valid Pagure name"
        );
    }

    #[test]
    fn urls_elsewhere_are_permanent_errors() {
        for url in [
            "https://pagure.io/fedora-ci/general",
            "https://pagure.io/rpms/optee_os",
            "https://src.fedoraproject.org.evil.example/rpms/optee_os",
            "https://src.fedoraproject.org/rpms",
            "https://src.fedoraproject.org/rpms/optee_os/pull-request/2",
            "https://src.fedoraproject.org/fork/zbyszek/optee_os",
            "https://src.fedoraproject.org//optee_os",
            "http://src.fedoraproject.org/rpms/optee_os",
            "https://src.fedoraproject.org/rpms/..",
            "https://src.fedoraproject.org/rpms/.",
            "https://src.fedoraproject.org/../bash",
            "https://src.fedoraproject.org/fork/../rpms/bash",
            "https://src.fedoraproject.org/forks/./rpms/bash.git",
            "https://src.fedoraproject.org/rpms/%2e%2e",
            "https://src.fedoraproject.org/rpms/a b",
            "https://src.fedoraproject.org/rpms/.\t.",
        ] {
            let err = path(url).expect_err(url);
            assert!(
                matches!(err, ClientError::Permanent { .. }),
                "{url}: {err:?}"
            );
        }
    }
}
