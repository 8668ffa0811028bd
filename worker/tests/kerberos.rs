//! The production Kerberos route, end to end: the real service process with
//! `[koji] auth = "kerberos"`, a KDC of the test's own (MIT, Debian's
//! packages), `kinit -k -t` and the real `koji` client (PyPI) for Koji,
//! `kinit` and `curl --negotiate` for FASJSON, and stand-ins that check
//! every login against the KDC. Every other end-to-end test runs this route
//! too (`support::stack`); these tests are about the route itself: what
//! the services see of it, and what a packager and an operator see when a
//! ticket is missing, a keytab is wrong or the KDC is down, and that the
//! service recovers when that is fixed.

mod support;

use std::time::Duration;

use clients::standins::kerberos::SERVICE_PRINCIPAL;
use events::states::KojiTaskState;
use serde_json::json;
use support::stack::{Stack, opened, pr_comment};
use support::wait_until;

const TIMEOUT: Duration = Duration::from_secs(240);
const PROJECT: &str = "rpms/optee_os";
const BUILD_FLAG: &str = "Fedora CI - scratch build - rawhide [889f07a]";
const NEW_HEAD: &str = "b0b1b2b3b4b5b6b7b8b9c0c1c2c3c4c5c6c7c8c9";

/// The scratch-build flag once it has left `pending`.
async fn final_build_flag(stack: &Stack) -> clients::distgit::Flag {
    wait_until(
        Duration::from_secs(90),
        "the scratch build's flag to end",
        || async {
            stack
                .flags(PROJECT, 2)
                .get(BUILD_FLAG)
                .filter(|f| f.status != "pending")
                .cloned()
        },
    )
    .await
}

