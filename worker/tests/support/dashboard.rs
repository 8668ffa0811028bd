//! What the tests of the endpoints the Packit dashboard reads share
//! (`dashboard_api.rs`, `dashboard_calls.rs`): Packit's fields with the JSON
//! types its code gives them, and ours beside them; GET as the dashboard
//! does; and driving a pull request and a Bodhi update through the real
//! service and its stand-ins, so that every endpoint has something to show.

use std::collections::BTreeSet;
use std::time::Duration;

use events::states::KojiTaskState;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::stack::{self, Stack};
use super::wait_until;

/// Where the Packit dashboard is served from.
pub const DASHBOARD_ORIGIN: &str = "https://dashboard.packit.dev";
pub const HEAD: &str = "889f07af35d27bbcaf9c535c17a63b974aa42ee3";
pub const FORK: &str = "fork/zbyszek/rpms/optee_os";
pub const PROJECT_URL: &str = "https://src.fedoraproject.org/rpms/optee_os";

// ------------------------------------------------ Packit's fields and types

/// A JSON type, as Packit's code can produce it for a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum J {
    Int,
    Str,
    Bool,
    Obj,
    Arr,
    Null,
}

pub fn json_type(value: &Value) -> J {
    match value {
        Value::Null => J::Null,
        Value::Bool(_) => J::Bool,
        Value::Number(n) if n.is_i64() || n.is_u64() => J::Int,
        Value::Number(_) => panic!("{value} is not a whole number: Packit has no floats here"),
        Value::String(_) => J::Str,
        Value::Array(_) => J::Arr,
        Value::Object(_) => J::Obj,
    }
}

pub const INT: &[J] = &[J::Int];
pub const STR: &[J] = &[J::Str];
pub const BOOL: &[J] = &[J::Bool];
pub const OBJ: &[J] = &[J::Obj];
pub const ARR: &[J] = &[J::Arr];
pub const INT_NULL: &[J] = &[J::Int, J::Null];
pub const STR_NULL: &[J] = &[J::Str, J::Null];
pub const BOOL_NULL: &[J] = &[J::Bool, J::Null];
pub const OBJ_NULL: &[J] = &[J::Obj, J::Null];

pub type Fields = &'static [(&'static str, &'static [J])];

/// `get_project_info_from_build` and `get_project_info` in
/// packit_service/service/api/utils.py: the pull request, issue, branch,
/// release and Anitya version of the trigger, and the project.
pub const PROJECT_INFO: Fields = &[
    ("pr_id", INT_NULL),
    ("issue_id", INT_NULL),
    ("branch_name", STR_NULL),
    ("release", STR_NULL),
    ("anitya_version", STR_NULL),
    ("repo_namespace", STR_NULL),
    ("repo_name", STR_NULL),
    ("project_url", STR_NULL),
    ("anitya_project_id", INT_NULL),
    ("anitya_project_name", STR_NULL),
    ("anitya_package", STR_NULL),
    ("non_git_upstream", BOOL),
];

/// `KojiBuildsList.get` in packit_service/service/api/koji_builds.py;
/// `KojiBuildTargetModel` (packit_service/models.py) keeps `task_id` as a
/// String column, `build_logs_urls` as JSON `{"x86_64": url}`, `scratch` as
/// Boolean; times go through `optional_timestamp` (int epoch seconds).
pub const KOJI_BUILD_LIST_ITEM: Fields = &[
    ("packit_id", INT),
    ("task_id", STR_NULL),
    ("scratch", BOOL_NULL),
    ("status", STR),
    ("build_submitted_time", INT_NULL),
    ("chroot", STR),
    ("web_url", STR_NULL),
    ("build_logs_urls", OBJ_NULL),
    ("pr_id", INT_NULL),
    ("branch_name", STR_NULL),
    ("release", STR_NULL),
    ("project_url", STR_NULL),
    ("repo_namespace", STR_NULL),
    ("repo_name", STR_NULL),
];

