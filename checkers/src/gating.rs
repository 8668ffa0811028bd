//! Gating (SPEC F6): which Bodhi updates get tested, on what, and the Fedora CI messages that
//! report each test to ResultsDB and Greenwave.
//!
//! Bodhi announces an update ready for testing; each of its builds is tested on Testing Farm;
//! each test's progress is published as a CI message (`<prefix>.koji-build.test.<state>`,
//! CI Messages spec 1.x). Greenwave's gating rules refer to a test by its test case name,
//! `<namespace>.<type>.<category>` of the message's `test` section, so those names are part
//! of our contract with every package's `gating.yaml` and default to the ones Fedora's
//! policies already use (see [`default_test_cases`]).

use std::collections::BTreeMap;
use std::fmt;

use events::states::{TestingFarmResult, TestingFarmState};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::naming::{self, Release};
use crate::policy::TestName;
use crate::rules::Skip;

/// The CI Messages spec version our bodies follow.
pub const CI_MESSAGES_VERSION: &str = "1.0.0";

/// The kinds of release an operator can turn gating on for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseKind {
    /// Fedora releases, rawhide included.
    Fedora,
    /// EPEL, tested on CentOS Stream.
    Epel,
    /// Fedora ELN.
    Eln,
}

impl ReleaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseKind::Fedora => "fedora",
            ReleaseKind::Epel => "epel",
            ReleaseKind::Eln => "eln",
        }
    }

    pub fn of(release: Release) -> ReleaseKind {
        match release {
            Release::Rawhide | Release::Fedora(_) => ReleaseKind::Fedora,
            Release::Epel { .. } => ReleaseKind::Epel,
            Release::Eln => ReleaseKind::Eln,
        }
    }
}

impl fmt::Display for ReleaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A test case as Greenwave knows it: `namespace.type.category`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TestCase {
    pub namespace: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub category: String,
    /// Where a packager reads what the test does (`test.docs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs: Option<String>,
}

impl TestCase {
    fn new(kind: &str, category: &str, docs: &str) -> Self {
        TestCase {
            namespace: "fedora-ci.koji-build".to_owned(),
            kind: kind.to_owned(),
            category: category.to_owned(),
            docs: Some(docs.to_owned()),
        }
    }

    /// The name gating rules use, e.g. `fedora-ci.koji-build.tier0.functional`.
    pub fn name(&self) -> String {
        format!("{}.{}.{}", self.namespace, self.kind, self.category)
    }
}

/// The test case names our tests report under unless `[gating.test_cases.<test>]` says
/// otherwise.
///
/// The names of `installability`, `rpminspect` and `custom` (a package's own tmt plans, which
/// Fedora CI has always reported as `tier0`) are the ones Fedora's gating documentation tells
/// packagers to put in `gating.yaml` (the "Gating" page of the Fedora CI docs,
/// <https://docs.fedoraproject.org/en-US/ci/gating/>), and so the ones existing policies wait
/// for. The pull-request-only tests had no official-build pipeline before; their names follow
/// the same pattern.
pub fn default_test_cases() -> BTreeMap<TestName, TestCase> {
    BTreeMap::from([
        (
            TestName::Installability,
            TestCase::new(
                "installability",
                "functional",
                "https://github.com/fedora-ci/installability-pipeline",
            ),
        ),
        (
            TestName::Rpminspect,
            TestCase::new(
                "rpminspect",
                "static-analysis",
                "https://github.com/fedora-ci/rpminspect-pipeline",
            ),
        ),
        (
            TestName::Rpmlint,
            TestCase::new(
                "rpmlint",
                "static-analysis",
                "https://github.com/packit/tmt-plans",
            ),
        ),
        (
            TestName::Rmdepcheck,
            TestCase::new(
                "rmdepcheck",
                "functional",
                "https://forge.fedoraproject.org/ci/shared-tests",
            ),
        ),
        (
            TestName::LicenseValidate,
            TestCase::new(
                "license-validate",
                "validation",
                "https://forge.fedoraproject.org/ci/shared-tests",
            ),
        ),
        (
            TestName::Custom,
            TestCase::new(
                "tier0",
                "functional",
                "https://docs.fedoraproject.org/en-US/ci/tmt/",
            ),
        ),
    ])
}

/// Who runs the tests, as every CI message says (`contact`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    pub team: String,
    pub email: String,
    pub docs: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub irc: Option<String>,
}

