//! Every real message of tests/data/bus, decided on an empty database: the
//! decisions and jobs are snapshot-tested, and where nothing is done, the
//! recorded reason is asserted.

mod support;

use serde_json::json;

/// (file, expected status, a phrase the reason must hold)
const CASES: &[(&str, &str, &str)] = &[
    (
        "bodhi.update.status.testing.koji-build-group.build.complete.json",
        "processed",
        "gdb-11.1-5.fc34: waiting to know which task and commit Koji build 1854854 was built by",
    ),
    (
        "buildsys.build.state.change-building.json",
        "skipped",
        "only COMPLETE official builds are recorded",
    ),
    (
        "buildsys.build.state.change-canceled.json",
        "skipped",
        "only COMPLETE official builds are recorded",
    ),
    (
        "buildsys.build.state.change-complete-epel8.json",
        "processed",
        "official build 1874072",
    ),
    (
        "buildsys.build.state.change-complete-f36.json",
        "processed",
        "official build 1874070",
    ),
    (
        "buildsys.build.state.change-complete.json",
        "processed",
        "official build 1874074",
    ),
    (
        "buildsys.tag.json",
        "skipped",
        "tags do not start Fedora CI",
    ),
    (
        "buildsys.task.state.change-closed-scratch.json",
        "skipped",
        "not a build this service submitted",
    ),
    (
        "buildsys.task.state.change-open-scratch.json",
        "skipped",
        "not a build this service submitted",
    ),
    // pagure.io's own bus: upstream projects, never dist-git ones.
    (
        "io.pagure.pull-request.new.json",
        "skipped",
        "a message of pagure.io about its project fedora-docs/quick-docs",
    ),
    (
        "legacy-fedmsg-buildsys.build.state.change-building.json",
        "skipped",
        "only COMPLETE official builds are recorded",
    ),
    (
        "legacy-fedmsg-buildsys.build.state.change-complete.json",
        "processed",
        "official build 1864700",
    ),
    (
        "legacy-fedmsg-git.receive.json",
        "skipped",
        "a push starts no CI",
    ),
    (
        "legacy-fedmsg-io.pagure.pull-request.new.json",
        "skipped",
        "a message of pagure.io about its project pungi-fedora",
    ),
    (
        "pagure.git.receive-branch.json",
        "skipped",
        "a push starts no CI",
    ),
    (
        "pagure.git.receive-pr.json",
        "skipped",
        "a push starts no CI",
    ),
    (
        "pagure.pull-request.comment.added.json",
        "skipped",
        "not a command",
    ),
    (
        "pagure.pull-request.flag.updated.json",
        "skipped",
        "flags are recorded, not acted on",
    ),
    (
        "pagure.pull-request.new-fork.json",
        "processed",
        "submitting git+https://src.fedoraproject.org/forks/zbyszek/rpms/optee_os.git#889f07af35d27bbcaf9c535c17a63b974aa42ee3 to Koji target rawhide",
    ),
    // A pagure.io project in the same bus stream: not ours.
    (
        "pagure.pull-request.new-same-repo.json",
        "skipped",
        "not on dist-git",
    ),
    (
        "pagure.pull-request.rebased.json",
        "processed",
        "to Koji target",
    ),
    (
        "pagure.pull-request.updated.json",
        "processed",
        "to Koji target",
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn every_real_message_is_decided_with_a_reason() {
    let ctx = support::context();
    let mut files: Vec<String> = std::fs::read_dir(support::data_dir().join("bus"))
        .expect("data dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        CASES.iter().map(|c| c.0).collect::<Vec<_>>(),
        "every file of tests/data/bus has a case here"
    );
    for (file, status, phrase) in CASES {
        let pool = support::fresh_db().await;
        let event = support::record(&pool, &support::message(file)).await;
        support::decide_all(&pool, &ctx).await;
        let outcome = support::outcome(&pool, event).await;
        assert_eq!(outcome["status"], *status, "{file}: {outcome:#}");
        let reason = outcome["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(phrase),
            "{file}: the reason {reason:?} should say {phrase:?}"
        );
        let jobs = support::jobs_of_event(&pool, event).await;
        if *status == "skipped" {
            assert!(
                jobs.is_empty(),
                "{file}: nothing is done, yet jobs were made: {jobs:#?}"
            );
        }
        insta::assert_json_snapshot!(
            file.trim_end_matches(".json"),
            json!({"outcome": outcome, "jobs": jobs})
        );
        pool.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deciding_the_same_event_twice_creates_nothing_new() {
    let ctx = support::context();
    let pool = support::fresh_db().await;
    for file in [
        "pagure.pull-request.new-fork.json",
        "buildsys.build.state.change-complete.json",
        "pagure.git.receive-branch.json",
    ] {
        let event = support::record(&pool, &support::message(file)).await;
        support::decide_all(&pool, &ctx).await;
        let jobs = support::all_jobs(&pool).await;
        sqlx::query("UPDATE events SET status = 'received' WHERE id = $1")
            .bind(event)
            .execute(&pool)
            .await
            .expect("reset");
        support::decide_all(&pool, &ctx).await;
        assert_eq!(support::all_jobs(&pool).await, jobs, "{file}: no new jobs");
        let outcome = support::outcome(&pool, event).await;
        assert_ne!(
            outcome["status"], "failed",
            "{file}, decided again: {outcome:#}"
        );
    }
}