/// `KojiBuildItem.get` in packit_service/service/api/koji_builds.py, plus
/// the project info.
pub const KOJI_BUILD: Fields = &[
    ("task_id", STR_NULL),
    ("status", STR),
    ("chroot", STR),
    ("scratch", BOOL_NULL),
    ("build_start_time", INT_NULL),
    ("build_finished_time", INT_NULL),
    ("build_submitted_time", INT_NULL),
    ("commit_sha", STR_NULL),
    ("web_url", STR_NULL),
    ("build_logs_urls", OBJ_NULL),
    ("srpm_build_id", INT_NULL),
    ("run_ids", ARR),
    ("build_submission_stdout", STR_NULL),
    ("error_message", STR_NULL),
];

/// `KojiBuildGroup.get` in packit_service/service/api/koji_builds.py, plus
/// the project info.
pub const KOJI_BUILD_GROUP: Fields = &[
    ("submitted_time", INT_NULL),
    ("run_ids", ARR),
    ("build_target_ids", ARR),
];

/// `TestingFarmResults.get` in packit_service/service/api/testing_farm.py;
/// `TFTTestRunTargetModel.pipeline_id` is a String column.
pub const TEST_RUN_LIST_ITEM: Fields = &[
    ("packit_id", INT),
    ("pipeline_id", STR_NULL),
    ("ref", STR_NULL),
    ("status", STR),
    ("target", STR),
    ("web_url", STR_NULL),
    ("pr_id", INT_NULL),
    ("submitted_time", INT_NULL),
    ("repo_namespace", STR_NULL),
    ("repo_name", STR_NULL),
    ("project_url", STR_NULL),
];

/// `TestingFarmResult.get` in packit_service/service/api/testing_farm.py,
/// with `koji_build_ids` beside `copr_build_ids` (the Koji builds of
/// `tf_koji_association_table` in packit_service/models.py, which the
/// dashboard's `TestingFarmRun.tsx` reads), plus the project info.
pub const TEST_RUN: Fields = &[
    ("pipeline_id", STR_NULL),
    ("status", STR),
    ("chroot", STR),
    ("commit_sha", STR_NULL),
    ("web_url", STR_NULL),
    ("copr_build_ids", ARR),
    ("koji_build_ids", ARR),
    ("run_ids", ARR),
    ("submitted_time", INT_NULL),
];

/// `TestingFarmGroup.get` in packit_service/service/api/testing_farm.py,
/// plus the project info.
pub const TEST_RUN_GROUP: Fields = &[
    ("submitted_time", INT_NULL),
    ("run_ids", ARR),
    ("test_target_ids", ARR),
];

/// `process_runs` in packit_service/service/api/runs.py.
pub const RUN_LIST_ITEM: Fields = &[
    ("merged_run_id", INT),
    ("srpm", OBJ_NULL),
    ("copr", ARR),
    ("koji", ARR),
    ("test_run", ARR),
    ("propose_downstream", ARR),
    ("pull_from_upstream", ARR),
    ("bodhi_update", ARR),
    ("vm_image_build", ARR),
    ("time_submitted", INT_NULL),
    ("trigger", OBJ),
];

/// The entries of `koji` and `test_run` in `process_runs`.
pub const RUN_TARGET: Fields = &[("packit_id", INT), ("target", STR), ("status", STR)];

/// `Run.get` in packit_service/service/api/runs.py.
pub const RUN: Fields = &[
    ("run_id", INT),
    ("trigger", OBJ),
    ("srpm_build_id", INT_NULL),
    ("copr_build_group_id", INT_NULL),
    ("koji_build_group_id", INT_NULL),
    ("test_run_group_id", INT_NULL),
    ("bodhi_update_group_id", INT_NULL),
];

/// `ProjectsPRs.get` in packit_service/service/api/projects.py.
pub const PROJECT_PR: Fields = &[
    ("pr_id", INT),
    ("builds", ARR),
    ("koji_builds", ARR),
    ("srpm_builds", ARR),
    ("tests", ARR),
];

/// The `koji_builds` entries of `ProjectsPRs.get`.
pub const PROJECT_PR_KOJI_BUILD: Fields = &[
    ("task_id", STR_NULL),
    ("chroot", STR),
    ("status", STR),
    ("web_url", STR_NULL),
];

