//! F2: Koji tells us (or a poll finds) that a task changed state; and
//! official builds, which are recorded with the commit they were built from.

use checkers::rules;
use events::states::{KojiBuildState, KojiTaskState};
use events::typed::{KojiBuild, KojiTask};
use serde_json::{Map, Value};
use sqlx::PgConnection;
use store::flows::{self, KojiBuildProgress, OfficialBuild, PipelineRow};

use crate::common::{self, Context, Decisions, FlagUpdate};
use crate::pull_request::{PrRef, Variant};
use crate::testing_farm::BuildRef;

const HANDLER: &str = "koji";

/// Our status of a build in a Koji task state.
fn build_status(state: KojiTaskState) -> &'static str {
    match state {
        KojiTaskState::Free | KojiTaskState::Assigned => "pending",
        KojiTaskState::Open => "running",
        KojiTaskState::Closed => "success",
        KojiTaskState::Failed => "failure",
        KojiTaskState::Canceled => "canceled",
    }
}

pub(crate) async fn task(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    task: &KojiTask,
    hints: &crate::BatchHints,
) -> Result<(), sqlx::Error> {
    let subject = Some(format!("Koji task {}", task.id));
    if hints
        .known_tasks
        .as_ref()
        .is_some_and(|known| !known.contains(&task.id.0))
    {
        d.skipped(HANDLER, subject, "not a build this service submitted");
        return Ok(());
    }
    let Some(build) = flows::task_build(&mut *conn, task.id.0).await? else {
        d.skipped(HANDLER, subject, "not a build this service submitted");
        return Ok(());
    };
    let current = build
        .koji_state
        .as_deref()
        .and_then(KojiTaskState::from_name);
    if let Err(skip) = rules::koji_transition(current, task.new) {
        d.skipped(HANDLER, subject, skip.to_string());
        return Ok(());
    }
    let log_urls: Map<String, Value> = task
        .arch_tasks
        .iter()
        .map(|(id, arch)| (arch.clone(), Value::String(ctx.koji_build_log_url(id.0))))
        .collect();
    let web_url = ctx.koji_task_url(task.id.0);
    flows::update_koji_build(
        &mut *conn,
        &KojiBuildProgress {
            id: build.id,
            koji_state: task.new.name(),
            status: build_status(task.new),
            started_at: common::epoch(task.started),
            finished_at: if task.new.is_final() {
                common::epoch(task.completed).or_else(|| Some(chrono::Utc::now()))
            } else {
                None
            },
            web_url: Some(&web_url),
            log_urls: &Value::Object(log_urls),
        },
    )
    .await?;
    d.observe(crate::Observation::koji_task(task, build.submitted_at));
    let (
        Some(pipeline_id),
        Some(pipeline_state),
        Some(commit_sha),
        Some(project_id),
        Some(pull_request_id),
        Some(target_branch),
        Some(source_url),
        Some(project_url),
    ) = (
        build.pipeline_id,
        build.pipeline_state.as_deref(),
        build.commit_sha.as_deref(),
        build.project_id,
        build.pull_request_id,
        build.target_branch.as_deref(),
        build.source_url.as_deref(),
        build.project_url.as_deref(),
    )
    else {
        d.acted(
            HANDLER,
            subject,
            format!("recorded {}", task.new),
            build.pipeline_id,
        );
        return Ok(());
    };
    if build.superseded || pipeline_state != "active" {
        d.skipped_in(
            HANDLER,
            subject,
            format!(
                "recorded {}; no flag: the pipeline has ended ({pipeline_state}{})",
                task.new,
                build
                    .superseded_by
                    .as_deref()
                    .map(|sha| format!(" by {}", checkers::naming::short_sha(sha)))
                    .unwrap_or_default()
            ),
            pipeline_id,
        );
        return Ok(());
    }
    let variant = Variant::from_str(&build.variant);
    let label = variant.label(target_branch);
    let (status, text) = checkers::flags::koji_flag(task.new);
    common::set_flag(
        conn,
        ctx,
        d,
        &FlagUpdate {
            pull_request_id,
            pipeline_id,
            commit_sha,
            subject: "scratch build",
            branch_label: &label,
            status,
            comment: text,
            url: &web_url,
            koji_build_id: Some(build.id),
            test_run_id: None,
        },
    )
    .await?;
    d.acted(
        HANDLER,
        Some(format!("scratch build {label}")),
        format!("Koji task {} is {}: flag {status}", task.id, task.new),
        Some(pipeline_id),
    );
    if task.new == KojiTaskState::Closed {
        let (project, source) = match (ctx.project(project_url), ctx.project(source_url)) {
            (Ok(project), Ok(source)) => (project, source),
            (Err(skip), _) | (_, Err(skip)) => {
                d.skipped_in(HANDLER, Some("tests".into()), skip.to_string(), pipeline_id);
                return Ok(());
            }
        };
        let pr_ref = PrRef {
            pull_request_id,
            target_branch,
            project: &project,
            source: &source,
        };
        let pipeline = PipelineRow {
            id: pipeline_id,
            project_id,
            pull_request_id: Some(pull_request_id),
            commit_sha: commit_sha.to_string(),
            state: pipeline_state.to_string(),
            superseded_by: build.superseded_by.clone(),
            round: build.pipeline_round.unwrap_or(1),
        };
        crate::testing_farm::start_tests(
            conn,
            ctx,
            d,
            &pr_ref,
            &pipeline,
            Some(&BuildRef {
                id: build.id,
                task_id: Some(task.id.0),
                variant,
            }),
            &format!("build:{}", build.id),
            None,
        )
        .await?;
    }
    Ok(())
}

