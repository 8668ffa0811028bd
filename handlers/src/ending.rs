//! Every give-up ends in a terminal state and a terminal flag: a job that
//! gave up, and a build or test run with no result in time, end as `error`
//! with the reason on the pull request, so nothing stays pending forever.

use events::states::{FlagStatus, TestingFarmResult, TestingFarmState};
use events::typed::TimedOutSubject;
use serde_json::Value;
use sqlx::PgConnection;
use store::flows::{self, TestRunProgress};

use crate::common::{self, Context, Decisions, FlagUpdate};
use crate::pull_request::Variant;

const HANDLER: &str = "ending";

pub(crate) async fn job_dead(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    job_id: i64,
    kind: &str,
    payload: &Value,
    error: &str,
) -> Result<(), sqlx::Error> {
    let subject = Some(format!("job {job_id} ({kind})"));
    let id = |key: &str| payload.get(key).and_then(Value::as_i64);
    match (kind, id("koji_build_id"), id("test_run_id")) {
        ("submit-scratch-build", Some(build), _) => {
            let message = format!("the build could not be submitted to Koji: {error}");
            end_build(conn, ctx, d, build, &message).await
        }
        ("submit-testing-farm", _, Some(run)) => {
            let summary = format!("the tests could not be submitted to Testing Farm: {error}");
            end_run(conn, ctx, d, run, &summary).await
        }
        ("lookup-fact", _, _) => lookup_gave_up(conn, d, payload, error).await,
        _ => {
            d.skipped(
                HANDLER,
                subject,
                format!("gave up ({error}); nothing waits on it"),
            );
            Ok(())
        }
    }
}

pub(crate) async fn timed_out(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    subject: TimedOutSubject,
    id: i64,
    after_seconds: i64,
) -> Result<(), sqlx::Error> {
    let limit = if after_seconds >= 3600 {
        format!("{:.1} h", after_seconds as f64 / 3600.0)
    } else {
        format!("{after_seconds} s")
    };
    match subject {
        TimedOutSubject::KojiBuild => {
            let message = format!("no result from Koji within {limit}");
            end_build(conn, ctx, d, id, &message).await
        }
        TimedOutSubject::TestRun => {
            let summary = format!("no result from Testing Farm within {limit}");
            end_run(conn, ctx, d, id, &summary).await
        }
    }
}

async fn end_build(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    build_id: i64,
    message: &str,
) -> Result<(), sqlx::Error> {
    let subject = Some(format!("Koji build {build_id}"));
    let Some(build) = flows::koji_build(&mut *conn, build_id).await? else {
        d.skipped(HANDLER, subject, "no such build");
        return Ok(());
    };
    if !matches!(build.status.as_str(), "pending" | "running") {
        d.skipped(
            HANDLER,
            subject,
            format!("the build already ended ({})", build.status),
        );
        return Ok(());
    }
    flows::fail_koji_build(&mut *conn, build_id, message).await?;
    // Not submitted yet: it never will be; submitted: it is stopped at Koji.
    store::jobs::cancel_pending(
        &mut *conn,
        &format!("submit-scratch-build:{build_id}"),
        message,
    )
    .await?;
    if build.task_id.is_some() {
        store::jobs::enqueue(
            &mut *conn,
            &store::jobs::NewJob {
                kind: store::jobs::JobKind::CancelKojiTask,
                dedup_key: format!("cancel-koji-task:{build_id}"),
                payload: serde_json::json!({"koji_build_id": build_id, "reason": message}),
                event_id: Some(d.event_id),
                pipeline_id: build.pipeline_id,
            },
        )
        .await?;
    }
    let Some(pipeline_id) = build.pipeline_id else {
        d.acted(HANDLER, subject, format!("ended as error: {message}"), None);
        return Ok(());
    };
    let pipeline = flows::get_pipeline(&mut *conn, pipeline_id).await?;
    let pr = flows::pull_request_of_pipeline(&mut *conn, pipeline_id).await?;
    match pr {
        Some(pr) if pipeline.state == "active" && !build.superseded => {
            let label = Variant::from_str(&build.variant).label(&pr.target_branch);
            let url = build
                .web_url
                .clone()
                .unwrap_or_else(|| ctx.build_page(build.id));
            common::set_flag(
                conn,
                ctx,
                d,
                &FlagUpdate {
                    pull_request_id: pr.pull_request_id,
                    pipeline_id,
                    commit_sha: &pipeline.commit_sha,
                    subject: "scratch build",
                    branch_label: &label,
                    status: FlagStatus::Error,
                    comment: message,
                    url: &url,
                    koji_build_id: Some(build.id),
                    test_run_id: None,
                },
            )
            .await?;
            d.acted(
                HANDLER,
                Some(format!("scratch build {label}")),
                format!("ended as error, flag error: {message}"),
                Some(pipeline_id),
            );
        }
        _ => d.acted(
            HANDLER,
            subject,
            format!("ended as error (no flag: the pipeline has ended): {message}"),
            Some(pipeline_id),
        ),
    }
    Ok(())
}

