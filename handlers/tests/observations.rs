//! The state changes the decider reports for Packit's metrics: a build and
//! its test runs driven through their states with the real messages and
//! Testing Farm answers, each change reported once, however often it is
//! reported again (a poll, a redelivery under a new id, an event decided
//! again) and whatever the transactions did.

mod support;

use handlers::Observation;
use serde_json::{Value, json};
use sqlx::PgPool;

const SUBMITTED: &str = "2026-12-03T10:00:00Z";

/// Decide everything waiting, as the service's decider does, and collect
/// what the committed batches observed.
async fn decide_observing(pool: &PgPool, ctx: &handlers::Context) -> Vec<Observation> {
    let mut seen = Vec::new();
    loop {
        let report = handlers::decider::decide_batch(pool, ctx, 100)
            .await
            .expect("deciding");
        if report.is_empty() {
            return seen;
        }
        seen.extend(report.observations);
    }
}

async fn record_and_decide(
    pool: &PgPool,
    ctx: &handlers::Context,
    message: &Value,
) -> Vec<Observation> {
    support::record(pool, message).await;
    decide_observing(pool, ctx).await
}

async fn internal(
    pool: &PgPool,
    ctx: &handlers::Context,
    topic: &str,
    body: Value,
) -> Vec<Observation> {
    support::record_internal(pool, topic, body).await;
    decide_observing(pool, ctx).await
}

/// The real Koji task message for our task, with Koji's completion time.
fn koji_message(task_id: i64, old: &str, new: &str, completed: Option<f64>) -> Value {
    let mut message = support::message("buildsys.task.state.change-closed-scratch.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    message["body"]["id"] = json!(task_id);
    message["body"]["info"]["id"] = json!(task_id);
    message["body"]["old"] = json!(old);
    message["body"]["new"] = json!(new);
    message["body"]["info"]["completion_time"] = json!(completed);
    message
}

/// Testing Farm's answer for `request_id` in `state`.
fn testing_farm(request_id: &str, state: &str) -> Value {
    let mut request = support::testing_farm("request-complete.json");
    request["id"] = json!(request_id);
    request["state"] = json!(state);
    if state != "complete" {
        request["result"] = Value::Null;
    }
    request
}

#[tokio::test(flavor = "multi_thread")]
async fn each_state_change_is_observed_once() {
    let pool = support::fresh_db().await;
    let ctx = handlers::Context::local(checkers::policy::Policy::local_default());
    let submitted = chrono::DateTime::parse_from_rfc3339(SUBMITTED)
        .expect("a time")
        .to_utc();

    let mut opened = support::message("pagure.pull-request.new-fork.json");
    opened["id"] = json!(uuid::Uuid::new_v4().to_string());
    assert_eq!(record_and_decide(&pool, &ctx, &opened).await, []);

    // What the submit job records once Koji accepted the build.
    sqlx::query("UPDATE koji_builds SET task_id = 90001, submitted_at = $1 WHERE id = 1")
        .bind(submitted)
        .execute(&pool)
        .await
        .expect("accepted");

    let open = koji_message(90_001, "FREE", "OPEN", None);
    assert_eq!(
        record_and_decide(&pool, &ctx, &open).await,
        [Observation::KojiBuildStarted]
    );
    // The same state again, as a poll reads it: no change.
    let polled = koji_message(90_001, "FREE", "OPEN", None);
    assert_eq!(record_and_decide(&pool, &ctx, &polled).await, []);

    // Closed 2 h 5 min after the submission, by Koji's clock.
    let completed = submitted.timestamp() as f64 + 7_500.0;
    let closed = koji_message(90_001, "OPEN", "CLOSED", Some(completed));
    assert_eq!(
        record_and_decide(&pool, &ctx, &closed).await,
        [Observation::KojiBuildFinished {
            took: Some(chrono::Duration::seconds(7_500))
        }]
    );
    // Delivered again (the inbox keeps one), reported again under a new id,
    // and decided again by an operator: nothing more.
    assert_eq!(record_and_decide(&pool, &ctx, &closed).await, []);
    let again = koji_message(90_001, "OPEN", "CLOSED", Some(completed));
    assert_eq!(record_and_decide(&pool, &ctx, &again).await, []);
    sqlx::query("UPDATE events SET status = 'received' WHERE message_id = $1")
        .bind(closed["id"].as_str())
        .execute(&pool)
        .await
        .expect("decided again");
    assert_eq!(decide_observing(&pool, &ctx).await, []);

    // The build's tests: Testing Farm accepted them an hour ago.
    let runs: Vec<i64> = sqlx::query_scalar("SELECT id FROM test_runs ORDER BY id")
        .fetch_all(&pool)
        .await
        .expect("runs");
    assert!(runs.len() >= 2, "tests after the build: {runs:?}");
    for run in &runs {
        sqlx::query(
            "UPDATE test_runs SET request_id = 'req-' || id, state = 'queued',
                 submitted_at = now() - interval '1 hour' WHERE id = $1",
        )
        .bind(run)
        .execute(&pool)
        .await
        .expect("submitted");
    }
    let first = format!("req-{}", runs[0]);
    let tf = events::typed::TOPIC_TF_REQUEST;
    assert_eq!(
        internal(&pool, &ctx, tf, testing_farm(&first, "running")).await,
        [Observation::TestRunStarted]
    );
    assert_eq!(
        internal(&pool, &ctx, tf, testing_farm(&first, "running")).await,
        []
    );
    let finished = internal(&pool, &ctx, tf, testing_farm(&first, "complete")).await;
    match finished.as_slice() {
        [Observation::TestRunFinished { took: Some(took) }] => assert!(
            (3_600..3_700).contains(&took.num_seconds()),
            "an hour since the submission: {took:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        internal(&pool, &ctx, tf, testing_farm(&first, "complete")).await,
        []
    );

    // A run with no result in time ends as an error: finished too, once.
    let timeout = json!({"subject": "test-run", "id": runs[1], "after_seconds": 43_200});
    let ended = internal(&pool, &ctx, events::typed::TOPIC_TIMEOUT, timeout.clone()).await;
    assert!(
        matches!(
            ended.as_slice(),
            [Observation::TestRunFinished { took: Some(_) }]
        ),
        "{ended:?}"
    );
    assert_eq!(
        internal(&pool, &ctx, events::typed::TOPIC_TIMEOUT, timeout).await,
        []
    );
}
