use checkers::policy::{Policy, TestName, TestRepo, default_test_repos};

#[test]
fn test_names_round_trip_through_text_and_serde() {
    let table = [
        (TestName::Installability, "installability"),
        (TestName::Rpminspect, "rpminspect"),
        (TestName::Rpmlint, "rpmlint"),
        (TestName::Rmdepcheck, "rmdepcheck"),
        (TestName::LicenseValidate, "license-validate"),
        (TestName::Custom, "custom"),
    ];
    assert_eq!(TestName::ALL.len(), table.len());
    for (test, text) in table {
        assert_eq!(test.as_str(), text);
        assert_eq!(test.to_string(), text);
        assert_eq!(TestName::parse(text), Some(test));
        assert_eq!(
            serde_json::to_value(test).expect("serializes"),
            serde_json::json!(text)
        );
        let back: TestName = serde_json::from_value(serde_json::json!(text)).expect("parses");
        assert_eq!(back, test);
    }
}

#[test]
fn test_names_are_exact() {
    for text in [
        "",
        "Rpmlint",
        "RPMLINT",
        " rpmlint",
        "license_validate",
        "licensevalidate",
        "tmt",
        "all",
    ] {
        assert_eq!(TestName::parse(text), None, "{text:?}");
    }
}

#[test]
fn test_names_order_as_listed() {
    let mut sorted = TestName::ALL;
    sorted.sort();
    assert_eq!(sorted, TestName::ALL);
}

#[test]
fn only_installability_and_custom_name_a_compose() {
    let table = [
        (TestName::Installability, true),
        (TestName::Rpminspect, false),
        (TestName::Rpmlint, false),
        (TestName::Rmdepcheck, false),
        (TestName::LicenseValidate, false),
        (TestName::Custom, true),
    ];
    for (test, needs) in table {
        assert_eq!(test.needs_compose(), needs, "{test}");
    }
}

fn repo(url: &str, git_ref: &str, name: Option<&str>) -> TestRepo {
    TestRepo {
        url: url.to_owned(),
        git_ref: git_ref.to_owned(),
        name: name.map(str::to_owned),
    }
}

#[test]
fn default_test_repos_follow_the_reference_table() {
    let shared = "https://forge.fedoraproject.org/ci/shared-tests";
    for (deployment, shared_ref) in [("prod", "main"), ("stg", "stg"), ("dev", "main")] {
        let repos = default_test_repos(deployment);
        let expected = [
            (
                TestName::Installability,
                repo(
                    "https://github.com/fedora-ci/installability-pipeline.git",
                    "master",
                    None,
                ),
            ),
            (
                TestName::Rpminspect,
                repo(
                    "https://github.com/fedora-ci/rpminspect-pipeline.git",
                    "master",
                    None,
                ),
            ),
            (
                TestName::Rpmlint,
                repo(
                    "https://github.com/packit/tmt-plans.git",
                    "main",
                    Some("/plans/rpmlint"),
                ),
            ),
            (
                TestName::Rmdepcheck,
                repo(shared, shared_ref, Some("/rmdepcheck")),
            ),
            (
                TestName::LicenseValidate,
                repo(shared, shared_ref, Some("/license-validate")),
            ),
        ];
        assert_eq!(repos.len(), expected.len(), "{deployment}");
        for (test, expected) in expected {
            assert_eq!(repos.get(&test), Some(&expected), "{deployment} {test}");
        }
        assert_eq!(repos.get(&TestName::Custom), None, "{deployment}");
    }
}

#[test]
fn local_default_runs_everything() {
    let policy = Policy::local_default();
    assert_eq!(policy.deployment, "prod");
    assert_eq!(policy.check_name_prefix, "Fedora CI");
    assert_eq!(policy.comment_prefix, "/packit-ci");
    assert!(policy.run_by_default);
    assert!(policy.enabled_projects.is_empty());
    assert!(policy.disabled_projects.is_empty());
    assert_eq!(policy.enabled_tests, TestName::ALL.to_vec());
    assert!(policy.disabled_projects_for_eln.is_empty());
    assert!(policy.eln_packages.is_empty());
    assert_eq!(
        policy.eln_packages_urls,
        [
            "https://tiny.distro.builders/view-all-source-package-name-list--view-eln.txt",
            "https://tiny.distro.builders/view-all-source-package-name-list--view-eln-extras.txt",
        ]
    );
    assert_eq!(policy.tests, default_test_repos("prod"));
    assert_eq!(policy.bot_user, "fedora-ci");
    assert_eq!(policy.test_repo(TestName::Custom), None);
    assert_eq!(
        policy
            .test_repo(TestName::Rpmlint)
            .map(|r| r.git_ref.as_str()),
        Some("main")
    );
}

#[test]
fn test_repos_use_the_configuration_key_names() {
    let value = serde_json::to_value(repo("https://example.org/plans.git", "v1", Some("/smoke")))
        .expect("serializes");
    assert_eq!(
        value,
        serde_json::json!({"url": "https://example.org/plans.git", "ref": "v1", "name": "/smoke"})
    );
    let without_name: TestRepo =
        serde_json::from_value(serde_json::json!({"url": "https://example.org/p", "ref": "main"}))
            .expect("parses");
    assert_eq!(without_name, repo("https://example.org/p", "main", None));

    let policy = serde_json::to_value(Policy::local_default()).expect("serializes");
    assert_eq!(
        policy["tests"]["license-validate"]["name"],
        serde_json::json!("/license-validate")
    );
    assert_eq!(
        policy["enabled_tests"][4],
        serde_json::json!("license-validate")
    );
}
