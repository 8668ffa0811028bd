//! The eligibility rules: does this event lead to work, and if not, why not.
//!
//! A rule that needs only what the handler already holds answers `Result<(), Skip>`. A rule
//! that depends on something the service has to look up first (a branch, a file, a group
//! membership) takes that answer as an `Option` and answers [`Check`]: with `None` it returns
//! [`Check::Unknown`] naming the [`Fact`] to look up, so the handler can fetch exactly that and
//! ask again. The cheap, local conditions of such a rule are checked first, so no look-up is
//! asked for when the answer is already "skip".
//!
//! The `Display` text of a [`Skip`] is the reason stored with the event and shown to users.

use std::fmt;

use events::states::{KojiTaskState, TestingFarmState};
use thiserror::Error;

use crate::naming::{self, Release};
use crate::policy::{Policy, TestName};
use crate::project::{ProjectRef, normalize_project_url};

/// The FAS group whose members may retrigger Fedora CI (SPEC F5).
pub const PACKAGER_GROUP: &str = "packager";

/// The file whose presence at the pull request head says the package has tmt plans.
pub const FMF_VERSION_PATH: &str = ".fmf/version";

/// Why an event leads to no work. The text is short and starts in lower case, because it is
/// shown after "skipped: " in lists and as a flag comment.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Skip {
    #[error("project disabled: {url} is in fedora_ci.disabled_projects")]
    ProjectDisabled { url: String },
    #[error("project not enabled: {url} is not in fedora_ci.enabled_projects")]
    ProjectNotEnabled { url: String },
    #[error("not on dist-git: {url} is not a dist-git project")]
    NotOnDistGit { url: String },
    /// The names are quoted: they are what a forged message put there.
    #[error("invalid project name: the {part} {name:?} in {url:?} is not a valid dist-git name")]
    InvalidProjectName {
        url: String,
        /// `namespace`, `repository` or `fork owner`.
        part: &'static str,
        name: String,
    },
    #[error("namespace not supported: Fedora CI runs on rpms/ and tests/, not {namespace}/")]
    NamespaceNotSupported { namespace: String },
    #[error("tests namespace: only custom tests run here, not the {work}")]
    OnlyCustomInTestsNamespace { work: Work },
    #[error("unsupported branch: {branch} has no Koji target or Testing Farm compose")]
    UnsupportedBranch { branch: String },
    #[error("test not enabled: {test} is not in fedora_ci.enabled_tests")]
    TestNotEnabled { test: TestName },
    #[error("{}", no_successful_build(*state))]
    NoSuccessfulBuild { state: Option<KojiTaskState> },
    #[error(
        "no tmt plans: {FMF_VERSION_PATH} does not exist at {}",
        naming::short_sha(sha)
    )]
    NoFmfMetadata { sha: String },
    /// `list`: the fetched list it is not on; `None` when no list is fetched.
    #[error("{}", not_eln_package(package, list.as_ref()))]
    NotElnPackage {
        package: String,
        list: Option<ElnListSeen>,
    },
    #[error(
        "the ELN package list has never been fetched (fedora_ci.eln_packages_urls); \
         {package} is not in fedora_ci.eln_packages"
    )]
    ElnListNeverFetched { package: String },
    #[error("not rawhide: ELN builds are only for rawhide pull requests, this one is for {branch}")]
    NotRawhide { branch: String },
    #[error("opted out of ELN: {url} is in fedora_ci.disabled_projects_for_eln")]
    ElnDisabledForProject { url: String },
    #[error("has an eln branch: {url} builds ELN from its own eln branch")]
    HasElnBranch { url: String },
    #[error("not a packager: {user} is not in the FAS group {PACKAGER_GROUP}")]
    NotAPackager { user: String },
    #[error("own comment")]
    OwnComment,
    #[error("not a command for us")]
    NotACommand,
    #[error("superseded by {}", naming::short_sha(by_sha))]
    Superseded { by_sha: String },
    #[error("stale: the {tracked} is already {recorded}, this report says {reported}")]
    StaleState {
        tracked: Tracked,
        recorded: String,
        reported: String,
    },
    #[error("unchanged: the {tracked} is already {state}")]
    Unchanged { tracked: Tracked, state: String },
    #[error("pull request closed")]
    PullRequestClosed,
    #[error("gating disabled: gating.enabled is false")]
    GatingDisabled,
    #[error("update too large: {count} builds, more than gating.max_builds ({max})")]
    TooManyBuilds { count: usize, max: usize },
    #[error("release not supported: {release:?} has no Testing Farm compose")]
    ReleaseNotSupported { release: String },
    #[error("release not enabled: {release} is {kind}, which is not in gating.enabled_releases")]
    ReleaseNotEnabled {
        release: String,
        kind: crate::gating::ReleaseKind,
    },
    #[error("no Koji task: Koji does not say which task built {nvr}")]
    NoBuildTask { nvr: String },
    #[error("no source commit: {nvr} was not built from a dist-git commit")]
    NoSourceCommit { nvr: String },
}

