//! Decision benchmark: how fast the decider turns recorded events into
//! decisions and jobs (inbox → routing → checkers → jobs committed), against
//! a bare loop that only claims, reads and marks the same rows, measured in
//! the same run on the same database server.
//!
//! The inbox holds N events (default 50,000) of a realistic mix, every one a
//! real message of `tests/data/bus/` (or, for Testing Farm, the request of
//! `tests/data/testing-farm/`) with only ids, numbers, shas, names and times
//! changed. Per 100 events, an estimate of what the service's default
//! bindings receive from Fedora's bus:
//!
//! - 40 `buildsys.task.state.change`: 6 for scratch builds this service
//!   submitted (3 OPEN, 3 CLOSED; a CLOSED one starts the tests), 34 for
//!   other people's tasks;
//! - 15 `buildsys.build.state.change`: 11 COMPLETE official builds of
//!   distinct dist-git packages, 2 BUILDING, 2 CANCELED;
//! - 12 `buildsys.tag`;
//! - 10 pushes: 5 `pagure.git.receive` to a branch, 2 `pagure.git.receive`
//!   merging a pull request, 3 `git.receive`;
//! - 8 `pagure.pull-request.flag.updated`;
//! - 6 pull requests from forks, each on its own `rpms/` package: 2 `new`,
//!   2 `updated` and 2 `rebased` (these two supersede a pipeline whose build
//!   was submitted);
//! - 4 `pagure.pull-request.comment.added`: 1 `/packit-ci test` (mostly by a
//!   packager, sometimes not), 3 ordinary text;
//! - 3 Testing Farm request states (internal topic
//!   `fedora-ci-worker.testing-farm.request`): 2 complete, 1 error, for test
//!   runs of this run;
//! - 2 `bodhi.update.status.testing.koji-build-group.build.complete`.
//!
//! Events that depend on earlier state find it, set up as the service would
//! have, before the clock starts: the pull requests whose builds and tests
//! the mix reports on are recorded and decided first; their builds get Koji
//! task ids and their test runs Testing Farm request ids (what the submit
//! jobs record); the facts the decisions read (`.fmf/version` at the heads,
//! ELN branches, packager membership) are in the `facts` table.
//!
//! Timed: `handlers::decider::decide_batch` in a loop until the inbox is
//! empty. No job runs meanwhile: the jobs the decisions create pile up as
//! pending, as they do while the service drains a backlog faster than Koji,
//! Testing Farm and dist-git take work. Baseline, on a second database holding the same rows: claim a
//! batch `FOR UPDATE SKIP LOCKED`, read the bodies, mark them all skipped in
//! one statement, commit. The run prints both rates, their ratio, the events
//! per final status and the jobs created, and fails if any event failed.
//!
//! ```text
//! cargo build --release --bin decide-bench
//! target/release/decide-bench                  # 50,000 events
//! target/release/decide-bench --smoke          # 2,000 events, to keep the benchmark working
//! ```

mod common;

// As the service does (worker/src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use checkers::policy::{Policy, TestName};
use checkers::project::normalize_project_url;
use checkers::rules::Fact;
use clap::Parser;
use handlers::Context;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use store::events::{NewEvent, Source};

use common::Database;

#[derive(Parser)]
#[command(
    about = "Decision rate of fedora-ci-worker's decider against a bare claim-and-mark loop, same database server, same run"
)]
struct Args {
    /// Events in the inbox.
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    /// A short run that only checks that the benchmark still works (2,000 events).
    #[arg(long)]
    smoke: bool,
    /// Events per batch, as `decider.batch_size` (its default).
    #[arg(long, default_value_t = 500)]
    batch: u32,
    /// Also time this many deciders sharing one inbox (0 or 1: not).
    #[arg(long, default_value_t = 2)]
    parallel: usize,
    /// Directory of real data, with `bus/` and `testing-farm/`.
    #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data"))]
    data: PathBuf,
    /// A PostgreSQL database on the server where the run may create its own.
    #[arg(
        long,
        env = "FCI_BENCH_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pg_url: String,
}

/// Events per block of the mix.
const BLOCK: usize = 100;
/// Blocks between a scratch build's OPEN and its CLOSED. Builds take minutes,
/// thousands of events; this keeps the two apart (they are never in batches
/// decided at the same time) with little setup.
const BUILD_BLOCKS: usize = 10;
/// The dist-git base of `Context::local`.
const DISTGIT: &str = "https://src.fedoraproject.org";
/// The tests every successful scratch build gets, whatever the package holds.
const SHARED_TESTS: [TestName; 5] = [
    TestName::Installability,
    TestName::Rpminspect,
    TestName::Rpmlint,
    TestName::Rmdepcheck,
    TestName::LicenseValidate,
];

const MIX: &str = "\
mix per 100 events (an estimate of what the default bindings receive from Fedora's bus):
  40 buildsys.task.state.change: 6 of this run's scratch builds (3 OPEN, 3 CLOSED), 34 other people's tasks
  15 buildsys.build.state.change: 11 COMPLETE official builds of distinct packages, 2 BUILDING, 2 CANCELED
  12 buildsys.tag
  10 pushes: 5 pagure.git.receive to a branch, 2 pagure.git.receive merging a pull request, 3 git.receive
   8 pagure.pull-request.flag.updated
   6 pull requests from forks on distinct rpms/ packages: 2 new, 2 updated, 2 rebased (superseding a submitted build)
   4 pagure.pull-request.comment.added: 1 /packit-ci test (3 of 4 by a packager), 3 ordinary text
   3 Testing Farm request states of this run's test runs: 2 complete, 1 error
   2 bodhi.update.status.testing.koji-build-group.build.complete";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.events = 2_000;
    }
    if args.events == 0 || args.batch == 0 {
        bail!("--events and --batch must be at least 1");
    }
    let mut databases = Vec::new();
    let result = measure(&args, &mut databases).await;
    for database in databases {
        database.drop().await;
    }
    result
}

