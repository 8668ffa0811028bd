//! How calls to external services fail, and what a dry run records.

use std::time::Duration;

use serde::Serialize;

/// Why a call to an external service failed. The job runner retries
/// `Transient` errors with backoff (never sooner than `retry_after`), and
/// gives up at once on the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The service is unreachable, slow, overloaded (429) or failing (5xx).
    #[error("{service}: {message}")]
    Transient {
        service: &'static str,
        message: String,
        /// What the service asked for in `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// The request is wrong (400, 404, 422, ...): sending it again cannot help.
    #[error("{service}: {message}")]
    Permanent {
        service: &'static str,
        message: String,
    },
    /// Our credentials were refused (401, 403) or are missing.
    #[error("{service}: authentication failed: {message}")]
    Auth {
        service: &'static str,
        message: String,
    },
}

impl ClientError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ClientError::Transient { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn service(&self) -> &'static str {
        match self {
            ClientError::Transient { service, .. }
            | ClientError::Permanent { service, .. }
            | ClientError::Auth { service, .. } => service,
        }
    }
}

/// A request a client in dry-run did not send: exactly what it would have
/// sent, secrets left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DryRunRequest {
    pub service: &'static str,
    pub method: String,
    pub url: String,
    pub body: Option<serde_json::Value>,
}
