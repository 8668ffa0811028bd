//! The flows that had no test of their own, end to end: the real service
//! process against the stand-ins, driven by real bus messages (or variants
//! of them that change one field), each test asserting what a packager or an
//! operator sees: flags and comments on the pull request, the calls the
//! stand-ins received, the event's status and reason.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use clients::distgit::Flag;
use events::states::KojiTaskState;
use serde_json::{Value, json};
use support::stack::{self, Stack, opened, pr_comment as comment};
use support::wait_until;

const TIMEOUT: Duration = Duration::from_secs(180);
const PROJECT: &str = "rpms/optee_os";
const BUILD_FLAG: &str = "Fedora CI - scratch build - rawhide [889f07a]";

/// The flags on a pull request, by check name.
fn flags(stack: &Stack, project: &str, pr: i64) -> BTreeMap<String, Flag> {
    stack.flags(project, pr)
}

/// The scratch-build flag once it has left `pending`.
async fn final_build_flag(stack: &Stack, name: &str) -> Flag {
    wait_until(
        Duration::from_secs(60),
        "the scratch build's flag to end",
        || async {
            flags(stack, PROJECT, 2)
                .get(name)
                .filter(|f| f.status != "pending")
                .cloned()
        },
    )
    .await
}

/// `GET /api/events/{message_id}`.
async fn event(stack: &Stack, message_id: &str) -> Value {
    let url = format!("{}/api/events/{message_id}", stack.api());
    support::get_json(&url)
        .await
        .unwrap_or_else(|| panic!("no event at {url}"))
}

/// How many calls of `method` the Koji stand-in received.
fn koji_calls(stack: &Stack, method: &str) -> usize {
    stack
        .koji
        .calls()
        .iter()
        .filter(|m| m.as_str() == method)
        .count()
}

// ------------------------------------------------------------ Koji failures