/// The `[gating]` section of the configuration, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatingPolicy {
    pub enabled: bool,
    /// Updates with more builds than this are not tested.
    pub max_builds: usize,
    pub enabled_releases: Vec<ReleaseKind>,
    /// The Fedora release that is rawhide (`f45`), when the operator says so; otherwise a
    /// build made for the `rawhide` Koji target marks its release as rawhide.
    pub rawhide_release: Option<String>,
    pub tests: Vec<TestName>,
    /// [`default_test_cases`] with the configured overrides applied.
    pub test_cases: BTreeMap<TestName, TestCase>,
    /// `org.centos.prod.ci`: what CI message topics start with.
    pub topic_prefix: String,
    pub contact: Contact,
}

impl GatingPolicy {
    /// Everything on, for a local machine and for tests.
    pub fn local_default() -> Self {
        GatingPolicy {
            enabled: true,
            max_builds: 20,
            enabled_releases: vec![ReleaseKind::Fedora],
            rawhide_release: None,
            tests: vec![
                TestName::Installability,
                TestName::Rpminspect,
                TestName::Rpmlint,
                TestName::Custom,
            ],
            test_cases: default_test_cases(),
            topic_prefix: "org.centos.prod.ci".to_owned(),
            contact: Contact {
                name: "Fedora CI".to_owned(),
                team: "Fedora CI".to_owned(),
                email: "ci@lists.fedoraproject.org".to_owned(),
                docs: "https://docs.fedoraproject.org/en-US/ci/".to_owned(),
                url: "http://127.0.0.1:8080".to_owned(),
                irc: None,
            },
        }
    }

    pub fn test_case(&self, test: TestName) -> TestCase {
        self.test_cases.get(&test).cloned().unwrap_or_else(|| {
            // Every test has a default; this is for a policy built by hand without one.
            TestCase::new(test.as_str(), "functional", "")
        })
    }
}

/// A release as Bodhi names it (`f34`, `F43`, `EPEL-9`, `epel10.1`, `ELN`): lower-cased,
/// dashes dropped, then read as the dist-git branch of the same name. Container and Flatpak
/// releases (`F43C`, `F43F`) are not RPM builds and come back `None`.
pub fn parse_release(name: &str) -> Option<Release> {
    let normal: String = name
        .trim()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| *c != '-')
        .collect();
    Release::from_branch(&normal)
}

/// Whether an update for this release gets tested: the release is one we can name a compose
/// for, and its kind is in `gating.enabled_releases`.
pub fn release_enabled(policy: &GatingPolicy, name: Option<&str>) -> Result<Release, Skip> {
    let name = name.unwrap_or("");
    let release = parse_release(name).ok_or_else(|| Skip::ReleaseNotSupported {
        release: name.to_owned(),
    })?;
    let kind = ReleaseKind::of(release);
    if policy.enabled_releases.contains(&kind) {
        Ok(release)
    } else {
        Err(Skip::ReleaseNotEnabled {
            release: name.to_owned(),
            kind,
        })
    }
}

/// Whether gating is on and the update is small enough to test.
pub fn update_testable(policy: &GatingPolicy, builds: usize) -> Result<(), Skip> {
    if !policy.enabled {
        return Err(Skip::GatingDisabled);
    }
    if builds > policy.max_builds {
        return Err(Skip::TooManyBuilds {
            count: builds,
            max: policy.max_builds,
        });
    }
    Ok(())
}

/// The release a build is tested on: rawhide when the operator named this release rawhide, or
/// when the build was made for the `rawhide` target; otherwise the release itself.
pub fn tested_release(
    policy: &GatingPolicy,
    bodhi_name: &str,
    release: Release,
    koji_target: Option<&str>,
) -> Release {
    let named_rawhide = policy
        .rawhide_release
        .as_deref()
        .and_then(parse_release)
        .is_some_and(|r| Some(r) == parse_release(bodhi_name));
    match release {
        Release::Fedora(_) if named_rawhide || koji_target == Some("rawhide") => Release::Rawhide,
        other => other,
    }
}

/// The release's short name, as branches are named: `rawhide`, `f43`, `epel9`, `epel10.1`,
/// `eln`. It is what [`naming::compose`] and [`naming::tmt_distro`] read.
pub fn release_label(release: Release) -> String {
    match release {
        Release::Rawhide => "rawhide".to_owned(),
        Release::Fedora(version) => format!("f{version}"),
        Release::Epel {
            major,
            minor: Some(minor),
        } => format!("epel{major}.{minor}"),
        Release::Epel { major, minor: None } => format!("epel{major}"),
        Release::Eln => "eln".to_owned(),
    }
}

/// The official build a gating request tests, with the rest of its update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatingBuild {
    pub task_id: i64,
    /// The Koji tasks of the update's other builds.
    pub others: Vec<i64>,
    pub release: Release,
}

