//! F6: the official builds of a Bodhi update are tested on Testing Farm, and
//! every test's progress is published on the bus as a Fedora CI message for
//! ResultsDB and Greenwave.
//!
//! Each build of the update, in each round of testing (Bodhi's first
//! announcement, or a re-trigger), is a pipeline; each test is a run of it.
//! A build must be known with its Koji task, target and source commit before
//! its tests are decided: the official build recorded from Koji's own message
//! has them, otherwise a look-up asks Koji. The CI messages go to the outbox
//! in the same transaction as the decision that makes them, with their
//! message ids, and a publisher sends them in order.

use checkers::gating::{self, CiArtifact, CiMessage, CiState, GatingBuild, release_label};
use checkers::naming::Release;
use checkers::payload::{CustomSource, PayloadContext};
use checkers::policy::TestName;
use checkers::rules::{self, Check, Fact, Skip};
use events::typed::{BodhiUpdateReady, UpdateBuild};
use serde_json::{Value, json};
use sqlx::PgConnection;
use store::flows::OfficialBuild;
use store::gating::{GatingRun, GatingTest, UpdatePipeline};
use store::outbox::NewMessage;

use crate::common::{self, Context, Decisions};

const HANDLER: &str = "gating";

/// What is known of one build of the update, ready for its tests.
struct KnownBuild<'a> {
    build: &'a UpdateBuild,
    koji_build_id: i64,
    project_id: i64,
    project: checkers::project::ProjectRef,
    task_id: i64,
    commit_sha: Option<String>,
    target: Option<String>,
}

/// Bodhi says an update is ready for testing (or asks for it again).
pub(crate) async fn update_ready(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    update: &BodhiUpdateReady,
) -> Result<(), sqlx::Error> {
    let subject = Some(update.update.clone());
    if let Err(skip) = gating::update_testable(&ctx.gating, update.builds.len()) {
        d.skipped(HANDLER, subject, skip.to_string());
        return Ok(());
    }
    let release = match gating::release_enabled(&ctx.gating, update.release.as_deref()) {
        Ok(release) => release,
        Err(skip) => {
            d.skipped(HANDLER, subject, skip.to_string());
            return Ok(());
        }
    };
    if update.builds.is_empty() {
        d.skipped(HANDLER, subject, "the update lists no builds");
        return Ok(());
    }
    let update_id = store::gating::upsert_update(
        &mut *conn,
        &update.update,
        update.release.as_deref(),
        update.url.as_deref(),
    )
    .await?;

    // Every build must be known (task, target, commit) before any is
    // tested: the others go along as artifacts of each test.
    let mut known = Vec::with_capacity(update.builds.len());
    let mut waiting = false;
    for build in &update.builds {
        let subject = Some(build.nvr.clone());
        let project_url = format!(
            "{}/rpms/{}",
            ctx.distgit_url.trim_end_matches('/'),
            build.component
        );
        let project = match ctx.project(&project_url) {
            Ok(project) => project,
            Err(skip) => {
                d.skipped(HANDLER, subject, skip.to_string());
                continue;
            }
        };
        if let Err(skip) = rules::project_enabled(&ctx.policy, &project.url) {
            d.skipped(HANDLER, subject, skip.to_string());
            continue;
        }
        let Some(build_id) = build.build_id else {
            d.skipped(
                HANDLER,
                subject,
                "the message gives no Koji build id for this build",
            );
            continue;
        };
        match know_build(conn, ctx, d, update_id, build, build_id, &project).await? {
            Known::Yes(k) => known.push(k),
            Known::Waiting => waiting = true,
            Known::Skip(reason) => d.skipped(HANDLER, subject, reason),
        }
    }
    if waiting {
        return Ok(());
    }
    // The whole update goes along with each test, builds we do not test
    // included: they are pushed together.
    let mut others: Vec<i64> = known.iter().map(|k| k.task_id).collect();
    for task in update.builds.iter().filter_map(|b| b.task_id) {
        if !others.contains(&task) {
            others.push(task);
        }
    }
    let (round, trigger) = if update.retrigger {
        (format!("retrigger:{}", d.event_id), "bodhi-retrigger")
    } else {
        ("initial".to_owned(), "bodhi-update")
    };
    for build in &known {
        decide_build(
            conn, ctx, d, update, update_id, release, build, &others, &round, trigger,
        )
        .await?;
    }
    Ok(())
}

