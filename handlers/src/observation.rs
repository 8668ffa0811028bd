//! What the decisions saw happen to builds and test runs, for the metrics
//! Packit Service's dashboards graph (`fedora_ci_koji_builds_started`, ...).
//!
//! A handler notes an observation where it applies a state change
//! ([`crate::common::Decisions::observe`]); the decider hands the
//! observations of the events it committed to its caller
//! ([`crate::decider::BatchReport::observations`]), which counts them. So a
//! transaction that is rolled back and tried again, or an event decided
//! again, counts nothing twice: a state already recorded is no change, and
//! no change is observed.

use chrono::{DateTime, Utc};
use events::states::{KojiTaskState, TestingFarmState};
use events::typed::KojiTask;

/// A state change of one of our builds or test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// A Koji task of ours reached `OPEN`.
    KojiBuildStarted,
    /// A Koji task of ours reached `CLOSED`, `CANCELED` or `FAILED`; `took`
    /// is from its submission to then, when both are known.
    KojiBuildFinished { took: Option<chrono::Duration> },
    /// Testing Farm reported a run of ours `running`.
    TestRunStarted,
    /// A run of ours ended (`complete`, `error` or `canceled`, as Testing
    /// Farm reported it or as we ended it); `took` is from its submission.
    TestRunFinished { took: Option<chrono::Duration> },
}

impl Observation {
    /// A Koji task of ours moved to the state `task` reports; a finished
    /// one finished when Koji says (now, if it does not say).
    pub(crate) fn koji_task(task: &KojiTask, submitted: Option<DateTime<Utc>>) -> Option<Self> {
        match task.new {
            KojiTaskState::Open => Some(Observation::KojiBuildStarted),
            state if state.is_final() => Some(Observation::KojiBuildFinished {
                took: took(submitted, crate::common::epoch(task.completed)),
            }),
            _ => None,
        }
    }

    /// A test run moved to `state`, now.
    pub(crate) fn test_run(
        state: TestingFarmState,
        submitted: Option<DateTime<Utc>>,
    ) -> Option<Self> {
        match state {
            TestingFarmState::Running => Some(Observation::TestRunStarted),
            state if state.is_final() => Some(Observation::TestRunFinished {
                took: took(submitted, None),
            }),
            _ => None,
        }
    }
}

fn took(
    submitted: Option<DateTime<Utc>>,
    finished: Option<DateTime<Utc>>,
) -> Option<chrono::Duration> {
    let submitted = submitted?;
    Some((finished.unwrap_or_else(Utc::now) - submitted).max(chrono::Duration::zero()))
}
