//! Every API call the Packit dashboard makes (packit/dashboard, read at
//! e573903: `frontend/src/queries/**` and `frontend/src/components/usage/*`),
//! made as the dashboard makes it — the same path and query parameters, from
//! the dashboard's origin — against the real service, after a pull request,
//! a Bodhi update and a push to a branch went through it with the stand-ins.
//! Each answer is checked for its status, the CORS header the browser needs,
//! and the fields with the JSON types that Packit Service's code gives them
//! (`packit_service/service/api/*.py`), which is what the dashboard's types
//! in `frontend/src/apiDefinitions.ts` describe and its pages read. Each call
//! names the dashboard file it comes from.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::dashboard::*;
use support::stack::{self, Stack};
use support::wait_until;

const TIMEOUT: Duration = Duration::from_secs(240);

/// The projects the service knows after the flows: the pull request's, the
/// update's (pushed to), and the official build's.
const OPTEE: &str = "https://src.fedoraproject.org/rpms/optee_os";
const GDB: &str = "https://src.fedoraproject.org/rpms/gdb";
const OGR: &str = "https://src.fedoraproject.org/rpms/python-ogr";

// ------------------------------------ Packit's fields of the newer endpoints

/// `project_info` of `ProjectsList`, `ProjectsForge`, `ProjectsNamespace`
/// and `ProjectInfo` in packit_service/service/api/projects.py (the
/// dashboard's `Project`).
const PROJECT: Fields = &[
    ("namespace", STR),
    ("repo_name", STR),
    ("project_url", STR),
    ("prs_handled", INT),
    ("branches_handled", INT),
    ("releases_handled", INT),
    ("issues_handled", INT),
];

/// `branch_info` of `ProjectBranches` in projects.py (the dashboard's
/// `ProjectBranch`); its `koji_builds` and `tests` entries are those of
/// `ProjectsPRs`.
const PROJECT_BRANCH: Fields = &[
    ("branch", STR),
    ("builds", ARR),
    ("koji_builds", ARR),
    ("srpm_builds", ARR),
    ("tests", ARR),
];

/// Packit's kinds of project event (`ProjectEventModelType` in
/// packit_service/models.py), and our `bodhi_update`.
const EVENT_KINDS: &[&str] = &[
    "anitya_multiple_versions",
    "anitya_version",
    "bodhi_update",
    "branch_push",
    "issue",
    "koji_build_tag",
    "pull_request",
    "release",
];

/// The job tables of `get_usage_data` in packit_service/models.py.
const JOBS: &[&str] = &[
    "copr_build_groups",
    "koji_build_groups",
    "log_detective_run_groups",
    "srpm_builds",
    "sync_release_runs",
    "tft_test_run_groups",
    "vm_image_build_targets",
];

/// `get_past_usage_data` in packit_service/service/tasks.py, with
/// `all_projects` and `events` of `get_usage_data` (the dashboard's
/// `UsageListData` declares both).
const USAGE: Fields = &[
    ("all_projects", OBJ),
    ("active_projects", OBJ),
    ("events", OBJ),
    ("jobs", OBJ),
    ("onboarded_projects_q1_2024", INT),
];
const USAGE_ALL_PROJECTS: Fields = &[("project_count", INT), ("instances", OBJ)];
const USAGE_ACTIVE_PROJECTS: Fields = &[
    ("project_count", INT),
    ("top_projects_by_events_handled", OBJ),
    ("instances", OBJ),
];
const USAGE_EVENT: Fields = &[("events_handled", INT), ("top_projects", OBJ)];
const USAGE_JOB: Fields = &[
    ("job_runs", INT),
    ("top_projects_by_job_runs", OBJ),
    ("active_projects", INT),
];

/// `get_usage_interval_data` in packit_service/service/tasks.py, which
/// `UsageInterval.tsx` reads.
const INTERVALS: Fields = &[
    ("jobs", OBJ),
    ("jobs_project_count", OBJ),
    ("jobs_project_cumulative_count", OBJ),
    ("events", OBJ),
    ("from", STR),
    ("to", STR),
    ("active_projects", ARR),
    ("active_projects_cumulative", ARR),
    ("onboarded_projects", ARR),
    ("onboarded_projects_per_job", OBJ),
];
/// A point of a chart: `{"x": legend, "y": value}`.
const POINT: Fields = &[("x", STR), ("y", INT)];

// ------------------------------------------------------------- the calls

