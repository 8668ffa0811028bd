use std::collections::BTreeSet;

use checkers::policy::{ELN_PACKAGE_LISTS, Policy, TestName};
use checkers::project::parse_project_url;
use checkers::rules::{
    Check, ElnList, Fact, Skip, Tracked, Work, branch_supported, build_succeeded,
    custom_tests_possible, eln_build_needed, is_current_head, koji_transition, may_retrigger,
    namespace_allows, not_own_comment, project_enabled, test_enabled, testing_farm_transition,
};
use events::states::{KojiTaskState, TestingFarmState};

const FOO: &str = "https://src.fedoraproject.org/rpms/foo";
const BAR: &str = "https://src.fedoraproject.org/rpms/bar";

fn policy_with(run_by_default: bool, enabled: &[&str], disabled: &[&str]) -> Policy {
    Policy {
        run_by_default,
        enabled_projects: enabled.iter().map(|s| s.to_string()).collect(),
        disabled_projects: disabled.iter().map(|s| s.to_string()).collect(),
        ..Policy::local_default()
    }
}

/// Compares an answer and, for a skip, its user-facing text.
fn assert_result(actual: Result<(), Skip>, expected: Result<(), &str>, case: &str) {
    match (actual, expected) {
        (Ok(()), Ok(())) => {}
        (Err(skip), Err(text)) => assert_eq!(skip.to_string(), text, "{case}"),
        (actual, expected) => panic!("{case}: got {actual:?}, expected {expected:?}"),
    }
}

/// run_by_default, enabled_projects, disabled_projects, project URL, answer
type ProjectCase = (
    bool,
    &'static [&'static str],
    &'static [&'static str],
    &'static str,
    Result<(), &'static str>,
);

#[test]
fn project_enabled_by_default_unless_disabled() {
    let table: [ProjectCase; 9] = [
        (true, &[], &[], FOO, Ok(())),
        (true, &[], &[BAR], FOO, Ok(())),
        (
            true,
            &[],
            &[FOO],
            FOO,
            Err(
                "project disabled: https://src.fedoraproject.org/rpms/foo is in fedora_ci.disabled_projects",
            ),
        ),
        (
            true,
            &[],
            &["https://src.fedoraproject.org/rpms/foo.git/"],
            "https://src.fedoraproject.org/rpms/foo/",
            Err(
                "project disabled: https://src.fedoraproject.org/rpms/foo is in fedora_ci.disabled_projects",
            ),
        ),
        // The enabled list means nothing when everything runs by default.
        (true, &[BAR], &[], FOO, Ok(())),
        (
            false,
            &[],
            &[],
            FOO,
            Err(
                "project not enabled: https://src.fedoraproject.org/rpms/foo is not in fedora_ci.enabled_projects",
            ),
        ),
        (false, &[FOO], &[], FOO, Ok(())),
        (
            false,
            &["https://src.fedoraproject.org/rpms/foo.git"],
            &[],
            FOO,
            Ok(()),
        ),
        // The disabled list means nothing in opt-in mode.
        (false, &[FOO], &[FOO], FOO, Ok(())),
    ];
    for (run_by_default, enabled, disabled, url, expected) in table {
        let policy = policy_with(run_by_default, enabled, disabled);
        let case = format!(
            "run_by_default={run_by_default} enabled={enabled:?} disabled={disabled:?} {url}"
        );
        assert_result(project_enabled(&policy, url), expected, &case);
    }
}

#[test]
fn namespaces_allow_their_work() {
    let custom = Work::Test(TestName::Custom);
    let rpmlint = Work::Test(TestName::Rpmlint);
    let table = [
        ("rpms", Work::ScratchBuild, Ok(())),
        ("rpms", rpmlint, Ok(())),
        ("rpms", custom, Ok(())),
        ("tests", custom, Ok(())),
        (
            "tests",
            Work::ScratchBuild,
            Err("tests namespace: only custom tests run here, not the scratch build"),
        ),
        (
            "tests",
            rpmlint,
            Err("tests namespace: only custom tests run here, not the rpmlint test"),
        ),
        (
            "container",
            Work::ScratchBuild,
            Err("namespace not supported: Fedora CI runs on rpms/ and tests/, not container/"),
        ),
        (
            "modules",
            custom,
            Err("namespace not supported: Fedora CI runs on rpms/ and tests/, not modules/"),
        ),
        (
            "RPMS",
            Work::ScratchBuild,
            Err("namespace not supported: Fedora CI runs on rpms/ and tests/, not RPMS/"),
        ),
    ];
    for (namespace, work, expected) in table {
        assert_result(
            namespace_allows(namespace, work),
            expected,
            &format!("{namespace} {work}"),
        );
    }
}

