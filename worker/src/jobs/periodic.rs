//! Periodic work: read Testing Farm requests and Koji tasks we have not
//! heard of for a while (webhooks and bus messages get lost), end builds and
//! test runs past their time limit with an error, and delete old finished
//! jobs. Every runner process does it; the keys of what it creates make
//! runners that do it at the same time harmless to each other.

use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

#[derive(Debug, Clone)]
pub struct PeriodicConfig {
    /// How often the periodic work runs.
    pub interval: Duration,
    /// Unfinished Testing Farm requests not updated for this long are read.
    pub testing_farm_quiet: Duration,
    /// Unfinished Koji tasks not heard of for this long are polled.
    pub koji_quiet: Duration,
    /// Test runs with no result this long after they were decided end as errors.
    pub testing_farm_timeout: Duration,
    /// Scratch builds with no result this long after they were decided end as errors.
    pub koji_timeout: Duration,
    /// Finished jobs and looked-up facts older than this are deleted.
    pub retention: Duration,
}

pub async fn run(pool: store::PgPool, config: PeriodicConfig, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop.cancelled() => return,
        }
        if let Err(error) = once(&pool, &config).await {
            warn!(%error, "periodic work failed; trying again next time");
        }
    }
}

/// One round of the periodic work.
pub async fn once(pool: &store::PgPool, config: &PeriodicConfig) -> Result<(), sqlx::Error> {
    let secs = config.interval.as_secs().max(1);
    let bucket = i64::try_from(chrono::Utc::now().timestamp().unsigned_abs() / secs).unwrap_or(0);
    let reads =
        store::periodic::schedule_testing_farm_polls(pool, config.testing_farm_quiet, bucket)
            .await?;
    let polls = store::periodic::schedule_koji_polls(pool, config.koji_quiet, bucket).await?;
    if reads + polls > 0 {
        store::jobs::notify_runners(pool).await?;
        debug!(reads, polls, "scheduled reads of quiet requests and tasks");
    }
    for id in store::periodic::overdue_test_runs(pool, config.testing_farm_timeout).await? {
        timeout(pool, "test-run", id, config.testing_farm_timeout).await?;
    }
    for id in store::periodic::overdue_builds(pool, config.koji_timeout).await? {
        timeout(pool, "koji-build", id, config.koji_timeout).await?;
    }
    let deleted = store::periodic::clean_up(pool, config.retention).await?;
    if deleted > 0 {
        info!(deleted, "deleted old finished jobs and facts");
    }
    Ok(())
}

/// Tell the flows that a build or run is overdue (once: the event's id is
/// its key).
async fn timeout(
    pool: &store::PgPool,
    subject: &str,
    id: i64,
    limit: Duration,
) -> Result<(), sqlx::Error> {
    let new = store::events::insert_internal(
        pool,
        &format!("timeout:{subject}:{id}"),
        events::typed::TOPIC_TIMEOUT,
        &json!({
            "subject": subject,
            "id": id,
            "after_seconds": limit.as_secs(),
        }),
        store::events::Source::Internal,
    )
    .await?;
    if new {
        warn!(subject, id, "no result in time; ending it as an error");
    }
    Ok(())
}
