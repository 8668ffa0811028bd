//! The status page at `/`, as a person sees it: during an end-to-end run (a
//! Bodhi update's official build tested, with its Fedora CI messages
//! published; then a fork's pull request built on Koji, its tests on Testing
//! Farm, one test refused so that its job dies, dist-git failing so that its
//! breaker opens), Debian's headless Chromium loads the page, and the test
//! reads the DOM Chromium built and takes a screenshot. Then it follows the
//! status page's link to the pull request's pipeline page, and the flags'
//! links to the pages of the build and the test runs. The pull request's
//! title and a test's summary carry markup, which every page must show as
//! text. The pages' error answers (unknown id, bad id, no database) are
//! checked over plain HTTP.
//!
//! Needs `chromium` (Debian's package; `scripts/test` installs it). Without
//! it the test fails, saying so. Set `FCI_STATUS_SCREENSHOT=/path/page.png`
//! to keep the screenshot.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use events::states::KojiTaskState;
use serde_json::{Value, json};
use support::stack::{self, Stack};
use support::wait_until;

const TIMEOUT: Duration = Duration::from_secs(360);
const HEAD: &str = "889f07af35d27bbcaf9c535c17a63b974aa42ee3";
const FORK: &str = "fork/zbyszek/rpms/optee_os";
const ALIAS: &str = "FEDORA-2021-53a7dfa185";
const GDB_SHA: &str = "5b7e3a1d9f1c2e4b6a8d0c2e4f6a8b0d2c4e6f80";

/// Flags as the machine's probe found Chromium needs them here: as root, on
/// a closed network, with a profile of its own.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The Chromium to drive: `$CHROMIUM`, else `chromium` on the PATH. Panics
/// when there is none: this test is never skipped.
fn chromium() -> PathBuf {
    let program =
        std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("chromium"), PathBuf::from);
    match std::process::Command::new(&program)
        .arg("--version")
        .output()
    {
        Ok(out) if out.status.success() => program,
        Ok(out) => panic!(
            "{} --version failed ({}): {}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(error) => panic!(
            "the status page test needs headless Chromium, and {:?} cannot be run: {error}. \
             Install Debian's chromium (apt-get install chromium chromium-driver; scripts/test \
             does this), or point $CHROMIUM at one.",
            program
        ),
    }
}

/// Run Chromium headless on `url` with `args`, in a fresh profile; its stdout.
async fn run_chromium(program: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let mut command = tokio::process::Command::new(program);
    command
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .unwrap_or_else(|_| panic!("Chromium did not finish with {args:?} {url} within 90 s"))
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "Chromium {args:?} {url} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A pull request's title with markup in it: every page shows it as text.
const HOSTILE_TITLE: &str = r#"Only build on aarch64 <script>alert("title")</script>"#;

/// A Testing Farm summary with markup in it.
const HOSTILE_SUMMARY: &str = "1 test failed <script>alert('tf')</script>";

/// The real PR-opened message from a fork, with [`HOSTILE_TITLE`].
fn opened() -> Value {
    let mut message = stack::message("pagure.pull-request.new-fork.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    message["body"]["pullrequest"]["commit_stop"] = json!(HEAD);
    message["body"]["pullrequest"]["title"] = json!(HOSTILE_TITLE);
    message
}

/// A test run of the update as the page must show it: test name, state,
/// result, test case and how many CI messages it wrote.
type GatingRow = (String, String, Option<String>, Option<String>, i64);

/// Koji's real COMPLETE message, as the official build of the update's gdb.
fn gdb_built() -> Value {
    let mut message = stack::message("buildsys.build.state.change-complete.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    let body = &mut message["body"];
    body["build_id"] = json!(1_854_854);
    body["task_id"] = json!(78_709_925);
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

/// The part of the page in `<section id="{id}">`.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<section id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id:?} on the page:\n{page}"));
    let rest = &page[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

/// The text of an HTML fragment: tags dropped, entities decoded, spaces collapsed.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The rows of the tables in a fragment, each as the texts of its cells.
fn rows(html: &str) -> Vec<Vec<String>> {
    html.split("<tr")
        .skip(1)
        .map(|row| {
            let row = &row[..row.find("</tr>").unwrap_or(row.len())];
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let cell = cell.split_once('>').map_or("", |(_, c)| c);
                    text(&cell[..cell.find("</td>").unwrap_or(cell.len())])
                })
                .collect()
        })
        .filter(|cells: &Vec<String>| !cells.is_empty())
        .collect()
}

/// The row whose first cell is `first`.
fn row_of<'a>(rows: &'a [Vec<String>], first: &str, what: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r[0] == first)
        .unwrap_or_else(|| panic!("no row {first:?} in {what}: {rows:#?}"))
}

/// The rows of a table of facts (`<tr><th>name</th><td>value</td></tr>`),
/// as the texts of their header and value.
fn facts(html: &str) -> Vec<(String, String)> {
    html.split("<tr")
        .skip(1)
        .filter_map(|row| {
            let row = &row[..row.find("</tr>").unwrap_or(row.len())];
            let (head, value) = row.split_once("</th>")?;
            let head = head.split_once("<th>")?.1;
            Some((text(head), text(value)))
        })
        .collect()
}

/// The value of the fact called `name`.
fn fact<'a>(facts: &'a [(String, String)], name: &str) -> &'a str {
    facts
        .iter()
        .find(|(head, _)| head == name)
        .map(|(_, value)| value.as_str())
        .unwrap_or_else(|| panic!("no fact {name:?} in {facts:#?}"))
}

