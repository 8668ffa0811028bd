//! The pages the pull-request flags link to, for the people who read them:
//! one pipeline (`/pipelines/{id}`: the pull request or update, the commit,
//! its builds and tests, the flags set, and the decisions with their
//! reasons), one Koji build (`/koji-builds/{id}`) and one Testing Farm run
//! (`/testing-farm/{id}`). The ids are those of `/api/koji-builds/{id}` and
//! `/api/testing-farm/{id}`, which have the same facts as JSON.
//!
//! Server-rendered like the status page, with its look: no script, no
//! external asset, every value escaped by maud, and only `http(s)` URLs
//! become links, since the URLs come from Koji, Testing Farm and messages.
//! An unknown id is a 404 page, an id that is not a number a 400 page, and
//! a database that does not answer a 503 page that tries again.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use store::pages::{BuildPage, CiMessage, FlagRecord, PipelineDecision, PipelinePage, TestPage};
use store::status::TestStatus;

use super::AppState;
use super::status::{
    CSS, absolute, build_row, duration, html_response, link, path_segment, short, short_topic,
    tone, took, truncate,
};
use crate::jobs::public::public_error;

/// Seconds between reloads of a page whose work has not finished, and of
/// the page that says the database did not answer. A finished page stays.
const REFRESH_SECONDS: u32 = 30;

/// Characters of an id shown back on the 400 page.
const ID_CHARS: usize = 80;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/pipelines/{id}", axum::routing::get(pipeline))
        .route("/koji-builds/{id}", axum::routing::get(build))
        .route("/testing-farm/{id}", axum::routing::get(test_run))
}

/// Where the pages link outside the service.
struct Links<'a> {
    /// Koji's web UI, for a task whose page Koji has not told us.
    koji_web_url: &'a str,
    /// The Testing Farm API, where a request can be read.
    testing_farm_api_url: &'a str,
}

impl<'a> Links<'a> {
    fn of(state: &'a AppState) -> Self {
        Links {
            koji_web_url: &state.koji_web_url,
            testing_farm_api_url: &state.testing_farm_api_url,
        }
    }

    fn koji_task(&self, task_id: i64) -> String {
        format!(
            "{}/taskinfo?taskID={task_id}",
            self.koji_web_url.trim_end_matches('/')
        )
    }

    fn testing_farm_request(&self, request_id: &str) -> String {
        format!(
            "{}/requests/{}",
            self.testing_farm_api_url.trim_end_matches('/'),
            path_segment(request_id)
        )
    }
}

async fn pipeline(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match page_id(id) {
        Ok(id) => id,
        Err(problem) => return not_an_id(&problem),
    };
    let read = store::pages::pipeline_page(&state.pool, id).await;
    answer("pipeline", id, read, render_pipeline)
}

async fn build(State(state): State<AppState>, id: Result<Path<String>, PathRejection>) -> Response {
    let id = match page_id(id) {
        Ok(id) => id,
        Err(problem) => return not_an_id(&problem),
    };
    let read = store::pages::build_page(&state.pool, id).await;
    answer("Koji build", id, read, |page| {
        render_build(page, &Links::of(&state))
    })
}

async fn test_run(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match page_id(id) {
        Ok(id) => id,
        Err(problem) => return not_an_id(&problem),
    };
    let read = store::pages::test_page(&state.pool, id).await;
    answer("Testing Farm run", id, read, |page| {
        render_test(page, &Links::of(&state))
    })
}

/// The id of the path, or what is wrong with it: ids are whole numbers
/// from 0.
fn page_id(path: Result<Path<String>, PathRejection>) -> Result<i64, String> {
    let text = match path {
        Ok(Path(text)) => text,
        Err(rejection) => return Err(rejection.body_text()),
    };
    text.parse::<i64>()
        .ok()
        .filter(|id| *id >= 0)
        .ok_or_else(|| {
            format!(
                "The id must be a whole number, not {:?}.",
                truncate(&text, ID_CHARS)
            )
        })
}

fn not_an_id(problem: &str) -> Response {
    error_page(StatusCode::BAD_REQUEST, "Not an id", problem)
}

