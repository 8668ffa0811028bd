//! A pull request's life on the real database: opened, built, tested,
//! updated twice, retriggered by comments; every step decided by the
//! decider as the service runs it. What the jobs would do (submit to Koji or
//! Testing Farm) is played by the test, the way the job runtime records it.

mod support;

use checkers::rules::Fact;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{
    comment_message, decide, fact, flags, kinds, koji_accepted, koji_message, pr_message,
};

const OLD: &str = "889f07af35d27bbcaf9c535c17a63b974aa42ee3";
const B: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
const C: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
const FORK: &str = "https://src.fedoraproject.org/fork/zbyszek/rpms/optee_os";

async fn pending_flag_jobs_of(pool: &PgPool, sha: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM jobs j JOIN pipelines p ON p.id = j.pipeline_id
         WHERE j.kind = 'set-flag' AND j.state = 'pending' AND p.commit_sha = $1",
    )
    .bind(sha)
    .fetch_one(pool)
    .await
    .expect("count")
}

/// How many flags of a commit are still pending.
async fn pending_flags_of(pool: &PgPool, sha: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM flags WHERE commit_sha = $1 AND status = 'pending'")
        .bind(sha)
        .fetch_one(pool)
        .await
        .expect("count")
}

fn reason(outcome: &Value) -> &str {
    outcome["reason"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_request_from_opening_to_retriggers() {
    let pool = support::fresh_db().await;
    let ctx = handlers::Context::local(checkers::policy::Policy::local_default());

    // PR opened: a scratch-build job and a pending flag job (and the look-up
    // the custom test will need).
    let opened = decide(&pool, &ctx, &pr_message("new", OLD, 1_729_687_175)).await;
    assert_eq!(
        kinds(&pool, opened).await,
        ["lookup-fact", "set-flag", "submit-scratch-build"]
    );
    let jobs = support::jobs_of_event(&pool, opened).await;
    assert_eq!(
        jobs[2]["payload"],
        json!({
            "koji_build_id": 1,
            "target": "rawhide",
            "source_url": format!("git+https://src.fedoraproject.org/forks/zbyszek/rpms/optee_os.git#{OLD}"),
        })
    );
    assert_eq!(
        flags(&pool).await,
        [(
            "Fedora CI - scratch build - rawhide [889f07a]".to_string(),
            "pending".to_string(),
            "RPM build is being submitted".to_string()
        )]
    );

    // Koji accepted it; the look-up found .fmf/version; the task closes.
    koji_accepted(&pool, 1, 90_001).await;
    let fmf = Fact::FileExists {
        project_url: FORK.into(),
        sha: OLD.into(),
        path: ".fmf/version".into(),
    };
    fact(&pool, &ctx, &fmf, true).await;
    let closed = decide(&pool, &ctx, &koji_message(90_001, "OPEN", "CLOSED")).await;
    let jobs = support::jobs_of_event(&pool, closed).await;
    let submits: Vec<&Value> = jobs
        .iter()
        .filter(|j| j["kind"] == "submit-testing-farm")
        .collect();
    assert_eq!(submits.len(), 6, "one request per enabled test: {jobs:#?}");
    assert_eq!(
        jobs.iter().filter(|j| j["kind"] == "set-flag").count(),
        7,
        "the build's success and a pending flag per test"
    );
    let payloads: Vec<(String, Value)> =
        sqlx::query_as("SELECT test_name, payload FROM test_runs ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("runs");
    insta::assert_json_snapshot!("testing_farm_payloads_after_closed", payloads);
    let build_flag = flags(&pool).await.remove(0);
    assert_eq!(build_flag.1, "success");
    assert_eq!(build_flag.2, "RPM build succeeded");

    // Three requests were accepted by Testing Farm; three wait to be sent.
    for run in 1..=3 {
        sqlx::query("UPDATE test_runs SET request_id = $2, state = 'queued' WHERE id = $1")
            .bind(run)
            .bind(format!("req-{run}"))
            .execute(&pool)
            .await
            .expect("request id");
        sqlx::query("UPDATE jobs SET state = 'done' WHERE dedup_key = $1")
            .bind(format!("submit-testing-farm:{run}"))
            .execute(&pool)
            .await
            .expect("done");
    }
    // Flag jobs not sent yet at this point.
    sqlx::query("UPDATE jobs SET state = 'done' WHERE kind = 'set-flag' AND id <= 4")
        .execute(&pool)
        .await
        .expect("some flags sent");

    // PR updated to B: the requests Testing Farm has are canceled, the ones
    // not yet sent are dropped, and the old commit's pending flags end as
    // canceled, saying why.
    let updated = decide(&pool, &ctx, &pr_message("updated", B, 1_729_690_000)).await;
    let jobs = support::jobs_of_event(&pool, updated).await;
    let cancels: Vec<&Value> = jobs
        .iter()
        .filter(|j| j["kind"] == "cancel-testing-farm")
        .collect();
    assert_eq!(cancels.len(), 3, "{jobs:#?}");
    let dropped: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE kind = 'submit-testing-farm' AND state = 'canceled'",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(dropped, 3);
    assert_eq!(pending_flags_of(&pool, OLD).await, 0);
    assert_eq!(
        pending_flag_jobs_of(&pool, OLD).await,
        6,
        "one update per test flag, to canceled"
    );
    assert!(
        kinds(&pool, updated)
            .await
            .contains(&"submit-scratch-build".to_string())
    );

    // A late result for an old request is recorded, and sets no flag.
    let mut late = support::testing_farm("request-complete.json");
    late["id"] = json!("req-1");
    let late_event = support::record_internal(&pool, events::typed::TOPIC_TF_REQUEST, late).await;
    support::decide_all(&pool, &ctx).await;
    assert!(kinds(&pool, late_event).await.is_empty());
    let outcome = support::outcome(&pool, late_event).await;
    assert!(
        reason(&outcome).contains("no flag: the pipeline has ended (superseded)"),
        "{outcome:#}"
    );

    // B's build starts on Koji; then the PR moves to C: B's task is canceled.
    let b_build: i64 = sqlx::query_scalar("SELECT id FROM koji_builds WHERE commit_sha = $1")
        .bind(B)
        .fetch_one(&pool)
        .await
        .expect("B's build");
    koji_accepted(&pool, b_build, 90_002).await;
    decide(&pool, &ctx, &koji_message(90_002, "FREE", "OPEN")).await;
    let moved = decide(&pool, &ctx, &pr_message("updated", C, 1_729_700_000)).await;
    let jobs = support::jobs_of_event(&pool, moved).await;
    let cancel_koji: Vec<&Value> = jobs
        .iter()
        .filter(|j| j["kind"] == "cancel-koji-task")
        .collect();
    assert_eq!(cancel_koji.len(), 1, "{jobs:#?}");
    assert_eq!(cancel_koji[0]["payload"]["koji_build_id"], b_build);
    assert_eq!(pending_flags_of(&pool, B).await, 0);
    assert_eq!(
        pending_flag_jobs_of(&pool, B).await,
        1,
        "B's build flag goes to canceled"
    );
    // Koji confirms the cancel: recorded, no other flag for B.
    let canceled = decide(&pool, &ctx, &koji_message(90_002, "OPEN", "CANCELED")).await;
    assert!(kinds(&pool, canceled).await.is_empty());
    // A late message about the old commit does not move the PR back.
    let stale = decide(&pool, &ctx, &pr_message("updated", B, 1_729_690_000)).await;
    assert!(kinds(&pool, stale).await.is_empty());
    assert!(reason(&support::outcome(&pool, stale).await).contains("stale message"));

    // C builds fine.
    let c_build: i64 = sqlx::query_scalar("SELECT id FROM koji_builds WHERE commit_sha = $1")
        .bind(C)
        .fetch_one(&pool)
        .await
        .expect("C's build");
    koji_accepted(&pool, c_build, 90_003).await;
    let fmf_c = Fact::FileExists {
        project_url: FORK.into(),
        sha: C.into(),
        path: ".fmf/version".into(),
    };
    fact(&pool, &ctx, &fmf_c, false).await;
    let c_closed = decide(&pool, &ctx, &koji_message(90_003, "OPEN", "CLOSED")).await;
    let c_jobs = support::jobs_of_event(&pool, c_closed).await;
    assert_eq!(
        c_jobs
            .iter()
            .filter(|j| j["kind"] == "submit-testing-farm")
            .count(),
        5,
        "no custom test without .fmf/version"
    );
    let outcome = support::outcome(&pool, c_closed).await;
    let custom = outcome["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .find(|d| d["subject"] == "custom rawhide")
        .unwrap_or_else(|| panic!("a decision about the custom test: {outcome:#}"));
    assert_eq!(custom["outcome"], "skipped");
    assert!(
        custom["reason"]
            .as_str()
            .unwrap_or_default()
            .contains(".fmf/version"),
        "{custom}"
    );

    // A retrigger by someone who is not a packager: only a refusal.
    let mallory = Fact::GroupMember {
        user: "mallory".into(),
        group: "packager".into(),
    };
    fact(&pool, &ctx, &mallory, false).await;
    let refused = decide(
        &pool,
        &ctx,
        &comment_message(5001, "mallory", "/packit-ci test", C),
    )
    .await;
    assert_eq!(kinds(&pool, refused).await, ["post-comment"]);
    let reply = &support::jobs_of_event(&pool, refused).await[0]["payload"];
    assert!(
        reply["text"]
            .as_str()
            .unwrap_or_default()
            .contains("packager"),
        "{reply}"
    );

    // By a packager whose membership is not known yet: the comment waits for
    // the look-up, then runs.
    let retrigger = decide(
        &pool,
        &ctx,
        &comment_message(5002, "zbyszek", "/packit-ci test installability", C),
    )
    .await;
    assert_eq!(kinds(&pool, retrigger).await, ["lookup-fact"]);
    let zbyszek = Fact::GroupMember {
        user: "zbyszek".into(),
        group: "packager".into(),
    };
    fact(&pool, &ctx, &zbyszek, true).await;
    let kinds_after = kinds(&pool, retrigger).await;
    assert_eq!(
        kinds_after,
        ["lookup-fact", "set-flag", "submit-testing-farm"],
        "one new installability run"
    );
    let outcome = support::outcome(&pool, retrigger).await;
    assert_eq!(outcome["status"], "processed", "{outcome:#}");

    // The same comment decided again: nothing new.
    let before = support::all_jobs(&pool).await;
    sqlx::query("UPDATE events SET status = 'received' WHERE id = $1")
        .bind(retrigger)
        .execute(&pool)
        .await
        .expect("reset");
    support::decide_all(&pool, &ctx).await;
    assert_eq!(support::all_jobs(&pool).await, before);

    // A malformed command gets the usage.
    let bad = decide(
        &pool,
        &ctx,
        &comment_message(5003, "zbyszek", "/packit-ci tset", C),
    )
    .await;
    assert_eq!(kinds(&pool, bad).await, ["post-comment"]);
    let reply = &support::jobs_of_event(&pool, bad).await[0]["payload"];
    assert_eq!(
        reply["pr"], 2,
        "on the pull request commented on: {reply:#}"
    );
    let text = reply["text"].as_str().expect("a text");
    assert!(
        text.starts_with("There is a syntax error in this command: "),
        "what was wrong comes first: {text}"
    );
    assert!(
        text.contains("tset"),
        "it names the word it did not know: {text}"
    );
    for line in [
        "Fedora CI understands these commands in a pull request comment:",
        "- `/packit-ci test` runs all tests again on the latest successful scratch build",
        "- `/packit-ci help` shows this message",
    ] {
        assert!(text.contains(line), "the usage follows, {line:?}: {text}");
    }

    let final_flags: Vec<(String, String, String)> = flags(&pool).await;
    insta::assert_json_snapshot!("flags_at_the_end", final_flags);
}