/// A page of the service as Chromium built it, in a profile of its own.
async fn load(chromium: &Path, profiles: &Path, name: &str, url: &str) -> String {
    let page = run_chromium(chromium, &profiles.join(name), &["--dump-dom"], url).await;
    // Chromium would have made an element of any markup that got through.
    assert!(
        !page.contains("<script"),
        "markup is shown as text on {url}: {page}"
    );
    page
}

/// A flag as recorded, and as the pages must show it.
#[derive(Debug, sqlx::FromRow)]
struct FlagRow {
    check_name: String,
    status: String,
    comment: String,
    url: String,
    version: i32,
    sent_version: i32,
    test_run_id: Option<i64>,
}

/// The flags table of a page shows these flags, each with its status,
/// comment, URL (a link when it is http) and whether it was sent.
fn assert_flags(html: &str, flags: &[&FlagRow]) {
    let shown = rows(html);
    assert_eq!(shown.len(), flags.len(), "{shown:#?} vs {flags:#?}");
    for flag in flags {
        let row = row_of(&shown, &flag.check_name, "the flags");
        let sent = if flag.sent_version >= flag.version {
            "sent"
        } else if flag.sent_version > 0 {
            "older state sent"
        } else {
            "not sent"
        };
        assert_eq!(
            (
                row[1].as_str(),
                row[2].as_str(),
                row[3].as_str(),
                row[5].as_str()
            ),
            (
                flag.status.as_str(),
                flag.comment.as_str(),
                flag.url.as_str(),
                sent
            ),
            "{flag:?}: {row:?}"
        );
        assert!(row[4].ends_with(" ago)"), "when it was set: {row:?}");
        assert!(
            html.contains(&format!(
                r#"<a href="{0}">{0}</a>"#,
                flag.url.replace('&', "&amp;")
            )),
            "{flag:?} links its URL: {html}"
        );
    }
}

