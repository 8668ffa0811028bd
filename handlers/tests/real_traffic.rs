//! Real Fedora traffic that Fedora CI must leave alone, decided with the reason why: pull
//! requests of dist-git namespaces Fedora CI does not run in, and messages of the other
//! environment. Every message is a real one from tests/data/bus, changed only where the case
//! needs it.

mod support;

use serde_json::{Value, json};
use sqlx::PgPool;
use support::{comment_message, decide, in_namespace, kinds, pr_message};

const HEAD: &str = "889f07af35d27bbcaf9c535c17a63b974aa42ee3";

async fn pipelines(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pipelines")
        .fetch_one(pool)
        .await
        .expect("count")
}

fn status_and_reason(outcome: &Value) -> (String, String) {
    (
        outcome["status"].as_str().unwrap_or_default().to_owned(),
        outcome["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_requests_of_other_namespaces_get_no_pipeline() {
    let pool = support::fresh_db().await;
    let ctx = support::context();
    for namespace in ["container", "modules", "flatpaks"] {
        let opened = decide(
            &pool,
            &ctx,
            &in_namespace(pr_message("new", HEAD, 1_729_687_175), namespace),
        )
        .await;
        let (status, reason) = status_and_reason(&support::outcome(&pool, opened).await);
        assert_eq!(status, "skipped", "{namespace}: {reason}");
        assert_eq!(
            reason,
            format!(
                "PR #2: namespace not supported: Fedora CI runs on rpms/ and tests/, not \
                 {namespace}/"
            )
        );
        assert!(kinds(&pool, opened).await.is_empty());
    }
    assert_eq!(pipelines(&pool).await, 0);

    // A command there runs nothing and gets no reply; help says why nothing runs.
    let command = decide(
        &pool,
        &ctx,
        &in_namespace(
            comment_message(9001, "zbyszek", "/packit-ci scratch-build", HEAD),
            "container",
        ),
    )
    .await;
    let (status, reason) = status_and_reason(&support::outcome(&pool, command).await);
    assert_eq!(status, "skipped");
    assert!(reason.contains("namespace not supported"), "{reason}");
    assert!(kinds(&pool, command).await.is_empty());
    let help = decide(
        &pool,
        &ctx,
        &in_namespace(
            comment_message(9002, "zbyszek", "/packit-ci help", HEAD),
            "container",
        ),
    )
    .await;
    let jobs = support::jobs_of_event(&pool, help).await;
    let text = jobs[0]["payload"]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(
            "Fedora CI does not run on this project: namespace not supported: Fedora CI runs on \
             rpms/ and tests/, not container/."
        ),
        "{text}"
    );
    assert_eq!(pipelines(&pool).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_decides_only_its_own_environments_topics() {
    let pool = support::fresh_db().await;
    let prod = support::context();
    let mut staging_message = pr_message("new", HEAD, 1_729_687_175);
    staging_message["topic"] = json!("org.fedoraproject.stg.pagure.pull-request.new");

    let event = decide(&pool, &prod, &staging_message).await;
    let (status, reason) = status_and_reason(&support::outcome(&pool, event).await);
    assert_eq!(status, "skipped");
    assert_eq!(
        reason,
        "a message of the stg environment: this deployment (fedora_ci.deployment = prod) \
         decides only its own topics"
    );
    assert_eq!(pipelines(&pool).await, 0);

    // The staging deployment decides it.
    let mut policy = prod.policy.clone();
    policy.deployment = "stg".into();
    let stg = handlers::Context {
        policy,
        ..prod.clone()
    };
    sqlx::query("UPDATE events SET status = 'received' WHERE id = $1")
        .bind(event)
        .execute(&pool)
        .await
        .expect("decide again");
    support::decide_all(&pool, &stg).await;
    let (status, reason) = status_and_reason(&support::outcome(&pool, event).await);
    assert_eq!(status, "processed", "{reason}");
    assert_eq!(pipelines(&pool).await, 1);

    // And leaves production's alone, even when it cannot be read.
    let mut broken = support::message("buildsys.task.state.change-open-scratch.json");
    broken["id"] = json!("prod-broken");
    broken["body"] = json!({"id": "not a task"});
    let broken = decide(&pool, &stg, &broken).await;
    let (status, reason) = status_and_reason(&support::outcome(&pool, broken).await);
    assert_eq!(status, "skipped");
    assert!(
        reason.starts_with("a message of the prod environment"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pagure_io_messages_are_skipped_naming_their_project() {
    let pool = support::fresh_db().await;
    let ctx = support::context();
    // A pull request of pagure.io as it is published today, one of 2016 (no commits yet, no
    // namespace), and the first as a comment on it.
    let today = support::message("io.pagure.pull-request.new.json");
    let legacy = support::message("legacy-fedmsg-io.pagure.pull-request.new.json");
    let mut comment = today.clone();
    comment["id"] = json!("io-pagure-comment");
    comment["topic"] = json!("io.pagure.prod.pagure.pull-request.comment.added");
    comment["body"]["pullrequest"]["comments"] = json!([{
        "comment": "/packit-ci test", "id": 1, "user": {"name": "richardgreg"},
    }]);
    let cases = [
        (today, "fedora-docs/quick-docs", "pagure.pull-request.new"),
        (legacy, "pungi-fedora", "pagure.pull-request.new"),
        (
            comment,
            "fedora-docs/quick-docs",
            "pagure.pull-request.comment.added",
        ),
    ];
    for (message, project, topic) in cases {
        let event = decide(&pool, &ctx, &message).await;
        let (status, reason) = status_and_reason(&support::outcome(&pool, event).await);
        assert_eq!(status, "skipped", "{project}: {reason}");
        assert_eq!(
            reason,
            format!(
                "a message of pagure.io about its project {project} ({topic}): Fedora CI runs \
                 on dist-git projects only"
            )
        );
        assert!(kinds(&pool, event).await.is_empty());
    }
    assert_eq!(pipelines(&pool).await, 0);
}

/// An official build as the dashboard reads it: (status, started, finished, branch, logs).
async fn official(
    pool: &PgPool,
    build_id: i64,
) -> (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Value,
) {
    sqlx::query_as(
        "SELECT status, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'),
                to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'),
                branch, log_urls
         FROM koji_builds WHERE build_id = $1",
    )
    .bind(build_id)
    .fetch_one(pool)
    .await
    .expect("the build")
}

#[tokio::test(flavor = "multi_thread")]
async fn official_builds_carry_their_times_branch_and_logs_from_the_message() {
    let pool = support::fresh_db().await;
    let ctx = support::context();
    let complete = support::message("buildsys.build.state.change-complete.json");
    decide(&pool, &ctx, &complete).await;
    let (status, started, finished, branch, logs) = official(&pool, 1_874_074).await;
    assert_eq!(status, "success");
    assert_eq!(started.as_deref(), Some("2023-11-08T09:54:48.493165"));
    assert_eq!(finished.as_deref(), Some("2023-11-08T10:01:04.706963"));
    assert_eq!(branch.as_deref(), Some("rawhide"));
    assert_eq!(logs, json!({}), "the message names no arch tasks");

    // A message that carries the task (as Packit Service reads `task.children`), for a
    // branch's candidate target: the logs per architecture, and the branch without the suffix.
    let mut with_task = complete.clone();
    with_task["id"] = json!("official-with-task");
    let body = &mut with_task["body"];
    body["build_id"] = json!(1_874_075);
    body["task_id"] = json!(80_860_900);
    body["request"][1] = json!("f39-candidate");
    body["task"] = json!({"id": 80_860_900, "method": "build", "children": [
        {"id": 80_860_901, "method": "buildArch", "arch": "x86_64"},
        {"id": 80_860_902, "method": "buildArch", "arch": "aarch64"},
        {"id": 80_860_903, "method": "tagBuild", "arch": "noarch"},
    ]});
    decide(&pool, &ctx, &with_task).await;
    let (_, _, _, branch, logs) = official(&pool, 1_874_075).await;
    assert_eq!(branch.as_deref(), Some("f39"));
    assert_eq!(
        logs,
        json!({
            "x86_64": "https://kojipkgs.fedoraproject.org/work/tasks/901/80860901/build.log",
            "aarch64": "https://kojipkgs.fedoraproject.org/work/tasks/902/80860902/build.log",
        })
    );

    // Known first without its times (a message of the older shape, which has none), then
    // told them: the record is completed, not duplicated.
    let mut older = complete.clone();
    older["id"] = json!("official-older-shape");
    let body = older["body"].as_object_mut().expect("body");
    body.remove("creation_time");
    body.remove("completion_time");
    body.insert("build_id".into(), json!(1_874_076));
    body.insert("task_id".into(), json!(80_860_910));
    decide(&pool, &ctx, &older).await;
    let (_, started, finished, _, _) = official(&pool, 1_874_076).await;
    assert_eq!((started, finished), (None, None));
    let mut newer = complete.clone();
    newer["id"] = json!("official-newer-shape");
    newer["body"]["build_id"] = json!(1_874_076);
    newer["body"]["task_id"] = json!(80_860_910);
    let again = decide(&pool, &ctx, &newer).await;
    let (_, started, finished, _, _) = official(&pool, 1_874_076).await;
    assert_eq!(started.as_deref(), Some("2023-11-08T09:54:48.493165"));
    assert_eq!(finished.as_deref(), Some("2023-11-08T10:01:04.706963"));
    let outcome = support::outcome(&pool, again).await;
    assert_eq!(
        outcome["reason"],
        "python-ogr-0.34.0-1.fc36: this build is already recorded"
    );
    let builds: i64 = sqlx::query_scalar("SELECT count(*) FROM koji_builds")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(builds, 3);
}
