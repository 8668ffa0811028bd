//! F5: retrigger by pull-request comment (`/packit-ci test`, `scratch-build`,
//! `help`). Only packagers may retrigger; others get a polite reply, and a
//! command that does not parse gets the usage.

use checkers::command::{self, Command, Target};
use checkers::rules::{self, Check, Fact};
use events::states::KojiTaskState;
use events::typed::{Comment, PullRequest};
use sqlx::PgConnection;
use store::flows;

use crate::common::{self, Context, Decisions};
use crate::pull_request::{self, PrRef, Variant};

const HANDLER: &str = "comment";

pub(crate) async fn handle(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    pr: &PullRequest,
    comment: &Comment,
) -> Result<(), sqlx::Error> {
    let subject = Some(format!("comment {} on PR #{}", comment.id, pr.number));
    let prefix = &ctx.policy.comment_prefix;
    if let Err(skip) = rules::not_own_comment(&ctx.policy, &comment.author) {
        d.skipped(HANDLER, subject, skip.to_string());
        return Ok(());
    }
    let Some(parsed) = command::parse_comment(prefix, &comment.text) else {
        d.skipped(HANDLER, subject, rules::Skip::NotACommand.to_string());
        return Ok(());
    };
    let project_url = ctx.repo_url(&pr.project);
    let project = match ctx.project(&project_url) {
        Ok(project) => project,
        Err(skip) => {
            d.skipped(HANDLER, subject, skip.to_string());
            return Ok(());
        }
    };
    if let Err(skip) = rules::project_enabled(&ctx.policy, &project.url) {
        d.skipped(HANDLER, subject, skip.to_string());
        return Ok(());
    }
    let command = match parsed {
        Err(error) => {
            common::post_comment(
                conn,
                d,
                &format!("usage:{}", comment.id),
                &project.url,
                pr.number,
                &command::usage_reply(prefix, &error),
            )
            .await?;
            d.acted(
                HANDLER,
                subject,
                format!("replied with the usage: {error}"),
                None,
            );
            return Ok(());
        }
        Ok(Command::Help) => {
            common::post_comment(
                conn,
                d,
                &format!("help:{}", comment.id),
                &project.url,
                pr.number,
                &command::usage(prefix),
            )
            .await?;
            d.acted(HANDLER, subject, "replied with the help", None);
            return Ok(());
        }
        Ok(command) => command,
    };
    let fact = Fact::GroupMember {
        user: comment.author.clone(),
        group: "packager".into(),
    };
    let groups = common::known_flag_fact(conn, ctx, &fact)
        .await?
        .map(|member| {
            if member {
                vec!["packager".to_string()]
            } else {
                Vec::new()
            }
        });
    match rules::may_retrigger(&comment.author, groups.as_deref()) {
        Check::Pass => {}
        Check::Unknown(fact) => {
            common::wait_for(conn, ctx, d, HANDLER, subject, &fact, None).await?;
            return Ok(());
        }
        Check::Skip(skip) => {
            common::post_comment(
                conn,
                d,
                &format!("refusal:{}", comment.id),
                &project.url,
                pr.number,
                &command::refusal_reply(&comment.author),
            )
            .await?;
            d.acted(
                HANDLER,
                subject,
                format!("{skip}; replied with a refusal"),
                None,
            );
            return Ok(());
        }
    }
    let Some(pull_request::Recorded { project, row, .. }) =
        pull_request::record_pull_request(conn, ctx, d, pr).await?
    else {
        return Ok(());
    };
    let (pipeline, _) = flows::get_or_create_pipeline(
        &mut *conn,
        row.project_id,
        row.id,
        &row.head_sha,
        "comment",
        d.event_id,
    )
    .await?;
    if pipeline.state != "active" {
        d.skipped_in(
            HANDLER,
            subject,
            format!("the pipeline of the head has ended ({})", pipeline.state),
            pipeline.id,
        );
        return Ok(());
    }
    let source = match ctx.project(&row.source_url) {
        Ok(source) => source,
        Err(skip) => {
            d.skipped_in(HANDLER, subject, skip.to_string(), pipeline.id);
            return Ok(());
        }
    };
    let pr_ref = PrRef {
        pull_request_id: row.id,
        target_branch: &row.target_branch,
        project: &project,
        source: &source,
    };
    let trigger = format!("comment:{}", comment.id);
    match command {
        Command::ScratchBuild { target } => {
            if project.namespace == "tests" {
                d.skipped_in(
                    HANDLER,
                    subject,
                    "test repositories have nothing to build",
                    pipeline.id,
                );
                return Ok(());
            }
            let variant = variant_of(target);
            pull_request::request_build(conn, ctx, d, &pr_ref, &pipeline, variant, &trigger)
                .await?;
        }
        Command::Test { test, target } => {
            let variant = variant_of(target);
            if project.namespace == "tests" {
                crate::testing_farm::start_tests(
                    conn, ctx, d, &pr_ref, &pipeline, None, &trigger, test,
                )
                .await?;
                return Ok(());
            }
            let build = flows::latest_koji_build(&mut *conn, pipeline.id, variant.as_str()).await?;
            let state = build
                .as_ref()
                .and_then(|b| b.koji_state.as_deref())
                .and_then(KojiTaskState::from_name);
            if let Err(skip) = rules::build_succeeded(state) {
                common::post_comment(
                    conn,
                    d,
                    &format!("no-build:{}", comment.id),
                    &project.url,
                    pr.number,
                    &format!(
                        "Tests need a successful scratch build of {} first ({skip}). \
                         Ask for one with `{prefix} scratch-build`.",
                        checkers::naming::short_sha(&pipeline.commit_sha)
                    ),
                )
                .await?;
                d.acted(
                    HANDLER,
                    subject,
                    format!("{skip}; replied"),
                    Some(pipeline.id),
                );
                return Ok(());
            }
            let build = build.map(|b| crate::testing_farm::BuildRef {
                id: b.id,
                task_id: b.task_id,
                variant: Variant::from_str(&b.variant),
            });
            crate::testing_farm::start_tests(
                conn,
                ctx,
                d,
                &pr_ref,
                &pipeline,
                build.as_ref(),
                &format!("{trigger}:{}", variant.as_str()),
                test,
            )
            .await?;
        }
        Command::Help => {}
    }
    Ok(())
}

fn variant_of(target: Option<Target>) -> Variant {
    match target {
        Some(Target::Eln) => Variant::Eln,
        Some(Target::Rawhide) | None => Variant::Default,
    }
}