#[test]
fn release_branches_are_supported() {
    for branch in [
        "rawhide", "main", "f42", "f9", "epel9", "epel10", "epel10.1", "eln",
    ] {
        assert_eq!(branch_supported(branch), Ok(()), "{branch}");
    }
    for branch in [
        "test-koji-downstream",
        "f",
        "fnext",
        "epel",
        "epel10.",
        "stable",
        "",
    ] {
        assert_result(
            branch_supported(branch),
            Err(&format!(
                "unsupported branch: {branch} has no Koji target or Testing Farm compose"
            )),
            branch,
        );
    }
}

#[test]
fn tests_run_when_enabled() {
    let policy = Policy {
        enabled_tests: vec![TestName::Installability, TestName::Custom],
        ..Policy::local_default()
    };
    let table = [
        (TestName::Installability, Ok(())),
        (TestName::Custom, Ok(())),
        (
            TestName::Rpmlint,
            Err("test not enabled: rpmlint is not in fedora_ci.enabled_tests"),
        ),
        (
            TestName::LicenseValidate,
            Err("test not enabled: license-validate is not in fedora_ci.enabled_tests"),
        ),
    ];
    for (test, expected) in table {
        assert_result(test_enabled(&policy, test), expected, test.as_str());
    }
    let everything = Policy::local_default();
    for test in TestName::ALL {
        assert_eq!(test_enabled(&everything, test), Ok(()), "{test}");
    }
}

fn eln_policy() -> Policy {
    Policy {
        eln_packages: BTreeSet::from(["foo".to_owned(), "bar".to_owned()]),
        disabled_projects_for_eln: vec![format!("{BAR}.git")],
        ..Policy::local_default()
    }
}

fn skip_text(check: &Check) -> Option<String> {
    match check {
        Check::Skip(skip) => Some(skip.to_string()),
        _ => None,
    }
}

#[test]
fn eln_build_needed_for_rawhide_pull_requests_of_eln_packages() {
    let base = "https://src.fedoraproject.org";
    let foo = parse_project_url(base, FOO).expect("foo");
    let bar = parse_project_url(base, BAR).expect("bar");
    let eln_branch = || {
        Check::Unknown(Fact::BranchExists {
            project_url: FOO.to_owned(),
            branch: "eln".to_owned(),
        })
    };
    let table = [
        (&foo, "rawhide", None, Ok(eln_branch())),
        (&foo, "main", None, Ok(eln_branch())),
        (&foo, "rawhide", Some(false), Ok(Check::Pass)),
        (
            &foo,
            "rawhide",
            Some(true),
            Err(
                "has an eln branch: https://src.fedoraproject.org/rpms/foo builds ELN from its own eln branch",
            ),
        ),
        (
            &foo,
            "f42",
            None,
            Err("not rawhide: ELN builds are only for rawhide pull requests, this one is for f42"),
        ),
        (
            &foo,
            "eln",
            Some(false),
            Err("not rawhide: ELN builds are only for rawhide pull requests, this one is for eln"),
        ),
        (
            &bar,
            "rawhide",
            Some(false),
            Err(
                "opted out of ELN: https://src.fedoraproject.org/rpms/bar is in fedora_ci.disabled_projects_for_eln",
            ),
        ),
    ];
    let policy = eln_policy();
    for (project, branch, has_eln_branch, expected) in table {
        let case = format!("{} {branch} {has_eln_branch:?}", project.repo);
        // The static list decides alone: the fetched list is not asked.
        let check = eln_build_needed(&policy, project, branch, None, has_eln_branch);
        match expected {
            Ok(expected) => assert_eq!(check, expected, "{case}"),
            Err(text) => assert_eq!(skip_text(&check).as_deref(), Some(text), "{case}"),
        }
    }
}