#[tokio::test(flavor = "multi_thread")]
async fn koji_down_past_the_last_attempt_ends_the_build_flag_in_error() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        // Every call to the hub answers 503, as a proxy in front of a hub that is down.
        stack.koji.fail_next(100_000, 503);
        let message = opened();
        stack.publish(&message).await;

        let flag = final_build_flag(&stack, BUILD_FLAG).await;
        assert_eq!(flag.status, "error", "{flag:?}");
        assert!(
            flag.comment
                .starts_with("the build could not be submitted to Koji"),
            "{flag:?}"
        );
        assert!(flag.comment.contains("503"), "{flag:?}");
        stack.settle(&pool).await;

        // Every attempt of the job (10, docs/configuration.md) called the
        // hub, and no more: each `koji build` stopped at its login.
        assert_eq!(
            koji_calls(&stack, "sslLogin"),
            10,
            "{:?}",
            stack.koji.calls()
        );
        assert_eq!(koji_calls(&stack, "build"), 0);
        assert!(stack.koji.submissions().is_empty());
        let (state, attempts): (String, i32) =
            sqlx::query_as("SELECT state, attempts FROM jobs WHERE kind = 'submit-scratch-build'")
                .fetch_one(&pool)
                .await
                .expect("the submission job");
        assert_eq!((state.as_str(), attempts), ("dead", 10));
        assert!(
            stack.testing_farm.calls().is_empty(),
            "no Testing Farm request without a build"
        );
        let event = event(&stack, message["id"].as_str().expect("id")).await;
        assert_eq!(event["status"], "processed", "{event:#}");
        assert_eq!(
            flags(&stack, PROJECT, 2).len(),
            1,
            "only the build's flag; no test flags"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_koji_does_not_know_ends_in_error_at_once() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        // The real pull request, against a release branch whose target the
        // hub does not have (the stand-in's list: `KNOWN_TARGETS`).
        let mut message = opened();
        message["body"]["pullrequest"]["branch"] = json!("f39");
        stack.publish(&message).await;

        let flag = final_build_flag(&stack, "Fedora CI - scratch build - f39 [889f07a]").await;
        assert_eq!(flag.status, "error", "{flag:?}");
        assert!(
            flag.comment
                .starts_with("the build could not be submitted to Koji"),
            "{flag:?}"
        );
        assert!(
            flag.comment.contains("No such build target: f39"),
            "the flag names the problem: {flag:?}"
        );
        stack.settle(&pool).await;
        // `koji build` asks for the target before it submits, and stops.
        assert_eq!(
            koji_calls(&stack, "getBuildTarget"),
            1,
            "a refusal is not retried"
        );
        assert_eq!(koji_calls(&stack, "build"), 0);
        let (state, attempts): (String, i32) =
            sqlx::query_as("SELECT state, attempts FROM jobs WHERE kind = 'submit-scratch-build'")
                .fetch_one(&pool)
                .await
                .expect("the submission job");
        assert_eq!((state.as_str(), attempts), ("dead", 1));
        assert!(stack.testing_farm.calls().is_empty());
        let event = event(&stack, message["id"].as_str().expect("id")).await;
        assert_eq!(event["status"], "processed", "{event:#}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_koji_task_gives_a_failure_flag_and_no_tests() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        stack.publish(&opened()).await;
        let task = wait_until(Duration::from_secs(30), "a build submitted", || async {
            stack.koji.submissions().first().map(|s| s.task_id)
        })
        .await;
        stack
            .koji
            .set_task_state(task, KojiTaskState::Open, &["x86_64"]);
        stack.publish_koji_task(task).await;
        stack
            .koji
            .set_task_state(task, KojiTaskState::Failed, &["x86_64"]);
        stack.publish_koji_task(task).await;

        let flag = final_build_flag(&stack, BUILD_FLAG).await;
        assert_eq!(flag.status, "failure", "{flag:?}");
        assert_eq!(flag.comment, "RPM build failed");
        assert!(
            flag.url.ends_with(&format!("taskinfo?taskID={task}")),
            "{}",
            flag.url
        );
        stack.settle(&pool).await;
        assert!(
            stack.testing_farm.calls().is_empty(),
            "no Testing Farm request for a failed build"
        );
        assert_eq!(flags(&stack, PROJECT, 2).len(), 1, "no test flags");
        let (status, koji_state): (String, Option<String>) =
            sqlx::query_as("SELECT status, koji_state FROM koji_builds WHERE task_id = $1")
                .bind(task)
                .fetch_one(&pool)
                .await
                .expect("the build");
        assert_eq!(status, "failure");
        assert_eq!(koji_state.as_deref(), Some("FAILED"));
        // The log a packager reads is the x86_64 build's; the task's SRPM
        // child (the stand-in has one, as Koji does) is no architecture.
        let builds = support::get_json(&format!("{}/api/koji-builds", stack.api()))
            .await
            .expect("the builds");
        let id = builds[0]["packit_id"].clone();
        let build = support::get_json(&format!("{}/api/koji-builds/{id}", stack.api()))
            .await
            .expect("the build");
        let logs = build["build_logs_urls"].as_object().expect("log links");
        assert_eq!(logs.keys().collect::<Vec<_>>(), ["x86_64"], "{build:#}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_koji_task_with_no_result_in_time_ends_in_error() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack
            .spawn(&[("FEDORA_CI__JOBS__KOJI_TIMEOUT_SECONDS", "4")])
            .await;
        let pool = stack.db.pool().await;
        stack.publish(&opened()).await;
        // Koji accepts the build and the task never ends.
        let task = wait_until(Duration::from_secs(30), "a build submitted", || async {
            stack.koji.submissions().first().map(|s| s.task_id)
        })
        .await;
        stack
            .koji
            .set_task_state(task, KojiTaskState::Open, &["x86_64"]);
        stack.publish_koji_task(task).await;

        let flag = final_build_flag(&stack, BUILD_FLAG).await;
        assert_eq!(flag.status, "error", "{flag:?}");
        assert_eq!(flag.comment, "no result from Koji within 4 s");
        stack.task_canceled(task).await;
        stack.settle(&pool).await;
        assert!(stack.testing_farm.calls().is_empty());
        assert_eq!(stack.koji.submissions().len(), 1);
    })
    .await
    .expect("test timed out");
}

// -------------------------------------------------------- tests/* repositories

