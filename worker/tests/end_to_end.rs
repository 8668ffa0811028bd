//! End to end: real bus messages published to the local RabbitMQ, the real
//! service process, and stand-ins for Koji, Testing Farm, dist-git and
//! FASJSON, from a pull request's message to its final flags.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use clients::distgit::Flag;
use events::states::KojiTaskState;
use serde_json::{Value, json};
use support::stack::{self, Stack};
use support::wait_until;

const TIMEOUT: Duration = Duration::from_secs(180);
const OLD: &str = "889f07af35d27bbcaf9c535c17a63b974aa42ee3";
const FORK: &str = "fork/zbyszek/rpms/optee_os";

/// The real PR-opened message from a fork, with a head of our choosing.
fn opened(head: &str, updated: i64, topic: &str) -> Value {
    let mut message = stack::message("pagure.pull-request.new-fork.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    message["topic"] = json!(format!(
        "org.fedoraproject.prod.pagure.pull-request.{topic}"
    ));
    message["body"]["pullrequest"]["commit_stop"] = json!(head);
    message["body"]["pullrequest"]["last_updated"] = json!(updated.to_string());
    message
}

/// The flags on the pull request, by check name.
fn flags(stack: &Stack, project: &str, pr: i64) -> BTreeMap<String, Flag> {
    stack.flags(project, pr)
}

async fn koji_submission(stack: &Stack, count: usize) -> clients::standins::koji::Submission {
    wait_until(
        Duration::from_secs(30),
        "a build submitted to Koji",
        || async {
            let submissions = stack.koji.submissions();
            (submissions.len() >= count).then(|| submissions[count - 1].clone())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_pull_request_from_message_to_final_flags() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        stack.distgit.set_file(FORK, OLD, ".fmf/version");
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;

        // Delivered three times: one build.
        let message = opened(OLD, 1_729_687_175, "new");
        for _ in 0..3 {
            stack.publish(&message).await;
        }
        let submission = koji_submission(&stack, 1).await;
        assert_eq!(
            submission.src,
            format!("git+https://src.fedoraproject.org/forks/zbyszek/rpms/optee_os.git#{OLD}")
        );
        assert_eq!(submission.target, "rawhide");
        assert_eq!(submission.opts["scratch"], true);

        // Koji runs and closes the task, and says so on the bus.
        stack
            .koji
            .set_task_state(submission.task_id, KojiTaskState::Open, &["x86_64"]);
        stack.publish_koji_task(submission.task_id).await;
        stack
            .koji
            .set_task_state(submission.task_id, KojiTaskState::Closed, &["x86_64"]);
        stack.publish_koji_task(submission.task_id).await;

        // One Testing Farm request per enabled test.
        let requests = wait_until(
            Duration::from_secs(30),
            "six Testing Farm requests",
            || async {
                let requests = stack.testing_farm.requests();
                (requests.len() >= 6).then_some(requests)
            },
        )
        .await;
        assert_eq!(requests.len(), 6);
        let urls: Vec<&str> = requests
            .iter()
            .filter_map(|r| r["test"]["tmt"]["url"].as_str())
            .collect();
        assert!(urls.contains(&"https://src.fedoraproject.org/forks/zbyszek/rpms/optee_os.git"));
        assert!(urls.contains(&"https://github.com/fedora-ci/installability-pipeline.git"));
        for request in &requests {
            let environment = &request["environments"][0];
            assert_eq!(
                environment["variables"]["KOJI_TASK_ID"],
                submission.task_id.to_string()
            );
            assert_eq!(
                request["notification"]["webhook"]["token"],
                stack::WEBHOOK_TOKEN,
                "the webhook token is added when sending"
            );
        }

        // Testing Farm finishes them; the service reads them (polling, as
        // webhooks get lost) and sets the final flags.
        for (i, id) in stack.testing_farm.request_ids().iter().enumerate() {
            let (result, summary) = if i == 0 {
                ("failed", "1 test failed")
            } else {
                ("passed", "all tests passed")
            };
            stack
                .testing_farm
                .set_state(id, "complete", Some(result), Some(summary));
        }
        let final_flags = wait_until(Duration::from_secs(30), "seven final flags", || async {
            let flags = flags(&stack, "rpms/optee_os", 2);
            (flags.len() == 7 && flags.values().all(|f| f.status != "pending")).then_some(flags)
        })
        .await;
        let build = &final_flags["Fedora CI - scratch build - rawhide [889f07a]"];
        assert_eq!(build.status, "success");
        assert_eq!(build.comment, "RPM build succeeded");
        assert!(
            build
                .url
                .ends_with(&format!("taskinfo?taskID={}", submission.task_id)),
            "{}",
            build.url
        );
        let statuses: Vec<&str> = final_flags.values().map(|f| f.status.as_str()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == "failure").count(), 1);
        assert_eq!(statuses.iter().filter(|s| **s == "success").count(), 6);
        // Each test's flag says its own request's result: the failed one
        // "1 test failed", the passed ones "all tests passed".
        for flag in final_flags
            .values()
            .filter(|f| !f.username.contains("scratch build"))
        {
            let expected = match flag.status.as_str() {
                "failure" => "1 test failed",
                "success" => "all tests passed",
                other => panic!("a test flag ended {other}: {flag:?}"),
            };
            assert_eq!(flag.comment, expected, "{flag:?}");
            assert!(!flag.url.is_empty());
        }
        stack.settle(&pool).await;
        let builds: i64 = sqlx::query_scalar("SELECT count(*) FROM koji_builds")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(builds, 1, "one build for three deliveries");
        assert_eq!(stack.koji.submissions().len(), 1);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_request_from_a_branch_of_the_same_repository() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let mut message = opened(OLD, 1_729_687_175, "new");
        // The same PR, opened from a branch of rpms/optee_os itself.
        let project = message["body"]["pullrequest"]["project"].clone();
        message["body"]["pullrequest"]["repo_from"] = project;
        stack.publish(&message).await;
        let submission = koji_submission(&stack, 1).await;
        assert_eq!(
            submission.src,
            format!("git+https://src.fedoraproject.org/rpms/optee_os.git#{OLD}")
        );
        let flags = wait_until(Duration::from_secs(30), "the pending flag", || async {
            let flags = flags(&stack, "rpms/optee_os", 2);
            (!flags.is_empty()).then_some(flags)
        })
        .await;
        let flag = &flags["Fedora CI - scratch build - rawhide [889f07a]"];
        assert_eq!(flag.status, "pending");
    })
    .await
    .expect("test timed out");
}

