use checkers::payload::{
    BuildUnderTest, CustomSource, PayloadContext, PayloadError, testing_farm_request,
};
use checkers::policy::{TestName, default_test_repos};
use checkers::project::parse_project_url;
use serde_json::Value;

const HEAD: &str = "889f07af35d27bbcaf9c535c17a63b974aa42ee3";

fn context(deployment: &str) -> PayloadContext {
    PayloadContext {
        deployment: deployment.to_owned(),
        webhook_url: "https://fedora-ci.example.org/api/testing-farm/results".to_owned(),
    }
}

fn build(branch: &str, eln: bool) -> BuildUnderTest {
    BuildUnderTest {
        task_id: Some(123014869),
        branch: branch.to_owned(),
        eln,
    }
}

/// The pull request of `tests/data/bus/pagure.pull-request.new-fork.json`: its source is a
/// fork, so the custom plans are cloned from the fork.
fn fork_source() -> CustomSource {
    let source = parse_project_url(
        "https://src.fedoraproject.org",
        "https://src.fedoraproject.org/fork/zbyszek/rpms/optee_os",
    )
    .expect("a fork");
    CustomSource {
        git_url: source.git_url(),
        sha: HEAD.to_owned(),
    }
}

fn request(test: TestName, deployment: &str, branch: &str, eln: bool) -> Value {
    let repos = default_test_repos(deployment);
    let custom = fork_source();
    testing_farm_request(
        test,
        repos.get(&test),
        (test == TestName::Custom).then_some(&custom),
        &build(branch, eln),
        &context(deployment),
    )
    .expect("a request")
}

fn assert_no_secret(value: &Value) {
    let text = value.to_string();
    assert!(!text.contains("token"), "{text}");
    assert!(!text.contains("api_key"), "{text}");
}

#[test]
fn installability_on_rawhide() {
    let value = request(TestName::Installability, "prod", "rawhide", false);
    assert_no_secret(&value);
    insta::assert_json_snapshot!("installability_rawhide", value);
}

#[test]
fn installability_on_the_eln_build() {
    let value = request(TestName::Installability, "prod", "rawhide", true);
    insta::assert_json_snapshot!("installability_eln", value);
}

#[test]
fn installability_on_an_epel_minor_branch() {
    let value = request(TestName::Installability, "prod", "epel10.1", false);
    insta::assert_json_snapshot!("installability_epel10.1", value);
}

#[test]
fn rpminspect_on_a_fedora_branch() {
    let value = request(TestName::Rpminspect, "prod", "f42", false);
    assert_no_secret(&value);
    insta::assert_json_snapshot!("rpminspect_f42", value);
}

#[test]
fn rpmlint_on_epel() {
    let value = request(TestName::Rpmlint, "prod", "epel9", false);
    insta::assert_json_snapshot!("rpmlint_epel9", value);
}

#[test]
fn rmdepcheck_in_staging() {
    let value = request(TestName::Rmdepcheck, "stg", "main", false);
    insta::assert_json_snapshot!("rmdepcheck_stg_rawhide", value);
}

#[test]
fn license_validate_on_rawhide() {
    let value = request(TestName::LicenseValidate, "prod", "rawhide", false);
    insta::assert_json_snapshot!("license_validate_rawhide", value);
}

#[test]
fn custom_from_a_fork() {
    let value = request(TestName::Custom, "prod", "rawhide", false);
    assert_no_secret(&value);
    insta::assert_json_snapshot!("custom_fork_rawhide", value);
}

#[test]
fn custom_on_the_eln_build() {
    let value = request(TestName::Custom, "prod", "rawhide", true);
    insta::assert_json_snapshot!("custom_fork_eln", value);
}

#[test]
fn custom_on_a_tests_repository_without_a_build() {
    let source = parse_project_url(
        "https://src.fedoraproject.org",
        "https://src.fedoraproject.org/tests/selinux",
    )
    .expect("a tests/ project");
    let custom = CustomSource {
        git_url: source.git_url(),
        sha: HEAD.to_owned(),
    };
    let value = testing_farm_request(
        TestName::Custom,
        None,
        Some(&custom),
        &BuildUnderTest {
            task_id: None,
            branch: "main".to_owned(),
            eln: false,
        },
        &context("prod"),
    )
    .expect("a request");
    insta::assert_json_snapshot!("custom_tests_namespace_without_build", value);
}