fn not_eln_package(package: &str, list: Option<&ElnListSeen>) -> String {
    match list {
        Some(list) => format!(
            "not an ELN package: {package} is not on the ELN package lists of {} (fetched {}) \
             nor in fedora_ci.eln_packages",
            list.from, list.fetched_at
        ),
        None => format!(
            "not an ELN package: {package} is not in fedora_ci.eln_packages, and no ELN package \
             list is fetched"
        ),
    }
}

/// Which fetched ELN package list a package was not found on, as the reason names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElnListSeen {
    /// The hosts it came from, e.g. `tiny.distro.builders`.
    pub from: String,
    /// When it was fetched, e.g. `2026-12-03 10:00 UTC`.
    pub fetched_at: String,
}

fn no_successful_build(state: Option<KojiTaskState>) -> String {
    match state {
        None => "no successful build: the head has no scratch build".to_owned(),
        Some(state) => format!("no successful build: the scratch build of the head is {state}"),
    }
}

impl Skip {
    /// A stable identifier for the kind of skip, for metrics and API filters; the `Display`
    /// text may be reworded, this may not.
    pub fn code(&self) -> &'static str {
        match self {
            Skip::ProjectDisabled { .. } => "project_disabled",
            Skip::ProjectNotEnabled { .. } => "project_not_enabled",
            Skip::NotOnDistGit { .. } => "not_on_dist_git",
            Skip::InvalidProjectName { .. } => "invalid_project_name",
            Skip::NamespaceNotSupported { .. } => "namespace_not_supported",
            Skip::OnlyCustomInTestsNamespace { .. } => "only_custom_in_tests_namespace",
            Skip::UnsupportedBranch { .. } => "unsupported_branch",
            Skip::TestNotEnabled { .. } => "test_not_enabled",
            Skip::NoSuccessfulBuild { .. } => "no_successful_build",
            Skip::NoFmfMetadata { .. } => "no_fmf_metadata",
            Skip::NotElnPackage { .. } => "not_eln_package",
            Skip::ElnListNeverFetched { .. } => "eln_list_never_fetched",
            Skip::NotRawhide { .. } => "not_rawhide",
            Skip::ElnDisabledForProject { .. } => "eln_disabled_for_project",
            Skip::HasElnBranch { .. } => "has_eln_branch",
            Skip::NotAPackager { .. } => "not_a_packager",
            Skip::OwnComment => "own_comment",
            Skip::NotACommand => "not_a_command",
            Skip::Superseded { .. } => "superseded",
            Skip::StaleState { .. } => "stale_state",
            Skip::Unchanged { .. } => "unchanged",
            Skip::PullRequestClosed => "pull_request_closed",
            Skip::GatingDisabled => "gating_disabled",
            Skip::TooManyBuilds { .. } => "too_many_builds",
            Skip::ReleaseNotSupported { .. } => "release_not_supported",
            Skip::ReleaseNotEnabled { .. } => "release_not_enabled",
            Skip::NoBuildTask { .. } => "no_build_task",
            Skip::NoSourceCommit { .. } => "no_source_commit",
        }
    }
}

/// What a state report is about, for the reasons of [`Skip::StaleState`] and
/// [`Skip::Unchanged`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tracked {
    KojiTask,
    TestingFarmRequest,
}

impl fmt::Display for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tracked::KojiTask => "Koji task",
            Tracked::TestingFarmRequest => "Testing Farm request",
        })
    }
}