enum Known<'a> {
    Yes(KnownBuild<'a>),
    Waiting,
    Skip(String),
}

/// The build's Koji task, target and commit: from the recorded official
/// build, or from Koji (a look-up the event waits for).
async fn know_build<'a>(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    update_id: i64,
    build: &'a UpdateBuild,
    build_id: i64,
    project: &checkers::project::ProjectRef,
) -> Result<Known<'a>, sqlx::Error> {
    let recorded = store::gating::official_build(&mut *conn, build_id).await?;
    // Koji's times of the build, when a look-up brought them.
    let mut times = (None, None);
    let (task_id, source, target, owner) = match &recorded {
        Some(row) if row.commit_sha.is_some() && !row.target.is_empty() => (
            row.task_id.or(build.task_id),
            Some(row.source_url.clone()),
            Some(row.target.clone()),
            row.owner.clone(),
        ),
        _ => {
            let fact = Fact::KojiBuild { build_id };
            match common::known_fact(conn, ctx, &fact).await? {
                Some(Value::Object(info)) => {
                    let text = |key: &str| info.get(key).and_then(Value::as_str).map(str::to_owned);
                    let seconds = |key: &str| info.get(key).and_then(Value::as_f64);
                    times = (seconds("started"), seconds("completed"));
                    (
                        info.get("task_id")
                            .and_then(Value::as_i64)
                            .or(build.task_id),
                        text("source"),
                        text("target"),
                        text("owner"),
                    )
                }
                Some(_) => {
                    return Ok(Known::Skip(format!(
                        "Koji could not tell which task and commit built build {build_id}"
                    )));
                }
                None => {
                    common::wait_for(conn, ctx, d, HANDLER, Some(build.nvr.clone()), &fact, None)
                        .await?;
                    return Ok(Known::Waiting);
                }
            }
        }
    };
    let Some(task_id) = task_id else {
        return Ok(Known::Skip(
            Skip::NoBuildTask {
                nvr: build.nvr.clone(),
            }
            .to_string(),
        ));
    };
    let (source_url, commit_sha) = match source.as_deref() {
        Some(source) => {
            let (_, sha) = crate::koji::split_source(source);
            (source.to_owned(), sha.map(str::to_owned))
        }
        None => (String::new(), None),
    };
    let (koji_build_id, project_id) = store::gating::ensure_official_build(
        &mut *conn,
        (
            &project.url,
            &project.forge,
            &project.namespace,
            &project.repo,
        ),
        &OfficialBuild {
            project_id: None,
            build_id,
            task_id: Some(task_id),
            nvr: &build.nvr,
            target: target.as_deref().unwrap_or(""),
            source_url: &source_url,
            commit_sha: commit_sha.as_deref(),
            started_at: common::epoch(times.0),
            finished_at: common::epoch(times.1),
            owner: owner.as_deref().or(build.issuer.as_deref()),
            branch: target.as_deref().and_then(crate::koji::target_branch),
            log_urls: None,
        },
    )
    .await?;
    store::gating::link_update_build(&mut *conn, update_id, koji_build_id).await?;
    Ok(Known::Yes(KnownBuild {
        build,
        koji_build_id,
        project_id,
        project: project.clone(),
        task_id,
        commit_sha,
        target,
    }))
}