/// What the last fetch of tiny.distro.builders' lists says of a package.
fn fetched(listed: bool) -> ElnList {
    ElnList {
        listed,
        sources: ELN_PACKAGE_LISTS.map(str::to_owned).to_vec(),
        fetched_at: "2026-12-03 10:00 UTC".to_owned(),
    }
}

#[test]
fn the_fetched_eln_list_and_the_static_list_both_count() {
    let base = "https://src.fedoraproject.org";
    let project = |name: &str| {
        parse_project_url(base, &format!("https://src.fedoraproject.org/rpms/{name}"))
            .expect("a project")
    };
    let (glibc, llvm, foo) = (project("glibc"), project("llvm"), project("foo"));
    let branch = |name: &str| Fact::BranchExists {
        project_url: format!("https://src.fedoraproject.org/rpms/{name}"),
        branch: "eln".to_owned(),
    };
    let policy = eln_policy();
    let (listed, not_listed) = (fetched(true), fetched(false));
    let table = [
        // On the fetched list: an ELN build, once the branch is known.
        (&glibc, Some(&listed), Ok(Check::Unknown(branch("glibc")))),
        // Not on it, nor in the static list: the reason names the list and its time.
        (
            &llvm,
            Some(&not_listed),
            Err(
                "not an ELN package: llvm is not on the ELN package lists of tiny.distro.builders \
                 (fetched 2026-12-03 10:00 UTC) nor in fedora_ci.eln_packages",
            ),
        ),
        // Never fetched: the reason says so, and names the key.
        (
            &llvm,
            None,
            Err(
                "the ELN package list has never been fetched (fedora_ci.eln_packages_urls); \
                 llvm is not in fedora_ci.eln_packages",
            ),
        ),
        // The static list is an override: it counts whatever the fetched list says.
        (&foo, Some(&not_listed), Ok(Check::Unknown(branch("foo")))),
        (&foo, None, Ok(Check::Unknown(branch("foo")))),
    ];
    for (project, list, expected) in table {
        let case = format!("{} {list:?}", project.repo);
        let check = eln_build_needed(&policy, project, "rawhide", list, None);
        match expected {
            Ok(expected) => assert_eq!(check, expected, "{case}"),
            Err(text) => assert_eq!(skip_text(&check).as_deref(), Some(text), "{case}"),
        }
    }

    // With no URL configured nothing is fetched: a list fetched before is not read.
    let off = Policy {
        eln_packages_urls: Vec::new(),
        ..eln_policy()
    };
    assert_eq!(
        skip_text(&eln_build_needed(
            &off,
            &glibc,
            "rawhide",
            Some(&listed),
            None
        ))
        .as_deref(),
        Some(
            "not an ELN package: glibc is not in fedora_ci.eln_packages, and no ELN package list \
             is fetched"
        )
    );
    assert_eq!(
        eln_build_needed(&off, &foo, "rawhide", None, Some(false)),
        Check::Pass
    );
    // Several hosts are all named.
    let mirrored = ElnList {
        sources: vec![
            "https://tiny.distro.builders/view-eln.txt".to_owned(),
            "https://user:pw@mirror.example.org:8443/eln-extras.txt".to_owned(),
        ],
        ..fetched(false)
    };
    assert_eq!(
        skip_text(&eln_build_needed(
            &policy,
            &llvm,
            "rawhide",
            Some(&mirrored),
            None
        ))
        .as_deref(),
        Some(
            "not an ELN package: llvm is not on the ELN package lists of tiny.distro.builders \
             and mirror.example.org:8443 (fetched 2026-12-03 10:00 UTC) nor in fedora_ci.eln_packages"
        )
    );
}

#[test]
fn builds_must_have_succeeded() {
    let table = [
        (
            None,
            Err("no successful build: the head has no scratch build"),
        ),
        (Some(KojiTaskState::Closed), Ok(())),
        (
            Some(KojiTaskState::Open),
            Err("no successful build: the scratch build of the head is OPEN"),
        ),
        (
            Some(KojiTaskState::Free),
            Err("no successful build: the scratch build of the head is FREE"),
        ),
        (
            Some(KojiTaskState::Assigned),
            Err("no successful build: the scratch build of the head is ASSIGNED"),
        ),
        (
            Some(KojiTaskState::Failed),
            Err("no successful build: the scratch build of the head is FAILED"),
        ),
        (
            Some(KojiTaskState::Canceled),
            Err("no successful build: the scratch build of the head is CANCELED"),
        ),
    ];
    for (state, expected) in table {
        assert_result(build_succeeded(state), expected, &format!("{state:?}"));
    }
}