/// The body of `POST /requests` for one test of one build of a Bodhi update.
///
/// Like the pull-request requests of [`crate::payload::testing_farm_request`], with these
/// differences:
/// - the compose and `distro` come from the update's release;
/// - the tmt context says `trigger: build`, as Fedora CI's requests for Koji builds have
///   always said (a request Testing Farm echoed for a Fedora CI Koji build test in 2021 carried
///   `{"arch": "x86_64", "distro": "fedora-35", "trigger": "build"}`);
/// - the other builds of the update go along as `fedora-koji-build` artifacts, so that the
///   test sees the update as a whole: `custom` installs all of them; the other tests find the
///   build under test by `KOJI_TASK_ID` and get the others as artifacts that are made
///   available but not installed (`install: false`), so that dependencies between the
///   update's builds resolve without changing what the test installs itself.
pub fn gating_request(
    test: TestName,
    repo: Option<&crate::policy::TestRepo>,
    custom: Option<&crate::payload::CustomSource>,
    build: &GatingBuild,
    ctx: &crate::payload::PayloadContext,
) -> Result<Value, crate::payload::PayloadError> {
    use crate::payload::PayloadError;
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
    let label = release_label(build.release);
    let compose =
        naming::compose(&label, false).ok_or_else(|| PayloadError::UnsupportedBranch {
            branch: label.clone(),
        })?;
    let task_id = build.task_id.to_string();

    let mut tmt = Map::new();
    tmt.insert("url".to_owned(), json!(url));
    tmt.insert("ref".to_owned(), json!(git_ref));
    if let Some(name) = name {
        tmt.insert("name".to_owned(), json!(name));
    }
    let mut context = Map::new();
    context.insert(
        "distro".to_owned(),
        json!(naming::tmt_distro(&label, false)),
    );
    context.insert("arch".to_owned(), json!("x86_64"));
    context.insert("trigger".to_owned(), json!("build"));
    context.insert("initiator".to_owned(), json!("fedora-ci"));
    context.insert("dist-git-branch".to_owned(), json!(label));
    context.insert("deployment".to_owned(), json!(ctx.deployment));

    let others = build
        .others
        .iter()
        .map(|id| id.to_string())
        .filter(|id| *id != task_id);
    let artifacts: Vec<Value> = if test == TestName::Custom {
        std::iter::once(task_id.clone())
            .chain(others)
            .map(|id| json!({"id": id, "type": "fedora-koji-build"}))
            .collect()
    } else {
        others
            .map(|id| json!({"id": id, "type": "fedora-koji-build", "install": false}))
            .collect()
    };

    let mut environment = Map::new();
    environment.insert("arch".to_owned(), json!("x86_64"));
    if test.needs_compose() {
        environment.insert("os".to_owned(), json!({ "compose": compose }));
    }
    environment.insert("variables".to_owned(), json!({ "KOJI_TASK_ID": task_id }));
    if !artifacts.is_empty() {
        environment.insert("artifacts".to_owned(), Value::Array(artifacts));
    }
    environment.insert("tmt".to_owned(), json!({ "context": context }));
    Ok(json!({
        "test": { "tmt": tmt },
        "environments": [environment],
        "notification": { "webhook": { "url": ctx.webhook_url } },
    }))
}

/// A test result as CI messages say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CiResult {
    Passed,
    Failed,
    Info,
    NeedsInspection,
    NotApplicable,
}

impl CiResult {
    pub fn as_str(self) -> &'static str {
        match self {
            CiResult::Passed => "passed",
            CiResult::Failed => "failed",
            CiResult::Info => "info",
            CiResult::NeedsInspection => "needs_inspection",
            CiResult::NotApplicable => "not_applicable",
        }
    }
}

/// The states a test goes through on the bus; each is one message, on the topic of its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CiState {
    Queued,
    Running,
    Complete {
        result: CiResult,
    },
    /// The test could not give a result: Testing Farm failed, refused the request, or never
    /// answered in time.
    Error {
        reason: String,
    },
}

impl CiState {
    pub fn name(&self) -> &'static str {
        match self {
            CiState::Queued => "queued",
            CiState::Running => "running",
            CiState::Complete { .. } => "complete",
            CiState::Error { .. } => "error",
        }
    }

    /// Whether the test is over.
    pub fn is_final(&self) -> bool {
        matches!(self, CiState::Complete { .. } | CiState::Error { .. })
    }
}

