//! The Testing Farm webhook and the operator actions, on the real service.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::stack::{self, Stack};
use support::wait_until;

const TIMEOUT: Duration = Duration::from_secs(180);
const ADMIN: &str = "admin-secret-token";

/// The fork pull request opened and built; waits for the tests' requests.
async fn tests_submitted(stack: &Stack) -> Vec<String> {
    let mut message = stack::message("pagure.pull-request.new-fork.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    stack.publish(&message).await;
    stack.close_first_build().await;
    wait_until(Duration::from_secs(30), "five requests", || async {
        let ids = stack.testing_farm.request_ids();
        (ids.len() >= 5).then_some(ids)
    })
    .await
}

async fn post(url: &str, body: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(url: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_checks_its_token_and_reads_once_per_state() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let pool = stack.db.pool().await;
        // No periodic reads: only the webhook leads to reads here.
        let _service = stack
            .spawn(&[("FEDORA_CI__JOBS__TESTING_FARM_POLL_AFTER_SECONDS", "3600")])
            .await;
        let ids = tests_submitted(&stack).await;
        stack.settle(&pool).await;
        let url = format!("{}/api/testing-farm/results", stack.api());
        let request = &ids[0];

        let (status, body) = post(&url, "not json", None).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["error"].as_str().unwrap_or_default().contains("not JSON"));
        let (status, _) = post(&url, &json!({"request_id": request, "token": "wrong"}).to_string(), None).await;
        assert_eq!(status, 401);
        let (status, _) = post(&url, &json!({"request_id": request}).to_string(), None).await;
        assert_eq!(status, 401, "no token");

        let notify = json!({"request_id": request, "token": stack::WEBHOOK_TOKEN}).to_string();
        let flood = |n: usize| {
            let (url, notify) = (url.clone(), notify.clone());
            async move {
                let calls = (0..n).map(|_| {
                    let (url, notify) = (url.clone(), notify.clone());
                    async move { post(&url, &notify, None).await.0 }
                });
                futures::future::join_all(calls).await
            }
        };
        let statuses = flood(1000).await;
        assert!(statuses.iter().all(|s| *s == 200), "every call accepted at once");
        stack.settle(&pool).await;
        let reads = || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM jobs WHERE kind = 'fetch-testing-farm' AND payload->>'request_id' = $1",
            )
            .bind(request)
            .fetch_one(&pool)
            .await
            .expect("count")
        };
        // What Testing Farm itself received: GETs of this request.
        let gets = || {
            stack
                .testing_farm
                .calls()
                .iter()
                .filter(|c| c.method == "GET" && c.path == format!("/requests/{request}"))
                .count()
        };
        // Calls fold into one read per burst (the read waits a moment for
        // the rest of the burst); a flood that outlasts a read, on a loaded
        // machine, starts another for the calls after it. A handful, not
        // a thousand, and each one GET at Testing Farm.
        let first = reads().await;
        assert!((1..=5).contains(&first), "1,000 calls for one state: {first} reads");
        assert_eq!(gets(), usize::try_from(first).expect("a count"));

        // Testing Farm moves on; another flood reads once more, and the flag follows.
        stack
            .testing_farm
            .set_state(request, "complete", Some("passed"), Some("all good"));
        let statuses = flood(1000).await;
        assert!(statuses.iter().all(|s| *s == 200));
        stack.settle(&pool).await;
        // The first read of the flood finds the run complete; the other
        // calls find it ended and read nothing.
        assert_eq!(reads().await, first + 1, "one read for the new state");
        assert_eq!(gets(), usize::try_from(first + 1).expect("a count"));
        let flag: String = sqlx::query_scalar(
            "SELECT f.status FROM flags f JOIN test_runs r ON r.id = f.test_run_id WHERE r.request_id = $1",
        )
        .bind(request)
        .fetch_one(&pool)
        .await
        .expect("the run's flag");
        assert_eq!(flag, "success");
        // After the end, calls read nothing more.
        flood(100).await;
        stack.settle(&pool).await;
        assert_eq!(reads().await, first + 1);
        assert_eq!(gets(), usize::try_from(first + 1).expect("a count"));
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_actions_need_the_token() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let (status, body) = get(&format!("{}/api/jobs", stack.api()), Some("anything")).await;
        assert_eq!(status, 403, "no admin token configured: {body}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_list_retry_cancel_and_decide_again() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let pool = stack.db.pool().await;
        stack.testing_farm.fail_next(100_000, 400);
        let _service = stack
            .spawn(&[("FEDORA_CI__API__ADMIN_TOKEN", ADMIN)])
            .await;
        tests_submitted_or_refused(&stack).await;
        stack.settle(&pool).await;
        let api = stack.api();

        for bearer in [None, Some("wrong")] {
            let (status, _) = get(&format!("{api}/api/jobs"), bearer).await;
            assert_eq!(status, 401);
        }
        let (status, dead) = get(&format!("{api}/api/jobs?state=dead&per_page=100"), Some(ADMIN)).await;
        assert_eq!(status, 200);
        let dead = dead.as_array().expect("a list").clone();
        assert_eq!(dead.len(), 5, "Testing Farm refused every request: {dead:#?}");
        let (status, body) = get(&format!("{api}/api/jobs?state=sleeping"), Some(ADMIN)).await;
        assert_eq!(status, 400, "{body}");

        // Retry one dead job (Testing Farm now takes it).
        stack.testing_farm.recover();
        let id = dead[0]["id"].as_i64().expect("an id");
        let (status, _) = post(&format!("{api}/api/jobs/{id}/retry"), "", Some(ADMIN)).await;
        assert_eq!(status, 200);
        let (status, _) = post(&format!("{api}/api/jobs/{id}/retry"), "", Some(ADMIN)).await;
        assert_eq!(status, 409, "not dead any more");
        let (status, _) = post(&format!("{api}/api/jobs/999999/retry"), "", Some(ADMIN)).await;
        assert_eq!(status, 404);
        wait_until(Duration::from_secs(30), "the retried request accepted", || async {
            (!stack.testing_farm.request_ids().is_empty()).then_some(())
        })
        .await;
        let (status, _) = post(&format!("{api}/api/jobs/{id}/cancel"), "", Some(ADMIN)).await;
        assert_eq!(status, 409, "done jobs are not canceled");

        // Cancel the whole pipeline: the request is deleted, the flags end.
        let pipeline: i64 = sqlx::query_scalar("SELECT id FROM pipelines")
            .fetch_one(&pool)
            .await
            .expect("the pipeline");
        let (status, body) =
            post(&format!("{api}/api/pipelines/{pipeline}/cancel"), "", Some(ADMIN)).await;
        assert_eq!(status, 202, "{body}");
        wait_until(Duration::from_secs(30), "the request deleted", || async {
            stack
                .testing_farm
                .calls()
                .iter()
                .any(|c| c.method == "DELETE")
                .then_some(())
        })
        .await;
        // Testing Farm's worker ends the request it was asked to cancel.
        assert_eq!(stack.testing_farm.finish_cancellations(), 1);
        stack.settle(&pool).await;
        let flags = stack.distgit.flags();
        let flags = flags.get(&("rpms/optee_os".to_string(), 2)).expect("flags");
        assert!(
            flags.values().all(|f| f.status != "pending"),
            "no flag left pending: {flags:#?}"
        );
        // The retried run was running again, so the cancel ended it and its
        // flag `canceled`; the four that had given up stay `error`.
        let mut tests: Vec<&str> = flags
            .values()
            .filter(|f| !f.username.contains("scratch build"))
            .map(|f| f.status.as_str())
            .collect();
        tests.sort_unstable();
        assert_eq!(tests, ["canceled", "error", "error", "error", "error"], "{flags:#?}");
        // The retried run was canceled: superseded, and its request deleted
        // at Testing Farm.
        let (superseded, request): (bool, Option<String>) = sqlx::query_as(
            "SELECT r.superseded, r.request_id FROM test_runs r
             JOIN jobs j ON (j.payload->>'test_run_id')::int8 = r.id WHERE j.id = $1",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .expect("the retried run");
        assert!(superseded);
        let request = request.expect("submitted after the retry");
        assert!(
            stack
                .testing_farm
                .calls()
                .iter()
                .any(|c| c.method == "DELETE" && c.path == format!("/requests/{request}")),
            "{:#?}",
            stack.testing_farm.calls()
        );
        let (status, _) =
            post(&format!("{api}/api/pipelines/{pipeline}/cancel"), "", Some(ADMIN)).await;
        assert_eq!(status, 409, "already ended");

        // Decide an event again, and a window of events.
        let message_id: String = sqlx::query_scalar(
            "SELECT message_id FROM events WHERE topic LIKE '%pull-request.new' LIMIT 1",
        )
        .fetch_one(&pool)
        .await
        .expect("the event");
        let jobs_before: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(&pool)
            .await
            .expect("count");
        let (status, _) =
            post(&format!("{api}/api/events/{message_id}/redecide"), "", Some(ADMIN)).await;
        assert_eq!(status, 202);
        let (status, body) = post(
            &format!("{api}/api/events/replay?since=2000-01-01T00:00:00Z"),
            "",
            Some(ADMIN),
        )
        .await;
        assert_eq!(status, 202, "{body}");
        assert!(body["events"].as_u64().unwrap_or(0) > 1, "{body}");
        stack.settle(&pool).await;
        let (decisions,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM decisions d JOIN events e ON e.id = d.event_id WHERE e.message_id = $1",
        )
        .bind(&message_id)
        .fetch_one(&pool)
        .await
        .expect("count");
        assert!(decisions >= 2, "decided again, recorded again");
        let jobs_after: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(jobs_after, jobs_before, "deciding again did nothing twice");
        let (status, _) = post(&format!("{api}/api/events/replay"), "", Some(ADMIN)).await;
        assert_eq!(status, 400, "since is required");
    })
    .await
    .expect("test timed out");
}

/// Like `tests_submitted`, for a Testing Farm that refuses the requests.
async fn tests_submitted_or_refused(stack: &Stack) {
    let mut message = stack::message("pagure.pull-request.new-fork.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    stack.publish(&message).await;
    stack.close_first_build().await;
}
