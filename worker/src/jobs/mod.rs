//! The job runner: the durable work that carries decisions out.
//!
//! Jobs are rows in PostgreSQL. Each queue (one per external service) has its
//! own loop: it claims due jobs with `FOR UPDATE SKIP LOCKED` (so runners in
//! other processes never take the same job), up to the queue's concurrency,
//! and runs each under a lease that it keeps extending; a job whose runner
//! was killed is taken over once the lease runs out. A failed attempt is
//! retried with exponential backoff and full jitter (never sooner than the
//! service's `Retry-After`), up to the job's attempts; a permanent error, or
//! the last attempt, makes the job `dead`, visible for an operator to retry,
//! and the flows are told so that the build or test ends with an error flag.
//! A service that keeps failing trips its queue's breaker, and its queue
//! pauses instead of hammering it; a rate limit spaces calls to each service.
//!
//! The loops wake on `NOTIFY fedora_ci_jobs` (sent when jobs are created) and
//! look anyway every `jobs.poll_interval_ms`. On shutdown they take no more
//! jobs, let running ones finish within the grace period, and hand back the
//! ones that did not, so that another runner starts them at once.

mod breaker;
mod kinds;
mod periodic;
pub mod public;

pub use breaker::{Breaker, BreakerConfig, Gate, RateLimit};
pub use kinds::Services;
pub use periodic::PeriodicConfig;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng as _;
use serde_json::json;
use sqlx::postgres::PgListener;
use store::jobs::ClaimedJob;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug, error, info, info_span, warn};

use kinds::JobError;

/// How one queue runs.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub name: String,
    /// Jobs of this queue running at once in this process.
    pub concurrency: usize,
    /// Calls per second to the queue's service; `None`: no limit.
    pub rate_per_second: Option<f64>,
}

/// How the runner behaves.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub queues: Vec<QueueConfig>,
    /// A running job's lease; extended every third of it while it runs.
    pub lease: Duration,
    /// Attempts of dist-git writes (flags, comments), instead of the job's own.
    pub distgit_attempts: i32,
    /// First retry delay; doubles with each attempt, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How often to look for due jobs without a notification.
    pub poll_interval: Duration,
    pub breaker: BreakerConfig,
    pub periodic: PeriodicConfig,
}

/// The breakers of this process's queues, for metrics and the status page.
pub type Breakers = Arc<HashMap<String, Arc<Breaker>>>;

/// Make the breakers of the configured queues.
pub fn breakers(config: &RunnerConfig) -> Breakers {
    Arc::new(
        config
            .queues
            .iter()
            .map(|q| {
                (
                    q.name.clone(),
                    Arc::new(Breaker::new(&q.name, config.breaker.clone())),
                )
            })
            .collect(),
    )
}

/// Run every queue and the periodic jobs until `stop`; after `stop`, running
/// jobs have until `abort` to finish.
pub async fn run(
    pool: store::PgPool,
    services: Services,
    config: RunnerConfig,
    breakers: Breakers,
    stop: CancellationToken,
    abort: CancellationToken,
) {
    let runner = format!(
        "{}:{}:{}",
        hostname(),
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    info!(%runner, queues = config.queues.len(), "running jobs");
    let wake = Arc::new(Wake::default());
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(listen(pool.clone(), wake.clone(), stop.clone()));
    tasks.spawn(periodic::run(
        pool.clone(),
        config.periodic.clone(),
        stop.clone(),
    ));
    for queue in &config.queues {
        let Some(breaker) = breakers.get(&queue.name).cloned() else {
            continue;
        };
        tasks.spawn(
            run_queue(
                pool.clone(),
                services.clone(),
                config.clone(),
                queue.clone(),
                breaker,
                runner.clone(),
                wake.clone(),
                stop.clone(),
                abort.clone(),
            )
            .instrument(info_span!("queue", queue = %queue.name)),
        );
    }
    while let Some(result) = tasks.join_next().await {
        if let Err(error) = result {
            error!(%error, "a job runner task failed");
        }
    }
    info!("job runner stopped");
}

/// Notifications from PostgreSQL, per queue.
#[derive(Default)]
struct Wake {
    queues: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
}

impl Wake {
    fn of(&self, queue: &str) -> Arc<tokio::sync::Notify> {
        self.queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(queue.to_owned())
            .or_default()
            .clone()
    }

    fn all(&self) {
        for notify in self
            .queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            notify.notify_one();
        }
    }
}

