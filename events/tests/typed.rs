//! Every real message of tests/data/bus as a typed event.

use events::typed::{self, Event, PrAction};
use serde_json::{Value, json};

fn load(name: &str) -> events::Envelope {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/bus")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("bus file");
    events::parse_serialized(&text)
        .expect("serialized")
        .into_iter()
        .next()
        .expect("one entry")
        .expect("valid entry")
}

fn parse(name: &str) -> Event {
    let envelope = load(name);
    typed::parse(&envelope.topic, &Value::Object(envelope.body)).expect("parses")
}

#[test]
fn every_real_message_has_the_kind_its_topic_says() {
    let expected = [
        (
            "bodhi.update.status.testing.koji-build-group.build.complete.json",
            "bodhi-update",
        ),
        ("buildsys.build.state.change-building.json", "koji-build"),
        ("buildsys.build.state.change-canceled.json", "koji-build"),
        (
            "buildsys.build.state.change-complete-epel8.json",
            "koji-build",
        ),
        (
            "buildsys.build.state.change-complete-f36.json",
            "koji-build",
        ),
        ("buildsys.build.state.change-complete.json", "koji-build"),
        ("buildsys.tag.json", "koji-tag"),
        (
            "buildsys.task.state.change-closed-scratch.json",
            "koji-task",
        ),
        ("buildsys.task.state.change-open-scratch.json", "koji-task"),
        ("io.pagure.pull-request.new.json", "pagure-io"),
        (
            "legacy-fedmsg-buildsys.build.state.change-building.json",
            "koji-build",
        ),
        (
            "legacy-fedmsg-buildsys.build.state.change-complete.json",
            "koji-build",
        ),
        ("legacy-fedmsg-git.receive.json", "push"),
        ("legacy-fedmsg-io.pagure.pull-request.new.json", "pagure-io"),
        ("pagure.git.receive-branch.json", "push"),
        ("pagure.git.receive-pr.json", "push"),
        (
            "pagure.pull-request.comment.added.json",
            "pull-request-comment",
        ),
        ("pagure.pull-request.flag.updated.json", "pull-request-flag"),
        ("pagure.pull-request.new-fork.json", "pull-request"),
        ("pagure.pull-request.new-same-repo.json", "pull-request"),
        ("pagure.pull-request.rebased.json", "pull-request"),
        ("pagure.pull-request.updated.json", "pull-request"),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/bus");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("data dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    let listed: Vec<&str> = expected.iter().map(|(f, _)| *f).collect();
    assert_eq!(files, listed, "every file of tests/data/bus is listed here");
    for (file, kind) in expected {
        let event = parse(file);
        assert_eq!(event.kind(), kind, "{file}");
        insta::assert_debug_snapshot!(file, event);
    }
}

#[test]
fn fork_pull_request_names_its_source() {
    let Event::PullRequest { action, pr, agent } = parse("pagure.pull-request.new-fork.json")
    else {
        panic!("a pull request");
    };
    assert_eq!(action, PrAction::Opened);
    assert_eq!(agent.as_deref(), Some("zbyszek"));
    assert_eq!(pr.number, 2);
    assert_eq!(pr.target_branch, "rawhide");
    assert_eq!(pr.head.as_str(), "889f07af35d27bbcaf9c535c17a63b974aa42ee3");
    assert_eq!(pr.head.short(), "889f07a");
    assert_eq!(
        pr.project.full_url.as_deref(),
        Some("https://src.fedoraproject.org/rpms/optee_os")
    );
    assert_eq!(
        pr.source.full_url.as_deref(),
        Some("https://src.fedoraproject.org/fork/zbyszek/rpms/optee_os")
    );
    assert_eq!(pr.source.fork_owner.as_deref(), Some("zbyszek"));
    assert_eq!(pr.project.fork_owner, None);
    assert_eq!(pr.last_updated, Some(1_729_687_175));
}

#[test]
fn the_newest_comment_is_the_one_added() {
    let Event::PullRequestComment { comment, pr } = parse("pagure.pull-request.comment.added.json")
    else {
        panic!("a comment");
    };
    assert_eq!(comment.id, 110_401);
    assert_eq!(comment.author, "mmassari");
    assert_eq!(comment.text, "/packit koji-build");
    assert_eq!(pr.number, 36);
}

#[test]
fn topics_lose_their_environment_prefix() {
    assert_eq!(
        typed::short_topic("org.fedoraproject.prod.pagure.pull-request.new"),
        "pagure.pull-request.new"
    );
    assert_eq!(
        typed::short_topic("org.fedoraproject.stg.buildsys.tag"),
        "buildsys.tag"
    );
    assert_eq!(
        typed::short_topic(typed::TOPIC_TF_REQUEST),
        "testing-farm.request"
    );
    assert_eq!(typed::short_topic("something.else"), "something.else");
}

#[test]
fn internal_events_parse() {
    let request: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/data/testing-farm/request-complete.json"),
        )
        .expect("file"),
    )
    .expect("json");
    let Event::TestingFarmRequest(state) =
        typed::parse(typed::TOPIC_TF_REQUEST, &request).expect("parses")
    else {
        panic!("a request");
    };
    assert_eq!(state.request_id, "129bd474-e4d3-49e0-9dec-d994a99feebc");
    assert_eq!(state.state.as_str(), "complete");
    assert_eq!(state.result.map(|r| r.as_str()), Some("passed"));
    assert_eq!(
        typed::parse(
            typed::TOPIC_TF_NOTIFICATION,
            &json!({"request_id": "abc", "source": "testing-farm"})
        ),
        Ok(Event::TestingFarmNotification {
            request_id: "abc".into()
        })
    );
    assert_eq!(
        typed::parse(typed::TOPIC_FACT, &json!({"key": "k", "value": true})),
        Ok(Event::Fact {
            key: "k".into(),
            value: json!(true)
        })
    );
}

#[test]
fn missing_fields_are_named() {
    let error = typed::parse(
        "org.fedoraproject.prod.pagure.pull-request.new",
        &json!({"pullrequest": {"id": 3, "branch": "rawhide"}}),
    )
    .expect_err("no project");
    assert_eq!(
        error.to_string(),
        "pagure.pull-request.new: pullrequest.project is missing or has no name"
    );
    let error = typed::parse(
        "org.fedoraproject.prod.buildsys.task.state.change",
        &json!({"id": 5, "new": "SOMETHING"}),
    )
    .expect_err("bad state");
    assert_eq!(
        error.to_string(),
        "buildsys.task.state.change: new is missing or not a Koji task state"
    );
    assert_eq!(
        typed::parse("org.fedoraproject.prod.fmn.whatever", &json!({})),
        Ok(Event::Unhandled {
            topic: "fmn.whatever".into()
        })
    );
}
