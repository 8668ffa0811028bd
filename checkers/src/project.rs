//! Dist-git projects as the bus names them.
//!
//! A project's identity is the URL the message names (SPEC §3), so URLs are normalised once,
//! here, and compared as text everywhere else.

use events::typed::{ProjectUrlError, project_names};
use serde::{Deserialize, Serialize};

use crate::rules::Skip;

/// A project on dist-git: a package repository, or somebody's fork of one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProjectRef {
    /// Normalised web URL: `<base>/<ns>/<repo>`, or `<base>/fork/<user>/<ns>/<repo>` for a
    /// fork; no trailing slash, no `.git`.
    pub url: String,
    /// Host of the dist-git base, e.g. `src.fedoraproject.org`.
    pub forge: String,
    /// `rpms`, `tests`, ...; for a fork, the namespace of the forked repository.
    pub namespace: String,
    /// Repository name, which for `rpms` is the source package name.
    pub repo: String,
    /// The user owning the fork; `None` for the package repository itself.
    pub fork_owner: Option<String>,
}

impl ProjectRef {
    pub fn is_fork(&self) -> bool {
        self.fork_owner.is_some()
    }

    /// The path of the web URL below the dist-git base: `rpms/foo` or `fork/alice/rpms/foo`.
    pub fn path(&self) -> String {
        match &self.fork_owner {
            Some(owner) => format!("fork/{owner}/{}/{}", self.namespace, self.repo),
            None => format!("{}/{}", self.namespace, self.repo),
        }
    }

    /// The dist-git base this project lives under, e.g. `https://src.fedoraproject.org`.
    pub fn base(&self) -> &str {
        let path = self.path();
        self.url
            .strip_suffix(path.as_str())
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or(&self.url)
    }

    /// The URL git clones from.
    ///
    /// Pagure shows forks under `/fork/<user>/...` but serves their git repositories under
    /// `/forks/<user>/...` (the `fullname` of a fork in `pagure.pull-request.*` messages is
    /// `forks/<user>/<ns>/<repo>`), so for a fork this is not simply `<url>.git`.
    pub fn git_url(&self) -> String {
        match &self.fork_owner {
            Some(owner) => format!(
                "{}/forks/{owner}/{}/{}.git",
                self.base(),
                self.namespace,
                self.repo
            ),
            None => format!("{}.git", self.url),
        }
    }

    /// The SCM URL Koji builds from: `git+<clone url>#<sha>`. `sha` is a commit hash that was
    /// checked when its message was read (`events::typed::CommitSha`).
    ///
    /// Packit Service builds the same URL for Fedora CI scratch builds, `forks/<user>/` included
    /// (`_repo_url_with_git_ref` in `packit_service/worker/handlers/distgit.py`).
    pub fn koji_source_url(&self, sha: &str) -> String {
        format!("git+{}#{sha}", self.git_url())
    }
}

/// Reads a project URL from a message.
///
/// Accepts `<base>/<ns>/<repo>` and the fork forms `<base>/fork/<user>/<ns>/<repo>` (web) and
/// `<base>/forks/<user>/<ns>/<repo>` (git), each with or without a trailing `.git` or `/`.
/// Anything else, including projects of another Pagure instance that shares the bus
/// (pagure.io), is [`Skip::NotOnDistGit`]. A URL of that shape whose namespace, repository or
/// fork owner is not a valid Pagure name (`..`, `%2e`, a space, ...) is
/// [`Skip::InvalidProjectName`]: the names become path segments of API URLs, Koji source URLs
/// and flags, where `.` and `..` would silently name another project.
pub fn parse_project_url(distgit_base: &str, url: &str) -> Result<ProjectRef, Skip> {
    let names = project_names(distgit_base, url).map_err(|error| match error {
        ProjectUrlError::NotUnderBase => Skip::NotOnDistGit {
            url: url.to_owned(),
        },
        ProjectUrlError::InvalidName { part, name } => Skip::InvalidProjectName {
            url: url.to_owned(),
            part,
            name,
        },
    })?;
    let base = distgit_base.trim().trim_end_matches('/');
    let project = ProjectRef {
        url: String::new(),
        forge: host_of(base),
        namespace: names.namespace.to_owned(),
        repo: names.repo.to_owned(),
        fork_owner: names.fork_owner.map(str::to_owned),
    };
    Ok(ProjectRef {
        url: format!("{base}/{}", project.path()),
        ..project
    })
}

/// A project URL in the form used for comparisons: trailing `/` and `.git` removed, and a fork
/// always under `/fork/` (Pagure accepts both spellings). Text that is not a URL comes back
/// trimmed and otherwise unchanged.
pub fn normalize_project_url(url: &str) -> String {
    let trimmed = trim_url(url);
    let path_start = trimmed.find("://").and_then(|scheme_end| {
        let host_start = scheme_end + "://".len();
        trimmed[host_start..].find('/').map(|i| host_start + i)
    });
    match path_start {
        Some(start) if trimmed[start..].starts_with("/forks/") => format!(
            "{}/fork/{}",
            &trimmed[..start],
            &trimmed[start + "/forks/".len()..]
        ),
        _ => trimmed.to_owned(),
    }
}

fn trim_url(url: &str) -> &str {
    let url = url.trim().trim_end_matches('/');
    url.strip_suffix(".git")
        .unwrap_or(url)
        .trim_end_matches('/')
}

fn host_of(base: &str) -> String {
    let after_scheme = base.split_once("://").map_or(base, |(_, rest)| rest);
    after_scheme
        .split('/')
        .next()
        .unwrap_or(after_scheme)
        .to_ascii_lowercase()
}
