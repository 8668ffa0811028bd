//! Deciding recorded events in batches: the core of the decider loop that
//! the service runs (and that benchmarks time on their own).
//!
//! A batch of events waiting for their decisions (`status = received`) is
//! locked so that other deciders skip it; each event goes to [`crate::handle`];
//! every decision, job and new status of the batch is committed in one
//! transaction. If a handler hits an error that is not the database being
//! away, the batch is rolled back and its events are decided one per
//! transaction, so that one bad event is marked `failed` with the error and
//! the others go through.

use std::collections::HashSet;

use tracing::Instrument as _;

use crate::{Context, Decided, EventRow};

/// What one batch decided: per event, its topic and new status; and what
/// the committed decisions saw happen, to be counted.
#[derive(Debug, Clone, Default)]
pub struct BatchReport {
    pub decided: Vec<(String, &'static str)>,
    pub observations: Vec<crate::Observation>,
}

impl BatchReport {
    pub fn len(&self) -> usize {
        self.decided.len()
    }

    pub fn is_empty(&self) -> bool {
        self.decided.is_empty()
    }

    /// Only for decisions that were committed.
    fn add(&mut self, topic: &str, decided: &Decided) {
        self.decided.push((topic.to_owned(), decided.status().0));
        self.observations.extend_from_slice(&decided.observations);
    }
}

/// Decide one batch; how many events it held.
pub async fn decide_batch(
    pool: &store::PgPool,
    ctx: &Context,
    batch_size: u32,
) -> Result<BatchReport, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let claimed = store::events::claim_received(&mut *tx, i64::from(batch_size)).await?;
    if claimed.is_empty() {
        tx.commit().await?;
        return Ok(BatchReport::default());
    }
    if !claimed.unreadable.is_empty() {
        // Rare (nothing ingest accepts is unreadable): they alone make this
        // batch, and the events claimed beside them are claimed again by the next.
        let report = fail_unreadable(&mut tx, &claimed.unreadable).await?;
        tx.commit().await?;
        return Ok(report);
    }
    let events = claimed.events;
    let hints = hints(&mut tx, &events).await?;
    let mut decided = Vec::with_capacity(events.len());
    for event in &events {
        let row = EventRow {
            id: event.id,
            topic: &event.topic,
            body: event.body.as_ref(),
        };
        let span = tracing::info_span!("event", event_id = event.id, topic = %event.topic);
        match crate::handle_in_batch(&mut tx, ctx, &row, &hints)
            .instrument(span)
            .await
        {
            Ok(result) => decided.push((event.topic.as_str(), result)),
            Err(error) if is_transient(&error) => return Err(error),
            Err(error) => {
                tracing::warn!(%error, event_id = event.id, "a decision failed; deciding this batch one event at a time");
                tx.rollback().await?;
                return decide_one_by_one(pool, ctx, &events).await;
            }
        }
    }
    commit(&mut tx, &decided).await?;
    tx.commit().await?;
    let mut report = BatchReport::default();
    for (topic, d) in &decided {
        report.add(topic, d);
    }
    Ok(report)
}

/// Mark the events whose bodies cannot be read `failed`, with the reason.
async fn fail_unreadable(
    tx: &mut sqlx::PgConnection,
    unreadable: &[store::events::UnreadableEvent],
) -> Result<BatchReport, sqlx::Error> {
    let mut report = BatchReport::default();
    if unreadable.is_empty() {
        return Ok(report);
    }
    let outcomes: Vec<(i64, &str, &str)> = unreadable
        .iter()
        .map(|event| (event.id, "failed", event.reason.as_str()))
        .collect();
    store::events::set_outcomes(&mut *tx, &outcomes).await?;
    for event in unreadable {
        tracing::warn!(event_id = event.id, topic = %event.topic, reason = %event.reason, "an event cannot be decided");
        report.decided.push((event.topic.clone(), "failed"));
    }
    Ok(report)
}

