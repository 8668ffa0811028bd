//! Fedora CI's decisions, as pure functions: whether an event leads to work, and if not, the
//! reason a packager will read; and the exact names, flags and requests the work produces.
//!
//! Nothing here does I/O. Facts that need a look-up (does the project have an `eln` branch,
//! is the user a packager) come in as arguments; a rule that lacks one says which
//! ([`rules::Check::Unknown`]), and the handler fetches it and asks again. That keeps every
//! decision testable from a table and repeatable from what was recorded.
//!
//! - [`policy`]: the operator's `[fedora_ci]` configuration, resolved: enabled projects and
//!   tests, ELN packages, and the tmt repository of each test.
//! - [`project`]: dist-git project URLs from messages, normalised, including forks, and the
//!   git and Koji source URLs built from them.
//! - [`rules`]: the eligibility rules and the [`rules::Skip`] reasons they give.
//! - [`command`]: the `/packit-ci` comment commands, and the help, usage and refusal replies.
//! - [`naming`]: Koji targets, Testing Farm composes, tmt distros, flag names and uids.
//! - [`payload`]: the Testing Farm request of each test.
//! - [`flags`]: the flag status and comment for each Koji and Testing Farm state.
//! - [`gating`]: which Bodhi updates are tested, their Testing Farm requests, and the
//!   Fedora CI messages that report the tests.
//!
//! Facts about the systems we talk to come from REFERENCE.md; where it is silent they were
//! checked against Packit Service, whose Fedora CI this service takes over, and the item that
//! relies on one names the Packit Service file it comes from.

pub mod command;
pub mod flags;
pub mod gating;
pub mod naming;
pub mod payload;
pub mod policy;
pub mod project;
pub mod rules;

pub use rules::{Check, Fact, Skip, Work};