/// What a call must be answered with.
enum Expect {
    /// A page of a list: its status (`206`, or `200` for an empty page of a
    /// project list), Packit's `Content-Range`, how many entries, and the
    /// fields of each, with those of the objects in some of its fields.
    Page {
        status: StatusCode,
        range: &'static str,
        entries: usize,
        fields: &'static [Fields],
        nested: &'static [(&'static str, &'static [Fields])],
    },
    /// One object with these fields, and those of the objects in some of them.
    Object {
        fields: &'static [Fields],
        nested: &'static [(&'static str, &'static [Fields])],
    },
    /// `404` with `{"error": "..."}`, which the dashboard shows as not found.
    NotFound,
    /// The usage of a period.
    Usage,
    /// The usage per interval, of so many intervals.
    Intervals(usize),
}

struct Call {
    /// Path and query, as the dashboard asks them.
    path: String,
    /// Where in packit/dashboard's `frontend/src` the call is made.
    source: &'static str,
    expect: Expect,
}

fn call(path: impl Into<String>, source: &'static str, expect: Expect) -> Call {
    Call {
        path: path.into(),
        source,
        expect,
    }
}

fn page(
    status: StatusCode,
    range: &'static str,
    entries: usize,
    fields: &'static [Fields],
    nested: &'static [(&'static str, &'static [Fields])],
) -> Expect {
    Expect::Page {
        status,
        range,
        entries,
        fields,
        nested,
    }
}

/// An empty page of a Packit feature Fedora CI does not have: 206 and `[]`.
fn none(range: &'static str) -> Expect {
    page(StatusCode::PARTIAL_CONTENT, range, 0, &[], &[])
}

const PR_NESTED: &[(&str, &[Fields])] = &[
    ("koji_builds", &[PROJECT_PR_KOJI_BUILD]),
    ("tests", &[PROJECT_PR_TEST]),
];
const RUN_NESTED: &[(&str, &[Fields])] = &[
    ("trigger", &[PROJECT_INFO]),
    ("koji", &[RUN_TARGET]),
    ("test_run", &[RUN_TARGET]),
];