/// The tests of one build in one round: its pipeline, and a run per test.
#[expect(clippy::too_many_arguments, reason = "the inputs of one decision")]
async fn decide_build(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    update: &BodhiUpdateReady,
    update_id: i64,
    release: Release,
    build: &KnownBuild<'_>,
    others: &[i64],
    round: &str,
    trigger: &str,
) -> Result<(), sqlx::Error> {
    let nvr = &build.build.nvr;
    let tested = gating::tested_release(
        &ctx.gating,
        update.release.as_deref().unwrap_or(""),
        release,
        build.target.as_deref(),
    );
    let label = release_label(tested);
    // By the update's alias, which every announcement of it gives alike: Bodhi announces an
    // update again (on an edit, in older and newer shapes) and each build is tested once a round.
    let key = format!("bodhi:{}:{nvr}:{round}", update.update);
    let (pipeline_id, _) = store::gating::get_or_create_update_pipeline(
        &mut *conn,
        &UpdatePipeline {
            trigger_key: &key,
            trigger,
            project_id: build.project_id,
            update_id,
            koji_build_id: build.koji_build_id,
            commit_sha: build.commit_sha.as_deref().unwrap_or(""),
            release: &label,
            event_id: d.event_id,
        },
    )
    .await?;
    let compose = checkers::naming::compose(&label, false);
    let gating_build = GatingBuild {
        task_id: build.task_id,
        others: others.to_vec(),
        release: tested,
    };
    let payload_ctx = PayloadContext {
        deployment: ctx.policy.deployment.clone(),
        webhook_url: ctx.webhook_url(),
    };
    // (test, trigger key, test case, payload)
    let mut decided: Vec<(TestName, String, String, Value)> = Vec::new();
    for &test in &ctx.gating.tests {
        let subject = Some(format!("{test} {nvr}"));
        let mut custom = None;
        if test == TestName::Custom {
            let Some(sha) = build.commit_sha.as_deref() else {
                d.skipped_in(
                    HANDLER,
                    subject,
                    Skip::NoSourceCommit { nvr: nvr.clone() }.to_string(),
                    pipeline_id,
                );
                continue;
            };
            let fact = Fact::FileExists {
                project_url: build.project.url.clone(),
                sha: sha.to_owned(),
                path: rules::FMF_VERSION_PATH.into(),
            };
            let present = common::known_flag_fact(conn, ctx, &fact).await?;
            match rules::custom_tests_possible(&build.project.url, sha, present) {
                Check::Pass => {}
                Check::Skip(skip) => {
                    d.skipped_in(HANDLER, subject, skip.to_string(), pipeline_id);
                    continue;
                }
                Check::Unknown(fact) => {
                    common::wait_for(conn, ctx, d, HANDLER, subject, &fact, Some(pipeline_id))
                        .await?;
                    continue;
                }
            }
            custom = Some(CustomSource {
                git_url: build.project.git_url(),
                sha: sha.to_owned(),
            });
        }
        let payload = gating::gating_request(
            test,
            ctx.policy.test_repo(test),
            custom.as_ref(),
            &gating_build,
            &payload_ctx,
        );
        match payload {
            Ok(payload) => decided.push((
                test,
                format!("{key}:{test}"),
                ctx.gating.test_case(test).name(),
                payload,
            )),
            Err(error) => d.skipped_in(HANDLER, subject, error.to_string(), pipeline_id),
        }
    }
    if decided.is_empty() {
        return Ok(());
    }
    let tests: Vec<GatingTest<'_>> = decided
        .iter()
        .map(|(test, key, case, payload)| GatingTest {
            test_name: test.as_str(),
            trigger_key: key,
            test_case: case,
            compose: compose.as_deref(),
            payload,
        })
        .collect();
    let created = store::gating::decide_gating_runs(
        &mut *conn,
        pipeline_id,
        build.koji_build_id,
        &label,
        &tests,
        d.event_id,
    )
    .await?;
    for (test, _, case, _) in &decided {
        let subject = Some(format!("{test} {nvr}"));
        if created.iter().any(|(name, _)| name == test.as_str()) {
            d.acted(
                HANDLER,
                subject,
                format!(
                    "submitting to Testing Farm for Koji task {} on {label}, reported as {case}",
                    build.task_id
                ),
                Some(pipeline_id),
            );
        } else {
            d.already_decided(
                HANDLER,
                subject,
                "already decided: this round's run exists",
                pipeline_id,
            );
        }
    }
    Ok(())
}

/// Testing Farm accepted a gating test: it is queued.
pub(crate) async fn submitted(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    run_id: i64,
    request_id: &str,
) -> Result<(), sqlx::Error> {
    let subject = Some(format!("request {request_id}"));
    let Some(run) = store::gating::gating_run(&mut *conn, run_id).await? else {
        d.skipped(HANDLER, subject, "not a test of an update's build");
        return Ok(());
    };
    publish_state(conn, ctx, d, &run, &CiState::Queued).await
}

/// A gating run changed state (as Testing Farm reports it, or because it
/// ended without a result): the CI messages that say so.
pub(crate) async fn run_changed(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    run_id: i64,
    state: CiState,
) -> Result<(), sqlx::Error> {
    let Some(run) = store::gating::gating_run(&mut *conn, run_id).await? else {
        return Ok(());
    };
    publish_state(conn, ctx, d, &run, &state).await
}