/// One look-up for the whole batch: which Koji tasks it names are ours (most
/// task messages on the bus are other people's builds).
async fn hints(
    conn: &mut sqlx::PgConnection,
    events: &[store::events::PendingEvent],
) -> Result<crate::BatchHints, sqlx::Error> {
    let tasks: Vec<i64> = events
        .iter()
        .filter(|e| events::typed::short_topic(&e.topic) == "buildsys.task.state.change")
        .filter_map(|e| events::typed::koji_task_id(e.body.as_ref()?))
        .collect();
    if tasks.is_empty() {
        return Ok(crate::BatchHints::default());
    }
    let known = store::flows::known_tasks(&mut *conn, &tasks).await?;
    Ok(crate::BatchHints {
        known_tasks: Some(known.into_iter().collect()),
    })
}

/// Each event in its own transaction; one whose decisions the database
/// refuses is marked failed with the error.
async fn decide_one_by_one(
    pool: &store::PgPool,
    ctx: &Context,
    events: &[store::events::PendingEvent],
) -> Result<BatchReport, sqlx::Error> {
    let mut report = BatchReport::default();
    for event in events {
        let mut tx = pool.begin().await?;
        // Locked again: another decider may have taken it since the rollback.
        if !store::events::relock_received(&mut *tx, event.id).await? {
            tx.rollback().await?;
            continue;
        }
        let row = EventRow {
            id: event.id,
            topic: &event.topic,
            body: event.body.as_ref(),
        };
        match crate::handle(&mut tx, ctx, &row).await {
            Ok(result) => {
                let decided = [(event.topic.as_str(), result)];
                commit(&mut tx, &decided).await?;
                tx.commit().await?;
                report.add(&event.topic, &decided[0].1);
            }
            Err(error) if is_transient(&error) => return Err(error),
            Err(error) => {
                tx.rollback().await?;
                tracing::warn!(%error, event_id = event.id, topic = %event.topic, "deciding this event failed");
                let reason = format!("deciding failed: {error}");
                store::events::set_outcomes(pool, &[(event.id, "failed", reason.as_str())]).await?;
                report.decided.push((event.topic.clone(), "failed"));
            }
        }
    }
    Ok(report)
}

/// Record the decisions and the events' statuses in the transaction.
async fn commit(
    tx: &mut sqlx::PgConnection,
    decided: &[(&str, Decided)],
) -> Result<(), sqlx::Error> {
    let decisions: Vec<(i64, &store::flows::Decision)> = decided
        .iter()
        .flat_map(|(_, d)| {
            d.decisions
                .iter()
                .map(move |decision| (d.event_id, decision))
        })
        .collect();
    if !decisions.is_empty() {
        store::flows::insert_decisions(&mut *tx, &decisions).await?;
    }
    // An event woken by a fact in this batch waits for its next turn; the
    // status it had earlier in the batch must not overwrite that.
    let woken: HashSet<i64> = decided
        .iter()
        .flat_map(|(_, d)| d.woken.iter().copied())
        .collect();
    let statuses: Vec<(i64, &'static str, String)> = decided
        .iter()
        .filter(|(_, d)| !woken.contains(&d.event_id))
        .map(|(_, d)| {
            let (status, reason) = d.status();
            (d.event_id, status, reason)
        })
        .collect();
    let statuses: Vec<(i64, &str, &str)> = statuses
        .iter()
        .map(|(id, status, reason)| (*id, *status, reason.as_str()))
        .collect();
    store::events::set_outcomes(&mut *tx, &statuses).await?;
    // Wake the job runners once for the batch, when it commits.
    if decided.iter().any(|(_, d)| {
        d.decisions
            .iter()
            .any(|x| x.outcome != store::flows::Outcome::Skipped)
    }) {
        store::jobs::notify_runners(&mut *tx).await?;
    }
    Ok(())
}

/// Errors that say the database is away or busy, not that the event is bad:
/// the batch is tried again later, nothing is marked failed.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(e) => e.code().is_some_and(|code| {
            // connection exceptions, deadlocks and serialization failures, shutdowns
            code.starts_with("08") || code.starts_with("40") || code.starts_with("57")
        }),
        _ => false,
    }
}
