//! F1: a pull request opened, updated, rebased, reopened or closed.
//!
//! The pull request and its head are recorded; the head commit gets a
//! pipeline with a scratch build (and an ELN build where the package needs
//! one) and a pending flag; older pipelines of the same pull request are
//! superseded: what they still run is canceled, their flags still pending
//! end as `canceled` with the reason, and they set no more flags.

use checkers::naming;
use checkers::project::ProjectRef;
use checkers::rules::{self, Check, Fact, Work};
use events::typed::{PrAction, PullRequest};
use sqlx::PgConnection;
use store::flows::{
    self, FirstFlag, NewScratchBuild, PipelineRow, PullRequestRow, PullRequestUpdate,
};

use crate::common::{self, Context, Decisions};

const HANDLER: &str = "pull-request";

pub(crate) async fn handle(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    action: PrAction,
    pr: &PullRequest,
) -> Result<(), sqlx::Error> {
    let subject = Some(format!("PR #{}", pr.number));
    let trigger = (action != PrAction::Closed).then_some("pull_request");
    let Some(Recorded {
        project,
        row,
        pipeline,
    }) = record(conn, ctx, d, pr, trigger).await?
    else {
        return Ok(());
    };
    if action == PrAction::Closed {
        let status = if pr.status.eq_ignore_ascii_case("merged") {
            "merged"
        } else {
            "closed"
        };
        flows::set_pull_request_status(&mut *conn, row.id, status).await?;
        let ended = end_pipelines(conn, d, row.id, None, "closed", None).await?;
        d.acted(
            HANDLER,
            subject,
            format!("pull request {status}; {ended} running pipeline(s) stopped"),
            None,
        );
        return Ok(());
    }
    if row.head_sha != pr.head.as_str() {
        d.skipped(
            HANDLER,
            subject,
            format!(
                "stale message: the pull request is already at {}",
                naming::short_sha(&row.head_sha)
            ),
        );
        return Ok(());
    }
    if row.status != "open" {
        d.skipped(
            HANDLER,
            subject,
            format!("the pull request is {}: nothing runs for it", row.status),
        );
        return Ok(());
    }
    if let Err(skip) = rules::runs_on(&ctx.policy, &project) {
        d.skipped(HANDLER, subject, skip.to_string());
        return Ok(());
    }
    let Some((mut pipeline, created)) = pipeline else {
        d.failed(HANDLER, "the pipeline of the head was not recorded");
        return Ok(());
    };
    if pipeline.state != "active" {
        // A pipeline ends when a newer head supersedes it or the pull request closes. The
        // head coming back to its commit (a force push back to it), or the pull request
        // being reopened, makes it run again; anything else about an ended pipeline is old
        // news.
        let why = match (pipeline.state.as_str(), action) {
            ("superseded", _) => format!("the head returned to {}", pr.head.short()),
            ("closed", PrAction::Reopened) => "the pull request was reopened".to_owned(),
            (state, _) => {
                d.skipped_in(
                    HANDLER,
                    subject,
                    format!("the pipeline of {} has ended ({state})", pr.head.short()),
                    pipeline.id,
                );
                return Ok(());
            }
        };
        restart(conn, d, HANDLER, &mut pipeline, subject.clone(), &why).await?;
    }
    let ended = end_pipelines(
        conn,
        d,
        row.id,
        Some(pr.head.as_str()),
        "superseded",
        Some(pr.head.as_str()),
    )
    .await?;
    if created {
        d.acted(
            HANDLER,
            subject.clone(),
            format!(
                "pipeline {} for {}{}",
                pipeline.id,
                pr.head.short(),
                if ended > 0 {
                    format!(", superseding {ended} older one(s)")
                } else {
                    String::new()
                }
            ),
            Some(pipeline.id),
        );
    }
    let source = ctx.repo_url(&pr.source);
    let source = match ctx.project(&source) {
        Ok(source) => source,
        Err(skip) => {
            d.skipped_in(HANDLER, subject, skip.to_string(), pipeline.id);
            return Ok(());
        }
    };
    let pr_ref = PrRef {
        pull_request_id: row.id,
        target_branch: ci_branch(&project, &row.target_branch),
        project: &project,
        source: &source,
    };
    let trigger = round_trigger(&pipeline);
    if project.namespace == "tests" {
        // Test repositories have nothing to build: their own plans run at once.
        crate::testing_farm::start_tests(conn, ctx, d, &pr_ref, &pipeline, None, &trigger, None)
            .await?;
        return Ok(());
    }
    if let Err(skip) = rules::namespace_allows(&project.namespace, Work::ScratchBuild) {
        d.skipped_in(
            HANDLER,
            Some("scratch build".into()),
            skip.to_string(),
            pipeline.id,
        );
        return Ok(());
    }
    if rules::test_enabled(&ctx.policy, checkers::policy::TestName::Custom).is_ok() {
        // Whether custom tests can run is needed once the build finishes; ask now.
        let fact = Fact::FileExists {
            project_url: source.url.clone(),
            sha: pr.head.as_str().to_owned(),
            path: ".fmf/version".into(),
        };
        common::prefetch_fact(conn, ctx, d, &fact).await?;
    }
    request_build(conn, ctx, d, &pr_ref, &pipeline, Variant::Default, &trigger).await?;
    let eln = crate::eln::build_needed(conn, ctx, &project, &row.target_branch).await?;
    match eln {
        Check::Pass => {
            request_build(conn, ctx, d, &pr_ref, &pipeline, Variant::Eln, &trigger).await?;
        }
        Check::Skip(skip) => {
            d.skipped_in(
                HANDLER,
                Some("ELN scratch build".into()),
                skip.to_string(),
                pipeline.id,
            );
        }
        Check::Unknown(fact) => {
            common::wait_for(
                conn,
                ctx,
                d,
                HANDLER,
                Some("ELN scratch build".into()),
                &fact,
                Some(pipeline.id),
            )
            .await?;
        }
    }
    Ok(())
}

