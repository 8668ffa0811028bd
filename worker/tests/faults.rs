//! Faults, end to end: a failing Testing Farm, one that stays down, a killed
//! service, two services on one queue and database, a throttling dist-git,
//! and the retrigger comments of packagers and others.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use events::states::KojiTaskState;
use serde_json::{Value, json};
use support::stack::{self, Stack, opened};
use support::wait_until;

const TIMEOUT: Duration = Duration::from_secs(180);
const HEAD: &str = "889f07af35d27bbcaf9c535c17a63b974aa42ee3";

/// The pull request opened, and its build closed on Koji; returns the task id.
async fn built(stack: &Stack) -> i64 {
    stack.publish(&opened()).await;
    stack.close_first_build().await
}

fn test_names(requests: &[Value]) -> BTreeSet<String> {
    requests
        .iter()
        .map(|r| {
            r["test"]["tmt"]["name"]
                .as_str()
                .or(r["test"]["tmt"]["url"].as_str())
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn testing_farm_failing_five_times_gets_exactly_one_request_per_test() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        stack.testing_farm.fail_next(5, 500);
        built(&stack).await;
        wait_until(Duration::from_secs(60), "the requests accepted", || async {
            (stack.testing_farm.requests().len() >= 5).then_some(())
        })
        .await;
        stack.settle(&pool).await;
        let requests = stack.testing_farm.requests();
        // Five tests: custom waits for no .fmf/version (the stand-in has none).
        assert_eq!(requests.len(), 5, "{requests:#?}");
        assert_eq!(test_names(&requests).len(), 5, "one request per test");
        // Five calls failed (the compose list's read, then submissions),
        // and five submissions were accepted: one each.
        let calls = stack.testing_farm.calls();
        assert_eq!(calls.iter().filter(|c| c.status == 500).count(), 5);
        let accepted = calls
            .iter()
            .filter(|c| c.method == "POST" && c.path == "/requests" && c.status == 200)
            .count();
        assert_eq!(accepted, 5, "{calls:#?}");
        let retried: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE kind = 'submit-testing-farm' AND attempts > 1",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        assert!(retried >= 1);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn testing_farm_down_past_the_last_attempt_ends_with_error_flags() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        stack.testing_farm.fail_next(100_000, 503);
        built(&stack).await;
        let flags = wait_until(Duration::from_secs(90), "error flags for the tests", || async {
            let flags = stack.distgit.flags();
            let flags: Vec<_> = flags
                .get(&("rpms/optee_os".to_string(), 2))?
                .values()
                .filter(|f| !f.username.contains("scratch build"))
                .cloned()
                .collect();
            (flags.len() == 5 && flags.iter().all(|f| f.status == "error")).then_some(flags)
        })
        .await;
        for flag in &flags {
            assert!(
                flag.comment.contains("could not be submitted to Testing Farm"),
                "{flag:?}"
            );
        }
        stack.settle(&pool).await;
        let (pending_runs, dead): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM test_runs WHERE state IN ('new', 'queued', 'running')),
                    (SELECT count(*) FROM jobs WHERE kind = 'submit-testing-farm' AND state = 'dead')",
        )
        .fetch_one(&pool)
        .await
        .expect("counts");
        assert_eq!(pending_runs, 0, "nothing left pending");
        assert_eq!(dead, 5, "the gave-up jobs stay visible, to retry");
        // An operator sees them and retries one.
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.toml");
        std::fs::write(&config, stack.config()).expect("config");
        let cli = |args: &[&str]| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_fedora-ci-worker"))
                .arg("--config")
                .arg(&config)
                .args(args)
                .output()
                .expect("the CLI runs");
            (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let (ok, listed) = cli(&["jobs", "--state", "dead"]);
        assert!(ok, "{listed}");
        assert_eq!(listed.matches("submit-testing-farm").count(), 10, "kind and key of five: {listed}");
        let id: i64 = sqlx::query_scalar("SELECT min(id) FROM jobs WHERE state = 'dead'")
            .fetch_one(&pool)
            .await
            .expect("a dead job");
        // Testing Farm is back; the retried job submits its request, once.
        stack.testing_farm.recover();
        let accepted_before = stack.testing_farm.requests().len();
        let (ok, said) = cli(&["jobs", "retry", &id.to_string()]);
        assert!(ok, "{said}");
        wait_until(Duration::from_secs(30), "the retried job done", || async {
            let state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .ok()?;
            (state == "done").then_some(())
        })
        .await;
        assert_eq!(
            stack.testing_farm.requests().len(),
            accepted_before + 1,
            "one new request at Testing Farm"
        );
        // A job that is not dead (the build's submission, done) is refused, by its id.
        let done: i64 = sqlx::query_scalar(
            "SELECT min(id) FROM jobs WHERE kind = 'submit-scratch-build' AND state = 'done'",
        )
        .fetch_one(&pool)
        .await
        .expect("a done job");
        let (ok, _) = cli(&["jobs", "retry", &done.to_string()]);
        assert!(!ok, "retrying what is not dead says so");
        let still: String = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
            .bind(done)
            .fetch_one(&pool)
            .await
            .expect("the job");
        assert_eq!(still, "done");
        // The retried run's flag went back to pending with it (its request
        // is at Testing Farm now); the other four stay in error.
        let mut statuses: Vec<String> = stack
            .distgit
            .flags()
            .values()
            .flat_map(|f| f.values())
            .filter(|f| !f.username.contains("scratch build"))
            .map(|f| f.status.clone())
            .collect();
        statuses.sort();
        assert_eq!(statuses, ["error", "error", "error", "error", "pending"]);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_testing_farm_accepted_and_before_the_flags() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let pool = stack.db.pool().await;
        // dist-git is down: the requests are accepted, their flags cannot be set.
        stack.distgit.fail_next(100_000, 503);
        let mut service = stack.spawn(&[]).await;
        built(&stack).await;
        wait_until(
            Duration::from_secs(60),
            "the requests accepted and recorded",
            || async {
                let recorded: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM test_runs WHERE request_id IS NOT NULL",
                )
                .fetch_one(&pool)
                .await
                .ok()?;
                (recorded == 5).then_some(())
            },
        )
        .await;
        service.sigkill();
        assert!(stack.distgit.flags().is_empty(), "no flag reached dist-git");
        stack.distgit.recover();
        let _again = stack.spawn(&[]).await;
        wait_until(
            Duration::from_secs(60),
            "the flags set after the restart",
            || async {
                let flags = stack.distgit.flags();
                let count = flags.get(&("rpms/optee_os".to_string(), 2))?.len();
                (count == 6).then_some(())
            },
        )
        .await;
        // The requests finish (else they are read every second, and nothing settles).
        for id in stack.testing_farm.request_ids() {
            stack
                .testing_farm
                .set_state(&id, "complete", Some("passed"), Some("ok"));
        }
        wait_until(Duration::from_secs(60), "the final flags", || async {
            let flags = stack.distgit.flags();
            let flags = flags.get(&("rpms/optee_os".to_string(), 2))?;
            flags.values().all(|f| f.status == "success").then_some(())
        })
        .await;
        stack.settle(&pool).await;
        assert_eq!(
            stack.testing_farm.requests().len(),
            5,
            "no request sent twice"
        );
        assert_eq!(stack.koji.submissions().len(), 1, "no build sent twice");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_services_on_one_queue_and_database_call_out_once() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let pool = stack.db.pool().await;
        stack.distgit.set_file("fork/zbyszek/rpms/optee_os", HEAD, ".fmf/version");
        let _first = stack.spawn(&[]).await;
        let other_port = support::free_port().to_string();
        let _second = stack
            .spawn(&[("FEDORA_CI__API__LISTEN", &format!("127.0.0.1:{other_port}"))])
            .await;
        built(&stack).await;
        wait_until(Duration::from_secs(60), "six requests", || async {
            (stack.testing_farm.requests().len() >= 6).then_some(())
        })
        .await;
        for id in stack.testing_farm.request_ids() {
            stack
                .testing_farm
                .set_state(&id, "complete", Some("passed"), Some("ok"));
        }
        wait_until(Duration::from_secs(60), "final flags", || async {
            let flags = stack.distgit.flags();
            let flags = flags.get(&("rpms/optee_os".to_string(), 2))?;
            (flags.len() == 7 && flags.values().all(|f| f.status != "pending")).then_some(())
        })
        .await;
        stack.settle(&pool).await;
        assert_eq!(stack.koji.submissions().len(), 1);
        assert_eq!(stack.testing_farm.requests().len(), 6);
        // Each flag state was sent once: as many POSTs as set-flag jobs that sent.
        let sent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE kind = 'set-flag' AND result ? 'sent_version'",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        let posts = stack
            .distgit
            .calls()
            .iter()
            .filter(|c| c.method == "POST" && c.path.ends_with("/flag"))
            .count();
        assert_eq!(posts as i64, sent, "no flag state sent twice");
        let jobs_by_two: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT dedup_key FROM jobs GROUP BY dedup_key HAVING count(*) > 1) d",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        assert_eq!(jobs_by_two, 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn dist_git_retry_after_is_honoured() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let pool = stack.db.pool().await;
        stack.distgit.throttle_next(1, 2);
        let _service = stack.spawn(&[]).await;
        stack.publish(&opened()).await;
        wait_until(Duration::from_secs(30), "the flag set", || async {
            let flags = stack.distgit.flags();
            (!flags.get(&("rpms/optee_os".to_string(), 2))?.is_empty()).then_some(())
        })
        .await;
        stack.settle(&pool).await;
        let calls = stack.distgit.calls();
        let throttled = calls
            .iter()
            .find(|c| c.status == 429)
            .expect("a throttled call");
        let next = calls
            .iter()
            .find(|c| {
                c.at > throttled.at && c.method == throttled.method && c.path == throttled.path
            })
            .expect("the same call again");
        let waited = next.at.duration_since(throttled.at);
        assert!(
            waited >= Duration::from_secs(2),
            "retried after {waited:?}, before the 2 s Retry-After"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn retrigger_comments_of_packagers_and_others() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let pool = stack.db.pool().await;
        stack.fas.set_groups("mallory", &["fedora-contributor"]);
        stack
            .fas
            .set_groups("zbyszek", &["packager", "fedora-contributor"]);
        let _service = stack.spawn(&[]).await;
        built(&stack).await;
        wait_until(Duration::from_secs(30), "five requests", || async {
            (stack.testing_farm.requests().len() >= 5).then_some(())
        })
        .await;
        stack.settle(&pool).await;

        let comment = |id: i64, user: &str, text: &str| {
            let mut message = stack::message("pagure.pull-request.comment.added.json");
            let opened = stack::message("pagure.pull-request.new-fork.json");
            let mut pr = opened["body"]["pullrequest"].clone();
            let mut comment = message["body"]["pullrequest"]["comments"][0].clone();
            comment["id"] = json!(id);
            comment["comment"] = json!(text);
            comment["user"]["name"] = json!(user);
            pr["comments"] = json!([comment]);
            message["id"] = json!(uuid::Uuid::new_v4().to_string());
            message["body"]["pullrequest"] = pr;
            message
        };
        stack
            .publish(&comment(901, "mallory", "/packit-ci test"))
            .await;
        let refusal = wait_until(Duration::from_secs(30), "a refusal", || async {
            stack.distgit.comments().first().cloned()
        })
        .await;
        assert_eq!(refusal.project, "rpms/optee_os");
        assert_eq!(refusal.pr, 2);
        assert!(refusal.text.contains("packager"), "{}", refusal.text);
        stack.settle(&pool).await;
        assert_eq!(
            stack.testing_farm.requests().len(),
            5,
            "no new tests for a non-packager"
        );

        stack
            .publish(&comment(902, "zbyszek", "/packit-ci test installability"))
            .await;
        wait_until(Duration::from_secs(30), "a sixth request", || async {
            (stack.testing_farm.requests().len() >= 6).then_some(())
        })
        .await;
        stack.settle(&pool).await;
        let requests = stack.testing_farm.requests();
        assert_eq!(requests.len(), 6);
        assert_eq!(
            requests[5]["test"]["tmt"]["url"],
            "https://github.com/fedora-ci/installability-pipeline.git"
        );
        assert_eq!(
            stack.distgit.comments().len(),
            1,
            "no reply to a packager's retrigger"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_koji_message_is_made_up_for_by_polling() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        stack.publish(&opened()).await;
        let task = wait_until(Duration::from_secs(30), "a build submitted", || async {
            stack.koji.submissions().first().map(|s| s.task_id)
        })
        .await;
        // Koji closes the task; its message never arrives.
        stack
            .koji
            .set_task_state(task, KojiTaskState::Closed, &["x86_64"]);
        wait_until(
            Duration::from_secs(30),
            "the tests, after a poll of Koji",
            || async { (stack.testing_farm.requests().len() >= 5).then_some(()) },
        )
        .await;
        let flags = stack.distgit.flags();
        let build = flags
            .get(&("rpms/optee_os".to_string(), 2))
            .and_then(|f| {
                f.values()
                    .find(|f| f.username.contains("scratch build"))
                    .cloned()
            })
            .expect("the build's flag");
        assert_eq!(build.status, "success");
        // The poll read Koji's own start and end of the task (a current hub sends them as
        // dates in `start_time` and as seconds in `start_ts`): the dashboard shows them.
        let info = stack.koji.task_message(task)["info"].clone();
        let seconds = |key: &str| info[key].as_f64().map(|s| s.trunc() as i64);
        let (started, completed) = (seconds("start_time"), seconds("completion_time"));
        assert!(started.is_some() && completed.is_some(), "{info:#}");
        let http = reqwest::Client::new();
        let builds: Value = http
            .get(format!("{}/api/koji-builds", stack.api()))
            .send()
            .await
            .expect("the list")
            .json()
            .await
            .expect("JSON");
        let ours = builds
            .as_array()
            .and_then(|b| {
                b.iter()
                    .find(|b| b["task_id"].as_str() == Some(&*task.to_string()))
            })
            .unwrap_or_else(|| panic!("task {task} in {builds:#}"));
        let detail: Value = http
            .get(format!(
                "{}/api/koji-builds/{}",
                stack.api(),
                ours["packit_id"]
            ))
            .send()
            .await
            .expect("the build")
            .json()
            .await
            .expect("JSON");
        assert_eq!(detail["build_start_time"], json!(started), "{detail:#}");
        assert_eq!(
            detail["build_finished_time"],
            json!(completed),
            "{detail:#}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn tests_with_no_result_in_time_end_with_error_flags() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let pool = stack.db.pool().await;
        let _service = stack
            .spawn(&[("FEDORA_CI__JOBS__TESTING_FARM_TIMEOUT_SECONDS", "4")])
            .await;
        built(&stack).await;
        // Testing Farm accepts the requests and never finishes them.
        let flags = wait_until(
            Duration::from_secs(60),
            "error flags for the tests",
            || async {
                let flags = stack.distgit.flags();
                let flags: Vec<_> = flags
                    .get(&("rpms/optee_os".to_string(), 2))?
                    .values()
                    .filter(|f| !f.username.contains("scratch build"))
                    .cloned()
                    .collect();
                (flags.len() == 5 && flags.iter().all(|f| f.status == "error")).then_some(flags)
            },
        )
        .await;
        assert!(
            flags[0].comment.contains("no result from Testing Farm"),
            "{flags:?}"
        );
        stack.settle(&pool).await;
        let deletes = stack
            .testing_farm
            .calls()
            .iter()
            .filter(|c| c.method == "DELETE")
            .count();
        assert_eq!(
            deletes, 5,
            "the overdue requests are canceled at Testing Farm"
        );
        let unfinished: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM test_runs WHERE state IN ('new', 'queued', 'running')",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        assert_eq!(unfinished, 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_hands_back_the_jobs_that_are_running() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let pool = stack.db.pool().await;
        // A Testing Farm that takes connections and never answers: the
        // submissions hang until the shutdown.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let silent_url = format!("http://{}", silent.local_addr().expect("address"));
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in silent.incoming().flatten() {
                held.push(stream);
            }
        });
        let mut service = stack
            .spawn(&[
                ("FEDORA_CI__TESTING_FARM__API_URL", &silent_url),
                ("FEDORA_CI__SERVICE__SHUTDOWN_GRACE_SECONDS", "2"),
            ])
            .await;
        built(&stack).await;
        wait_until(Duration::from_secs(30), "submissions hanging", || async {
            let running: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM jobs WHERE kind = 'submit-testing-farm' AND state = 'running'",
            )
            .fetch_one(&pool)
            .await
            .ok()?;
            (running > 0).then_some(())
        })
        .await;
        service.sigterm();
        let status = service
            .wait_exit_async(Duration::from_secs(15))
            .await
            .expect("exited within the grace period");
        assert!(status.success(), "{status}");
        let (running, pending): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state = 'running'), count(*) FILTER (WHERE state = 'pending')
             FROM jobs WHERE kind = 'submit-testing-farm'",
        )
        .fetch_one(&pool)
        .await
        .expect("counts");
        assert_eq!(running, 0, "handed back, not left leased");
        assert!(pending > 0);
        // The next start, with Testing Farm answering, does them once each.
        let _again = stack.spawn(&[]).await;
        wait_until(Duration::from_secs(30), "the requests", || async {
            (stack.testing_farm.requests().len() >= 5).then_some(())
        })
        .await;
        stack.settle(&pool).await;
        assert_eq!(stack.testing_farm.requests().len(), 5);
    })
    .await
    .expect("test timed out");
}