/// The real PR-opened message, as if it were on the test repository
/// `tests/optee_os` (from the fork `forks/zbyszek/tests/optee_os`): every
/// `rpms` path and namespace of the pull request says `tests` instead.
fn opened_on_tests_repository() -> Value {
    fn retarget(value: &mut Value) {
        match value {
            Value::String(text) if text == "rpms" => *text = "tests".to_owned(),
            Value::String(text) => *text = text.replace("rpms/", "tests/"),
            Value::Object(map) => map.values_mut().for_each(retarget),
            Value::Array(items) => items.iter_mut().for_each(retarget),
            _ => {}
        }
    }
    let mut message = opened();
    retarget(&mut message["body"]["pullrequest"]);
    message
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tests_repository_runs_only_its_own_plans_without_a_build() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        stack.distgit.set_file(
            "fork/zbyszek/tests/optee_os",
            "889f07af35d27bbcaf9c535c17a63b974aa42ee3",
            ".fmf/version",
        );
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        let message = opened_on_tests_repository();
        stack.publish(&message).await;

        let request = wait_until(
            Duration::from_secs(30),
            "a Testing Farm request",
            || async { stack.testing_farm.requests().first().cloned() },
        )
        .await;
        stack.settle(&pool).await;
        assert_eq!(stack.testing_farm.requests().len(), 1, "only custom");
        assert!(
            stack.koji.calls().is_empty(),
            "no build: {:?}",
            stack.koji.calls()
        );
        assert_eq!(
            request["test"]["tmt"]["url"],
            "https://src.fedoraproject.org/forks/zbyszek/tests/optee_os.git",
            "{request:#}"
        );
        assert_eq!(
            request["test"]["tmt"]["ref"],
            "889f07af35d27bbcaf9c535c17a63b974aa42ee3"
        );
        let environment = &request["environments"][0];
        assert_eq!(
            environment["os"]["compose"], "Fedora-Rawhide",
            "{request:#}"
        );
        assert!(
            environment["artifacts"]
                .as_array()
                .is_none_or(|a| a.is_empty()),
            "no build to install: {request:#}"
        );
        let flags = flags(&stack, "tests/optee_os", 2);
        assert_eq!(
            flags.keys().cloned().collect::<Vec<_>>(),
            ["Fedora CI - custom - rawhide [889f07a]"],
            "one flag, for custom: {flags:#?}"
        );
        let event = event(&stack, message["id"].as_str().expect("id")).await;
        assert_eq!(event["status"], "processed", "{event:#}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tests_repository_without_tmt_plans_runs_nothing() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        let message = opened_on_tests_repository();
        stack.publish(&message).await;
        // The service looks for .fmf/version at the head, and finds none.
        wait_until(
            Duration::from_secs(30),
            "the look-up of .fmf/version",
            || async {
                stack
                    .distgit
                    .calls()
                    .iter()
                    .any(|c| c.path.contains(".fmf/version"))
                    .then_some(())
            },
        )
        .await;
        stack.settle(&pool).await;
        let event = event(&stack, message["id"].as_str().expect("id")).await;
        assert_eq!(event["status"], "skipped", "{event:#}");
        let reason = event["reason"].as_str().expect("a reason");
        assert!(
            reason
                .ends_with("custom rawhide: no tmt plans: .fmf/version does not exist at 889f07a"),
            "{reason}"
        );
        assert!(
            reason.contains(
                "installability rawhide: tests namespace: only custom tests run here, not the \
                 installability test"
            ),
            "{reason}"
        );
        assert!(stack.koji.calls().is_empty());
        assert!(stack.testing_farm.calls().is_empty());
        assert!(flags(&stack, "tests/optee_os", 2).is_empty());
    })
    .await
    .expect("test timed out");
}

// ------------------------------------------------------- project enablement

/// The real PR-opened message, as if it were for the package `package`.
fn opened_for(package: &str) -> Value {
    fn rename(value: &mut Value, package: &str) {
        match value {
            Value::String(text) => *text = text.replace("optee_os", package),
            Value::Object(map) => map.values_mut().for_each(|v| rename(v, package)),
            Value::Array(items) => items.iter_mut().for_each(|v| rename(v, package)),
            _ => {}
        }
    }
    let mut message = opened();
    rename(&mut message["body"]["pullrequest"], package);
    message
}

/// The event once it has been decided (its status is no longer `received`).
async fn decided(stack: &Stack, message: &Value) -> Value {
    let url = format!(
        "{}/api/events/{}",
        stack.api(),
        message["id"].as_str().expect("id")
    );
    wait_until(Duration::from_secs(30), "the event decided", || async {
        support::get_json(&url)
            .await
            .filter(|e| e["status"] != "received")
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_project_is_skipped_with_the_reason_and_others_run() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack
            .spawn(&[(
                "FEDORA_CI__FEDORA_CI__DISABLED_PROJECTS",
                "https://src.fedoraproject.org/rpms/optee_os",
            )])
            .await;
        let pool = stack.db.pool().await;
        let disabled = opened();
        let other = opened_for("python-rpm-macros");
        stack.publish(&disabled).await;
        stack.publish(&other).await;

        let skipped = decided(&stack, &disabled).await;
        assert_eq!(skipped["status"], "skipped", "{skipped:#}");
        assert_eq!(
            skipped["reason"],
            "PR #2: project disabled: https://src.fedoraproject.org/rpms/optee_os is in \
             fedora_ci.disabled_projects",
            "{skipped:#}"
        );
        // The other project's build shows the service was working all along.
        wait_until(Duration::from_secs(30), "the other build", || async {
            stack.koji.submissions().first().cloned()
        })
        .await;
        stack.settle(&pool).await;
        let submissions = stack.koji.submissions();
        assert_eq!(submissions.len(), 1, "{submissions:#?}");
        assert!(
            submissions[0].src.contains("/rpms/python-rpm-macros.git#"),
            "{submissions:#?}"
        );
        assert!(
            flags(&stack, PROJECT, 2).is_empty(),
            "no flag on a disabled project"
        );
        assert_eq!(decided(&stack, &other).await["status"], "processed");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_run_by_default_only_the_enabled_projects_run() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack
            .spawn(&[
                ("FEDORA_CI__FEDORA_CI__RUN_BY_DEFAULT", "false"),
                (
                    "FEDORA_CI__FEDORA_CI__ENABLED_PROJECTS",
                    "https://src.fedoraproject.org/rpms/python-rpm-macros,\
                     https://src.fedoraproject.org/rpms/optee_os",
                ),
            ])
            .await;
        let pool = stack.db.pool().await;
        let enabled = opened();
        let not_listed = opened_for("bash");
        stack.publish(&not_listed).await;
        stack.publish(&enabled).await;

        let skipped = decided(&stack, &not_listed).await;
        assert_eq!(skipped["status"], "skipped", "{skipped:#}");
        assert_eq!(
            skipped["reason"],
            "PR #2: project not enabled: https://src.fedoraproject.org/rpms/bash is not in \
             fedora_ci.enabled_projects",
            "{skipped:#}"
        );
        let flag = wait_until(
            Duration::from_secs(30),
            "the enabled project's flag",
            || async { flags(&stack, PROJECT, 2).get(BUILD_FLAG).cloned() },
        )
        .await;
        assert_eq!(flag.status, "pending");
        stack.settle(&pool).await;
        let submissions = stack.koji.submissions();
        assert_eq!(submissions.len(), 1, "{submissions:#?}");
        assert!(
            submissions[0].src.contains("/rpms/optee_os.git#"),
            "{submissions:#?}"
        );
        assert!(flags(&stack, "rpms/bash", 2).is_empty());
        assert_eq!(decided(&stack, &enabled).await["status"], "processed");
    })
    .await
    .expect("test timed out");
}

