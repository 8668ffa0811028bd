//! Every real message of tests/data/bus, replayed through the whole service: published to
//! the broker as fedora-messaging does, taken in by the consumer, recorded, decided, and the
//! work it starts done against the stand-ins. What each event ended as, its status and its
//! reason, is a snapshot: a change in how any real message is decided shows in review.
//!
//! Beside them go messages that are malformed on purpose, each derived from a real one.
//! They, and only they, end `failed`: a real message is never `failed`.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use support::stack::{self, Stack};

const TIMEOUT: Duration = Duration::from_secs(180);

/// Real messages broken on purpose: (name, message).
fn malformed() -> Vec<(&'static str, Value)> {
    let mut bad_head = stack::message("pagure.pull-request.new-fork.json");
    bad_head["id"] = json!("malformed-pull-request-head");
    bad_head["body"]["pullrequest"]["commit_stop"] = json!("HEAD~1");
    let mut bad_task = stack::message("buildsys.task.state.change-open-scratch.json");
    bad_task["id"] = json!("malformed-koji-task-id");
    bad_task["body"]["id"] = json!("not a task id");
    bad_task["body"]["info"]["id"] = json!("not a task id");
    let mut no_builds =
        stack::message("bodhi.update.status.testing.koji-build-group.build.complete.json");
    no_builds["id"] = json!("malformed-bodhi-builds");
    no_builds["body"]["artifact"]["builds"] = json!("gdb-11.1-5.fc34");
    vec![
        ("a pull request whose head is not a commit", bad_head),
        ("a Koji task whose id is not a number", bad_task),
        ("a Bodhi update whose builds are not a list", no_builds),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_real_message_is_decided_through_the_whole_service() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let pool = stack.db.pool().await;
        // Koji knows the official build of the Bodhi update, as the real hub does.
        stack.koji.insert_build(json!({
            "id": 1_854_854, "nvr": "gdb-11.1-5.fc34", "name": "gdb", "version": "11.1",
            "release": "5.fc34", "task_id": 78_709_925, "owner_name": "kevinb", "state": 1,
            "source": "git+https://src.fedoraproject.org/rpms/gdb.git#5b7e3a1d9f1c2e4b6a8d0c2e4f6a8b0d2c4e6f80",
        }));
        let _service = stack.spawn(&[]).await;

        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/bus");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("tests/data/bus")
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".json"))
            .collect();
        files.sort();
        // (what, message id)
        let mut sent: Vec<(String, String)> = Vec::new();
        for file in &files {
            let message = stack::message(file);
            sent.push((file.clone(), message["id"].as_str().expect("id").to_owned()));
            stack.publish(&message).await;
        }
        for (name, message) in malformed() {
            sent.push((
                format!("malformed: {name}"),
                message["id"].as_str().expect("id").to_owned(),
            ));
            stack.publish(&message).await;
        }
        support::wait_until(
            Duration::from_secs(60),
            "every message recorded",
            || async {
                let recorded: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM events WHERE message_id = ANY($1)",
                )
                .bind(sent.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>())
                .fetch_one(&pool)
                .await
                .ok()?;
                (recorded == sent.len() as i64).then_some(())
            },
        )
        .await;
        stack.settle(&pool).await;

        let mut outcomes = BTreeMap::new();
        for (what, id) in &sent {
            let (topic, status, reason): (String, String, Option<String>) = sqlx::query_as(
                "SELECT topic, status, reason FROM events WHERE message_id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("the event");
            let malformed = what.starts_with("malformed: ");
            assert_eq!(
                status == "failed",
                malformed,
                "{what}: only a message malformed on purpose fails; it ended {status}: {reason:?}"
            );
            assert!(
                matches!(status.as_str(), "processed" | "skipped" | "failed"),
                "{what}: decided, not {status}"
            );
            // Pipeline ids follow the order two deciders happen to take
            // the messages in; the snapshot keeps what does not vary.
            let reason = reason.map(|r| without_pipeline_ids(&r));
            outcomes.insert(
                what.clone(),
                json!({"topic": topic, "status": status, "reason": reason}),
            );
        }
        insta::assert_json_snapshot!("every_real_message", outcomes);
    })
    .await
    .expect("test timed out");
}

/// `pipeline 12 for ...` as `pipeline [id] for ...`.
fn without_pipeline_ids(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut rest = reason;
    while let Some(at) = rest.find("pipeline ") {
        let (before, after) = rest.split_at(at + "pipeline ".len());
        out.push_str(before);
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("[id]");
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}
