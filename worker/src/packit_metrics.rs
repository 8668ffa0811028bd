//! Packit Service's Fedora CI metrics, served beside ours so that the
//! dashboards and alerts that graph Packit's keep working after the cutover:
//! the names its Prometheus shows, the same meanings, the same buckets, and
//! no labels (Packit's have none).
//!
//! Packit defines them in `packit_service/worker/monitoring.py` with Python's
//! `prometheus_client`, which exposes a counter created as `x` as `x_total`
//! (and its creation time as the gauge `x_created`), a histogram `x` as
//! `x_bucket{le}`, `x_sum`, `x_count` (and `x_created`). Our exporter adds no
//! suffix, so the counters here carry `_total` in their names, and the
//! `_created` gauges are set once, to when this process started.
//!
//! Where each is counted, so that it counts once whatever is retried or how
//! many replicas run:
//! - the Koji and Testing Farm state changes are noted by the handlers as
//!   [`Observation`]s and counted by the decider after its transaction
//!   commits (a state already recorded is no change, so a redelivered or
//!   polled report observes nothing);
//! - a build queued: when its submit job has stored the task id;
//! - a test run queued: when the first attempt of its submit job has called
//!   Testing Farm, whatever the answer (as Packit counts it);
//! - the first initial status: when a flag job has set the first pending
//!   flag of a pull request's event or comment, which the job claims in the
//!   database (`events.initial_status_at`).
//!
//! Dry-runs send nothing and count nothing.

use handlers::Observation;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

/// A scratch build was submitted to Koji (`fedora_ci_koji_builds_queued`).
pub const KOJI_BUILDS_QUEUED: &str = "fedora_ci_koji_builds_queued_total";
/// A Koji task of ours reached `OPEN`.
pub const KOJI_BUILDS_STARTED: &str = "fedora_ci_koji_builds_started_total";
/// A Koji task of ours reached `CLOSED`, `CANCELED` or `FAILED`.
pub const KOJI_BUILDS_FINISHED: &str = "fedora_ci_koji_builds_finished_total";
/// Seconds from a build's submission to its end.
pub const KOJI_BUILD_FINISHED_TIME: &str = "fedora_ci_koji_build_finished_time";
/// A test run's first submission attempt.
pub const TEST_RUNS_QUEUED: &str = "fedora_ci_test_runs_queued_total";
/// Testing Farm reported a run of ours `running`.
pub const TEST_RUNS_STARTED: &str = "fedora_ci_test_runs_started_total";
/// A run of ours ended, in any final state.
pub const TEST_RUNS_FINISHED: &str = "fedora_ci_test_runs_finished_total";
/// Seconds from a run's submission to its end.
pub const TEST_RUN_FINISHED_TIME: &str = "fedora_ci_test_run_finished_time";
/// Seconds from a pull request's event (its message) to its first pending flag.
pub const FIRST_INITIAL_STATUS_TIME: &str = "fedora_ci_first_initial_status_time";

/// Packit's buckets for how long builds and runs take: 30 min, 1, 3, 6,
/// 12 and 24 h (and +Inf, which the exporter adds).
const TOOK_BUCKETS: [f64; 6] = [1800.0, 3600.0, 10800.0, 21600.0, 43200.0, 86400.0];
/// Packit's buckets for the first initial status, in seconds.
const INITIAL_STATUS_BUCKETS: [f64; 7] = [5.0, 15.0, 20.0, 25.0, 30.0, 40.0, 60.0];

const COUNTERS: [(&str, &str); 6] = [
    (
        KOJI_BUILDS_QUEUED,
        "Fedora CI Koji scratch builds submitted",
    ),
    (
        KOJI_BUILDS_STARTED,
        "Fedora CI Koji scratch builds that started running",
    ),
    (
        KOJI_BUILDS_FINISHED,
        "Fedora CI Koji scratch builds that ended",
    ),
    (
        TEST_RUNS_QUEUED,
        "Fedora CI test runs whose submission was first tried",
    ),
    (
        TEST_RUNS_STARTED,
        "Fedora CI test runs that Testing Farm reported running",
    ),
    (TEST_RUNS_FINISHED, "Fedora CI test runs that ended"),
];

const HISTOGRAMS: [(&str, &str); 3] = [
    (
        KOJI_BUILD_FINISHED_TIME,
        "Seconds from submitting a Fedora CI Koji scratch build to its end",
    ),
    (
        TEST_RUN_FINISHED_TIME,
        "Seconds from submitting a Fedora CI test run to its end",
    ),
    (
        FIRST_INITIAL_STATUS_TIME,
        "Seconds from a pull request's event to its first pending Fedora CI flag",
    ),
];

/// Packit's buckets for its histograms.
pub fn with_buckets(builder: PrometheusBuilder) -> Result<PrometheusBuilder, BuildError> {
    builder
        .set_buckets_for_metric(
            Matcher::Full(KOJI_BUILD_FINISHED_TIME.into()),
            &TOOK_BUCKETS,
        )?
        .set_buckets_for_metric(Matcher::Full(TEST_RUN_FINISHED_TIME.into()), &TOOK_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(FIRST_INITIAL_STATUS_TIME.into()),
            &INITIAL_STATUS_BUCKETS,
        )
}

/// Every one of them from the start, at zero, as Packit's client shows
/// them, with their `_created` time; after the recorder is installed.
pub fn register() {
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64());
    for (name, help) in COUNTERS {
        metrics::describe_counter!(name, help);
        metrics::counter!(name).increment(0);
        let base = name.trim_end_matches("_total");
        metrics::gauge!(format!("{base}_created")).set(created);
    }
    for (name, help) in HISTOGRAMS {
        metrics::describe_histogram!(name, help);
        // A histogram is shown, with empty buckets, once it exists.
        let _ = metrics::histogram!(name);
        metrics::gauge!(format!("{name}_created")).set(created);
    }
}

/// Count a state change the decider committed.
pub fn observe(observation: &Observation) {
    match observation {
        Observation::KojiBuildStarted => metrics::counter!(KOJI_BUILDS_STARTED).increment(1),
        Observation::KojiBuildFinished { took } => {
            metrics::counter!(KOJI_BUILDS_FINISHED).increment(1);
            if let Some(took) = took {
                metrics::histogram!(KOJI_BUILD_FINISHED_TIME).record(seconds(*took));
            }
        }
        Observation::TestRunStarted => metrics::counter!(TEST_RUNS_STARTED).increment(1),
        Observation::TestRunFinished { took } => {
            metrics::counter!(TEST_RUNS_FINISHED).increment(1);
            if let Some(took) = took {
                metrics::histogram!(TEST_RUN_FINISHED_TIME).record(seconds(*took));
            }
        }
    }
}

pub fn koji_build_queued() {
    metrics::counter!(KOJI_BUILDS_QUEUED).increment(1);
}

pub fn test_run_queued() {
    metrics::counter!(TEST_RUNS_QUEUED).increment(1);
}

pub fn first_initial_status(seconds: f64) {
    metrics::histogram!(FIRST_INITIAL_STATUS_TIME).record(seconds.max(0.0));
}

fn seconds(took: chrono::Duration) -> f64 {
    took.num_milliseconds() as f64 / 1000.0
}