/// Every call of the dashboard, with the ids of what the flows made.
fn the_dashboards_calls(ids: &Ids) -> Vec<Call> {
    use StatusCode as S;
    let project = "/api/projects/src.fedoraproject.org/rpms";
    vec![
        // Projects (components/projects/Projects.tsx, Forge.tsx, Namespace.tsx,
        // ProjectForgeLink.tsx, ProjectDetail.tsx's tabs).
        call(
            "/api/projects?page=1&per_page=10",
            "queries/project/projects.ts (components/projects/ProjectsList.tsx)",
            page(
                S::PARTIAL_CONTENT,
                "git-projects 1-10/*",
                3,
                &[PROJECT],
                &[],
            ),
        ),
        call(
            "/api/projects?page=2&per_page=10",
            "queries/project/projects.ts (components/projects/ProjectsList.tsx, next page)",
            page(S::OK, "git-projects 11-20/*", 0, &[PROJECT], &[]),
        ),
        call(
            "/api/projects/src.fedoraproject.org?page=1&per_page=10",
            "queries/project/projects.ts (components/projects/Forge.tsx)",
            page(
                S::PARTIAL_CONTENT,
                "git-projects 1-10/*",
                3,
                &[PROJECT],
                &[],
            ),
        ),
        call(
            "/api/projects/src.fedoraproject.org/rpms?page=1&per_page=10",
            "queries/project/projects.ts (components/projects/Namespace.tsx)",
            page(
                S::PARTIAL_CONTENT,
                "git-projects 1-10/*",
                3,
                &[PROJECT],
                &[],
            ),
        ),
        call(
            format!("{project}/optee_os"),
            "queries/project/project.ts (components/projects/ProjectForgeLink.tsx)",
            Expect::Object {
                fields: &[PROJECT],
                nested: &[],
            },
        ),
        call(
            format!("{project}/gdb"),
            "queries/project/project.ts (components/projects/ProjectForgeLink.tsx)",
            Expect::Object {
                fields: &[PROJECT],
                nested: &[],
            },
        ),
        call(
            format!("{project}/no-such-package"),
            "queries/project/project.ts (components/projects/ProjectForgeLink.tsx)",
            Expect::NotFound,
        ),
        call(
            format!("{project}/optee_os/prs"),
            "queries/project/projectPRs.ts (components/projects/PullRequestList.tsx)",
            page(
                S::PARTIAL_CONTENT,
                "git-project-prs 1-10/*",
                1,
                &[PROJECT_PR],
                PR_NESTED,
            ),
        ),
        call(
            format!("{project}/gdb/prs"),
            "queries/project/projectPRs.ts (components/projects/PullRequestList.tsx)",
            page(S::OK, "git-project-prs 1-10/*", 0, &[PROJECT_PR], &[]),
        ),
        call(
            format!("{project}/gdb/branches"),
            "queries/project/projectBranches.ts (components/projects/BranchList.tsx)",
            page(
                S::PARTIAL_CONTENT,
                "git-project-branches 1-10/*",
                1,
                &[PROJECT_BRANCH],
                PR_NESTED,
            ),
        ),
        call(
            format!("{project}/optee_os/branches"),
            "queries/project/projectBranches.ts (components/projects/BranchList.tsx)",
            page(
                S::OK,
                "git-project-branches 1-10/*",
                0,
                &[PROJECT_BRANCH],
                &[],
            ),
        ),
        call(
            format!("{project}/optee_os/releases"),
            "queries/project/projectReleases.ts (components/projects/ReleasesList.tsx)",
            page(S::OK, "git-project-releases 1-10/*", 0, &[], &[]),
        ),
        call(
            format!("{project}/optee_os/issues"),
            "queries/project/projectIssues.ts (components/projects/IssuesList.tsx)",
            page(S::OK, "git-project-issues 1-10/*", 0, &[], &[]),
        ),
        // Usage (components/usage/Usage.tsx's tabs).
        call(
            "/api/usage/past-day",
            "components/usage/UsageList.tsx",
            Expect::Usage,
        ),
        call(
            "/api/usage/past-week",
            "components/usage/UsageList.tsx",
            Expect::Usage,
        ),
        call(
            "/api/usage/past-month",
            "components/usage/UsageList.tsx",
            Expect::Usage,
        ),
        call(
            "/api/usage/past-year",
            "components/usage/UsageList.tsx",
            Expect::Usage,
        ),
        call(
            "/api/usage/total",
            "components/usage/UsageList.tsx",
            Expect::Usage,
        ),
        call(
            "/api/usage/intervals?days=0&hours=1&count=24",
            "components/usage/UsageInterval.tsx",
            Expect::Intervals(24),
        ),
        call(
            "/api/usage/intervals?days=1&hours=0&count=7",
            "components/usage/UsageInterval.tsx",
            Expect::Intervals(7),
        ),
        call(
            "/api/usage/intervals?days=1&hours=0&count=30",
            "components/usage/UsageInterval.tsx",
            Expect::Intervals(30),
        ),
        call(
            "/api/usage/intervals?days=7&hours=0&count=52",
            "components/usage/UsageInterval.tsx",
            Expect::Intervals(52),
        ),
        // Koji builds (routes/jobs/koji.tsx, koji-downstream.tsx; KojiBuild.tsx,
        // testing-farm/KojiDataListItem.tsx).
        call(
            "/api/koji-builds?page=1&per_page=10&scratch=true",
            "queries/koji/kojiBuilds.ts (components/koji/KojiBuildsTable.tsx)",
            page(
                S::PARTIAL_CONTENT,
                "koji-builds 1-10/*",
                1,
                &[KOJI_BUILD_LIST_ITEM, OURS_KOJI_BUILD_LIST_ITEM],
                &[],
            ),
        ),
        call(
            "/api/koji-builds?page=1&per_page=10&scratch=false",
            "queries/koji/kojiBuilds.ts (components/koji/KojiBuildsTable.tsx)",
            page(
                S::PARTIAL_CONTENT,
                "koji-builds 1-10/*",
                2,
                &[KOJI_BUILD_LIST_ITEM, OURS_KOJI_BUILD_LIST_ITEM],
                &[],
            ),
        ),
        call(
            format!("/api/koji-builds/{}", ids.scratch_build),
            "queries/koji/kojiBuild.ts (components/koji/KojiBuild.tsx)",
            Expect::Object {
                fields: &[KOJI_BUILD, PROJECT_INFO, OURS_KOJI_BUILD],
                nested: &[],
            },
        ),
        call(
            format!("/api/koji-builds/{}", ids.official_build),
            "queries/koji/kojiBuild.ts (components/testing-farm/KojiDataListItem.tsx)",
            Expect::Object {
                fields: &[KOJI_BUILD, PROJECT_INFO, OURS_KOJI_BUILD],
                nested: &[],
            },
        ),
        // Testing Farm runs (routes/jobs/testing-farm.tsx, TestingFarmRun.tsx).
        call(
            "/api/testing-farm/results?page=1&per_page=10",
            "queries/testingFarm/testingFarmRuns.ts (components/testing-farm/TestingFarmRunsTable.tsx)",
            page(
                S::PARTIAL_CONTENT,
                "test-results 1-10/*",
                9,
                &[TEST_RUN_LIST_ITEM, OURS_TEST_RUN_LIST_ITEM],
                &[],
            ),
        ),
        call(
            format!("/api/testing-farm/{}", ids.pr_test_run),
            "queries/testingFarm/testingFarmRun.ts (components/testing-farm/TestingFarmRun.tsx)",
            Expect::Object {
                fields: &[TEST_RUN, PROJECT_INFO, OURS_TEST_RUN],
                nested: &[],
            },
        ),
        call(
            format!("/api/testing-farm/{}", ids.gating_test_run),
            "queries/testingFarm/testingFarmRun.ts (components/testing-farm/TestingFarmRun.tsx)",
            Expect::Object {
                fields: &[TEST_RUN, PROJECT_INFO, OURS_TEST_RUN],
                nested: &[("ci_messages", &[CI_MESSAGE])],
            },
        ),
        // Pipelines (routes/pipelines.tsx, pipeline_.$id.tsx).
        call(
            "/api/runs?page=1&per_page=10",
            "queries/pipeline/pipelines.ts (components/pipeline/PipelinesTable.tsx)",
            page(
                S::PARTIAL_CONTENT,
                "runs 1-10/*",
                2,
                &[RUN_LIST_ITEM, OURS_RUN],
                RUN_NESTED,
            ),
        ),
        call(
            format!("/api/runs/merged/{}", ids.pr_pipeline),
            "queries/pipeline/pipeline.ts (components/pipeline/Pipeline.tsx)",
            Expect::Object {
                fields: &[RUN_LIST_ITEM, OURS_RUN],
                nested: RUN_NESTED,
            },
        ),
        call(
            format!("/api/runs/merged/{}", ids.update_pipeline),
            "queries/pipeline/pipeline.ts (components/pipeline/Pipeline.tsx)",
            Expect::Object {
                fields: &[RUN_LIST_ITEM, OURS_RUN],
                nested: RUN_NESTED,
            },
        ),
        // Packit's features that Fedora CI does not have: empty, and not found.
        call(
            "/api/copr-builds?page=1&per_page=10",
            "queries/copr/coprBuilds.ts (components/copr/CoprBuildsTable.tsx)",
            none("copr-builds 1-10/*"),
        ),
        call(
            "/api/copr-builds/1",
            "queries/copr/coprBuild.ts (components/copr/CoprBuild.tsx, testing-farm/CoprDataListItem.tsx)",
            Expect::NotFound,
        ),
        call(
            "/api/srpm-builds?page=1&per_page=10",
            "queries/srpm/srpmBuilds.ts (components/srpm/SRPMBuildsTable.tsx)",
            none("srpm-builds 1-10/*"),
        ),
        call(
            "/api/srpm-builds/1",
            "queries/srpm/srpmBuild.ts (components/srpm/SRPMBuild.tsx)",
            Expect::NotFound,
        ),
        call(
            "/api/koji-tag-requests?page=1&per_page=10",
            "queries/koji/kojiTagRequests.ts (components/koji/KojiTagRequestsTable.tsx)",
            none("koji-tag-requests 1-10/*"),
        ),
        call(
            "/api/koji-tag-requests/1",
            "queries/koji/kojiTagRequest.ts (components/koji/KojiTagRequest.tsx)",
            Expect::NotFound,
        ),
        call(
            "/api/bodhi-updates?page=1&per_page=10",
            "queries/bodhi/bodhiUpdates.ts (components/bodhi/BodhiUpdatesTable.tsx)",
            none("bodhi-updates 1-10/*"),
        ),
        call(
            "/api/bodhi-updates/1",
            "queries/bodhi/bodhiUpdate.ts (components/bodhi/BodhiUpdate.tsx)",
            Expect::NotFound,
        ),
        call(
            "/api/log-detective?page=1&per_page=10",
            "queries/logdetective/logDetectiveResults.ts (components/logdetective/LogDetectiveResultsTable.tsx)",
            none("log-detective-results 1-10/*"),
        ),
        call(
            "/api/log-detective/1",
            "queries/logdetective/logDetectiveResult.ts (components/logdetective/LogDetectiveResult.tsx)",
            Expect::NotFound,
        ),
        call(
            "/api/log-detective/groups/1",
            "queries/logdetective/logDetectiveGroup.ts (components/logdetective/LogDetectiveGroup.tsx)",
            Expect::NotFound,
        ),
        call(
            "/api/openscanhub-scans?page=1&per_page=10",
            "queries/osh/oshScans.ts (components/osh/OSHScansTable.tsx)",
            none("openscanhub-scans 1-10/*"),
        ),
        call(
            "/api/openscanhub-scans/1",
            "queries/osh/oshScan.ts (components/osh/OSHScan.tsx)",
            Expect::NotFound,
        ),
        call(
            "/api/propose-downstream?page=1&per_page=10",
            "queries/sync-release/syncReleases.ts (components/sync-release/SyncReleasesTable.tsx)",
            none("propose-downstreams 1-10/*"),
        ),
        call(
            "/api/propose-downstream/1",
            "queries/sync-release/syncRelease.ts (routes/jobs_/propose-downstream.$id.tsx)",
            Expect::NotFound,
        ),
        call(
            "/api/pull-from-upstream?page=1&per_page=10",
            "queries/sync-release/syncReleases.ts (components/sync-release/SyncReleasesTable.tsx)",
            none("pull-from-upstreams 1-10/*"),
        ),
        call(
            "/api/pull-from-upstream/1",
            "queries/sync-release/syncRelease.ts (routes/jobs_/pull-from-upstream.$id.tsx)",
            Expect::NotFound,
        ),
    ]
}