/// The submission job's state, attempts and last error.
async fn submission_job(pool: &sqlx::PgPool) -> Option<(i64, String, i32, Option<String>)> {
    sqlx::query_as(
        "SELECT id, state, attempts, last_error FROM jobs
         WHERE kind = 'submit-scratch-build' ORDER BY id LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .expect("the submission job")
}

/// Runs the service's command line against the stack's configuration, with
/// extra `FEDORA_CI__...` settings: (success, stdout and stderr).
fn cli(stack: &Stack, env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, stack.config()).expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fedora-ci-worker"))
        .arg("--config")
        .arg(&config)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the CLI runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn builds_cancellations_and_packager_checks_log_in_with_the_services_keytab() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        stack.fas.set_groups("zbyszek", &["packager"]);
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;

        // The pull request's build: `kinit`, then `koji build` logs in over
        // GSSAPI and submits in its session.
        stack.publish(&opened()).await;
        let first = wait_until(Duration::from_secs(60), "the build", || async {
            stack.koji.submissions().first().cloned()
        })
        .await;
        assert_eq!(first.target, "rawhide");
        assert_eq!(first.opts["scratch"], true, "{first:?}");
        assert!(
            first
                .src
                .starts_with("git+https://src.fedoraproject.org/forks/"),
            "{first:?}"
        );
        assert_eq!(stack.koji.logins(), [SERVICE_PRINCIPAL]);
        assert!(stack.koji.refused_logins().is_empty());
        // What the koji client asks, in order: the session first (asked
        // without a token, challenged with 401 `Negotiate`, asked again with
        // one), then the target and its tag, then the build, and it logs out.
        let calls = stack.koji.calls();
        let build_at = calls.iter().position(|c| c == "build").expect("build");
        assert_eq!(
            &calls[..=build_at],
            [
                "sslLogin",
                "sslLogin",
                "getAPIVersion",
                "getBuildTarget",
                "getTag",
                "build"
            ],
            "{calls:?}"
        );
        assert_eq!(calls.get(build_at + 1).map(String::as_str), Some("logout"));

        // A new commit supersedes the running build: it is canceled, with
        // `koji cancel`, in a session of its own, and the new head is built.
        stack
            .koji
            .set_task_state(first.task_id, KojiTaskState::Open, &["x86_64"]);
        stack.publish_koji_task(first.task_id).await;
        let mut updated = opened();
        updated["topic"] = json!("org.fedoraproject.prod.pagure.pull-request.updated");
        updated["body"]["pullrequest"]["commit_stop"] = json!(NEW_HEAD);
        updated["body"]["pullrequest"]["last_updated"] = json!("1729690000");
        stack.publish(&updated).await;
        stack.task_canceled(first.task_id).await;
        let second = wait_until(Duration::from_secs(60), "a second build", || async {
            stack.koji.submissions().get(1).cloned()
        })
        .await;
        assert!(second.src.ends_with(&format!("#{NEW_HEAD}")), "{second:?}");
        assert_eq!(
            stack.koji.task_state(first.task_id),
            Some(KojiTaskState::Canceled)
        );

        // A packager asks for the build again: FASJSON is asked, over
        // SPNEGO, whether they are one, and Koji gets a third build.
        let mut command = pr_comment(901, "zbyszek", "/packit-ci scratch-build");
        command["body"]["pullrequest"]["commit_stop"] = json!(NEW_HEAD);
        stack.publish(&command).await;
        wait_until(Duration::from_secs(60), "a third build", || async {
            stack.koji.submissions().get(2).cloned()
        })
        .await;
        stack.settle(&pool).await;
        // Three builds and one cancellation, each `koji` run a session of its own.
        assert_eq!(stack.koji.cancellations(), [first.task_id]);
        assert_eq!(stack.koji.logins(), [SERVICE_PRINCIPAL; 4]);
        assert_eq!(stack.fas.logins(), [SERVICE_PRINCIPAL]);
        // curl sends its token with the call; the stand-in took it.
        let calls = stack.fas.calls();
        assert_eq!(
            calls.iter().map(|c| c.status).collect::<Vec<_>>(),
            [200],
            "{calls:#?}"
        );
        assert!(stack.fas.refused_logins().is_empty());
        // Each `koji` run and the FASJSON client got a ticket from the keytab.
        assert_eq!(stack.kdc.tickets_issued(), 5);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_ticket_the_hub_refuses_the_build_and_the_flag_says_why() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        // The XML-RPC route sends no ticket: the hub, which wants a session
        // for `build`, refuses it.
        let _service = stack.spawn(&[("FEDORA_CI__KOJI__AUTH", "none")]).await;
        let pool = stack.db.pool().await;
        stack.publish(&opened()).await;

        let flag = final_build_flag(&stack).await;
        assert_eq!(flag.status, "error", "{flag:?}");
        assert!(
            flag.comment
                .contains("you must be logged in for this operation"),
            "{flag:?}"
        );
        stack.settle(&pool).await;
        assert!(stack.koji.submissions().is_empty());
        assert!(stack.koji.logins().is_empty());
        let (_, state, attempts, _) = submission_job(&pool).await.expect("the job");
        assert_eq!(
            (state.as_str(), attempts),
            ("dead", 1),
            "a refusal is not retried"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_keytab_is_an_auth_error_and_a_retry_after_the_fix_builds() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        // The deployment's keytab is an old one: the principal's keys were
        // rotated since.
        let dir = tempfile::tempdir().expect("tempdir");
        let keytab = dir.path().join("fedora-ci.keytab");
        std::fs::copy(stack.kdc.stale_keytab(), &keytab).expect("the old keytab");
        let keytab_setting = keytab.display().to_string();
        let env = [("FEDORA_CI__KOJI__KEYTAB", keytab_setting.as_str())];
        let _service = stack.spawn(&env).await;
        let pool = stack.db.pool().await;
        stack.publish(&opened()).await;

        let flag = final_build_flag(&stack).await;
        assert_eq!(flag.status, "error", "{flag:?}");
        assert!(
            flag.comment.contains("koji: authentication failed"),
            "{flag:?}"
        );
        assert!(
            !flag.comment.contains(SERVICE_PRINCIPAL) && !flag.comment.contains(&keytab_setting),
            "the principal and the keytab's path are for operators: {flag:?}"
        );
        stack.settle(&pool).await;
        let (job, state, attempts, error) = submission_job(&pool).await.expect("the job");
        assert_eq!((state.as_str(), attempts), ("dead", 1));
        let error = error.unwrap_or_default();
        assert!(
            error.contains(&format!("kinit for {SERVICE_PRINCIPAL} failed"))
                && error.contains("Password incorrect"),
            "the operator reads which principal and what the KDC said: {error}"
        );
        assert!(stack.koji.calls().is_empty(), "koji never ran");

        // The operator puts the current keytab in place and retries the job.
        std::fs::copy(stack.kdc.keytab(), &keytab).expect("the new keytab");
        let (ok, out) = cli(&stack, &env, &["jobs", "retry", &job.to_string()]);
        assert!(ok, "{out}");
        let build = wait_until(Duration::from_secs(60), "the build", || async {
            stack.koji.submissions().first().cloned()
        })
        .await;
        assert_eq!(stack.koji.logins(), [SERVICE_PRINCIPAL]);
        stack
            .koji
            .set_task_state(build.task_id, KojiTaskState::Closed, &["x86_64"]);
        stack.publish_koji_task(build.task_id).await;
        let flag = wait_until(Duration::from_secs(60), "the flag to succeed", || async {
            stack
                .flags(PROJECT, 2)
                .get(BUILD_FLAG)
                .filter(|f| f.status == "success")
                .cloned()
        })
        .await;
        assert!(flag.comment.contains("succeeded"), "{flag:?}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kdc_that_is_down_is_retried_and_the_build_goes_out_when_it_is_back() {
    tokio::time::timeout(TIMEOUT, async {
        let mut stack = Stack::start().await;
        stack.kdc.stop();
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        stack.publish(&opened()).await;

        // `kinit` finds no KDC: a transient error, retried with backoff,
        // and the flag stays pending meanwhile.
        let error = wait_until(Duration::from_secs(60), "two failed attempts", || async {
            submission_job(&pool)
                .await
                .filter(|(_, state, attempts, _)| state == "pending" && *attempts >= 2)
                .and_then(|(_, _, _, error)| error)
        })
        .await;
        assert!(
            error.contains("Cannot contact any KDC for realm 'FCI.TEST'"),
            "{error}"
        );
        assert_eq!(
            stack
                .flags(PROJECT, 2)
                .get(BUILD_FLAG)
                .map(|f| f.status.clone()),
            Some("pending".to_owned())
        );
        assert!(stack.koji.calls().is_empty(), "koji never ran");

        stack.kdc.restart().expect("the KDC again");
        let build = wait_until(Duration::from_secs(60), "the build", || async {
            stack.koji.submissions().first().cloned()
        })
        .await;
        assert_eq!(build.target, "rawhide");
        stack.settle(&pool).await;
        assert_eq!(stack.koji.submissions().len(), 1, "one build");
        let (_, state, _, _) = submission_job(&pool).await.expect("the job");
        assert_eq!(state, "done");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_fasjson_ticket_is_renewed_and_the_command_runs() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        stack.fas.set_groups("zbyszek", &["packager"]);
        // A packager check is trusted for 1 s, so each command's asks
        // FASJSON again; tickets of the service's principal will live 5 s.
        let _service = stack.spawn(&[("FEDORA_CI__FAS__CACHE_SECONDS", "1")]).await;
        let pool = stack.db.pool().await;
        stack.publish(&opened()).await;
        stack.close_first_build().await;
        wait_until(Duration::from_secs(60), "five requests", || async {
            (stack.testing_farm.requests().len() >= 5).then_some(())
        })
        .await;
        stack.settle(&pool).await;
        // From now on (the build went out with a ticket of the usual life).
        stack
            .kdc
            .set_ticket_lifetime(Duration::from_secs(5))
            .expect("a short ticket life");

        stack
            .publish(&pr_comment(
                901,
                "zbyszek",
                "/packit-ci test installability",
            ))
            .await;
        wait_until(Duration::from_secs(60), "a sixth request", || async {
            (stack.testing_farm.requests().len() >= 6).then_some(())
        })
        .await;
        let tickets = stack.kdc.tickets_issued();
        // The client's ticket is now past its life: no token goes with the
        // next call, FASJSON answers 401 `Negotiate`, and the client gets a
        // new ticket from its keytab and asks again.
        tokio::time::sleep(Duration::from_secs(6)).await;
        stack
            .publish(&pr_comment(902, "zbyszek", "/packit-ci test rpmlint"))
            .await;
        wait_until(Duration::from_secs(60), "a seventh request", || async {
            (stack.testing_farm.requests().len() >= 7).then_some(())
        })
        .await;
        stack.settle(&pool).await;
        assert_eq!(stack.fas.logins(), [SERVICE_PRINCIPAL; 2]);
        assert!(
            stack.kdc.tickets_issued() > tickets,
            "the client got a new ticket after the first expired"
        );
        let requests = stack.testing_farm.requests();
        assert!(
            requests[6]["test"]["tmt"].to_string().contains("rpmlint"),
            "{:#}",
            requests[6]
        );
    })
    .await
    .expect("test timed out");
}
