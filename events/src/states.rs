//! The states external services report, as Koji and Testing Farm name them.

use std::fmt;

/// A Koji task's state (`TASK_STATES` in Koji): the number on the hub, the
/// name in `buildsys.task.state.change` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KojiTaskState {
    Free,
    Open,
    Closed,
    Canceled,
    Assigned,
    Failed,
}

impl KojiTaskState {
    pub const ALL: [KojiTaskState; 6] = [
        KojiTaskState::Free,
        KojiTaskState::Open,
        KojiTaskState::Closed,
        KojiTaskState::Canceled,
        KojiTaskState::Assigned,
        KojiTaskState::Failed,
    ];

    /// The hub's number for the state.
    pub fn number(self) -> i64 {
        match self {
            KojiTaskState::Free => 0,
            KojiTaskState::Open => 1,
            KojiTaskState::Closed => 2,
            KojiTaskState::Canceled => 3,
            KojiTaskState::Assigned => 4,
            KojiTaskState::Failed => 5,
        }
    }

    pub fn from_number(n: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.number() == n)
    }

    /// The name Koji uses (`FREE`, `OPEN`, ...).
    pub fn name(self) -> &'static str {
        match self {
            KojiTaskState::Free => "FREE",
            KojiTaskState::Open => "OPEN",
            KojiTaskState::Closed => "CLOSED",
            KojiTaskState::Canceled => "CANCELED",
            KojiTaskState::Assigned => "ASSIGNED",
            KojiTaskState::Failed => "FAILED",
        }
    }

    /// From a name in any case, or a number given as text.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
            .or_else(|| name.parse().ok().and_then(Self::from_number))
    }

    /// CLOSED, CANCELED and FAILED: the task will not change again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            KojiTaskState::Closed | KojiTaskState::Canceled | KojiTaskState::Failed
        )
    }

    /// Order of progress: a message carrying an earlier step than the one
    /// recorded is late and must not move the task back.
    pub fn progress(self) -> u8 {
        match self {
            KojiTaskState::Free => 0,
            KojiTaskState::Assigned => 1,
            KojiTaskState::Open => 2,
            KojiTaskState::Closed | KojiTaskState::Canceled | KojiTaskState::Failed => 3,
        }
    }
}

impl fmt::Display for KojiTaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Koji build's state (`BUILD_STATES` in Koji).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KojiBuildState {
    Building,
    Complete,
    Deleted,
    Failed,
    Canceled,
}

impl KojiBuildState {
    pub fn from_number(n: i64) -> Option<Self> {
        Some(match n {
            0 => KojiBuildState::Building,
            1 => KojiBuildState::Complete,
            2 => KojiBuildState::Deleted,
            3 => KojiBuildState::Failed,
            4 => KojiBuildState::Canceled,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            KojiBuildState::Building => "BUILDING",
            KojiBuildState::Complete => "COMPLETE",
            KojiBuildState::Deleted => "DELETED",
            KojiBuildState::Failed => "FAILED",
            KojiBuildState::Canceled => "CANCELED",
        }
    }
}

impl fmt::Display for KojiBuildState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Testing Farm request's state, as its API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TestingFarmState {
    New,
    Queued,
    Running,
    Complete,
    Error,
    Canceled,
    CancelRequested,
}

impl TestingFarmState {
    pub const ALL: [TestingFarmState; 7] = [
        TestingFarmState::New,
        TestingFarmState::Queued,
        TestingFarmState::Running,
        TestingFarmState::Complete,
        TestingFarmState::Error,
        TestingFarmState::Canceled,
        TestingFarmState::CancelRequested,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TestingFarmState::New => "new",
            TestingFarmState::Queued => "queued",
            TestingFarmState::Running => "running",
            TestingFarmState::Complete => "complete",
            TestingFarmState::Error => "error",
            TestingFarmState::Canceled => "canceled",
            TestingFarmState::CancelRequested => "cancel-requested",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// complete, error and canceled: the request will not change again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TestingFarmState::Complete | TestingFarmState::Error | TestingFarmState::Canceled
        )
    }

    /// Order of progress, for refusing late reports.
    pub fn progress(self) -> u8 {
        match self {
            TestingFarmState::New => 0,
            TestingFarmState::Queued => 1,
            TestingFarmState::Running => 2,
            TestingFarmState::CancelRequested => 3,
            TestingFarmState::Complete | TestingFarmState::Error | TestingFarmState::Canceled => 4,
        }
    }
}

impl fmt::Display for TestingFarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The overall result of a finished Testing Farm request (`result.overall`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TestingFarmResult {
    Passed,
    Failed,
    Skipped,
    Unknown,
    Error,
}

impl TestingFarmResult {
    pub const ALL: [TestingFarmResult; 5] = [
        TestingFarmResult::Passed,
        TestingFarmResult::Failed,
        TestingFarmResult::Skipped,
        TestingFarmResult::Unknown,
        TestingFarmResult::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TestingFarmResult::Passed => "passed",
            TestingFarmResult::Failed => "failed",
            TestingFarmResult::Skipped => "skipped",
            TestingFarmResult::Unknown => "unknown",
            TestingFarmResult::Error => "error",
        }
    }

    /// Unrecognised values read as `Unknown`, which is what they are to us.
    pub fn parse(text: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .unwrap_or(TestingFarmResult::Unknown)
    }
}

impl fmt::Display for TestingFarmResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A dist-git flag's status (Pagure has no "running": it shows as pending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagStatus {
    Pending,
    Success,
    Failure,
    Error,
    Canceled,
}

impl FlagStatus {
    pub const ALL: [FlagStatus; 5] = [
        FlagStatus::Pending,
        FlagStatus::Success,
        FlagStatus::Failure,
        FlagStatus::Error,
        FlagStatus::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FlagStatus::Pending => "pending",
            FlagStatus::Success => "success",
            FlagStatus::Failure => "failure",
            FlagStatus::Error => "error",
            FlagStatus::Canceled => "canceled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for FlagStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