// ---------------------------------------------------------- comment commands

/// The pull request opened and its build closed on Koji; returns the task
/// id once the tests were requested and everything settled.
async fn built(stack: &Stack, pool: &sqlx::PgPool) -> i64 {
    stack.publish(&opened()).await;
    let task = stack.close_first_build().await;
    // Five tests: custom waits for a .fmf/version the stand-in does not have.
    wait_until(Duration::from_secs(30), "five requests", || async {
        (stack.testing_farm.requests().len() >= 5).then_some(())
    })
    .await;
    stack.settle(pool).await;
    task
}

#[tokio::test(flavor = "multi_thread")]
async fn scratch_build_and_help_commands_and_our_own_comments_echoed_back() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        stack.fas.set_groups("zbyszek", &["packager"]);
        stack.fas.set_groups("mallory", &["fedora-contributor"]);
        // Our own account is a packager too: only the own-comment rule keeps
        // its echoed comments from running.
        stack.fas.set_groups("fedora-ci", &["packager"]);
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        built(&stack, &pool).await;
        let first = stack.koji.submissions()[0].clone();

        // A packager asks for the build again: Koji gets a second `build`.
        stack
            .publish(&comment(901, "zbyszek", "/packit-ci scratch-build"))
            .await;
        let second = wait_until(Duration::from_secs(30), "a second build", || async {
            stack.koji.submissions().get(1).cloned()
        })
        .await;
        assert_eq!(second.src, first.src);
        assert_eq!(second.target, "rawhide");
        assert_eq!(second.opts["scratch"], true);
        stack.settle(&pool).await;
        assert!(
            stack.distgit.comments().is_empty(),
            "no reply to a packager's scratch-build: {:?}",
            stack.distgit.comments()
        );

        // Anyone may ask for help; the reply is the usage.
        let help = comment(902, "mallory", "/packit-ci help");
        stack.publish(&help).await;
        let reply = wait_until(Duration::from_secs(30), "the help reply", || async {
            stack.distgit.comments().first().cloned()
        })
        .await;
        assert_eq!((reply.project.as_str(), reply.pr), (PROJECT, 2));
        for line in [
            "Fedora CI understands these commands in a pull request comment:",
            "- `/packit-ci test` runs all tests again on the latest successful scratch build",
            "- `/packit-ci test <name>` runs one test again",
            "- `/packit-ci scratch-build` builds the pull request again in Koji, then runs the tests",
            "- `/packit-ci help` shows this message",
            "Only members of the FAS group `packager` can retrigger Fedora CI.",
            "Documentation: https://packit.dev/fedora-ci",
        ] {
            assert!(reply.text.contains(line), "{line:?} in {}", reply.text);
        }
        assert!(
            !reply.text.contains("does not run on this project"),
            "{}",
            reply.text
        );
        let help_event = decided(&stack, &help).await;
        assert_eq!(help_event["status"], "processed", "{help_event:#}");

        // Our own comments come back on the bus: the help reply, and one
        // that reads as a command. Neither gets a reply or a build.
        let echoed_reply = comment(903, "fedora-ci", &reply.text);
        let echoed_command = comment(904, "fedora-ci", "/packit-ci scratch-build");
        stack.publish(&echoed_reply).await;
        stack.publish(&echoed_command).await;
        for echoed in [&echoed_reply, &echoed_command] {
            let event = decided(&stack, echoed).await;
            assert_eq!(event["status"], "skipped", "{event:#}");
            assert!(
                event["reason"]
                    .as_str()
                    .is_some_and(|r| r.ends_with("own comment")),
                "{event:#}"
            );
        }
        stack.settle(&pool).await;
        assert_eq!(stack.koji.submissions().len(), 2, "no build for our own comment");
        assert_eq!(stack.distgit.comments().len(), 1, "no reply to our own comments");
    })
    .await
    .expect("test timed out");
}