#[test]
fn custom_tests_need_fmf_metadata() {
    let fork = "https://src.fedoraproject.org/forks/alice/rpms/foo.git";
    let sha = "beaf90bcecc51968a46663f8d6f092bfdc92e682";
    assert_eq!(
        custom_tests_possible(fork, sha, None),
        Check::Unknown(Fact::FileExists {
            project_url: "https://src.fedoraproject.org/fork/alice/rpms/foo".to_owned(),
            sha: sha.to_owned(),
            path: ".fmf/version".to_owned(),
        })
    );
    assert_eq!(custom_tests_possible(fork, sha, Some(true)), Check::Pass);
    assert_eq!(
        skip_text(&custom_tests_possible(fork, sha, Some(false))).as_deref(),
        Some("no tmt plans: .fmf/version does not exist at beaf90b")
    );
}

#[test]
fn only_packagers_retrigger() {
    let groups = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let packager = groups(&["fedora-contributor", "packager"]);
    let not_packager = groups(&["fedora-contributor", "packagers", "Packager"]);
    let nothing = groups(&[]);
    assert_eq!(
        may_retrigger("alice", None),
        Check::Unknown(Fact::GroupMember {
            user: "alice".to_owned(),
            group: "packager".to_owned(),
        })
    );
    assert_eq!(may_retrigger("alice", Some(&packager)), Check::Pass);
    for groups in [&not_packager, &nothing] {
        assert_eq!(
            skip_text(&may_retrigger("alice", Some(groups))).as_deref(),
            Some("not a packager: alice is not in the FAS group packager"),
            "{groups:?}"
        );
    }
}

#[test]
fn our_own_comments_are_ignored() {
    let policy = Policy::local_default();
    let table = [
        ("fedora-ci", Err("own comment")),
        ("Fedora-CI", Err("own comment")),
        (" fedora-ci ", Err("own comment")),
        ("mmassari", Ok(())),
        ("fedora-ci-bot", Ok(())),
        ("", Ok(())),
    ];
    for (author, expected) in table {
        assert_result(not_own_comment(&policy, author), expected, author);
    }
}

#[test]
fn only_the_head_is_current() {
    let head = "beaf90bcecc51968a46663f8d6f092bfdc92e682";
    let older = "1234abcd0000000000000000000000000000ffff";
    assert_eq!(is_current_head(head, head), Ok(()));
    assert_eq!(is_current_head(&head.to_uppercase(), head), Ok(()));
    let skip = is_current_head(older, head).expect_err("older work is superseded");
    assert_eq!(
        skip,
        Skip::Superseded {
            by_sha: head.to_owned()
        }
    );
    assert_eq!(skip.to_string(), "superseded by beaf90b");
}

#[test]
fn koji_states_only_move_forward() {
    use KojiTaskState::*;
    let table = [
        (None, Free, Ok(())),
        (None, Closed, Ok(())),
        (Some(Free), Assigned, Ok(())),
        (Some(Free), Open, Ok(())),
        (Some(Free), Closed, Ok(())),
        (Some(Assigned), Open, Ok(())),
        (Some(Open), Closed, Ok(())),
        (Some(Open), Failed, Ok(())),
        (Some(Open), Canceled, Ok(())),
        (
            Some(Free),
            Free,
            Err("unchanged: the Koji task is already FREE"),
        ),
        (
            Some(Open),
            Open,
            Err("unchanged: the Koji task is already OPEN"),
        ),
        (
            Some(Closed),
            Closed,
            Err("unchanged: the Koji task is already CLOSED"),
        ),
        (
            Some(Open),
            Free,
            Err("stale: the Koji task is already OPEN, this report says FREE"),
        ),
        (
            Some(Open),
            Assigned,
            Err("stale: the Koji task is already OPEN, this report says ASSIGNED"),
        ),
        (
            Some(Closed),
            Open,
            Err("stale: the Koji task is already CLOSED, this report says OPEN"),
        ),
        (
            Some(Closed),
            Failed,
            Err("stale: the Koji task is already CLOSED, this report says FAILED"),
        ),
        (
            Some(Canceled),
            Closed,
            Err("stale: the Koji task is already CANCELED, this report says CLOSED"),
        ),
        (
            Some(Failed),
            Free,
            Err("stale: the Koji task is already FAILED, this report says FREE"),
        ),
    ];
    for (current, incoming, expected) in table {
        assert_result(
            koji_transition(current, incoming),
            expected,
            &format!("{current:?} -> {incoming:?}"),
        );
    }
}

