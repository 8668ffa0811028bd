//! Decisions at the edges: unreadable events, Testing Farm webhooks arriving
//! many times, results that arrive late or out of order.

mod support;

use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn an_event_that_does_not_parse_fails_with_the_reason() {
    let pool = support::fresh_db().await;
    let ctx = support::context();
    let mut message = support::message("pagure.pull-request.new-fork.json");
    message["body"]["pullrequest"]
        .as_object_mut()
        .expect("object")
        .remove("commit_stop");
    let event = support::record(&pool, &message).await;
    support::decide_all(&pool, &ctx).await;
    let outcome = support::outcome(&pool, event).await;
    assert_eq!(outcome["status"], "failed");
    assert_eq!(
        outcome["reason"],
        "pagure.pull-request.new: pullrequest.commit_stop is missing"
    );
    assert!(support::jobs_of_event(&pool, event).await.is_empty());
}

/// A forged message whose project is `rpms/..` (which a URL library would
/// silently turn into the project `rpms`) or whose head is not a commit hash
/// sends nothing anywhere.
#[tokio::test(flavor = "multi_thread")]
async fn names_and_hashes_that_could_escape_a_url_are_refused() {
    let pool = support::fresh_db().await;
    let ctx = support::context();
    let mut dot_dot = support::message("pagure.pull-request.new-fork.json");
    dot_dot["id"] = json!("forged-dot-dot");
    dot_dot["body"]["pullrequest"]["project"]["full_url"] =
        json!("https://src.fedoraproject.org/rpms/..");
    dot_dot["body"]["pullrequest"]["project"]["fullname"] = json!("rpms/..");
    dot_dot["body"]["pullrequest"]["project"]["name"] = json!("..");
    let dot_dot = support::record(&pool, &dot_dot).await;
    let mut bad_head = support::message("pagure.pull-request.new-fork.json");
    bad_head["id"] = json!("forged-head");
    bad_head["body"]["pullrequest"]["commit_stop"] = json!("../../etc");
    let bad_head = support::record(&pool, &bad_head).await;
    support::decide_all(&pool, &ctx).await;

    let outcome = support::outcome(&pool, dot_dot).await;
    assert_eq!(outcome["status"], "skipped", "{outcome}");
    assert!(
        outcome["reason"]
            .as_str()
            .is_some_and(|r| r.contains("\"..\"")),
        "{outcome}"
    );
    let outcome = support::outcome(&pool, bad_head).await;
    assert_eq!(outcome["status"], "failed", "{outcome}");
    assert!(
        outcome["reason"]
            .as_str()
            .is_some_and(|r| r.contains("is not a commit hash")),
        "{outcome}"
    );
    for event in [dot_dot, bad_head] {
        assert!(support::jobs_of_event(&pool, event).await.is_empty());
    }
}

