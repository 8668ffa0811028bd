//! Periodic work: read Testing Farm requests and Koji tasks we have not
//! heard of for a while (webhooks and bus messages get lost), end builds and
//! test runs past their time limit with an error, fetch the ELN package
//! lists when they are due, and delete old finished jobs. Every runner
//! process does it; the keys of what it creates make runners that do it at
//! the same time harmless to each other.

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
    /// Where the ELN package lists are fetched from; empty: nowhere.
    pub eln_lists: Vec<String>,
    /// How often the ELN package lists are fetched again.
    pub eln_refresh: Duration,
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
    if schedule_eln_fetch(pool, config, chrono::Utc::now()).await? {
        store::jobs::notify_runners(pool).await?;
        info!("fetching the ELN package lists");
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

/// How often a fetch of the ELN package lists is tried while the service
/// has no list from the configured URLs (a first start, a changed URL):
/// hourly, rather than once per refresh period.
const ELN_MISSING_RETRY: Duration = Duration::from_secs(3600);

/// Ask for the ELN package lists to be fetched when they are due: when no
/// list from the configured URLs was ever fetched (so soon after the first
/// start), or the last good one is `eln_refresh` old. The job's key names
/// why and the period it belongs to (`fetch-eln-packages:refresh:<period>:<n>`,
/// or `first:` with an hour while there is no list), so replicas doing this
/// at once ask once, and a fetch that failed is tried again in the next
/// period, not on every pass. Whether a job was created.
async fn schedule_eln_fetch(
    pool: &store::PgPool,
    config: &PeriodicConfig,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, sqlx::Error> {
    if config.eln_lists.is_empty() {
        return Ok(false);
    }
    let configured: Vec<String> = config
        .eln_lists
        .iter()
        .map(|url| clients::eln::display_url(url))
        .collect();
    let status = store::eln::status(pool).await?;
    let current = status.list.filter(|list| {
        list.sources
            .iter()
            .map(|source| &source.url)
            .eq(configured.iter())
    });
    let refresh = config.eln_refresh.max(Duration::from_secs(1));
    let (kind, period) = match current {
        Some(list) => {
            let age = (now - list.fetched_at).to_std().unwrap_or_default();
            if age < refresh {
                return Ok(false);
            }
            ("refresh", refresh)
        }
        None => ("first", refresh.min(ELN_MISSING_RETRY)),
    };
    let period = period.as_secs();
    let bucket = now
        .timestamp()
        .div_euclid(i64::try_from(period).unwrap_or(i64::MAX));
    let created = store::jobs::enqueue(
        pool,
        &store::jobs::NewJob {
            kind: store::jobs::JobKind::FetchElnPackages,
            dedup_key: format!("fetch-eln-packages:{kind}:{period}:{bucket}"),
            payload: json!({ "urls": config.eln_lists }),
            event_id: None,
            pipeline_id: None,
        },
    )
    .await?;
    Ok(created.is_some())
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
