//! F3 and F4: tests on Testing Farm after a successful scratch build, and
//! what Testing Farm reports about them.

use checkers::naming;
use checkers::payload::{BuildUnderTest, CustomSource, PayloadContext};
use checkers::policy::TestName;
use checkers::rules::{self, Check, Fact, Work};
use events::states::TestingFarmState;
use events::typed::TestingFarmRequest;
use serde_json::json;
use sqlx::PgConnection;
use store::flows::{self, PipelineRow, TestRunProgress, TestToDecide, TestsOf};
use store::jobs::{self, JobKind, NewJob};

use crate::common::{self, Context, Decisions, FlagUpdate};
use crate::pull_request::{PrRef, Variant};

const HANDLER: &str = "testing-farm";

/// How long a read asked for by a webhook waits for more calls about the
/// same request (Testing Farm retries a call for about 30 s).
const WEBHOOK_DEBOUNCE: std::time::Duration = std::time::Duration::from_secs(2);

/// The successful scratch build that tests run against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BuildRef {
    pub id: i64,
    pub task_id: Option<i64>,
    pub variant: Variant,
}

/// Decide the tests of a pipeline's commit: one Testing Farm run per enabled
/// test (or only `only`), each with a job to submit it and a pending flag,
/// all written in one statement. `build` is the successful scratch build
/// under test (none for `tests/` repositories); `trigger` names what asked
/// for the tests, so that asking twice for the same reason decides nothing
/// new.
#[expect(clippy::too_many_arguments, reason = "the inputs of one decision")]
pub(crate) async fn start_tests(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    pr: &PrRef<'_>,
    pipeline: &PipelineRow,
    build: Option<&BuildRef>,
    trigger: &str,
    only: Option<TestName>,
) -> Result<(), sqlx::Error> {
    let variant = build.map_or(Variant::Default, |b| b.variant);
    let label = variant.label(pr.target_branch);
    let tests = match only {
        Some(test) => vec![test],
        None => ctx.policy.enabled_tests.clone(),
    };
    let compose = naming::compose(pr.target_branch, variant == Variant::Eln);
    // (test, trigger key, payload, check name, uid)
    let mut decided: Vec<(TestName, String, serde_json::Value, String, String)> = Vec::new();
    for test in tests {
        let subject = Some(format!("{test} {label}"));
        if let Err(skip) = rules::test_enabled(&ctx.policy, test)
            .and_then(|()| rules::namespace_allows(&pr.project.namespace, Work::Test(test)))
        {
            d.skipped_in(HANDLER, subject, skip.to_string(), pipeline.id);
            continue;
        }
        if test == TestName::Custom {
            let fact = Fact::FileExists {
                project_url: pr.source.url.clone(),
                sha: pipeline.commit_sha.clone(),
                path: ".fmf/version".into(),
            };
            let present = common::known_flag_fact(conn, ctx, &fact).await?;
            match rules::custom_tests_possible(&pr.source.url, &pipeline.commit_sha, present) {
                Check::Pass => {}
                Check::Skip(skip) => {
                    d.skipped_in(HANDLER, subject, skip.to_string(), pipeline.id);
                    continue;
                }
                Check::Unknown(fact) => {
                    common::wait_for(conn, ctx, d, HANDLER, subject, &fact, Some(pipeline.id))
                        .await?;
                    continue;
                }
            }
        }
        let custom = CustomSource {
            git_url: pr.source.git_url(),
            sha: pipeline.commit_sha.clone(),
        };
        let payload = checkers::payload::testing_farm_request(
            test,
            ctx.policy.tests.get(&test),
            (test == TestName::Custom).then_some(&custom),
            &BuildUnderTest {
                task_id: build.and_then(|b| b.task_id),
                branch: pr.target_branch.to_string(),
                eln: variant == Variant::Eln,
            },
            &PayloadContext {
                deployment: ctx.policy.deployment.clone(),
                webhook_url: ctx.webhook_url(),
            },
        );
        let payload = match payload {
            Ok(payload) => payload,
            Err(error) => {
                d.skipped_in(HANDLER, subject, error.to_string(), pipeline.id);
                continue;
            }
        };
        let (check_name, uid) =
            common::flag_names(ctx, test.as_str(), &label, &pipeline.commit_sha);
        decided.push((test, format!("{trigger}:{test}"), payload, check_name, uid));
    }
    if decided.is_empty() {
        return Ok(());
    }
    let (_, first_text) = checkers::flags::testing_farm_flag(TestingFarmState::New, None, None);
    let url_prefix = ctx.test_page("");
    let to_decide: Vec<TestToDecide<'_>> = decided
        .iter()
        .map(|(test, key, payload, check_name, uid)| TestToDecide {
            test_name: test.as_str(),
            trigger_key: key,
            compose: compose.as_deref(),
            payload,
            check_name,
            uid,
        })
        .collect();
    let created = flows::decide_test_runs(
        &mut *conn,
        &TestsOf {
            pipeline_id: pipeline.id,
            koji_build_id: build.map(|b| b.id),
            branch: pr.target_branch,
            variant: variant.as_str(),
            pull_request_id: pr.pull_request_id,
            commit_sha: &pipeline.commit_sha,
            comment: &first_text,
            url_prefix: &url_prefix,
        },
        &to_decide,
        d.event_id,
    )
    .await?;
    for (test, ..) in &decided {
        let subject = Some(format!("{test} {label}"));
        if created.iter().any(|(name, _)| name == test.as_str()) {
            d.acted(
                HANDLER,
                subject,
                format!(
                    "submitting to Testing Farm{}",
                    build
                        .and_then(|b| b.task_id)
                        .map(|t| format!(" for Koji task {t}"))
                        .unwrap_or_default()
                ),
                Some(pipeline.id),
            );
        } else {
            d.already_decided(
                HANDLER,
                subject,
                "already decided: the run exists",
                pipeline.id,
            );
        }
    }
    Ok(())
}