/// The pull request's pipeline page, reached by the status page's link;
/// its build's page, reached by the pipeline page's link; the failed test's
/// page; and a page a pending flag links to. Each against what was recorded.
async fn check_pages(
    stack: &Stack,
    pool: &sqlx::PgPool,
    chromium: &Path,
    profiles: &Path,
    status_page: &str,
    failed_request: &str,
) {
    let api = stack.api();
    let pipeline: i64 = sqlx::query_scalar("SELECT id FROM pipelines WHERE kind = 'pull-request'")
        .fetch_one(pool)
        .await
        .expect("the pull request's pipeline");
    let (build, task, web_url, log_urls): (i64, i64, String, Value) = sqlx::query_as(
        "SELECT id, task_id, web_url, log_urls FROM koji_builds WHERE pipeline_id = $1",
    )
    .bind(pipeline)
    .fetch_one(pool)
    .await
    .expect("the pull request's build");
    let runs: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
        "SELECT id, test_name, state, result FROM test_runs WHERE pipeline_id = $1 ORDER BY id",
    )
    .bind(pipeline)
    .fetch_all(pool)
    .await
    .expect("the pull request's runs");
    let flags: Vec<FlagRow> = sqlx::query_as(
        "SELECT check_name, status, comment, url, version, sent_version, test_run_id
         FROM flags WHERE pipeline_id = $1 ORDER BY id",
    )
    .bind(pipeline)
    .fetch_all(pool)
    .await
    .expect("the pull request's flags");
    assert_eq!(flags.len(), 7, "the build's and six tests': {flags:#?}");
    let reasons: Vec<(String, String)> = sqlx::query_as(
        "SELECT e.topic, d.reason FROM decisions d JOIN events e ON e.id = d.event_id
         WHERE d.pipeline_id = $1 AND NOT (e.source = 'internal' AND e.status = 'skipped')
         ORDER BY d.id",
    )
    .bind(pipeline)
    .fetch_all(pool)
    .await
    .expect("the pipeline's decisions");

    // The status page links the pipeline's page; Chromium follows the link.
    let pipelines = section(status_page, "pipelines");
    let href = format!("/pipelines/{pipeline}");
    assert!(
        pipelines.contains(&format!(r#"href="{href}""#)),
        "the status page links {href}: {pipelines}"
    );
    let page = load(chromium, profiles, "pipeline", &format!("{api}{href}")).await;
    assert!(
        page.contains(&format!(
            "<title>Fedora CI: pipeline {pipeline} of rpms/optee_os#2 [889f07a]</title>"
        )),
        "{page}"
    );
    let summary = section(&page, "summary");
    let shown = facts(summary);
    assert!(
        summary.contains(r#"href="https://src.fedoraproject.org/rpms/optee_os/pull-request/2""#),
        "the pull request's link: {summary}"
    );
    let pr = fact(&shown, "Pull request");
    assert!(pr.starts_with("rpms/optee_os#2 "), "{pr}");
    assert!(pr.contains(HOSTILE_TITLE), "the title, as text: {pr}");
    assert_eq!(fact(&shown, "Target branch"), "rawhide");
    assert_eq!(
        fact(&shown, "Commit"),
        format!("{HEAD} from https://src.fedoraproject.org/fork/zbyszek/rpms/optee_os")
    );
    // A test still runs.
    assert_eq!(fact(&shown, "State"), "running active");
    assert!(
        fact(&shown, "Started").ends_with("ago) by pull_request"),
        "{shown:#?}"
    );

    // Its build, with Koji's task page.
    let builds = section(&page, "builds");
    let build_row = rows(builds);
    assert_eq!(build_row.len(), 1, "{build_row:#?}");
    assert_eq!(
        build_row[0][..3],
        [
            "scratch build rawhide".to_owned(),
            "success CLOSED".to_owned(),
            format!("Koji task {task}")
        ]
    );
    assert!(
        builds.contains(&format!(r#"<a href="{web_url}">Koji task {task}</a>"#)),
        "{builds}"
    );

    // Its tests, each with its state and result and a link to its page.
    let tests = section(&page, "tests");
    let test_rows = rows(tests);
    assert_eq!(test_rows.len(), runs.len(), "{test_rows:#?}");
    for (id, name, state, result) in &runs {
        let row = row_of(&test_rows, name, "the pipeline's tests");
        let shown = match result {
            Some(result) if result != state => format!("{state} {result}"),
            _ => state.clone(),
        };
        assert_eq!(row[1], shown, "{name}: {row:?}");
        assert!(
            tests.contains(&format!(r#"href="/testing-farm/{id}""#)),
            "{name} links its page: {tests}"
        );
    }
    assert!(
        test_rows.iter().any(|r| r[4] == HOSTILE_SUMMARY),
        "the summary, as text: {test_rows:#?}"
    );
    // What the test made Testing Farm say, whatever was recorded: one
    // request passed, one failed, one runs.
    for shown in ["complete passed", "complete failed", "running"] {
        assert_eq!(
            test_rows.iter().filter(|r| r[1] == shown).count(),
            1,
            "one test shown {shown:?}: {test_rows:#?}"
        );
    }

    // Every flag, as recorded.
    assert_flags(section(&page, "flags"), &flags.iter().collect::<Vec<_>>());

    // The decisions with their reasons: the pull request's, Koji's, Testing Farm's.
    let decisions = rows(section(&page, "decisions"));
    assert_eq!(decisions.len(), reasons.len(), "{decisions:#?}");
    for ((topic, reason), row) in reasons.iter().zip(&decisions) {
        assert!(
            topic.ends_with(row[1].split(' ').next().unwrap_or_default()),
            "{topic}: {row:?}"
        );
        let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(row[3].ends_with(&reason), "{reason}: {row:?}");
    }
    for topic in ["pagure.pull-request.new", "buildsys.task.state.change"] {
        assert!(
            decisions.iter().any(|r| r[1].starts_with(topic)),
            "{topic}: {decisions:#?}"
        );
    }

    // The build's page, by the pipeline page's link.
    let href = format!("/koji-builds/{build}");
    assert!(builds.contains(&format!(r#"href="{href}""#)), "{builds}");
    let page = load(chromium, profiles, "build", &format!("{api}{href}")).await;
    let summary = section(&page, "summary");
    let shown = facts(summary);
    assert!(fact(&shown, "Pull request").contains(HOSTILE_TITLE));
    assert_eq!(fact(&shown, "Pipeline"), format!("pipeline {pipeline}"));
    assert_eq!(fact(&shown, "Koji target"), "rawhide for branch rawhide");
    assert_eq!(fact(&shown, "State"), "success Koji: CLOSED");
    assert_eq!(fact(&shown, "Koji task"), format!("Koji task {task}"));
    assert!(
        summary.contains(&format!(r#"<a href="{web_url}">Koji task {task}</a>"#)),
        "{summary}"
    );
    let logs = log_urls.as_object().expect("the build's logs");
    assert!(!logs.is_empty(), "Koji gave the build's logs");
    for (arch, url) in logs {
        let url = url.as_str().expect("a URL");
        assert!(
            summary.contains(&format!(r#"<a href="{url}">{arch}</a>"#)),
            "the {arch} log: {summary}"
        );
    }
    for time in ["Decided", "Finished", "Last heard from Koji"] {
        assert!(fact(&shown, time).contains(" UTC ("), "{time}: {shown:#?}");
    }
    assert_eq!(
        rows(section(&page, "tests")).len(),
        runs.len(),
        "the tests of the build"
    );
    let build_flags: Vec<&FlagRow> = flags
        .iter()
        .filter(|f| f.check_name.contains("scratch build"))
        .collect();
    assert_flags(section(&page, "flags"), &build_flags);

    // The failed test's page, with its Testing Farm request and artifacts.
    let (run, name, compose, artifacts): (i64, String, String, String) = sqlx::query_as(
        "SELECT id, test_name, compose, artifacts_url FROM test_runs WHERE request_id = $1",
    )
    .bind(failed_request)
    .fetch_one(pool)
    .await
    .expect("the failed run");
    let page = load(
        chromium,
        profiles,
        "failed-test",
        &format!("{api}/testing-farm/{run}"),
    )
    .await;
    let summary = section(&page, "summary");
    let shown = facts(summary);
    assert_eq!(fact(&shown, "Test"), name);
    assert_eq!(
        fact(&shown, "Compose"),
        format!("{compose} for branch rawhide")
    );
    assert_eq!(fact(&shown, "State"), "complete failed");
    assert_eq!(fact(&shown, "Summary"), HOSTILE_SUMMARY);
    assert_eq!(fact(&shown, "Build tested"), format!("Koji build {build}"));
    assert_eq!(
        fact(&shown, "Testing Farm request"),
        format!("{failed_request} · in the Testing Farm API")
    );
    let request_url = format!(
        "{}/requests/{failed_request}",
        stack.testing_farm.url().trim_end_matches('/')
    );
    assert!(
        summary.contains(&format!(r#"href="{request_url}""#)),
        "{request_url}: {summary}"
    );
    assert!(
        fact(&shown, "Artifacts").starts_with(&artifacts),
        "{shown:#?}"
    );
    assert!(
        summary.contains(&format!(r#"href="{artifacts}""#)),
        "{summary}"
    );
    let run_flags: Vec<&FlagRow> = flags
        .iter()
        .filter(|f| f.test_run_id == Some(run))
        .collect();
    assert_flags(section(&page, "flags"), &run_flags);

    // A flag with no page outside (a test Testing Farm has not started, or
    // the one it refused) links our page of its run.
    let ours = flags
        .iter()
        .find(|f| f.url.starts_with(&format!("{api}/testing-farm/")))
        .unwrap_or_else(|| panic!("a flag links our page: {flags:#?}"));
    let run = ours.test_run_id.expect("a test's flag");
    assert_eq!(ours.url, format!("{api}/testing-farm/{run}"));
    let page = load(chromium, profiles, "flagged-test", &ours.url).await;
    assert!(
        page.contains(&format!("<title>Fedora CI: test run {run}: ")),
        "{page}"
    );
    assert_flags(section(&page, "flags"), &[ours]);
}

/// Status, content type and body of a page.
async fn get_page(url: &str) -> (u16, String, String) {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await.expect("a body");
    (status, content_type, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pages_answer_unknown_ids_bad_ids_and_a_missing_database() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let api = stack.api();
        let pages = ["/pipelines", "/koji-builds", "/testing-farm"];

        for page in pages {
            let url = format!("{api}{page}/424242");
            let (status, content_type, body) = get_page(&url).await;
            assert_eq!(status, 404, "{url}: {body}");
            assert_eq!(content_type, "text/html; charset=utf-8", "{url}");
            assert!(body.contains("Nothing is recorded as "), "{url}: {body}");
            assert!(body.contains(" 424242."), "{url}: {body}");
        }
        for path in [
            "/pipelines/abc",
            "/koji-builds/-1",
            "/testing-farm/12x",
            "/testing-farm/results",
            "/pipelines/99999999999999999999",
            "/pipelines/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        ] {
            let url = format!("{api}{path}");
            let (status, content_type, body) = get_page(&url).await;
            assert_eq!(status, 400, "{url}: {body}");
            assert_eq!(content_type, "text/html; charset=utf-8", "{url}");
            assert!(
                body.contains("The id must be a whole number"),
                "{url}: {body}"
            );
            assert!(!body.contains("<script"), "{url}: {body}");
        }

        // The database refuses connections: the pages say so, and try again.
        let server = support::local_pg_url();
        let name = &stack.db.name;
        let admin = sqlx::PgPool::connect(&server).await.expect("the server");
        sqlx::raw_sql(&format!(
            "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
        ))
        .execute(&admin)
        .await
        .expect("close the database");
        for path in ["/", "/pipelines/1", "/koji-builds/1", "/testing-farm/1"] {
            let url = format!("{api}{path}");
            let (status, content_type, body) = get_page(&url).await;
            assert_eq!(status, 503, "{url}: {body}");
            assert_eq!(content_type, "text/html; charset=utf-8", "{url}");
            assert!(
                body.contains("The database did not answer"),
                "{url}: {body}"
            );
            assert!(body.contains(r#"http-equiv="refresh""#), "{url}: {body}");
        }
        sqlx::raw_sql(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
            .execute(&admin)
            .await
            .expect("open the database");
        let url = format!("{api}/pipelines/1");
        wait_until(Duration::from_secs(30), "the pages back", || async {
            (get_page(&url).await.0 == 404).then_some(())
        })
        .await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_shows_a_run_in_chromium() {
    // Before anything else: without Chromium there is nothing to test.
    let chromium = chromium();
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        stack.distgit.set_file(FORK, HEAD, ".fmf/version");
        let _service = stack
            .spawn(&[
                ("FEDORA_CI__JOBS__BREAKER_FAILURES", "3"),
                ("FEDORA_CI__JOBS__BREAKER_OPEN_SECONDS", "600"),
                ("FEDORA_CI__JOBS__BREAKER_MAX_OPEN_SECONDS", "600"),
            ])
            .await;
        let pool = stack.db.pool().await;

        // First a Bodhi update: its official build's three tests (gdb has
        // no tmt plans) are accepted by Testing Farm before the pull request
        // comes, so that the request refused below is the pull request's.
        stack.publish(&gdb_built()).await;
        wait_until(Duration::from_secs(30), "gdb's official build", || async {
            let builds: i64 = sqlx::query_scalar("SELECT count(*) FROM koji_builds")
                .fetch_one(&pool)
                .await
                .ok()?;
            (builds == 1).then_some(())
        })
        .await;
        let mut update =
            stack::message("bodhi.update.status.testing.koji-build-group.build.complete.json");
        update["id"] = json!(uuid::Uuid::new_v4().to_string());
        stack.publish(&update).await;
        let gating: Vec<(String, String)> = wait_until(
            Duration::from_secs(30),
            "the update's three tests accepted",
            || async {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT test_name, request_id FROM test_runs
                     WHERE request_id IS NOT NULL ORDER BY id",
                )
                .fetch_all(&pool)
                .await
                .ok()?;
                (rows.len() == 3).then_some(rows)
            },
        )
        .await;
        let gating_request = |test: &str| {
            gating
                .iter()
                .find(|(name, _)| name == test)
                .map(|(_, request)| request.clone())
                .unwrap_or_else(|| panic!("no {test} among {gating:?}"))
        };

        // The pull request is built; its task runs and closes on Koji.
        let message = opened();
        stack.publish(&message).await;
        let task = wait_until(Duration::from_secs(30), "a build submitted", || async {
            stack.koji.submissions().first().map(|s| s.task_id)
        })
        .await;
        // The first test request Testing Farm sees is refused: its job dies.
        stack.testing_farm.fail_next(1, 400);
        stack
            .koji
            .set_task_state(task, KojiTaskState::Open, &["x86_64"]);
        stack.publish_koji_task(task).await;
        stack
            .koji
            .set_task_state(task, KojiTaskState::Closed, &["x86_64"]);
        stack.publish_koji_task(task).await;
        wait_until(
            Duration::from_secs(60),
            "five tests accepted, one job dead",
            || async {
                let dead: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'dead'")
                        .fetch_one(&pool)
                        .await
                        .ok()?;
                (stack.testing_farm.requests().len() >= 3 + 5 && dead == 1).then_some(())
            },
        )
        .await;

        // dist-git goes down: the flags' jobs fail until its breaker opens.
        // Testing Farm finishes two of the pull request's requests and runs
        // a third; of the update's, it passes installability and runs
        // rpmlint.
        stack.distgit.fail_next(1_000_000, 503);
        let ids: Vec<String> = stack
            .testing_farm
            .request_ids()
            .into_iter()
            .filter(|id| !gating.iter().any(|(_, request)| request == id))
            .collect();
        stack.testing_farm.set_state(
            &ids[0],
            "complete",
            Some("passed"),
            Some("all tests passed"),
        );
        stack
            .testing_farm
            .set_state(&ids[1], "complete", Some("failed"), Some(HOSTILE_SUMMARY));
        stack.testing_farm.set_state(&ids[2], "running", None, None);
        stack.testing_farm.set_state(
            &gating_request("installability"),
            "complete",
            Some("passed"),
            Some("all tests passed"),
        );
        stack
            .testing_farm
            .set_state(&gating_request("rpmlint"), "running", None, None);
        // The update's CI messages: queued, running and complete of
        // installability, queued and running of rpmlint, queued of
        // rpminspect; all published.
        wait_until(
            Duration::from_secs(60),
            "the tests' states recorded, their CI messages published and dist-git's breaker open",
            || async {
                let (complete, running, open, published, pending): (i64, i64, i64, i64, i64) =
                    sqlx::query_as(
                        "SELECT (SELECT count(*) FROM test_runs WHERE state = 'complete'),
                                (SELECT count(*) FROM test_runs WHERE state = 'running'),
                                (SELECT count(*) FROM breakers
                                 WHERE queue = 'distgit' AND state = 'open'),
                                (SELECT count(*) FROM outbox WHERE published_at IS NOT NULL),
                                (SELECT count(*) FROM outbox WHERE published_at IS NULL)",
                    )
                    .fetch_one(&pool)
                    .await
                    .ok()?;
                (complete == 2 + 1
                    && running == 1 + 1
                    && open == 1
                    && published == 6
                    && pending == 0)
                    .then_some(())
            },
        )
        .await;

        // What the page must show, as recorded.
        let web_url: String =
            sqlx::query_scalar("SELECT web_url FROM koji_builds WHERE task_id = $1")
                .bind(task)
                .fetch_one(&pool)
                .await
                .expect("the build's Koji link");
        let runs: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT t.test_name, t.state, t.result FROM test_runs t
             JOIN pipelines p ON p.id = t.pipeline_id
             WHERE p.kind = 'pull-request' ORDER BY t.id",
        )
        .fetch_all(&pool)
        .await
        .expect("test runs");
        let update_runs: Vec<GatingRow> = sqlx::query_as(
            "SELECT t.test_name, t.state, t.result, t.test_case,
                        (SELECT count(*) FROM outbox o WHERE o.test_run_id = t.id)
                 FROM test_runs t JOIN pipelines p ON p.id = t.pipeline_id
                 WHERE p.kind = 'update' ORDER BY t.id",
        )
        .fetch_all(&pool)
        .await
        .expect("the update's test runs");
        assert_eq!(update_runs.len(), 3, "{update_runs:?}");
        assert_eq!(runs.len(), 6, "{runs:?}");
        assert_eq!(
            runs.iter().filter(|(_, state, _)| state == "error").count(),
            1,
            "the refused test ended as error: {runs:?}"
        );
        let (dead_kind, dead_key, dead_error): (String, String, String) =
            sqlx::query_as("SELECT kind, dedup_key, last_error FROM jobs WHERE state = 'dead'")
                .fetch_one(&pool)
                .await
                .expect("the dead job");
        let decision: String = sqlx::query_scalar(
            "SELECT d.reason FROM events e JOIN decisions d ON d.event_id = e.id
             WHERE e.message_id = $1 ORDER BY d.id LIMIT 1",
        )
        .bind(message["id"].as_str().expect("an id"))
        .fetch_one(&pool)
        .await
        .expect("the pull request's decision");

        // Chromium loads the page.
        let profile = tempfile::tempdir().expect("a profile directory");
        let url = format!("{}/", stack.api());
        let page = run_chromium(&chromium, profile.path(), &["--dump-dom"], &url).await;
        assert!(page.contains("<title>Fedora CI status</title>"), "{page}");
        assert!(
            page.contains(r#"<meta http-equiv="refresh" content="5">"#),
            "the page refreshes itself: {page}"
        );

        // The inbox's backlog.
        let overview = text(section(&page, "overview"));
        for label in [
            "Events waiting for decisions",
            "Inbox lag (oldest waiting)",
            "Events in the last hour",
        ] {
            assert!(overview.contains(label), "{label}: {overview}");
        }

        // Queue depths: one dead Testing Farm job, dist-git paused with flags waiting.
        let queues = rows(section(&page, "queues"));
        for queue in ["koji", "testing-farm", "distgit", "lookup"] {
            row_of(&queues, queue, "the queues");
        }
        // Queue, due now, later, running, dead, longest wait, breaker.
        let testing_farm = row_of(&queues, "testing-farm", "the queues");
        assert_eq!(testing_farm[4], "1", "one dead job: {testing_farm:?}");
        let distgit = row_of(&queues, "distgit", "the queues");
        let waiting: i64 = distgit[1].parse::<i64>().expect("a number")
            + distgit[2].parse::<i64>().expect("a number")
            + distgit[3].parse::<i64>().expect("a number");
        assert!(waiting >= 1, "flags wait for dist-git: {distgit:?}");
        assert!(distgit[6].starts_with("open until "), "{distgit:?}");
        assert!(
            row_of(&queues, "koji", "the queues")[6] == "closed",
            "{queues:#?}"
        );

        // The breakers, per runner.
        let breakers = rows(section(&page, "breakers"));
        let distgit = row_of(&breakers, "distgit", "the breakers");
        assert_eq!(distgit[1], "open", "{distgit:?}");
        assert!(
            distgit[2].ends_with("UTC"),
            "open until a time: {distgit:?}"
        );
        assert_eq!(row_of(&breakers, "koji", "the breakers")[1], "closed");

        // The build with its Koji task link, and the tests with their states.
        let pipelines = section(&page, "pipelines");
        assert!(
            pipelines.contains(&format!(r#"<a href="{web_url}">Koji task {task}</a>"#)),
            "the Koji task link {web_url}: {pipelines}"
        );
        assert!(
            pipelines
                .contains(r#"href="https://src.fedoraproject.org/rpms/optee_os/pull-request/2""#),
            "the pull request's link: {pipelines}"
        );
        let jobs = rows(pipelines);
        let build = jobs
            .iter()
            .find(|r| r[0].starts_with("scratch build rawhide"))
            .unwrap_or_else(|| panic!("no build row: {jobs:#?}"));
        assert!(build[1].starts_with("success"), "{build:?}");
        for (name, state, result) in &runs {
            let row = row_of(&jobs, name, "the pipeline");
            // The result after the state, unless it says the same (error).
            let shown = match result {
                Some(result) if result != state => format!("{state} {result}"),
                _ => state.clone(),
            };
            assert_eq!(row[1], shown, "{name}: {row:?}");
        }
        assert!(
            jobs.iter().any(|r| r[4] == HOSTILE_SUMMARY),
            "the summary, escaped and read back: {jobs:#?}"
        );
        assert!(!page.contains("<script"), "markup is shown as text: {page}");
        assert!(
            text(pipelines).contains(HOSTILE_TITLE),
            "the title, escaped and read back: {pipelines}"
        );

        // The update's run: its alias linked to Bodhi, the build, the
        // release and round, and each test with its state, its link and
        // its CI messages.
        let updates = section(&page, "updates");
        assert!(
            updates.contains(&format!(
                r#"<a href="https://bodhi.fedoraproject.org/updates/{ALIAS}">{ALIAS}</a>"#
            )),
            "the update's link: {updates}"
        );
        let heading = text(updates);
        for shown in [
            "gdb-11.1-5.fc34",
            " on f34 ",
            "initial",
            "Koji task 78709925",
        ] {
            assert!(heading.contains(shown), "{shown:?}: {heading}");
        }
        let tests = rows(updates);
        for (name, state, result, case, messages) in &update_runs {
            let row = row_of(&tests, name, "the update's run");
            let shown = match result {
                Some(result) if result != state => format!("{state} {result}"),
                _ => state.clone(),
            };
            assert_eq!(row[1], shown, "{name}: {row:?}");
            assert_eq!(row[3], format!("{messages} published"), "{name}: {row:?}");
            let case = case.as_deref().expect("a gating run has a test case");
            assert!(row[5].starts_with(case), "{name}: {row:?}");
        }
        assert_eq!(
            row_of(&tests, "installability", "the update's run")[2],
            "artifacts"
        );
        assert!(
            !section(&page, "pipelines").contains(ALIAS),
            "the update is not among the pull requests' pipelines"
        );

        // The outbox: nothing waits, and the last message went out.
        let outbox = text(section(&page, "outbox"));
        assert!(
            outbox.contains("CI messages waiting to be published 0"),
            "{outbox}"
        );
        assert!(
            outbox.contains("Outbox lag (oldest waiting) none"),
            "{outbox}"
        );
        assert!(outbox.contains(" ago"), "last published: {outbox}");

        // The run's events, with their decisions.
        let events = section(&page, "events");
        let event_rows = rows(events);
        let pr_event = event_rows
            .iter()
            .find(|r| r[1].contains(message["id"].as_str().expect("an id")))
            .unwrap_or_else(|| panic!("the pull request's event: {event_rows:#?}"));
        assert!(
            pr_event[1].starts_with("pagure.pull-request.new"),
            "{pr_event:?}"
        );
        assert_eq!(pr_event[3], "processed", "{pr_event:?}");
        assert!(
            pr_event[4].contains(&decision),
            "its decision {decision:?}: {pr_event:?}"
        );
        assert!(
            event_rows
                .iter()
                .any(|r| r[1].starts_with("buildsys.task.state.change")),
            "the Koji messages: {event_rows:#?}"
        );

        // The dead job with its error, as the public may read it: the
        // stand-in's URL (an internal one, in production) is left out.
        let dead = rows(section(&page, "dead-jobs"));
        assert_eq!(dead.len(), 1, "{dead:#?}");
        assert_eq!(dead[0][1], dead_kind);
        assert_eq!(dead[0][3], dead_key);
        assert!(!dead[0][6].contains("127.0.0.1"), "{dead:?}");
        let public: String = dead_error
            .split(' ')
            .map(|word| if word.contains("://") { "<url>:" } else { word })
            .collect::<Vec<_>>()
            .join(" ");
        let error: String = public
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(200)
            .collect();
        assert!(dead[0][6].starts_with(&error), "{dead:?} vs {public}");

        // The pages of the pull request's pipeline, build and tests.
        let failed_request = &ids[1];
        check_pages(
            &stack,
            &pool,
            &chromium,
            profile.path(),
            &page,
            failed_request,
        )
        .await;

        // And a picture of it.
        let shot = profile.path().join("status.png");
        run_chromium(
            &chromium,
            &profile.path().join("screenshot-profile"),
            &[
                &format!("--screenshot={}", shot.display()),
                "--window-size=1280,2400",
                "--hide-scrollbars",
            ],
            &url,
        )
        .await;
        let png = std::fs::read(&shot).expect("Chromium wrote the screenshot");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
        assert!(
            png.len() > 10_000,
            "a page, not a blank: {} bytes",
            png.len()
        );
        if let Some(keep) = std::env::var_os("FCI_STATUS_SCREENSHOT") {
            std::fs::copy(&shot, &keep).expect("copy the screenshot");
        }
    })
    .await
    .expect("test timed out");
}