/// The branch a pull request's CI runs for: its target branch, except in `tests/`, whose
/// plans always run on rawhide whatever branch the pull request is for, as in Packit Service
/// (`FEDORA_CI_TESTS_NS_BRANCH` in `packit_service/constants.py`). A test repository's branches
/// are not releases, so its target branch says nothing about where to test.
pub(crate) fn ci_branch<'a>(project: &ProjectRef, target_branch: &'a str) -> &'a str {
    if project.namespace == "tests" {
        "rawhide"
    } else {
        target_branch
    }
}

/// What asked for a pipeline's own builds and tests: `initial` in its first round, `round-N`
/// when it runs again, so a new round decides new work and deciding the same event twice
/// within a round finds what it made.
pub(crate) fn round_trigger(pipeline: &PipelineRow) -> String {
    if pipeline.round <= 1 {
        "initial".to_owned()
    } else {
        format!("round-{}", pipeline.round)
    }
}

/// Make an ended pipeline active again in a new round, and say why. Deciding the same event
/// twice starts one round: the second time the pipeline is already active.
pub(crate) async fn restart(
    conn: &mut PgConnection,
    d: &mut Decisions,
    handler: &'static str,
    pipeline: &mut PipelineRow,
    subject: Option<String>,
    why: &str,
) -> Result<(), sqlx::Error> {
    let Some(round) = flows::restart_pipeline(&mut *conn, pipeline.id).await? else {
        return Ok(());
    };
    pipeline.state = "active".to_owned();
    pipeline.superseded_by = None;
    pipeline.round = round;
    d.acted(
        handler,
        subject,
        format!(
            "pipeline {} for {} runs again (round {round}): {why}",
            pipeline.id,
            naming::short_sha(&pipeline.commit_sha)
        ),
        Some(pipeline.id),
    );
    Ok(())
}

/// The pull request a pipeline belongs to, as the flows need it.
pub(crate) struct PrRef<'a> {
    pub pull_request_id: i64,
    pub target_branch: &'a str,
    pub project: &'a ProjectRef,
    pub source: &'a ProjectRef,
}

/// Which build of a commit: the one for the pull request's branch, or the
/// extra one for ELN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    Default,
    Eln,
}

impl Variant {
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Default => "default",
            Variant::Eln => "eln",
        }
    }

    pub fn from_str(text: &str) -> Self {
        if text == "eln" {
            Variant::Eln
        } else {
            Variant::Default
        }
    }

    /// The Koji target.
    pub fn target(self, branch: &str) -> String {
        match self {
            Variant::Default => naming::koji_target(branch),
            Variant::Eln => "eln".into(),
        }
    }

    /// The branch part of check names.
    pub fn label(self, branch: &str) -> String {
        match self {
            Variant::Default => naming::display_branch(branch),
            Variant::Eln => "eln".into(),
        }
    }
}

/// Record the pull request and its project; `None` (with the reason
/// recorded) when the project is not one of ours.
async fn record(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    pr: &PullRequest,
    pipeline_trigger: Option<&str>,
) -> Result<Option<Recorded>, sqlx::Error> {
    let project = match ctx.project(&ctx.repo_url(&pr.project)) {
        Ok(project) => project,
        Err(skip) => {
            d.skipped(
                HANDLER,
                Some(format!("PR #{}", pr.number)),
                skip.to_string(),
            );
            return Ok(None);
        }
    };
    let source_url = ctx.repo_url(&pr.source);
    let status = match pr.status.to_ascii_lowercase().as_str() {
        "merged" => "merged",
        "closed" => "closed",
        _ => "open",
    };
    // A pipeline only for a project Fedora CI runs on.
    let pipeline_trigger =
        pipeline_trigger.filter(|_| rules::runs_on(&ctx.policy, &project).is_ok());
    let (row, pipeline) = flows::upsert_pull_request(
        &mut *conn,
        &PullRequestUpdate {
            project_url: &project.url,
            forge: &project.forge,
            namespace: &project.namespace,
            repo: &project.repo,
            number: pr.number,
            pagure_uid: pr.uid.as_deref(),
            title: &pr.title,
            author: &pr.author,
            target_branch: &pr.target_branch,
            source_branch: &pr.source_branch,
            source_url: &source_url,
            head_sha: pr.head.as_str(),
            updated: pr.last_updated.unwrap_or(0),
            status,
            url: pr.url.as_deref(),
        },
        pipeline_trigger,
        d.event_id,
    )
    .await?;
    Ok(Some(Recorded {
        project,
        row,
        pipeline,
    }))
}

