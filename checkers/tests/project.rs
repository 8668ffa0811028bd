use std::path::PathBuf;

use checkers::Skip;
use checkers::project::{ProjectRef, normalize_project_url, parse_project_url};

const BASE: &str = "https://src.fedoraproject.org";

fn project(url: &str, namespace: &str, repo: &str, fork_owner: Option<&str>) -> ProjectRef {
    ProjectRef {
        url: url.to_owned(),
        forge: "src.fedoraproject.org".to_owned(),
        namespace: namespace.to_owned(),
        repo: repo.to_owned(),
        fork_owner: fork_owner.map(str::to_owned),
    }
}

#[test]
fn project_urls_parse_and_normalise() {
    let foo = project(
        "https://src.fedoraproject.org/rpms/foo",
        "rpms",
        "foo",
        None,
    );
    let fork = project(
        "https://src.fedoraproject.org/fork/alice/rpms/foo",
        "rpms",
        "foo",
        Some("alice"),
    );
    let table = [
        ("https://src.fedoraproject.org/rpms/foo", &foo),
        ("https://src.fedoraproject.org/rpms/foo/", &foo),
        ("https://src.fedoraproject.org/rpms/foo.git", &foo),
        ("https://src.fedoraproject.org/rpms/foo.git/", &foo),
        ("  https://src.fedoraproject.org/rpms/foo\n", &foo),
        ("https://src.fedoraproject.org/fork/alice/rpms/foo", &fork),
        ("https://src.fedoraproject.org/forks/alice/rpms/foo", &fork),
        (
            "https://src.fedoraproject.org/forks/alice/rpms/foo.git",
            &fork,
        ),
        ("https://src.fedoraproject.org/fork/alice/rpms/foo/", &fork),
    ];
    for (url, expected) in table {
        assert_eq!(parse_project_url(BASE, url).as_ref(), Ok(expected), "{url}");
        assert_eq!(
            parse_project_url("https://src.fedoraproject.org/", url).as_ref(),
            Ok(expected),
            "{url} with a trailing slash on the base"
        );
    }
}

#[test]
fn other_namespaces_parse_as_projects() {
    let tests = parse_project_url(BASE, "https://src.fedoraproject.org/tests/selinux")
        .expect("a tests/ project");
    assert_eq!(
        (tests.namespace.as_str(), tests.repo.as_str()),
        ("tests", "selinux")
    );
    let container = parse_project_url(BASE, "https://src.fedoraproject.org/container/httpd")
        .expect("a container/ project");
    assert_eq!(container.namespace, "container");
}

#[test]
fn urls_that_are_not_dist_git_projects_are_skipped() {
    let table = [
        "https://pagure.io/fedora-kiwi-descriptions",
        "https://src.fedoraproject.org.example.com/rpms/foo",
        "http://src.fedoraproject.org/rpms/foo",
        "https://src.fedoraproject.org",
        "https://src.fedoraproject.org/",
        "https://src.fedoraproject.org/rpms",
        "https://src.fedoraproject.org/rpms/foo/pull-request/3",
        "https://src.fedoraproject.org/rpms//foo",
        "https://src.fedoraproject.org/fork/alice/rpms",
        "https://src.fedoraproject.org/fork/foo",
        "https://src.fedoraproject.org/forks/alice/rpms/foo/bar",
        "rpms/foo",
        "",
    ];
    for url in table {
        let skip = parse_project_url(BASE, url).expect_err(url);
        assert_eq!(
            skip,
            Skip::NotOnDistGit {
                url: url.to_owned()
            }
        );
        assert_eq!(
            skip.to_string(),
            format!("not on dist-git: {url} is not a dist-git project")
        );
    }
}

#[test]
fn real_package_names_are_valid() {
    for (url, namespace, repo, owner) in [
        (
            "https://src.fedoraproject.org/rpms/libstdc++",
            "rpms",
            "libstdc++",
            None,
        ),
        (
            "https://src.fedoraproject.org/rpms/python3.12",
            "rpms",
            "python3.12",
            None,
        ),
        (
            "https://src.fedoraproject.org/rpms/perl-Test-Simple",
            "rpms",
            "perl-Test-Simple",
            None,
        ),
        (
            "https://src.fedoraproject.org/fork/a_b.c-d/rpms/optee_os.git",
            "rpms",
            "optee_os",
            Some("a_b.c-d"),
        ),
    ] {
        let project = parse_project_url(BASE, url).expect(url);
        assert_eq!(
            (
                project.namespace.as_str(),
                project.repo.as_str(),
                project.fork_owner.as_deref()
            ),
            (namespace, repo, owner),
            "{url}"
        );
    }
}

