//! The whole service: a real pull-request message published to the broker
//! is recorded, decided, and its decisions and jobs are there to read.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Service, fresh_database, fresh_vhost, get_json, service_config, wait_until};

const TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread")]
async fn a_published_pull_request_is_decided_with_its_jobs() {
    tokio::time::timeout(TIMEOUT, async {
        let db = fresh_database().await;
        let vhost = fresh_vhost();
        let port = support::free_port();
        let api = format!("http://127.0.0.1:{port}");
        let config = service_config(&db.url, &vhost.amqp_url, port);
        let _service = Service::spawn(&config, &["run"]);
        wait_until(
            Duration::from_secs(60),
            "the service to be ready",
            || async { get_json(&format!("{api}/api/readyz")).await },
        )
        .await;

        // Published with the service's own `publish`, in fedora-messaging's wire format.
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/bus/pagure.pull-request.new-fork.json");
        let dir = tempfile::tempdir().expect("tempdir");
        let config_file = dir.path().join("config.toml");
        std::fs::write(&config_file, &config).expect("config");
        let published = std::process::Command::new(env!("CARGO_BIN_EXE_fedora-ci-worker"))
            .arg("--config")
            .arg(&config_file)
            .arg("publish")
            .arg(&file)
            .output()
            .expect("publish");
        assert!(published.status.success(), "{published:?}");

        let id = "f2924120-4a58-5fff-9100-2b7503797884";
        let event: Value = wait_until(Duration::from_secs(20), "the event decided", || async {
            get_json(&format!("{api}/api/events/{id}"))
                .await
                .filter(|e| e["status"] != "received")
        })
        .await;
        assert_eq!(event["status"], "processed", "{event:#}");
        let decisions = event["decisions"].as_array().expect("decisions");
        assert!(
            decisions
                .iter()
                .any(|d| d["subject"] == "scratch build rawhide"
                    && d["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("to Koji target rawhide"))),
            "{event:#}"
        );
        let pool = db.pool().await;
        // Without credentials, Koji and dist-git run in dry-run: the jobs
        // record what they would have sent.
        let submitted: Value = wait_until(
            Duration::from_secs(20),
            "the scratch build recorded in dry-run",
            || async {
                sqlx::query_scalar::<_, Value>(
                    "SELECT result FROM jobs WHERE kind = 'submit-scratch-build' AND state = 'done'",
                )
                .fetch_optional(&pool)
                .await
                .ok()
                .flatten()
            },
        )
        .await;
        assert_eq!(submitted["dry_run"]["service"], "koji", "{submitted}");
        assert_eq!(submitted["dry_run"]["body"]["target"], "rawhide", "{submitted}");
        let flag: Value = wait_until(
            Duration::from_secs(20),
            "the flag recorded in dry-run",
            || async {
                sqlx::query_scalar::<_, Value>(
                    "SELECT result FROM jobs WHERE kind = 'set-flag' AND state = 'done' ORDER BY id LIMIT 1",
                )
                .fetch_optional(&pool)
                .await
                .ok()
                .flatten()
            },
        )
        .await;
        assert_eq!(flag["dry_run"]["service"], "dist-git", "{flag}");
        assert_eq!(
            flag["dry_run"]["body"]["username"],
            "Fedora CI - scratch build - rawhide [889f07a]",
            "{flag}"
        );
    })
    .await
    .expect("test timed out");
}