// ----------------------------------------------------------- FASJSON cache

#[tokio::test(flavor = "multi_thread")]
async fn two_commands_of_one_packager_look_the_membership_up_once() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        stack.fas.set_groups("zbyszek", &["packager"]);
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        built(&stack, &pool).await;
        assert!(stack.fas.calls().is_empty(), "no look-up before a command");

        stack
            .publish(&comment(901, "zbyszek", "/packit-ci test installability"))
            .await;
        wait_until(Duration::from_secs(30), "a sixth request", || async {
            (stack.testing_farm.requests().len() >= 6).then_some(())
        })
        .await;
        stack
            .publish(&comment(902, "zbyszek", "/packit-ci test rpmlint"))
            .await;
        wait_until(Duration::from_secs(30), "a seventh request", || async {
            (stack.testing_farm.requests().len() >= 7).then_some(())
        })
        .await;
        stack.settle(&pool).await;
        let requests = stack.testing_farm.requests();
        assert_eq!(requests.len(), 7);
        assert_eq!(
            requests[5]["test"]["tmt"]["url"],
            "https://github.com/fedora-ci/installability-pipeline.git"
        );
        // curl asks, gets FASJSON's Negotiate challenge (401), and asks
        // again with its token: one look-up.
        let calls: Vec<_> = stack
            .fas
            .calls()
            .into_iter()
            .filter(|c| c.status != 401)
            .collect();
        assert_eq!(
            calls.len(),
            1,
            "one FASJSON call for two commands within fas.cache_seconds: {calls:#?}"
        );
        assert!(calls[0].path.contains("zbyszek"), "{calls:#?}");
        assert_eq!(stack.fas.logins().len(), 1);
    })
    .await
    .expect("test timed out");
}

// --------------------------------------------------------------- readiness

/// `/api/readyz`'s status code and body; `None` when it does not answer.
async fn readyz(api: &str) -> Option<(u16, Value)> {
    let response = reqwest::get(format!("{api}/api/readyz")).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.ok()?))
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_turns_unready_while_the_database_is_down_and_back() {
    tokio::time::timeout(TIMEOUT, async {
        // A cluster of the test's own, so stopping it disturbs no other test.
        let postgres = support::PrivatePostgres::start();
        let db = support::fresh_database_at(&postgres.url()).await;
        let vhost = support::fresh_vhost();
        let port = support::free_port();
        let api = format!("http://127.0.0.1:{port}");
        let mut service = support::Service::spawn_with_env(
            &support::service_config(&db.url, &vhost.amqp_url, port),
            &["run"],
            &[],
        );
        let ready = wait_until(Duration::from_secs(60), "ready", || async {
            readyz(&api).await.filter(|(status, _)| *status == 200)
        })
        .await;
        assert_eq!(
            ready.1,
            json!({"ready": true, "database": "ok", "bus": "ok"})
        );

        postgres.stop_immediate();
        let (_, body) = wait_until(Duration::from_secs(60), "unready", || async {
            readyz(&api).await.filter(|(status, _)| *status == 503)
        })
        .await;
        assert_eq!(
            body,
            json!({"ready": false, "database": "unreachable", "bus": "ok"})
        );
        let live = reqwest::get(format!("{api}/api/healthz"))
            .await
            .expect("healthz answers");
        assert_eq!(live.status(), 200, "alive while the database is down");
        // Packit's body, which its monitoring reads.
        assert_eq!(
            live.json::<Value>().await.expect("JSON"),
            json!({"status": "We are healthy!"})
        );

        postgres.start_again();
        let (_, body) = wait_until(Duration::from_secs(60), "ready again", || async {
            readyz(&api).await.filter(|(status, _)| *status == 200)
        })
        .await;
        assert_eq!(body["database"], "ok");
        assert!(service.is_running(), "the service rode it out");
    })
    .await
    .expect("test timed out");
}

// ----------------------------------------------------------- operator CLIs