/// The `url` crate drops `.` and `..` path segments, so these would have put flags on another
/// project (the review's L1): they are refused by name, before any URL is built.
#[test]
fn names_that_are_not_pagure_names_are_refused() {
    let table = [
        ("https://src.fedoraproject.org/rpms/..", "repository", ".."),
        ("https://src.fedoraproject.org/rpms/.", "repository", "."),
        (
            "https://src.fedoraproject.org/rpms/...git",
            "repository",
            "..",
        ),
        ("https://src.fedoraproject.org/../bash", "namespace", ".."),
        (
            "https://src.fedoraproject.org/fork/../rpms/bash",
            "fork owner",
            "..",
        ),
        (
            "https://src.fedoraproject.org/forks/./rpms/bash.git",
            "fork owner",
            ".",
        ),
        (
            "https://src.fedoraproject.org/rpms/%2e%2e",
            "repository",
            "%2e%2e",
        ),
        (
            "https://src.fedoraproject.org/rpms/a b",
            "repository",
            "a b",
        ),
        (
            "https://src.fedoraproject.org/rpms/bash?x=1",
            "repository",
            "bash?x=1",
        ),
        (
            "https://src.fedoraproject.org/rpms/bash#frag",
            "repository",
            "bash#frag",
        ),
        (
            "https://src.fedoraproject.org/rpms/.\t.",
            "repository",
            ".\t.",
        ),
        (
            "https://src.fedoraproject.org/rpms/-rf",
            "repository",
            "-rf",
        ),
        (
            "https://src.fedoraproject.org/fork/al\nice/rpms/bash",
            "fork owner",
            "al\nice",
        ),
    ];
    for (url, part, name) in table {
        let skip = parse_project_url(BASE, url).expect_err(url);
        assert_eq!(
            skip,
            Skip::InvalidProjectName {
                url: url.to_owned(),
                part,
                name: name.to_owned(),
            },
            "{url:?}"
        );
        assert_eq!(skip.code(), "invalid_project_name");
    }
    assert_eq!(
        parse_project_url(BASE, "https://src.fedoraproject.org/fork/../rpms/bash")
            .expect_err("refused")
            .to_string(),
        "invalid project name: the fork owner \"..\" in \"https://src.fedoraproject.org/fork/../rpms/bash\" is not a valid dist-git name"
    );
}

#[test]
fn an_empty_base_matches_nothing() {
    assert!(parse_project_url("", "/rpms/foo").is_err());
    assert!(parse_project_url("  ", "https://src.fedoraproject.org/rpms/foo").is_err());
}

#[test]
fn the_forge_is_the_host_of_the_base() {
    let local = parse_project_url("http://LocalHost:8080/", "http://LocalHost:8080/rpms/foo")
        .expect("a local stand-in");
    assert_eq!(local.forge, "localhost:8080");
    assert_eq!(local.url, "http://LocalHost:8080/rpms/foo");
    assert_eq!(local.base(), "http://LocalHost:8080");

    let below_a_path = parse_project_url(
        "http://127.0.0.1:9000/distgit",
        "http://127.0.0.1:9000/distgit/forks/bob/rpms/bar.git",
    )
    .expect("a base with a path");
    assert_eq!(below_a_path.forge, "127.0.0.1:9000");
    assert_eq!(
        below_a_path.url,
        "http://127.0.0.1:9000/distgit/fork/bob/rpms/bar"
    );
    assert_eq!(
        below_a_path.git_url(),
        "http://127.0.0.1:9000/distgit/forks/bob/rpms/bar.git"
    );
}