/// Koji's task lifecycle, written out here rather than read from the code
/// under test: FREE, then ASSIGNED to a builder, then OPEN, then one of the
/// three ends (koji's `TASK_STATES`; a FREE task can also be canceled).
fn koji_stage(state: KojiTaskState) -> u8 {
    match state.name() {
        "FREE" => 0,
        "ASSIGNED" => 1,
        "OPEN" => 2,
        "CLOSED" | "CANCELED" | "FAILED" => 3,
        other => panic!("a Koji task state this test does not know: {other}"),
    }
}

#[test]
fn every_koji_state_pair_is_decided_consistently() {
    for current in KojiTaskState::ALL {
        for incoming in KojiTaskState::ALL {
            let answer = koji_transition(Some(current), incoming);
            let forward = koji_stage(current) < 3 && koji_stage(incoming) > koji_stage(current);
            assert_eq!(answer.is_ok(), forward, "{current} -> {incoming}");
            if current == incoming {
                assert!(matches!(
                    answer,
                    Err(Skip::Unchanged {
                        tracked: Tracked::KojiTask,
                        ..
                    })
                ));
            }
        }
    }
}

#[test]
fn testing_farm_states_only_move_forward() {
    use TestingFarmState::*;
    let table = [
        (None, New, Ok(())),
        (None, Complete, Ok(())),
        (Some(New), Queued, Ok(())),
        (Some(Queued), Running, Ok(())),
        (Some(Running), Complete, Ok(())),
        (Some(Running), Error, Ok(())),
        (Some(Running), CancelRequested, Ok(())),
        (Some(CancelRequested), Canceled, Ok(())),
        (Some(CancelRequested), Complete, Ok(())),
        (
            Some(Running),
            Running,
            Err("unchanged: the Testing Farm request is already running"),
        ),
        (
            Some(Running),
            Queued,
            Err("stale: the Testing Farm request is already running, this report says queued"),
        ),
        (
            Some(CancelRequested),
            Running,
            Err(
                "stale: the Testing Farm request is already cancel-requested, this report says running",
            ),
        ),
        (
            Some(Complete),
            Error,
            Err("stale: the Testing Farm request is already complete, this report says error"),
        ),
        (
            Some(Canceled),
            Complete,
            Err("stale: the Testing Farm request is already canceled, this report says complete"),
        ),
        (
            Some(Error),
            Error,
            Err("unchanged: the Testing Farm request is already error"),
        ),
    ];
    for (current, incoming, expected) in table {
        assert_result(
            testing_farm_transition(current, incoming),
            expected,
            &format!("{current:?} -> {incoming:?}"),
        );
    }
}

/// Testing Farm's request lifecycle, written out here: new, queued,
/// running, then complete or error; a cancellation asked for at any point
/// before the end is `cancel-requested` until the request ends `canceled`
/// (or finishes first).
fn testing_farm_stage(state: TestingFarmState) -> u8 {
    match state.as_str() {
        "new" => 0,
        "queued" => 1,
        "running" => 2,
        "cancel-requested" => 3,
        "complete" | "error" | "canceled" => 4,
        other => panic!("a Testing Farm state this test does not know: {other}"),
    }
}

#[test]
fn every_testing_farm_state_pair_is_decided_consistently() {
    for current in TestingFarmState::ALL {
        for incoming in TestingFarmState::ALL {
            let answer = testing_farm_transition(Some(current), incoming);
            let forward = testing_farm_stage(current) < 4
                && testing_farm_stage(incoming) > testing_farm_stage(current);
            assert_eq!(answer.is_ok(), forward, "{current} -> {incoming}");
        }
    }
}