/// Runs the service's command line against the stack's configuration:
/// (success, stdout, stderr).
fn cli(stack: &Stack, args: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, stack.config()).expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fedora-ci-worker"))
        .arg("--config")
        .arg(&config)
        .args(args)
        .output()
        .expect("the CLI runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_records_what_the_bus_did_not_bring_and_it_is_decided() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        // One message came from the bus, and was acted on.
        let from_bus = opened();
        stack.publish(&from_bus).await;
        wait_until(Duration::from_secs(30), "its build", || async {
            stack.koji.submissions().first().cloned()
        })
        .await;

        // The backfill has it again, with two the bus lost: a datagrepper
        // v2 page and a JSON Lines file.
        let lost_pr = opened_for("python-rpm-macros");
        let mut pagure_io = stack::message("pagure.pull-request.new-same-repo.json");
        pagure_io["id"] = json!(uuid::Uuid::new_v4().to_string());
        let dir = tempfile::tempdir().expect("tempdir");
        let page = dir.path().join("page.json");
        std::fs::write(
            &page,
            json!({"raw_messages": [from_bus, lost_pr], "count": 2, "total": 2, "pages": 1,
                   "arguments": {"page": 1}})
            .to_string(),
        )
        .expect("page");
        let lines = dir.path().join("lines.jsonl");
        std::fs::write(&lines, format!("{pagure_io}\n{from_bus}\n")).expect("lines");
        let (ok, out, err) = cli(
            &stack,
            &[
                "replay",
                page.to_str().expect("path"),
                lines.to_str().expect("path"),
            ],
        );
        assert!(ok, "{out}{err}");
        assert!(
            out.contains("replayed 4 messages: 2 recorded, 2 already known"),
            "{out}"
        );

        // The lost ones are decided as if the bus had brought them.
        let lost_build = wait_until(Duration::from_secs(30), "the lost PR's build", || async {
            stack.koji.submissions().get(1).cloned()
        })
        .await;
        assert!(
            lost_build.src.contains("/rpms/python-rpm-macros.git#"),
            "{lost_build:?}"
        );
        let skipped = decided(&stack, &pagure_io).await;
        assert_eq!(skipped["status"], "skipped", "{skipped:#}");
        assert!(
            skipped["reason"]
                .as_str()
                .is_some_and(|r| r.contains("not on dist-git")),
            "{skipped:#}"
        );
        stack.settle(&pool).await;
        assert_eq!(
            stack.koji.submissions().len(),
            2,
            "the known one not built again"
        );
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT message_id FROM events WHERE source <> 'internal' ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .expect("events");
        assert_eq!(
            ids,
            [&from_bus, &lost_pr, &pagure_io].map(|m| m["id"].as_str().expect("id").to_owned()),
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_cancel_stops_a_job_that_waits_to_run_and_ends_its_flag() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        // Koji refuses the first call; the queue then pauses for ten minutes
        // (the breaker after one failure), so the submission waits to run.
        stack.koji.fail_next(1, 503);
        let service = stack
            .spawn(&[
                ("FEDORA_CI__JOBS__BREAKER_FAILURES", "1"),
                ("FEDORA_CI__JOBS__BREAKER_OPEN_SECONDS", "600"),
                ("FEDORA_CI__JOBS__BACKOFF_BASE_MS", "600000"),
                ("FEDORA_CI__JOBS__BACKOFF_MAX_SECONDS", "600"),
            ])
            .await;
        let pool = stack.db.pool().await;
        stack.publish(&opened()).await;
        let id: i64 = wait_until(
            Duration::from_secs(30),
            "the submission waiting",
            || async {
                sqlx::query_scalar(
                    "SELECT id FROM jobs WHERE kind = 'submit-scratch-build' AND state = 'pending'
                 AND attempts = 1",
                )
                .fetch_optional(&pool)
                .await
                .ok()
                .flatten()
            },
        )
        .await;
        assert_eq!(stack.koji.calls(), ["sslLogin"]);

        let (ok, out, err) = cli(&stack, &["jobs", "cancel", &id.to_string()]);
        assert!(ok, "{out}{err}");
        assert_eq!(out.trim(), format!("job {id}: canceled"));
        let (ok, _, err) = cli(&stack, &["jobs", "cancel", &id.to_string()]);
        assert!(!ok, "canceling it again says so");
        assert!(
            err.contains(&format!(
                "job {id}: not canceled: no such job waiting to run"
            )),
            "{err}"
        );
        let (ok, listed, err) = cli(&stack, &["jobs", "--state", "canceled"]);
        assert!(ok, "{err}");
        assert!(listed.contains("submit-scratch-build"), "{listed}");
        let (state, last_error): (String, Option<String>) =
            sqlx::query_as("SELECT state, last_error FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .expect("the job");
        assert_eq!(state, "canceled");
        assert_eq!(last_error.as_deref(), Some("canceled by an operator"));
        // What waited on it ends: the flag does not stay pending.
        let flag = final_build_flag(&stack, BUILD_FLAG).await;
        assert_eq!(flag.status, "error", "{flag:?}");
        assert_eq!(
            flag.comment,
            "the build could not be submitted to Koji: canceled by an operator"
        );

        // A service with a closed breaker takes due work at once; a build
        // of another pull request shows it runs, and the canceled job stays so.
        drop(service);
        let _again = stack.spawn(&[]).await;
        stack.publish(&opened_for("python-rpm-macros")).await;
        let other = wait_until(Duration::from_secs(30), "the other build", || async {
            stack.koji.submissions().first().cloned()
        })
        .await;
        assert!(other.src.contains("python-rpm-macros"), "{other:?}");
        stack.settle(&pool).await;
        assert_eq!(
            stack.koji.submissions().len(),
            1,
            "the canceled one never ran"
        );
        let state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("the job");
        assert_eq!(state, "canceled");
    })
    .await
    .expect("test timed out");
}