/// The `tests` entries of `ProjectsPRs.get`.
pub const PROJECT_PR_TEST: Fields = &[
    ("pipeline_id", STR_NULL),
    ("chroot", STR),
    ("status", STR),
    ("web_url", STR_NULL),
];

// ------------------------------------------- our fields, beside Packit's

/// In `GET /api/koji-builds` and `GET /api/koji-builds/{id}`.
pub const OURS_KOJI_BUILD_LIST_ITEM: Fields = &[("build_id", INT_NULL), ("nvr", STR_NULL)];
pub const OURS_KOJI_BUILD: Fields = &[
    ("build_id", INT_NULL),
    ("nvr", STR_NULL),
    ("updates", ARR),
    ("test_run_ids", ARR),
];
/// In `GET /api/testing-farm/results`.
pub const OURS_TEST_RUN_LIST_ITEM: Fields = &[("test_case", STR_NULL), ("update_alias", STR_NULL)];
/// In `GET /api/testing-farm/{id}`.
pub const OURS_TEST_RUN: Fields = &[
    ("test_case", STR_NULL),
    ("update_alias", STR_NULL),
    ("ci_messages", ARR),
];
/// In every run of `GET /api/runs`, `/api/runs/merged/{id}` and `/api/runs/{id}`.
pub const OURS_RUN: Fields = &[
    ("kind", STR),
    ("pipeline_trigger", STR),
    ("update_alias", STR_NULL),
];
/// The entries of `updates` of a Koji build.
pub const BUILD_UPDATE: Fields = &[("alias", STR), ("url", STR_NULL), ("release", STR_NULL)];
/// The entries of `ci_messages` of a Testing Farm run.
pub const CI_MESSAGE: Fields = &[
    ("message_id", STR),
    ("topic", STR),
    ("state", STR),
    ("created_at", INT),
    ("published_at", INT_NULL),
    ("attempts", INT),
    ("last_error", STR_NULL),
];
/// `GET /api/updates` and `GET /api/updates/{alias}`.
pub const UPDATE: Fields = &[
    ("alias", STR),
    ("url", STR_NULL),
    ("release", STR_NULL),
    ("submitted_time", INT),
    ("updated_time", INT),
    ("builds", ARR),
    ("rounds", ARR),
];
pub const UPDATE_BUILD: Fields = &[
    ("packit_id", INT),
    ("build_id", INT_NULL),
    ("task_id", STR_NULL),
    ("nvr", STR_NULL),
    ("commit_sha", STR_NULL),
    ("project_url", STR_NULL),
];
pub const UPDATE_ROUND: Fields = &[
    ("run_id", INT),
    ("trigger", STR),
    ("koji_build_id", INT_NULL),
    ("nvr", STR_NULL),
    ("release", STR_NULL),
    ("submitted_time", INT),
    ("tests", ARR),
];
pub const UPDATE_TEST: Fields = &[
    ("packit_id", INT),
    ("test_name", STR),
    ("test_case", STR_NULL),
    ("state", STR),
    ("result", STR_NULL),
    ("web_url", STR_NULL),
    ("messages_published", INT),
    ("messages_pending", INT),
];

/// Koji build statuses: `BuildStatus` and the strings the Koji handlers set
/// (packit_service/models.py).
pub const KOJI_STATUSES: &[&str] = &[
    "pending",
    "queued",
    "running",
    "success",
    "failure",
    "canceled",
    "error",
    "retry",
    "waiting_for_srpm",
];

/// `TestingFarmResult` in packit_service/models.py.
pub const TEST_STATUSES: &[&str] = &[
    "new",
    "queued",
    "running",
    "passed",
    "failed",
    "skipped",
    "error",
    "unknown",
    "needs_inspection",
    "retry",
    "complete",
    "canceled",
    "cancel-requested",
];

/// The object has exactly these fields, each of one of its types.
#[track_caller]
pub fn assert_packit_shape(what: &str, object: &Value, fields: &[Fields]) {
    let object = object
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {object}"));
    let expected: BTreeSet<&str> = fields
        .iter()
        .flat_map(|f| f.iter().map(|(name, _)| *name))
        .collect();
    let actual: BTreeSet<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(
        actual, expected,
        "{what}: the fields differ from Packit's (and our extensions)"
    );
    for (name, types) in fields.iter().flat_map(|f| f.iter()) {
        let value = &object[*name];
        assert!(
            types.contains(&json_type(value)),
            "{what}: {name} is {value}, Packit has {types:?}"
        );
    }
}