/// The page, the 404 page, or the 503 page, from what the database said.
fn answer<T>(
    what: &str,
    id: i64,
    read: Result<Option<T>, sqlx::Error>,
    render: impl FnOnce(&T) -> Markup,
) -> Response {
    match read {
        Ok(Some(page)) => html_response(StatusCode::OK, render(&page)),
        Ok(None) => error_page(
            StatusCode::NOT_FOUND,
            &format!("No {what} {id}"),
            &format!("Nothing is recorded as {what} {id}."),
        ),
        Err(error) if is_our_bug(&error) => {
            tracing::error!(%error, what, id, "a recorded row cannot be read back");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page failed on our side",
                "The service's log says why.",
            )
        }
        Err(error) => {
            tracing::error!(%error, what, id, "cannot read a page from the database");
            unavailable()
        }
    }
}

/// A row that cannot be read back is a fault of ours, not the database's.
fn is_our_bug(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Decode(_)
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::TypeNotFound { .. }
    )
}

fn error_page(status: StatusCode, title: &str, text: &str) -> Response {
    html_response(
        status,
        layout(
            title,
            None,
            html! { section { h2 { (title) } p { (text) } } },
        ),
    )
}

/// What a page says when the database does not answer; it tries again.
fn unavailable() -> Response {
    let body = html! {
        section {
            h2 { "The database did not answer" }
            p { "The page tries again every " (REFRESH_SECONDS) " s. The service's log says why." }
        }
    };
    html_response(
        StatusCode::SERVICE_UNAVAILABLE,
        layout("Database unavailable", Some(REFRESH_SECONDS), body),
    )
}

/// Every page: the status page's header and CSS around `main`.
fn layout(title: &str, refresh: Option<u32>, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if let Some(seconds) = refresh {
                    meta http-equiv="refresh" content=(seconds);
                }
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Fedora CI: " (title) }
                style { (PreEscaped(CSS)) (PreEscaped(PAGE_CSS)) }
            }
            body {
                header {
                    h1 { a href="/" { "Fedora CI" } }
                    span { (title) }
                }
                main { (main) }
            }
        }
    }
}

/// What the detail pages add to the status page's CSS.
const PAGE_CSS: &str = r#"
header h1 a{color:#fff;text-decoration:none}
table.facts th{width:11em;font-size:13px;color:#555}
table.facts td,table.facts th{border-bottom:none;padding:1px 6px}
"#;

/// How long ago, and when exactly.
fn when(at: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) { (absolute(at)) }
        span.muted { " (" (duration(now - at)) " ago)" }
    }
}