// ---------------------------------------------------------- poison messages

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_message_is_dead_and_rejected_without_requeue() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let vhost = stack.vhost.as_ref().expect("a vhost of the test's own");
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        // A real message's topic and headers, with a body that is not JSON.
        let real = opened();
        let poison_id = uuid::Uuid::new_v4().to_string();
        support::publish_raw(
            &stack.amqp_url,
            real["topic"].as_str().expect("topic"),
            support::fm_properties(&poison_id, support::field_table(&real["headers"])),
            b"<html>502 Bad Gateway</html>",
        )
        .await;
        // A good one after it is consumed all the same.
        stack.publish(&real).await;
        let dead = decided(&stack, &json!({"id": poison_id})).await;
        assert_eq!(dead["status"], "dead", "{dead:#}");
        assert!(
            dead["reason"].as_str().is_some_and(|r| r.contains("JSON")),
            "{dead:#}"
        );
        wait_until(Duration::from_secs(30), "the good one's build", || async {
            stack.koji.submissions().first().cloned()
        })
        .await;
        stack.settle(&pool).await;

        // The broker holds nothing: not the poison requeued, nor a delivery
        // left unacknowledged. A requeued message would be ready or
        // unacknowledged at every look.
        let queue = "fedora-ci-worker";
        wait_until(Duration::from_secs(30), "an empty queue", || async {
            (vhost.queue_counts(queue) == Some((0, 0))).then_some(())
        })
        .await;
        for _ in 0..3 {
            assert_eq!(vhost.queue_counts(queue), Some((0, 0)));
        }
        // Delivered once each: a requeued poison would have come back.
        let metrics = reqwest::get(format!("{}/metrics", stack.api()))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let deliveries = metrics
            .lines()
            .find_map(|l| l.strip_prefix("fedora_ci_bus_deliveries_total "))
            .unwrap_or_else(|| panic!("no deliveries counted: {metrics}"));
        assert_eq!(deliveries.trim(), "2", "the poison and the good one");
        let recorded: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE message_id = $1 AND status = 'dead'",
        )
        .bind(&poison_id)
        .fetch_one(&pool)
        .await
        .expect("count");
        assert_eq!(recorded, 1);
    })
    .await
    .expect("test timed out");
}

// ------------------------------------------------- closed and reopened pull requests

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_pull_request_stops_and_reopening_it_builds_again() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        let message = opened();
        stack.publish(&message).await;
        let first = wait_until(Duration::from_secs(30), "a build", || async {
            stack.koji.submissions().first().cloned()
        })
        .await;
        stack
            .koji
            .set_task_state(first.task_id, KojiTaskState::Open, &["x86_64"]);
        stack.publish_koji_task(first.task_id).await;
        stack.settle(&pool).await;

        // Pagure announces the pull request closed: its running build is
        // canceled at Koji and its flag ends `canceled`, saying why.
        let mut closed = opened();
        closed["topic"] = json!("org.fedoraproject.prod.pagure.pull-request.closed");
        closed["body"]["pullrequest"]["status"] = json!("Closed");
        closed["body"]["pullrequest"]["last_updated"] = json!("1729687200");
        stack.publish(&closed).await;
        stack.task_canceled(first.task_id).await;
        let flag = final_build_flag(&stack, BUILD_FLAG).await;
        assert_eq!(flag.status, "canceled", "{flag:?}");
        assert!(flag.comment.contains("closed"), "{flag:?}");
        stack.settle(&pool).await;

        // Reopened with the same head: built again, the same flag back to
        // pending in place (one flag, its uid unchanged).
        let mut reopened = opened();
        reopened["topic"] = json!("org.fedoraproject.prod.pagure.pull-request.reopened");
        reopened["body"]["pullrequest"]["last_updated"] = json!("1729687400");
        stack.publish(&reopened).await;
        let second = wait_until(Duration::from_secs(30), "a second build", || async {
            stack.koji.submissions().get(1).cloned()
        })
        .await;
        assert_eq!(
            (second.src.as_str(), second.target.as_str()),
            (first.src.as_str(), "rawhide")
        );
        stack.settle(&pool).await;
        let flags = flags(&stack, PROJECT, 2);
        assert_eq!(flags.len(), 1, "{flags:#?}");
        let again = &flags[BUILD_FLAG];
        assert_eq!(
            (again.status.as_str(), again.uid.as_str()),
            ("pending", flag.uid.as_str())
        );
        let event = decided(&stack, &reopened).await;
        assert_eq!(event["status"], "processed", "{event:#}");
        assert!(
            event["reason"]
                .as_str()
                .is_some_and(|r| r.contains("the pull request was reopened")),
            "{event:#}"
        );
        assert_eq!(stack.koji.submissions().len(), 2);
    })
    .await
    .expect("test timed out");
}

