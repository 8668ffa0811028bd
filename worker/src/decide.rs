//! The decider loop: recorded events in, decisions and jobs committed, in
//! batches ([`handlers::decider`]).
//!
//! It wakes on the `fedora_ci_events` notification that every insert into
//! the inbox sends, and looks anyway every `decider.poll_interval_ms`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use handlers::Context;
use handlers::decider::BatchReport;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// What a decider does, for the service and for benchmarks.
#[derive(Debug, Clone)]
pub struct DeciderConfig {
    pub batch_size: u32,
    pub poll_interval: Duration,
}

/// Decide until `stop`, finishing the batch in hand.
pub async fn run(
    pool: store::PgPool,
    ctx: Arc<Context>,
    config: DeciderConfig,
    stop: CancellationToken,
) {
    let mut listener = listen(&pool).await;
    let mut delay = Duration::from_millis(100);
    info!(batch = config.batch_size, "deciding recorded events");
    while !stop.is_cancelled() {
        let started = Instant::now();
        match handlers::decider::decide_batch(&pool, &ctx, config.batch_size).await {
            Ok(report) if report.is_empty() => {
                delay = Duration::from_millis(100);
                wait(&mut listener, &pool, config.poll_interval, &stop).await;
            }
            Ok(report) => {
                record_metrics(&report, started.elapsed());
                delay = Duration::from_millis(100);
            }
            Err(error) => {
                warn!(%error, retry_in = ?delay, "cannot decide events; retrying");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => break,
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
    info!("decider stopped");
}

async fn listen(pool: &store::PgPool) -> Option<PgListener> {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(error) => {
            warn!(%error, "cannot listen for new events; polling instead");
            return None;
        }
    };
    match listener.listen("fedora_ci_events").await {
        Ok(()) => Some(listener),
        Err(error) => {
            warn!(%error, "cannot listen for new events; polling instead");
            None
        }
    }
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
        received = active.recv() => if let Err(error) = received {
            debug!(%error, "event notifications interrupted; listening again");
            *listener = None;
        },
        () = tokio::time::sleep(poll) => {}
        () = stop.cancelled() => {}
    }
}

fn record_metrics(report: &BatchReport, elapsed: Duration) {
    metrics::histogram!("fedora_ci_decide_batch_seconds").record(elapsed.as_secs_f64());
    // Committed: each state change is counted once.
    for observation in &report.observations {
        crate::packit_metrics::observe(observation);
    }
    for (topic, status) in &report.decided {
        let status = *status;
        let topic = metric_topic(topic);
        metrics::counter!("fedora_ci_events_decided_total", "outcome" => status, "topic" => topic)
            .increment(1);
        match status {
            "processed" => metrics::counter!("events_processed_total").increment(1),
            "skipped" => metrics::counter!("events_not_handled_total").increment(1),
            _ => {}
        }
    }
}

/// The topics that have a series of their own in `fedora_ci_events_decided_total`:
/// the ones a handler reads. A routing key is chosen by whoever publishes,
/// and each distinct label value is a series Prometheus keeps, so any other
/// topic counts as `other`.
const METRIC_TOPICS: &[&str] = &[
    "pagure.pull-request.new",
    "pagure.pull-request.updated",
    "pagure.pull-request.rebased",
    "pagure.pull-request.reopened",
    "pagure.pull-request.closed",
    "pagure.pull-request.comment.added",
    "pagure.pull-request.flag",
    "pagure.git.receive",
    "git.receive",
    "buildsys.task.state.change",
    "buildsys.build.state.change",
    "buildsys.tag",
    "bodhi.update.status.testing.koji-build-group.build.complete",
    "testing-farm.notification",
    "testing-farm.request",
    "testing-farm.submitted",
    "fact",
    "job.dead",
    "operator.cancel-pipeline",
    "timeout",
];

fn metric_topic(topic: &str) -> &'static str {
    let short = events::typed::short_topic(topic);
    // pagure.pull-request.flag.added, .updated, ...: one series.
    let short = if short.starts_with("pagure.pull-request.flag.") {
        "pagure.pull-request.flag"
    } else {
        short
    };
    METRIC_TOPICS
        .iter()
        .find(|known| **known == short)
        .copied()
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    #[test]
    fn metric_topics_are_a_closed_set() {
        use super::metric_topic;
        assert_eq!(
            metric_topic("org.fedoraproject.prod.pagure.pull-request.new"),
            "pagure.pull-request.new"
        );
        assert_eq!(
            metric_topic("org.fedoraproject.stg.pagure.pull-request.flag.added"),
            "pagure.pull-request.flag"
        );
        assert_eq!(
            metric_topic("fedora-ci-worker.testing-farm.request"),
            "testing-farm.request"
        );
        for made_up in [
            "org.fedoraproject.prod.pagure.pull-request.x7f3a9",
            "org.fedoraproject.prod.pagure.pull-request.new.extra",
            "anything",
            "",
        ] {
            assert_eq!(metric_topic(made_up), "other", "{made_up}");
        }
    }
}