fn maybe_when(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Markup {
    match at {
        Some(at) => when(at, now),
        None => html! { span.muted { "–" } },
    }
}

/// A state word, with the result after it unless it says the same (an
/// error's result is error too).
fn state_badges(state: &str, result: Option<&str>) -> Markup {
    html! {
        span.badge.(tone(state)) { (state) }
        @if let Some(result) = result.filter(|r| *r != state) {
            " " span.badge.(tone(result)) { (result) }
        }
    }
}

fn unfinished_build(status: &str) -> bool {
    matches!(status, "pending" | "running")
}

fn unfinished_test(state: &str) -> bool {
    matches!(state, "new" | "queued" | "running")
}

// ------------------------------------------------------------------ pipeline

fn render_pipeline(page: &PipelinePage) -> Markup {
    let p = &page.pipeline;
    let now = page.now;
    let running = page.builds.iter().any(|b| unfinished_build(&b.status))
        || page.tests.iter().any(|t| unfinished_test(&t.state));
    let subject = match (&p.pr_number, &p.update_alias) {
        (Some(number), _) => format!("{}#{number}", p.project),
        (None, Some(alias)) => alias.clone(),
        (None, None) => p.project.clone(),
    };
    let title = format!("pipeline {} of {subject} [{}]", p.id, short(&p.commit_sha));
    let main = html! {
        section #summary {
            h2 { "Pipeline " (p.id) }
            table.facts { tbody {
                @if let Some(number) = p.pr_number {
                    tr { th { "Pull request" } td {
                        (link(p.pr_url.as_deref(), &format!("{}#{number}", p.project)))
                        @if let Some(title) = &p.pr_title { " " b { (title) } }
                        @if let Some(author) = &p.pr_author { span.muted { " by " (author) } }
                        @if let Some(status) = &p.pr_status { " " span.badge { (status) } }
                    } }
                    @if let Some(branch) = &p.target_branch {
                        tr { th { "Target branch" } td.mono { (branch) } }
                    }
                }
                @if let Some(alias) = &p.update_alias {
                    tr { th { "Bodhi update" } td { (link(p.update_url.as_deref(), alias)) } }
                    tr { th { "Build" } td {
                        b { (p.nvr.as_deref().unwrap_or("unknown build")) }
                        @if let Some(release) = &p.release { " on " span.mono { (release) } }
                    } }
                }
                tr { th { "Project" } td { (link(Some(&p.project_url), &p.project)) } }
                tr { th { "Commit" } td {
                    span.mono { (p.commit_sha) }
                    @if let Some(source) = &p.source_url {
                        span.muted { " from " } (link(Some(source), source))
                    }
                } }
                tr { th { "State" } td {
                    @if running { span.badge.run { "running" } " " }
                    span.badge.(pipeline_tone(&p.state)) { (p.state) }
                    @if p.state != "active" { " since " (when(p.updated_at, now)) }
                } }
                @if let Some(newer) = &p.superseded_by {
                    tr { th { "Superseded by" } td {
                        @match p.superseded_by_id {
                            Some(id) => a.mono href=(format!("/pipelines/{id}")) { (newer) },
                            None => span.mono { (newer) },
                        }
                    } }
                }
                tr { th { "Started" } td { (when(p.created_at, now)) span.muted { " by " (p.trigger) } } }
                @if p.round > 1 {
                    tr { th { "Round" } td {
                        (p.round) span.muted { ": it ended and ran again (reopened, its commit came back, or a command)" }
                    } }
                }
                tr { th { "As JSON" } td { a href=(format!("/api/runs/{}", p.id)) { "/api/runs/" (p.id) } } }
            } }
        }
        section #builds {
            h2 { "Koji builds" }
            @if page.builds.is_empty() {
                p.muted { "None." }
            } @else {
                table.fixed {
                    thead { tr {
                        th.w16 { "Build" } th.w12 { "State" } th.w12 { "Link" } th.w12 { "Time" }
                        th { "Error" }
                    } }
                    tbody { @for build in &page.builds { (build_row(build, now)) } }
                }
            }
        }
        section #tests {
            h2 { "Testing Farm runs" }
            @if page.tests.is_empty() {
                p.muted { "None." }
            } @else {
                (tests_table(&page.tests, now))
            }
        }
        (flags(&page.flags, now))
        (decisions(&page.decisions, page.decisions_left_out, now))
    };
    layout(&title, running.then_some(REFRESH_SECONDS), main)
}

fn pipeline_tone(state: &str) -> &'static str {
    match state {
        "active" => "ok",
        _ => "",
    }
}

fn tests_table(tests: &[TestStatus], now: DateTime<Utc>) -> Markup {
    html! {
        table.fixed {
            thead { tr {
                th.w16 { "Test" } th.w12 { "State" } th.w12 { "Link" } th.w12 { "Time" }
                th { "Summary" }
            } }
            tbody {
                @for test in tests {
                    tr.test {
                        td {
                            a.mono href=(format!("/testing-farm/{}", test.id)) { (test.test_name) }
                            @if test.variant != "default" { " (" (test.variant) ")" }
                            @if test.superseded { " " span.badge { "superseded" } }
                        }
                        td { (state_badges(&test.state, test.result.as_deref())) }
                        td {
                            @if let Some(url) = test.artifacts_url.as_deref() {
                                (link(Some(url), "artifacts"))
                            } @else if let Some(request) = &test.request_id {
                                span.mono.small title=(request) { "request " (short(request)) }
                            } @else {
                                span.muted { "not submitted" }
                            }
                        }
                        td.nw { (took(test.created_at, test.started_at, test.finished_at, now)) }
                        td.brk { @if let Some(summary) = &test.summary { (summary) } }
                    }
                }
            }
        }
    }
}

