//! `run`: the long-lived service, and the database start-up it shares with
//! the other commands.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::bus::consumer::{self, BusState};
use crate::config::Settings;
use crate::ingest::{self, WriterConfig};

/// Which parts of the service this process runs.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    pub consumer: bool,
    pub api: bool,
    pub jobs: bool,
}

/// A pool that connects lazily, so that start-up and later outages look the same.
fn pool(settings: &Settings) -> anyhow::Result<store::PgPool> {
    let options: PgConnectOptions = settings
        .database
        .url
        .expose_secret()
        .parse()
        .context("database.url")?;
    Ok(PgPoolOptions::new()
        .max_connections(settings.database.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options.application_name("fedora-ci-worker")))
}

/// Apply migrations, retrying while the database is unreachable, until `stop`.
async fn migrate(
    settings: &Settings,
    pool: &store::PgPool,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(500);
    loop {
        match store::migrate(pool).await {
            Ok(()) => return Ok(()),
            Err(sqlx::migrate::MigrateError::Execute(error)) if is_missing_database(&error) => {
                create_database(settings).await?;
                continue;
            }
            Err(sqlx::migrate::MigrateError::Execute(error)) if is_unreachable(&error) => {
                warn!(%error, retry_in = ?delay, "database unreachable; waiting for it");
            }
            Err(error) => return Err(error).context("applying database migrations"),
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => anyhow::bail!("stopped while waiting for the database"),
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

fn is_missing_database(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some("3D000"))
}

/// On a developer machine the database may not exist yet; the server does.
async fn create_database(settings: &Settings) -> anyhow::Result<()> {
    use sqlx::migrate::MigrateDatabase as _;
    let url = settings.database.url.expose_secret();
    sqlx::Postgres::create_database(url)
        .await
        .context("database.url names a database that does not exist, and creating it failed")?;
    info!(
        database = %crate::config::redacted_url(url),
        "created the database"
    );
    Ok(())
}

fn is_unreachable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
    ) || matches!(error, sqlx::Error::Database(e) if e.code().is_some_and(|c| c.starts_with("57P")))
}

/// The pool for one-shot commands, migrated; waits up to 30 s for the database.
pub async fn database(settings: &Settings) -> anyhow::Result<store::PgPool> {
    let pool = pool(settings)?;
    let give_up = CancellationToken::new();
    let timer = give_up.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        timer.cancel();
    });
    migrate(settings, &pool, &give_up).await?;
    Ok(pool)
}

pub async fn migrate_only(settings: &Settings) -> anyhow::Result<()> {
    database(settings).await?;
    let applied = store::MIGRATOR.iter().count();
    println!("database is at the latest of {applied} migrations");
    Ok(())
}

