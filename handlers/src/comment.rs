//! F5: retrigger by pull-request comment (`/packit-ci test`, `scratch-build`,
//! `help`), read and answered as Packit Service's Fedora CI does.
//!
//! Only packagers may retrigger; others get a polite reply. Every command
//! that runs nothing gets a reply saying why: it did not parse, the test
//! named does not apply to the project, there is no successful build to
//! test, there is no ELN build for `--target eln`, or the pull request is
//! closed. A command acts on the pull request's current head, and makes its
//! pipeline run again if it had ended. Without `--target`, a command acts on
//! every build of the pull request: the one for its branch and, for a
//! rawhide pull request of an ELN package, the ELN one.

use checkers::command::{self, Command, Target};
use checkers::policy::TestName;
use checkers::rules::{self, Check, Fact, Work};
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
    let docs = &ctx.policy.docs_url;
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
    let enabled = rules::runs_on(&ctx.policy, &project);
    let reply = Reply {
        comment_id: comment.id,
        project_url: &project.url,
        pr_number: pr.number,
    };
    let command = match (parsed, enabled) {
        // Help is answered on every project, as Packit Service does; on one Fedora CI does
        // not run on, it says so.
        (Ok(Command::Help), enabled) => {
            let not_running = enabled.err().map(|skip| skip.to_string());
            let text = command::usage(prefix, docs, not_running.as_deref());
            reply.post(conn, d, "help", &text).await?;
            d.acted(HANDLER, subject, "replied with the help", None);
            return Ok(());
        }
        (_, Err(skip)) => {
            d.skipped(HANDLER, subject, skip.to_string());
            return Ok(());
        }
        (Err(error), Ok(())) => {
            let text = command::usage_reply(prefix, docs, &error);
            reply.post(conn, d, "usage", &text).await?;
            d.acted(
                HANDLER,
                subject,
                format!("replied with the usage: {error}"),
                None,
            );
            return Ok(());
        }
        (Ok(command), Ok(())) => command,
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
            let text = command::refusal_reply(&comment.author);
            reply.post(conn, d, "refusal", &text).await?;
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
    if row.status != "open" {
        let text = format!(
            "Fedora CI ran nothing for this command: the pull request is {}. Commands act on \
             open pull requests.",
            row.status
        );
        reply.post(conn, d, "closed", &text).await?;
        d.acted(
            HANDLER,
            subject,
            format!("the pull request is {}; replied", row.status),
            None,
        );
        return Ok(());
    }
    // The command acts on the head as recorded now, whichever commit the pull request had
    // when the comment was written.
    let (mut pipeline, _) = flows::get_or_create_pipeline(
        &mut *conn,
        row.project_id,
        row.id,
        &row.head_sha,
        "comment",
        d.event_id,
    )
    .await?;
    if pipeline.state != "active" {
        let why = format!("{} asked for it in comment {}", comment.author, comment.id);
        pull_request::restart(conn, d, HANDLER, &mut pipeline, subject.clone(), &why).await?;
    }
    pull_request::end_pipelines(
        conn,
        d,
        row.id,
        Some(&row.head_sha),
        "superseded",
        Some(&row.head_sha),
    )
    .await?;
    let source = match ctx.project(&row.source_url) {
        Ok(source) => source,
        Err(skip) => {
            d.skipped_in(HANDLER, subject, skip.to_string(), pipeline.id);
            return Ok(());
        }
    };
    let pr_ref = PrRef {
        pull_request_id: row.id,
        target_branch: pull_request::ci_branch(&project, &row.target_branch),
        project: &project,
        source: &source,
    };
    let trigger = format!("comment:{}", comment.id);
    let asked = Asked {
        subject,
        reply,
        pipeline: &pipeline,
        pr: &pr_ref,
    };
    match command {
        Command::ScratchBuild { target } => {
            if project.namespace == "tests" {
                let text = format!(
                    "Test repositories have nothing to build. `{prefix} test` runs their plans \
                     again."
                );
                asked.reply.post(conn, d, "tests-build", &text).await?;
                d.acted(
                    HANDLER,
                    asked.subject,
                    "test repositories have nothing to build; replied",
                    Some(pipeline.id),
                );
                return Ok(());
            }
            let Some(variants) = variants(conn, ctx, d, &asked, target).await? else {
                return Ok(());
            };
            for variant in variants {
                pull_request::request_build(conn, ctx, d, &pr_ref, &pipeline, variant, &trigger)
                    .await?;
            }
        }
        Command::Test { test, target } => {
            if let Some(test) = test
                && !test_applies(conn, ctx, d, &asked, test).await?
            {
                return Ok(());
            }
            if project.namespace == "tests" {
                crate::testing_farm::start_tests(
                    conn, ctx, d, &pr_ref, &pipeline, None, &trigger, test,
                )
                .await?;
                return Ok(());
            }
            let Some(variants) = variants(conn, ctx, d, &asked, target).await? else {
                return Ok(());
            };
            let mut missing = Vec::new();
            for variant in variants {
                let built =
                    flows::latest_koji_build(&mut *conn, pipeline.id, variant.as_str(), true)
                        .await?;
                let Some(build) = built else {
                    let latest =
                        flows::latest_koji_build(&mut *conn, pipeline.id, variant.as_str(), false)
                            .await?;
                    missing.push(no_build_text(variant, &pr_ref, latest.as_ref()));
                    continue;
                };
                let build = crate::testing_farm::BuildRef {
                    id: build.id,
                    task_id: build.task_id,
                    variant,
                };
                crate::testing_farm::start_tests(
                    conn,
                    ctx,
                    d,
                    &pr_ref,
                    &pipeline,
                    Some(&build),
                    &format!("{trigger}:{}", variant.as_str()),
                    test,
                )
                .await?;
            }
            if !missing.is_empty() {
                let text = format!(
                    "Tests need a successful scratch build of {} first; {}. Ask for one with \
                     `{prefix} scratch-build`.",
                    checkers::naming::short_sha(&pipeline.commit_sha),
                    missing.join("; ")
                );
                asked.reply.post(conn, d, "no-build", &text).await?;
                d.acted(
                    HANDLER,
                    asked.subject,
                    format!(
                        "no successful build to test: {}; replied",
                        missing.join("; ")
                    ),
                    Some(pipeline.id),
                );
            }
        }
        Command::Help => {}
    }
    Ok(())
}

