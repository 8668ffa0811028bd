//! What a pull request flag says for each state of the work behind it (REFERENCE.md, "State
//! mappings to dist-git flags"). Pagure has no "running": work in progress is `pending`.

use events::states::{FlagStatus, KojiTaskState, TestingFarmResult, TestingFarmState};

use crate::naming::truncate_comment;

/// The flag of a scratch build in a Koji task state.
/// What a scratch build's flag says before Koji has the build: when it is
/// decided, and again when an operator retries its given-up submission.
pub const BUILD_BEING_SUBMITTED: &str = "RPM build is being submitted";

pub fn koji_flag(state: KojiTaskState) -> (FlagStatus, &'static str) {
    match state {
        KojiTaskState::Free | KojiTaskState::Assigned => {
            (FlagStatus::Pending, "RPM build has been submitted")
        }
        KojiTaskState::Open => (FlagStatus::Pending, "RPM build is in progress"),
        KojiTaskState::Closed => (FlagStatus::Success, "RPM build succeeded"),
        KojiTaskState::Failed => (FlagStatus::Failure, "RPM build failed"),
        KojiTaskState::Canceled => (FlagStatus::Canceled, "RPM build was canceled"),
    }
}

/// The flag of work whose pipeline ended (`why`: "superseded by c0ffee0", "the pull request was
/// closed"): `canceled`, final, saying why. Its build or tests were canceled or never sent, so
/// the flag must not go on claiming that they run, and no later result of theirs changes it.
pub fn ended_flag(is_build: bool, why: &str) -> (FlagStatus, String) {
    let what = if is_build {
        "RPM build was canceled"
    } else {
        "Tests were canceled"
    };
    (
        FlagStatus::Canceled,
        truncate_comment(&format!("{what}: {why}")),
    )
}

/// The flag of a test in a Testing Farm request state.
///
/// The comment is Testing Farm's `result.summary` when it has one (cut to Pagure's 140
/// characters), else a short text of ours. A skipped run counts as a success: nothing failed,
/// and the comment says it was skipped. A run that finished without a usable result is an
/// error, not a failure, because the package was never judged.
pub fn testing_farm_flag(
    state: TestingFarmState,
    result: Option<TestingFarmResult>,
    summary: Option<&str>,
) -> (FlagStatus, String) {
    let (status, default_text) = match state {
        TestingFarmState::New => (FlagStatus::Pending, "Tests have been submitted"),
        TestingFarmState::Queued => (FlagStatus::Pending, "Tests are queued"),
        TestingFarmState::Running => (FlagStatus::Pending, "Tests are running"),
        // Cancelling is not done until Testing Farm says `canceled`; the poller gets there.
        TestingFarmState::CancelRequested => (FlagStatus::Pending, "Tests are being canceled"),
        TestingFarmState::Canceled => (FlagStatus::Canceled, "Tests were canceled"),
        TestingFarmState::Error => (FlagStatus::Error, "Testing Farm could not run the tests"),
        TestingFarmState::Complete => match result {
            Some(TestingFarmResult::Passed) => (FlagStatus::Success, "Tests passed"),
            Some(TestingFarmResult::Failed) => (FlagStatus::Failure, "Tests failed"),
            Some(TestingFarmResult::Skipped) => (FlagStatus::Success, "Tests were skipped"),
            Some(TestingFarmResult::Error) => (FlagStatus::Error, "Tests ended in an error"),
            Some(TestingFarmResult::Unknown) | None => {
                (FlagStatus::Error, "Tests ended without a result")
            }
        },
    };
    let comment = match summary.map(str::trim) {
        Some(summary) if !summary.is_empty() => truncate_comment(summary),
        _ => default_text.to_owned(),
    };
    (status, comment)
}
