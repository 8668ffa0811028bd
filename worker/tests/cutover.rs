//! The day of the switch from Packit Service: Packit's Fedora CI left pending flags on an open
//! pull request; this service, run with `check_name_prefix = "Packit"`, updates those flags in
//! place (same names, same uids) instead of adding its own beside them. The real service
//! process, the local RabbitMQ and PostgreSQL, and the dist-git stand-in, which keeps a pull
//! request's flags by uid as Pagure does.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use clients::distgit::Flag;
use events::states::KojiTaskState;
use serde_json::json;
use support::stack::{self, Stack};
use support::wait_until;

const TIMEOUT: Duration = Duration::from_secs(180);

/// Flags as Packit Service left them on rpms/optee_os pull request 2 while its build and
/// tests ran: Packit's names, and the uids its Pagure reporter gives them, worked out
/// independently of our code with Python: `hashlib.sha256(name.encode()).hexdigest()[:32]`.
const PACKIT_FLAGS: &[(&str, &str, &str)] = &[
    (
        "Packit - scratch build - rawhide [889f07a]",
        "da02b4ee9881488e777cd22bbb13987f",
        "RPM build was submitted ...",
    ),
    (
        "Packit - installability - rawhide [889f07a]",
        "5078ce33d923dbbba09ae1e8b36ce3da",
        "Tests have been submitted ...",
    ),
    (
        "Packit - rpminspect - rawhide [889f07a]",
        "e5e1bbda7c71ab53914857f17f12c708",
        "Tests have been submitted ...",
    ),
    (
        "Packit - rpmlint - rawhide [889f07a]",
        "fee9e6142d78a3a86d5227f09da745b8",
        "Tests have been submitted ...",
    ),
    (
        "Packit - rmdepcheck - rawhide [889f07a]",
        "1b8b0222999777af6032462e6fabc0c4",
        "Tests have been submitted ...",
    ),
    (
        "Packit - license-validate - rawhide [889f07a]",
        "69480aedb6b1c1b2910bc6cba89e3f8c",
        "Tests have been submitted ...",
    ),
];

fn flags_by_uid(stack: &Stack) -> BTreeMap<String, Flag> {
    stack
        .distgit
        .flags()
        .get(&("rpms/optee_os".to_owned(), 2))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn packits_flags_are_taken_over_in_place() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        // The pull request Packit flagged exists on dist-git.
        let message = stack::message("pagure.pull-request.new-fork.json");
        assert!(
            stack
                .distgit
                .add_pull_request_from_message(&message["body"]["pullrequest"])
        );
        // Packit's flags, posted through the Pagure API as Packit posts them. (The stand-in
        // knows one token; Pagure updates a flag found by its uid whoever set it.)
        let http = reqwest::Client::new();
        for (name, uid, comment) in PACKIT_FLAGS {
            let answer = http
                .post(format!(
                    "{}/api/0/rpms/optee_os/pull-request/2/flag",
                    stack.distgit.url()
                ))
                .header("Authorization", format!("token {}", stack::DISTGIT_TOKEN))
                .form(&[
                    ("username", *name),
                    ("uid", *uid),
                    ("status", "pending"),
                    ("comment", *comment),
                    ("url", "https://dashboard.packit.dev/jobs/koji/1234"),
                ])
                .send()
                .await
                .expect("the stand-in answers");
            assert!(answer.status().is_success(), "{answer:?}");
        }
        assert_eq!(flags_by_uid(&stack).len(), PACKIT_FLAGS.len());

        let _service = stack
            .spawn(&[("FEDORA_CI__FEDORA_CI__CHECK_NAME_PREFIX", "Packit")])
            .await;
        // The pull request's last message, as the operator replays it after turning Packit's
        // Fedora CI off (docs/cutover.md).
        let mut message = stack::message("pagure.pull-request.new-fork.json");
        message["topic"] = json!("org.fedoraproject.prod.pagure.pull-request.updated");
        stack.publish(&message).await;

        let submission = wait_until(Duration::from_secs(30), "a Koji build", || async {
            stack.koji.submissions().first().cloned()
        })
        .await;
        stack
            .koji
            .set_task_state(submission.task_id, KojiTaskState::Closed, &["x86_64"]);
        stack.publish_koji_task(submission.task_id).await;
        let requests = wait_until(Duration::from_secs(30), "five test requests", || async {
            let ids = stack.testing_farm.request_ids();
            (ids.len() >= 5).then_some(ids)
        })
        .await;
        for id in &requests {
            stack
                .testing_farm
                .set_state(id, "complete", Some("passed"), Some("all tests passed"));
        }

        // Every flag Packit left is now ours and final; none was added beside them.
        let flags = wait_until(Duration::from_secs(60), "the final flags", || async {
            let flags = flags_by_uid(&stack);
            flags
                .values()
                .all(|f| f.status == "success")
                .then_some(flags)
        })
        .await;
        let uids: Vec<&str> = flags.keys().map(String::as_str).collect();
        let mut expected: Vec<&str> = PACKIT_FLAGS.iter().map(|(_, uid, _)| *uid).collect();
        expected.sort_unstable();
        assert_eq!(uids, expected, "{flags:#?}");
        for (name, uid, _) in PACKIT_FLAGS {
            let flag = &flags[*uid];
            assert_eq!(flag.username, *name);
            assert_ne!(flag.comment, "Tests have been submitted ...", "{flag:?}");
        }
        let build = &flags["da02b4ee9881488e777cd22bbb13987f"];
        assert_eq!(build.comment, "RPM build succeeded");
        assert!(
            build
                .url
                .ends_with(&format!("taskinfo?taskID={}", submission.task_id)),
            "{build:?}"
        );
        // Each update reached Pagure as an update of Packit's flag.
        let updates = stack
            .distgit
            .calls()
            .iter()
            .filter(|c| c.path.ends_with("/pull-request/2/flag"))
            .count();
        assert!(updates > PACKIT_FLAGS.len(), "{updates}");
    })
    .await
    .expect("test timed out");
}
