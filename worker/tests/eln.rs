//! The ELN package lists, end to end: the real service process fetches them
//! from a stand-in of tiny.distro.builders soon after it starts, keeps their
//! union with the time of the fetch, builds ELN for a rawhide pull request
//! of a listed package, keeps the last good list when a later fetch fails
//! (recording why, and not trying again before the next period), and shows
//! all of it on the status page and in `/metrics`.

mod support;

use std::time::Duration;

use clients::standins::eln::{ELN_EXTRAS_PATH, ELN_PATH, PackageListStandin};
use serde_json::{Value, json};
use support::stack::{self, Stack};
use support::wait_until;

const TIMEOUT: Duration = Duration::from_secs(180);

/// The `facts` row of the list: (value, when it was fetched).
async fn list_fact(pool: &sqlx::PgPool) -> Option<(Value, chrono::DateTime<chrono::Utc>)> {
    sqlx::query_as("SELECT value, checked_at FROM facts WHERE key = 'eln-packages'")
        .fetch_optional(pool)
        .await
        .expect("facts")
}

async fn failure_fact(pool: &sqlx::PgPool) -> Option<(Value, chrono::DateTime<chrono::Utc>)> {
    sqlx::query_as("SELECT value, checked_at FROM facts WHERE key = 'eln-packages-error'")
        .fetch_optional(pool)
        .await
        .expect("facts")
}