/// Something the service has to look up before a rule can answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Fact {
    /// Whether a dist-git project has a branch.
    BranchExists { project_url: String, branch: String },
    /// Whether a file exists in a dist-git project at a commit.
    FileExists {
        project_url: String,
        sha: String,
        path: String,
    },
    /// Whether a FAS user is a member of a group.
    GroupMember { user: String, group: String },
    /// What Koji knows of an official build: its task, target and source.
    KojiBuild { build_id: i64 },
}

impl Fact {
    /// A stable key for caching the answer; the first part names the service that knows it.
    pub fn key(&self) -> String {
        match self {
            Fact::BranchExists {
                project_url,
                branch,
            } => format!("distgit:branch:{project_url}:{branch}"),
            Fact::FileExists {
                project_url,
                sha,
                path,
            } => format!("distgit:file:{project_url}:{sha}:{path}"),
            Fact::GroupMember { user, group } => format!("fas:group:{group}:{user}"),
            Fact::KojiBuild { build_id } => format!("koji:build:{build_id}"),
        }
    }

    /// What is being looked up, as a phrase for logs and recorded decisions.
    pub fn describe(&self) -> String {
        match self {
            Fact::BranchExists {
                project_url,
                branch,
            } => format!(
                "whether {project_url} has a{} {branch} branch",
                article_n(branch)
            ),
            Fact::FileExists {
                project_url,
                sha,
                path,
            } => format!(
                "whether {path} exists in {project_url} at {}",
                naming::short_sha(sha)
            ),
            Fact::GroupMember { user, group } => {
                format!("whether {user} is in the FAS group {group}")
            }
            Fact::KojiBuild { build_id } => {
                format!("which task and commit Koji build {build_id} was built by")
            }
        }
    }
}

fn article_n(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "n"
    } else {
        ""
    }
}

/// The answer of a rule that may need a look-up first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Pass,
    Skip(Skip),
    /// Look this up, then ask the rule again with the answer.
    Unknown(Fact),
}

impl Check {
    pub fn is_pass(&self) -> bool {
        matches!(self, Check::Pass)
    }
}

impl From<Result<(), Skip>> for Check {
    fn from(result: Result<(), Skip>) -> Self {
        match result {
            Ok(()) => Check::Pass,
            Err(skip) => Check::Skip(skip),
        }
    }
}

/// A piece of work a pull request can get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Work {
    ScratchBuild,
    Test(TestName),
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Work::ScratchBuild => f.write_str("scratch build"),
            Work::Test(test) => write!(f, "{test} test"),
        }
    }
}

/// Whether Fedora CI runs for the project at all.
///
/// With `run_by_default` every project runs unless it is in `disabled_projects`; without it,
/// only projects in `enabled_projects` do. Which namespaces get Fedora CI is
/// [`namespace_allows`]' business. URLs compare after [`normalize_project_url`], so
/// `https://src.fedoraproject.org/rpms/foo.git/` in the configuration matches the message's
/// `https://src.fedoraproject.org/rpms/foo`.
pub fn project_enabled(policy: &Policy, project_url: &str) -> Result<(), Skip> {
    let url = normalize_project_url(project_url);
    let listed = |list: &[String]| list.iter().any(|entry| normalize_project_url(entry) == url);
    if policy.run_by_default {
        if listed(&policy.disabled_projects) {
            return Err(Skip::ProjectDisabled { url });
        }
    } else if !listed(&policy.enabled_projects) {
        return Err(Skip::ProjectNotEnabled { url });
    }
    Ok(())
}

/// Whether Fedora CI runs for a project: in a namespace it runs in ([`namespace_supported`]),
/// and enabled by the configuration ([`project_enabled`]).
pub fn runs_on(policy: &Policy, project: &ProjectRef) -> Result<(), Skip> {
    namespace_supported(&project.namespace)?;
    project_enabled(policy, &project.url)
}

/// Whether Fedora CI runs in a dist-git namespace at all: package repositories (`rpms`) and
/// test repositories (`tests`), as in Packit Service; pull requests of the others
/// (`container`, `modules`, `flatpaks`, ...) get no pipeline.
pub fn namespace_supported(namespace: &str) -> Result<(), Skip> {
    match namespace {
        "rpms" | "tests" => Ok(()),
        namespace => Err(Skip::NamespaceNotSupported {
            namespace: namespace.to_owned(),
        }),
    }
}