#[test]
fn git_and_koji_source_urls() {
    let sha = "889f07af35d27bbcaf9c535c17a63b974aa42ee3";
    let table = [
        (
            "https://src.fedoraproject.org/rpms/optee_os",
            "rpms/optee_os",
            "https://src.fedoraproject.org/rpms/optee_os.git",
        ),
        (
            "https://src.fedoraproject.org/fork/zbyszek/rpms/optee_os",
            "fork/zbyszek/rpms/optee_os",
            "https://src.fedoraproject.org/forks/zbyszek/rpms/optee_os.git",
        ),
        (
            "https://src.fedoraproject.org/forks/zbyszek/rpms/optee_os.git",
            "fork/zbyszek/rpms/optee_os",
            "https://src.fedoraproject.org/forks/zbyszek/rpms/optee_os.git",
        ),
    ];
    for (url, path, git_url) in table {
        let project = parse_project_url(BASE, url).expect(url);
        assert_eq!(project.path(), path, "{url}");
        assert_eq!(project.base(), BASE, "{url}");
        assert_eq!(project.git_url(), git_url, "{url}");
        assert_eq!(
            project.koji_source_url(sha),
            format!("git+{git_url}#{sha}"),
            "{url}"
        );
        assert_eq!(project.is_fork(), path.starts_with("fork/"), "{url}");
    }
}

#[test]
fn normalised_urls_compare_equal() {
    let table = [
        (
            "https://src.fedoraproject.org/rpms/foo",
            "https://src.fedoraproject.org/rpms/foo",
        ),
        (
            "https://src.fedoraproject.org/rpms/foo.git/",
            "https://src.fedoraproject.org/rpms/foo",
        ),
        (
            " https://src.fedoraproject.org/rpms/foo/ ",
            "https://src.fedoraproject.org/rpms/foo",
        ),
        (
            "https://src.fedoraproject.org/forks/alice/rpms/foo.git",
            "https://src.fedoraproject.org/fork/alice/rpms/foo",
        ),
        (
            "https://src.fedoraproject.org/fork/alice/rpms/foo",
            "https://src.fedoraproject.org/fork/alice/rpms/foo",
        ),
        (
            "https://src.fedoraproject.org/rpms/forks",
            "https://src.fedoraproject.org/rpms/forks",
        ),
        ("not a url/", "not a url"),
    ];
    for (url, normalised) in table {
        assert_eq!(normalize_project_url(url), normalised, "{url:?}");
    }
}

fn bus_message(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/bus")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("the captured message is readable");
    serde_json::from_str(&text).expect("the captured message is JSON")
}

#[test]
fn urls_from_a_real_pull_request_from_a_fork() {
    let message = bus_message("pagure.pull-request.new-fork.json");
    let pr = &message["body"]["pullrequest"];
    let target = parse_project_url(BASE, pr["project"]["full_url"].as_str().expect("a URL"))
        .expect("the target is a package");
    assert_eq!(
        target,
        project(
            "https://src.fedoraproject.org/rpms/optee_os",
            "rpms",
            "optee_os",
            None
        )
    );

    let source = parse_project_url(BASE, pr["repo_from"]["full_url"].as_str().expect("a URL"))
        .expect("the source is a fork");
    assert_eq!(source.fork_owner.as_deref(), Some("zbyszek"));
    assert_eq!(
        source.url,
        "https://src.fedoraproject.org/fork/zbyszek/rpms/optee_os"
    );
    // Pagure's own name for the fork is the path git serves it under.
    let fullname = pr["repo_from"]["fullname"].as_str().expect("a name");
    assert_eq!(source.git_url(), format!("{BASE}/{fullname}.git"));
    let head = pr["commit_stop"].as_str().expect("a sha");
    assert_eq!(
        source.koji_source_url(head),
        "git+https://src.fedoraproject.org/forks/zbyszek/rpms/optee_os.git\
         #889f07af35d27bbcaf9c535c17a63b974aa42ee3"
    );
}

#[test]
fn a_real_pull_request_on_pagure_io_is_not_on_dist_git() {
    let message = bus_message("pagure.pull-request.new-same-repo.json");
    let url = message["body"]["pullrequest"]["project"]["full_url"]
        .as_str()
        .expect("a URL");
    assert_eq!(
        parse_project_url(BASE, url),
        Err(Skip::NotOnDistGit {
            url: "https://pagure.io/fedora-kiwi-descriptions".to_owned()
        })
    );
}