async fn end_run(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    run_id: i64,
    summary: &str,
) -> Result<(), sqlx::Error> {
    let subject = Some(format!("test run {run_id}"));
    let Some(run) = flows::test_run(&mut *conn, run_id).await? else {
        d.skipped(HANDLER, subject, "no such test run");
        return Ok(());
    };
    if matches!(run.state.as_str(), "complete" | "error" | "canceled") {
        d.skipped(
            HANDLER,
            subject,
            format!("the run already ended ({})", run.state),
        );
        return Ok(());
    }
    store::jobs::cancel_pending(
        &mut *conn,
        &format!("submit-testing-farm:{run_id}"),
        summary,
    )
    .await?;
    if run.request_id.is_some() {
        store::jobs::enqueue(
            &mut *conn,
            &store::jobs::NewJob {
                kind: store::jobs::JobKind::CancelTestingFarm,
                dedup_key: format!("cancel-testing-farm:{run_id}"),
                payload: serde_json::json!({"test_run_id": run_id, "reason": summary}),
                event_id: Some(d.event_id),
                pipeline_id: Some(run.pipeline_id),
            },
        )
        .await?;
    }
    flows::update_test_run(
        &mut *conn,
        &TestRunProgress {
            id: run.id,
            state: TestingFarmState::Error.as_str(),
            result: Some(TestingFarmResult::Error.as_str()),
            summary: Some(summary),
            artifacts_url: None,
        },
    )
    .await?;
    d.observe(crate::Observation::test_run(
        TestingFarmState::Error,
        run.submitted_at,
    ));
    let pipeline = flows::get_pipeline(&mut *conn, run.pipeline_id).await?;
    let pr = flows::pull_request_of_pipeline(&mut *conn, run.pipeline_id).await?;
    let label = Variant::from_str(&run.variant).label(&run.branch);
    match pr {
        Some(pr) if pipeline.state == "active" && !run.superseded => {
            let url = run
                .artifacts_url
                .clone()
                .unwrap_or_else(|| ctx.test_page(run.id));
            common::set_flag(
                conn,
                ctx,
                d,
                &FlagUpdate {
                    pull_request_id: pr.pull_request_id,
                    pipeline_id: pipeline.id,
                    commit_sha: &pipeline.commit_sha,
                    subject: &run.test_name,
                    branch_label: &label,
                    status: FlagStatus::Error,
                    comment: summary,
                    url: &url,
                    koji_build_id: None,
                    test_run_id: Some(run.id),
                },
            )
            .await?;
            d.acted(
                HANDLER,
                Some(format!("{} {label}", run.test_name)),
                format!("ended as error, flag error: {summary}"),
                Some(pipeline.id),
            );
        }
        None if crate::gating::is_gating_run(conn, run.id).await? => {
            d.acted(
                HANDLER,
                subject,
                format!("ended as error: {summary}"),
                Some(run.pipeline_id),
            );
            crate::gating::run_changed(
                conn,
                ctx,
                d,
                run.id,
                checkers::gating::CiState::Error {
                    reason: summary.to_owned(),
                },
            )
            .await?;
        }
        _ => d.acted(
            HANDLER,
            subject,
            format!("ended as error (no flag: the pipeline has ended): {summary}"),
            Some(run.pipeline_id),
        ),
    }
    Ok(())
}

/// A look-up that gave up leaves its events waiting: they are decided with
/// the cautious answer instead — no `.fmf/version` (no custom tests), an
/// `eln` branch exists (no extra ELN build), not a packager (a polite
/// refusal); an answer that expires (group membership, branches) is asked
/// again once it does.
async fn lookup_gave_up(
    conn: &mut PgConnection,
    d: &mut Decisions,
    payload: &Value,
    error: &str,
) -> Result<(), sqlx::Error> {
    let Some(key) = payload.get("fact").and_then(Value::as_str) else {
        d.skipped(HANDLER, None, "a look-up without a fact gave up");
        return Ok(());
    };
    let cautious = payload
        .get("detail")
        .and_then(|detail| detail.get("kind"))
        .and_then(Value::as_str)
        == Some("branch-exists");
    flows::lock_fact(&mut *conn, key, true).await?;
    let woken = flows::wake_waiting_events(&mut *conn, key).await?;
    if woken.is_empty() {
        d.skipped(
            HANDLER,
            Some(key.to_string()),
            format!("the look-up gave up ({error}); nothing waits on it"),
        );
        return Ok(());
    }
    flows::store_fact(&mut *conn, key, &Value::Bool(cautious)).await?;
    d.acted(
        HANDLER,
        Some(key.to_string()),
        format!(
            "the look-up gave up ({error}); {} waiting event(s) decided as if the answer were {cautious}",
            woken.len()
        ),
        None,
    );
    d.woke(woken);
    Ok(())
}

/// An operator canceled a pipeline: what it runs is stopped, and its
/// pending flags end as canceled.
pub(crate) async fn cancel_pipeline(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    pipeline_id: i64,
) -> Result<(), sqlx::Error> {
    let subject = Some(format!("pipeline {pipeline_id}"));
    let reason = "canceled by an operator";
    let gating_runs = store::gating::unfinished_runs(&mut *conn, pipeline_id).await?;
    let Some(ended) = flows::close_pipeline(&mut *conn, pipeline_id, reason, d.event_id).await?
    else {
        d.skipped(HANDLER, subject, "not an active pipeline");
        return Ok(());
    };
    // Gating tests end on the bus too: their results will never come.
    for run_id in gating_runs {
        crate::gating::run_changed(
            conn,
            ctx,
            d,
            run_id,
            checkers::gating::CiState::Error {
                reason: format!("the test was {reason}"),
            },
        )
        .await?;
    }
    let flags = common::cancel_pending_flags(conn, d, pipeline_id, |_| {
        "Canceled by an operator".to_owned()
    })
    .await?;
    d.acted(
        HANDLER,
        subject,
        format!(
            "{reason}: {}; {flags} flag(s) set to canceled",
            if ended.stopped.is_empty() {
                "nothing was running".to_string()
            } else {
                format!("canceling {}", ended.stopped.join(", "))
            }
        ),
        Some(pipeline_id),
    );
    Ok(())
}