/// Which work a namespace gets: package repositories (`rpms`) everything; test repositories
/// (`tests`) only their own tmt plans, as there is no package to build; nothing else.
pub fn namespace_allows(namespace: &str, work: Work) -> Result<(), Skip> {
    namespace_supported(namespace)?;
    match (namespace, work) {
        ("tests", Work::Test(TestName::Custom)) | ("rpms", _) => Ok(()),
        (_, work) => Err(Skip::OnlyCustomInTestsNamespace { work }),
    }
}

/// Whether a pull request's target branch is one we can build and test: rawhide, `fNN`,
/// `epelN`, `epelN.M` or `eln`. Pull requests against feature branches have no Koji target.
pub fn branch_supported(branch: &str) -> Result<(), Skip> {
    match Release::from_branch(branch) {
        Some(_) => Ok(()),
        None => Err(Skip::UnsupportedBranch {
            branch: branch.to_owned(),
        }),
    }
}

pub fn test_enabled(policy: &Policy, test: TestName) -> Result<(), Skip> {
    if policy.enabled_tests.contains(&test) {
        Ok(())
    } else {
        Err(Skip::TestNotEnabled { test })
    }
}

/// The ELN package list the service fetched last, as it concerns one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElnList {
    /// Whether the package is on it.
    pub listed: bool,
    /// The URLs it was fetched from.
    pub sources: Vec<String>,
    /// When it was fetched, as reasons show it (`2026-12-03 10:00 UTC`).
    pub fetched_at: String,
}

