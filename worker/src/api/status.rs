//! The status page at `/`, for the people who run Fedora CI, in the spirit
//! of Zuul's: the queues' depths and breakers, the inbox's backlog, the
//! outbox of Fedora CI messages, the ELN package list, the pull requests'
//! pipelines with their
//! builds and tests, the Bodhi updates' gating runs, the latest events with
//! their decisions, and the dead jobs. Server-rendered HTML that refreshes itself
//! every 5 s; no script, no external asset. Every value is escaped by maud,
//! and only `http(s)` URLs become links, since the URLs come from outside.
//! Each pipeline, build and test links to its own page (`super::pages`),
//! which shares this page's look and helpers.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use store::dashboard::GatingTestRecord;
use store::eln::ElnStatus;
use store::status::{
    BreakerState, BuildStatus, DeadJob, Limits, OutboxStatus, PipelineStatus, RecentEvent,
    Snapshot, TestStatus, UpdateRunStatus,
};

use super::AppState;
use crate::jobs::public::public_error;

/// Seconds between the page's refreshes.
const REFRESH_SECONDS: u32 = 5;

/// Characters of a dead job's error shown; the rest is in `GET /api/jobs`.
const ERROR_CHARS: usize = 600;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/", axum::routing::get(page))
}

async fn page(State(state): State<AppState>) -> Response {
    let limits = Limits::default();
    match store::status::snapshot(&state.pool, &limits).await {
        Ok(snapshot) => html_response(StatusCode::OK, render(&snapshot, &limits)),
        Err(error) => {
            tracing::error!(%error, "cannot read the status page's snapshot");
            html_response(StatusCode::SERVICE_UNAVAILABLE, unavailable())
        }
    }
}

pub(super) fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // Nothing on the page runs or loads anything: say so to the browser.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        markup.into_string(),
    )
        .into_response()
}

