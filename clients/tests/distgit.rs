//! The Pagure client against the dist-git stand-in, over real HTTP. Project
//! URLs are the real ones from messages (`https://src.fedoraproject.org/...`);
//! only the API calls go to the stand-in.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use clients::ClientError;
use clients::distgit::{DistGit, Flag, PagureClient, Written};
use clients::http::Timeouts;
use clients::standins::distgit::{DistGitStandin, PrComment};
use secrecy::SecretString;
use serde_json::json;
use support::{Answer, RawServer};

const BASE: &str = "https://src.fedoraproject.org";
const PROJECT: &str = "https://src.fedoraproject.org/rpms/optee_os";
const FORK: &str = "https://src.fedoraproject.org/fork/zbyszek/rpms/optee_os";
const HEAD: &str = "889f07af35d27bbcaf9c535c17a63b974aa42ee3";
const TOKEN: &str = "pagure-api-token-ABCDEFGHIJ";

fn flag(status: &str) -> Flag {
    Flag {
        username: "Fedora CI - installability - rawhide [889f07a]".to_owned(),
        status: status.to_owned(),
        comment: "Installability test is running".to_owned(),
        url: "https://artifacts.testing-farm.io/5a8b4c3e".to_owned(),
        uid: "0f5c2d0e6b1a4c8d9e7f3a2b1c0d9e8f".to_owned(),
    }
}

fn client(standin: &DistGitStandin, token: Option<&str>) -> PagureClient {
    PagureClient::new(
        BASE,
        &standin.url(),
        token.map(SecretString::from),
        Timeouts::default(),
    )
    .expect("a client")
}

/// The stand-in, with the pull requests the tests write to: PR 2 of the
/// project and PR 7 of the fork.
async fn standin() -> DistGitStandin {
    let pagure = DistGitStandin::start_with_token(TOKEN)
        .await
        .expect("the stand-in starts");
    pagure.set_pull_request("rpms/optee_os", 2, json!({"id": 2, "status": "Open"}));
    pagure.set_pull_request(
        "fork/zbyszek/rpms/optee_os",
        7,
        json!({"id": 7, "status": "Open"}),
    );
    pagure
}

fn key(project: &str, pr: i64) -> (String, i64) {
    (project.to_owned(), pr)
}

#[tokio::test]
async fn a_pr_flag_is_set_and_then_updated_in_place() {
    let pagure = standin().await;
    let client = client(&pagure, Some(TOKEN));
    assert!(!client.dry_run());

    assert_eq!(
        client.set_pr_flag(PROJECT, 2, &flag("pending")).await,
        Ok(Written::Done)
    );
    assert_eq!(
        client.set_pr_flag(PROJECT, 2, &flag("success")).await,
        Ok(Written::Done)
    );

    let expected = BTreeMap::from([(
        key("rpms/optee_os", 2),
        BTreeMap::from([(flag("success").uid, flag("success"))]),
    )]);
    assert_eq!(pagure.flags(), expected);
    let paths: Vec<String> = pagure.calls().into_iter().map(|c| c.path).collect();
    assert_eq!(paths, vec!["/api/0/rpms/optee_os/pull-request/2/flag"; 2]);
}

#[tokio::test]
async fn a_commit_flag_is_set() {
    let pagure = standin().await;
    let client = client(&pagure, Some(TOKEN));
    assert_eq!(
        client
            .set_commit_flag(PROJECT, HEAD, &flag("failure"))
            .await,
        Ok(Written::Done)
    );
    let flags = pagure.commit_flags();
    assert_eq!(
        flags[&("rpms/optee_os".to_owned(), HEAD.to_owned())][&flag("failure").uid],
        flag("failure")
    );
    assert_eq!(
        pagure.calls()[0].path,
        format!("/api/0/rpms/optee_os/c/{HEAD}/flag")
    );
}

#[tokio::test]
async fn a_comment_is_posted() {
    let pagure = standin().await;
    let client = client(&pagure, Some(TOKEN));
    let text =
        "Only members of the `packager` group can retrigger Fedora CI.\n\nSee /packit-ci help.";
    assert_eq!(
        client.post_pr_comment(PROJECT, 2, text).await,
        Ok(Written::Done)
    );
    assert_eq!(
        pagure.comments(),
        vec![PrComment {
            project: "rpms/optee_os".to_owned(),
            pr: 2,
            text: text.to_owned(),
        }]
    );
}