/// Whether a test run tests an update's build.
pub(crate) async fn is_gating_run(
    conn: &mut PgConnection,
    run_id: i64,
) -> Result<bool, sqlx::Error> {
    store::gating::is_gating_run(&mut *conn, run_id).await
}

/// Write the state's message, after the messages of the states before it
/// that were not written yet: consumers see queued, running, then the end,
/// whatever order Testing Farm's reports were decided in. Each state is
/// written once per run.
async fn publish_state(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    run: &GatingRun,
    state: &CiState,
) -> Result<(), sqlx::Error> {
    let mut states = vec![CiState::Queued];
    match state {
        CiState::Queued => {}
        CiState::Running => states.push(CiState::Running),
        // A test that completed ran, even when no report said it was running.
        CiState::Complete { .. } => states.extend([CiState::Running, state.clone()]),
        CiState::Error { .. } => states.push(state.clone()),
    }
    let mut written = Vec::new();
    for state in &states {
        if write_message(conn, ctx, d, run, state).await? {
            written.push(state.name());
        }
    }
    let subject = Some(format!(
        "{} {}",
        run.test_name,
        run.nvr.as_deref().unwrap_or("")
    ));
    if written.is_empty() {
        d.skipped_in(
            HANDLER,
            subject,
            format!("the {} message was already written", state.name()),
            run.pipeline_id,
        );
    } else {
        d.acted(
            HANDLER,
            subject,
            format!(
                "CI message{} {} written for {}",
                if written.len() > 1 { "s" } else { "" },
                written.join(", "),
                run.test_case.as_deref().unwrap_or(&run.test_name),
            ),
            Some(run.pipeline_id),
        );
    }
    Ok(())
}

/// One CI message into the outbox; whether it was new.
async fn write_message(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &Decisions,
    run: &GatingRun,
    state: &CiState,
) -> Result<bool, sqlx::Error> {
    let test = TestName::parse(&run.test_name);
    let mut case = test.map_or_else(
        || ctx.gating.test_case(TestName::Custom),
        |t| ctx.gating.test_case(t),
    );
    // The name recorded when the run was decided wins: a configuration
    // change must not rename a test halfway through.
    if let Some(recorded) = &run.test_case
        && let [namespace @ .., kind, category] = recorded.split('.').collect::<Vec<_>>().as_slice()
    {
        case.namespace = namespace.join(".");
        case.kind = (*kind).to_owned();
        case.category = (*category).to_owned();
    }
    let artifact = CiArtifact {
        task_id: run.task_id.unwrap_or_default(),
        issuer: run.owner.clone().unwrap_or_else(|| "unknown".to_owned()),
        component: run.component.clone().unwrap_or_default(),
        nvr: run.nvr.clone().unwrap_or_default(),
    };
    let page = ctx.test_page(run.id);
    let run_url = run.artifacts_url.clone().unwrap_or_else(|| page.clone());
    let pipeline_id = gating::pipeline_id(&run.trigger_key);
    let pipeline_name = format!("fedora-ci-worker {}", run.test_name);
    let generated_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let body = gating::ci_body(
        state,
        &CiMessage {
            contact: &ctx.gating.contact,
            artifact: &artifact,
            test_case: &case,
            pipeline_id: &pipeline_id,
            pipeline_name: &pipeline_name,
            run_url: &run_url,
            run_log: &run_url,
            compose: run.compose.as_deref(),
            note: run.summary.as_deref().filter(|_| state.is_final()),
            xunit_url: run.xunit_url.as_deref().filter(|_| state.is_final()),
            generated_at: &generated_at,
        },
    );
    let topic = gating::ci_topic(&ctx.gating.topic_prefix, state);
    let headers = json!({
        "fedora_messaging_schema": "ci_messages.CIMessageV1",
        "fedora_messaging_schema_package": "ci_messages",
        "fedora_messaging_severity": 20,
        "priority": 0,
        "sent-at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
    });
    let written = store::outbox::enqueue(
        &mut *conn,
        &NewMessage {
            dedup_key: &format!("ci:{}:{}", run.id, state.name()),
            topic: &topic,
            headers: &headers,
            body: &body,
            test_run_id: Some(run.id),
            event_id: Some(d.event_id),
        },
        uuid::Uuid::new_v4(),
    )
    .await?;
    Ok(written.is_some())
}
