//! The Testing Farm requests Fedora CI sends, built exactly, so that they can be recorded and
//! compared before anything is sent (SPEC §3, REFERENCE.md's tests table).

use serde_json::{Map, Value, json};
use thiserror::Error;

use crate::naming;
use crate::policy::{TestName, TestRepo};

/// The Koji scratch build a request tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildUnderTest {
    /// `None` only for a pull request on a `tests/` repository, which has nothing to build and
    /// runs its own plans on the plain compose (SPEC F3).
    pub task_id: Option<i64>,
    /// The pull request's dist-git target branch (`rawhide`, `f42`, `epel10`, ...).
    pub branch: String,
    /// Whether this is the ELN build of a rawhide pull request.
    pub eln: bool,
}

/// The deployment-wide parts of every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadContext {
    /// `prod` or `stg`, given to the plans as the `deployment` context.
    pub deployment: String,
    /// Where Testing Farm reports back: our `POST /api/testing-farm/results`.
    pub webhook_url: String,
}

/// Where the `custom` test's plans come from: the pull request's source repository at its
/// head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomSource {
    /// A URL git clones from (`ProjectRef::git_url` of the source project).
    pub git_url: String,
    pub sha: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PayloadError {
    #[error("no tmt repository is configured for the {test} test")]
    MissingRepo { test: TestName },
    #[error("the custom test needs the pull request's source repository and head commit")]
    MissingCustomSource,
    #[error("the {test} test needs a Koji scratch build to test")]
    MissingBuild { test: TestName },
    #[error("branch {branch} has no Testing Farm compose")]
    UnsupportedBranch { branch: String },
}

/// The body of `POST /requests` for one test of one scratch build.
///
/// ```json
/// {"test": {"tmt": {"url", "ref"[, "name"]}},
///  "environments": [{"arch": "x86_64",
///                    "os": {"compose": ...},                  (installability and custom)
///                    "variables": {"KOJI_TASK_ID": "<task id>"},               (with a build)
///                    "artifacts": [{"id": "<task id>", "type": "fedora-koji-build"}],
///                                                          (custom, with a build)
///                    "tmt": {"context": {"distro", "arch", "trigger": "commit",
///                                        "initiator": "fedora-ci", "dist-git-branch",
///                                        "deployment"[, "variant": "eln"]}}}],
///  "notification": {"webhook": {"url": ...}}}
/// ```
///
/// The webhook token is a secret and is not part of the payload: the sender adds
/// `notification.webhook.token` at send time, so that what we record and show (dry runs, the
/// API, logs) never carries it.
///
/// Facts checked against Packit Service's Fedora CI requests (`_payload_custom` in
/// `packit_service/worker/helpers/testing_farm.py`, and the request Testing Farm echoes in
/// packit/research `research/integrations/fedora-ci/index.md`): the task id is a string both
/// in `KOJI_TASK_ID` and as the artifact id, the artifact type is `fedora-koji-build`, and the
/// context carries `trigger: commit` and `initiator: fedora-ci`. REFERENCE.md adds
/// `dist-git-branch` and `deployment` to every request, and `KOJI_TASK_ID` to every test
/// (Packit's old installability request passed `TASK_ID` and `PROFILE_NAME` instead).
/// For the ELN build of a rawhide pull request, `dist-git-branch` stays `rawhide`, as Packit
/// Service sends it (packit/packit-service issue 3055 discusses it), and REFERENCE.md's
/// `variant: eln` tells plans that this is the ELN build.
///
/// Only `custom` runs without a build (on a `tests/` repository); every other test inspects
/// the build, so without one it is [`PayloadError::MissingBuild`].
pub fn testing_farm_request(
    test: TestName,
    repo: Option<&TestRepo>,
    custom: Option<&CustomSource>,
    build: &BuildUnderTest,
    ctx: &PayloadContext,
) -> Result<Value, PayloadError> {
    let (url, git_ref, name) = match test {
        TestName::Custom => {
            let source = custom.ok_or(PayloadError::MissingCustomSource)?;
            (source.git_url.as_str(), source.sha.as_str(), None)
        }
        _ => {
            let repo = repo.ok_or(PayloadError::MissingRepo { test })?;
            (
                repo.url.as_str(),
                repo.git_ref.as_str(),
                repo.name.as_deref(),
            )
        }
    };
    let compose = naming::compose(&build.branch, build.eln).ok_or_else(|| {
        PayloadError::UnsupportedBranch {
            branch: build.branch.clone(),
        }
    })?;
    let task_id = match build.task_id {
        Some(id) => Some(id.to_string()),
        None if test == TestName::Custom => None,
        None => return Err(PayloadError::MissingBuild { test }),
    };

    let mut tmt = Map::new();
    tmt.insert("url".to_owned(), json!(url));
    tmt.insert("ref".to_owned(), json!(git_ref));
    if let Some(name) = name {
        tmt.insert("name".to_owned(), json!(name));
    }

    let mut context = Map::new();
    context.insert(
        "distro".to_owned(),
        json!(naming::tmt_distro(&build.branch, build.eln)),
    );
    context.insert("arch".to_owned(), json!("x86_64"));
    context.insert("trigger".to_owned(), json!("commit"));
    context.insert("initiator".to_owned(), json!("fedora-ci"));
    context.insert(
        "dist-git-branch".to_owned(),
        json!(naming::display_branch(&build.branch)),
    );
    context.insert("deployment".to_owned(), json!(ctx.deployment));
    if build.eln {
        context.insert("variant".to_owned(), json!("eln"));
    }

    let mut environment = Map::new();
    environment.insert("arch".to_owned(), json!("x86_64"));
    if test.needs_compose() {
        environment.insert("os".to_owned(), json!({ "compose": compose }));
    }
    if let Some(task_id) = &task_id {
        environment.insert("variables".to_owned(), json!({ "KOJI_TASK_ID": task_id }));
        if test == TestName::Custom {
            environment.insert(
                "artifacts".to_owned(),
                json!([{ "id": task_id, "type": "fedora-koji-build" }]),
            );
        }
    }
    environment.insert("tmt".to_owned(), json!({ "context": context }));

    Ok(json!({
        "test": { "tmt": tmt },
        "environments": [environment],
        "notification": { "webhook": { "url": ctx.webhook_url } },
    }))
}