async fn measure(args: &Args, databases: &mut Vec<Database>) -> anyhow::Result<()> {
    let shapes = Shapes::load(&args.data)?;
    let mix = Mix::build(&shapes, args.events)?;
    let timed: Vec<NewEvent> = mix.timed.iter().map(Message::to_event).collect();
    let setup_prs: Vec<NewEvent> = mix.setup_prs.iter().map(Message::to_event).collect();
    let setup_tasks: Vec<NewEvent> = mix.setup_tasks.iter().map(Message::to_event).collect();
    let average_body =
        timed.iter().map(|e| e.body_size as usize).sum::<usize>() / timed.len().max(1);
    println!(
        "decision benchmark: {} events (real shapes from {}, {} bytes average body), batch {}{}",
        args.events,
        args.data.display(),
        average_body,
        args.batch,
        if args.smoke {
            "; smoke run, the numbers mean nothing"
        } else {
            ""
        }
    );
    println!("{MIX}");
    let mut policy = Policy::local_default();
    policy.eln_packages = mix.eln_packages.clone();
    let ctx = Arc::new(Context::local(policy));

    // Baseline: the same rows, nothing set up, drained by the bare loop.
    let pool = fresh_pool(args, databases).await?;
    insert(&pool, &timed).await?;
    analyze(&pool).await?;
    let baseline = bare_loop(&pool, args.batch).await?;
    let baseline_rate = args.events as f64 / baseline.as_secs_f64();
    pool.close().await;

    // The decider, one task.
    let pool = fresh_pool(args, databases).await?;
    let started = Instant::now();
    let first_timed = set_up(&pool, &ctx, &mix, &setup_prs, &setup_tasks, &timed).await?;
    let setup_time = started.elapsed();
    println!(
        "setup      {:>7} events decided first (pull requests, task states), task and request ids given, {} facts: {:.2} s, not timed",
        setup_prs.len() + setup_tasks.len(),
        mix.facts.len(),
        setup_time.as_secs_f64()
    );
    println!(
        "baseline   {:>7} in {:>6.2} s  {:>8.0} ev/s  (claim {} received rows FOR UPDATE SKIP LOCKED, read the bodies, mark them skipped, commit)",
        args.events,
        baseline.as_secs_f64(),
        baseline_rate,
        args.batch
    );
    let single = drain(&pool, &ctx, args.batch, 1).await?;
    let decider_rate = args.events as f64 / single.elapsed.as_secs_f64();
    println!(
        "decider    {:>7} in {:>6.2} s  {:>8.0} ev/s  (handlers::decider::decide_batch, batch {}, one task)",
        args.events,
        single.elapsed.as_secs_f64(),
        decider_rate,
        args.batch
    );
    report(&pool, first_timed, &mix).await?;
    pool.close().await;
    println!(
        "ratio      {:.2} of the baseline rate",
        decider_rate / baseline_rate
    );
    let mut service_rate = decider_rate;
    if args.parallel > 1 {
        let pool = fresh_pool(args, databases).await?;
        let first_timed = set_up(&pool, &ctx, &mix, &setup_prs, &setup_tasks, &timed).await?;
        let run = drain(&pool, &ctx, args.batch, args.parallel).await?;
        let rate = args.events as f64 / run.elapsed.as_secs_f64();
        println!(
            "{:<10} {:>7} in {:>6.2} s  {:>8.0} ev/s  (as many tasks calling decide_batch on one pool; {} transient errors retried; {:.2} of one decider)",
            format!("{} deciders", args.parallel),
            args.events,
            run.elapsed.as_secs_f64(),
            rate,
            run.retries,
            rate / decider_rate
        );
        check_outcomes(&pool, first_timed, &mix).await?;
        pool.close().await;
        service_rate = rate;
    }
    println!(
        "target     at least 5,000 events/s with {} decider(s), batch {} (the service runs decider.concurrency = 2, batch 500): {} ({:.0} ev/s)",
        args.parallel.max(1),
        args.batch,
        if service_rate >= 5_000.0 {
            "met"
        } else {
            "NOT met"
        },
        service_rate
    );
    Ok(())
}

/// A database of the run's own, migrated, and a pool on it.
async fn fresh_pool(args: &Args, databases: &mut Vec<Database>) -> anyhow::Result<PgPool> {
    let database = Database::create(&args.pg_url).await?;
    let url = database.url.clone();
    databases.push(database);
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(args.parallel.max(1) + 1).unwrap_or(4))
        .connect(&url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    store::migrate(&pool).await?;
    Ok(pool)
}

/// Record events in the inbox, as the consumer does, in batches.
async fn insert(pool: &PgPool, events: &[NewEvent]) -> anyhow::Result<()> {
    for chunk in events.chunks(1000) {
        let inserted = store::events::insert_batch(pool, chunk).await?;
        if inserted as usize != chunk.len() {
            bail!("{inserted} of {} events were recorded", chunk.len());
        }
    }
    Ok(())
}

/// Fresh statistics, so that both loops start on the same footing: as a
/// service that has caught up has them (its jobs done, none pending).
async fn analyze(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::raw_sql("ANALYZE").execute(pool).await?;
    Ok(())
}

/// The bare loop: what any decider must do, and nothing else.
async fn bare_loop(pool: &PgPool, batch: u32) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let mut tx = pool.begin().await?;
        let claimed = store::events::claim_received(&mut *tx, i64::from(batch)).await?;
        if claimed.is_empty() {
            tx.commit().await?;
            break;
        }
        if let Some(event) = claimed.unreadable.first() {
            bail!("event {}: {}", event.id, event.reason);
        }
        let mut outcomes = Vec::with_capacity(claimed.events.len());
        for event in &claimed.events {
            if !event.body.as_ref().is_some_and(Value::is_object) {
                bail!("event {} has no JSON object for a body", event.id);
            }
            outcomes.push((event.id, "skipped", ""));
        }
        store::events::set_outcomes(&mut *tx, &outcomes).await?;
        tx.commit().await?;
    }
    Ok(started.elapsed())
}