#[test]
fn every_test_has_the_common_parts() {
    for test in TestName::ALL {
        for (branch, eln) in [
            ("rawhide", false),
            ("rawhide", true),
            ("f42", false),
            ("epel10", false),
        ] {
            let value = request(test, "prod", branch, eln);
            let case = format!("{test} {branch} eln={eln}");
            let environments = value["environments"].as_array().expect("environments");
            assert_eq!(environments.len(), 1, "{case}");
            let environment = &environments[0];
            assert_eq!(environment["arch"], "x86_64", "{case}");
            assert_eq!(
                environment["variables"]["KOJI_TASK_ID"], "123014869",
                "{case}"
            );
            assert_eq!(
                environment["os"].is_object(),
                test.needs_compose(),
                "{case}"
            );
            assert_eq!(
                environment.get("artifacts").is_some(),
                test == TestName::Custom,
                "{case}"
            );
            let context = &environment["tmt"]["context"];
            assert_eq!(context["trigger"], "commit", "{case}");
            assert_eq!(context["initiator"], "fedora-ci", "{case}");
            assert_eq!(context["arch"], "x86_64", "{case}");
            assert_eq!(context["deployment"], "prod", "{case}");
            assert_eq!(context["dist-git-branch"], branch, "{case}");
            assert_eq!(context.get("variant").is_some(), eln, "{case}");
            assert_eq!(
                value["notification"]["webhook"]["url"],
                "https://fedora-ci.example.org/api/testing-farm/results",
                "{case}"
            );
            assert_no_secret(&value);
        }
    }
}

#[test]
fn overridden_repos_are_used_as_given() {
    let repo = checkers::policy::TestRepo {
        url: "https://example.org/my-plans.git".to_owned(),
        git_ref: "v2".to_owned(),
        name: None,
    };
    let value = testing_farm_request(
        TestName::Rpmlint,
        Some(&repo),
        None,
        &build("rawhide", false),
        &context("prod"),
    )
    .expect("a request");
    assert_eq!(
        value["test"],
        serde_json::json!({"tmt": {"url": "https://example.org/my-plans.git", "ref": "v2"}})
    );
}

#[test]
fn requests_that_cannot_be_built() {
    let repos = default_test_repos("prod");
    let custom = fork_source();
    let table = [
        (
            TestName::Rpmlint,
            None,
            None,
            build("rawhide", false),
            PayloadError::MissingRepo {
                test: TestName::Rpmlint,
            },
        ),
        (
            TestName::Custom,
            repos.get(&TestName::Rpmlint),
            None,
            build("rawhide", false),
            PayloadError::MissingCustomSource,
        ),
        (
            TestName::Installability,
            repos.get(&TestName::Installability),
            None,
            BuildUnderTest {
                task_id: None,
                ..build("rawhide", false)
            },
            PayloadError::MissingBuild {
                test: TestName::Installability,
            },
        ),
        (
            TestName::Rpminspect,
            repos.get(&TestName::Rpminspect),
            None,
            build("test-koji-downstream", false),
            PayloadError::UnsupportedBranch {
                branch: "test-koji-downstream".to_owned(),
            },
        ),
        (
            TestName::Custom,
            None,
            Some(&custom),
            build("stable", false),
            PayloadError::UnsupportedBranch {
                branch: "stable".to_owned(),
            },
        ),
    ];
    for (test, repo, custom, build, error) in table {
        assert_eq!(
            testing_farm_request(test, repo, custom, &build, &context("prod")),
            Err(error.clone()),
            "{test}"
        );
    }
    assert_eq!(
        PayloadError::MissingRepo {
            test: TestName::LicenseValidate
        }
        .to_string(),
        "no tmt repository is configured for the license-validate test"
    );
    assert_eq!(
        PayloadError::MissingBuild {
            test: TestName::Rpmlint
        }
        .to_string(),
        "the rpmlint test needs a Koji scratch build to test"
    );
    assert_eq!(
        PayloadError::UnsupportedBranch {
            branch: "stable".to_owned()
        }
        .to_string(),
        "branch stable has no Testing Farm compose"
    );
}