/// Where replies to one comment go. Each kind of reply is posted once per comment, however
/// often the comment is decided.
struct Reply<'a> {
    comment_id: i64,
    project_url: &'a str,
    pr_number: i64,
}

impl Reply<'_> {
    async fn post(
        &self,
        conn: &mut PgConnection,
        d: &Decisions,
        kind: &str,
        text: &str,
    ) -> Result<(), sqlx::Error> {
        common::post_comment(
            conn,
            d,
            &format!("{kind}:{}", self.comment_id),
            self.project_url,
            self.pr_number,
            text,
        )
        .await?;
        Ok(())
    }
}

/// A command to carry out on a pull request's head.
struct Asked<'a> {
    subject: Option<String>,
    reply: Reply<'a>,
    pipeline: &'a flows::PipelineRow,
    pr: &'a PrRef<'a>,
}

/// Which builds a command acts on: `--target rawhide` the one for the pull request's branch,
/// `--target eln` the ELN one, and no target both when the pull request gets an ELN build, as
/// Packit Service runs both its rawhide and its ELN handlers then. `None` when the command
/// stops here: it waits for a look-up, or it asked for an ELN build that this pull request
/// does not get (and was told why).
async fn variants(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    asked: &Asked<'_>,
    target: Option<Target>,
) -> Result<Option<Vec<Variant>>, sqlx::Error> {
    if target == Some(Target::Rawhide) {
        return Ok(Some(vec![Variant::Default]));
    }
    let eln = crate::eln::build_needed(conn, ctx, asked.pr.project, asked.pr.target_branch).await?;
    match (target, eln) {
        (_, Check::Unknown(fact)) => {
            wait(conn, ctx, d, asked, &fact).await?;
            Ok(None)
        }
        (None, Check::Pass) => Ok(Some(vec![Variant::Default, Variant::Eln])),
        (None, Check::Skip(_)) => Ok(Some(vec![Variant::Default])),
        (_, Check::Pass) => Ok(Some(vec![Variant::Eln])),
        (_, Check::Skip(skip)) => {
            let text = format!(
                "This pull request has no ELN build ({skip}), so `--target eln` has nothing to \
                 act on."
            );
            asked.reply.post(conn, d, "no-eln", &text).await?;
            d.acted(
                HANDLER,
                asked.subject.clone(),
                format!("no ELN build: {skip}; replied"),
                Some(asked.pipeline.id),
            );
            Ok(None)
        }
    }
}

