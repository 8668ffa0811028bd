//! What packagers see at the switch from Packit Service: commands read and answered as Packit
//! reads them, ELN built and tested again without `--target`, tests on the last successful
//! build, pull requests that are reopened or whose head comes back, and `tests/` repositories
//! tested on rawhide. Every message is a real one from tests/data/bus, changed only where the
//! case needs it.

mod support;

use checkers::rules::Fact;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{
    comment_message, decide, fact, flags, in_namespace, kinds, koji_accepted, koji_message,
    pr_message,
};

const A: &str = "889f07af35d27bbcaf9c535c17a63b974aa42ee3";
const B: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
const PROJECT: &str = "https://src.fedoraproject.org/rpms/optee_os";
const FORK: &str = "https://src.fedoraproject.org/fork/zbyszek/rpms/optee_os";

fn packager(user: &str) -> Fact {
    Fact::GroupMember {
        user: user.into(),
        group: "packager".into(),
    }
}

fn fmf(sha: &str) -> Fact {
    Fact::FileExists {
        project_url: FORK.into(),
        sha: sha.into(),
        path: ".fmf/version".into(),
    }
}

fn eln_branch() -> Fact {
    Fact::BranchExists {
        project_url: PROJECT.into(),
        branch: "eln".into(),
    }
}

