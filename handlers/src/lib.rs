//! The Fedora CI flows of SPEC §2: a recorded event in, decisions and jobs out.
//!
//! [`handle`] reads one inbox row as a typed event and gives it to the one
//! handler for its kind (the `match` below is the whole routing). A handler
//! reads and updates the flow records, asks the [`checkers`] whether to act,
//! records every decision with its reason, and creates the jobs that carry
//! the decisions out, all on the caller's transaction: the decider commits
//! them together with the event's new status, or not at all.
//!
//! No handler calls an external service. What a decision needs to know from
//! one (is this user a packager, does the commit have `.fmf/version`, does the
//! project have an `eln` branch) is a fact: a job looks it up, and the event
//! waits and is decided again when the fact arrives.
//!
//! Handling an event twice creates nothing new: builds, runs and jobs are
//! keyed by the decision that made them.

mod comment;
mod common;
pub mod decider;
mod eln;
mod ending;
mod facts;
mod gating;
mod koji;
mod observation;
mod pull_request;
mod push;
mod testing_farm;

pub use common::{Context, Decided, EventRow};
pub use observation::Observation;

use events::typed::{self, Event};
use sqlx::PgConnection;

/// What the decider looked up for a whole batch at once, to spare each
/// event a round trip.
#[derive(Debug, Clone, Default)]
pub struct BatchHints {
    /// Of the Koji tasks the batch's events name, those that are our builds.
    /// `None`: not looked up.
    pub known_tasks: Option<std::collections::HashSet<i64>>,
}

/// Decide what to do about one recorded event.
pub async fn handle(
    conn: &mut PgConnection,
    ctx: &Context,
    row: &EventRow<'_>,
) -> Result<Decided, sqlx::Error> {
    handle_in_batch(conn, ctx, row, &BatchHints::default()).await
}

/// [`handle`], with what the decider looked up for the batch.
pub async fn handle_in_batch(
    conn: &mut PgConnection,
    ctx: &Context,
    row: &EventRow<'_>,
    hints: &BatchHints,
) -> Result<Decided, sqlx::Error> {
    let mut d = common::Decisions::new(row.id);
    // Production and staging share no broker, but a replayed file or a misbound queue can
    // bring the other environment's messages: they are recorded and decided by nobody here.
    if let Some(environment) = typed::topic_environment(row.topic)
        && environment != ctx.policy.deployment
    {
        d.skipped(
            "route",
            None,
            format!(
                "a message of the {environment} environment: this deployment \
                 (fedora_ci.deployment = {}) decides only its own topics",
                ctx.policy.deployment
            ),
        );
        return Ok(d.finish());
    }
    let Some(body) = row.body else {
        d.failed("inbox", "the event has no body to read");
        return Ok(d.finish());
    };
    let event = match typed::parse(row.topic, body) {
        Ok(event) => event,
        Err(error) => {
            d.failed("parse", error.to_string());
            return Ok(d.finish());
        }
    };
    match &event {
        Event::PullRequest { action, pr, .. } => {
            pull_request::handle(conn, ctx, &mut d, *action, pr).await?;
        }
        Event::PullRequestComment { pr, comment } => {
            comment::handle(conn, ctx, &mut d, pr, comment).await?;
        }
        Event::PullRequestFlag { username, .. } => d.skipped(
            "flag",
            None,
            format!("a flag by {username:?}: flags are recorded, not acted on"),
        ),
        Event::Push(push) => push::handle(conn, ctx, &mut d, push).await?,
        Event::KojiTask(task) => koji::task(conn, ctx, &mut d, task, hints).await?,
        Event::KojiBuild(build) => koji::build(conn, ctx, &mut d, build).await?,
        Event::KojiTag(tag) => d.skipped(
            "koji",
            Some(tag.nvr.clone()),
            format!("tagged into {}: tags do not start Fedora CI", tag.tag),
        ),
        Event::BodhiUpdateReady(update) => gating::update_ready(conn, ctx, &mut d, update).await?,
        Event::TestingFarmNotification { request_id } => {
            testing_farm::notification(conn, &mut d, request_id).await?;
        }
        Event::TestingFarmRequest(request) => {
            testing_farm::request_state(conn, ctx, &mut d, request).await?;
        }
        Event::TestingFarmSubmitted {
            test_run_id,
            request_id,
        } => gating::submitted(conn, ctx, &mut d, *test_run_id, request_id).await?,
        Event::Fact { key, value } => facts::arrived(conn, &mut d, key, value).await?,
        Event::JobDead {
            job_id,
            kind,
            payload,
            error,
        } => ending::job_dead(conn, ctx, &mut d, *job_id, kind, payload, error).await?,
        Event::TimedOut {
            subject,
            id,
            after_seconds,
        } => ending::timed_out(conn, ctx, &mut d, *subject, *id, *after_seconds).await?,
        Event::CancelPipeline { pipeline_id } => {
            ending::cancel_pipeline(conn, ctx, &mut d, *pipeline_id).await?;
        }
        Event::PagureIo { topic, project } => {
            let of = project
                .as_deref()
                .map_or_else(String::new, |p| format!(" about its project {p}"));
            d.skipped(
                "route",
                None,
                format!(
                    "a message of pagure.io{of} ({topic}): Fedora CI runs on dist-git projects \
                     only"
                ),
            );
        }
        Event::Unhandled { topic } => {
            d.skipped("route", None, format!("no Fedora CI flow handles {topic}"))
        }
    }
    d.recall_earlier_passes(conn).await?;
    Ok(d.finish())
}
