//! Gating on the real database: the real Bodhi message (and variants of it)
//! decided into test runs of the update's official builds, and each run's
//! Testing Farm states into Fedora CI messages in the outbox. What the jobs
//! would do (submit to Testing Farm, read a request, ask Koji) is played by
//! the test, the way the job runtime records it.

mod support;

use checkers::rules::Fact;
use serde_json::{Value, json};
use sqlx::PgPool;

const SHA: &str = "5b7e3a1d9f1c2e4b6a8d0c2e4f6a8b0d2c4e6f80";
const GDB: &str = "https://src.fedoraproject.org/rpms/gdb";
const BODHI: &str = "bodhi.update.status.testing.koji-build-group.build.complete.json";

/// The real Bodhi message, with a fresh message id.
fn bodhi() -> Value {
    let mut message = support::message(BODHI);
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    message
}

/// A second build for the update: `binutils`, built by task 78709999.
fn with_second_build(mut message: Value) -> Value {
    let builds = message["body"]["artifact"]["builds"]
        .as_array_mut()
        .expect("builds");
    builds.push(json!({
        "component": "binutils", "id": 1854860, "issuer": "nickc",
        "nvr": "binutils-2.37-10.fc34", "scratch": false, "task_id": 78709999,
        "type": "koji-build"
    }));
    message["body"]["artifact"]["id"] = json!("FEDORA-2021-53a7dfa185-two-builds");
    message
}

/// Koji's real COMPLETE message, as the official build of `nvr` from `sha`.
fn official_build(build_id: i64, task_id: i64, nvr: &str, target: &str) -> Value {
    let mut message = support::message("buildsys.build.state.change-complete.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    let (name, version, release) = {
        let mut parts = nvr.rsplitn(3, '-');
        let release = parts.next().expect("release");
        let version = parts.next().expect("version");
        (parts.next().expect("name"), version, release)
    };
    let body = &mut message["body"];
    body["build_id"] = json!(build_id);
    body["task_id"] = json!(task_id);
    body["name"] = json!(name);
    body["version"] = json!(version);
    body["release"] = json!(release);
    body["owner"] = json!("kevinb");
    body["request"] = json!([
        format!("git+https://src.fedoraproject.org/rpms/{name}.git#{SHA}"),
        target,
        {}
    ]);
    message
}

async fn decide(pool: &PgPool, ctx: &handlers::Context, message: &Value) -> i64 {
    let event = support::record(pool, message).await;
    support::decide_all(pool, ctx).await;
    event
}

async fn fact(pool: &PgPool, ctx: &handlers::Context, fact: &Fact, value: Value) {
    support::record_internal(
        pool,
        events::typed::TOPIC_FACT,
        json!({"key": fact.key(), "value": value}),
    )
    .await;
    support::decide_all(pool, ctx).await;
}

fn fmf(sha: &str, project: &str) -> Fact {
    Fact::FileExists {
        project_url: project.into(),
        sha: sha.into(),
        path: ".fmf/version".into(),
    }
}