// -------------------------------------------------------------- the checks

/// The fields of the objects in `object`'s fields (each entry of an array).
#[track_caller]
fn assert_nested(what: &str, object: &Value, nested: &[(&str, &[Fields])]) {
    for (field, fields) in nested {
        match &object[*field] {
            Value::Array(entries) => {
                for entry in entries {
                    assert_packit_shape(&format!("{what}: {field}[]"), entry, fields);
                }
            }
            value => assert_packit_shape(&format!("{what}: {field}"), value, fields),
        }
    }
}

/// Every value of the object is a whole number (the dashboard sums them).
#[track_caller]
fn assert_counts(what: &str, object: &Value) {
    let map = object
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {object}"));
    for (key, value) in map {
        assert!(value.is_i64(), "{what}: {key} is {value}, not a count");
    }
}

/// The object's keys are exactly these.
#[track_caller]
fn assert_keys(what: &str, object: &Value, keys: &[&str]) {
    let actual: BTreeSet<&str> = object
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {object}"))
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = keys.iter().copied().collect();
    assert_eq!(actual, expected, "{what}");
}

#[track_caller]
fn assert_usage(what: &str, body: &Value) {
    assert_packit_shape(what, body, &[USAGE]);
    assert_packit_shape(
        &format!("{what}: all_projects"),
        &body["all_projects"],
        &[USAGE_ALL_PROJECTS],
    );
    assert_counts(what, &body["all_projects"]["instances"]);
    let active = &body["active_projects"];
    assert_packit_shape(
        &format!("{what}: active_projects"),
        active,
        &[USAGE_ACTIVE_PROJECTS],
    );
    assert_counts(what, &active["instances"]);
    assert_counts(what, &active["top_projects_by_events_handled"]);
    assert_keys(&format!("{what}: events"), &body["events"], EVENT_KINDS);
    for kind in EVENT_KINDS {
        let event = &body["events"][kind];
        assert_packit_shape(&format!("{what}: events.{kind}"), event, &[USAGE_EVENT]);
        assert_counts(what, &event["top_projects"]);
    }
    assert_keys(&format!("{what}: jobs"), &body["jobs"], JOBS);
    for job in JOBS {
        let usage = &body["jobs"][job];
        assert_packit_shape(&format!("{what}: jobs.{job}"), usage, &[USAGE_JOB]);
        assert_counts(what, &usage["top_projects_by_job_runs"]);
    }
}