/// Set the database up as the service would have it when the timed events
/// arrive, then record them; the id of the first timed event.
async fn set_up(
    pool: &PgPool,
    ctx: &Arc<Context>,
    mix: &Mix,
    setup_prs: &[NewEvent],
    setup_tasks: &[NewEvent],
    timed: &[NewEvent],
) -> anyhow::Result<i64> {
    let (keys, values): (Vec<&str>, Vec<&Value>) =
        mix.facts.iter().map(|(k, v)| (k.as_str(), v)).unzip();
    sqlx::query(
        "INSERT INTO facts (key, value) SELECT * FROM UNNEST($1::text[], $2::jsonb[]) ON CONFLICT DO NOTHING",
    )
    .bind(&keys)
    .bind(&values)
    .execute(pool)
    .await?;

    insert(pool, setup_prs).await?;
    drain(pool, ctx, 100, 1).await?;
    jobs_done(pool).await?;
    // What the submit jobs record when Koji accepts a build.
    let builds: Vec<(i64, String)> = sqlx::query_as(
        "SELECT kb.id, p.repo FROM koji_builds kb JOIN projects p ON p.id = kb.project_id
         WHERE kb.scratch AND kb.variant = 'default'",
    )
    .fetch_all(pool)
    .await?;
    let (ids, tasks): (Vec<i64>, Vec<i64>) = builds
        .iter()
        .filter_map(|(id, repo)| mix.task_ids.get(repo).map(|task| (*id, *task)))
        .unzip();
    if ids.len() != mix.task_ids.len() {
        bail!(
            "setup made {} scratch builds for the {} pull requests decided first",
            ids.len(),
            mix.task_ids.len()
        );
    }
    sqlx::query(
        "UPDATE koji_builds SET task_id = u.task, submitted_at = now(), updated_at = now()
         FROM UNNEST($1::int8[], $2::int8[]) AS u(id, task) WHERE koji_builds.id = u.id",
    )
    .bind(&ids)
    .bind(&tasks)
    .execute(pool)
    .await?;

    insert(pool, setup_tasks).await?;
    drain(pool, ctx, 100, 1).await?;
    jobs_done(pool).await?;
    // What the submit jobs record when Testing Farm accepts a request.
    let runs: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT tr.id, p.repo, tr.test_name FROM test_runs tr
         JOIN pipelines pl ON pl.id = tr.pipeline_id JOIN projects p ON p.id = pl.project_id",
    )
    .fetch_all(pool)
    .await?;
    let (ids, requests): (Vec<i64>, Vec<String>) = runs
        .iter()
        .filter_map(|(id, repo, test)| {
            mix.request_ids
                .get(&(repo.clone(), test.clone()))
                .map(|request| (*id, request.clone()))
        })
        .unzip();
    let wanted = mix.request_ids.len();
    if ids.len() != wanted {
        bail!(
            "setup made {} of the {wanted} test runs the Testing Farm events report on",
            ids.len()
        );
    }
    sqlx::query(
        "UPDATE test_runs SET request_id = u.request, submitted_at = now(), updated_at = now()
         FROM UNNEST($1::int8[], $2::text[]) AS u(id, request) WHERE test_runs.id = u.id",
    )
    .bind(&ids)
    .bind(&requests)
    .execute(pool)
    .await?;
    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE status <> 'processed'")
        .fetch_one(pool)
        .await?;
    if failed != 0 {
        bail!("{failed} events of the setup were not processed");
    }

    let last: i64 = sqlx::query_scalar("SELECT COALESCE(max(id), 0) FROM events")
        .fetch_one(pool)
        .await?;
    insert(pool, timed).await?;
    analyze(pool).await?;
    Ok(last + 1)
}

/// What the job runner will have done by the time the timed events arrive:
/// every job of the setup ran, and the flags it set were sent.
async fn jobs_done(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "UPDATE jobs SET state = 'done', attempts = 1, finished_at = now(), updated_at = now()
         WHERE state = 'pending';
         UPDATE flags SET sent_version = version WHERE sent_version <> version;",
    )
    .execute(pool)
    .await?;
    Ok(())
}

struct Drained {
    elapsed: Duration,
    retries: usize,
}

/// Decide until the inbox is empty, with `tasks` deciders sharing the pool.
async fn drain(
    pool: &PgPool,
    ctx: &Arc<Context>,
    batch: u32,
    tasks: usize,
) -> anyhow::Result<Drained> {
    let started = Instant::now();
    let mut retries = 0;
    // A decider stops at its first empty batch; rows another one rolled back
    // may be left, so look again until nothing is.
    loop {
        let mut deciders = Vec::new();
        for _ in 0..tasks.max(1) {
            let pool = pool.clone();
            let ctx = Arc::clone(ctx);
            deciders.push(tokio::spawn(async move {
                let mut retries = 0;
                loop {
                    match handlers::decider::decide_batch(&pool, &ctx, batch).await {
                        Ok(report) if report.is_empty() => return Ok(retries),
                        Ok(_) => {}
                        Err(error) if handlers::decider::is_transient(&error) && retries < 100 => {
                            retries += 1;
                        }
                        Err(error) => return Err(error),
                    }
                }
            }));
        }
        for decider in deciders {
            retries += decider.await?.context("deciding")?;
        }
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE status = 'received'")
            .fetch_one(pool)
            .await?;
        if left == 0 {
            break;
        }
    }
    Ok(Drained {
        elapsed: started.elapsed(),
        retries,
    })
}