/// The texts of the comments an event's decision posts.
async fn replies(pool: &PgPool, event: i64) -> Vec<String> {
    support::jobs_of_event(pool, event)
        .await
        .into_iter()
        .filter(|j| j["kind"] == "post-comment")
        .map(|j| j["payload"]["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// (Koji build id, variant) of the test runs an event decided.
async fn runs_of_event(pool: &PgPool, event: i64) -> Vec<(String, Option<i64>, String)> {
    sqlx::query_as(
        "SELECT r.test_name, r.koji_build_id, r.variant FROM test_runs r
         JOIN jobs j ON j.dedup_key = 'submit-testing-farm:' || r.id
         WHERE j.event_id = $1 ORDER BY r.id",
    )
    .bind(event)
    .fetch_all(pool)
    .await
    .expect("runs")
}

async fn build_id(pool: &PgPool, trigger_key: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM koji_builds WHERE trigger_key = $1")
        .bind(trigger_key)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("a build decided as {trigger_key}: {e}"))
}

fn reason(outcome: &Value) -> String {
    outcome["reason"].as_str().unwrap_or_default().to_owned()
}

/// A message of the real pull request, moved to another branch.
fn on_branch(mut message: Value, branch: &str) -> Value {
    message["body"]["pullrequest"]["branch"] = json!(branch);
    message
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_act_on_every_build_and_test_the_last_successful_one() {
    let pool = support::fresh_db().await;
    // `optee_os` is an ELN package here.
    let ctx = support::context();
    fact(&pool, &ctx, &packager("zbyszek"), true).await;
    fact(&pool, &ctx, &fmf(A), false).await;
    fact(&pool, &ctx, &eln_branch(), false).await;

    // Opened: a rawhide and an ELN build; both succeed, and the tests run on both.
    decide(&pool, &ctx, &pr_message("new", A, 1_729_687_175)).await;
    let rawhide = build_id(&pool, "pipeline:1:initial:default").await;
    let eln = build_id(&pool, "pipeline:1:initial:eln").await;
    koji_accepted(&pool, rawhide, 90_001).await;
    koji_accepted(&pool, eln, 90_002).await;
    decide(&pool, &ctx, &koji_message(90_001, "OPEN", "CLOSED")).await;
    decide(&pool, &ctx, &koji_message(90_002, "OPEN", "CLOSED")).await;

    // `scratch-build` on a later line of the comment, without `--target`: both again.
    let rebuild = decide(
        &pool,
        &ctx,
        &comment_message(
            6001,
            "zbyszek",
            "The aarch64 builder was broken.\n\n/packit-ci scratch-build\nThanks!",
            A,
        ),
    )
    .await;
    let outcome = support::outcome(&pool, rebuild).await;
    assert_eq!(outcome["status"], "processed", "{outcome:#}");
    let new_rawhide = build_id(&pool, "pipeline:1:comment:6001:default").await;
    let new_eln = build_id(&pool, "pipeline:1:comment:6001:eln").await;
    assert_eq!(
        kinds(&pool, rebuild)
            .await
            .iter()
            .filter(|k| *k == "submit-scratch-build")
            .count(),
        2,
        "{outcome:#}"
    );

    // The rawhide rebuild fails and the ELN one still runs: `test` without `--target` tests
    // the last successful build of each, the first ones.
    koji_accepted(&pool, new_rawhide, 90_003).await;
    koji_accepted(&pool, new_eln, 90_004).await;
    decide(&pool, &ctx, &koji_message(90_003, "OPEN", "FAILED")).await;
    let retest = decide(
        &pool,
        &ctx,
        &comment_message(6002, "zbyszek", "/packit-ci test", A),
    )
    .await;
    let runs = runs_of_event(&pool, retest).await;
    let on = |build: i64| runs.iter().filter(|r| r.1 == Some(build)).count();
    assert_eq!(
        (on(rawhide), on(eln), runs.len()),
        (5, 5, 10),
        "five tests (no custom without .fmf/version) on each first build: {runs:?}"
    );
    assert!(runs.iter().any(|r| r.2 == "eln"));
    assert!(replies(&pool, retest).await.is_empty());

    // `test rpmlint --target eln`: one run, on the ELN build.
    let one = decide(
        &pool,
        &ctx,
        &comment_message(6003, "zbyszek", "/packit-ci test rpmlint --target eln", A),
    )
    .await;
    assert_eq!(
        runs_of_event(&pool, one).await,
        [("rpmlint".to_owned(), Some(eln), "eln".to_owned())]
    );

    // `custom` does not apply without .fmf/version: the reply lists the tests that do.
    let custom = decide(
        &pool,
        &ctx,
        &comment_message(6004, "zbyszek", "/packit-ci test custom", A),
    )
    .await;
    assert!(runs_of_event(&pool, custom).await.is_empty());
    assert_eq!(
        replies(&pool, custom).await,
        [
            "The `custom` test does not apply to this pull request (no tmt plans: .fmf/version \
          does not exist at 889f07a). The tests that do: `installability`, `rpminspect`, \
          `rpmlint`, `rmdepcheck`, `license-validate`. Run one with `/packit-ci test <name>`, \
          or all with `/packit-ci test`."
        ]
    );

    // A syntax error: the reply says what is wrong and links the documentation.
    let typo = decide(
        &pool,
        &ctx,
        &comment_message(6005, "zbyszek", "/packit-ci tset", A),
    )
    .await;
    let reply = replies(&pool, typo).await.remove(0);
    assert!(
        reply.starts_with(
            "There is a syntax error in this command: unknown command `tset`; the commands are \
             `test`, `scratch-build` and `help`. See the [Fedora CI \
             documentation](https://packit.dev/fedora-ci) or use `/packit-ci help`."
        ),
        "{reply}"
    );

    // The ELN rebuild fails too: nothing succeeded since, so `test --target eln` still uses
    // the first ELN build; with no successful build at all, the reply says which is missing.
    decide(&pool, &ctx, &koji_message(90_004, "OPEN", "FAILED")).await;
    let again = decide(
        &pool,
        &ctx,
        &comment_message(
            6006,
            "zbyszek",
            "/packit-ci test installability --target eln",
            A,
        ),
    )
    .await;
    assert_eq!(
        runs_of_event(&pool, again).await,
        [("installability".to_owned(), Some(eln), "eln".to_owned())]
    );
    sqlx::query("UPDATE koji_builds SET koji_state = 'FAILED' WHERE id = $1")
        .bind(eln)
        .execute(&pool)
        .await
        .expect("the first ELN build as failed");
    let nothing = decide(
        &pool,
        &ctx,
        &comment_message(6007, "zbyszek", "/packit-ci test", A),
    )
    .await;
    let runs = runs_of_event(&pool, nothing).await;
    assert!(runs.iter().all(|r| r.2 == "default"), "{runs:?}");
    assert_eq!(
        replies(&pool, nothing).await,
        [
            "Tests need a successful scratch build of 889f07a first; the last eln build is \
          FAILED. Ask for one with `/packit-ci scratch-build`."
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn eln_is_only_for_what_gets_an_eln_build_and_help_is_for_everyone() {
    let pool = support::fresh_db().await;
    let ctx = support::context();
    fact(&pool, &ctx, &packager("zbyszek"), true).await;
    fact(&pool, &ctx, &fmf(A), false).await;

    // A pull request for f41: no ELN build, so `--target eln` is answered, not ignored.
    decide(
        &pool,
        &ctx,
        &on_branch(pr_message("new", A, 1_729_687_175), "f41"),
    )
    .await;
    let eln = decide(
        &pool,
        &ctx,
        &on_branch(
            comment_message(7001, "zbyszek", "/packit-ci scratch-build --target eln", A),
            "f41",
        ),
    )
    .await;
    assert_eq!(
        replies(&pool, eln).await,
        [
            "This pull request has no ELN build (not rawhide: ELN builds are only for rawhide pull \
          requests, this one is for f41), so `--target eln` has nothing to act on."
        ]
    );
    assert!(
        !kinds(&pool, eln)
            .await
            .contains(&"submit-scratch-build".to_owned())
    );
    // Without a target, only the f41 build.
    let build = decide(
        &pool,
        &ctx,
        &on_branch(
            comment_message(7002, "zbyszek", "/packit-ci scratch-build", A),
            "f41",
        ),
    )
    .await;
    let targets: Vec<String> = sqlx::query_scalar(
        "SELECT target FROM koji_builds WHERE trigger_key LIKE '%:comment:7002:%'",
    )
    .fetch_all(&pool)
    .await
    .expect("targets");
    assert_eq!(
        targets,
        ["f41"],
        "{:#}",
        support::outcome(&pool, build).await
    );

    // Help on a project Fedora CI does not run on: answered, saying so.
    let mut policy = checkers::policy::Policy::local_default();
    policy.run_by_default = false;
    let off = handlers::Context::local(policy);
    let help = decide(
        &pool,
        &off,
        &comment_message(7003, "somebody", "/packit-ci help", A),
    )
    .await;
    let reply = replies(&pool, help).await.remove(0);
    assert!(
        reply.contains(
            "Fedora CI does not run on this project: project not enabled: \
             https://src.fedoraproject.org/rpms/optee_os is not in fedora_ci.enabled_projects."
        ),
        "{reply}"
    );
    assert!(reply.ends_with("Documentation: https://packit.dev/fedora-ci\n"));
    // Other commands there are skipped with the reason, and get no reply.
    let test = decide(
        &pool,
        &off,
        &comment_message(7004, "zbyszek", "/packit-ci test", A),
    )
    .await;
    assert!(kinds(&pool, test).await.is_empty());
    assert!(reason(&support::outcome(&pool, test).await).contains("project not enabled"));
}

#[tokio::test(flavor = "multi_thread")]
async fn reopened_pull_requests_and_returning_heads_get_ci_again() {
    let pool = support::fresh_db().await;
    let ctx = handlers::Context::local(checkers::policy::Policy::local_default());
    fact(&pool, &ctx, &packager("zbyszek"), true).await;

    decide(&pool, &ctx, &pr_message("new", A, 1_729_687_175)).await;
    let first = build_id(&pool, "pipeline:1:initial:default").await;
    koji_accepted(&pool, first, 90_001).await;
    decide(&pool, &ctx, &koji_message(90_001, "OPEN", "FAILED")).await;

    // Closed, then a command: nothing runs, and the reply says why.
    let mut closed = pr_message("closed", A, 1_729_687_200);
    closed["body"]["pullrequest"]["status"] = json!("Closed");
    decide(&pool, &ctx, &closed).await;
    let mut comment = comment_message(8001, "zbyszek", "/packit-ci scratch-build", A);
    comment["body"]["pullrequest"]["status"] = json!("Closed");
    comment["body"]["pullrequest"]["last_updated"] = json!("1729687300");
    let on_closed = decide(&pool, &ctx, &comment).await;
    assert_eq!(kinds(&pool, on_closed).await, ["post-comment"]);
    assert_eq!(
        replies(&pool, on_closed).await,
        [
            "Fedora CI ran nothing for this command: the pull request is closed. Commands act on \
          open pull requests."
        ]
    );

    // Reopened with the same head: the pipeline runs again, in a new round, and its flag goes
    // back to pending in place.
    let reopened = decide(&pool, &ctx, &pr_message("reopened", A, 1_729_687_400)).await;
    let outcome = support::outcome(&pool, reopened).await;
    assert!(
        reason(&outcome)
            .contains("pipeline 1 for 889f07a runs again (round 2): the pull request was reopened"),
        "{outcome:#}"
    );
    let second = build_id(&pool, "pipeline:1:round-2:default").await;
    assert!(
        kinds(&pool, reopened)
            .await
            .contains(&"submit-scratch-build".to_owned())
    );
    let build_flags: Vec<(String, String, String)> = flags(&pool).await;
    assert_eq!(
        build_flags,
        [(
            "Fedora CI - scratch build - rawhide [889f07a]".to_owned(),
            "pending".to_owned(),
            "RPM build is being submitted".to_owned()
        )],
        "one flag, updated in place"
    );
    // The same message again decides nothing new.
    let mut again = pr_message("reopened", A, 1_729_687_400);
    again["id"] = json!("reopened-again");
    let again = decide(&pool, &ctx, &again).await;
    assert!(kinds(&pool, again).await.is_empty());

    // The head moves to B, then back to A: A runs again in a third round, B is superseded.
    koji_accepted(&pool, second, 90_002).await;
    decide(&pool, &ctx, &pr_message("updated", B, 1_729_690_000)).await;
    let back = decide(&pool, &ctx, &pr_message("updated", A, 1_729_700_000)).await;
    let outcome = support::outcome(&pool, back).await;
    assert!(
        reason(&outcome).contains("runs again (round 3): the head returned to 889f07a"),
        "{outcome:#}"
    );
    build_id(&pool, "pipeline:1:round-3:default").await;
    let states: Vec<(String, String)> =
        sqlx::query_as("SELECT commit_sha, state FROM pipelines ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("pipelines");
    assert_eq!(
        states,
        [
            (A.to_owned(), "active".to_owned()),
            (B.to_owned(), "superseded".to_owned())
        ]
    );

    // A comment written while the pull request was at B (its message says so, and is older)
    // acts on the current head, A.
    let mut late = comment_message(8002, "zbyszek", "/packit-ci scratch-build", B);
    late["body"]["pullrequest"]["last_updated"] = json!("1729695000");
    let late = decide(&pool, &ctx, &late).await;
    let sha: String = sqlx::query_scalar(
        "SELECT commit_sha FROM koji_builds WHERE trigger_key LIKE '%:comment:8002:%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap_or_else(|e| panic!("{e}: event {late}"));
    assert_eq!(sha, A);
}

#[tokio::test(flavor = "multi_thread")]
async fn test_repositories_are_tested_on_rawhide_whatever_their_branch() {
    let pool = support::fresh_db().await;
    let ctx = support::context();
    let fork = "https://src.fedoraproject.org/fork/zbyszek/tests/optee_os";
    fact(
        &pool,
        &ctx,
        &Fact::FileExists {
            project_url: fork.into(),
            sha: A.into(),
            path: ".fmf/version".into(),
        },
        true,
    )
    .await;
    let opened = decide(
        &pool,
        &ctx,
        &in_namespace(
            on_branch(pr_message("new", A, 1_729_687_175), "f41"),
            "tests",
        ),
    )
    .await;
    let outcome = support::outcome(&pool, opened).await;
    let runs: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT test_name, compose, branch FROM test_runs ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("runs");
    assert_eq!(
        runs,
        [(
            "custom".to_owned(),
            Some("Fedora-Rawhide".to_owned()),
            "rawhide".to_owned()
        )],
        "{outcome:#}"
    );
    assert_eq!(
        flags(&pool).await[0].0,
        "Fedora CI - custom - rawhide [889f07a]"
    );
    assert!(
        !kinds(&pool, opened)
            .await
            .contains(&"submit-scratch-build".to_owned())
    );
}
