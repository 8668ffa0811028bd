//! The endpoints the Packit dashboard reads, against the real service
//! process: a fork pull request goes through its scratch build, its tests
//! and their results with the stand-ins, and every endpoint is then compared
//! with what Packit Service answers — the same fields, each of the JSON type
//! Packit's code gives it — with Packit's pagination, `scratch` filter, 404s
//! (and our 400s for bad parameters). Our own fields beside Packit's are
//! listed apart, so that every answer still has all of Packit's.
//!
//! A Bodhi update's gating runs go through the same service: its official
//! build, its rounds and test runs, and their Fedora CI messages show in the
//! same endpoints, and in `/api/updates`.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::dashboard::*;
use support::stack::Stack;

const TIMEOUT: Duration = Duration::from_secs(120);

// -------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_reads_a_pull_request_as_from_packit() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let flow = drive_a_pull_request(&stack).await;

        // Koji builds, newest first: the scratch build, then the official
        // build recorded before it.
        let builds = get(&stack, "/api/koji-builds").await;
        assert_page(&builds, "koji-builds 1-10/*");
        assert_eq!(builds.list().len(), 2, "{}", builds.body);
        for item in builds.list() {
            assert_packit_shape(
                "koji-builds item",
                item,
                &[KOJI_BUILD_LIST_ITEM, OURS_KOJI_BUILD_LIST_ITEM],
            );
            assert!(KOJI_STATUSES.contains(&item["status"].as_str().unwrap_or("")));
        }
        let scratch = &builds.list()[0];
        assert_eq!(scratch["task_id"], flow.task_id.to_string());
        assert_eq!(scratch["scratch"], true);
        assert_eq!(scratch["status"], "success");
        assert_eq!(scratch["chroot"], "rawhide");
        assert_eq!(scratch["pr_id"], 2);
        assert_eq!(scratch["branch_name"], Value::Null);
        assert_eq!(scratch["project_url"], PROJECT_URL);
        assert_eq!(scratch["repo_namespace"], "rpms");
        assert_eq!(scratch["repo_name"], "optee_os");
        assert_eq!(
            scratch["build_id"],
            Value::Null,
            "Koji's build ids are official builds'"
        );
        assert!(
            scratch["web_url"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("/taskinfo?taskID={}", flow.task_id))),
            "{scratch}"
        );
        assert!(
            scratch["build_logs_urls"]["x86_64"].is_string(),
            "{scratch}"
        );
        let official = &builds.list()[1];
        assert_eq!(official["scratch"], false);
        assert_eq!(official["task_id"], "80860894");
        assert_eq!(official["pr_id"], Value::Null);
        assert_eq!(official["repo_name"], "python-ogr");
        assert_eq!(official["build_id"], OGR_BUILD);
        assert!(
            official["nvr"]
                .as_str()
                .is_some_and(|nvr| nvr.starts_with("python-ogr-")),
            "{official}"
        );

        // The scratch filter.
        let only_scratch = get(&stack, "/api/koji-builds?scratch=true").await;
        assert_page(&only_scratch, "koji-builds 1-10/*");
        assert_eq!(only_scratch.list().len(), 1);
        assert_eq!(only_scratch.list()[0]["packit_id"], scratch["packit_id"]);
        let only_official = get(&stack, "/api/koji-builds?scratch=False").await;
        assert_eq!(only_official.list().len(), 1);
        assert_eq!(only_official.list()[0]["packit_id"], official["packit_id"]);

        // One build.
        let build_id = scratch["packit_id"].as_i64().expect("packit_id");
        let build = get(&stack, &format!("/api/koji-builds/{build_id}")).await;
        assert_eq!(build.status, StatusCode::OK);
        assert_packit_shape(
            "koji build",
            &build.body,
            &[KOJI_BUILD, PROJECT_INFO, OURS_KOJI_BUILD],
        );
        assert_eq!(build.body["updates"], json!([]));
        assert_eq!(build.body["commit_sha"], HEAD);
        assert_eq!(build.body["srpm_build_id"], Value::Null);
        assert_eq!(build.body["pr_id"], 2);
        assert_eq!(build.body["non_git_upstream"], false);
        assert!(build.body["build_finished_time"].is_i64());
        let run_ids = build.body["run_ids"].as_array().expect("run_ids").clone();
        assert_eq!(run_ids.len(), 1);
        let run_id = run_ids[0].as_i64().expect("a run id");
        assert_eq!(
            build.body["test_run_ids"].as_array().map(Vec::len),
            Some(6),
            "the six tests of the build: {}",
            build.body
        );

        // Testing Farm runs: six, the first request failed.
        let results = get(&stack, "/api/testing-farm/results").await;
        assert_page(&results, "test-results 1-10/*");
        assert_eq!(results.list().len(), 6);
        let mut statuses = Vec::new();
        for item in results.list() {
            assert_packit_shape(
                "testing-farm result",
                item,
                &[TEST_RUN_LIST_ITEM, OURS_TEST_RUN_LIST_ITEM],
            );
            assert_eq!(item["test_case"], Value::Null, "{item}");
            assert_eq!(item["update_alias"], Value::Null, "{item}");
            let status = item["status"].as_str().unwrap_or("");
            assert!(TEST_STATUSES.contains(&status), "{status}");
            statuses.push(status.to_owned());
            assert!(
                flow.request_ids
                    .iter()
                    .any(|id| item["pipeline_id"] == id.as_str()),
                "pipeline_id is the Testing Farm request id: {item}"
            );
            assert_eq!(item["ref"], HEAD);
            assert_eq!(item["target"], "Fedora-Rawhide");
            assert_eq!(item["pr_id"], 2);
            assert!(
                item["web_url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with(&format!(
                        "/artifacts/{}",
                        item["pipeline_id"].as_str().unwrap_or("")
                    ))),
                "{item}"
            );
        }
        statuses.sort();
        assert_eq!(
            statuses,
            ["failed", "passed", "passed", "passed", "passed", "passed"]
        );

        // One run.
        let test_id = results.list()[0]["packit_id"].as_i64().expect("packit_id");
        let test = get(&stack, &format!("/api/testing-farm/{test_id}")).await;
        assert_eq!(test.status, StatusCode::OK);
        assert_packit_shape(
            "testing-farm run",
            &test.body,
            &[TEST_RUN, PROJECT_INFO, OURS_TEST_RUN],
        );
        assert_eq!(
            test.body["ci_messages"],
            json!([]),
            "pull requests' runs have none"
        );
        assert_eq!(test.body["koji_build_ids"], json!([build_id]));
        assert_eq!(test.body["copr_build_ids"], json!([]));
        assert_eq!(test.body["run_ids"], json!([run_id]));
        assert_eq!(test.body["commit_sha"], HEAD);
        assert_eq!(test.body["chroot"], "Fedora-Rawhide");

        // Runs: the pipeline with its build and tests.
        let runs = get(&stack, "/api/runs").await;
        assert_page(&runs, "runs 1-10/*");
        assert_eq!(runs.list().len(), 1);
        let run = &runs.list()[0];
        assert_packit_shape("run", run, &[RUN_LIST_ITEM, OURS_RUN]);
        assert_eq!(run["kind"], "pull-request");
        assert_eq!(run["pipeline_trigger"], "pull_request");
        assert_eq!(run["update_alias"], Value::Null);
        assert_packit_shape("run trigger", &run["trigger"], &[PROJECT_INFO]);
        assert_eq!(run["merged_run_id"], run_id);
        assert_eq!(run["srpm"], Value::Null);
        assert_eq!(run["koji"].as_array().map(Vec::len), Some(1));
        assert_eq!(run["test_run"].as_array().map(Vec::len), Some(6));
        for target in run["koji"].as_array().into_iter().flatten() {
            assert_packit_shape("run koji entry", target, &[RUN_TARGET]);
            assert_eq!(target["packit_id"], build_id);
            assert_eq!(target["target"], "rawhide");
        }
        for target in run["test_run"].as_array().into_iter().flatten() {
            assert_packit_shape("run test_run entry", target, &[RUN_TARGET]);
        }
        assert_eq!(run["trigger"]["pr_id"], 2);
        let merged = get(&stack, &format!("/api/runs/merged/{run_id}")).await;
        assert_eq!(merged.status, StatusCode::OK);
        assert_eq!(merged.body, *run);

        let one = get(&stack, &format!("/api/runs/{run_id}")).await;
        assert_eq!(one.status, StatusCode::OK);
        assert_packit_shape("run detail", &one.body, &[RUN, OURS_RUN]);
        assert_packit_shape("run detail trigger", &one.body["trigger"], &[PROJECT_INFO]);
        assert_eq!(one.body["run_id"], run_id);
        assert_eq!(one.body["koji_build_group_id"], run_id);
        assert_eq!(one.body["test_run_group_id"], run_id);

        // The groups the run names.
        let koji_group = get(&stack, &format!("/api/koji-builds/groups/{run_id}")).await;
        assert_eq!(koji_group.status, StatusCode::OK);
        assert_packit_shape(
            "koji group",
            &koji_group.body,
            &[KOJI_BUILD_GROUP, PROJECT_INFO],
        );
        assert_eq!(koji_group.body["build_target_ids"], json!([build_id]));
        let test_group = get(&stack, &format!("/api/testing-farm/groups/{run_id}")).await;
        assert_eq!(test_group.status, StatusCode::OK);
        assert_packit_shape(
            "test group",
            &test_group.body,
            &[TEST_RUN_GROUP, PROJECT_INFO],
        );
        assert_eq!(
            test_group.body["test_target_ids"].as_array().map(Vec::len),
            Some(6)
        );

        // The project's pull requests.
        let prs = get(
            &stack,
            "/api/projects/src.fedoraproject.org/rpms/optee_os/prs",
        )
        .await;
        assert_page(&prs, "git-project-prs 1-10/*");
        assert_eq!(prs.list().len(), 1);
        let pr = &prs.list()[0];
        assert_packit_shape("project pr", pr, &[PROJECT_PR]);
        assert_eq!(pr["pr_id"], 2);
        assert_eq!(pr["builds"], json!([]));
        assert_eq!(pr["srpm_builds"], json!([]));
        let koji_builds = pr["koji_builds"].as_array().expect("koji_builds");
        assert_eq!(koji_builds.len(), 1);
        assert_packit_shape(
            "project pr koji build",
            &koji_builds[0],
            &[PROJECT_PR_KOJI_BUILD],
        );
        assert_eq!(koji_builds[0]["task_id"], flow.task_id.to_string());
        assert_eq!(koji_builds[0]["status"], "success");
        let tests = pr["tests"].as_array().expect("tests");
        assert_eq!(tests.len(), 6);
        for test in tests {
            assert_packit_shape("project pr test", test, &[PROJECT_PR_TEST]);
        }

        // Pages of the six runs: Packit's first and last are those of the
        // page asked for, counted from 1.
        let first = get(&stack, "/api/testing-farm/results?page=1&per_page=4").await;
        assert_page(&first, "test-results 1-4/*");
        let second = get(&stack, "/api/testing-farm/results?page=2&per_page=4").await;
        assert_page(&second, "test-results 5-8/*");
        let third = get(&stack, "/api/testing-farm/results?page=3&per_page=4").await;
        assert_page(&third, "test-results 9-12/*");
        assert_eq!(
            (first.list().len(), second.list().len(), third.list().len()),
            (4, 2, 0)
        );
        let paged: BTreeSet<i64> = first
            .list()
            .iter()
            .chain(second.list())
            .filter_map(|t| t["packit_id"].as_i64())
            .collect();
        let all: BTreeSet<i64> = results
            .list()
            .iter()
            .filter_map(|t| t["packit_id"].as_i64())
            .collect();
        assert_eq!(paged, all, "the pages cover the list once");
        let newest_first: Vec<i64> = results
            .list()
            .iter()
            .filter_map(|t| t["packit_id"].as_i64())
            .collect();
        let mut sorted = newest_first.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(newest_first, sorted, "newest first, as Packit orders");
        let builds_page_2 = get(&stack, "/api/koji-builds?page=2&per_page=1").await;
        assert_page(&builds_page_2, "koji-builds 2-2/*");
        assert_eq!(builds_page_2.list()[0]["packit_id"], official["packit_id"]);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_ids_are_404s_and_bad_parameters_400s() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;

        // Nothing yet: empty pages, as Packit answers them.
        let builds = get(&stack, "/api/koji-builds").await;
        assert_page(&builds, "koji-builds 1-10/*");
        assert_eq!(builds.body, json!([]));
        for (path, range) in [
            ("/api/testing-farm/results", "test-results 1-10/*"),
            ("/api/runs?per_page=20&page=3", "runs 41-60/*"),
            ("/api/updates?page=2", "updates 11-20/*"),
        ] {
            let answer = get(&stack, path).await;
            assert_page(&answer, range);
            assert_eq!(answer.body, json!([]), "{path}");
        }
        // Packit answers 200 for a project without pull requests.
        let prs = get(
            &stack,
            "/api/projects/src.fedoraproject.org/rpms/nothing/prs",
        )
        .await;
        assert_eq!(prs.status, StatusCode::OK);
        assert_eq!(prs.content_range(), "git-project-prs 1-10/*");
        assert_eq!(prs.body, json!([]));

        for path in [
            "/api/koji-builds/424242",
            "/api/koji-builds/groups/424242",
            "/api/testing-farm/424242",
            "/api/testing-farm/groups/424242",
            "/api/runs/424242",
            "/api/runs/merged/424242",
            "/api/updates/FEDORA-2021-0000000000",
        ] {
            let answer = get(&stack, path).await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
            assert!(answer.body["error"].is_string(), "{path}: {}", answer.body);
        }

        for (path, parameter) in [
            ("/api/koji-builds?scratch=maybe", "scratch"),
            ("/api/koji-builds?per_page=0", "per_page"),
            ("/api/koji-builds?per_page=101", "per_page"),
            ("/api/testing-farm/results?page=0", "page"),
            ("/api/runs?page=first", "page"),
            ("/api/runs?sort=id", "sort"),
            ("/api/updates?per_page=1000", "per_page"),
            ("/api/updates?release=f34", "release"),
            (
                "/api/projects/src.fedoraproject.org/rpms/optee_os/prs?per_page=x",
                "per_page",
            ),
            ("/api/koji-builds/abc", "id"),
            ("/api/testing-farm/12x", "id"),
            ("/api/runs/merged/-1", "id"),
        ] {
            let answer = get(&stack, path).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
            let error = answer.body["error"].as_str().unwrap_or_default();
            assert!(error.contains(parameter), "{path}: {error}");
        }

        // The OpenAPI document describes every endpoint.
        let openapi = get(&stack, "/api/openapi.json").await;
        let paths = &openapi.body["paths"];
        for path in [
            "/api/koji-builds",
            "/api/koji-builds/{id}",
            "/api/koji-builds/groups/{id}",
            "/api/testing-farm/results",
            "/api/testing-farm/{id}",
            "/api/testing-farm/groups/{id}",
            "/api/runs",
            "/api/runs/{id}",
            "/api/runs/merged/{id}",
            "/api/projects/{forge}/{namespace}/{repo}/prs",
            "/api/updates",
            "/api/updates/{alias}",
        ] {
            assert!(
                paths[path]["get"].is_object(),
                "{path} in the OpenAPI document"
            );
        }
        assert!(
            paths["/api/testing-farm/results"]["post"].is_object(),
            "the webhook shares its path with the list of results"
        );
        let schemas = &openapi.body["components"]["schemas"];
        for schema in [
            "KojiBuildListItem",
            "KojiBuildDetail",
            "TestRunListItem",
            "RunItem",
            "ProjectPullRequest",
            "UpdateItem",
            "CiMessageItem",
        ] {
            assert!(
                schemas[schema].is_object(),
                "{schema} in the OpenAPI document"
            );
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_shows_beside_pull_requests() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let runs = drive_an_update(&stack).await;
        let test_ids: Vec<i64> = runs.values().map(|(id, _)| *id).collect();

        // The official build, with its commit, update and tests.
        let official = get(&stack, "/api/koji-builds?scratch=false").await;
        assert_page(&official, "koji-builds 1-10/*");
        assert_eq!(official.list().len(), 1, "{}", official.body);
        let item = &official.list()[0];
        assert_packit_shape(
            "official koji-builds item",
            item,
            &[KOJI_BUILD_LIST_ITEM, OURS_KOJI_BUILD_LIST_ITEM],
        );
        assert_eq!(item["scratch"], false);
        assert_eq!(item["task_id"], GDB_TASK.to_string());
        assert_eq!(item["build_id"], GDB_BUILD);
        assert_eq!(item["nvr"], GDB_NVR);
        assert_eq!(item["repo_name"], "gdb");
        let build_id = item["packit_id"].as_i64().expect("packit_id");
        let build = get(&stack, &format!("/api/koji-builds/{build_id}")).await;
        assert_eq!(build.status, StatusCode::OK);
        assert_packit_shape(
            "official koji build",
            &build.body,
            &[KOJI_BUILD, PROJECT_INFO, OURS_KOJI_BUILD],
        );
        assert_eq!(build.body["commit_sha"], GDB_SHA);
        assert_eq!(build.body["nvr"], GDB_NVR);
        assert_eq!(build.body["build_id"], GDB_BUILD);
        assert_eq!(build.body["pr_id"], Value::Null);
        assert_eq!(
            build.body["updates"],
            json!([{
                "alias": ALIAS,
                "url": format!("https://bodhi.fedoraproject.org/updates/{ALIAS}"),
                "release": "f34",
            }])
        );
        for update in build.body["updates"].as_array().into_iter().flatten() {
            assert_packit_shape("a build's update", update, &[BUILD_UPDATE]);
        }
        assert_eq!(build.body["test_run_ids"], json!(test_ids));
        let run_ids = build.body["run_ids"].as_array().expect("run_ids").clone();
        assert_eq!(run_ids.len(), 1, "one round of testing: {}", build.body);
        let run_id = run_ids[0].as_i64().expect("a run id");

        // The gating runs among the Testing Farm runs.
        let results = get(&stack, "/api/testing-farm/results").await;
        assert_page(&results, "test-results 1-10/*");
        assert_eq!(results.list().len(), 3);
        for item in results.list() {
            assert_packit_shape(
                "gating testing-farm result",
                item,
                &[TEST_RUN_LIST_ITEM, OURS_TEST_RUN_LIST_ITEM],
            );
            assert!(TEST_STATUSES.contains(&item["status"].as_str().unwrap_or("")));
            assert_eq!(item["update_alias"], ALIAS);
            assert_eq!(item["pr_id"], Value::Null);
            assert_eq!(item["ref"], GDB_SHA);
            assert_eq!(item["target"], "Fedora-34");
            assert_eq!(item["repo_name"], "gdb");
            assert!(
                item["test_case"]
                    .as_str()
                    .is_some_and(|case| case.starts_with("fedora-ci.koji-build.")),
                "{item}"
            );
        }

        // One run with its CI messages, in order, all published.
        let (installability, _) = runs["installability"];
        let test = get(&stack, &format!("/api/testing-farm/{installability}")).await;
        assert_eq!(test.status, StatusCode::OK);
        assert_packit_shape(
            "gating testing-farm run",
            &test.body,
            &[TEST_RUN, PROJECT_INFO, OURS_TEST_RUN],
        );
        assert_eq!(test.body["status"], "passed");
        assert_eq!(
            test.body["test_case"],
            "fedora-ci.koji-build.installability.functional"
        );
        assert_eq!(test.body["update_alias"], ALIAS);
        assert_eq!(test.body["koji_build_ids"], json!([build_id]));
        assert_eq!(test.body["run_ids"], json!([run_id]));
        let messages = test.body["ci_messages"].as_array().expect("ci_messages");
        let states: Vec<&str> = messages
            .iter()
            .filter_map(|m| m["state"].as_str())
            .collect();
        assert_eq!(states, ["queued", "running", "complete"]);
        for message in messages {
            assert_packit_shape("ci message", message, &[CI_MESSAGE]);
            assert_eq!(
                message["topic"],
                format!(
                    "org.centos.prod.ci.koji-build.test.{}",
                    message["state"].as_str().unwrap_or("")
                )
            );
            assert!(
                message["message_id"]
                    .as_str()
                    .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()),
                "{message}"
            );
            assert!(message["published_at"].is_i64(), "published: {message}");
            assert!(message["attempts"].as_i64().unwrap_or(0) >= 1, "{message}");
            assert_eq!(message["last_error"], Value::Null);
        }

        // The round is a run, with the official build and the three tests.
        let runs_list = get(&stack, "/api/runs").await;
        assert_page(&runs_list, "runs 1-10/*");
        assert_eq!(runs_list.list().len(), 1);
        let run = &runs_list.list()[0];
        assert_packit_shape("update run", run, &[RUN_LIST_ITEM, OURS_RUN]);
        assert_packit_shape("update run trigger", &run["trigger"], &[PROJECT_INFO]);
        assert_eq!(run["merged_run_id"], run_id);
        assert_eq!(run["kind"], "update");
        assert_eq!(run["pipeline_trigger"], "bodhi-update");
        assert_eq!(run["update_alias"], ALIAS);
        assert_eq!(run["trigger"]["pr_id"], Value::Null);
        assert_eq!(
            run["trigger"]["project_url"],
            "https://src.fedoraproject.org/rpms/gdb"
        );
        assert_eq!(
            run["koji"],
            json!([{"packit_id": build_id, "target": "f34-candidate", "status": "success"}])
        );
        assert_eq!(run["test_run"].as_array().map(Vec::len), Some(3));
        let one = get(&stack, &format!("/api/runs/{run_id}")).await;
        assert_eq!(one.status, StatusCode::OK);
        assert_packit_shape("update run detail", &one.body, &[RUN, OURS_RUN]);
        assert_eq!(one.body["pipeline_trigger"], "bodhi-update");
        assert_eq!(one.body["koji_build_group_id"], run_id);
        assert_eq!(one.body["test_run_group_id"], run_id);
        let koji_group = get(&stack, &format!("/api/koji-builds/groups/{run_id}")).await;
        assert_eq!(koji_group.status, StatusCode::OK);
        assert_eq!(koji_group.body["build_target_ids"], json!([build_id]));

        // The update, with its build and its round.
        let updates = get(&stack, "/api/updates").await;
        assert_page(&updates, "updates 1-10/*");
        assert_eq!(updates.list().len(), 1, "{}", updates.body);
        let update = &updates.list()[0];
        assert_packit_shape("update", update, &[UPDATE]);
        assert_eq!(update["alias"], ALIAS);
        assert_eq!(update["release"], "f34");
        assert_eq!(
            update["builds"],
            json!([{
                "packit_id": build_id, "build_id": GDB_BUILD, "task_id": GDB_TASK.to_string(),
                "nvr": GDB_NVR, "commit_sha": GDB_SHA,
                "project_url": "https://src.fedoraproject.org/rpms/gdb",
            }])
        );
        for build in update["builds"].as_array().into_iter().flatten() {
            assert_packit_shape("update build", build, &[UPDATE_BUILD]);
        }
        let rounds = update["rounds"].as_array().expect("rounds");
        assert_eq!(rounds.len(), 1);
        let round = &rounds[0];
        assert_packit_shape("update round", round, &[UPDATE_ROUND]);
        assert_eq!(round["run_id"], run_id);
        assert_eq!(round["trigger"], "bodhi-update");
        assert_eq!(round["koji_build_id"], build_id);
        assert_eq!(round["nvr"], GDB_NVR);
        assert_eq!(round["release"], "f34");
        let tests = round["tests"].as_array().expect("tests");
        let shown: Vec<(String, String, Value, i64, i64)> = tests
            .iter()
            .map(|t| {
                assert_packit_shape("update test", t, &[UPDATE_TEST]);
                (
                    t["test_name"].as_str().unwrap_or_default().to_owned(),
                    t["state"].as_str().unwrap_or_default().to_owned(),
                    t["result"].clone(),
                    t["messages_published"].as_i64().unwrap_or(-1),
                    t["messages_pending"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "installability".into(),
                    "complete".into(),
                    json!("passed"),
                    3,
                    0
                ),
                (
                    "rpminspect".into(),
                    "complete".into(),
                    json!("failed"),
                    3,
                    0
                ),
                ("rpmlint".into(), "running".into(), Value::Null, 2, 0),
            ]
        );
        for t in tests {
            let request = &runs[t["test_name"].as_str().unwrap_or_default()].1;
            assert!(
                t["web_url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with(&format!("/artifacts/{request}"))),
                "{t}"
            );
        }
        let one = get(&stack, &format!("/api/updates/{ALIAS}")).await;
        assert_eq!(one.status, StatusCode::OK);
        assert_eq!(one.body, *update);
        assert_eq!(
            one.headers
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok()),
            Some("*")
        );
        let unknown = get(&stack, "/api/updates/FEDORA-2021-unknown").await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert!(
            unknown.body["error"]
                .as_str()
                .is_some_and(|e| e.contains("FEDORA-2021-unknown")),
            "{}",
            unknown.body
        );
    })
    .await
    .expect("test timed out");
}