/// Testing Farm called the webhook: read the request once for each state we
/// know it in, however many times it calls.
pub(crate) async fn notification(
    conn: &mut PgConnection,
    d: &mut Decisions,
    request_id: &str,
) -> Result<(), sqlx::Error> {
    let subject = Some(format!("request {request_id}"));
    let Some(run) = flows::test_run_by_request(&mut *conn, request_id).await? else {
        d.skipped(HANDLER, subject, "not a request this service submitted");
        return Ok(());
    };
    if matches!(run.state.as_str(), "complete" | "error" | "canceled") {
        d.skipped_in(
            HANDLER,
            subject,
            format!("the run has already ended ({})", run.state),
            run.pipeline_id,
        );
        return Ok(());
    }
    // One read per burst of calls: calls until the read is done fold into
    // it (the key holds how many reads were done), and the short wait lets a
    // burst of retries arrive first.
    let created = jobs::enqueue_after(
        &mut *conn,
        &NewJob {
            kind: JobKind::FetchTestingFarm,
            dedup_key: format!(
                "fetch-testing-farm:{request_id}:{}:{}",
                run.state, run.reads
            ),
            payload: json!({"request_id": request_id, "test_run_id": run.id}),
            event_id: Some(d.event_id),
            pipeline_id: Some(run.pipeline_id),
        },
        WEBHOOK_DEBOUNCE,
    )
    .await?;
    if created.is_some() {
        d.acted(
            HANDLER,
            subject,
            format!("reading the request (known as {})", run.state),
            Some(run.pipeline_id),
        );
    } else {
        d.skipped_in(
            HANDLER,
            subject,
            format!(
                "a read of the request in state {} is already planned",
                run.state
            ),
            run.pipeline_id,
        );
    }
    Ok(())
}

/// The state our run takes for a Testing Farm state.
fn run_state(state: TestingFarmState) -> &'static str {
    match state {
        // Until Testing Farm says it is canceled, it still runs.
        TestingFarmState::CancelRequested => "running",
        other => other.as_str(),
    }
}

/// A Testing Farm request's state, as read from its API: the run follows it
/// and so does its flag, unless the pipeline has ended.
pub(crate) async fn request_state(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    request: &TestingFarmRequest,
) -> Result<(), sqlx::Error> {
    let subject = Some(format!("request {}", request.request_id));
    let Some(run) = flows::request_run(&mut *conn, &request.request_id).await? else {
        d.skipped(HANDLER, subject, "not a request this service submitted");
        return Ok(());
    };
    flows::count_read(&mut *conn, run.id).await?;
    let current = TestingFarmState::parse(&run.state);
    if let Err(skip) = rules::testing_farm_transition(current, request.state) {
        d.skipped_in(HANDLER, subject, skip.to_string(), run.pipeline_id);
        return Ok(());
    }
    flows::update_test_run(
        &mut *conn,
        &TestRunProgress {
            id: run.id,
            state: run_state(request.state),
            result: request.result.map(|r| r.as_str()),
            summary: request.summary.as_deref(),
            artifacts_url: request.artifacts_url.as_deref(),
        },
    )
    .await?;
    d.observe(crate::Observation::test_run(
        request.state,
        run.submitted_at,
    ));
    let subject = Some(format!(
        "{} {}",
        run.test_name,
        Variant::from_str(&run.variant).label(&run.branch)
    ));
    if run.superseded || run.pipeline_state != "active" {
        d.skipped_in(
            HANDLER,
            subject,
            format!(
                "recorded {}; no flag: the pipeline has ended ({})",
                request.state, run.pipeline_state
            ),
            run.pipeline_id,
        );
        return Ok(());
    }
    let Some(pull_request_id) = run.pull_request_id else {
        if let Some(url) = &request.xunit_url {
            store::gating::set_xunit_url(&mut *conn, run.id, url).await?;
        }
        d.acted(
            HANDLER,
            subject,
            format!("recorded {}", request.state),
            Some(run.pipeline_id),
        );
        if let Some(state) =
            checkers::gating::ci_state(request.state, request.result, request.summary.as_deref())
        {
            crate::gating::run_changed(conn, ctx, d, run.id, state).await?;
        }
        return Ok(());
    };
    let (status, text) = checkers::flags::testing_farm_flag(
        request.state,
        request.result,
        request.summary.as_deref(),
    );
    let url = request
        .artifacts_url
        .clone()
        .or(run.artifacts_url.clone())
        .unwrap_or_else(|| ctx.test_page(run.id));
    let label = Variant::from_str(&run.variant).label(&run.branch);
    common::set_flag(
        conn,
        ctx,
        d,
        &FlagUpdate {
            pull_request_id,
            pipeline_id: run.pipeline_id,
            commit_sha: &run.commit_sha,
            subject: &run.test_name,
            branch_label: &label,
            status,
            comment: &text,
            url: &url,
            koji_build_id: None,
            test_run_id: Some(run.id),
        },
    )
    .await?;
    d.acted(
        HANDLER,
        subject,
        format!(
            "Testing Farm says {}{}: flag {status}",
            request.state,
            request
                .result
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        Some(run.pipeline_id),
    );
    Ok(())
}