/// The fetch jobs so far: (key, state, result).
async fn fetch_jobs(pool: &sqlx::PgPool) -> Vec<(String, String, Option<Value>)> {
    sqlx::query_as(
        "SELECT dedup_key, state, result FROM jobs WHERE kind = 'fetch-eln-packages' ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .expect("jobs")
}

/// The value of an unlabelled sample, or of the sample with exactly `labels`.
fn sample(metrics: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}

/// The real PR-opened message from a fork, against rawhide, as one of `name`.
fn opened(name: &str) -> Value {
    let message = stack::message("pagure.pull-request.new-fork.json");
    let text = serde_json::to_string(&message).expect("JSON");
    let mut message: Value =
        serde_json::from_str(&text.replace("optee_os", name)).expect("still JSON");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    message
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_are_fetched_used_kept_on_failure_and_shown() {
    tokio::time::timeout(TIMEOUT, async {
        let lists = PackageListStandin::start()
            .await
            .expect("the list stand-in");
        lists.set_list(ELN_PATH, &["glibc", "bash", "python3"]);
        lists.set_text(ELN_EXTRAS_PATH, "# ELN extras\nllvm\n\nbash\n");
        let stack = Stack::start().await;
        let pool = stack.db.pool().await;
        let started = chrono::Utc::now();
        // As an operator would write them: comma and space.
        let urls = lists.eln_urls().join(", ");
        let _service = stack
            .spawn(&[
                ("FEDORA_CI__FEDORA_CI__ELN_PACKAGES_URLS", urls.as_str()),
                ("FEDORA_CI__FEDORA_CI__ELN_PACKAGES_REFRESH_SECONDS", "3600"),
            ])
            .await;

        // Soon after the start: no list was ever fetched.
        let (value, fetched_at) = wait_until(
            Duration::from_secs(30),
            "the ELN package list fetched",
            || async { list_fact(&pool).await },
        )
        .await;
        assert_eq!(
            value["packages"],
            json!(["bash", "glibc", "llvm", "python3"])
        );
        assert_eq!(value["count"], 4);
        assert_eq!(
            value["sources"],
            json!([
                {"url": lists.url(ELN_PATH), "count": 3},
                {"url": lists.url(ELN_EXTRAS_PATH), "count": 2},
            ])
        );
        assert!(
            fetched_at >= started && fetched_at <= chrono::Utc::now(),
            "{fetched_at} is the time of the fetch"
        );
        assert!(failure_fact(&pool).await.is_none());
        let jobs = fetch_jobs(&pool).await;
        assert_eq!(jobs.len(), 1, "one fetch: {jobs:#?}");
        assert!(
            jobs[0].0.starts_with("fetch-eln-packages:first:3600:"),
            "{jobs:#?}"
        );

        // A rawhide pull request of a listed package: an ELN build besides
        // (dist-git's stand-in knows no eln branch of it).
        stack.publish(&opened("glibc")).await;
        let targets = wait_until(Duration::from_secs(30), "two builds", || async {
            let submissions = stack.koji.submissions();
            (submissions.len() >= 2).then(|| {
                submissions
                    .iter()
                    .map(|s| s.target.clone())
                    .collect::<Vec<_>>()
            })
        })
        .await;
        assert_eq!(targets, ["rawhide", "eln"]);
        stack.settle(&pool).await;

        // The ELN build succeeds: its tests run on ELN, `variant: eln`, with
        // the ELN task's build, beside nothing of rawhide's (still running).
        let eln_task = stack.koji.submissions()[1].task_id;
        stack
            .koji
            .set_task_state(eln_task, events::states::KojiTaskState::Closed, &["x86_64"]);
        stack.publish_koji_task(eln_task).await;
        wait_until(Duration::from_secs(60), "the ELN tests", || async {
            (stack.testing_farm.requests().len() >= 4).then_some(())
        })
        .await;
        stack.settle(&pool).await;
        let requests = stack.testing_farm.requests();
        let mut tests = Vec::new();
        for request in &requests {
            let environment = &request["environments"][0];
            // The tests that name a compose name ELN's.
            if let Some(os) = environment.get("os") {
                assert_eq!(os["compose"], "Fedora-eln", "{request:#}");
            }
            assert_eq!(
                environment["tmt"]["context"]["variant"], "eln",
                "{request:#}"
            );
            assert_eq!(
                environment["variables"]["KOJI_TASK_ID"],
                eln_task.to_string(),
                "{request:#}"
            );
            tests.push(
                request["test"]["tmt"]["url"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        tests.sort();
        assert!(
            tests.contains(&"https://github.com/fedora-ci/installability-pipeline.git".to_owned()),
            "{tests:#?}"
        );
        let flags = stack.flags("rpms/glibc", 2);
        let eln_flags: Vec<&String> = flags.keys().filter(|name| name.contains(" eln ")).collect();
        assert_eq!(
            eln_flags.len(),
            requests.len() + 1,
            "the ELN build's flag and one per ELN test: {flags:#?}"
        );
        assert_eq!(
            flags
                .iter()
                .find(|(name, _)| name.starts_with("Fedora CI - scratch build - eln"))
                .map(|(_, f)| f.status.as_str()),
            Some("success"),
            "{flags:#?}"
        );

        // A day later the list is due again, and the extras answer an HTML
        // page: the failure is recorded, the last good list stays.
        lists.set_html(ELN_EXTRAS_PATH);
        sqlx::query(
            "UPDATE facts SET checked_at = now() - interval '1 day' WHERE key = 'eln-packages'",
        )
        .execute(&pool)
        .await
        .expect("aged");
        let (failure, failed_at) = wait_until(
            Duration::from_secs(30),
            "the failed fetch recorded",
            || async { failure_fact(&pool).await },
        )
        .await;
        assert_eq!(failure["url"], lists.url(ELN_EXTRAS_PATH));
        let error = failure["error"].as_str().unwrap_or_default();
        assert!(
            error.ends_with("not a package list: the answer is an HTML page"),
            "{error}"
        );
        let (kept, kept_at) = list_fact(&pool).await.expect("the list");
        assert_eq!(
            kept["packages"], value["packages"],
            "the last good list stays"
        );
        assert!(kept_at < failed_at, "and keeps its time");

        // Done, not retried until the next period.
        stack.settle(&pool).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let jobs = fetch_jobs(&pool).await;
        assert_eq!(jobs.len(), 2, "no retry within the period: {jobs:#?}");
        assert!(
            jobs[1].0.starts_with("fetch-eln-packages:refresh:3600:"),
            "{jobs:#?}"
        );
        assert!(
            jobs.iter().all(|(_, state, _)| state == "done"),
            "{jobs:#?}"
        );
        assert!(
            jobs[1]
                .2
                .as_ref()
                .is_some_and(|r| r.get("failed").is_some()),
            "{jobs:#?}"
        );

        // The status page shows the list, where it came from, and the failure.
        let page = reqwest::get(format!("{}/", stack.api()))
            .await
            .expect("the page")
            .text()
            .await
            .expect("HTML");
        let section = page
            .split(r#"<section id="eln">"#)
            .nth(1)
            .and_then(|rest| rest.split("</section>").next())
            .unwrap_or_else(|| panic!("no ELN section: {page}"));
        assert!(section.contains("<b>4</b>"), "{section}");
        assert!(section.contains("1 d 0 h ago"), "{section}");
        assert!(section.contains(&lists.url(ELN_PATH)), "{section}");
        assert!(section.contains(&lists.url(ELN_EXTRAS_PATH)), "{section}");
        assert!(
            section.contains(r#"<span class="badge warn">fetch failed</span>"#),
            "{section}"
        );
        assert!(section.contains("the answer is an HTML page"), "{section}");

        let metrics = reqwest::get(format!("{}/metrics", stack.api()))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        assert_eq!(
            sample(&metrics, "fedora_ci_eln_packages", ""),
            Some(4.0),
            "{metrics}"
        );
        let age = sample(&metrics, "fedora_ci_eln_packages_age_seconds", "").unwrap_or(0.0);
        assert!((86_400.0..90_000.0).contains(&age), "age {age}: {metrics}");
        for outcome in ["ok", "failed"] {
            assert_eq!(
                sample(
                    &metrics,
                    "fedora_ci_eln_packages_fetches_total",
                    &format!("outcome=\"{outcome}\"")
                ),
                Some(1.0),
                "{outcome}: {metrics}"
            );
        }
        assert_eq!(lists.calls().len(), 4, "two fetches of two lists");
    })
    .await
    .expect("test timed out");
}