// ------------------------------------------------------------------ helpers

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn content_range(&self) -> &str {
        self.headers
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn list(&self) -> &Vec<Value> {
        self.body
            .as_array()
            .unwrap_or_else(|| panic!("not a list: {}", self.body))
    }
}

/// GET a path of the API as the dashboard does, from its origin; the body must be JSON.
pub async fn get(stack: &Stack, path: &str) -> Answer {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", stack.api()))
        .header("Origin", DASHBOARD_ORIGIN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("GET {path}: {status} not JSON ({e}): {text}"));
    Answer {
        status,
        headers,
        body,
    }
}

/// A list page: 206 with Packit's Content-Range.
#[track_caller]
pub fn assert_page(answer: &Answer, content_range: &str) {
    assert_eq!(
        answer.status,
        StatusCode::PARTIAL_CONTENT,
        "{}",
        answer.body
    );
    assert_eq!(answer.content_range(), content_range);
    assert_eq!(
        answer
            .headers
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*"),
        "the dashboard reads from another origin"
    );
}

/// The real PR-opened message from a fork, with our head.
pub fn opened() -> Value {
    let mut message = stack::message("pagure.pull-request.new-fork.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    message["body"]["pullrequest"]["commit_stop"] = json!(HEAD);
    message
}

/// Koji's id of the official build of rpms/python-ogr in the real
/// `buildsys.build.state.change` message.
pub const OGR_BUILD: i64 = 1_874_074;

/// What the service knows after a fork pull request of rpms/optee_os went
/// through its scratch build and six tests (one failed), and an official
/// build of rpms/python-ogr was recorded. Whatever else the service holds
/// (an update's gating runs, say) is left alone.
pub struct Flow {
    pub task_id: i64,
    pub request_ids: Vec<String>,
}

pub async fn drive_a_pull_request(stack: &Stack) -> Flow {
    stack.distgit.set_file(FORK, HEAD, ".fmf/version");
    stack
        .publish(&stack::message("buildsys.build.state.change-complete.json"))
        .await;
    let pool = stack.db.pool().await;
    wait_until(
        Duration::from_secs(20),
        "the official build recorded",
        || async {
            let builds: i64 =
                sqlx::query_scalar("SELECT count(*) FROM koji_builds WHERE build_id = $1")
                    .bind(OGR_BUILD)
                    .fetch_one(&pool)
                    .await
                    .ok()?;
            (builds == 1).then_some(())
        },
    )
    .await;
    stack.publish(&opened()).await;
    let submission = wait_until(
        Duration::from_secs(20),
        "a build submitted to Koji",
        || async { stack.koji.submissions().first().cloned() },
    )
    .await;
    let task_id = submission.task_id;
    stack
        .koji
        .set_task_state(task_id, KojiTaskState::Closed, &["x86_64"]);
    stack.publish_koji_task(task_id).await;
    let request_ids: Vec<String> = wait_until(
        Duration::from_secs(20),
        "six Testing Farm requests",
        || async {
            let ids: Vec<String> = sqlx::query_scalar(
                "SELECT t.request_id FROM test_runs t JOIN pipelines p ON p.id = t.pipeline_id
                 WHERE p.kind = 'pull-request' AND t.request_id IS NOT NULL ORDER BY t.id",
            )
            .fetch_all(&pool)
            .await
            .ok()?;
            (ids.len() == 6).then_some(ids)
        },
    )
    .await;
    for (i, id) in request_ids.iter().enumerate() {
        let result = if i == 0 { "failed" } else { "passed" };
        stack
            .testing_farm
            .set_state(id, "complete", Some(result), Some("done"));
    }
    wait_until(Duration::from_secs(20), "the six runs complete", || async {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM test_runs t JOIN pipelines p ON p.id = t.pipeline_id
             WHERE p.kind = 'pull-request' AND t.state = 'complete'
               AND t.artifacts_url IS NOT NULL",
        )
        .fetch_one(&pool)
        .await
        .ok()?;
        (done == 6).then_some(())
    })
    .await;
    Flow {
        task_id,
        request_ids,
    }
}