/// Test runs: (id, test name, test case, branch, compose, payload).
async fn runs(pool: &PgPool) -> Vec<(i64, String, Option<String>, String, Option<String>, Value)> {
    sqlx::query_as(
        "SELECT id, test_name, test_case, branch, compose, payload FROM test_runs ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .expect("runs")
}

async fn run_id(pool: &PgPool, test: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM test_runs WHERE test_name = $1 ORDER BY id DESC LIMIT 1")
        .bind(test)
        .fetch_one(pool)
        .await
        .expect("run")
}

/// The outbox: (topic, body) in the order it will be published.
async fn outbox(pool: &PgPool) -> Vec<(String, Value)> {
    sqlx::query_as("SELECT topic, body FROM outbox ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("outbox")
}

async fn topics_of_run(pool: &PgPool, run: i64) -> Vec<String> {
    sqlx::query_scalar("SELECT topic FROM outbox WHERE test_run_id = $1 ORDER BY id")
        .bind(run)
        .fetch_all(pool)
        .await
        .expect("outbox")
}

/// Testing Farm accepted the run: what the submit job records.
async fn submitted(pool: &PgPool, ctx: &handlers::Context, run: i64, request: &str) {
    sqlx::query("UPDATE test_runs SET request_id = $2, submitted_at = now() WHERE id = $1")
        .bind(run)
        .bind(request)
        .execute(pool)
        .await
        .expect("request id");
    support::record_internal(
        pool,
        events::typed::TOPIC_TF_SUBMITTED,
        json!({"test_run_id": run, "request_id": request}),
    )
    .await;
    support::decide_all(pool, ctx).await;
}

/// Testing Farm reports the request in `state` (with `overall` when complete).
async fn reported(
    pool: &PgPool,
    ctx: &handlers::Context,
    request: &str,
    state: &str,
    overall: Option<&str>,
) {
    let mut body = support::testing_farm("request-complete.json");
    body["id"] = json!(request);
    body["state"] = json!(state);
    body["run"] = json!({"artifacts": format!("https://artifacts.testing-farm.io/{request}")});
    body["result"] = match overall {
        Some(overall) => json!({
            "overall": overall,
            "summary": format!("{overall} summary"),
            "xunit_url": format!("https://artifacts.testing-farm.io/{request}/results.xml"),
        }),
        None => Value::Null,
    };
    support::record_internal(pool, events::typed::TOPIC_TF_REQUEST, body).await;
    support::decide_all(pool, ctx).await;
}

fn short(topic: &str) -> &str {
    topic.rsplit('.').next().unwrap_or(topic)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_is_tested_and_every_state_is_a_ci_message() {
    let ctx = support::context();
    let pool = support::fresh_db().await;
    decide(
        &pool,
        &ctx,
        &official_build(1_854_854, 78_709_925, "gdb-11.1-5.fc34", "f34-candidate"),
    )
    .await;

    let event = decide(&pool, &ctx, &bodhi()).await;
    let outcome = support::outcome(&pool, event).await;
    assert_eq!(outcome["status"], "processed", "{outcome:#}");
    let reason = outcome["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("waiting to know whether .fmf/version exists"),
        "{reason}"
    );
    let decided = runs(&pool).await;
    let names: Vec<&str> = decided.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(names, ["installability", "rpminspect", "rpmlint"]);
    let cases: Vec<&str> = decided.iter().filter_map(|r| r.2.as_deref()).collect();
    assert_eq!(
        cases,
        [
            "fedora-ci.koji-build.installability.functional",
            "fedora-ci.koji-build.rpminspect.static-analysis",
            "fedora-ci.koji-build.rpmlint.static-analysis",
        ]
    );
    assert!(decided.iter().all(|r| r.3 == "f34"));
    assert_eq!(decided[0].4.as_deref(), Some("Fedora-34"));

    // The package has tmt plans at the build's commit: custom runs too.
    fact(&pool, &ctx, &fmf(SHA, GDB), json!(true)).await;
    let decided = runs(&pool).await;
    assert_eq!(decided.len(), 4);
    assert_eq!(decided[3].1, "custom");
    assert_eq!(
        decided[3].2.as_deref(),
        Some("fedora-ci.koji-build.tier0.functional")
    );
    let payloads: Vec<Value> = decided
        .iter()
        .map(|r| json!({"test": r.1, "payload": r.5}))
        .collect();
    insta::assert_json_snapshot!("gating_payloads", payloads);

    // Nothing is said on the bus before Testing Farm has the request.
    assert!(outbox(&pool).await.is_empty());

    // installability: queued, running, complete (passed).
    let installability = run_id(&pool, "installability").await;
    submitted(&pool, &ctx, installability, "req-inst").await;
    reported(&pool, &ctx, "req-inst", "queued", None).await;
    reported(&pool, &ctx, "req-inst", "running", None).await;
    reported(&pool, &ctx, "req-inst", "complete", Some("passed")).await;
    let topics = topics_of_run(&pool, installability).await;
    assert_eq!(
        topics,
        [
            "org.centos.prod.ci.koji-build.test.queued",
            "org.centos.prod.ci.koji-build.test.running",
            "org.centos.prod.ci.koji-build.test.complete",
        ]
    );
    let messages = outbox(&pool).await;
    let (_, complete) = messages.last().expect("complete").clone();
    assert_eq!(complete["test"]["result"], "passed");
    assert_eq!(complete["artifact"]["id"], 78_709_925);
    assert_eq!(complete["artifact"]["nvr"], "gdb-11.1-5.fc34");
    assert_eq!(complete["artifact"]["component"], "gdb");
    assert_eq!(complete["artifact"]["issuer"], "kevinb");
    assert_eq!(complete["artifact"]["scratch"], false);
    assert_eq!(
        complete["run"]["url"],
        "https://artifacts.testing-farm.io/req-inst"
    );
    assert_eq!(
        complete["test"]["xunit_urls"],
        json!(["https://artifacts.testing-farm.io/req-inst/results.xml"])
    );
    // One pipeline id for the three messages of the test.
    let ids: Vec<&Value> = messages.iter().map(|(_, b)| &b["pipeline"]["id"]).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    let mut shown = complete.clone();
    shown["generated_at"] = json!("<generated_at>");
    insta::assert_json_snapshot!("ci_message_complete", shown);

    // rpminspect: Testing Farm's complete is read before the submission is
    // decided; the bus still sees queued, running, complete, once each.
    let rpminspect = run_id(&pool, "rpminspect").await;
    sqlx::query("UPDATE test_runs SET request_id = 'req-rpminspect' WHERE id = $1")
        .bind(rpminspect)
        .execute(&pool)
        .await
        .expect("request id");
    reported(&pool, &ctx, "req-rpminspect", "complete", Some("failed")).await;
    submitted(&pool, &ctx, rpminspect, "req-rpminspect").await;
    let topics: Vec<String> = topics_of_run(&pool, rpminspect).await;
    assert_eq!(
        topics.iter().map(|t| short(t)).collect::<Vec<_>>(),
        ["queued", "running", "complete"]
    );

    // rpmlint: Testing Farm fails: queued, then error with its reason.
    let rpmlint = run_id(&pool, "rpmlint").await;
    submitted(&pool, &ctx, rpmlint, "req-rpmlint").await;
    reported(&pool, &ctx, "req-rpmlint", "error", Some("error")).await;
    let topics = topics_of_run(&pool, rpmlint).await;
    assert_eq!(
        topics.iter().map(|t| short(t)).collect::<Vec<_>>(),
        ["queued", "error"]
    );
    let error = outbox(&pool).await.last().expect("error").1.clone();
    assert_eq!(error["error"]["reason"], "error summary");

    // custom: Testing Farm never takes it; the job gives up: queued, error.
    let custom = run_id(&pool, "custom").await;
    support::record_internal(
        &pool,
        events::typed::TOPIC_JOB_DEAD,
        json!({"job_id": 1, "kind": "submit-testing-farm",
               "payload": {"test_run_id": custom}, "error": "HTTP 400: bad compose"}),
    )
    .await;
    support::decide_all(&pool, &ctx).await;
    let topics = topics_of_run(&pool, custom).await;
    assert_eq!(
        topics.iter().map(|t| short(t)).collect::<Vec<_>>(),
        ["queued", "error"]
    );
    let error = outbox(&pool).await.last().expect("error").1.clone();
    assert!(
        error["error"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("bad compose"),
        "{error:#}"
    );

    // The same report read again says nothing new.
    let before = outbox(&pool).await.len();
    reported(&pool, &ctx, "req-inst", "complete", Some("passed")).await;
    assert_eq!(outbox(&pool).await.len(), before);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_announcement_decides_nothing_and_a_retrigger_a_new_round() {
    let ctx = support::context();
    let pool = support::fresh_db().await;
    decide(
        &pool,
        &ctx,
        &official_build(1_854_854, 78_709_925, "gdb-11.1-5.fc34", "f34-candidate"),
    )
    .await;
    fact(&pool, &ctx, &fmf(SHA, GDB), json!(false)).await;
    decide(&pool, &ctx, &bodhi()).await;
    assert_eq!(runs(&pool).await.len(), 3);

    // Bodhi sends it again (another message id, same update and builds).
    let again = decide(&pool, &ctx, &bodhi()).await;
    assert_eq!(runs(&pool).await.len(), 3);
    let outcome = support::outcome(&pool, again).await;
    assert_eq!(outcome["status"], "skipped", "{outcome:#}");
    assert!(
        outcome["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("already decided"),
        "{outcome:#}"
    );
    // The same message delivered twice is one event.
    let message = bodhi();
    let first = support::record(&pool, &message).await;
    let second = support::record(&pool, &message).await;
    assert_eq!(first, second);

    // A re-trigger: a new round, with its own runs and pipeline ids.
    let mut retrigger = bodhi();
    retrigger["body"]["re-trigger"] = json!(true);
    retrigger["body"]["agent"] = json!("kevinb");
    let event = decide(&pool, &ctx, &retrigger).await;
    assert_eq!(runs(&pool).await.len(), 6);
    let outcome = support::outcome(&pool, event).await;
    assert_eq!(outcome["status"], "processed", "{outcome:#}");
    let pipelines: Vec<(String, String)> =
        sqlx::query_as("SELECT trigger, trigger_key FROM pipelines ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("pipelines");
    assert_eq!(pipelines.len(), 2);
    assert_eq!(pipelines[0].0, "bodhi-update");
    assert_eq!(pipelines[1].0, "bodhi-retrigger");
    assert!(pipelines[1].1.ends_with(&format!(":retrigger:{event}")));
    pool.close().await;
}

/// The real message in the shape of Bodhi's first schemas (`UpdateReadyForTestingV1`, as
/// bodhi-messages' own tests give it): `artifact.id` is the bare alias and each build's NVR
/// carries an RPM architecture. `with_update` adds the `update` object of the second schema.
fn first_schema(with_update: bool) -> Value {
    let mut message = bodhi();
    let body = &mut message["body"];
    body["artifact"]["id"] = json!("FEDORA-2021-53a7dfa185");
    body["artifact"]["builds"][0]["nvr"] = json!("gdb-11.1-5.fc34.x86_64");
    body.as_object_mut().expect("body").remove("re-trigger");
    if with_update {
        body["update"] = json!({
            "alias": "FEDORA-2021-53a7dfa185",
            "builds": [{"nvr": "gdb-11.1-5.fc34.x86_64"}],
            "release": {"name": "F34"},
            "request": null,
            "status": "testing",
            "user": {"name": "kevinb"},
        });
    }
    message
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_announced_many_times_is_tested_once_per_build() {
    let ctx = support::context();
    let pool = support::fresh_db().await;
    decide(
        &pool,
        &ctx,
        &official_build(1_854_854, 78_709_925, "gdb-11.1-5.fc34", "f34-candidate"),
    )
    .await;
    fact(&pool, &ctx, &fmf(SHA, GDB), json!(false)).await;
    let first = decide(&pool, &ctx, &first_schema(false)).await;
    assert_eq!(runs(&pool).await.len(), 3);
    let outcome = support::outcome(&pool, first).await;
    assert_eq!(outcome["status"], "processed", "{outcome:#}");
    // The architecture is not part of the build's name.
    assert!(
        outcome["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("installability gdb-11.1-5.fc34: submitting"),
        "{outcome:#}"
    );
    // The same update again: in the second schema, in today's (`<alias>-<hash>`), and once
    // more with another message id. Nothing new is tested.
    let mut again = bodhi();
    again["id"] = json!(uuid::Uuid::new_v4().to_string());
    for message in [first_schema(true), bodhi(), again] {
        let event = decide(&pool, &ctx, &message).await;
        let outcome = support::outcome(&pool, event).await;
        assert_eq!(outcome["status"], "skipped", "{outcome:#}");
        assert!(
            outcome["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("already decided"),
            "{outcome:#}"
        );
    }
    assert_eq!(runs(&pool).await.len(), 3, "one round of three tests");
    let pipelines: i64 = sqlx::query_scalar("SELECT count(*) FROM pipelines")
        .fetch_one(&pool)
        .await
        .expect("pipelines");
    assert_eq!(pipelines, 1);
    let nvrs: Vec<String> = sqlx::query_scalar("SELECT nvr FROM koji_builds ORDER BY id")
        .fetch_all(&pool)
        .await
        .expect("builds");
    assert_eq!(
        nvrs,
        ["gdb-11.1-5.fc34"],
        "one build, named without its arch"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_build_goes_with_the_others_as_artifacts() {
    let ctx = support::context();
    let pool = support::fresh_db().await;
    for (build, task, nvr) in [
        (1_854_854, 78_709_925, "gdb-11.1-5.fc34"),
        (1_854_860, 78_709_999, "binutils-2.37-10.fc34"),
    ] {
        decide(
            &pool,
            &ctx,
            &official_build(build, task, nvr, "f34-candidate"),
        )
        .await;
    }
    fact(&pool, &ctx, &fmf(SHA, GDB), json!(true)).await;
    fact(
        &pool,
        &ctx,
        &fmf(SHA, "https://src.fedoraproject.org/rpms/binutils"),
        json!(false),
    )
    .await;
    decide(&pool, &ctx, &with_second_build(bodhi())).await;
    let decided = runs(&pool).await;
    assert_eq!(decided.len(), 7, "4 tests of gdb, 3 of binutils");
    let custom = decided.iter().find(|r| r.1 == "custom").expect("custom");
    assert_eq!(
        custom.5["environments"][0]["artifacts"],
        json!([
            {"id": "78709925", "type": "fedora-koji-build"},
            {"id": "78709999", "type": "fedora-koji-build"},
        ])
    );
    let binutils_install = decided
        .iter()
        .find(|r| {
            r.1 == "installability"
                && r.5["environments"][0]["variables"]["KOJI_TASK_ID"] == "78709999"
        })
        .expect("binutils installability");
    assert_eq!(
        binutils_install.5["environments"][0]["artifacts"],
        json!([{"id": "78709925", "type": "fedora-koji-build", "install": false}])
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_not_tested_say_why() {
    let pool = support::fresh_db().await;
    let ctx = support::context();
    // ELN is not enabled by default.
    let mut eln = bodhi();
    eln["body"]["artifact"]["release"] = json!("eln");
    // More builds than gating.max_builds.
    let mut oversize = bodhi();
    let build = oversize["body"]["artifact"]["builds"][0].clone();
    oversize["body"]["artifact"]["builds"] = Value::Array(vec![build; 21]);
    // EPEL is not enabled by default; container releases have no compose.
    let mut epel = bodhi();
    epel["body"]["artifact"]["release"] = json!("EPEL-9");
    let mut container = bodhi();
    container["body"]["artifact"]["release"] = json!("F34C");
    for (message, phrase) in [
        (eln, "release not enabled: eln is eln"),
        (
            oversize,
            "update too large: 21 builds, more than gating.max_builds (20)",
        ),
        (epel, "release not enabled: EPEL-9 is epel"),
        (container, "release not supported: \"F34C\""),
    ] {
        let event = decide(&pool, &ctx, &message).await;
        let outcome = support::outcome(&pool, event).await;
        assert_eq!(outcome["status"], "skipped", "{outcome:#}");
        assert!(
            outcome["reason"]
                .as_str()
                .unwrap_or_default()
                .contains(phrase),
            "{phrase}: {outcome:#}"
        );
    }
    // A disabled project's builds are not tested.
    let mut disabled = support::context();
    disabled.policy.disabled_projects.push(GDB.into());
    let event = decide(&pool, &disabled, &bodhi()).await;
    let outcome = support::outcome(&pool, event).await;
    assert_eq!(outcome["status"], "skipped", "{outcome:#}");
    assert!(
        outcome["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("project disabled"),
        "{outcome:#}"
    );
    assert!(runs(&pool).await.is_empty());
    assert!(support::all_jobs(&pool).await.is_empty());
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn epel_when_enabled_runs_on_centos_stream_and_rawhide_on_rawhide() {
    let pool = support::fresh_db().await;
    let mut ctx = support::context();
    ctx.gating
        .enabled_releases
        .push(checkers::gating::ReleaseKind::Epel);
    ctx.gating.tests = vec![checkers::policy::TestName::Installability];
    decide(
        &pool,
        &ctx,
        &official_build(1_854_854, 78_709_925, "gdb-11.1-5.el9", "epel9-candidate"),
    )
    .await;
    let mut epel = bodhi();
    epel["body"]["artifact"]["release"] = json!("EPEL-9");
    decide(&pool, &ctx, &epel).await;
    let decided = runs(&pool).await;
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].3, "epel9");
    assert_eq!(decided[0].4.as_deref(), Some("CentOS-Stream-9"));
    assert_eq!(
        decided[0].5["environments"][0]["tmt"]["context"]["distro"],
        "centos-stream-9"
    );

    // A build for the rawhide target is tested on rawhide, whatever the
    // release is called.
    decide(
        &pool,
        &ctx,
        &official_build(1_854_900, 78_710_100, "gdb-11.2-1.fc35", "rawhide"),
    )
    .await;
    let mut rawhide = bodhi();
    rawhide["body"]["artifact"]["id"] = json!("FEDORA-2021-rawhide-gdb");
    rawhide["body"]["artifact"]["release"] = json!("f35");
    rawhide["body"]["artifact"]["builds"][0]["id"] = json!(1_854_900);
    rawhide["body"]["artifact"]["builds"][0]["task_id"] = json!(78_710_100);
    rawhide["body"]["artifact"]["builds"][0]["nvr"] = json!("gdb-11.2-1.fc35");
    decide(&pool, &ctx, &rawhide).await;
    let decided = runs(&pool).await;
    assert_eq!(decided.len(), 2);
    assert_eq!(decided[1].3, "rawhide");
    assert_eq!(decided[1].4.as_deref(), Some("Fedora-Rawhide"));
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_koji_has_not_told_us_about_is_looked_up() {
    let pool = support::fresh_db().await;
    let ctx = support::context();
    let event = decide(&pool, &ctx, &bodhi()).await;
    assert!(runs(&pool).await.is_empty());
    let jobs = support::jobs_of_event(&pool, event).await;
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    assert_eq!(jobs[0]["payload"]["detail"]["kind"], "koji-build");

    fact(
        &pool,
        &ctx,
        &Fact::KojiBuild {
            build_id: 1_854_854,
        },
        json!({
            "build_id": 1_854_854, "task_id": 78_709_925, "nvr": "gdb-11.1-5.fc34",
            "owner": "kevinb", "target": "f34-candidate",
            "source": format!("git+https://src.fedoraproject.org/rpms/gdb.git#{SHA}"),
        }),
    )
    .await;
    fact(&pool, &ctx, &fmf(SHA, GDB), json!(false)).await;
    let decided = runs(&pool).await;
    assert_eq!(decided.len(), 3);
    // The event was decided three times: it waited for Koji, started three tests and waited
    // for the commit's files, then found those tests there and skipped `custom`. It started
    // them, and says so.
    let outcome = support::outcome(&pool, event).await;
    assert_eq!(outcome["status"], "processed", "{outcome:#}");
    let reason = outcome["reason"].as_str().unwrap_or_default();
    for test in ["installability", "rpminspect", "rpmlint"] {
        assert!(
            reason.contains(&format!(
                "{test} gdb-11.1-5.fc34: submitting to Testing Farm for Koji task 78709925"
            )),
            "{test}: {reason}"
        );
    }
    assert!(reason.contains("(on an earlier pass)"), "{reason}");
    assert!(reason.contains("custom gdb-11.1-5.fc34: "), "{reason}");
    // The official build is now recorded, with its commit and update.
    let (commit, alias): (Option<String>, String) = sqlx::query_as(
        "SELECT b.commit_sha, u.alias FROM koji_builds b
         JOIN update_builds ub ON ub.koji_build_id = b.id
         JOIN updates u ON u.id = ub.update_id WHERE b.build_id = 1854854",
    )
    .fetch_one(&pool)
    .await
    .expect("build");
    assert_eq!(commit.as_deref(), Some(SHA));
    assert_eq!(alias, "FEDORA-2021-53a7dfa185");

    // Koji does not know a build: it is skipped with the reason.
    let mut unknown = bodhi();
    unknown["body"]["artifact"]["id"] = json!("FEDORA-2021-unknown");
    unknown["body"]["artifact"]["builds"][0]["id"] = json!(99);
    let event = decide(&pool, &ctx, &unknown).await;
    fact(&pool, &ctx, &Fact::KojiBuild { build_id: 99 }, json!(false)).await;
    let outcome = support::outcome(&pool, event).await;
    assert_eq!(outcome["status"], "skipped", "{outcome:#}");
    assert!(
        outcome["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("Koji could not tell"),
        "{outcome:#}"
    );
    pool.close().await;
}