#[tokio::test]
async fn fork_urls_map_to_fork_api_paths() {
    let pagure = standin().await;
    pagure.set_file("fork/zbyszek/rpms/optee_os", HEAD, ".fmf/version");
    pagure.set_branches("fork/zbyszek/rpms/optee_os", &["rawhide", "eln"]);
    let client = client(&pagure, Some(TOKEN));

    client
        .set_pr_flag(FORK, 7, &flag("pending"))
        .await
        .expect("flag");
    client
        .set_commit_flag(FORK, HEAD, &flag("pending"))
        .await
        .expect("commit flag");
    client
        .post_pr_comment(FORK, 7, "hi")
        .await
        .expect("comment");
    let project = client.project(FORK).await.expect("project");
    assert!(
        client
            .file_exists(FORK, HEAD, ".fmf/version")
            .await
            .expect("file")
    );
    assert!(client.branch_exists(FORK, "eln").await.expect("branch"));
    // The git spelling of a fork means the same project.
    assert!(
        client
            .file_exists(
                "https://src.fedoraproject.org/forks/zbyszek/rpms/optee_os.git",
                HEAD,
                ".fmf/version"
            )
            .await
            .expect("file")
    );

    assert_eq!(project["fullname"], json!("forks/zbyszek/rpms/optee_os"));
    assert!(
        pagure
            .flags()
            .contains_key(&key("fork/zbyszek/rpms/optee_os", 7))
    );
    let paths: Vec<String> = pagure.calls().into_iter().map(|c| c.path).collect();
    assert_eq!(
        paths,
        vec![
            "/api/0/fork/zbyszek/rpms/optee_os/pull-request/7/flag".to_owned(),
            format!("/api/0/fork/zbyszek/rpms/optee_os/c/{HEAD}/flag"),
            "/api/0/fork/zbyszek/rpms/optee_os/pull-request/7/comment".to_owned(),
            "/api/0/fork/zbyszek/rpms/optee_os".to_owned(),
            format!("/fork/zbyszek/rpms/optee_os/raw/{HEAD}/f/.fmf/version"),
            "/api/0/fork/zbyszek/rpms/optee_os/git/branches".to_owned(),
            format!("/fork/zbyszek/rpms/optee_os/raw/{HEAD}/f/.fmf/version"),
        ]
    );
}