/// Whether the test named in `test <name>` applies to this pull request, as Packit Service
/// offers only the tests whose checks pass for the project. When it does not, the reply says
/// why and lists the tests that do; `false` also when the answer waits for a look-up.
async fn test_applies(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    asked: &Asked<'_>,
    test: TestName,
) -> Result<bool, sqlx::Error> {
    let why = match applies(conn, ctx, asked, test).await? {
        Check::Pass => return Ok(true),
        Check::Skip(skip) => skip.to_string(),
        Check::Unknown(fact) => {
            wait(conn, ctx, d, asked, &fact).await?;
            return Ok(false);
        }
    };
    let mut applicable = Vec::new();
    for candidate in TestName::ALL {
        match applies(conn, ctx, asked, candidate).await? {
            Check::Pass => applicable.push(candidate),
            Check::Skip(_) => {}
            Check::Unknown(fact) => {
                wait(conn, ctx, d, asked, &fact).await?;
                return Ok(false);
            }
        }
    }
    let text =
        command::inapplicable_test_reply(&ctx.policy.comment_prefix, test, &why, &applicable);
    asked.reply.post(conn, d, "not-applicable", &text).await?;
    d.acted(
        HANDLER,
        asked.subject.clone(),
        format!("the {test} test does not apply: {why}; replied"),
        Some(asked.pipeline.id),
    );
    Ok(false)
}

/// Whether one test applies: it is enabled, the namespace runs it, and for `custom`, the head
/// has tmt plans (a look-up).
async fn applies(
    conn: &mut PgConnection,
    ctx: &Context,
    asked: &Asked<'_>,
    test: TestName,
) -> Result<Check, sqlx::Error> {
    if let Err(skip) = rules::test_enabled(&ctx.policy, test)
        .and_then(|()| rules::namespace_allows(&asked.pr.project.namespace, Work::Test(test)))
    {
        return Ok(Check::Skip(skip));
    }
    if test != TestName::Custom {
        return Ok(Check::Pass);
    }
    let fact = Fact::FileExists {
        project_url: asked.pr.source.url.clone(),
        sha: asked.pipeline.commit_sha.clone(),
        path: ".fmf/version".into(),
    };
    let present = common::known_flag_fact(conn, ctx, &fact).await?;
    Ok(rules::custom_tests_possible(
        &asked.pr.source.url,
        &asked.pipeline.commit_sha,
        present,
    ))
}

async fn wait(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    asked: &Asked<'_>,
    fact: &Fact,
) -> Result<(), sqlx::Error> {
    common::wait_for(
        conn,
        ctx,
        d,
        HANDLER,
        asked.subject.clone(),
        fact,
        Some(asked.pipeline.id),
    )
    .await
}

/// Why one build of the head cannot be tested yet, for the reply.
fn no_build_text(variant: Variant, pr: &PrRef<'_>, latest: Option<&flows::KojiBuildRow>) -> String {
    let label = variant.label(pr.target_branch);
    let Some(latest) = latest else {
        return format!("the {label} build has not been made");
    };
    let state = latest
        .koji_state
        .as_deref()
        .and_then(KojiTaskState::from_name);
    match state {
        Some(state) if state.is_final() => format!("the last {label} build is {state}"),
        _ if matches!(latest.status.as_str(), "pending" | "running") => format!(
            "the {label} build is still running, and the tests run by themselves when it \
             succeeds"
        ),
        _ => format!("the last {label} build ended as {}", latest.status),
    }
}