impl ElnList {
    fn seen(&self) -> ElnListSeen {
        let mut hosts: Vec<&str> = Vec::new();
        for url in &self.sources {
            let host = url_host(url);
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        ElnListSeen {
            from: hosts.join(" and "),
            fetched_at: self.fetched_at.clone(),
        }
    }
}

/// `tiny.distro.builders` of `https://tiny.distro.builders/view-eln.txt`.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

/// Whether a rawhide pull request also gets an ELN scratch build (SPEC F1).
///
/// `project` is the pull request's target project: the ELN package lists name source
/// packages, which are repository names in `rpms/`. A package is part of ELN when it is in
/// `fedora_ci.eln_packages` (the operator's override) or on the lists the service fetches
/// from `fedora_ci.eln_packages_urls`; `eln_list` is what the last fetch says of the package
/// (`None`: no list was ever fetched). With no URL configured nothing is fetched, and only
/// the override counts. A package with its own `eln` branch builds ELN from there, so a
/// rawhide change says nothing about it; whether that branch exists is the look-up this rule
/// may ask for.
pub fn eln_build_needed(
    policy: &Policy,
    project: &ProjectRef,
    target_branch: &str,
    eln_list: Option<&ElnList>,
    has_eln_branch: Option<bool>,
) -> Check {
    if Release::from_branch(target_branch) != Some(Release::Rawhide) {
        return Check::Skip(Skip::NotRawhide {
            branch: target_branch.to_owned(),
        });
    }
    if !policy.eln_packages.contains(&project.repo) {
        let package = project.repo.clone();
        let fetching = !policy.eln_packages_urls.is_empty();
        match eln_list.filter(|_| fetching) {
            Some(list) if list.listed => {}
            Some(list) => {
                return Check::Skip(Skip::NotElnPackage {
                    package,
                    list: Some(list.seen()),
                });
            }
            None if fetching => return Check::Skip(Skip::ElnListNeverFetched { package }),
            None => {
                return Check::Skip(Skip::NotElnPackage {
                    package,
                    list: None,
                });
            }
        }
    }
    let url = normalize_project_url(&project.url);
    if policy
        .disabled_projects_for_eln
        .iter()
        .any(|entry| normalize_project_url(entry) == url)
    {
        return Check::Skip(Skip::ElnDisabledForProject { url });
    }
    match has_eln_branch {
        None => Check::Unknown(Fact::BranchExists {
            project_url: url,
            branch: "eln".to_owned(),
        }),
        Some(true) => Check::Skip(Skip::HasElnBranch { url }),
        Some(false) => Check::Pass,
    }
}

/// Tests run only on a scratch build of the head that finished successfully (`CLOSED`).
pub fn build_succeeded(state: Option<KojiTaskState>) -> Result<(), Skip> {
    match state {
        Some(KojiTaskState::Closed) => Ok(()),
        state => Err(Skip::NoSuccessfulBuild { state }),
    }
}

/// Whether the package has its own tmt plans at the head: `.fmf/version` exists in the
/// repository the head commit lives in (the fork, for a pull request from a fork).
///
/// Packit Service uses the same marker (`is_fmf_configured` in
/// `packit_service/worker/helpers/testing_farm.py`).
pub fn custom_tests_possible(
    project_url: &str,
    sha: &str,
    fmf_version_present: Option<bool>,
) -> Check {
    match fmf_version_present {
        None => Check::Unknown(Fact::FileExists {
            project_url: normalize_project_url(project_url),
            sha: sha.to_owned(),
            path: FMF_VERSION_PATH.to_owned(),
        }),
        Some(true) => Check::Pass,
        Some(false) => Check::Skip(Skip::NoFmfMetadata {
            sha: sha.to_owned(),
        }),
    }
}

/// Only packagers may retrigger (SPEC F5); `groups` are the user's FAS group names.
pub fn may_retrigger(user: &str, groups: Option<&[String]>) -> Check {
    match groups {
        None => Check::Unknown(Fact::GroupMember {
            user: user.to_owned(),
            group: PACKAGER_GROUP.to_owned(),
        }),
        Some(groups) if groups.iter().any(|g| g == PACKAGER_GROUP) => Check::Pass,
        Some(_) => Check::Skip(Skip::NotAPackager {
            user: user.to_owned(),
        }),
    }
}

/// Our own comments (usage replies, refusals) quote commands; they must never run them.
pub fn not_own_comment(policy: &Policy, author: &str) -> Result<(), Skip> {
    if author.trim().eq_ignore_ascii_case(policy.bot_user.trim()) {
        Err(Skip::OwnComment)
    } else {
        Ok(())
    }
}

/// Work for a commit that is no longer the pull request's head is superseded: its results
/// must not reach the pull request any more.
pub fn is_current_head(pipeline_sha: &str, pr_head_sha: &str) -> Result<(), Skip> {
    if pipeline_sha.trim().eq_ignore_ascii_case(pr_head_sha.trim()) {
        Ok(())
    } else {
        Err(Skip::Superseded {
            by_sha: pr_head_sha.to_owned(),
        })
    }
}

/// Whether a reported Koji task state moves the recorded one forward.
///
/// Messages arrive late and out of order, and polling reports what a message already did: a
/// step earlier than the recorded one is stale, the same step is no change, and a finished
/// task never changes again (`FAILED` after `CLOSED` is as stale as `OPEN` after it).
pub fn koji_transition(
    current: Option<KojiTaskState>,
    incoming: KojiTaskState,
) -> Result<(), Skip> {
    let Some(current) = current else {
        return Ok(());
    };
    transition(
        Tracked::KojiTask,
        (current.name(), current.progress(), current.is_final()),
        (incoming.name(), incoming.progress()),
    )
}

/// Whether a reported Testing Farm state moves the recorded one forward; the same rules as
/// [`koji_transition`].
pub fn testing_farm_transition(
    current: Option<TestingFarmState>,
    incoming: TestingFarmState,
) -> Result<(), Skip> {
    let Some(current) = current else {
        return Ok(());
    };
    transition(
        Tracked::TestingFarmRequest,
        (current.as_str(), current.progress(), current.is_final()),
        (incoming.as_str(), incoming.progress()),
    )
}

fn transition(
    tracked: Tracked,
    (recorded, recorded_progress, recorded_final): (&str, u8, bool),
    (reported, reported_progress): (&str, u8),
) -> Result<(), Skip> {
    if recorded == reported {
        return Err(Skip::Unchanged {
            tracked,
            state: recorded.to_owned(),
        });
    }
    if recorded_final || reported_progress <= recorded_progress {
        return Err(Skip::StaleState {
            tracked,
            recorded: recorded.to_owned(),
            reported: reported.to_owned(),
        });
    }
    Ok(())
}