const B: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
const C: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";

/// Three heads in a row: `OLD` builds and its five tests are submitted; `B`
/// supersedes it (the requests are deleted at Testing Farm) and its build
/// starts; `C` supersedes `B` (its task is canceled at Koji). Returns `B`'s
/// and `C`'s Koji submissions, once everything has settled.
async fn three_heads(
    stack: &Stack,
    pool: &sqlx::PgPool,
) -> (
    clients::standins::koji::Submission,
    clients::standins::koji::Submission,
) {
    stack.publish(&opened(OLD, 1_729_687_175, "new")).await;
    let first = koji_submission(stack, 1).await;
    stack
        .koji
        .set_task_state(first.task_id, KojiTaskState::Closed, &["x86_64"]);
    stack.publish_koji_task(first.task_id).await;
    wait_until(
        Duration::from_secs(30),
        "five Testing Farm requests",
        || async { (stack.testing_farm.requests().len() >= 5).then_some(()) },
    )
    .await;
    stack.settle(pool).await;

    stack.publish(&opened(B, 1_729_690_000, "updated")).await;
    let second = koji_submission(stack, 2).await;
    // Each of the old head's five requests is deleted, once.
    let mut old_requests: Vec<String> = stack
        .testing_farm
        .request_ids()
        .iter()
        .map(|id| format!("/requests/{id}"))
        .collect();
    old_requests.sort();
    wait_until(
        Duration::from_secs(30),
        "the old requests canceled",
        || async {
            let mut deleted: Vec<String> = stack
                .testing_farm
                .calls()
                .into_iter()
                .filter(|c| c.method == "DELETE")
                .map(|c| c.path)
                .collect();
            deleted.sort();
            (deleted == old_requests).then_some(())
        },
    )
    .await;
    assert!(
        old_requests.iter().all(|path| stack
            .testing_farm
            .state(path.trim_start_matches("/requests/"))
            == Some("cancel-requested".to_owned())),
        "Testing Farm was asked to cancel each"
    );
    stack.testing_farm.finish_cancellations();
    stack
        .koji
        .set_task_state(second.task_id, KojiTaskState::Open, &["x86_64"]);
    stack.publish_koji_task(second.task_id).await;
    stack.publish(&opened(C, 1_729_700_000, "updated")).await;
    wait_until(
        Duration::from_secs(30),
        "B's task canceled at Koji",
        || async {
            stack
                .koji
                .cancellations()
                .contains(&second.task_id)
                .then_some(())
        },
    )
    .await;
    let third = koji_submission(stack, 3).await;
    stack.settle(pool).await;
    (second, third)
}

/// The flags of one commit, by check name.
fn flags_of(all: &BTreeMap<String, Flag>, short_sha: &str) -> BTreeMap<String, Flag> {
    all.iter()
        .filter(|(name, _)| name.ends_with(&format!("[{short_sha}]")))
        .map(|(name, flag)| (name.clone(), flag.clone()))
        .collect()
}

