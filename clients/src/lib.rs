//! The external services Fedora CI talks to, each behind a trait with one
//! real implementation configured by URL: Koji ([`koji`]), Testing Farm
//! ([`testing_farm`]), dist-git ([`distgit`], Pagure's API 0), FASJSON
//! ([`fas`]) and the ELN package lists ([`eln`]). The job runner holds them
//! as `Arc<dyn ..>`; tests and local runs point them at the stand-ins of
//! [`standins`] (feature `standins`).
//!
//! Every call has a timeout, follows no redirect and reads at most a limited
//! body, and every failure is classified ([`ClientError`]):
//! transient (try again later, honouring `Retry-After`), permanent (the
//! request itself is wrong), or an authentication problem. Without a token
//! the Testing Farm and dist-git clients run in dry-run: they return the
//! exact request they would have sent instead of sending it.

pub mod distgit;
pub mod eln;
pub mod error;
pub mod fas;
pub mod http;
pub mod koji;
pub mod process;
pub mod testing_farm;
pub mod xmlrpc;

#[cfg(feature = "standins")]
pub mod standins;

pub use error::{ClientError, DryRunRequest};