#[tokio::test]
async fn reads_return_what_pagure_answers() {
    let pagure = standin().await;
    let pr = json!({
        "id": 2,
        "status": "Open",
        "commit_stop": HEAD,
        "branch": "rawhide",
        "project": { "fullname": "rpms/optee_os" },
    });
    pagure.set_pull_request("rpms/optee_os", 2, pr.clone());
    // Reads need no token.
    let client = client(&pagure, None);

    assert_eq!(client.pull_request(PROJECT, 2).await, Ok(pr));
    let project = client.project(PROJECT).await.expect("project");
    assert_eq!(project["fullname"], json!("rpms/optee_os"));

    match client.pull_request(PROJECT, 3).await {
        Err(ClientError::Permanent { message, .. }) => {
            assert!(message.contains("404"), "{message}");
            assert!(message.contains("Pull-Request not found"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn files_and_branches_are_looked_up() {
    let pagure = standin().await;
    pagure.set_file("rpms/optee_os", HEAD, ".fmf/version");
    let client = client(&pagure, None);

    assert_eq!(
        client.file_exists(PROJECT, HEAD, ".fmf/version").await,
        Ok(true)
    );
    assert_eq!(
        client.file_exists(PROJECT, HEAD, "plans/ci.fmf").await,
        Ok(false)
    );
    assert_eq!(
        client
            .file_exists(
                PROJECT,
                "0000000000000000000000000000000000000000",
                ".fmf/version"
            )
            .await,
        Ok(false)
    );

    // By default only rawhide.
    assert_eq!(client.branch_exists(PROJECT, "rawhide").await, Ok(true));
    assert_eq!(client.branch_exists(PROJECT, "eln").await, Ok(false));
    pagure.set_branches("rpms/optee_os", &["rawhide", "f43", "eln"]);
    assert_eq!(client.branch_exists(PROJECT, "eln").await, Ok(true));
}

#[tokio::test]
async fn a_project_elsewhere_is_permanent_and_not_called() {
    let pagure = standin().await;
    let client = client(&pagure, Some(TOKEN));
    for url in [
        "https://pagure.io/fedora-ci/general",
        "https://src.fedoraproject.org/rpms",
        "https://src.stg.fedoraproject.org/rpms/optee_os",
    ] {
        let err = client
            .set_pr_flag(url, 1, &flag("pending"))
            .await
            .expect_err(url);
        assert!(
            matches!(err, ClientError::Permanent { .. }),
            "{url}: {err:?}"
        );
        let err = client.project(url).await.expect_err(url);
        assert!(
            matches!(err, ClientError::Permanent { .. }),
            "{url}: {err:?}"
        );
    }
    assert!(pagure.calls().is_empty());
}

#[tokio::test]
async fn dry_run_records_exactly_what_would_be_sent_and_sends_nothing() {
    let pagure = standin().await;
    let client = client(&pagure, None);
    assert!(client.dry_run());

    let Ok(Written::DryRun(dry)) = client.set_pr_flag(FORK, 7, &flag("pending")).await else {
        panic!("not a dry run");
    };
    assert_eq!(dry.service, "dist-git");
    assert_eq!(dry.method, "POST");
    assert_eq!(
        dry.url,
        format!(
            "{}/api/0/fork/zbyszek/rpms/optee_os/pull-request/7/flag",
            pagure.url()
        )
    );
    let f = flag("pending");
    assert_eq!(
        dry.body,
        Some(json!({
            "username": f.username,
            "status": "pending",
            "comment": f.comment,
            "url": f.url,
            "uid": f.uid,
        }))
    );

    let Ok(Written::DryRun(dry)) = client.set_commit_flag(PROJECT, HEAD, &f).await else {
        panic!("not a dry run");
    };
    assert_eq!(
        dry.url,
        format!("{}/api/0/rpms/optee_os/c/{HEAD}/flag", pagure.url())
    );

    let Ok(Written::DryRun(dry)) = client.post_pr_comment(PROJECT, 2, "hello").await else {
        panic!("not a dry run");
    };
    assert_eq!(
        dry.url,
        format!(
            "{}/api/0/rpms/optee_os/pull-request/2/comment",
            pagure.url()
        )
    );
    assert_eq!(dry.body, Some(json!({ "comment": "hello" })));

    assert!(pagure.calls().is_empty(), "{:?}", pagure.calls());
    assert!(pagure.flags().is_empty());
    assert!(pagure.comments().is_empty());
}

#[tokio::test]
async fn a_refused_token_is_an_auth_error_that_does_not_show_it() {
    let pagure = DistGitStandin::start_with_token("the-right-token")
        .await
        .expect("the stand-in starts");
    let client = client(&pagure, Some(TOKEN));
    let err = client
        .set_pr_flag(PROJECT, 2, &flag("pending"))
        .await
        .expect_err("refused");
    match &err {
        ClientError::Auth { service, message } => {
            assert_eq!(*service, "dist-git");
            assert!(message.contains("401"), "{message}");
            assert!(message.contains("Invalid or expired token"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!format!("{err:?}").contains(TOKEN));
    assert!(!format!("{client:?}").contains(TOKEN));
    assert!(pagure.flags().is_empty());
}

#[tokio::test]
async fn an_invalid_flag_is_permanent_with_pagures_explanation() {
    let pagure = standin().await;
    let mut bad = flag("pending");
    bad.url = String::new();
    bad.status = "running".to_owned();
    let err = client(&pagure, Some(TOKEN))
        .set_pr_flag(PROJECT, 2, &bad)
        .await
        .expect_err("invalid");
    match &err {
        ClientError::Permanent { message, .. } => {
            assert!(message.contains("400"), "{message}");
            assert!(
                message.contains("Invalid or incomplete input submitted"),
                "{message}"
            );
            assert!(message.contains("This field is required."), "{message}");
            assert!(message.contains("\"status\""), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!format!("{err:?}").contains(TOKEN));
}

#[tokio::test]
async fn throttling_is_transient_with_retry_after() {
    let pagure = standin().await;
    let client = client(&pagure, Some(TOKEN));
    pagure.throttle_next(1, 3);

    let err = client
        .set_pr_flag(PROJECT, 2, &flag("pending"))
        .await
        .expect_err("throttled");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    client
        .set_pr_flag(PROJECT, 2, &flag("pending"))
        .await
        .expect("accepted");

    let calls = pagure.calls();
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![429, 200]);
    assert!(calls[1].at >= calls[0].at);
}

#[tokio::test]
async fn server_errors_are_transient() {
    let pagure = standin().await;
    let client = client(&pagure, Some(TOKEN));
    pagure.fail_next(2, 502);
    for _ in 0..2 {
        let err = client
            .branch_exists(PROJECT, "eln")
            .await
            .expect_err("failing");
        assert!(err.is_transient(), "{err:?}");
    }
    pagure.fail_next(1, 500);
    let err = client
        .file_exists(PROJECT, HEAD, ".fmf/version")
        .await
        .expect_err("failing");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(client.branch_exists(PROJECT, "eln").await, Ok(false));
}

#[tokio::test]
async fn an_unreachable_service_is_transient() {
    let pagure = standin().await;
    let client = client(&pagure, Some(TOKEN));
    drop(pagure);
    let err = client
        .set_pr_flag(PROJECT, 2, &flag("pending"))
        .await
        .expect_err("unreachable");
    assert!(err.is_transient(), "{err:?}");
    assert!(!format!("{err:?}").contains(TOKEN));
}

/// The review's L1: a message naming `rpms/..` or a fork of `..` put a flag
/// on the Pagure project `rpms`. Such names are refused before any call.
#[tokio::test]
async fn dot_segments_in_project_urls_never_reach_dist_git() {
    let pagure = standin().await;
    let client = client(&pagure, Some(TOKEN));
    for url in [
        "https://src.fedoraproject.org/rpms/..",
        "https://src.fedoraproject.org/rpms/.",
        "https://src.fedoraproject.org/fork/../rpms/bash",
        "https://src.fedoraproject.org/forks/../rpms/bash.git",
        "https://src.fedoraproject.org/rpms/%2e%2e",
        "https://src.fedoraproject.org/rpms/.\t.",
    ] {
        let err = client
            .set_pr_flag(url, 4245, &flag("pending"))
            .await
            .expect_err(url);
        assert!(matches!(err, ClientError::Permanent { .. }), "{err:?}");
        assert!(
            err.to_string().contains("is not a valid Pagure name"),
            "{err}"
        );
        assert!(client.file_exists(url, HEAD, ".fmf/version").await.is_err());
        assert!(client.post_pr_comment(url, 4245, "hi").await.is_err());
    }
    assert!(pagure.calls().is_empty(), "{:?}", pagure.calls());
}

#[tokio::test]
async fn commits_in_urls_must_be_full_hashes() {
    let pagure = standin().await;
    let client = client(&pagure, Some(TOKEN));
    for sha in ["..", "889f07a", "rawhide", ""] {
        let err = client
            .set_commit_flag(PROJECT, sha, &flag("failure"))
            .await
            .expect_err(sha);
        assert!(matches!(err, ClientError::Permanent { .. }), "{err:?}");
        assert!(err.to_string().contains("is not a commit hash"), "{err}");
        assert!(
            client
                .file_exists(PROJECT, sha, ".fmf/version")
                .await
                .is_err()
        );
    }
    // A path that climbs out of the commit is refused too.
    assert!(
        client
            .file_exists(PROJECT, HEAD, "../../../c/x/flag")
            .await
            .is_err()
    );
    assert!(pagure.calls().is_empty(), "{:?}", pagure.calls());
}

#[tokio::test]
async fn a_redirected_flag_is_a_permanent_error_and_goes_nowhere() {
    let elsewhere = RawServer::start(Answer::json(r#"{"message": "Flag added"}"#)).await;
    let redirecting = RawServer::start(Answer::redirect(
        308,
        &format!(
            "{}/api/0/rpms/optee_os/pull-request/2/flag",
            elsewhere.url()
        ),
    ))
    .await;
    let client = PagureClient::new(
        BASE,
        &redirecting.url(),
        Some(SecretString::from(TOKEN)),
        Timeouts::default(),
    )
    .expect("a client");
    let err = client
        .set_pr_flag(PROJECT, 2, &flag("pending"))
        .await
        .expect_err("a redirect");
    assert!(matches!(err, ClientError::Permanent { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("308 Permanent Redirect"), "{text}");
    assert!(
        text.contains(&format!("redirected to {},", elsewhere.host())),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "{text}");
    assert!(elsewhere.requests().is_empty());

    // A read, and a file look-up (which tells 200 from 404), alike.
    let err = client.project(PROJECT).await.expect_err("a redirect");
    assert!(text_has_redirect(&err), "{err}");
    let err = client
        .file_exists(PROJECT, HEAD, ".fmf/version")
        .await
        .expect_err("a redirect");
    assert!(text_has_redirect(&err), "{err}");
    assert!(elsewhere.requests().is_empty());
}

fn text_has_redirect(err: &ClientError) -> bool {
    matches!(err, ClientError::Permanent { .. })
        && err.to_string().contains("redirects are not followed")
}

#[tokio::test]
async fn a_project_answer_larger_than_the_limit_is_refused() {
    let server = RawServer::start(Answer::Endless { status: 200 }).await;
    let client =
        PagureClient::new(BASE, &server.url(), None, Timeouts::default()).expect("a client");
    let err = client
        .branch_exists(PROJECT, "rawhide")
        .await
        .expect_err("too large");
    assert!(matches!(err, ClientError::Permanent { .. }), "{err:?}");
    assert!(
        err.to_string()
            .ends_with("the answer is larger than the limit of 4 MiB (4194304 bytes)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_project_or_pull_request_dist_git_does_not_have_is_404() {
    let pagure = standin().await;
    let client = client(&pagure, Some(TOKEN));
    // Pagure's `_get_repo` and `_get_request`: the project first, then the
    // pull request, each a 404 with its own error code; nothing is kept.
    for (project, pr, code, text) in [
        (
            "https://src.fedoraproject.org/rpms/no-such-package",
            2,
            "ENOPROJECT",
            "Project not found",
        ),
        (PROJECT, 999, "ENOREQ", "Pull-Request not found"),
    ] {
        for result in [
            client.set_pr_flag(project, pr, &flag("pending")).await,
            client.post_pr_comment(project, pr, "hi").await,
        ] {
            match result {
                Err(ClientError::Permanent { message, .. }) => {
                    assert!(message.contains("404"), "{message}");
                    assert!(message.contains(text), "{code}: {message}");
                }
                other => panic!("{project} #{pr}: {other:?}"),
            }
        }
    }
    assert!(pagure.flags().is_empty());
    assert!(pagure.comments().is_empty());
    let unknown = client
        .project("https://src.fedoraproject.org/rpms/no-such-package")
        .await
        .expect_err("no such project");
    assert!(
        unknown.to_string().contains("Project not found"),
        "{unknown}"
    );
    let statuses: Vec<u16> = pagure.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [404; 5]);
    // A pull request announced on the bus exists from then on.
    let message = events::parse_serialized(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/bus/pagure.pull-request.new-fork.json"
        ))
        .expect("the message"),
    )
    .expect("serialized")
    .remove(0)
    .expect("valid")
    .to_serialized();
    let fresh = DistGitStandin::start_with_token(TOKEN)
        .await
        .expect("the stand-in starts");
    let client = self::client(&fresh, Some(TOKEN));
    let pr = message["body"]["pullrequest"]["id"].as_i64().expect("id");
    assert!(
        client
            .set_pr_flag(PROJECT, pr, &flag("pending"))
            .await
            .is_err(),
        "not before it was announced"
    );
    assert!(fresh.add_pull_request_from_message(&message["body"]["pullrequest"]));
    assert_eq!(
        client.set_pr_flag(PROJECT, pr, &flag("pending")).await,
        Ok(Written::Done)
    );
}