/// Statuses, per topic and in all, and the jobs created.
async fn report(pool: &PgPool, first: i64, mix: &Mix) -> anyhow::Result<()> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT topic, status, count(*) FROM events WHERE id >= $1 GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(first)
    .fetch_all(pool)
    .await?;
    let mut per_topic: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    let mut total: BTreeMap<&str, i64> = BTreeMap::new();
    for (topic, status, count) in &rows {
        *per_topic
            .entry(events::typed::short_topic(topic))
            .or_default()
            .entry(status)
            .or_default() += count;
        *total.entry(status).or_default() += count;
    }
    let statuses = |counts: &BTreeMap<&str, i64>| {
        counts
            .iter()
            .map(|(status, count)| format!("{count} {status}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("           final status: {}", statuses(&total));
    for (topic, counts) in &per_topic {
        println!(
            "             {topic:<60} {:>6}: {}",
            counts.values().sum::<i64>(),
            statuses(counts)
        );
    }
    let jobs: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, count(*) FROM jobs WHERE event_id >= $1 GROUP BY 1 ORDER BY 2 DESC, 1",
    )
    .bind(first)
    .fetch_all(pool)
    .await?;
    println!(
        "           jobs created: {} ({})",
        jobs.iter().map(|(_, n)| n).sum::<i64>(),
        jobs.iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    check_outcomes(pool, first, mix).await
}

/// No event failed, and the events about this run's builds and requests
/// found them (else the setup, not the decider, would be measured).
async fn check_outcomes(pool: &PgPool, first: i64, mix: &Mix) -> anyhow::Result<()> {
    let failed: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT topic, reason FROM events WHERE id >= $1 AND status = 'failed' ORDER BY id",
    )
    .bind(first)
    .fetch_all(pool)
    .await?;
    if !failed.is_empty() {
        for (topic, reason) in failed.iter().take(20) {
            eprintln!("failed: {topic}: {}", reason.as_deref().unwrap_or(""));
        }
        bail!("{} events failed", failed.len());
    }
    let (foreign_tasks, foreign_requests): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE reason LIKE '%not a build this service submitted%'),
                count(*) FILTER (WHERE reason LIKE '%not a request this service submitted%')
         FROM events WHERE id >= $1",
    )
    .bind(first)
    .fetch_one(pool)
    .await?;
    if foreign_tasks as usize != mix.foreign_tasks || foreign_requests != 0 {
        bail!(
            "{foreign_tasks} task events found no build of ours (expected {}), {foreign_requests} \
             Testing Farm events no run of ours (expected 0): the setup is broken",
            mix.foreign_tasks
        );
    }
    Ok(())
}

/// A message as it travels: topic, headers, body.
#[derive(Clone)]
struct Message {
    file: &'static str,
    topic: String,
    headers: Value,
    body: Value,
}

impl Message {
    /// Replace a value the real message has; never adds a field.
    fn set(&mut self, pointer: &str, value: impl Into<Value>) -> anyhow::Result<&mut Self> {
        let slot = self
            .body
            .pointer_mut(pointer)
            .with_context(|| format!("{} has no {pointer}", self.file))?;
        *slot = value.into();
        Ok(self)
    }

    fn get(&self, pointer: &str) -> anyhow::Result<&Value> {
        self.body
            .pointer(pointer)
            .with_context(|| format!("{} has no {pointer}", self.file))
    }

    fn text(&self, pointer: &str) -> anyhow::Result<String> {
        self.get(pointer)?
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("{pointer} of {} is not a string", self.file))
    }

    /// Rename a name (package, user, id) wherever it stands as a whole word
    /// in the body's strings.
    fn rename(&mut self, old: &str, new: &str) -> &mut Self {
        rename(&mut self.body, old, new);
        self
    }

    /// [`Message::rename`] within one part of the body.
    fn rename_in(&mut self, pointer: &str, old: &str, new: &str) -> anyhow::Result<&mut Self> {
        let part = self
            .body
            .pointer_mut(pointer)
            .with_context(|| format!("{} has no {pointer}", self.file))?;
        rename(part, old, new);
        Ok(self)
    }

    /// The inbox row, as the consumer records it.
    fn to_event(&self) -> NewEvent {
        let text = self.body.to_string();
        NewEvent {
            message_id: uuid::Uuid::new_v4().to_string(),
            topic: self.topic.clone(),
            headers: self.headers.clone(),
            body_size: i32::try_from(text.len()).unwrap_or(i32::MAX),
            body: Some(text),
            raw_body: None,
            sent_at: self
                .headers
                .get("sent-at")
                .and_then(Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc)),
            source: Source::Bus,
            queue: None,
            priority: None,
            dead_reason: None,
        }
    }
}

fn rename(value: &mut Value, old: &str, new: &str) {
    match value {
        Value::String(text) if text.contains(old) => *text = replace_word(text, old, new),
        Value::Array(items) => items.iter_mut().for_each(|v| rename(v, old, new)),
        Value::Object(map) => map.values_mut().for_each(|v| rename(v, old, new)),
        _ => {}
    }
}