/// The CI message for a Testing Farm state, `None` while nothing changes for the bus (`new`).
///
/// `complete` maps Testing Farm's overall result: `passed` and `failed` as they are; `skipped`
/// (nothing in the plans applied) as `not_applicable`; `unknown` as `needs_inspection`, for a
/// person to look at. A request that ended in `error` (or `complete` with an `error` result:
/// Testing Farm could not run the tests) is an `error` message with Testing Farm's summary as
/// the reason; a canceled request is an `error` too, as it gave no result.
pub fn ci_state(
    state: TestingFarmState,
    result: Option<TestingFarmResult>,
    summary: Option<&str>,
) -> Option<CiState> {
    let reason = |default: &str| {
        summary
            .filter(|s| !s.trim().is_empty())
            .map_or_else(|| default.to_owned(), |s| s.trim().to_owned())
    };
    match state {
        TestingFarmState::New => None,
        TestingFarmState::Queued => Some(CiState::Queued),
        TestingFarmState::Running | TestingFarmState::CancelRequested => Some(CiState::Running),
        TestingFarmState::Complete => Some(match result {
            Some(TestingFarmResult::Passed) => CiState::Complete {
                result: CiResult::Passed,
            },
            Some(TestingFarmResult::Failed) => CiState::Complete {
                result: CiResult::Failed,
            },
            Some(TestingFarmResult::Skipped) => CiState::Complete {
                result: CiResult::NotApplicable,
            },
            Some(TestingFarmResult::Unknown) | None => CiState::Complete {
                result: CiResult::NeedsInspection,
            },
            Some(TestingFarmResult::Error) => CiState::Error {
                reason: reason("Testing Farm could not run the tests"),
            },
        }),
        TestingFarmState::Error => Some(CiState::Error {
            reason: reason("Testing Farm reported an infrastructure error"),
        }),
        TestingFarmState::Canceled => Some(CiState::Error {
            reason: reason("the Testing Farm request was canceled"),
        }),
    }
}

/// The build a CI message is about (`artifact`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiArtifact {
    pub task_id: i64,
    pub issuer: String,
    pub component: String,
    pub nvr: String,
}

/// Everything a CI message says besides its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiMessage<'a> {
    pub contact: &'a Contact,
    pub artifact: &'a CiArtifact,
    pub test_case: &'a TestCase,
    /// Stable for one test of one round of testing: [`pipeline_id`].
    pub pipeline_id: &'a str,
    pub pipeline_name: &'a str,
    /// The test's page (Testing Farm's artifacts page once known).
    pub run_url: &'a str,
    /// Where its logs are.
    pub run_log: &'a str,
    /// The Testing Farm compose it ran on.
    pub compose: Option<&'a str>,
    /// Testing Farm's summary.
    pub note: Option<&'a str>,
    pub xunit_url: Option<&'a str>,
    /// RFC 3339.
    pub generated_at: &'a str,
}

/// The topic of a state's message: `<prefix>.koji-build.test.<state>`.
pub fn ci_topic(prefix: &str, state: &CiState) -> String {
    format!(
        "{}.koji-build.test.{}",
        prefix.trim_end_matches('.'),
        state.name()
    )
}

/// A `pipeline.id` that is the same for every message of one test of one round, and differs
/// between rounds: a hash of what decided the test run.
pub fn pipeline_id(run_key: &str) -> String {
    let mut id = hex::encode(Sha256::digest(run_key.as_bytes()));
    id.truncate(32);
    id
}

/// The body of a CI message (CI Messages spec 1.x, `koji-build.test.*`).
pub fn ci_body(state: &CiState, message: &CiMessage<'_>) -> Value {
    let contact = message.contact;
    let mut contact_json = json!({
        "name": contact.name,
        "team": contact.team,
        "email": contact.email,
        "docs": contact.docs,
        "url": contact.url,
    });
    if let Some(irc) = &contact.irc {
        contact_json["irc"] = json!(irc);
    }
    let case = message.test_case;
    let mut test = json!({
        "category": case.category,
        "namespace": case.namespace,
        "type": case.kind,
        "docs": case.docs.clone().unwrap_or_default(),
        "note": message.note.unwrap_or(""),
    });
    if let CiState::Complete { result } = state {
        test["result"] = json!(result.as_str());
    }
    if let Some(xunit) = message.xunit_url {
        test["xunit_urls"] = json!([xunit]);
    }
    let mut body = json!({
        "contact": contact_json,
        "run": {"url": message.run_url, "log": message.run_log},
        "artifact": {
            "type": "koji-build",
            "id": message.artifact.task_id,
            "issuer": message.artifact.issuer,
            "component": message.artifact.component,
            "nvr": message.artifact.nvr,
            "scratch": false,
        },
        "pipeline": {"id": message.pipeline_id, "name": message.pipeline_name},
        "test": test,
        "generated_at": message.generated_at,
        "version": CI_MESSAGES_VERSION,
    });
    if let Some(compose) = message.compose {
        body["system"] = json!([{
            "os": compose,
            "provider": "testing-farm",
            "architecture": "x86_64",
        }]);
    }
    if let CiState::Error { reason } = state {
        body["error"] = json!({"reason": reason});
    }
    body
}