/// Run until SIGTERM or SIGINT, then stop taking work, record and acknowledge
/// what was received, and return within the grace period.
pub async fn run(settings: Settings, roles: Roles) -> anyhow::Result<()> {
    let metrics = crate::telemetry::metrics()?;
    let stop = CancellationToken::new();
    let abort = CancellationToken::new();
    let grace = Duration::from_secs(settings.service.shutdown_grace_seconds);
    tokio::spawn(watch_signals(stop.clone(), abort.clone(), grace));

    let pool = pool(&settings)?;
    migrate(&settings, &pool, &stop).await?;
    info!(
        revision = crate::telemetry::REVISION,
        consumer = roles.consumer,
        api = roles.api,
        jobs = roles.jobs,
        "fedora-ci-worker started"
    );

    let mut tasks = tokio::task::JoinSet::new();
    let bus_state = roles.consumer.then(|| Arc::new(BusState::default()));
    if let Some(state) = &bus_state {
        let (tx, rx) = mpsc::channel(
            settings
                .ingest
                .batch_size
                .max(settings.bus.qos.prefetch_count.into()),
        );
        let writer_done = CancellationToken::new();
        let writer_config = WriterConfig::from_settings(&settings.ingest);
        let (writer_pool, writer_abort, done) = (pool.clone(), abort.clone(), writer_done.clone());
        tasks.spawn(async move {
            let totals = ingest::run_writer(writer_pool, writer_config, rx, writer_abort).await;
            info!(?totals, "inbox writer stopped");
            done.cancel();
        });
        tasks.spawn(consumer::run(
            settings.bus.clone(),
            settings.ingest.max_body_bytes,
            tx,
            state.clone(),
            stop.clone(),
            writer_done,
        ));
    }
    if roles.jobs {
        let ctx = Arc::new(settings.handler_context());
        let config = crate::decide::DeciderConfig {
            batch_size: settings.decider.batch_size,
            poll_interval: Duration::from_millis(settings.decider.poll_interval_ms),
        };
        for _ in 0..settings.decider.concurrency {
            tasks.spawn(crate::decide::run(
                pool.clone(),
                ctx.clone(),
                config.clone(),
                stop.clone(),
            ));
        }
        tasks.spawn(crate::outbox::run(
            pool.clone(),
            settings.bus.clone(),
            crate::outbox::OutboxConfig {
                batch: 100,
                poll_interval: Duration::from_millis(settings.jobs.poll_interval_ms),
                retry_max: Duration::from_secs(settings.gating.publish_retry_max_seconds),
            },
            stop.clone(),
        ));
        let services = crate::services::from_settings(&settings)?;
        let runner = settings.runner_config();
        let breakers = crate::jobs::breakers(&runner);
        tasks.spawn(crate::jobs::run(
            pool.clone(),
            services,
            runner,
            breakers,
            stop.clone(),
            abort.clone(),
        ));
    }
    if roles.api {
        let api = &settings.api;
        let state = crate::api::AppState {
            pool: pool.clone(),
            bus: bus_state.clone(),
            metrics,
            admin_token: api.admin_token.clone(),
            webhook_token: settings.testing_farm.webhook_token.clone(),
            koji_web_url: settings.koji.web_url.clone(),
            testing_farm_api_url: settings.testing_farm.api_url.clone(),
            limits: crate::api::RequestLimits {
                max_body_bytes: api.max_body_bytes,
                body_timeout: Duration::from_secs(api.body_timeout_seconds),
                request_timeout: Duration::from_secs(api.request_timeout_seconds),
            },
        };
        let limits = crate::api::serve::ServeLimits {
            max_connections: api.max_connections,
            header_timeout: Duration::from_secs(api.header_timeout_seconds),
        };
        let listener = tokio::net::TcpListener::bind(&api.listen)
            .await
            .with_context(|| format!("api.listen: cannot listen on {}", api.listen))?;
        info!(listen = %api.listen, "serving the HTTP API");
        tasks.spawn(crate::api::serve::serve(
            listener,
            crate::api::router(state),
            limits,
            stop.clone(),
            abort.clone(),
        ));
    }
    while let Some(result) = tasks.join_next().await {
        if let Err(error) = result {
            warn!(%error, "a service task failed");
            stop.cancel();
        }
    }
    pool.close().await;
    info!("stopped");
    Ok(())
}

/// First SIGTERM or SIGINT: stop taking work. After the grace period: give up
/// on what is still in flight (it was not acknowledged, so nothing is lost).
async fn watch_signals(stop: CancellationToken, abort: CancellationToken, grace: Duration) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        warn!("cannot listen for signals; only SIGKILL stops this process");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!(signal = name, grace = ?grace, "shutting down: no new work, finishing what is in flight");
    stop.cancel();
    tokio::time::sleep(grace).await;
    warn!("grace period over; leaving unacknowledged messages to the broker");
    abort.cancel();
    // Whatever still runs after this is not holding anything we could lose.
    tokio::time::sleep(Duration::from_secs(1)).await;
    warn!("exiting with work still running");
    std::process::exit(0);
}
