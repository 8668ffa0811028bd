use checkers::flags::{ended_flag, koji_flag, testing_farm_flag};
use events::states::{FlagStatus, KojiTaskState, TestingFarmResult, TestingFarmState};

#[test]
fn koji_states_map_to_flags() {
    let table = [
        (
            KojiTaskState::Free,
            FlagStatus::Pending,
            "RPM build has been submitted",
        ),
        (
            KojiTaskState::Assigned,
            FlagStatus::Pending,
            "RPM build has been submitted",
        ),
        (
            KojiTaskState::Open,
            FlagStatus::Pending,
            "RPM build is in progress",
        ),
        (
            KojiTaskState::Closed,
            FlagStatus::Success,
            "RPM build succeeded",
        ),
        (
            KojiTaskState::Failed,
            FlagStatus::Failure,
            "RPM build failed",
        ),
        (
            KojiTaskState::Canceled,
            FlagStatus::Canceled,
            "RPM build was canceled",
        ),
    ];
    assert_eq!(table.len(), KojiTaskState::ALL.len());
    for (state, status, text) in table {
        assert_eq!(koji_flag(state), (status, text), "{state}");
    }
}

#[test]
fn testing_farm_states_map_to_flags() {
    use TestingFarmResult as R;
    use TestingFarmState as S;
    let table = [
        (
            S::New,
            None,
            FlagStatus::Pending,
            "Tests have been submitted",
        ),
        (S::Queued, None, FlagStatus::Pending, "Tests are queued"),
        (S::Running, None, FlagStatus::Pending, "Tests are running"),
        (
            S::CancelRequested,
            None,
            FlagStatus::Pending,
            "Tests are being canceled",
        ),
        (
            S::Complete,
            Some(R::Passed),
            FlagStatus::Success,
            "Tests passed",
        ),
        (
            S::Complete,
            Some(R::Failed),
            FlagStatus::Failure,
            "Tests failed",
        ),
        (
            S::Complete,
            Some(R::Skipped),
            FlagStatus::Success,
            "Tests were skipped",
        ),
        (
            S::Complete,
            Some(R::Error),
            FlagStatus::Error,
            "Tests ended in an error",
        ),
        (
            S::Complete,
            Some(R::Unknown),
            FlagStatus::Error,
            "Tests ended without a result",
        ),
        (
            S::Complete,
            None,
            FlagStatus::Error,
            "Tests ended without a result",
        ),
        (
            S::Canceled,
            None,
            FlagStatus::Canceled,
            "Tests were canceled",
        ),
        (
            S::Error,
            None,
            FlagStatus::Error,
            "Testing Farm could not run the tests",
        ),
        (
            S::Error,
            Some(R::Error),
            FlagStatus::Error,
            "Testing Farm could not run the tests",
        ),
    ];
    for (state, result, status, text) in table {
        assert_eq!(
            testing_farm_flag(state, result, None),
            (status, text.to_owned()),
            "{state} {result:?}"
        );
        // An empty summary is no summary.
        assert_eq!(
            testing_farm_flag(state, result, Some("  ")),
            (status, text.to_owned()),
            "{state} {result:?} with a blank summary"
        );
    }
}

#[test]
fn the_summary_is_the_comment_when_there_is_one() {
    let (status, comment) = testing_farm_flag(
        TestingFarmState::Complete,
        Some(TestingFarmResult::Failed),
        Some("2 tests passed, 1 test failed"),
    );
    assert_eq!(
        (status, comment.as_str()),
        (FlagStatus::Failure, "2 tests passed, 1 test failed")
    );

    let (status, comment) = testing_farm_flag(
        TestingFarmState::Error,
        None,
        Some("Guest provisioning failed\nafter 3 attempts"),
    );
    assert_eq!(
        (status, comment.as_str()),
        (
            FlagStatus::Error,
            "Guest provisioning failed after 3 attempts"
        )
    );

    let long = "a summary that goes on ".repeat(10);
    let (_, comment) = testing_farm_flag(
        TestingFarmState::Complete,
        Some(TestingFarmResult::Passed),
        Some(&long),
    );
    assert_eq!(comment.chars().count(), 140);
    assert!(comment.ends_with('…'));
}

#[test]
fn ended_work_is_canceled_with_the_reason() {
    let table = [
        (
            true,
            "superseded by c0ffee0",
            "RPM build was canceled: superseded by c0ffee0",
        ),
        (
            false,
            "superseded by c0ffee0",
            "Tests were canceled: superseded by c0ffee0",
        ),
        (
            false,
            "the pull request was closed",
            "Tests were canceled: the pull request was closed",
        ),
    ];
    for (is_build, why, text) in table {
        assert_eq!(
            ended_flag(is_build, why),
            (FlagStatus::Canceled, text.to_owned()),
            "{why}"
        );
    }
}