pub(super) const CSS: &str = r#"
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2327;background:#f4f5f7}
header{background:#294172;color:#fff;padding:6px 16px;display:flex;gap:16px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:16px;margin:0}
header a{color:#cfe0ff}
main{padding:8px 16px}
section{background:#fff;border:1px solid #dde1e6;border-radius:4px;margin:0 0 10px;padding:6px 10px}
h2{font-size:14px;margin:2px 0 6px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:2px 6px;border-bottom:1px solid #eef0f2;vertical-align:top}
th{font-weight:600;color:#555;font-size:12px}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
table.fixed{table-layout:fixed}
.nw{white-space:nowrap}.brk{overflow-wrap:anywhere}
.w4{width:4em}.w5{width:5em}.w6{width:6.5em}.w8{width:8em}.w10{width:10em}.w12{width:12em}.w16{width:16em}.w30{width:30%}
.muted,.small{color:#6a737d}.small{font-size:11px}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:11px;font-weight:600;background:#e1e4e8;color:#333;white-space:nowrap}
.ok{background:#d4f4dd;color:#14532d}.bad{background:#fde2e1;color:#8a1c14}
.warn{background:#fff1c2;color:#6b4e00}.run{background:#dbe9ff;color:#123e7c}
.tiles{display:flex;gap:10px;flex-wrap:wrap}
.tile{border:1px solid #dde1e6;border-radius:4px;padding:4px 10px;min-width:120px}
.tile b{display:block;font-size:18px}
.pipeline{border-top:1px solid #dde1e6;padding:4px 0}
.pipeline:first-of-type{border-top:none}
.pipeline.running{border-left:3px solid #3b73d9;padding-left:6px}
ul.decisions{margin:2px 0 0;padding-left:14px}
pre{margin:0;white-space:pre-wrap;word-break:break-word;font-size:12px}
"#;

/// The whole page.
pub fn render(snapshot: &Snapshot, limits: &Limits) -> Markup {
    let now = snapshot.inbox.now;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(REFRESH_SECONDS);
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Fedora CI status" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { "Fedora CI status" }
                    span { "as of " (time(now, now)) " · refreshes every " (REFRESH_SECONDS) " s" }
                    span {
                        a href="/api/events" { "events API" } " · "
                        a href="/metrics" { "metrics" } " · "
                        a href="/api/openapi.json" { "OpenAPI" }
                    }
                }
                main {
                    (overview(snapshot))
                    (outbox(&snapshot.outbox, now))
                    (eln_list(&snapshot.eln, now))
                    (queues(snapshot, now))
                    (breakers(&snapshot.breakers, limits, now))
                    (pipelines(&snapshot.pipelines, now))
                    (update_runs(&snapshot.update_runs, now))
                    (events(&snapshot.events, now))
                    (dead_jobs(&snapshot.dead_jobs, now))
                }
            }
        }
    }
}

/// What the page says when the database does not answer.
fn unavailable() -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(REFRESH_SECONDS);
                title { "Fedora CI status: database unavailable" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header { h1 { "Fedora CI status" } }
                main {
                    section {
                        h2 { "The database did not answer" }
                        p { "The page tries again every " (REFRESH_SECONDS) " s. The service's log says why." }
                    }
                }
            }
        }
    }
}

fn overview(snapshot: &Snapshot) -> Markup {
    let inbox = &snapshot.inbox;
    let now = inbox.now;
    html! {
        section #overview {
            h2 { "Inbox" }
            div.tiles {
                div.tile {
                    span.muted { "Events waiting for decisions" }
                    b { (inbox.waiting) }
                }
                div.tile {
                    span.muted { "Inbox lag (oldest waiting)" }
                    @match inbox.oldest_waiting {
                        Some(oldest) => b title=(absolute(oldest)) { (duration(now - oldest)) },
                        None => b { "none" },
                    }
                }
                div.tile {
                    span.muted { "Events waiting for a fact" }
                    b { (inbox.waiting_for_facts) }
                }
                div.tile {
                    span.muted { "Last event received" }
                    @match inbox.last_received {
                        Some(last) => b title=(absolute(last)) { (duration(now - last)) " ago" },
                        None => b { "never" },
                    }
                }
                div.tile {
                    span.muted { "Events in the last hour" }
                    b {
                        @if snapshot.last_hour.is_empty() { "none" }
                        @for (i, count) in snapshot.last_hour.iter().enumerate() {
                            @if i > 0 { " · " }
                            (count.count) " " span.badge.(tone(&count.status)) { (count.status) }
                        }
                    }
                }
            }
        }
    }
}

/// The queues every runner has, then any other queue that has jobs or breakers.
fn queue_names(snapshot: &Snapshot) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for kind in store::jobs::JobKind::ALL {
        if !names.iter().any(|n| n == kind.queue()) {
            names.push(kind.queue().to_owned());
        }
    }
    let others: BTreeSet<&str> = snapshot
        .queues
        .iter()
        .map(|q| q.queue.as_str())
        .chain(snapshot.breakers.iter().map(|b| b.queue.as_str()))
        .filter(|q| !names.iter().any(|n| n == q))
        .collect();
    names.extend(others.into_iter().map(str::to_owned));
    names
}

fn queues(snapshot: &Snapshot, now: DateTime<Utc>) -> Markup {
    html! {
        section #queues {
            h2 { "Job queues" }
            table {
                thead { tr {
                    th { "Queue" } th.n { "Due now" } th.n { "Later" } th.n { "Running" }
                    th.n { "Dead" } th { "Longest wait" } th { "Breaker" }
                } }
                tbody {
                    @for name in queue_names(snapshot) {
                        @let depth = snapshot.queues.iter().find(|q| q.queue == name);
                        @let runners: Vec<&BreakerState> =
                            snapshot.breakers.iter().filter(|b| b.queue == name).collect();
                        tr {
                            td.mono { (name) }
                            td.n { (depth.map_or(0, |d| d.due)) }
                            td.n { (depth.map_or(0, |d| d.scheduled)) }
                            td.n { (depth.map_or(0, |d| d.running)) }
                            td.n {
                                @let dead = depth.map_or(0, |d| d.dead);
                                @if dead > 0 { span.badge.bad { (dead) } } @else { "0" }
                            }
                            td {
                                @match depth.and_then(|d| d.oldest_due) {
                                    Some(since) => span title=(absolute(since)) { (duration(now - since)) },
                                    None => span.muted { "–" },
                                }
                            }
                            td { (breaker_summary(&runners, now)) }
                        }
                    }
                }
            }
        }
    }
}

/// One queue's breakers across its runners, in a word.
fn breaker_summary(runners: &[&BreakerState], now: DateTime<Utc>) -> Markup {
    if runners.is_empty() {
        return html! { span.muted { "no runner reported" } };
    }
    let open: Vec<&&BreakerState> = runners.iter().filter(|b| b.state == "open").collect();
    let half_open = runners.iter().filter(|b| b.state == "half-open").count();
    let of = |n: usize| {
        if runners.len() > 1 {
            format!(" ({n} of {} runners)", runners.len())
        } else {
            String::new()
        }
    };
    html! {
        @if !open.is_empty() {
            span.badge.bad { "open" }
            @if let Some(until) = open.iter().filter_map(|b| b.until).max() {
                " until " (time(until, now))
            }
            (of(open.len()))
        } @else if half_open > 0 {
            span.badge.warn { "half-open" } (of(half_open))
        } @else {
            span.badge.ok { "closed" }
        }
    }
}

fn breakers(breakers: &[BreakerState], limits: &Limits, now: DateTime<Utc>) -> Markup {
    let recent = chrono::Duration::from_std(limits.breakers_recent).unwrap_or_default();
    html! {
        section #breakers {
            h2 { "Circuit breakers" span.small { " (runners that reported in the last " (duration(recent)) ")" } }
            @if breakers.is_empty() {
                p.muted { "No job runner reported in the last " (duration(recent)) "." }
            } @else {
                table {
                    thead { tr {
                        th { "Queue" } th { "State" } th { "Until" } th.n { "Failures" }
                        th { "Runner" } th { "Reported" }
                    } }
                    tbody {
                        @for breaker in breakers {
                            tr {
                                td.mono { (breaker.queue) }
                                td { span.badge.(breaker_tone(&breaker.state)) { (breaker.state) } }
                                td {
                                    @match breaker.until {
                                        Some(until) => (time(until, now)),
                                        None => span.muted { "–" },
                                    }
                                }
                                td.n { (breaker.failures) }
                                td.mono.small.brk { (breaker.runner) }
                                td title=(absolute(breaker.updated_at)) {
                                    (duration(now - breaker.updated_at)) " ago"
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn pipelines(pipelines: &[PipelineStatus], now: DateTime<Utc>) -> Markup {
    html! {
        section #pipelines {
            h2 { "Pull-request pipelines" span.small { " (unfinished ones first, then the latest)" } }
            @if pipelines.is_empty() {
                p.muted { "No pipeline yet." }
            }
            @for pipeline in pipelines {
                div.pipeline.running[pipeline.running] id=(format!("pipeline-{}", pipeline.id)) {
                    div {
                        @match (&pipeline.pr_number, &pipeline.pr_url) {
                            (Some(number), url) => {
                                (link(url.as_deref(), &format!("{}#{}", pipeline.project, number)))
                            }
                            (None, _) => (link(Some(&pipeline.project_url), &pipeline.project)),
                        }
                        @if let Some(title) = &pipeline.pr_title { " " b { (title) } }
                        @if let Some(author) = &pipeline.pr_author { span.muted { " by " (author) } }
                        @if let Some(branch) = &pipeline.target_branch { " → " span.mono { (branch) } }
                        " · " span.mono title=(pipeline.commit_sha) { (short(&pipeline.commit_sha)) }
                        " · " span.badge.(pipeline_tone(pipeline)) {
                            @if pipeline.running { "running" } @else { (pipeline.state) }
                        }
                        span.small.muted {
                            " " (pipeline.trigger) " · " span title=(absolute(pipeline.created_at)) {
                                (duration(now - pipeline.created_at)) " ago"
                            }
                            " · "
                        }
                        a.small href=(format!("/pipelines/{}", pipeline.id)) { "pipeline " (pipeline.id) }
                    }
                    @if !pipeline.builds.is_empty() || !pipeline.tests.is_empty() {
                        table.fixed {
                            thead { tr {
                                th.w16 { "Build or test" } th.w12 { "State" } th.w12 { "Link" }
                                th.w12 { "Time" } th { "Details" }
                            } }
                            tbody {
                                @for build in &pipeline.builds { (build_row(build, now)) }
                                @for test in &pipeline.tests { (test_row(test, now)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One scratch build as a table row, linking its page; the pipeline page shows the same rows.
pub(super) fn build_row(build: &BuildStatus, now: DateTime<Utc>) -> Markup {
    html! {
        tr.build {
            td {
                a href=(format!("/koji-builds/{}", build.id)) {
                    "scratch build " span.mono { (build.target) }
                    @if build.variant != "default" { " (" (build.variant) ")" }
                }
                @if build.superseded { " " span.badge { "superseded" } }
            }
            td {
                span.badge.(tone(&build.status)) { (build.status) }
                @if let Some(state) = &build.koji_state { " " span.small.muted { (state) } }
            }
            td {
                @match (build.task_id, build.web_url.as_deref()) {
                    (Some(task), url) => (link(url, &format!("Koji task {task}"))),
                    (None, _) => span.muted { "not submitted" },
                }
            }
            td.nw { (took(build.created_at, build.started_at, build.finished_at, now)) }
            td { @if let Some(error) = &build.error_message { (public_error(error)) } }
        }
    }
}

fn test_row(test: &TestStatus, now: DateTime<Utc>) -> Markup {
    html! {
        tr.test {
            td {
                a.mono href=(format!("/testing-farm/{}", test.id)) { (test.test_name) }
                @if test.variant != "default" { " (" (test.variant) ")" }
                @if test.superseded { " " span.badge { "superseded" } }
            }
            td {
                span.badge.(tone(&test.state)) { (test.state) }
                // An error's result is error too: say it once.
                @if let Some(result) = test.result.as_ref().filter(|r| **r != test.state) {
                    " " span.badge.(tone(result)) { (result) }
                }
            }
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
            td { @if let Some(summary) = &test.summary { (summary) } }
        }
    }
}

/// The Fedora CI messages of gating runs on their way to the bus: the
/// publisher sends them in order, so a message that fails holds up the ones
/// behind it, and its error is the one to read.
fn outbox(outbox: &OutboxStatus, now: DateTime<Utc>) -> Markup {
    html! {
        section #outbox {
            h2 { "Outbox" span.small { " (Fedora CI messages of update runs, published on the bus in order)" } }
            div.tiles {
                div.tile {
                    span.muted { "CI messages waiting to be published" }
                    b { (outbox.waiting) }
                }
                div.tile {
                    span.muted { "Outbox lag (oldest waiting)" }
                    @match outbox.oldest_waiting {
                        Some(oldest) => b title=(absolute(oldest)) { (duration(now - oldest)) },
                        None => b { "none" },
                    }
                }
                div.tile {
                    span.muted { "Last published" }
                    @match outbox.last_published {
                        Some(last) => b title=(absolute(last)) { (duration(now - last)) " ago" },
                        None => b { "never" },
                    }
                }
            }
            @if let Some(error) = &outbox.last_error {
                p.outbox-error {
                    span.badge.bad { "failing" }
                    " the first message in line, tried " (outbox.attempts.unwrap_or(0)) " times:"
                }
                pre { (truncate(&public_error(error), ERROR_CHARS)) }
            }
        }
    }
}

/// The ELN package list the rawhide pull requests' ELN builds go by: a
/// list that is not there, or stale because fetching it fails, silently
/// costs packages their ELN builds, so a failure newer than the list is
/// shown in a warning tone.
fn eln_list(eln: &ElnStatus, now: DateTime<Utc>) -> Markup {
    html! {
        section #eln {
            h2 {
                "ELN package list"
                span.small {
                    " (rawhide pull requests of these packages also get an ELN build, as do those of "
                    span.mono { "fedora_ci.eln_packages" } ")"
                }
            }
            @match &eln.list {
                Some(list) => {
                    div.tiles {
                        div.tile {
                            span.muted { "Packages" }
                            b { (list.count) }
                        }
                        div.tile {
                            span.muted { "Fetched" }
                            b title=(absolute(list.fetched_at)) { (duration(now - list.fetched_at)) " ago" }
                        }
                    }
                    table {
                        thead { tr { th { "From" } th.n { "Packages" } } }
                        tbody {
                            @for source in &list.sources {
                                tr {
                                    td.mono.brk { (link(Some(&source.url), &source.url)) }
                                    td.n { (source.count) }
                                }
                            }
                        }
                    }
                }
                None => p.muted {
                    "Never fetched: only the packages of " span.mono { "fedora_ci.eln_packages" }
                    " get ELN builds. The lists come from " span.mono { "fedora_ci.eln_packages_urls" } "."
                },
            }
            @if let Some(failure) = eln.failing() {
                p.eln-failure {
                    span.badge.warn { "fetch failed" }
                    " " span title=(absolute(failure.at)) { (duration(now - failure.at)) " ago" }
                    @if eln.list.is_some() { ", so the list above is kept" }
                    ": " span.mono.brk { (failure.url) }
                }
                pre { (truncate(&public_error(&failure.error), ERROR_CHARS)) }
            }
        }
    }
}

/// The round of testing an update's pipeline is, from what started it.
fn round(trigger: &str) -> &'static str {
    match trigger {
        "bodhi-retrigger" => "re-trigger",
        _ => "initial",
    }
}

fn update_runs(runs: &[UpdateRunStatus], now: DateTime<Utc>) -> Markup {
    html! {
        section #updates {
            h2 {
                "Update runs (gating)"
                span.small {
                    " (one per build of a Bodhi update per round; unfinished ones first, then the latest; all in "
                    a href="/api/updates" { "the updates API" } ")"
                }
            }
            @if runs.is_empty() {
                p.muted { "No update tested yet." }
            }
            @for run in runs {
                div.pipeline.running[run.running] id=(format!("update-run-{}", run.id)) {
                    div {
                        (link(run.update_url.as_deref(), &run.alias))
                        " " b title=(run.project) { (run.nvr.as_deref().unwrap_or("unknown build")) }
                        @if let Some(release) = &run.release { " on " span.mono { (release) } }
                        " · " span.badge { (round(&run.trigger)) }
                        @if !run.commit_sha.is_empty() {
                            " · " span.mono title=(run.commit_sha) { (short(&run.commit_sha)) }
                        }
                        " · "
                        @if run.running { span.badge.run { "running" } } @else { span.badge { "finished" } }
                        span.small.muted {
                            @if let Some(task) = run.task_id { " Koji task " (task) " ·" }
                            " " span title=(absolute(run.created_at)) {
                                (duration(now - run.created_at)) " ago"
                            }
                            " · "
                        }
                        a.small href=(format!("/pipelines/{}", run.id)) { "pipeline " (run.id) }
                    }
                    @if !run.tests.is_empty() {
                        table.fixed {
                            thead { tr {
                                th.w12 { "Test" } th.w12 { "State" } th.w10 { "Link" }
                                th.w10 { "CI messages" } th.w10 { "Time" } th { "Test case and summary" }
                            } }
                            tbody {
                                @for test in &run.tests { (gating_test_row(test, now)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn gating_test_row(test: &GatingTestRecord, now: DateTime<Utc>) -> Markup {
    html! {
        tr.test {
            td {
                a.mono href=(format!("/testing-farm/{}", test.id)) { (test.test_name) }
                @if test.superseded { " " span.badge { "superseded" } }
            }
            td {
                span.badge.(tone(&test.state)) { (test.state) }
                @if let Some(result) = test.result.as_ref().filter(|r| **r != test.state) {
                    " " span.badge.(tone(result)) { (result) }
                }
            }
            td {
                @if let Some(url) = test.artifacts_url.as_deref() {
                    (link(Some(url), "artifacts"))
                } @else if let Some(request) = &test.request_id {
                    span.mono.small title=(request) { "request " (short(request)) }
                } @else {
                    span.muted { "not submitted" }
                }
            }
            td.nw {
                @if test.messages_published == 0 && test.messages_pending == 0 {
                    span.muted { "none yet" }
                } @else {
                    (test.messages_published) " published"
                    @if test.messages_pending > 0 {
                        " " span.badge.warn { (test.messages_pending) " waiting" }
                    }
                }
            }
            td.nw { (took(test.created_at, test.started_at, test.finished_at, now)) }
            td.brk {
                @if let Some(case) = &test.test_case { span.mono.small { (case) } }
                @if let Some(summary) = &test.summary { br; (summary) }
            }
        }
    }
}

fn events(events: &[RecentEvent], now: DateTime<Utc>) -> Markup {
    html! {
        section #events {
            h2 {
                "Latest events"
                span.small {
                    " (newest first, with their decisions; the service's own reads that changed nothing are in "
                    a href="/api/events" { "the events API" } ")"
                }
            }
            @if events.is_empty() {
                p.muted { "No event received yet." }
            } @else {
                table.fixed {
                    thead { tr {
                        th.w6 { "Received" } th.w30 { "Topic" } th.w5 { "Source" } th.w6 { "Status" }
                        th { "Reason and decisions" }
                    } }
                    tbody {
                        @for event in events {
                            tr.event {
                                td title=(absolute(event.received_at)) {
                                    (duration(now - event.received_at)) " ago"
                                }
                                td {
                                    a.mono href=(format!("/api/events/{}", path_segment(&event.message_id)))
                                        title=(event.topic) {
                                        (short_topic(&event.topic))
                                    }
                                    br;
                                    span.small.muted.mono.brk { (event.message_id) }
                                }
                                td { (event.source) }
                                td { span.badge.(tone(&event.status)) { (event.status) } }
                                td.brk {
                                    // The reason sums the decisions up: either says it.
                                    @if event.decisions.is_empty() {
                                        @if let Some(reason) = &event.reason { (reason) }
                                    } @else {
                                        ul.decisions {
                                            @for decision in &event.decisions {
                                                li.decision {
                                                    span.badge.(tone(&decision.outcome)) { (decision.outcome) }
                                                    " " span.mono.small { (decision.handler) }
                                                    @if let Some(subject) = &decision.subject {
                                                        " " b { (subject) }
                                                    }
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
            }
        }
    }
}

fn dead_jobs(jobs: &[DeadJob], now: DateTime<Utc>) -> Markup {
    html! {
        section #dead-jobs {
            h2 { "Dead jobs" span.small { " (latest first; retry with " span.mono { "fedora-ci-worker jobs retry ID" } ")" } }
            @if jobs.is_empty() {
                p.muted { "None." }
            } @else {
                table.fixed {
                    thead { tr {
                        th.n.w4 { "Id" } th.w10 { "Kind" } th.w8 { "Queue" } th.w12 { "Key" }
                        th.n.w5 { "Attempts" } th.w6 { "Died" } th { "Error" }
                    } }
                    tbody {
                        @for job in jobs {
                            tr.dead {
                                td.n { (job.id) }
                                td.mono.brk { (job.kind) }
                                td.mono { (job.queue) }
                                td.mono.small.brk { (job.dedup_key) }
                                td.n { (job.attempts) "/" (job.max_attempts) }
                                td title=(absolute(job.died_at)) { (duration(now - job.died_at)) " ago" }
                                td { pre { (truncate(&public_error(job.last_error.as_deref().unwrap_or("")), ERROR_CHARS)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A link if the URL is http(s) (they come from Koji, Testing Farm and
/// messages: a `javascript:` one must not become a link), else the text.
pub(super) fn link(url: Option<&str>, text: &str) -> Markup {
    match url.filter(|u| is_http(u)) {
        Some(url) => html! { a href=(url) { (text) } },
        None => html! { (text) },
    }
}

pub(super) fn is_http(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// A message id as one path segment.
pub(super) fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `org.fedoraproject.prod.pagure.pull-request.new` → `pagure.pull-request.new`.
pub(super) fn short_topic(topic: &str) -> &str {
    match topic.strip_prefix("org.fedoraproject.") {
        Some(rest) => rest.split_once('.').map_or(rest, |(_, topic)| topic),
        None => topic,
    }
}

pub(super) fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

pub(super) fn truncate(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The colour of a status, result or outcome word.
pub(super) fn tone(word: &str) -> &'static str {
    match word {
        "success" | "passed" | "processed" | "acted" | "complete" => "ok",
        "failure" | "failed" | "error" | "dead" => "bad",
        "pending" | "running" | "queued" | "new" | "received" | "waiting" => "run",
        // skipped, canceled, unknown
        _ => "",
    }
}

fn breaker_tone(state: &str) -> &'static str {
    match state {
        "closed" => "ok",
        "open" => "bad",
        _ => "warn",
    }
}

fn pipeline_tone(pipeline: &PipelineStatus) -> &'static str {
    if pipeline.running {
        "run"
    } else if pipeline.state == "active" {
        "ok"
    } else {
        ""
    }
}

/// How long something ran, or has been running, or has been waiting.
pub(super) fn took(
    created: DateTime<Utc>,
    started: Option<DateTime<Utc>>,
    finished: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Markup {
    match (started, finished) {
        (Some(started), Some(finished)) => {
            html! { span title=(absolute(finished)) { "took " (duration(finished - started)) } }
        }
        (None, Some(finished)) => {
            html! { span title=(absolute(finished)) { "ended " (duration(now - finished)) " ago" } }
        }
        (Some(started), None) => {
            html! { span title=(absolute(started)) { "running for " (duration(now - started)) } }
        }
        (None, None) => {
            html! { span title=(absolute(created)) { "waiting for " (duration(now - created)) } }
        }
    }
}

/// A time near `now`: the clock time, with the date when not today.
pub(super) fn time(at: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    let text = if at.date_naive() == now.date_naive() {
        at.format("%H:%M:%S UTC").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M UTC").to_string()
    };
    html! { time datetime=(at.to_rfc3339()) { (text) } }
}

pub(super) fn absolute(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `42 s`, `3 min 5 s`, `2 h 10 min`, `3 d 4 h`.
pub(super) fn duration(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s} s"),
        60..600 if s % 60 != 0 => format!("{} min {} s", s / 60, s % 60),
        60..3_600 => format!("{} min", s / 60),
        3_600..86_400 => format!("{} h {} min", s / 3_600, s % 3_600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3_600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::eln::{Failure, ListSource, ListSummary};
    use store::status::{EventDecision, Inbox, QueueDepth, StatusCount};

    const EVIL: &str = r#"<script>alert("x")</script>&"#;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("a time")
    }

    fn snapshot() -> Snapshot {
        let now = at(100);
        Snapshot {
            inbox: Inbox {
                now,
                waiting: 3,
                oldest_waiting: Some(at(58)),
                waiting_for_facts: 1,
                last_received: Some(at(99)),
            },
            last_hour: vec![StatusCount {
                status: "processed".into(),
                count: 7,
            }],
            outbox: OutboxStatus {
                waiting: 4,
                oldest_waiting: Some(at(13)),
                last_error: Some(EVIL.into()),
                attempts: Some(3),
                last_published: Some(at(40)),
            },
            eln: ElnStatus {
                list: Some(ListSummary {
                    count: 3,
                    fetched_at: at(-7_200),
                    sources: vec![
                        ListSource {
                            url: "https://tiny.distro.builders/view-eln.txt".into(),
                            count: 2,
                        },
                        ListSource {
                            url: "ftp://mirror.example.org/view-eln-extras.txt".into(),
                            count: 1,
                        },
                    ],
                }),
                last_failure: Some(Failure {
                    at: at(40),
                    url: "https://tiny.distro.builders/view-eln-extras.txt".into(),
                    error: format!(
                        "eln-package-list: GET https://tiny.distro.builders/x: 503 {EVIL}"
                    ),
                }),
            },
            queues: vec![QueueDepth {
                queue: "testing-farm".into(),
                due: 2,
                scheduled: 1,
                running: 1,
                dead: 1,
                oldest_due: Some(at(90)),
            }],
            breakers: vec![BreakerState {
                queue: "distgit".into(),
                runner: EVIL.into(),
                state: "open".into(),
                until: Some(at(400)),
                failures: 5,
                updated_at: at(95),
            }],
            pipelines: vec![PipelineStatus {
                id: 1,
                project: "rpms/optee_os".into(),
                project_url: "https://src.fedoraproject.org/rpms/optee_os".into(),
                pr_number: Some(2),
                pr_title: Some(EVIL.into()),
                pr_author: Some("zbyszek".into()),
                pr_url: Some("https://src.fedoraproject.org/rpms/optee_os/pull-request/2".into()),
                target_branch: Some("rawhide".into()),
                commit_sha: "889f07af35d27bbcaf9c535c17a63b974aa42ee3".into(),
                state: "active".into(),
                trigger: "pr-opened".into(),
                running: true,
                created_at: at(0),
                builds: vec![BuildStatus {
                    id: 1,
                    pipeline_id: 1,
                    task_id: Some(42),
                    target: "rawhide".into(),
                    variant: "default".into(),
                    status: "success".into(),
                    koji_state: Some("CLOSED".into()),
                    superseded: false,
                    web_url: Some(
                        "https://koji.fedoraproject.org/koji/taskinfo?taskID=42&x=1".into(),
                    ),
                    error_message: None,
                    created_at: at(0),
                    started_at: Some(at(10)),
                    finished_at: Some(at(70)),
                }],
                tests: vec![TestStatus {
                    id: 1,
                    pipeline_id: 1,
                    test_name: EVIL.into(),
                    branch: "rawhide".into(),
                    variant: "default".into(),
                    request_id: Some("r-1".into()),
                    state: "running".into(),
                    result: None,
                    summary: Some(EVIL.into()),
                    artifacts_url: Some("javascript:alert(1)".into()),
                    superseded: false,
                    created_at: at(70),
                    started_at: Some(at(80)),
                    finished_at: None,
                }],
            }],
            update_runs: vec![UpdateRunStatus {
                id: 2,
                alias: EVIL.into(),
                update_url: Some("javascript:alert(2)".into()),
                nvr: Some("gdb-11.1-5.fc34".into()),
                task_id: Some(78_709_925),
                project: "rpms/gdb".into(),
                release: Some("f34".into()),
                commit_sha: "5b7e3a1d9f1c2e4b6a8d0c2e4f6a8b0d2c4e6f80".into(),
                trigger: "bodhi-retrigger".into(),
                running: true,
                created_at: at(20),
                tests: vec![GatingTestRecord {
                    id: 7,
                    pipeline_id: 2,
                    test_name: "installability".into(),
                    test_case: Some("fedora-ci.koji-build.installability.functional".into()),
                    request_id: Some("r-7".into()),
                    state: "complete".into(),
                    result: Some("passed".into()),
                    summary: Some(EVIL.into()),
                    artifacts_url: Some("https://artifacts.example.org/r-7".into()),
                    xunit_url: None,
                    superseded: false,
                    created_at: at(20),
                    started_at: Some(at(30)),
                    finished_at: Some(at(60)),
                    messages_published: 2,
                    messages_pending: 1,
                }],
            }],
            events: vec![RecentEvent {
                id: 1,
                message_id: "a b/c".into(),
                topic: "org.fedoraproject.prod.pagure.pull-request.new".into(),
                source: "bus".into(),
                status: "processed".into(),
                reason: Some(EVIL.into()),
                received_at: at(1),
                decisions: vec![EventDecision {
                    event_id: 1,
                    handler: "pull-request".into(),
                    outcome: "acted".into(),
                    subject: Some(EVIL.into()),
                    reason: EVIL.into(),
                }],
            }],
            dead_jobs: vec![DeadJob {
                id: 9,
                kind: "submit-testing-farm".into(),
                queue: "testing-farm".into(),
                dedup_key: "submit-testing-farm:3".into(),
                attempts: 1,
                max_attempts: 10,
                last_error: Some(EVIL.repeat(100)),
                died_at: at(50),
            }],
        }
    }

    #[test]
    fn every_value_is_escaped() {
        let page = render(&snapshot(), &Limits::default()).into_string();
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;"));
        // Titles, runners, test names, summaries, reasons, subjects, errors.
        assert!(page.matches("&lt;script&gt;").count() >= 7, "{page}");
        // Attribute values too.
        assert!(
            page.contains(
                r#"href="https://koji.fedoraproject.org/koji/taskinfo?taskID=42&amp;x=1""#
            )
        );
        assert!(page.contains(r#"href="/api/events/a%20b%2Fc""#));
    }

    #[test]
    fn pipelines_builds_and_tests_link_their_pages() {
        let page = render(&snapshot(), &Limits::default()).into_string();
        // The pull request's pipeline and the update's run.
        assert!(page.contains(r#"href="/pipelines/1""#), "{page}");
        assert!(page.contains(r#"href="/pipelines/2""#), "{page}");
        assert!(page.contains(r#"href="/koji-builds/1""#), "{page}");
        // The pull request's test and the update's.
        assert!(page.contains(r#"href="/testing-farm/1""#), "{page}");
        assert!(page.contains(r#"href="/testing-farm/7""#), "{page}");
    }

    #[test]
    fn only_http_urls_become_links() {
        let page = render(&snapshot(), &Limits::default()).into_string();
        assert!(!page.contains("javascript:"), "{page}");
        assert!(is_http("HTTPS://example.org"));
        assert!(!is_http("javascript:alert(1)"));
        assert!(!is_http("//example.org"));
    }

    #[test]
    fn the_page_shows_depths_breakers_and_lag() {
        let page = render(&snapshot(), &Limits::default()).into_string();
        assert!(page.contains(r#"<meta http-equiv="refresh" content="5">"#));
        assert!(page.contains("42 s"), "inbox lag: {page}");
        assert!(page.contains("until <time"), "{page}");
        assert!(page.contains("no runner reported"), "koji has none: {page}");
        assert!(page.contains("Koji task 42"));
        assert!(page.contains("running for 20 s"));
        assert!(page.contains("took 1 min"));
    }

    #[test]
    fn the_page_shows_update_runs_and_the_outbox() {
        let page = render(&snapshot(), &Limits::default()).into_string();
        assert!(!page.contains("javascript:alert(2)"), "{page}");
        assert!(page.contains("gdb-11.1-5.fc34"), "{page}");
        assert!(page.contains(">re-trigger<"), "{page}");
        assert!(page.contains("fedora-ci.koji-build.installability.functional"));
        assert!(page.contains("2 published"), "{page}");
        assert!(page.contains("1 waiting"), "{page}");
        assert!(page.contains("tried 3 times"), "{page}");
        // The outbox's lag: written at 13, now is 100.
        assert!(page.contains("1 min 27 s"), "{page}");
        assert_eq!(round("bodhi-update"), "initial");
    }

    #[test]
    fn the_page_shows_the_eln_list_and_a_failure_newer_than_it() {
        let mut snapshot = snapshot();
        let page = render(&snapshot, &Limits::default()).into_string();
        let section = page
            .split(r#"<section id="eln">"#)
            .nth(1)
            .and_then(|rest| rest.split("</section>").next())
            .expect("the ELN section");
        assert!(section.contains("<b>3</b>"), "{section}");
        assert!(
            section.contains("2 h 1 min ago"),
            "fetched at -7200, now is 100: {section}"
        );
        assert!(section.contains(r#"href="https://tiny.distro.builders/view-eln.txt""#));
        assert!(
            section.contains("ftp://mirror.example.org/view-eln-extras.txt")
                && !section.contains(r#"href="ftp:"#),
            "only http(s) URLs are links: {section}"
        );
        assert!(section.contains("fetch failed"), "{section}");
        assert!(section.contains("badge warn"), "{section}");
        assert!(section.contains("so the list above is kept"), "{section}");
        assert!(!section.contains("<script"), "{section}");
        assert!(section.contains("503"), "{section}");

        // A failure older than the list is history, not news.
        if let Some(failure) = snapshot.eln.last_failure.as_mut() {
            failure.at = at(-8_000);
        }
        let page = render(&snapshot, &Limits::default()).into_string();
        assert!(!page.contains("fetch failed"), "{page}");

        snapshot.eln.list = None;
        let page = render(&snapshot, &Limits::default()).into_string();
        assert!(page.contains("Never fetched"), "{page}");
        assert!(
            page.contains("fetch failed"),
            "with no list, any failure is news: {page}"
        );
    }

    #[test]
    fn long_errors_are_cut() {
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("ééé", 2), "éé…");
    }

    #[test]
    fn durations_read_short() {
        let d = chrono::Duration::seconds;
        assert_eq!(duration(d(-5)), "0 s");
        assert_eq!(duration(d(42)), "42 s");
        assert_eq!(duration(d(125)), "2 min 5 s");
        assert_eq!(duration(d(120)), "2 min");
        assert_eq!(duration(d(725)), "12 min");
        assert_eq!(duration(d(7_800)), "2 h 10 min");
        assert_eq!(duration(d(3 * 86_400 + 4 * 3_600)), "3 d 4 h");
    }

    #[test]
    fn topics_lose_their_prefix() {
        assert_eq!(
            short_topic("org.fedoraproject.prod.buildsys.task.state.change"),
            "buildsys.task.state.change"
        );
        assert_eq!(
            short_topic("fedora-ci-worker.testing-farm.request"),
            "fedora-ci-worker.testing-farm.request"
        );
    }
}