/// The charts of `intervals`: each list one point per interval.
#[track_caller]
fn assert_intervals(what: &str, body: &Value, count: usize) {
    assert_packit_shape(what, body, &[INTERVALS]);
    let assert_line = |name: String, line: &Value| {
        let points = line
            .as_array()
            .unwrap_or_else(|| panic!("{name}: not a list: {line}"));
        assert_eq!(points.len(), count, "{name}: one point per interval");
        for point in points {
            assert_packit_shape(&name, point, &[POINT]);
        }
    };
    for chart in [
        "jobs",
        "jobs_project_count",
        "jobs_project_cumulative_count",
    ] {
        assert_keys(&format!("{what}: {chart}"), &body[chart], JOBS);
        for job in JOBS {
            assert_line(format!("{what}: {chart}.{job}"), &body[chart][job]);
        }
    }
    assert_keys(&format!("{what}: events"), &body["events"], EVENT_KINDS);
    for kind in EVENT_KINDS {
        assert_line(format!("{what}: events.{kind}"), &body["events"][kind]);
    }
    for line in ["active_projects", "active_projects_cumulative"] {
        assert_line(format!("{what}: {line}"), &body[line]);
    }
    let urls = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .unwrap_or_else(|| panic!("{what}: not a list: {value}"))
            .iter()
            .map(|url| {
                url.as_str()
                    .unwrap_or_else(|| panic!("{what}: {url} is not a URL"))
                    .to_owned()
            })
            .collect()
    };
    urls(&body["onboarded_projects"]);
    assert_keys(
        &format!("{what}: onboarded_projects_per_job"),
        &body["onboarded_projects_per_job"],
        JOBS,
    );
    for job in JOBS {
        urls(&body["onboarded_projects_per_job"][job]);
    }
}