/// A pull request opened, built, and its tests submitted, with request ids.
async fn tests_submitted(pool: &sqlx::PgPool, ctx: &handlers::Context) {
    support::record(pool, &support::message("pagure.pull-request.updated.json")).await;
    support::decide_all(pool, ctx).await;
    sqlx::query("UPDATE koji_builds SET task_id = 777 WHERE id = 1")
        .execute(pool)
        .await
        .expect("task");
    let mut closed = support::message("buildsys.task.state.change-closed-scratch.json");
    closed["body"]["id"] = json!(777);
    support::record(pool, &closed).await;
    support::decide_all(pool, ctx).await;
    // As the submit jobs record it once Testing Farm accepted the requests.
    sqlx::query("UPDATE test_runs SET request_id = 'req-' || id, state = 'queued'")
        .execute(pool)
        .await
        .expect("requests");
    sqlx::query("UPDATE jobs SET state = 'done' WHERE kind = 'submit-testing-farm'")
        .execute(pool)
        .await
        .expect("jobs done");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_webhooks_reads_the_request_once_per_state() {
    let pool = support::fresh_db().await;
    let ctx = support::context();
    tests_submitted(&pool, &ctx).await;
    for _ in 0..50 {
        support::record_internal(
            &pool,
            events::typed::TOPIC_TF_NOTIFICATION,
            json!({"request_id": "req-1"}),
        )
        .await;
    }
    support::decide_all(&pool, &ctx).await;
    let fetches: Vec<(String,)> =
        sqlx::query_as("SELECT dedup_key FROM jobs WHERE kind = 'fetch-testing-farm'")
            .fetch_all(&pool)
            .await
            .expect("jobs");
    assert_eq!(
        fetches,
        [("fetch-testing-farm:req-1:queued:0".to_string(),)]
    );

    // The read finds it running: the run and its flag follow, and the next
    // webhooks lead to one more read.
    let mut running = support::testing_farm("request-complete.json");
    running["id"] = json!("req-1");
    running["state"] = json!("running");
    running["result"] = json!(null);
    support::record_internal(&pool, events::typed::TOPIC_TF_REQUEST, running).await;
    for _ in 0..50 {
        support::record_internal(
            &pool,
            events::typed::TOPIC_TF_NOTIFICATION,
            json!({"request_id": "req-1"}),
        )
        .await;
    }
    support::decide_all(&pool, &ctx).await;
    let fetches: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'fetch-testing-farm'")
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(fetches, 2);

    // Complete and passed: success flag with the artifacts link.
    let mut complete = support::testing_farm("request-complete.json");
    complete["id"] = json!("req-1");
    complete["run"] = json!({"artifacts": "https://artifacts.testing-farm.io/req-1"});
    let done = support::record_internal(&pool, events::typed::TOPIC_TF_REQUEST, complete).await;
    support::decide_all(&pool, &ctx).await;
    let flag: (String, String, String) = sqlx::query_as(
        "SELECT f.status, f.comment, f.url FROM flags f JOIN test_runs r ON r.id = f.test_run_id
         WHERE r.request_id = 'req-1'",
    )
    .fetch_one(&pool)
    .await
    .expect("flag");
    assert_eq!(
        flag,
        (
            "success".to_string(),
            "Tests passed".to_string(),
            "https://artifacts.testing-farm.io/req-1".to_string()
        )
    );
    assert_eq!(support::outcome(&pool, done).await["status"], "processed");

    // A late "running" after "complete" changes nothing.
    let mut late = support::testing_farm("request-complete.json");
    late["id"] = json!("req-1");
    late["state"] = json!("running");
    let late = support::record_internal(&pool, events::typed::TOPIC_TF_REQUEST, late).await;
    support::decide_all(&pool, &ctx).await;
    let outcome = support::outcome(&pool, late).await;
    assert_eq!(outcome["status"], "skipped", "{outcome:#}");
    assert!(support::jobs_of_event(&pool, late).await.is_empty());
    // Webhooks after the end read nothing.
    let after = support::record_internal(
        &pool,
        events::typed::TOPIC_TF_NOTIFICATION,
        json!({"request_id": "req-1"}),
    )
    .await;
    support::decide_all(&pool, &ctx).await;
    assert!(support::jobs_of_event(&pool, after).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_errored_request_sets_an_error_flag_with_the_summary() {
    let pool = support::fresh_db().await;
    let ctx = support::context();
    tests_submitted(&pool, &ctx).await;
    let mut errored = support::testing_farm("request-error.json");
    errored["id"] = json!("req-2");
    support::record_internal(&pool, events::typed::TOPIC_TF_REQUEST, errored).await;
    support::decide_all(&pool, &ctx).await;
    let (state, result, flag_status, comment): (String, Option<String>, String, String) =
        sqlx::query_as(
            "SELECT r.state, r.result, f.status, f.comment FROM test_runs r
             JOIN flags f ON f.test_run_id = r.id WHERE r.request_id = 'req-2'",
        )
        .fetch_one(&pool)
        .await
        .expect("run");
    assert_eq!(state, "error");
    assert_eq!(result.as_deref(), Some("error"));
    assert_eq!(flag_status, "error");
    assert_eq!(comment, "something went wrong");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_koji_message_older_than_the_recorded_state_is_stale() {
    let pool = support::fresh_db().await;
    let ctx = support::context();
    tests_submitted(&pool, &ctx).await;
    let mut open = support::message("buildsys.task.state.change-open-scratch.json");
    open["body"]["id"] = json!(777);
    let event = support::record(&pool, &open).await;
    support::decide_all(&pool, &ctx).await;
    let outcome = support::outcome(&pool, event).await;
    assert_eq!(outcome["status"], "skipped");
    assert!(
        outcome["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("stale"),
        "{outcome:#}"
    );
    let status: String = sqlx::query_scalar("SELECT status FROM koji_builds WHERE task_id = 777")
        .fetch_one(&pool)
        .await
        .expect("build");
    assert_eq!(status, "success");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_pull_request_stops_its_pipeline() {
    let pool = support::fresh_db().await;
    let ctx = support::context();
    tests_submitted(&pool, &ctx).await;
    let mut closed = support::message("pagure.pull-request.updated.json");
    closed["id"] = json!("closing");
    closed["topic"] = json!("org.fedoraproject.prod.pagure.pull-request.closed");
    closed["body"]["pullrequest"]["status"] = json!("Closed");
    let event = support::record(&pool, &closed).await;
    support::decide_all(&pool, &ctx).await;
    let cancels: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'cancel-testing-farm'")
            .fetch_one(&pool)
            .await
            .expect("count");
    // Five: custom waits for its .fmf/version look-up, so it has no request.
    assert_eq!(cancels, 5, "every submitted request is canceled");
    let (pr, pipeline): (String, String) = sqlx::query_as(
        "SELECT pr.status, p.state FROM pull_requests pr JOIN pipelines p ON p.pull_request_id = pr.id",
    )
    .fetch_one(&pool)
    .await
    .expect("rows");
    assert_eq!((pr.as_str(), pipeline.as_str()), ("closed", "closed"));
    assert_eq!(support::outcome(&pool, event).await["status"], "processed");
    // Nothing stays pending: the test flags end, saying why.
    let flags: Vec<(String, String)> =
        sqlx::query_as("SELECT DISTINCT status, comment FROM flags WHERE test_run_id IS NOT NULL")
            .fetch_all(&pool)
            .await
            .expect("flags");
    assert_eq!(
        flags,
        [(
            "canceled".to_string(),
            "Tests were canceled: the pull request was closed".to_string()
        )]
    );
}

/// A polling pass can enqueue thousands of reads at once: the work decided
/// after it (submissions, and the reads Testing Farm's webhook asks for)
/// still goes first.
#[tokio::test(flavor = "multi_thread")]
async fn periodic_polls_wait_behind_the_rest_of_their_queue() {
    let pool = support::fresh_db().await;
    let ctx = support::context();
    tests_submitted(&pool, &ctx).await;
    sqlx::query("UPDATE jobs SET state = 'done' WHERE state = 'pending'")
        .execute(&pool)
        .await
        .expect("nothing else due");
    sqlx::query("UPDATE koji_builds SET status = 'running' WHERE id = 1")
        .execute(&pool)
        .await
        .expect("build running");
    // The periodic pass's polls, due ten minutes ago; then a submission and
    // a webhook read of each queue, due now.
    let quiet = std::time::Duration::ZERO;
    let reads = store::periodic::schedule_testing_farm_polls(&pool, quiet, 7)
        .await
        .expect("testing farm polls");
    assert!(reads > 0, "no Testing Farm request to poll");
    let polls = store::periodic::schedule_koji_polls(&pool, quiet, 7)
        .await
        .expect("koji polls");
    assert_eq!(polls, 1);
    sqlx::query("UPDATE jobs SET run_at = now() - interval '10 minutes' WHERE state = 'pending'")
        .execute(&pool)
        .await
        .expect("backdated");
    sqlx::query(
        "INSERT INTO jobs (kind, queue, dedup_key, payload, run_at)
         VALUES ('submit-scratch-build', 'koji', 'build:later', '{}', now()),
                ('submit-testing-farm', 'testing-farm', 'submit:later', '{}', now()),
                ('fetch-testing-farm', 'testing-farm', 'fetch-testing-farm:req-1:queued:0', '{}', now())",
    )
    .execute(&pool)
    .await
    .expect("jobs");
    let lease = std::time::Duration::from_secs(60);
    let claim = |queue: &'static str, limit: i64| {
        let pool = pool.clone();
        async move {
            store::jobs::claim(&pool, queue, "test", lease, limit)
                .await
                .expect("claim")
                .into_iter()
                .map(|job| job.dedup_key)
                .collect::<Vec<_>>()
        }
    };
    let mut first = claim("testing-farm", 2).await;
    first.sort();
    assert_eq!(
        first,
        ["fetch-testing-farm:req-1:queued:0", "submit:later"],
        "the submission and the webhook's read come before older polls"
    );
    assert_eq!(
        claim("testing-farm", 50).await.len() as u64,
        reads,
        "then the polls"
    );
    assert_eq!(claim("koji", 1).await, ["build:later"]);
    assert_eq!(claim("koji", 1).await, ["poll-koji-task:777:7"]);
}
