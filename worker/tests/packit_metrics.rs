//! Packit Service's Fedora CI metrics, end to end: two replicas of the real
//! service on one database and one queue take a pull request from its
//! message through a scratch build and its tests, while messages are
//! delivered twice, Koji reports a state again, Testing Farm calls the
//! webhook twice for each state, and every event is decided again at the
//! end. The two processes' `/metrics` together count every transition
//! exactly once, under the names Packit's Prometheus shows.

mod support;

use std::time::Duration;

use events::states::KojiTaskState;
use serde_json::json;
use support::stack::{self, Stack};
use support::{Service, get_json, wait_until};

const TIMEOUT: Duration = Duration::from_secs(180);

/// The value of the sample named exactly `sample` (labels included).
fn value(metrics: &str, sample: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn metrics(api: &str) -> String {
    reqwest::get(format!("{api}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

async fn runs_in(pool: &sqlx::PgPool, state: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM test_runs WHERE state = $1")
        .bind(state)
        .fetch_one(pool)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread")]
async fn each_transition_counts_once_across_replicas_and_redeliveries() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let pool = stack.db.pool().await;
        let _first = stack.spawn(&[]).await;
        let second_port = support::free_port();
        let second_api = format!("http://127.0.0.1:{second_port}");
        let kerberos = stack.kerberos_env();
        let _second = Service::spawn_with_env(
            &stack.config().replace(
                &format!("127.0.0.1:{}", stack.port),
                &format!("127.0.0.1:{second_port}"),
            ),
            &["run"],
            &stack.env_with(&kerberos, &[]),
        );
        wait_until(Duration::from_secs(60), "the second replica", || async {
            get_json(&format!("{second_api}/api/readyz")).await
        })
        .await;

        // Before anything happened, Packit's metrics are there, at zero.
        let before = metrics(&stack.api()).await;
        for line in [
            "# TYPE fedora_ci_koji_builds_queued_total counter",
            "fedora_ci_koji_builds_queued_total 0",
            "fedora_ci_test_runs_finished_total 0",
            "# TYPE fedora_ci_koji_build_finished_time histogram",
            "fedora_ci_koji_build_finished_time_count 0",
            "fedora_ci_first_initial_status_time_bucket{le=\"+Inf\"} 0",
        ] {
            assert!(before.lines().any(|l| l == line), "{line:?} in:\n{before}");
        }
        for gauge in [
            "fedora_ci_koji_builds_queued_created",
            "fedora_ci_test_runs_started_created",
            "fedora_ci_test_run_finished_time_created",
        ] {
            assert!(
                value(&before, gauge) > 1.7e9,
                "{gauge} is a time:\n{before}"
            );
        }
        for (histogram, buckets) in [
            (
                "fedora_ci_koji_build_finished_time",
                &["1800", "3600", "10800", "21600", "43200", "86400", "+Inf"][..],
            ),
            (
                "fedora_ci_test_run_finished_time",
                &["1800", "3600", "10800", "21600", "43200", "86400", "+Inf"][..],
            ),
            (
                "fedora_ci_first_initial_status_time",
                &["5", "15", "20", "25", "30", "40", "60", "+Inf"][..],
            ),
        ] {
            let shown: Vec<&str> = before
                .lines()
                .filter_map(|l| {
                    l.strip_prefix(&format!("{histogram}_bucket{{le=\""))?
                        .split('"')
                        .next()
                })
                .collect();
            assert_eq!(shown, buckets, "{histogram}");
        }

        // The pull request, just sent, delivered twice.
        let mut opened = stack::message("pagure.pull-request.new-fork.json");
        opened["id"] = json!(uuid::Uuid::new_v4().to_string());
        opened["headers"]["sent-at"] = json!(chrono::Utc::now().to_rfc3339());
        stack.publish(&opened).await;
        stack.publish(&opened).await;
        let task = wait_until(Duration::from_secs(30), "a build", || async {
            stack.koji.submissions().first().map(|s| s.task_id)
        })
        .await;
        // The first pending flag is on the pull request before Koji moves on
        // (a late flag job sends the newest state, which would not be pending).
        wait_until(Duration::from_secs(30), "the pending flag", || async {
            let flags = stack.distgit.flags();
            flags
                .values()
                .flat_map(|by_uid| by_uid.values())
                .any(|flag| flag.status == "pending")
                .then_some(())
        })
        .await;
        stack
            .koji
            .set_task_state(task, KojiTaskState::Open, &["x86_64"]);
        stack.publish_koji_task(task).await;
        // Decided before the next report: two deciders could take them in
        // either order, and OPEN after CLOSED is stale, so never counted.
        wait_until(
            Duration::from_secs(30),
            "the task recorded OPEN",
            || async {
                let state: Option<String> =
                    sqlx::query_scalar("SELECT koji_state FROM koji_builds WHERE task_id = $1")
                        .bind(task)
                        .fetch_one(&pool)
                        .await
                        .ok()?;
                (state.as_deref() == Some("OPEN")).then_some(())
            },
        )
        .await;
        stack
            .koji
            .set_task_state(task, KojiTaskState::Closed, &["x86_64"]);
        stack.publish_koji_task(task).await;
        // Reported again, under a new message id.
        stack.publish_koji_task(task).await;

        // Five tests (no .fmf/version: no custom test): running, then passed,
        // each state announced twice through the webhook.
        let ids = wait_until(Duration::from_secs(30), "five requests", || async {
            let ids = stack.testing_farm.request_ids();
            (ids.len() >= 5).then_some(ids)
        })
        .await;
        assert_eq!(ids.len(), 5);
        for (state, result) in [("running", None), ("complete", Some("passed"))] {
            for id in &ids {
                stack
                    .testing_farm
                    .set_state(id, state, result, Some("all good"));
                for _ in 0..2 {
                    stack.testing_farm.notify(id).await.expect("the webhook");
                }
            }
            wait_until(Duration::from_secs(60), state, || async {
                (runs_in(&pool, state).await == 5).then_some(())
            })
            .await;
        }
        stack.settle(&pool).await;
        // Every event decided again, as after an operator's replay.
        sqlx::query(
            "UPDATE events SET status = 'received' WHERE status IN ('processed', 'skipped')",
        )
        .execute(&pool)
        .await
        .expect("decided again");
        stack.settle(&pool).await;

        let (one, two) = (metrics(&stack.api()).await, metrics(&second_api).await);
        let total = |sample: &str| value(&one, sample) + value(&two, sample);
        for (sample, expected) in [
            ("fedora_ci_koji_builds_queued_total", 1.0),
            ("fedora_ci_koji_builds_started_total", 1.0),
            ("fedora_ci_koji_builds_finished_total", 1.0),
            ("fedora_ci_koji_build_finished_time_count", 1.0),
            (
                "fedora_ci_koji_build_finished_time_bucket{le=\"1800\"}",
                1.0,
            ),
            ("fedora_ci_test_runs_queued_total", 5.0),
            ("fedora_ci_test_runs_started_total", 5.0),
            ("fedora_ci_test_runs_finished_total", 5.0),
            ("fedora_ci_test_run_finished_time_count", 5.0),
            ("fedora_ci_test_run_finished_time_bucket{le=\"1800\"}", 5.0),
            ("fedora_ci_first_initial_status_time_count", 1.0),
            ("fedora_ci_first_initial_status_time_bucket{le=\"60\"}", 1.0),
        ] {
            assert_eq!(
                total(sample),
                expected,
                "{sample}\n--- first replica:\n{one}\n--- second replica:\n{two}"
            );
        }
        let events: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE initial_status_at IS NOT NULL")
                .fetch_one(&pool)
                .await
                .expect("count");
        assert_eq!(
            events, 1,
            "only the pull request's event had an initial status"
        );
    })
    .await
    .expect("test timed out");
}