/// The status, the CORS header, and the shape the call expects.
fn check(call: &Call, answer: &Answer) {
    let what = format!("GET {} ({})", call.path, call.source);
    assert_eq!(
        answer
            .headers
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*"),
        "{what}: the dashboard reads from another origin"
    );
    match &call.expect {
        Expect::Page {
            status,
            range,
            entries,
            fields,
            nested,
        } => {
            assert_eq!(answer.status, *status, "{what}: {}", answer.body);
            assert_eq!(answer.content_range(), *range, "{what}");
            assert_eq!(answer.list().len(), *entries, "{what}: {}", answer.body);
            for entry in answer.list() {
                if fields.is_empty() {
                    panic!("{what}: an entry where Fedora CI has none: {entry}");
                }
                assert_packit_shape(&what, entry, fields);
                assert_nested(&what, entry, nested);
            }
        }
        Expect::Object { fields, nested } => {
            assert_eq!(answer.status, StatusCode::OK, "{what}: {}", answer.body);
            assert_packit_shape(&what, &answer.body, fields);
            assert_nested(&what, &answer.body, nested);
        }
        Expect::NotFound => {
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{what}");
            assert!(
                answer.body["error"].is_string(),
                "{what}: the dashboard looks for \"error\": {}",
                answer.body
            );
        }
        Expect::Usage => {
            assert_eq!(answer.status, StatusCode::OK, "{what}: {}", answer.body);
            assert_usage(&what, &answer.body);
        }
        Expect::Intervals(count) => {
            assert_eq!(answer.status, StatusCode::OK, "{what}: {}", answer.body);
            assert_intervals(&what, &answer.body, *count);
        }
    }
}

// --------------------------------------------------------------- the flows