// ------------------------------------------------- rate limits and concurrency

/// The dist-git writes (flags), in the order they arrived.
fn distgit_writes(stack: &Stack) -> Vec<clients::standins::distgit::Call> {
    let mut writes: Vec<_> = stack
        .distgit
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST")
        .collect();
    writes.sort_by_key(|c| c.at);
    writes
}

/// The most writes that were being answered at once: at each write's
/// arrival, how many had arrived and were not answered yet.
fn most_at_once(writes: &[clients::standins::distgit::Call]) -> usize {
    writes
        .iter()
        .map(|w| {
            writes
                .iter()
                .filter(|o| o.at <= w.at && w.at < o.done)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queues_concurrency_and_rate_hold_for_its_service() {
    tokio::time::timeout(TIMEOUT, async {
        // One dist-git write at a time, at most four a second, against a
        // dist-git that takes 100 ms to answer.
        let stack = Stack::start().await;
        stack.distgit.set_delay(Duration::from_millis(100));
        let _service = stack
            .spawn(&[
                ("FEDORA_CI__JOBS__QUEUES__DISTGIT__CONCURRENCY", "1"),
                ("FEDORA_CI__JOBS__QUEUES__DISTGIT__RATE_PER_SECOND", "4"),
            ])
            .await;
        let pool = stack.db.pool().await;
        built(&stack, &pool).await;
        let writes = distgit_writes(&stack);
        assert!(
            writes.len() >= 7,
            "the build's flags and five tests': {}",
            writes.len()
        );
        assert_eq!(most_at_once(&writes), 1, "one at a time");
        let gaps: Vec<Duration> = writes.windows(2).map(|w| w[1].at - w[0].at).collect();
        assert!(
            gaps.iter().all(|gap| *gap >= Duration::from_millis(230)),
            "a write every 250 ms at most: {gaps:?}"
        );
        drop(stack);

        // The same flow with three at a time and no rate: writes overlap,
        // never more than three.
        let stack = Stack::start().await;
        stack.distgit.set_delay(Duration::from_millis(400));
        let _service = stack
            .spawn(&[
                ("FEDORA_CI__JOBS__QUEUES__DISTGIT__CONCURRENCY", "3"),
                ("FEDORA_CI__JOBS__QUEUES__DISTGIT__RATE_PER_SECOND", "0"),
            ])
            .await;
        let pool = stack.db.pool().await;
        built(&stack, &pool).await;
        let most = most_at_once(&distgit_writes(&stack));

        assert!((2..=3).contains(&most), "{most} writes at once");
    })
    .await
    .expect("test timed out");
}

// ---------------------------------------------------------------- composes

#[tokio::test(flavor = "multi_thread")]
async fn tests_for_a_compose_testing_farm_does_not_list_end_in_error_unsent() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        // Koji builds for f40, but Testing Farm's public ranch no longer
        // lists Fedora-40.
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        let mut message = opened();
        message["body"]["pullrequest"]["branch"] = json!("f40");
        stack.publish(&message).await;
        stack.close_first_build().await;
        // Installability names the compose: it ends in error, unsent. The
        // tests that bring their own environment go to Testing Farm.
        let name = "Fedora CI - installability - f40 [889f07a]";
        let flag = wait_until(
            Duration::from_secs(60),
            "installability's flag to end",
            || async {
                flags(&stack, PROJECT, 2)
                    .get(name)
                    .filter(|f| f.status != "pending")
                    .cloned()
            },
        )
        .await;
        stack.settle(&pool).await;
        assert_eq!(flag.status, "error", "{flag:?}");
        assert!(
            flag.comment
                .contains("the compose Fedora-40 is not available in the public Testing Farm"),
            "{flag:?}"
        );
        let requests = stack.testing_farm.requests();
        assert!(!requests.is_empty());
        assert!(
            requests
                .iter()
                .all(|r| r["environments"][0].get("os").is_none()),
            "no request names a compose: {requests:#?}"
        );
        let reads = stack
            .testing_farm
            .calls()
            .into_iter()
            .filter(|c| c.path == "/composes/public")
            .count();
        assert_eq!(reads, 1, "the list is read once for all runs");
    })
    .await
    .expect("test timed out");
}
