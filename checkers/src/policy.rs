//! What an operator decides: which projects and tests Fedora CI runs, and where each test's
//! tmt plans live.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// A test Fedora CI runs on Testing Farm after a successful scratch build.
///
/// The names are the ones packagers type in `/packit-ci test <name>` and the ones in
/// `fedora_ci.enabled_tests`, so they are part of our interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestName {
    Installability,
    Rpminspect,
    Rpmlint,
    Rmdepcheck,
    LicenseValidate,
    /// The package's own tmt plans, from the pull request's source repository.
    Custom,
}

impl TestName {
    pub const ALL: [TestName; 6] = [
        TestName::Installability,
        TestName::Rpminspect,
        TestName::Rpmlint,
        TestName::Rmdepcheck,
        TestName::LicenseValidate,
        TestName::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TestName::Installability => "installability",
            TestName::Rpminspect => "rpminspect",
            TestName::Rpmlint => "rpmlint",
            TestName::Rmdepcheck => "rmdepcheck",
            TestName::LicenseValidate => "license-validate",
            TestName::Custom => "custom",
        }
    }

    /// Exact names only: these are identifiers, not prose.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// Whether the Testing Farm request names a compose for the test to run on.
    ///
    /// The other plans provision their own container, so a compose would only cost a VM
    /// (REFERENCE.md, "compose in request").
    pub fn needs_compose(self) -> bool {
        matches!(self, TestName::Installability | TestName::Custom)
    }
}

impl fmt::Display for TestName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a test's tmt plans live: what goes into `test.tmt` of a Testing Farm request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TestRepo {
    pub url: String,
    /// Branch, tag or commit of `url`; `ref` in the configuration and in the request.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// Plan name, when the repository holds plans for more than this test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl TestRepo {
    fn new(url: &str, git_ref: &str, name: Option<&str>) -> Self {
        TestRepo {
            url: url.to_owned(),
            git_ref: git_ref.to_owned(),
            name: name.map(str::to_owned),
        }
    }
}

/// The ELN package lists Fedora's ELN SIG publishes, the ones Packit Service reads
/// (`ELN_PACKAGE_LIST` and `ELN_EXTRAS_PACKAGE_LIST` in `packit_service/constants.py`): the
/// default of `fedora_ci.eln_packages_urls`.
pub const ELN_PACKAGE_LISTS: [&str; 2] = [
    "https://tiny.distro.builders/view-all-source-package-name-list--view-eln.txt",
    "https://tiny.distro.builders/view-all-source-package-name-list--view-eln-extras.txt",
];

/// The `[fedora_ci]` section of the configuration, resolved: every rule reads it, none
/// looks anything up.
/// Packit's Fedora CI documentation, which packagers already know.
pub const DEFAULT_DOCS_URL: &str = "https://packit.dev/fedora-ci";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// `prod` or `stg`; goes into the tmt context and picks test plan refs.
    pub deployment: String,
    /// First part of every flag name, e.g. `Fedora CI`.
    pub check_name_prefix: String,
    /// What a retrigger comment starts with, e.g. `/packit-ci`.
    pub comment_prefix: String,
    /// The user documentation that help and syntax-error replies link.
    pub docs_url: String,
    /// True: every project except `disabled_projects`; false: only `enabled_projects`.
    pub run_by_default: bool,
    /// Project URLs, used when `run_by_default` is false.
    pub enabled_projects: Vec<String>,
    /// Project URLs, used when `run_by_default` is true.
    pub disabled_projects: Vec<String>,
    pub enabled_tests: Vec<TestName>,
    /// Project URLs whose rawhide pull requests get no ELN build.
    pub disabled_projects_for_eln: Vec<String>,
    /// Source package names that are part of ELN whatever the fetched lists say.
    pub eln_packages: BTreeSet<String>,
    /// Where the ELN package lists are fetched from; empty: nowhere, and only
    /// `eln_packages` counts.
    pub eln_packages_urls: Vec<String>,
    /// The defaults of [`default_test_repos`] with the configured overrides applied.
    pub tests: BTreeMap<TestName, TestRepo>,
    /// Our own dist-git account: its comments are ours and never commands.
    pub bot_user: String,
}

impl Policy {
    /// Everything on, for a local machine and for tests.
    pub fn local_default() -> Self {
        Policy {
            deployment: "prod".to_owned(),
            check_name_prefix: "Fedora CI".to_owned(),
            comment_prefix: "/packit-ci".to_owned(),
            docs_url: DEFAULT_DOCS_URL.to_owned(),
            run_by_default: true,
            enabled_projects: Vec::new(),
            disabled_projects: Vec::new(),
            enabled_tests: TestName::ALL.to_vec(),
            disabled_projects_for_eln: Vec::new(),
            eln_packages: BTreeSet::new(),
            eln_packages_urls: ELN_PACKAGE_LISTS.map(str::to_owned).to_vec(),
            tests: default_test_repos("prod"),
            bot_user: "fedora-ci".to_owned(),
        }
    }

    /// The tmt repository of a test; `None` for `custom`, whose plans come from the pull
    /// request itself.
    pub fn test_repo(&self, test: TestName) -> Option<&TestRepo> {
        self.tests.get(&test)
    }
}

/// The tmt repositories Fedora CI uses unless `[fedora_ci.tests.<name>]` says otherwise
/// (REFERENCE.md, "Tests Fedora CI runs after a successful scratch build").
///
/// The shared tests keep a `stg` branch so that staging tries plan changes before production
/// does. `custom` has no entry: its repository is the pull request's source at the head.
pub fn default_test_repos(deployment: &str) -> BTreeMap<TestName, TestRepo> {
    const SHARED_TESTS: &str = "https://forge.fedoraproject.org/ci/shared-tests";
    let shared_ref = if deployment == "stg" { "stg" } else { "main" };
    BTreeMap::from([
        (
            TestName::Installability,
            TestRepo::new(
                "https://github.com/fedora-ci/installability-pipeline.git",
                "master",
                None,
            ),
        ),
        (
            TestName::Rpminspect,
            TestRepo::new(
                "https://github.com/fedora-ci/rpminspect-pipeline.git",
                "master",
                None,
            ),
        ),
        (
            TestName::Rpmlint,
            TestRepo::new(
                "https://github.com/packit/tmt-plans.git",
                "main",
                Some("/plans/rpmlint"),
            ),
        ),
        (
            TestName::Rmdepcheck,
            TestRepo::new(SHARED_TESTS, shared_ref, Some("/rmdepcheck")),
        ),
        (
            TestName::LicenseValidate,
            TestRepo::new(SHARED_TESTS, shared_ref, Some("/license-validate")),
        ),
    ])
}