#[test]
fn remaining_reasons_read_well() {
    assert_eq!(Skip::OwnComment.to_string(), "own comment");
    assert_eq!(Skip::NotACommand.to_string(), "not a command for us");
    assert_eq!(Skip::PullRequestClosed.to_string(), "pull request closed");
}

#[test]
fn reasons_start_in_lower_case_and_codes_are_unique() {
    let skips = [
        Skip::ProjectDisabled { url: FOO.into() },
        Skip::ProjectNotEnabled { url: FOO.into() },
        Skip::NotOnDistGit { url: FOO.into() },
        Skip::InvalidProjectName {
            url: "https://src.fedoraproject.org/rpms/..".into(),
            part: "repository",
            name: "..".into(),
        },
        Skip::NamespaceNotSupported {
            namespace: "container".into(),
        },
        Skip::OnlyCustomInTestsNamespace {
            work: Work::ScratchBuild,
        },
        Skip::UnsupportedBranch {
            branch: "stable".into(),
        },
        Skip::TestNotEnabled {
            test: TestName::Rpmlint,
        },
        Skip::NoSuccessfulBuild { state: None },
        Skip::NoFmfMetadata { sha: "abc".into() },
        Skip::NotElnPackage {
            package: "foo".into(),
            list: None,
        },
        Skip::ElnListNeverFetched {
            package: "foo".into(),
        },
        Skip::NotRawhide {
            branch: "f42".into(),
        },
        Skip::ElnDisabledForProject { url: FOO.into() },
        Skip::HasElnBranch { url: FOO.into() },
        Skip::NotAPackager {
            user: "alice".into(),
        },
        Skip::OwnComment,
        Skip::NotACommand,
        Skip::Superseded {
            by_sha: "abc".into(),
        },
        Skip::StaleState {
            tracked: Tracked::KojiTask,
            recorded: "CLOSED".into(),
            reported: "OPEN".into(),
        },
        Skip::Unchanged {
            tracked: Tracked::TestingFarmRequest,
            state: "running".into(),
        },
        Skip::PullRequestClosed,
    ];
    let mut codes = BTreeSet::new();
    for skip in &skips {
        let text = skip.to_string();
        assert!(
            text.starts_with(|c: char| c.is_ascii_lowercase()),
            "{text:?} starts in lower case"
        );
        assert!(text.len() <= 140, "{text:?} fits a flag comment");
        assert!(codes.insert(skip.code()), "{} is unique", skip.code());
    }
}

#[test]
fn facts_have_keys_and_descriptions() {
    let table = [
        (
            Fact::BranchExists {
                project_url: FOO.into(),
                branch: "eln".into(),
            },
            "distgit:branch:https://src.fedoraproject.org/rpms/foo:eln",
            "whether https://src.fedoraproject.org/rpms/foo has an eln branch",
        ),
        (
            Fact::BranchExists {
                project_url: FOO.into(),
                branch: "f42".into(),
            },
            "distgit:branch:https://src.fedoraproject.org/rpms/foo:f42",
            "whether https://src.fedoraproject.org/rpms/foo has a f42 branch",
        ),
        (
            Fact::FileExists {
                project_url: FOO.into(),
                sha: "beaf90bcecc51968a46663f8d6f092bfdc92e682".into(),
                path: ".fmf/version".into(),
            },
            "distgit:file:https://src.fedoraproject.org/rpms/foo:beaf90bcecc51968a46663f8d6f092bfdc92e682:.fmf/version",
            "whether .fmf/version exists in https://src.fedoraproject.org/rpms/foo at beaf90b",
        ),
        (
            Fact::GroupMember {
                user: "alice".into(),
                group: "packager".into(),
            },
            "fas:group:packager:alice",
            "whether alice is in the FAS group packager",
        ),
    ];
    for (fact, key, description) in table {
        assert_eq!(fact.key(), key);
        assert_eq!(fact.describe(), description);
    }
}

#[test]
fn results_convert_to_checks() {
    assert_eq!(Check::from(Ok(())), Check::Pass);
    assert!(Check::from(Ok(())).is_pass());
    let skipped = Check::from(Err(Skip::NotACommand));
    assert_eq!(skipped, Check::Skip(Skip::NotACommand));
    assert!(!skipped.is_pass());
}