/// A pull request as recorded, with its project and, when asked for, the
/// pipeline of its head.
pub(crate) struct Recorded {
    pub project: ProjectRef,
    pub row: PullRequestRow,
    pub pipeline: Option<(PipelineRow, bool)>,
}

/// Record a pull request from a message that carries it (comments too).
pub(crate) async fn record_pull_request(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    pr: &PullRequest,
) -> Result<Option<Recorded>, sqlx::Error> {
    record(conn, ctx, d, pr, None).await
}

/// Decide a scratch build of the pipeline's commit: record it, and a job to
/// submit it, and a pending flag. `trigger` tells apart the first build of a
/// commit from builds asked for by comments.
pub(crate) async fn request_build(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    pr: &PrRef<'_>,
    pipeline: &PipelineRow,
    variant: Variant,
    trigger: &str,
) -> Result<(), sqlx::Error> {
    let target = variant.target(pr.target_branch);
    let label = variant.label(pr.target_branch);
    let subject = Some(format!("scratch build {label}"));
    let source_url = pr.source.koji_source_url(&pipeline.commit_sha);
    let trigger_key = format!("pipeline:{}:{trigger}:{}", pipeline.id, variant.as_str());
    let (check_name, uid) = common::flag_names(ctx, "scratch build", &label, &pipeline.commit_sha);
    let url_prefix = ctx.build_page("");
    let created = flows::decide_scratch_build(
        &mut *conn,
        &NewScratchBuild {
            pipeline_id: pipeline.id,
            project_id: pipeline.project_id,
            trigger_key: &trigger_key,
            target: &target,
            branch: pr.target_branch,
            variant: variant.as_str(),
            source_url: &source_url,
            commit_sha: &pipeline.commit_sha,
        },
        &FirstFlag {
            pull_request_id: pr.pull_request_id,
            check_name: &check_name,
            uid: &uid,
            comment: checkers::flags::BUILD_BEING_SUBMITTED,
            url_prefix: &url_prefix,
        },
        d.event_id,
    )
    .await?;
    if created.is_none() {
        d.already_decided(
            HANDLER,
            subject,
            "already decided: the build exists".to_string(),
            pipeline.id,
        );
        return Ok(());
    }
    d.acted(
        HANDLER,
        subject,
        format!("submitting {source_url} to Koji target {target}"),
        Some(pipeline.id),
    );
    Ok(())
}

/// End the active pipelines of a pull request other than the one of
/// `keep_sha`: cancel what they still run or wait to run, and stop their
/// flags. Returns how many were ended.
pub(crate) async fn end_pipelines(
    conn: &mut PgConnection,
    d: &mut Decisions,
    pull_request_id: i64,
    keep_sha: Option<&str>,
    state: &str,
    superseded_by: Option<&str>,
) -> Result<usize, sqlx::Error> {
    let why = match superseded_by {
        Some(sha) => format!("superseded by {}", naming::short_sha(sha)),
        None => "the pull request was closed".to_string(),
    };
    let pipelines = flows::end_pipelines(
        &mut *conn,
        pull_request_id,
        keep_sha,
        state,
        superseded_by,
        &why,
        d.event_id,
    )
    .await?;
    for pipeline in &pipelines {
        let ended_flags = end_flags(conn, d, pipeline, &why).await?;
        d.acted(
            HANDLER,
            Some(format!(
                "pipeline {} ({})",
                pipeline.id,
                naming::short_sha(&pipeline.commit_sha)
            )),
            format!(
                "{why}: {}{}{}",
                if pipeline.stopped.is_empty() {
                    "nothing was running".to_string()
                } else {
                    format!("canceling {}", pipeline.stopped.join(", "))
                },
                if pipeline.dropped_flags > 0 {
                    format!("; {} unsent flag update(s) dropped", pipeline.dropped_flags)
                } else {
                    String::new()
                },
                if ended_flags > 0 {
                    format!("; {ended_flags} flag(s) set to canceled")
                } else {
                    String::new()
                }
            ),
            Some(pipeline.id),
        );
    }
    Ok(pipelines.len())
}

/// End the flags of an ended pipeline still `pending`: `canceled`, saying
/// why. Pagure keeps every
/// flag uid on the pull request, and ours name the commit, so these stay in
/// sight beside the new head's; a check that claims to run when its work was
/// canceled would stay pending forever (SPEC §5). Results that come later
/// are recorded on the build or run but set no flag of an ended pipeline.
async fn end_flags(
    conn: &mut PgConnection,
    d: &Decisions,
    pipeline: &flows::EndedPipeline,
    why: &str,
) -> Result<usize, sqlx::Error> {
    common::cancel_pending_flags(conn, d, pipeline.id, |is_build| {
        checkers::flags::ended_flag(is_build, why).1
    })
    .await
}