/// Official builds: a COMPLETE build of a dist-git commit is recorded with
/// that commit. Scratch builds are followed through their tasks instead.
pub(crate) async fn build(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    build: &KojiBuild,
) -> Result<(), sqlx::Error> {
    let nvr = build.nvr();
    let subject = Some(nvr.clone());
    if build.new != KojiBuildState::Complete {
        d.skipped(
            HANDLER,
            subject,
            format!(
                "build is {}: only COMPLETE official builds are recorded",
                build.new
            ),
        );
        return Ok(());
    }
    let Some(source) = build.source.as_deref() else {
        d.skipped(
            HANDLER,
            subject,
            "the message names no source for the build",
        );
        return Ok(());
    };
    let (url, sha) = split_source(source);
    let project = match ctx.project(&url) {
        Ok(project) => project,
        Err(skip) => {
            d.skipped(HANDLER, subject, skip.to_string());
            return Ok(());
        }
    };
    let log_urls: Map<String, Value> = build
        .arch_tasks
        .iter()
        .map(|(id, arch)| (arch.clone(), Value::String(ctx.koji_build_log_url(id.0))))
        .collect();
    let log_urls = Value::Object(log_urls);
    let created = flows::record_official_build_of(
        &mut *conn,
        (
            &project.url,
            &project.forge,
            &project.namespace,
            &project.repo,
        ),
        &OfficialBuild {
            project_id: None,
            build_id: build.build_id,
            task_id: build.task_id.map(|t| t.0),
            nvr: &nvr,
            target: build.target.as_deref().unwrap_or(""),
            source_url: source,
            commit_sha: sha,
            started_at: common::epoch(build.started),
            finished_at: common::epoch(build.completed),
            owner: build.owner.as_deref(),
            branch: build.target.as_deref().and_then(target_branch),
            log_urls: Some(&log_urls),
        },
    )
    .await?;
    if created.is_some() {
        d.acted(
            HANDLER,
            subject,
            format!(
                "official build {} of {} recorded",
                build.build_id,
                sha.map_or_else(|| "an unknown commit".to_string(), |s| s.to_string())
            ),
            None,
        );
    } else {
        d.skipped(HANDLER, subject, "this build is already recorded");
    }
    Ok(())
}

/// The dist-git branch a Koji target builds: `f43` for `f43-candidate`,
/// `rawhide` for `rawhide` (as Packit Service reads it); none for a side tag
/// (`f43-build-side-12345`), which names no branch.
pub(crate) fn target_branch(target: &str) -> Option<&str> {
    let branch = target.strip_suffix("-candidate").unwrap_or(target);
    checkers::naming::Release::from_branch(branch).map(|_| branch)
}

/// `git+https://src.fedoraproject.org/rpms/foo.git#<sha>` → the project's web
/// URL and the commit. A fragment that is not a full commit hash (a branch
/// name, or anything a forged message put there) gives no commit: the build
/// is then "not built from a dist-git commit", and nothing puts the fragment
/// into a dist-git URL, a Testing Farm request or a flag.
pub(crate) fn split_source(source: &str) -> (String, Option<&str>) {
    let source = source.strip_prefix("git+").unwrap_or(source);
    let (url, sha) = match source.split_once('#') {
        Some((url, sha)) => (url, Some(sha).filter(|s| events::typed::is_commit_sha(s))),
        None => (source, None),
    };
    (
        url.trim_end_matches('/')
            .trim_end_matches(".git")
            .to_string(),
        sha,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_target_names_its_branch_unless_it_is_a_side_tag() {
        for (target, branch) in [
            ("rawhide", Some("rawhide")),
            ("f43-candidate", Some("f43")),
            ("epel10.1-candidate", Some("epel10.1")),
            ("epel9-candidate", Some("epel9")),
            ("eln", Some("eln")),
            ("f43-build-side-12345", None),
            ("", None),
        ] {
            assert_eq!(super::target_branch(target), branch, "{target}");
        }
    }

    #[test]
    fn build_sources_split_into_project_and_commit() {
        assert_eq!(
            super::split_source(
                "git+https://src.fedoraproject.org/rpms/python-ogr.git#e029dd5250dde9a37a2cdddb6d822d973b09e5da"
            ),
            (
                "https://src.fedoraproject.org/rpms/python-ogr".to_string(),
                Some("e029dd5250dde9a37a2cdddb6d822d973b09e5da")
            )
        );
        for fragment in [
            "rawhide",
            "..",
            "e029dd5",
            "E029DD5250DDE9A37A2CDDDB6D822D973B09E5DA",
        ] {
            assert_eq!(
                super::split_source(&format!(
                    "git+https://src.fedoraproject.org/rpms/python-ogr.git#{fragment}"
                )),
                (
                    "https://src.fedoraproject.org/rpms/python-ogr".to_string(),
                    None
                ),
                "{fragment}"
            );
        }
        assert_eq!(
            super::split_source("cli-build/1590993046.5615945.hqCGfULV/hello.src.rpm"),
            (
                "cli-build/1590993046.5615945.hqCGfULV/hello.src.rpm".to_string(),
                None
            )
        );
    }
}