async fn listen(pool: store::PgPool, wake: Arc<Wake>, stop: CancellationToken) {
    while !stop.is_cancelled() {
        let listener = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen("fedora_ci_jobs").await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match listener.await {
            Ok(listener) => listener,
            Err(error) => {
                debug!(%error, "cannot listen for jobs; polling until it works");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(5)) => continue,
                    () = stop.cancelled() => return,
                }
            }
        };
        // Whatever was created while we were not listening.
        wake.all();
        loop {
            tokio::select! {
                received = listener.recv() => match received {
                    Ok(notification) if notification.payload().is_empty() => wake.all(),
                    Ok(notification) => wake.of(notification.payload()).notify_one(),
                    Err(error) => {
                        debug!(%error, "job notifications interrupted; listening again");
                        break;
                    }
                },
                () = stop.cancelled() => return,
            }
        }
    }
}

#[expect(clippy::too_many_arguments, reason = "one queue loop's whole setting")]
async fn run_queue(
    pool: store::PgPool,
    services: Services,
    config: RunnerConfig,
    queue: QueueConfig,
    breaker: Arc<Breaker>,
    runner: String,
    wake: Arc<Wake>,
    stop: CancellationToken,
    abort: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(queue.concurrency.max(1)));
    let rate = Arc::new(RateLimit::new(queue.rate_per_second));
    let notify = wake.of(&queue.name);
    let mut running = tokio::task::JoinSet::new();
    let mut delay = Duration::from_millis(200);
    let mut shown: Option<(Snapshot, Instant)> = None;
    while !stop.is_cancelled() {
        while running.try_join_next().is_some() {}
        show_breaker(&pool, &queue.name, &runner, &breaker, &mut shown).await;
        let free = slots.available_permits();
        let limit = match breaker.gate() {
            Gate::Open => free,
            Gate::Probe => free.min(1),
            Gate::Closed(until) => {
                tokio::select! {
                    () = tokio::time::sleep_until(until.into()) => {}
                    () = stop.cancelled() => break,
                }
                continue;
            }
        };
        if limit == 0 {
            // Every slot busy: wait for one to free up.
            tokio::select! {
                _ = running.join_next(), if !running.is_empty() => {}
                () = tokio::time::sleep(config.poll_interval) => {}
                () = stop.cancelled() => break,
            }
            continue;
        }
        let claimed = store::jobs::claim(
            &pool,
            &queue.name,
            &runner,
            config.lease,
            i64::try_from(limit).unwrap_or(1),
        )
        .await;
        let jobs = match claimed {
            Ok(jobs) => {
                delay = Duration::from_millis(200);
                jobs
            }
            Err(error) => {
                warn!(%error, retry_in = ?delay, "cannot claim jobs");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => break,
                }
                delay = (delay * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        if jobs.is_empty() {
            tokio::select! {
                () = notify.notified() => {}
                () = tokio::time::sleep(config.poll_interval) => {}
                () = stop.cancelled() => break,
            }
            continue;
        }
        for job in jobs {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let span = info_span!("job", job_id = job.id, kind = %job.kind, attempt = job.attempts);
            let (pool, services, config, breaker, runner, rate, abort) = (
                pool.clone(),
                services.clone(),
                config.clone(),
                breaker.clone(),
                runner.clone(),
                rate.clone(),
                abort.clone(),
            );
            running.spawn(
                async move {
                    run_job(
                        &pool, &services, &config, &breaker, &runner, &rate, job, &abort,
                    )
                    .await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
    }
    // Stopping: no new jobs; the running ones finish, or are handed back at `abort`.
    while running.join_next().await.is_some() {}
}

#[expect(clippy::too_many_arguments, reason = "one job's whole setting")]
async fn run_job(
    pool: &store::PgPool,
    services: &Services,
    config: &RunnerConfig,
    breaker: &Breaker,
    runner: &str,
    rate: &RateLimit,
    job: ClaimedJob,
    abort: &CancellationToken,
) {
    let started = Instant::now();
    let work = async {
        rate.wait().await;
        kinds::execute(pool, services, &job).await
    };
    let keep_lease = async {
        loop {
            tokio::time::sleep(config.lease / 3).await;
            match store::jobs::extend_lease(pool, job.id, runner, config.lease).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => debug!(%error, "cannot extend the lease; retrying"),
            }
        }
    };
    let outcome = tokio::select! {
        outcome = work => Some(outcome),
        () = keep_lease => None,
        () = abort.cancelled() => {
            match store::jobs::release(pool, job.id, runner).await {
                Ok(_) => info!("shutting down: job handed back"),
                Err(error) => warn!(%error, "shutting down: cannot hand the job back; its lease will run out"),
            }
            return;
        }
    };
    let Some(outcome) = outcome else {
        warn!("the job was taken from us (canceled, or our lease ran out); dropping our attempt");
        return;
    };
    let seconds = started.elapsed().as_secs_f64();
    metrics::histogram!("fedora_ci_job_seconds", "kind" => job.kind.clone()).record(seconds);
    // Every job but a look-up talks to its queue's one service.
    metrics::histogram!("fedora_ci_external_call_seconds", "service" => service_of(&job.queue))
        .record(seconds);
    if let Err(JobError::Service(error)) = &outcome {
        let class = match error {
            clients::ClientError::Transient { .. } => "transient",
            clients::ClientError::Permanent { .. } => "permanent",
            clients::ClientError::Auth { .. } => "auth",
        };
        metrics::counter!(
            "fedora_ci_external_errors_total",
            "service" => error.service(),
            "class" => class
        )
        .increment(1);
    }
    let recorded = match outcome {
        Ok(result) => {
            breaker.success();
            metrics::counter!("fedora_ci_jobs_total", "kind" => job.kind.clone(), "outcome" => "done")
                .increment(1);
            debug!(?result, "done");
            store::jobs::complete(pool, job.id, runner, &result).await
        }
        Err(error) => failed(pool, config, breaker, runner, &job, error).await,
    };
    if let Err(error) = recorded {
        // The lease runs out and the job is taken over; its work is idempotent.
        warn!(%error, "cannot record the job's outcome");
    }
}

/// A breaker's state as [`Breaker::snapshot`] gives it.
type Snapshot = (&'static str, Option<Instant>, u32);

/// Keep the breaker's state in the database for the status page: when it
/// changes, and every 30 s so that a live runner stays listed.
async fn show_breaker(
    pool: &store::PgPool,
    queue: &str,
    runner: &str,
    breaker: &Breaker,
    shown: &mut Option<(Snapshot, Instant)>,
) {
    let now = breaker.snapshot();
    let fresh = shown
        .as_ref()
        .is_some_and(|(last, at)| *last == now && at.elapsed() < Duration::from_secs(30));
    if fresh {
        return;
    }
    let (state, until, failures) = now;
    let until = until.map(|until| {
        chrono::Utc::now()
            + chrono::Duration::from_std(until.saturating_duration_since(Instant::now()))
                .unwrap_or_default()
    });
    let failures = i32::try_from(failures).unwrap_or(i32::MAX);
    match store::jobs::record_breaker(pool, queue, runner, state, until, failures).await {
        Ok(()) => *shown = Some((now, Instant::now())),
        Err(error) => debug!(%error, "cannot record the breaker's state"),
    }
}

/// Retry a dead job, as an operator asks (`jobs retry`, the admin API):
/// fresh attempts, and a given-up submission's build or test run opened
/// again with its flag back to the text it started with. False if the job is
/// not dead.
pub async fn retry_by_operator(pool: &store::PgPool, id: i64) -> Result<bool, sqlx::Error> {
    let (_, test_text) =
        checkers::flags::testing_farm_flag(events::states::TestingFarmState::New, None, None);
    store::jobs::retry_dead(pool, id, checkers::flags::BUILD_BEING_SUBMITTED, &test_text).await
}

/// Why a job an operator canceled did not run, on its flag and in its decisions.
pub const CANCELED_BY_AN_OPERATOR: &str = "canceled by an operator";

/// Cancel a job that has not started, as an operator asks; whether it was.
///
/// The flows hear of it as of a job that gave up, in the same transaction, so
/// what waited on it ends: a submission's flag ends in `error` saying it was
/// canceled, instead of staying pending for ever.
pub async fn cancel_by_operator(pool: &store::PgPool, id: i64) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(job) = store::jobs::cancel(&mut *tx, id, CANCELED_BY_AN_OPERATOR).await? else {
        return Ok(false);
    };
    store::events::insert_internal(
        &mut *tx,
        &format!("job-canceled:{id}"),
        events::typed::TOPIC_JOB_DEAD,
        &json!({"job_id": id, "kind": job.kind, "payload": job.payload,
                "error": CANCELED_BY_AN_OPERATOR}),
        store::events::Source::Internal,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Record a failed attempt: a retry later, or the end.
async fn failed(
    pool: &store::PgPool,
    config: &RunnerConfig,
    breaker: &Breaker,
    runner: &str,
    job: &ClaimedJob,
    error: JobError,
) -> Result<bool, sqlx::Error> {
    let message = error.to_string();
    let (retry, retry_after) = match &error {
        JobError::Service(e) if e.is_transient() => {
            breaker.failure();
            if let Some(wait) = e.retry_after() {
                // The service's own rate limit: the whole queue waits.
                breaker.hold_until(Instant::now() + wait);
            }
            (true, e.retry_after())
        }
        JobError::Service(_) => {
            // It answered, with a refusal: the service is up.
            breaker.success();
            (false, None)
        }
        JobError::Database(_) => (true, None),
        JobError::Permanent(_) => (false, None),
    };
    let max_attempts = if job.queue == "distgit" {
        config.distgit_attempts.max(job.max_attempts)
    } else {
        job.max_attempts
    };
    if retry && job.attempts < max_attempts {
        let delay = backoff(config, job.attempts).max(retry_after.unwrap_or_default());
        metrics::counter!("fedora_ci_jobs_total", "kind" => job.kind.clone(), "outcome" => "retry")
            .increment(1);
        warn!(error = %message, retry_in = ?delay, "attempt failed; will retry");
        return store::jobs::retry_later(pool, job.id, runner, &message, delay).await;
    }
    metrics::counter!("fedora_ci_jobs_total", "kind" => job.kind.clone(), "outcome" => "dead")
        .increment(1);
    error!(error = %message, attempts = job.attempts, "job gave up");
    // Buried and announced together: the flows end what waited on it.
    let mut tx = pool.begin().await?;
    let buried = store::jobs::bury(&mut *tx, job.id, runner, &message).await?;
    if buried {
        store::events::insert_internal(
            &mut *tx,
            &format!("job-dead:{}:{}", job.id, job.attempts),
            events::typed::TOPIC_JOB_DEAD,
            // The flows put this on flags and decisions, where anyone reads it;
            // the whole error stays with the job, for operators.
            &json!({"job_id": job.id, "kind": job.kind, "payload": job.payload,
                    "error": public::public_error(&message)}),
            store::events::Source::Internal,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(buried)
}

/// The service a queue's jobs call, for metrics.
fn service_of(queue: &str) -> &'static str {
    match queue {
        "koji" => "koji",
        "testing-farm" => "testing-farm",
        "distgit" => "dist-git",
        // dist-git reads and FASJSON.
        _ => "lookup",
    }
}

/// Exponential backoff with full jitter: a random delay up to
/// `base * 2^(attempt-1)`, capped.
fn backoff(config: &RunnerConfig, attempt: i32) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let ceiling = config
        .backoff_base
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(config.backoff_max);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}