/// `text` with `old` replaced where no letter, digit, `_` or `-` touches it
/// (a `-` before a version does not count).
fn replace_word(text: &str, old: &str, new: &str) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (at, _) in text.match_indices(old) {
        let end = at + old.len();
        let before = text[..at].chars().next_back();
        let tail = &text[end..];
        let joined_after = match tail.chars().next() {
            // `name-1.0-1.fc44`: a version follows the name.
            Some('-') => !tail[1..].starts_with(|c: char| c.is_ascii_digit()),
            Some(c) => is_word(c),
            None => false,
        };
        if at < copied || before.is_some_and(is_word) || joined_after {
            continue;
        }
        out.push_str(&text[copied..at]);
        out.push_str(new);
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The real messages the mix is made of.
struct Shapes {
    messages: HashMap<&'static str, Message>,
}

const SHAPE_FILES: [&str; 15] = [
    "pagure.pull-request.new-fork.json",
    "pagure.pull-request.updated.json",
    "pagure.pull-request.rebased.json",
    "pagure.pull-request.comment.added.json",
    "pagure.pull-request.flag.updated.json",
    "buildsys.task.state.change-open-scratch.json",
    "buildsys.task.state.change-closed-scratch.json",
    "buildsys.build.state.change-complete.json",
    "buildsys.build.state.change-building.json",
    "buildsys.build.state.change-canceled.json",
    "buildsys.tag.json",
    "pagure.git.receive-branch.json",
    "pagure.git.receive-pr.json",
    "legacy-fedmsg-git.receive.json",
    "bodhi.update.status.testing.koji-build-group.build.complete.json",
];
const TF_COMPLETE: &str = "request-complete.json";
const TF_ERROR: &str = "request-error.json";

impl Shapes {
    fn load(data: &Path) -> anyhow::Result<Self> {
        let mut messages = HashMap::new();
        for file in SHAPE_FILES {
            let path = data.join("bus").join(file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let envelope = events::parse_serialized(&text)
                .with_context(|| format!("{} is not a serialized message", path.display()))?
                .into_iter()
                .next()
                .with_context(|| format!("{} holds no message", path.display()))?
                .with_context(|| path.display().to_string())?;
            messages.insert(
                file,
                Message {
                    file,
                    topic: envelope.topic,
                    headers: Value::Object(envelope.headers),
                    body: Value::Object(envelope.body),
                },
            );
        }
        for file in [TF_COMPLETE, TF_ERROR] {
            let path = data.join("testing-farm").join(file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let body: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            messages.insert(
                file,
                Message {
                    file,
                    topic: events::typed::TOPIC_TF_REQUEST.to_owned(),
                    headers: json!({}),
                    body,
                },
            );
        }
        Ok(Shapes { messages })
    }

    fn get(&self, file: &'static str) -> anyhow::Result<Message> {
        self.messages
            .get(file)
            .cloned()
            .with_context(|| format!("no shape {file}"))
    }
}

/// A pull request from a fork, as its message shows it.
#[derive(Clone)]
struct PullRequest {
    package: String,
    number: i64,
    owner: String,
    head: String,
    last_updated: i64,
    message: Message,
}

/// Real package names and user names of the data, made distinct by a number.
const PACKAGES: [&str; 10] = [
    "python-ogr",
    "optee_os",
    "ftp",
    "marshalparser",
    "packit",
    "prusa-slicer",
    "gdb",
    "python-specfile",
    "php-simplepie",
    "python-teamcity-messages",
];
const USERS: [&str; 8] = [
    "zbyszek", "lbalhar", "omejzlik", "mmassari", "nforro", "spot", "trasher", "kevinb",
];

fn package(set: &str, i: usize) -> String {
    format!("{}-{set}{i}", PACKAGES[i % PACKAGES.len()])
}

fn user(i: usize) -> &'static str {
    USERS[i % USERS.len()]
}

/// A pseudo-random number from a seed (splitmix64).
fn mix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `len` hex digits from a seed: commit shas, Pagure uids, request ids.
fn hex(seed: u64, len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    let mut i = 0;
    while out.len() < len {
        out.push_str(&format!(
            "{:016x}",
            mix64(seed.wrapping_mul(31).wrapping_add(i))
        ));
        i += 1;
    }
    out.truncate(len);
    out
}

fn sha(kind: u64, i: usize) -> String {
    hex((kind << 40) ^ i as u64, 40)
}

/// A Testing Farm request id (a UUID).
fn request_id(c: usize, test: usize) -> String {
    let h = hex(0x7e57_0000_0000 ^ ((c as u64) << 8) ^ test as u64, 32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The N events and what must exist before they are decided.
struct Mix {
    /// Pull requests decided before the clock starts.
    setup_prs: Vec<Message>,
    /// Task states decided before the clock starts, once the builds have task ids.
    setup_tasks: Vec<Message>,
    timed: Vec<Message>,
    facts: Vec<(String, Value)>,
    /// Koji task id of the default scratch build of each package decided first.
    task_ids: HashMap<String, i64>,
    /// Testing Farm request id of each (package, test) run the mix reports on.
    request_ids: HashMap<(String, String), String>,
    eln_packages: BTreeSet<String>,
    /// Task events for tasks of other people.
    foreign_tasks: usize,
}

impl Mix {
    fn build(shapes: &Shapes, count: usize) -> anyhow::Result<Self> {
        let blocks = count.div_ceil(BLOCK);
        let mut mix = Mix {
            setup_prs: Vec::new(),
            setup_tasks: Vec::new(),
            timed: Vec::new(),
            facts: Vec::new(),
            task_ids: HashMap::new(),
            request_ids: HashMap::new(),
            eln_packages: BTreeSet::new(),
            foreign_tasks: 0,
        };
        let base_time: i64 = 1_763_000_000;
        let fmf_fact = |pr: &PullRequest, present: bool| {
            let fact = Fact::FileExists {
                project_url: format!("{DISTGIT}/fork/{}/rpms/{}", pr.owner, pr.package),
                sha: pr.head.clone(),
                path: checkers::rules::FMF_VERSION_PATH.into(),
            };
            (fact.key(), Value::Bool(present))
        };

        // A: builds whose OPEN and CLOSED arrive in the timed mix, 3 per
        // block: block k closes 3k.. and opens 3(k + BUILD_BLOCKS)..; the
        // first BUILD_BLOCKS groups were opened before the run.
        let mut built = Vec::new();
        for i in 0..3 * (blocks + BUILD_BLOCKS) {
            let pr = pull_request(
                shapes,
                "pagure.pull-request.new-fork.json",
                &package("a", i),
                (i % 40 + 1) as i64,
                user(i),
                None,
                &sha(1, i),
                base_time,
            )?;
            mix.facts.push(fmf_fact(&pr, i % 2 == 0));
            mix.task_ids
                .insert(pr.package.clone(), 140_000_000 + i as i64);
            mix.setup_prs.push(pr.message.clone());
            built.push(pr);
        }
        for pr in &built[..3 * BUILD_BLOCKS] {
            let task = mix.task_ids[&pr.package];
            mix.setup_tasks
                .push(task_state(shapes, false, task, Some(pr), "fedora-ci")?);
        }
        // U: pull requests that the timed `updated`/`rebased` move to a new
        // head, 4 per block; their first build was submitted.
        let mut moved = Vec::new();
        for i in 0..4 * blocks {
            let file = if i % 4 < 2 {
                "pagure.pull-request.updated.json"
            } else {
                "pagure.pull-request.rebased.json"
            };
            let pr = pull_request(
                shapes,
                file,
                &package("u", i),
                (i % 40 + 1) as i64,
                user(i + 1),
                None,
                &sha(2, i),
                base_time,
            )?;
            mix.task_ids
                .insert(pr.package.clone(), 141_000_000 + i as i64);
            mix.setup_prs.push(pr.message.clone());
            moved.push((file, pr));
        }
        // C: builds that finished before the run; their test runs get the
        // Testing Farm states, 3 per block, and `/packit-ci test` retriggers.
        let mut closed = Vec::new();
        for i in 0..(3 * blocks).div_ceil(SHARED_TESTS.len()).max(1) {
            let pr = pull_request(
                shapes,
                "pagure.pull-request.new-fork.json",
                &package("c", i),
                (i % 40 + 1) as i64,
                user(i + 2),
                None,
                &sha(3, i),
                base_time,
            )?;
            mix.facts.push(fmf_fact(&pr, i % 2 == 0));
            let task = 142_000_000 + i as i64;
            mix.task_ids.insert(pr.package.clone(), task);
            for (t, test) in SHARED_TESTS.iter().enumerate() {
                mix.request_ids.insert(
                    (pr.package.clone(), test.as_str().to_owned()),
                    request_id(i, t),
                );
            }
            mix.setup_prs.push(pr.message.clone());
            mix.setup_tasks
                .push(task_state(shapes, true, task, Some(&pr), "fedora-ci")?);
            closed.push(pr);
        }
        // M: pull requests that a push merges, 2 per block, each once.
        let mut merged = Vec::new();
        for i in 0..2 * blocks {
            let pr = pull_request(
                shapes,
                "pagure.pull-request.new-fork.json",
                &package("m", i),
                (i % 40 + 1) as i64,
                user(i + 5),
                None,
                &sha(12, i),
                base_time,
            )?;
            mix.task_ids
                .insert(pr.package.clone(), 143_000_000 + i as i64);
            mix.setup_prs.push(pr.message.clone());
            merged.push(pr);
        }
        // Who comments `/packit-ci test`: six of the eight users are packagers.
        for (i, name) in USERS.iter().enumerate() {
            let fact = Fact::GroupMember {
                user: (*name).to_owned(),
                group: checkers::rules::PACKAGER_GROUP.to_owned(),
            };
            mix.facts.push((fact.key(), Value::Bool(i < 6)));
        }

        // The pull request whose test results block k brings, and one far
        // from it: a retrigger on the same pull request as those results
        // would be a coincidence, not the rule.
        let results_of = |k: usize| 3 * k / SHARED_TESTS.len();
        let away = |k: usize, by: usize| (results_of(k) + by) % closed.len();
        let mut counter = 0usize;
        let mut next = || {
            counter += 1;
            counter
        };
        for k in 0..blocks {
            let mut block: Vec<Message> = Vec::with_capacity(BLOCK);
            // 40 Koji task states.
            for i in 0..3 {
                let pr = &built[3 * (k + BUILD_BLOCKS) + i];
                block.push(task_state(
                    shapes,
                    false,
                    mix.task_ids[&pr.package],
                    Some(pr),
                    "fedora-ci",
                )?);
                let pr = &built[3 * k + i];
                block.push(task_state(
                    shapes,
                    true,
                    mix.task_ids[&pr.package],
                    Some(pr),
                    "fedora-ci",
                )?);
            }
            for i in 0..34 {
                let n = next();
                let task = 150_000_000 + n as i64;
                block.push(task_state(shapes, i % 2 == 1, task, None, user(n))?);
            }
            // 15 Koji build states.
            for i in 0..15 {
                let n = next();
                let file = match i {
                    0..11 => "buildsys.build.state.change-complete.json",
                    11..13 => "buildsys.build.state.change-building.json",
                    _ => "buildsys.build.state.change-canceled.json",
                };
                block.push(official_build(shapes, file, n)?);
            }
            // 12 tags.
            for _ in 0..12 {
                let n = next();
                let mut m = shapes.get("buildsys.tag.json")?;
                let name = package("t", n);
                let old = m.text("/name")?;
                m.set("/build_id", 3_100_000 + n as i64)?
                    .set("/name", name.as_str())?
                    .set("/owner", user(n))?
                    .set("/user", user(n))?;
                m.rename(&old, &name);
                block.push(m);
            }
            // 10 pushes.
            for i in 0..10 {
                let n = next();
                block.push(match i {
                    0..5 => {
                        let mut m = shapes.get("pagure.git.receive-branch.json")?;
                        let name = package("p", n);
                        let old = m.text("/repo/name")?;
                        m.rename(&old, &name)
                            .set("/agent", user(n))?
                            .set("/end_commit", sha(4, n))?
                            .set("/start_commit", sha(5, n))?
                            .set("/old_commit", sha(6, n))?;
                        m
                    }
                    5..7 => {
                        let pr = &merged[2 * k + i - 5];
                        let mut m = shapes.get("pagure.git.receive-pr.json")?;
                        m.set("/repo/name", pr.package.as_str())?
                            .set("/pull_request_id", pr.number)?
                            .set("/branch", pr.message.text("/pullrequest/branch")?)?
                            .set("/end_commit", sha(7, n))?;
                        m
                    }
                    _ => {
                        let mut m = shapes.get("legacy-fedmsg-git.receive.json")?;
                        let name = package("g", n);
                        let old = m.text("/commit/repo")?;
                        m.rename(&old, &name).set("/commit/rev", sha(8, n))?;
                        m
                    }
                });
            }
            // 8 flags set by other CI systems.
            for i in 0..8 {
                let pr = &built[(3 * k + i) % built.len()];
                let mut m = shapes.get("pagure.pull-request.flag.updated.json")?;
                let old = m.text("/pullrequest/project/name")?;
                m.rename_in("/pullrequest/project", &old, &pr.package)?
                    .rename_in("/pullrequest/repo_from", &old, &pr.package)?
                    .set("/pullrequest/full_url", pr_url(&pr.package, pr.number))?
                    .set("/pullrequest/id", pr.number)?
                    .set("/flag/commit_hash", pr.head.as_str())?
                    .set("/pullrequest/commit_start", pr.head.as_str())?
                    .set("/pullrequest/commit_stop", pr.head.as_str())?
                    .set(
                        "/pullrequest/uid",
                        hex(0x0f1a_9000 + (k * 8 + i) as u64, 32),
                    )?;
                block.push(m);
            }
            // 6 pull requests: 2 new, 2 updated, 2 rebased.
            for i in 0..2 {
                let n = 2 * k + i;
                let name = package("n", n);
                if n % 5 == 0 {
                    mix.eln_packages.insert(name.clone());
                    let fact = Fact::BranchExists {
                        project_url: normalize_project_url(&format!("{DISTGIT}/rpms/{name}")),
                        branch: "eln".into(),
                    };
                    mix.facts.push((fact.key(), Value::Bool(false)));
                }
                let pr = pull_request(
                    shapes,
                    "pagure.pull-request.new-fork.json",
                    &name,
                    (n % 40 + 1) as i64,
                    user(n + 4),
                    None,
                    &sha(9, n),
                    base_time + 600,
                )?;
                block.push(pr.message);
            }
            for (j, (file, pr)) in moved.iter().enumerate().skip(4 * k).take(4) {
                let moved_to = pull_request(
                    shapes,
                    file,
                    &pr.package,
                    pr.number,
                    &pr.owner,
                    Some(&pr.head),
                    &sha(10, j),
                    pr.last_updated + 3600,
                )?;
                block.push(moved_to.message);
            }
            // 4 comments: one command, three ordinary.
            {
                let pr = &closed[away(k, closed.len() / 2)];
                let n = next();
                block.push(comment(
                    shapes,
                    pr,
                    300_000 + n as i64,
                    user(k),
                    "/packit-ci test",
                )?);
            }
            for (i, text) in [
                "/packit koji-build",
                "Thanks, looks good to me. I'll merge it once the builds pass.",
                "Could you also bump the release and add a changelog entry?",
            ]
            .into_iter()
            .enumerate()
            {
                let pr = &built[(3 * k + i) % built.len()];
                let n = next();
                let mut m = shapes.get("pagure.pull-request.comment.added.json")?;
                let old = m.text("/pullrequest/project/name")?;
                let old_user = m.text("/pullrequest/comments/0/user/name")?;
                m.rename(&old, &pr.package)
                    .set("/pullrequest/full_url", pr_url(&pr.package, pr.number))?
                    .set("/pullrequest/id", pr.number)?
                    .rename(&old_user, user(n))
                    .set("/pullrequest/comments/0/id", 300_000 + n as i64)?
                    .set("/pullrequest/comments/0/comment", text)?;
                block.push(m);
            }
            // 3 Testing Farm request states.
            for t in 0..3 {
                let j = 3 * k + t;
                let (c, test) = (j / SHARED_TESTS.len(), j % SHARED_TESTS.len());
                debug_assert!(c == results_of(k) || c == results_of(k) + 1);
                let mut m = shapes.get(if t < 2 { TF_COMPLETE } else { TF_ERROR })?;
                let old = m.text("/id")?;
                m.rename(&old, &request_id(c, test));
                block.push(m);
            }
            // 2 Bodhi updates.
            for _ in 0..2 {
                let n = next();
                let mut m = shapes
                    .get("bodhi.update.status.testing.koji-build-group.build.complete.json")?;
                let name = package("b", n);
                let old = m.text("/artifact/builds/0/component")?;
                let old_update = m.text("/artifact/id")?;
                let old_alias = m
                    .text("/artifact/repository")?
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let alias = format!("FEDORA-2025-{}", hex(0xb0d1 ^ n as u64, 10));
                m.rename(&old, &name)
                    .rename(
                        &old_update,
                        &format!("{alias}-{}", hex(0xb0d2 ^ n as u64, 40)),
                    )
                    .rename(&old_alias, &alias)
                    .set("/artifact/builds/0/id", 3_200_000 + n as i64)?
                    .set("/artifact/builds/0/task_id", 170_000_000 + n as i64)?;
                block.push(m);
            }
            if block.len() != BLOCK {
                bail!("a block of the mix holds {} events", block.len());
            }
            shuffle(&mut block, k as u64);
            mix.timed.extend(block);
        }
        // The last block, cut to the count.
        mix.timed.truncate(count);
        mix.foreign_tasks = mix
            .timed
            .iter()
            .filter(|m| {
                m.file.starts_with("buildsys.task.state.change")
                    && m.get("/id")
                        .ok()
                        .and_then(Value::as_i64)
                        .is_some_and(|id| id >= 150_000_000)
            })
            .count();
        Ok(mix)
    }
}

/// A pull request from a fork on `package`, at `head`, from a real message of
/// that action.
#[expect(
    clippy::too_many_arguments,
    reason = "what varies between pull requests"
)]
fn pull_request(
    shapes: &Shapes,
    file: &'static str,
    package: &str,
    number: i64,
    owner: &str,
    start: Option<&str>,
    head: &str,
    last_updated: i64,
) -> anyhow::Result<PullRequest> {
    let mut m = shapes.get(file)?;
    let old_package = m.text("/pullrequest/project/name")?;
    let old_owner = m.text("/pullrequest/repo_from/user/name")?;
    m.rename(&old_package, package)
        .rename(&old_owner, owner)
        .set("/pullrequest/full_url", pr_url(package, number))?
        .set("/pullrequest/id", number)?
        .set("/pullrequest/commit_start", start.unwrap_or(head))?
        .set("/pullrequest/commit_stop", head)?
        .set("/pullrequest/last_updated", last_updated.to_string())?
        .set(
            "/pullrequest/uid",
            hex(mix64(number as u64) ^ last_updated as u64, 32),
        )?;
    Ok(PullRequest {
        package: package.to_owned(),
        number,
        owner: owner.to_owned(),
        head: head.to_owned(),
        last_updated,
        message: m,
    })
}

fn pr_url(package: &str, number: i64) -> String {
    format!("{DISTGIT}/rpms/{package}/pull-request/{number}")
}

/// A Koji task state: OPEN or CLOSED of a scratch build, ours (`pr` given)
/// or someone else's.
fn task_state(
    shapes: &Shapes,
    closed: bool,
    task: i64,
    pr: Option<&PullRequest>,
    owner: &str,
) -> anyhow::Result<Message> {
    let mut m = shapes.get(if closed {
        "buildsys.task.state.change-closed-scratch.json"
    } else {
        "buildsys.task.state.change-open-scratch.json"
    })?;
    let old_task = m.get("/id")?.as_i64().context("task id")?;
    let children = m.get("/info/children")?.as_array().map_or(0, |c| c.len());
    for c in 0..children {
        let child = m
            .get(&format!("/info/children/{c}/id"))?
            .as_i64()
            .context("child id")?;
        m.set(&format!("/info/children/{c}/id"), task + (child - old_task))?
            .set(&format!("/info/children/{c}/parent"), task)?;
    }
    m.set("/id", task)?
        .set("/info/id", task)?
        .set("/owner", owner)?;
    if let Some(pr) = pr {
        let source = format!(
            "git+{DISTGIT}/forks/{}/rpms/{}.git#{}",
            pr.owner, pr.package, pr.head
        );
        m.set("/info/request/0", source)?
            .set("/srpm", format!("{}-1.0-1.fc44.src.rpm", pr.package))?;
    } else {
        let name = package("x", task as usize);
        let srpm = format!("{name}-1.0-1.fc44.src.rpm");
        let old_request = m.text("/info/request/0")?;
        let request = match old_request.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/{srpm}"),
            None => srpm.clone(),
        };
        m.set("/info/request/0", request)?.set("/srpm", srpm)?;
    }
    Ok(m)
}

/// An official build of a package of its own, in the state of `file`.
fn official_build(shapes: &Shapes, file: &'static str, n: usize) -> anyhow::Result<Message> {
    let mut m = shapes.get(file)?;
    let name = package("o", n);
    let old = m.text("/name")?;
    let old_build = m.get("/build_id")?.as_i64().context("build id")?;
    let old_task = m.get("/task_id")?.as_i64().context("task id")?;
    let old_sha = m
        .text("/request/0")?
        .rsplit_once('#')
        .map(|(_, sha)| sha.to_owned())
        .unwrap_or_default();
    let (build, task) = (3_000_000 + n as i64, 160_000_000 + n as i64);
    m.rename(&old, &name)
        .rename(&old_sha, &sha(11, n))
        .rename(&old_build.to_string(), &build.to_string())
        .rename(&old_task.to_string(), &task.to_string())
        .set("/build_id", build)?
        .set("/task_id", task)?;
    if m.get("/task/id").is_ok() {
        m.set("/task/id", task)?;
        let children = m.get("/task/children")?.as_array().map_or(0, |c| c.len());
        for c in 0..children {
            let child = m
                .get(&format!("/task/children/{c}/id"))?
                .as_i64()
                .context("child id")?;
            let new_child = task + (child - old_task);
            m.rename(&child.to_string(), &new_child.to_string())
                .set(&format!("/task/children/{c}/id"), new_child)?
                .set(&format!("/task/children/{c}/parent"), task)?;
        }
    }
    Ok(m)
}

/// A `/packit-ci` command on a pull request: its own message's pull request,
/// with the comment of the real comment message.
fn comment(
    shapes: &Shapes,
    pr: &PullRequest,
    id: i64,
    author: &str,
    text: &str,
) -> anyhow::Result<Message> {
    let mut m = shapes.get("pagure.pull-request.comment.added.json")?;
    let mut new_comment = m.get("/pullrequest/comments/0")?.clone();
    let old_author = m.text("/pullrequest/comments/0/user/name")?;
    rename(&mut new_comment, &old_author, author);
    m.set("/pullrequest", pr.message.get("/pullrequest")?.clone())?
        .set("/pullrequest/comments", Value::Array(vec![new_comment]))?
        .set("/pullrequest/comments/0/id", id)?
        .set("/pullrequest/comments/0/comment", text)?
        .set("/agent", author)?;
    Ok(m)
}

/// Fisher–Yates, seeded.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    for i in (1..items.len()).rev() {
        state = mix64(state);
        let j = (state % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}