/// Every flag of a superseded commit has ended: what had finished keeps its
/// result, what was canceled says so and why.
fn assert_superseded_flags(all: &BTreeMap<String, Flag>) {
    let old = flags_of(all, "889f07a");
    assert_eq!(old.len(), 6, "a build and five tests: {old:#?}");
    let build = &old["Fedora CI - scratch build - rawhide [889f07a]"];
    assert_eq!(
        (build.status.as_str(), build.comment.as_str()),
        ("success", "RPM build succeeded"),
        "a build that finished before it was superseded keeps its result"
    );
    for (name, flag) in old
        .iter()
        .filter(|(name, _)| !name.contains("scratch build"))
    {
        assert_eq!(
            (flag.status.as_str(), flag.comment.as_str()),
            ("canceled", "Tests were canceled: superseded by b0b0b0b"),
            "{name}"
        );
    }
    let b = flags_of(all, "b0b0b0b");
    assert_eq!(b.len(), 1, "{b:#?}");
    let build = &b["Fedora CI - scratch build - rawhide [b0b0b0b]"];
    assert_eq!(
        (build.status.as_str(), build.comment.as_str()),
        ("canceled", "RPM build was canceled: superseded by c0ffee0")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_ends_the_older_commits_flags_as_canceled() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        three_heads(&stack, &pool).await;

        let all = flags(&stack, "rpms/optee_os", 2);
        assert_superseded_flags(&all);
        let pending: Vec<&String> = all
            .iter()
            .filter(|(_, f)| f.status == "pending")
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            pending,
            ["Fedora CI - scratch build - rawhide [c0ffee0]"],
            "only the newest head's build is still pending"
        );
        assert_eq!(stack.koji.submissions().len(), 3, "one build per head");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn late_results_of_older_commits_change_no_flag() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        let (second, third) = three_heads(&stack, &pool).await;

        // The newest head builds and passes its tests.
        stack
            .koji
            .set_task_state(third.task_id, KojiTaskState::Closed, &["x86_64"]);
        stack.publish_koji_task(third.task_id).await;
        let ids = wait_until(
            Duration::from_secs(30),
            "five more Testing Farm requests",
            || async {
                let ids = stack.testing_farm.request_ids();
                (ids.len() >= 10).then_some(ids)
            },
        )
        .await;
        for id in &ids[5..] {
            stack
                .testing_farm
                .set_state(id, "complete", Some("passed"), Some("c0ffee0 passed"));
        }
        wait_until(Duration::from_secs(30), "c0ffee0's final flags", || async {
            let newest = flags_of(&flags(&stack, "rpms/optee_os", 2), "c0ffee0");
            (newest.len() == 6 && newest.values().all(|f| f.status == "success")).then_some(())
        })
        .await;
        stack.settle(&pool).await;
        let before = flags(&stack, "rpms/optee_os", 2);

        // Late news about the older commits: OLD's requests complete after
        // all (Testing Farm calls the webhook), B's task closes although it
        // was canceled (Koji says so on the bus).
        let baseline: i64 = sqlx::query_scalar("SELECT COALESCE(max(id), 0) FROM decisions")
            .fetch_one(&pool)
            .await
            .expect("decisions");
        for id in &ids[..5] {
            stack
                .testing_farm
                .set_state(id, "complete", Some("passed"), Some("late"));
            stack.testing_farm.notify(id).await.expect("webhook");
        }
        stack
            .koji
            .set_task_state(second.task_id, KojiTaskState::Closed, &["x86_64"]);
        stack.publish_koji_task(second.task_id).await;
        wait_until(
            Duration::from_secs(30),
            "the late results decided",
            || async {
                let notifications: i64 = sqlx::query_scalar(
                    "SELECT count(DISTINCT subject) FROM decisions
                     WHERE id > $1 AND subject = ANY($2)",
                )
                .bind(baseline)
                .bind(
                    ids[..5]
                        .iter()
                        .map(|id| format!("request {id}"))
                        .collect::<Vec<_>>(),
                )
                .fetch_one(&pool)
                .await
                .ok()?;
                let koji: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM decisions WHERE id > $1 AND subject = $2",
                )
                .bind(baseline)
                .bind(format!("Koji task {}", second.task_id))
                .fetch_one(&pool)
                .await
                .ok()?;
                (notifications == 5 && koji >= 1).then_some(())
            },
        )
        .await;
        stack.settle(&pool).await;

        let after = flags(&stack, "rpms/optee_os", 2);
        assert_eq!(after, before, "late results changed a flag");
        assert_superseded_flags(&after);
        let newest = flags_of(&after, "c0ffee0");
        for (name, flag) in &newest {
            let expected = if name.contains("scratch build") {
                "RPM build succeeded"
            } else {
                "c0ffee0 passed"
            };
            assert_eq!(
                (flag.status.as_str(), flag.comment.as_str()),
                ("success", expected),
                "{name}"
            );
        }
        // Koji had confirmed the cancel: the late CLOSED is older news.
        let build_state: String =
            sqlx::query_scalar("SELECT koji_state FROM koji_builds WHERE task_id = $1")
                .bind(second.task_id)
                .fetch_one(&pool)
                .await
                .expect("B's build");
        assert_eq!(build_state, "CANCELED");
        assert_eq!(
            stack.testing_farm.request_ids().len(),
            10,
            "B's late success starts no tests"
        );
    })
    .await
    .expect("test timed out");
}
