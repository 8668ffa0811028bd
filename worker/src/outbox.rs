//! The outbox publisher: messages the flows wrote to the outbox (the Fedora
//! CI messages of gating tests) go to the bus in the order they were written,
//! each marked published once the broker confirmed it.
//!
//! One publisher at a time holds the outbox (a PostgreSQL advisory lock for
//! the length of a batch), so several job runners never publish the same
//! message at once or out of order. While the broker is down, the messages
//! wait in PostgreSQL and the publisher tries again with a growing pause,
//! reconnecting each time; nothing is dropped. The publisher wakes on the
//! `fedora_ci_outbox` notification of every write, and looks anyway every
//! poll interval.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::bus::publisher::Publisher;
use crate::config::Bus;

/// How the publisher runs.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Messages per batch.
    pub batch: i64,
    pub poll_interval: Duration,
    /// The longest pause between attempts while the broker fails.
    pub retry_max: Duration,
}

/// What one pass over the outbox did.
enum Pass {
    /// Published this many (maybe zero: nothing waits).
    Published(usize),
    /// Another publisher holds the outbox.
    Busy,
}

#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error("broker: {0:#}")]
    Broker(anyhow::Error),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Publish until `stop`.
pub async fn run(pool: store::PgPool, bus: Bus, config: OutboxConfig, stop: CancellationToken) {
    let mut listener = listen(&pool).await;
    let mut publisher: Option<Publisher> = None;
    let mut delay = Duration::from_millis(250);
    info!("publishing the outbox");
    while !stop.is_cancelled() {
        if publisher.is_none() {
            match Publisher::connect(&bus).await {
                Ok(connected) => publisher = Some(connected.without_topic_prefix()),
                Err(error) => {
                    let error = format!("{error:#}");
                    warn!(%error, retry_in = ?delay, "cannot connect to publish the outbox");
                    note_failure(&pool, &error).await;
                    pause(&mut delay, config.retry_max, &stop).await;
                    continue;
                }
            }
        }
        let Some(connected) = &publisher else {
            continue;
        };
        match pass(&pool, connected, config.batch).await {
            Ok(Pass::Published(0) | Pass::Busy) => {
                delay = Duration::from_millis(250);
                wait(&mut listener, &pool, config.poll_interval, &stop).await;
            }
            Ok(Pass::Published(count)) => {
                delay = Duration::from_millis(250);
                debug!(count, "published from the outbox");
            }
            Err(PassError::Broker(error)) => {
                warn!(error = %format!("{error:#}"), retry_in = ?delay, "publishing the outbox failed; reconnecting");
                metrics::counter!("fedora_ci_outbox_failures_total").increment(1);
                if let Some(old) = publisher.take() {
                    old.close().await;
                }
                pause(&mut delay, config.retry_max, &stop).await;
            }
            Err(PassError::Database(error)) => {
                warn!(%error, retry_in = ?delay, "cannot read the outbox");
                pause(&mut delay, config.retry_max, &stop).await;
            }
        }
    }
    if let Some(publisher) = publisher {
        publisher.close().await;
    }
    info!("outbox publisher stopped");
}

/// Publish one batch under the outbox lock; marked published in the same
/// transaction once every message of it is confirmed.
async fn pass(pool: &store::PgPool, publisher: &Publisher, batch: i64) -> Result<Pass, PassError> {
    let mut tx = pool.begin().await?;
    if !store::outbox::try_lock_publisher(&mut *tx).await? {
        tx.rollback().await?;
        return Ok(Pass::Busy);
    }
    let pending = store::outbox::pending(&mut *tx, batch).await?;
    if pending.is_empty() {
        tx.commit().await?;
        return Ok(Pass::Published(0));
    }
    let envelopes: Vec<events::Envelope> = pending
        .iter()
        .map(|m| events::Envelope {
            id: events::MessageId(m.message_id.to_string()),
            topic: m.topic.clone(),
            headers: m.headers.as_object().cloned().unwrap_or_default(),
            body: m.body.as_object().cloned().unwrap_or_default(),
            queue: None,
            priority: None,
        })
        .collect();
    if let Err(error) = publisher.publish_all(&envelopes).await {
        tx.rollback().await?;
        // The first message stays first in line, with what went wrong.
        store::outbox::record_failure(pool, pending[0].id, &format!("{error:#}")).await?;
        return Err(PassError::Broker(error));
    }
    let ids: Vec<i64> = pending.iter().map(|m| m.id).collect();
    store::outbox::mark_published(&mut *tx, &ids).await?;
    tx.commit().await?;
    for message in &pending {
        let topic = message.topic.rsplit('.').next().unwrap_or("").to_owned();
        metrics::counter!("fedora_ci_messages_published_total", "state" => topic).increment(1);
        info!(message_id = %message.message_id, topic = %message.topic, "published");
    }
    Ok(Pass::Published(pending.len()))
}

/// Say on the oldest waiting message why it waits (operators see it on the
/// status page); nothing to do when none waits.
async fn note_failure(pool: &store::PgPool, error: &str) {
    if let Ok(pending) = store::outbox::pending(pool, 1).await
        && let Some(first) = pending.first()
        && let Err(db) = store::outbox::record_failure(pool, first.id, error).await
    {
        debug!(%db, "cannot record the publishing failure");
    }
}

async fn pause(delay: &mut Duration, max: Duration, stop: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(*delay) => {}
        () = stop.cancelled() => {}
    }
    *delay = (*delay * 2).min(max.max(Duration::from_millis(250)));
}

async fn listen(pool: &store::PgPool) -> Option<PgListener> {
    let mut listener = PgListener::connect_with(pool).await.ok()?;
    listener.listen("fedora_ci_outbox").await.ok()?;
    Some(listener)
}

/// Until a notification, the poll interval, or `stop`.
async fn wait(
    listener: &mut Option<PgListener>,
    pool: &store::PgPool,
    poll: Duration,
    stop: &CancellationToken,
) {
    let Some(active) = listener else {
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = stop.cancelled() => {}
        }
        *listener = listen(pool).await;
        return;
    };
    tokio::select! {
        received = active.recv() => if received.is_err() {
            *listener = None;
        },
        () = tokio::time::sleep(poll) => {}
        () = stop.cancelled() => {}
    }
}