/// The real push message, as a push of gdb's built commit to its `f34`.
fn gdb_pushed_to_f34() -> Value {
    let mut message = stack::message("pagure.git.receive-branch.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    let body = &mut message["body"];
    body["branch"] = json!("f34");
    body["end_commit"] = json!(GDB_SHA);
    body["total_commits"] = json!(1);
    body["pull_request_id"] = Value::Null;
    let repo = &mut body["repo"];
    repo["name"] = json!("gdb");
    repo["fullname"] = json!("rpms/gdb");
    repo["url_path"] = json!("rpms/gdb");
    repo["full_url"] = json!(GDB);
    message
}

/// The ids the dashboard would have from its lists.
struct Ids {
    scratch_build: i64,
    official_build: i64,
    pr_test_run: i64,
    gating_test_run: i64,
    pr_pipeline: i64,
    update_pipeline: i64,
}

async fn one_id(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

// -------------------------------------------------------------------- test

#[tokio::test(flavor = "multi_thread")]
async fn every_call_of_the_dashboard_is_answered_as_packit_answers_it() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        let flow = drive_a_pull_request(&stack).await;
        let gating = drive_an_update(&stack).await;
        stack.publish(&gdb_pushed_to_f34()).await;
        wait_until(Duration::from_secs(20), "gdb's push recorded", || async {
            let pushes: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pushes ps JOIN projects pj ON pj.id = ps.project_id
                 WHERE pj.url = $1 AND ps.branch = 'f34'",
            )
            .bind(GDB)
            .fetch_one(&pool)
            .await
            .ok()?;
            (pushes == 1).then_some(())
        })
        .await;
        stack.settle(&pool).await;

        let ids = Ids {
            scratch_build: one_id(&pool, "SELECT id FROM koji_builds WHERE scratch").await,
            official_build: one_id(
                &pool,
                &format!("SELECT id FROM koji_builds WHERE build_id = {GDB_BUILD}"),
            )
            .await,
            pr_test_run: one_id(
                &pool,
                "SELECT min(t.id) FROM test_runs t JOIN pipelines p ON p.id = t.pipeline_id
                 WHERE p.kind = 'pull-request'",
            )
            .await,
            gating_test_run: gating["installability"].0,
            pr_pipeline: one_id(&pool, "SELECT id FROM pipelines WHERE kind = 'pull-request'")
                .await,
            update_pipeline: one_id(&pool, "SELECT id FROM pipelines WHERE kind = 'update'").await,
        };

        let calls = the_dashboards_calls(&ids);
        let mut answers = std::collections::HashMap::new();
        for call in &calls {
            let answer = get(&stack, &call.path).await;
            check(call, &answer);
            answers.insert(call.path.clone(), answer);
        }
        let body = |path: &str| -> &Value {
            &answers
                .get(path)
                .unwrap_or_else(|| panic!("{path} was not called"))
                .body
        };

        // What the project pages show.
        let names: Vec<&Value> = body("/api/projects?page=1&per_page=10")
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| &p["project_url"])
            .collect();
        assert_eq!(names, [GDB, OPTEE, OGR], "by namespace and name");
        for path in [
            "/api/projects/src.fedoraproject.org?page=1&per_page=10",
            "/api/projects/src.fedoraproject.org/rpms?page=1&per_page=10",
        ] {
            assert_eq!(body(path), body("/api/projects?page=1&per_page=10"), "{path}");
        }
        let optee = body("/api/projects/src.fedoraproject.org/rpms/optee_os");
        assert_eq!(
            *optee,
            json!({
                "namespace": "rpms", "repo_name": "optee_os", "project_url": OPTEE,
                "prs_handled": 1, "branches_handled": 0, "releases_handled": 0,
                "issues_handled": 0,
            })
        );
        let gdb = body("/api/projects/src.fedoraproject.org/rpms/gdb");
        assert_eq!(gdb["prs_handled"], 0);
        assert_eq!(gdb["branches_handled"], 1);
        let prs = body("/api/projects/src.fedoraproject.org/rpms/optee_os/prs");
        assert_eq!(prs[0]["pr_id"], 2);
        assert_eq!(prs[0]["koji_builds"][0]["task_id"], flow.task_id.to_string());
        assert_eq!(prs[0]["tests"].as_array().map(Vec::len), Some(6));
        let branches = body("/api/projects/src.fedoraproject.org/rpms/gdb/branches");
        let f34 = &branches[0];
        assert_eq!(f34["branch"], "f34");
        let built = f34["koji_builds"].as_array().expect("koji_builds");
        assert_eq!(built.len(), 1, "gdb's official build: {f34}");
        assert_eq!(built[0]["task_id"], GDB_TASK.to_string());
        assert_eq!(built[0]["chroot"], "f34-candidate");
        assert_eq!(built[0]["status"], "success");
        assert!(
            built[0]["web_url"]
                .as_str()
                .is_some_and(|url| url.ends_with(&format!("/taskinfo?taskID={GDB_TASK}"))),
            "{f34}"
        );
        let mut tested: Vec<&str> = f34["tests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["pipeline_id"].as_str())
            .collect();
        tested.sort_unstable();
        let mut requests: Vec<&str> = gating.values().map(|(_, r)| r.as_str()).collect();
        requests.sort_unstable();
        assert_eq!(tested, requests, "the gating runs of the branch's build");
        assert_eq!(f34["builds"], json!([]));
        assert_eq!(f34["srpm_builds"], json!([]));

        // What the usage page shows: one pull request (optee_os: a scratch
        // build, six tests) and one update (gdb: three tests), all today.
        for period in ["past-day", "past-week", "past-month", "past-year", "total"] {
            let usage = body(&format!("/api/usage/{period}"));
            let what = format!("usage/{period}");
            assert_eq!(usage["all_projects"]["project_count"], 3, "{what}");
            assert_eq!(
                usage["active_projects"]["project_count"], 2,
                "{what}: {usage}"
            );
            assert_eq!(
                usage["active_projects"]["instances"],
                json!({"src.fedoraproject.org": 2}),
                "{what}"
            );
            assert_eq!(
                usage["events"]["pull_request"],
                json!({"events_handled": 1, "top_projects": {OPTEE: 1}}),
                "{what}"
            );
            assert_eq!(
                usage["events"]["bodhi_update"],
                json!({"events_handled": 1, "top_projects": {GDB: 1}}),
                "{what}"
            );
            assert_eq!(usage["events"]["branch_push"]["events_handled"], 0);
            assert_eq!(
                usage["jobs"]["koji_build_groups"],
                json!({"job_runs": 1, "top_projects_by_job_runs": {OPTEE: 1}, "active_projects": 1}),
                "{what}"
            );
            assert_eq!(
                usage["jobs"]["tft_test_run_groups"],
                json!({"job_runs": 9, "top_projects_by_job_runs": {OPTEE: 6, GDB: 3}, "active_projects": 2}),
                "{what}"
            );
            for job in ["copr_build_groups", "srpm_builds", "log_detective_run_groups"] {
                assert_eq!(usage["jobs"][job]["job_runs"], 0, "{what}: {job}");
            }
            assert_eq!(usage["onboarded_projects_q1_2024"], 2, "{what}");
        }
        let sum = |line: &Value| -> i64 {
            line.as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["y"].as_i64())
                .sum()
        };
        let last = |line: &Value| -> i64 {
            line.as_array()
                .and_then(|points| points.last())
                .and_then(|p| p["y"].as_i64())
                .unwrap_or(-1)
        };
        for query in [
            "days=0&hours=1&count=24",
            "days=1&hours=0&count=7",
            "days=1&hours=0&count=30",
            "days=7&hours=0&count=52",
        ] {
            let chart = body(&format!("/api/usage/intervals?{query}"));
            assert_eq!(sum(&chart["events"]["pull_request"]), 1, "{query}");
            assert_eq!(sum(&chart["events"]["bodhi_update"]), 1, "{query}");
            assert_eq!(sum(&chart["jobs"]["koji_build_groups"]), 1, "{query}");
            assert_eq!(sum(&chart["jobs"]["tft_test_run_groups"]), 9, "{query}");
            assert_eq!(sum(&chart["jobs"]["copr_build_groups"]), 0, "{query}");
            assert_eq!(last(&chart["active_projects_cumulative"]), 2, "{query}");
            assert_eq!(
                last(&chart["jobs_project_cumulative_count"]["tft_test_run_groups"]),
                2,
                "{query}"
            );
            assert_eq!(chart["onboarded_projects"], json!([GDB, OPTEE]), "{query}");
            assert_eq!(
                chart["onboarded_projects_per_job"]["koji_build_groups"],
                json!([OPTEE]),
                "{query}"
            );
        }
        let hourly = body("/api/usage/intervals?days=0&hours=1&count=24");
        assert!(
            hourly["active_projects"][0]["x"]
                .as_str()
                .is_some_and(|x| x.len() == 5 && x.ends_with(":00")),
            "hours are named HH:MM: {}",
            hourly["active_projects"][0]
        );
        let weekly = body("/api/usage/intervals?days=7&hours=0&count=52");
        assert!(
            weekly["active_projects"][51]["x"]
                .as_str()
                .is_some_and(|x| chrono::NaiveDate::parse_from_str(x, "%Y-%m-%d").is_ok()),
            "days are named YYYY-MM-DD: {}",
            weekly["active_projects"][51]
        );

        // Every endpoint the dashboard calls is in the OpenAPI document (and so
        // in the Schemathesis run of worker/tests/schemathesis.rs).
        let openapi = get(&stack, "/api/openapi.json").await;
        for template in [
            "/api/projects",
            "/api/projects/{forge}",
            "/api/projects/{forge}/{namespace}",
            "/api/projects/{forge}/{namespace}/{repo}",
            "/api/projects/{forge}/{namespace}/{repo}/prs",
            "/api/projects/{forge}/{namespace}/{repo}/branches",
            "/api/projects/{forge}/{namespace}/{repo}/releases",
            "/api/projects/{forge}/{namespace}/{repo}/issues",
            "/api/usage/past-day",
            "/api/usage/past-week",
            "/api/usage/past-month",
            "/api/usage/past-year",
            "/api/usage/total",
            "/api/usage/intervals",
            "/api/koji-builds",
            "/api/koji-builds/{id}",
            "/api/testing-farm/results",
            "/api/testing-farm/{id}",
            "/api/runs",
            "/api/runs/merged/{id}",
            "/api/copr-builds",
            "/api/copr-builds/{id}",
            "/api/srpm-builds",
            "/api/srpm-builds/{id}",
            "/api/koji-tag-requests",
            "/api/koji-tag-requests/{id}",
            "/api/bodhi-updates",
            "/api/bodhi-updates/{id}",
            "/api/log-detective",
            "/api/log-detective/{id}",
            "/api/log-detective/groups/{id}",
            "/api/openscanhub-scans",
            "/api/openscanhub-scans/{id}",
            "/api/propose-downstream",
            "/api/propose-downstream/{id}",
            "/api/pull-from-upstream",
            "/api/pull-from-upstream/{id}",
        ] {
            assert!(
                openapi.body["paths"][template]["get"].is_object(),
                "{template} in the OpenAPI document"
            );
        }

        // What the job pages show of the flows.
        let scratch = body("/api/koji-builds?page=1&per_page=10&scratch=true");
        assert_eq!(scratch[0]["packit_id"], ids.scratch_build);
        let official: BTreeSet<&str> = body("/api/koji-builds?page=1&per_page=10&scratch=false")
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["repo_name"].as_str())
            .collect();
        assert_eq!(official, BTreeSet::from(["gdb", "python-ogr"]));
        let run = body(&format!("/api/runs/merged/{}", ids.update_pipeline));
        assert_eq!(run["update_alias"], ALIAS);
        assert_eq!(run["trigger"]["project_url"], GDB);
    })
    .await
    .expect("test timed out");
}