/// The update of the real Bodhi message, its one build and the commit we
/// give that build.
pub const ALIAS: &str = "FEDORA-2021-53a7dfa185";
pub const GDB_NVR: &str = "gdb-11.1-5.fc34";
pub const GDB_BUILD: i64 = 1_854_854;
pub const GDB_TASK: i64 = 78_709_925;
pub const GDB_SHA: &str = "5b7e3a1d9f1c2e4b6a8d0c2e4f6a8b0d2c4e6f80";

/// Koji's real COMPLETE message, as the official build of the update's gdb.
pub fn gdb_built() -> Value {
    let mut message = stack::message("buildsys.build.state.change-complete.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    let body = &mut message["body"];
    body["build_id"] = json!(GDB_BUILD);
    body["task_id"] = json!(GDB_TASK);
    body["name"] = json!("gdb");
    body["version"] = json!("11.1");
    body["release"] = json!("5.fc34");
    body["owner"] = json!("kevinb");
    body["request"] = json!([
        format!("git+https://src.fedoraproject.org/rpms/gdb.git#{GDB_SHA}"),
        "f34-candidate",
        {}
    ]);
    message
}

/// The real Bodhi message: the update is ready for testing.
pub fn update_ready() -> Value {
    let mut message =
        stack::message("bodhi.update.status.testing.koji-build-group.build.complete.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    message
}

/// The test runs of the update, by test name: (packit_id, request id).
pub type GatingRuns = std::collections::BTreeMap<String, (i64, String)>;

/// What the service knows after gdb's official build was recorded and its
/// update tested: installability passed, rpminspect failed, rpmlint still
/// running (gdb has no tmt plans, so no custom test), and every state's
/// Fedora CI message published. Pull requests' runs, if any, are left alone
/// (they write no CI messages).
pub async fn drive_an_update(stack: &Stack) -> GatingRuns {
    let pool = stack.db.pool().await;
    stack.publish(&gdb_built()).await;
    wait_until(
        Duration::from_secs(20),
        "gdb's official build recorded",
        || async {
            let builds: i64 =
                sqlx::query_scalar("SELECT count(*) FROM koji_builds WHERE build_id = $1")
                    .bind(GDB_BUILD)
                    .fetch_one(&pool)
                    .await
                    .ok()?;
            (builds == 1).then_some(())
        },
    )
    .await;
    stack.publish(&update_ready()).await;
    let runs: GatingRuns = wait_until(
        Duration::from_secs(30),
        "three gating tests accepted by Testing Farm",
        || async {
            let rows: Vec<(String, i64, String)> = sqlx::query_as(
                "SELECT t.test_name, t.id, t.request_id FROM test_runs t
                 JOIN pipelines p ON p.id = t.pipeline_id
                 WHERE p.kind = 'update' AND t.request_id IS NOT NULL",
            )
            .fetch_all(&pool)
            .await
            .ok()?;
            (rows.len() == 3).then(|| {
                rows.into_iter()
                    .map(|(name, id, request)| (name, (id, request)))
                    .collect()
            })
        },
    )
    .await;
    for (test, state, result) in [
        ("installability", "complete", Some("passed")),
        ("rpminspect", "complete", Some("failed")),
        ("rpmlint", "running", None),
    ] {
        let (_, request) = &runs[test];
        stack.testing_farm.set_state(
            request,
            state,
            result,
            result.map(|r| format!("tests {r}")).as_deref(),
        );
    }
    // queued, running and complete for two tests; queued and running for one.
    wait_until(
        Duration::from_secs(60),
        "the tests' eight CI messages published",
        || async {
            let (published, pending): (i64, i64) = sqlx::query_as(
                "SELECT count(*) FILTER (WHERE published_at IS NOT NULL),
                        count(*) FILTER (WHERE published_at IS NULL)
                 FROM outbox",
            )
            .fetch_one(&pool)
            .await
            .ok()?;
            (published == 8 && pending == 0).then_some(())
        },
    )
    .await;
    runs
}
