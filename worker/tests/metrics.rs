//! `/metrics` during an end-to-end run with trouble in it: each of the
//! service's own metric families (jobs, queues, breakers, external calls and
//! errors, events) has something to show. The names Packit's Grafana panels
//! read (`fedora_ci_koji_builds_*`, `fedora_ci_test_runs_*`, ...) are
//! checked, counted across two replicas, in `packit_metrics.rs`.

mod support;

use std::time::Duration;

use events::states::KojiTaskState;
use serde_json::json;
use support::stack::{self, Stack};
use support::wait_until;

const TIMEOUT: Duration = Duration::from_secs(180);

/// The sum of a family's samples whose labels contain `labels`.
fn sum(metrics: &str, name: &str, labels: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
        })
        .filter(|line| line.contains(labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_family_shows_the_run() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let pool = stack.db.pool().await;
        let _service = stack
            .spawn(&[
                ("FEDORA_CI__JOBS__BREAKER_FAILURES", "2"),
                ("FEDORA_CI__JOBS__BREAKER_OPEN_SECONDS", "1"),
            ])
            .await;
        // Testing Farm fails three times (retries, errors, a tripped breaker),
        // then refuses one request for good (a dead job).
        stack.testing_farm.fail_next(3, 503);
        stack.testing_farm.fail_next(1, 400);
        let mut message = stack::message("pagure.pull-request.new-fork.json");
        message["id"] = json!(uuid::Uuid::new_v4().to_string());
        stack.publish(&message).await;
        let task = wait_until(Duration::from_secs(30), "a build", || async {
            stack.koji.submissions().first().map(|s| s.task_id)
        })
        .await;
        stack
            .koji
            .set_task_state(task, KojiTaskState::Closed, &["x86_64"]);
        stack.publish_koji_task(task).await;
        wait_until(
            Duration::from_secs(60),
            "four requests accepted",
            || async { (stack.testing_farm.requests().len() >= 4).then_some(()) },
        )
        .await;
        stack.settle(&pool).await;

        let text = reqwest::get(format!("{}/metrics", stack.api()))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let families = [
            (
                "events by topic and outcome",
                "fedora_ci_events_decided_total",
                "outcome=\"processed\"",
            ),
            ("inbox lag", "fedora_ci_inbox_lag_seconds_count", ""),
            (
                "job latency by kind",
                "fedora_ci_job_seconds_count",
                "kind=\"submit-testing-farm\"",
            ),
            ("retries", "fedora_ci_jobs_total", "outcome=\"retry\""),
            ("dead jobs", "fedora_ci_jobs_total", "outcome=\"dead\""),
            ("dead jobs now", "fedora_ci_jobs", "state=\"dead\""),
            (
                "external call latency",
                "fedora_ci_external_call_seconds_count",
                "service=\"testing-farm\"",
            ),
            (
                "external errors",
                "fedora_ci_external_errors_total",
                "service=\"testing-farm\"",
            ),
            (
                "breaker trips",
                "fedora_ci_breaker_trips_total",
                "service=\"testing-farm\"",
            ),
            (
                "inbox messages",
                "fedora_ci_inbox_messages_total",
                "outcome=\"recorded\"",
            ),
            (
                "events processed (Packit's name)",
                "events_processed_total",
                "",
            ),
        ];
        let mut missing = Vec::new();
        for (what, name, labels) in families {
            if sum(&text, name, labels) <= 0.0 {
                missing.push(format!("{what}: {name}{{{labels}}}"));
            }
        }
        assert!(
            missing.is_empty(),
            "zero or absent: {missing:#?}\n---\n{text}"
        );
        assert!(
            text.contains("fedora_ci_breaker_open{service=\"testing-farm\"}"),
            "the breaker's state is shown"
        );
        // The outbox's backlog, as of the scrape: a pull request writes no
        // CI message, so nothing waits.
        for gauge in [
            "fedora_ci_outbox_waiting 0",
            "fedora_ci_outbox_oldest_waiting_seconds 0",
        ] {
            assert!(text.lines().any(|line| line == gauge), "{gauge}:\n{text}");
        }
    })
    .await
    .expect("test timed out");
}