/// The flags as this service wants them on the pull request, and whether
/// that state was sent.
fn flags(flags: &[FlagRecord], now: DateTime<Utc>) -> Markup {
    html! {
        section #flags {
            h2 { "Flags on the pull request" }
            @if flags.is_empty() {
                p.muted { "None." }
            } @else {
                table.fixed {
                    thead { tr {
                        th.w30 { "Check" } th.w6 { "Status" } th { "Comment" } th.w16 { "URL" }
                        th.w16 { "Set" } th.w10 { "Sent" }
                    } }
                    tbody {
                        @for flag in flags {
                            tr.flag {
                                td.mono.brk { (flag.check_name) }
                                td { span.badge.(tone(&flag.status)) { (flag.status) } }
                                td.brk { (flag.comment) }
                                td.brk.small { (link(Some(&flag.url), &flag.url)) }
                                td.small { (when(flag.updated_at, now)) }
                                td {
                                    @if flag.sent_version >= flag.version {
                                        span.badge.ok { "sent" }
                                    } @else if flag.sent_version > 0 {
                                        span.badge.warn { "older state sent" }
                                    } @else {
                                        span.badge.warn { "not sent" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn decisions(decisions: &[PipelineDecision], left_out: i64, now: DateTime<Utc>) -> Markup {
    html! {
        section #decisions {
            h2 {
                "Decisions"
                span.small { " (oldest first, with the events that brought them)" }
            }
            @if left_out > 0 {
                p.small.muted {
                    (left_out) " more are left out: the oldest beyond " (store::pages::MAX_DECISIONS)
                    ", and those of the service's own reads that changed nothing; "
                    a href="/api/events" { "the events API" } " has them."
                }
            }
            @if decisions.is_empty() {
                p.muted { "None." }
            } @else {
                table.fixed {
                    thead { tr {
                        th.w16 { "Received" } th.w30 { "Event" } th.w6 { "Outcome" }
                        th { "Decision" }
                    } }
                    tbody {
                        @for decision in decisions {
                            tr.decision {
                                td.small { (when(decision.received_at, now)) }
                                td {
                                    a.mono href=(format!("/api/events/{}", path_segment(&decision.message_id)))
                                        title=(decision.topic) {
                                        (short_topic(&decision.topic))
                                    }
                                    span.small.muted { " " (decision.source) }
                                    br;
                                    span.small.muted.mono.brk { (decision.message_id) }
                                }
                                td { span.badge.(tone(&decision.outcome)) { (decision.outcome) } }
                                td.brk {
                                    span.mono.small { (decision.handler) }
                                    @if let Some(subject) = &decision.subject { " " b { (subject) } }
                                    ": " (decision.reason)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

// --------------------------------------------------------------------- build

fn render_build(page: &BuildPage, links: &Links<'_>) -> Markup {
    let b = &page.build;
    let now = page.now;
    let kind = if b.scratch {
        "scratch build"
    } else {
        "official build"
    };
    let title = match &b.nvr {
        Some(nvr) => format!("{kind} {} ({nvr})", b.id),
        None => format!("{kind} {} for {}", b.id, b.target),
    };
    let task_url = b
        .web_url
        .clone()
        .or_else(|| b.task_id.map(|task| links.koji_task(task)));
    let logs: Vec<(&String, &str)> = b
        .log_urls
        .as_object()
        .map(|logs| {
            logs.iter()
                .filter_map(|(arch, url)| Some((arch, url.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    let main = html! {
        section #summary {
            h2 { "Koji " (kind) " " (b.id) }
            table.facts { tbody {
                (belongs_to(b.pr_number, b.pr_url.as_deref(), b.pr_title.as_deref(),
                            b.project.as_deref(), b.project_url.as_deref(), b.pipeline_id))
                @if !page.updates.is_empty() {
                    tr { th { "Bodhi updates" } td {
                        @for (i, update) in page.updates.iter().enumerate() {
                            @if i > 0 { ", " }
                            (link(update.url.as_deref(), &update.alias))
                            @if let Some(release) = &update.release { " (" (release) ")" }
                        }
                    } }
                }
                @if let Some(nvr) = &b.nvr { tr { th { "NVR" } td.mono { (nvr) } } }
                tr { th { "Koji target" } td {
                    span.mono { (b.target) }
                    @if b.variant != "default" { " (" (b.variant) ")" }
                    @if let Some(branch) = &b.branch { span.muted { " for branch " } span.mono { (branch) } }
                } }
                tr { th { "Source" } td.mono.brk { (b.source_url) } }
                @if let Some(sha) = &b.commit_sha { tr { th { "Commit" } td.mono { (sha) } } }
                tr { th { "State" } td {
                    span.badge.(tone(&b.status)) { (b.status) }
                    @if let Some(state) = &b.koji_state { " " span.small.muted { "Koji: " (state) } }
                    @if b.superseded { " " span.badge { "superseded" } }
                } }
                tr { th { "Koji task" } td {
                    @match (b.task_id, task_url.as_deref()) {
                        (Some(task), url) => (link(url, &format!("Koji task {task}"))),
                        (None, _) => span.muted { "not submitted" },
                    }
                } }
                tr { th { "Build logs" } td {
                    @if logs.is_empty() {
                        span.muted { "none yet" }
                    }
                    @for (i, (arch, url)) in logs.iter().enumerate() {
                        @if i > 0 { " · " }
                        (link(Some(*url), arch.as_str()))
                    }
                } }
                tr { th { "Decided" } td { (when(b.created_at, now)) } }
                tr { th { "Submitted" } td { (maybe_when(b.submitted_at, now)) } }
                tr { th { "Started" } td { (maybe_when(b.started_at, now)) } }
                tr { th { "Finished" } td {
                    (maybe_when(b.finished_at, now))
                    @if let (Some(started), Some(finished)) = (b.started_at, b.finished_at) {
                        span.muted { ", took " (duration(finished - started)) }
                    }
                } }
                tr { th { "Last heard from Koji" } td { (maybe_when(b.last_heard_at, now)) } }
                @if let Some(error) = &b.error_message {
                    tr { th { "Error" } td { pre { (public_error(error)) } } }
                }
                tr { th { "As JSON" } td { a href=(format!("/api/koji-builds/{}", b.id)) { "/api/koji-builds/" (b.id) } } }
            } }
        }
        section #tests {
            h2 { "Tests of this build" }
            @if page.tests.is_empty() {
                p.muted { "None." }
            } @else {
                (tests_table(&page.tests, now))
            }
        }
        (flags(&page.flags, now))
    };
    layout(
        &title,
        unfinished_build(&b.status).then_some(REFRESH_SECONDS),
        main,
    )
}

/// The rows saying which pull request (or project) and pipeline a build or
/// run belongs to.
fn belongs_to(
    pr_number: Option<i64>,
    pr_url: Option<&str>,
    pr_title: Option<&str>,
    project: Option<&str>,
    project_url: Option<&str>,
    pipeline_id: Option<i64>,
) -> Markup {
    let project = project.unwrap_or("unknown project");
    html! {
        @match pr_number {
            Some(number) => tr { th { "Pull request" } td {
                (link(pr_url, &format!("{project}#{number}")))
                @if let Some(title) = pr_title { " " b { (title) } }
            } },
            None => tr { th { "Project" } td { (link(project_url, project)) } },
        }
        @if let Some(id) = pipeline_id {
            tr { th { "Pipeline" } td { a href=(format!("/pipelines/{id}")) { "pipeline " (id) } } }
        }
    }
}

// ---------------------------------------------------------------------- test

fn render_test(page: &TestPage, links: &Links<'_>) -> Markup {
    let t = &page.test;
    let now = page.now;
    let on = t.compose.as_deref().unwrap_or(&t.branch);
    let title = format!("test run {}: {} on {on}", t.id, t.test_name);
    let main = html! {
        section #summary {
            h2 { "Testing Farm run " (t.id) }
            table.facts { tbody {
                (belongs_to(t.pr_number, t.pr_url.as_deref(), t.pr_title.as_deref(),
                            Some(t.project.as_str()), Some(t.project_url.as_str()),
                            Some(t.pipeline_id)))
                @if let Some(alias) = &t.update_alias {
                    tr { th { "Bodhi update" } td { (link(t.update_url.as_deref(), alias)) } }
                }
                tr { th { "Commit" } td.mono { (t.commit_sha) } }
                @if let Some(build) = t.koji_build_id {
                    tr { th { "Build tested" } td { a href=(format!("/koji-builds/{build}")) { "Koji build " (build) } } }
                }
                tr { th { "Test" } td {
                    span.mono { (t.test_name) }
                    @if t.variant != "default" { " (" (t.variant) ")" }
                } }
                @if let Some(case) = &t.test_case { tr { th { "Test case" } td.mono { (case) } } }
                tr { th { "Compose" } td {
                    @match &t.compose {
                        Some(compose) => span.mono { (compose) },
                        None => span.muted { "–" },
                    }
                    span.muted { " for branch " } span.mono { (t.branch) }
                } }
                tr { th { "Testing Farm request" } td {
                    @match &t.request_id {
                        Some(request) => {
                            span.mono { (request) } " · "
                            (link(Some(&links.testing_farm_request(request)), "in the Testing Farm API"))
                        }
                        None => span.muted { "not submitted" },
                    }
                } }
                tr { th { "Artifacts" } td {
                    @match &t.artifacts_url {
                        Some(url) => (link(Some(url), url)),
                        None => span.muted { "none yet" },
                    }
                    @if let Some(xunit) = &t.xunit_url { " · " (link(Some(xunit), "xunit")) }
                } }
                tr { th { "State" } td {
                    (state_badges(&t.state, t.result.as_deref()))
                    @if t.superseded { " " span.badge { "superseded" } }
                    @if t.pipeline_state != "active" {
                        span.muted { " (pipeline " (t.pipeline_state) ")" }
                    }
                } }
                tr { th { "Summary" } td.brk {
                    @match &t.summary {
                        Some(summary) => (summary),
                        None => span.muted { "–" },
                    }
                } }
                tr { th { "Decided" } td { (when(t.created_at, now)) } }
                tr { th { "Submitted" } td { (maybe_when(t.submitted_at, now)) } }
                tr { th { "Started" } td { (maybe_when(t.started_at, now)) } }
                tr { th { "Finished" } td {
                    (maybe_when(t.finished_at, now))
                    @if let (Some(started), Some(finished)) = (t.started_at, t.finished_at) {
                        span.muted { ", took " (duration(finished - started)) }
                    }
                } }
                tr { th { "Last change" } td { (when(t.updated_at, now)) } }
                tr { th { "As JSON" } td { a href=(format!("/api/testing-farm/{}", t.id)) { "/api/testing-farm/" (t.id) } } }
            } }
        }
        @if t.update_alias.is_some() {
            (ci_messages(&page.messages, now))
        } @else {
            (flags(&page.flags, now))
        }
    };
    layout(
        &title,
        unfinished_test(&t.state).then_some(REFRESH_SECONDS),
        main,
    )
}

/// A gating run reports on the bus, not with flags.
fn ci_messages(messages: &[CiMessage], now: DateTime<Utc>) -> Markup {
    html! {
        section #messages {
            h2 { "Fedora CI messages" span.small { " (what ResultsDB and Greenwave read)" } }
            @if messages.is_empty() {
                p.muted { "None yet." }
            } @else {
                table {
                    thead { tr { th { "Topic" } th { "Written" } th { "Published" } } }
                    tbody {
                        @for message in messages {
                            tr.message {
                                td.mono { (message.topic) }
                                td.small { (when(message.created_at, now)) }
                                td.small {
                                    @match message.published_at {
                                        Some(at) => (when(at, now)),
                                        None => span.badge.warn { "waiting" },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::pages::{BuildDetail, PipelineDetail, TestDetail};
    use store::status::BuildStatus;

    const EVIL: &str = r#"<script>alert("x")</script>&"#;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("a time")
    }

    const LINKS: Links<'static> = Links {
        koji_web_url: "https://koji.fedoraproject.org/koji/",
        testing_farm_api_url: "https://api.testing-farm.io/v0.1",
    };

    fn flag(url: &str) -> FlagRecord {
        FlagRecord {
            id: 1,
            check_name: EVIL.into(),
            status: "pending".into(),
            comment: EVIL.into(),
            url: url.into(),
            version: 2,
            sent_version: 1,
            commit_sha: "889f07af35d27bbcaf9c535c17a63b974aa42ee3".into(),
            koji_build_id: Some(1),
            test_run_id: None,
            created_at: at(0),
            updated_at: at(10),
        }
    }

    fn pipeline_page() -> PipelinePage {
        PipelinePage {
            now: at(100),
            pipeline: PipelineDetail {
                id: 3,
                kind: "pull-request".into(),
                trigger: "pull_request".into(),
                state: "superseded".into(),
                superseded_by: Some("b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0".into()),
                superseded_by_id: Some(4),
                round: 2,
                commit_sha: "889f07af35d27bbcaf9c535c17a63b974aa42ee3".into(),
                created_at: at(0),
                updated_at: at(50),
                project: "rpms/optee_os".into(),
                project_url: "https://src.fedoraproject.org/rpms/optee_os".into(),
                pr_number: Some(2),
                pr_title: Some(EVIL.into()),
                pr_author: Some(EVIL.into()),
                pr_url: Some("javascript:alert(1)".into()),
                pr_status: Some("open".into()),
                target_branch: Some("rawhide".into()),
                source_url: Some("https://src.fedoraproject.org/fork/zbyszek/rpms/optee_os".into()),
                update_alias: None,
                update_url: None,
                release: None,
                nvr: None,
            },
            builds: vec![BuildStatus {
                id: 5,
                pipeline_id: 3,
                task_id: Some(42),
                target: "rawhide".into(),
                variant: "default".into(),
                status: "success".into(),
                koji_state: Some("CLOSED".into()),
                superseded: false,
                web_url: Some("https://koji.fedoraproject.org/koji/taskinfo?taskID=42".into()),
                error_message: None,
                created_at: at(0),
                started_at: Some(at(10)),
                finished_at: Some(at(70)),
            }],
            tests: vec![TestStatus {
                id: 6,
                pipeline_id: 3,
                test_name: EVIL.into(),
                branch: "rawhide".into(),
                variant: "default".into(),
                request_id: Some("r-1".into()),
                state: "complete".into(),
                result: Some("failed".into()),
                summary: Some(EVIL.into()),
                artifacts_url: Some("javascript:alert(2)".into()),
                superseded: false,
                created_at: at(70),
                started_at: Some(at(80)),
                finished_at: Some(at(90)),
            }],
            flags: vec![flag("javascript:alert(3)")],
            decisions: vec![PipelineDecision {
                id: 1,
                event_id: 1,
                message_id: "a b/c".into(),
                topic: "org.fedoraproject.prod.pagure.pull-request.new".into(),
                source: "bus".into(),
                received_at: at(0),
                handler: "pull-request".into(),
                outcome: "acted".into(),
                subject: Some(EVIL.into()),
                reason: EVIL.into(),
                created_at: at(1),
            }],
            decisions_left_out: 7,
        }
    }

    fn build_page() -> BuildPage {
        BuildPage {
            now: at(100),
            build: BuildDetail {
                id: 5,
                pipeline_id: Some(3),
                task_id: Some(42),
                build_id: None,
                nvr: None,
                scratch: true,
                target: "rawhide".into(),
                branch: Some("rawhide".into()),
                variant: "eln".into(),
                source_url: EVIL.into(),
                commit_sha: Some("889f07af35d27bbcaf9c535c17a63b974aa42ee3".into()),
                status: "running".into(),
                koji_state: Some("OPEN".into()),
                superseded: false,
                web_url: None,
                log_urls: serde_json::json!({
                    "x86_64": "https://kojipkgs.fedoraproject.org/work/tasks/42/build.log",
                    "<arch>": "javascript:alert(4)",
                }),
                error_message: Some("Koji said no at https://koji.internal/x".into()),
                created_at: at(0),
                submitted_at: Some(at(5)),
                started_at: Some(at(10)),
                finished_at: None,
                last_heard_at: Some(at(60)),
                project: Some("rpms/optee_os".into()),
                project_url: Some("https://src.fedoraproject.org/rpms/optee_os".into()),
                pr_number: Some(2),
                pr_title: Some(EVIL.into()),
                pr_url: Some("https://src.fedoraproject.org/rpms/optee_os/pull-request/2".into()),
            },
            updates: Vec::new(),
            tests: Vec::new(),
            flags: vec![flag("http://127.0.0.1:8080/koji-builds/5")],
        }
    }

    fn test_page(update: bool) -> TestPage {
        TestPage {
            now: at(100),
            test: TestDetail {
                id: 6,
                pipeline_id: 3,
                pipeline_state: "active".into(),
                koji_build_id: Some(5),
                test_name: "installability".into(),
                test_case: None,
                branch: "rawhide".into(),
                variant: "default".into(),
                compose: Some("Fedora-Rawhide".into()),
                request_id: Some("a/b c".into()),
                state: "error".into(),
                result: Some("error".into()),
                summary: Some(EVIL.into()),
                artifacts_url: Some("https://artifacts.testing-farm.io/r-1".into()),
                xunit_url: None,
                superseded: false,
                created_at: at(0),
                submitted_at: Some(at(1)),
                started_at: None,
                finished_at: Some(at(90)),
                updated_at: at(90),
                commit_sha: "889f07af35d27bbcaf9c535c17a63b974aa42ee3".into(),
                project: "rpms/optee_os".into(),
                project_url: "https://src.fedoraproject.org/rpms/optee_os".into(),
                pr_number: (!update).then_some(2),
                pr_title: None,
                pr_url: None,
                update_alias: update.then(|| EVIL.to_owned()),
                update_url: update.then(|| "javascript:alert(5)".to_owned()),
            },
            flags: vec![flag("http://127.0.0.1:8080/testing-farm/6")],
            messages: vec![CiMessage {
                topic: "org.centos.prod.ci.koji-build.test.error".into(),
                created_at: at(90),
                published_at: None,
            }],
        }
    }

    fn assert_safe(page: &str) {
        assert!(!page.contains("<script"), "{page}");
        // Shown as text (a flag's URL is what it is), never as a link.
        assert!(!page.to_lowercase().contains("=\"javascript:"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;"));
    }

    #[test]
    fn the_pipeline_page_escapes_and_links() {
        let page = render_pipeline(&pipeline_page()).into_string();
        assert_safe(&page);
        // Title, author, test name, summary, flag name and comment, subject, reason.
        assert!(page.matches("&lt;script&gt;").count() >= 8, "{page}");
        assert!(
            page.contains(r#"href="/pipelines/4""#),
            "superseded by: {page}"
        );
        assert!(page.contains(r#"href="/koji-builds/5""#), "{page}");
        assert!(page.contains(r#"href="/testing-farm/6""#), "{page}");
        assert!(page.contains(r#"href="/api/events/a%20b%2Fc""#), "{page}");
        assert!(page.contains(" since "), "when it was superseded: {page}");
        assert!(page.contains("older state sent"), "{page}");
        assert!(page.contains("7 more are left out"), "{page}");
        assert!(page.contains("<th>Round</th><td>2<"), "{page}");
        // Finished: it does not reload itself.
        assert!(!page.contains("http-equiv"), "{page}");
    }

    #[test]
    fn the_build_page_links_the_task_and_its_logs() {
        let page = render_build(&build_page(), &LINKS).into_string();
        assert_safe(&page);
        assert!(
            page.contains(
                r#"<a href="https://koji.fedoraproject.org/koji/taskinfo?taskID=42">Koji task 42</a>"#
            ),
            "the task's page from koji.web_url: {page}"
        );
        assert!(
            page.contains(
                r#"<a href="https://kojipkgs.fedoraproject.org/work/tasks/42/build.log">x86_64</a>"#
            ),
            "{page}"
        );
        assert!(page.contains("&lt;arch&gt;"), "{page}");
        assert!(!page.contains("koji.internal"), "a public error: {page}");
        assert!(page.contains(r#"href="/pipelines/3""#), "{page}");
        assert!(
            page.contains(r#"<meta http-equiv="refresh" content="30">"#),
            "running: {page}"
        );
    }

    #[test]
    fn the_test_page_links_testing_farm() {
        let page = render_test(&test_page(false), &LINKS).into_string();
        assert_safe(&page);
        assert!(
            page.contains(r#"href="https://api.testing-farm.io/v0.1/requests/a%2Fb%20c""#),
            "{page}"
        );
        assert!(page.contains(r#"href="https://artifacts.testing-farm.io/r-1""#));
        assert!(page.contains(r#"href="/koji-builds/5""#), "{page}");
        assert!(page.contains(r#"id="flags""#), "{page}");
        // An error's result is error: said once.
        assert_eq!(page.matches(">error<").count(), 1, "{page}");

        let gating = render_test(&test_page(true), &LINKS).into_string();
        assert_safe(&gating);
        assert!(gating.contains(r#"id="messages""#), "{gating}");
        assert!(!gating.contains(r#"id="flags""#), "{gating}");
    }

    #[test]
    fn ids_are_whole_numbers() {
        let id = |text: &str| page_id(Ok(Path(text.to_owned())));
        assert_eq!(id("42"), Ok(42));
        assert_eq!(id("0"), Ok(0));
        assert_eq!(
            id("-1"),
            Err(r#"The id must be a whole number, not "-1"."#.to_owned())
        );
        assert!(id("12x").is_err());
        assert!(id("99999999999999999999").is_err());
        let page = not_an_id(&id("<b>").expect_err("not a number"));
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    }
}
