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
