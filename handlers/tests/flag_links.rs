//! Where the flags of a pull request link while there is no better page
//! outside (a Koji task, Testing Farm's artifacts): our own page of the
//! build or test run, or, with `fedora_ci.dashboard_url`, the dashboard's
//! job page as Packit links it. From the real messages, on the real database.

mod support;

use checkers::rules::Fact;
use serde_json::{Value, json};

const HEAD: &str = "889f07af35d27bbcaf9c535c17a63b974aa42ee3";
const FORK: &str = "https://src.fedoraproject.org/fork/zbyszek/rpms/optee_os";
const TASK: i64 = 90_001;

fn opened() -> Value {
    let mut message = support::message("pagure.pull-request.new-fork.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    message["body"]["pullrequest"]["commit_stop"] = json!(HEAD);
    message
}

fn task_closed() -> Value {
    let mut message = support::message("buildsys.task.state.change-closed-scratch.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    message["body"]["id"] = json!(TASK);
    message["body"]["info"]["id"] = json!(TASK);
    message["body"]["old"] = json!("OPEN");
    message["body"]["new"] = json!("CLOSED");
    message
}

/// A pull request opened, its build accepted by Koji and closed: the URL
/// of the decided build's pending flag with the build's id, and the URLs of
/// the decided test runs' pending flags with the runs' ids.
async fn pending_flags(ctx: &handlers::Context) -> ((i64, String), Vec<(i64, String)>) {
    let pool = support::fresh_db().await;
    support::record(&pool, &opened()).await;
    support::decide_all(&pool, ctx).await;
    let build: (i64, String) =
        sqlx::query_as("SELECT koji_build_id, url FROM flags WHERE koji_build_id IS NOT NULL")
            .fetch_one(&pool)
            .await
            .expect("the decided build's flag");

    sqlx::query("UPDATE koji_builds SET task_id = $2, submitted_at = now() WHERE id = $1")
        .bind(build.0)
        .bind(TASK)
        .execute(&pool)
        .await
        .expect("Koji accepted the build");
    let fmf = Fact::FileExists {
        project_url: FORK.into(),
        sha: HEAD.into(),
        path: ".fmf/version".into(),
    };
    support::record_internal(
        &pool,
        events::typed::TOPIC_FACT,
        json!({"key": fmf.key(), "value": true}),
    )
    .await;
    support::decide_all(&pool, ctx).await;
    support::record(&pool, &task_closed()).await;
    support::decide_all(&pool, ctx).await;
    let runs: Vec<(i64, String)> = sqlx::query_as(
        "SELECT test_run_id, url FROM flags WHERE test_run_id IS NOT NULL ORDER BY test_run_id",
    )
    .fetch_all(&pool)
    .await
    .expect("the decided runs' flags");
    assert_eq!(runs.len(), 6, "a run per enabled test: {runs:?}");
    (build, runs)
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_flags_link_our_pages() {
    let ctx = handlers::Context::local(checkers::policy::Policy::local_default());
    let ((build, url), runs) = pending_flags(&ctx).await;
    assert_eq!(url, format!("http://127.0.0.1:8080/koji-builds/{build}"));
    for (run, url) in &runs {
        assert_eq!(*url, format!("http://127.0.0.1:8080/testing-farm/{run}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_dashboard_pending_flags_link_its_job_pages() {
    let mut ctx = handlers::Context::local(checkers::policy::Policy::local_default());
    ctx.dashboard_url = Some("https://dashboard.example.org/".into());
    let ((build, url), runs) = pending_flags(&ctx).await;
    assert_eq!(
        url,
        format!("https://dashboard.example.org/jobs/koji/{build}")
    );
    for (run, url) in &runs {
        assert_eq!(
            *url,
            format!("https://dashboard.example.org/jobs/testing-farm/{run}")
        );
    }
}
