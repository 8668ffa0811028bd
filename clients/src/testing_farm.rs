//! Testing Farm (`https://api.testing-farm.io/v0.1`, SPEC §3).
//!
//! [`TestingFarmClient`] is the real implementation. Facts it relies on
//! (Testing Farm's CLI `tft.cli` and its tests, and Packit Service):
//! - `POST /requests` takes the request as JSON with `Authorization: Bearer
//!   <token>` (the `api_key` body field is deprecated) and answers 200 with
//!   the new request's `id`;
//! - `GET /requests/{id}` and `GET /composes/{ranch}` need no token;
//! - `DELETE /requests/{id}` answers 200 (cancellation requested), 204
//!   (already canceled or being canceled), 409 (already finished), 404 (no
//!   such request), 401 (bad token);
//! - errors carry `{"message": ...}` (or FastAPI's `{"detail": ...}`).

use async_trait::async_trait;
use reqwest::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::http::{self, Timeouts};
use crate::{ClientError, DryRunRequest};

/// What became of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Testing Farm accepted it under this request id.
    Request { id: String },
    /// Dry-run (no token): nothing was sent; this is what would have been.
    DryRun(DryRunRequest),
}

#[async_trait]
pub trait TestingFarm: Send + Sync {
    /// `POST /requests` with `payload` (as recorded, without the webhook
    /// token: the client adds `notification.webhook.token` when it has one).
    async fn submit(&self, payload: &serde_json::Value) -> Result<Submitted, ClientError>;
    /// `GET /requests/{id}`: the request as Testing Farm reports it, unchanged.
    async fn get(&self, request_id: &str) -> Result<serde_json::Value, ClientError>;
    /// `DELETE /requests/{id}`; 200, 204 and 409 all mean nothing more to do.
    /// `Ok(Some(..))` in dry-run.
    async fn cancel(&self, request_id: &str) -> Result<Option<DryRunRequest>, ClientError>;
    /// `GET /composes/{ranch}`: the compose names.
    async fn composes(&self, ranch: &str) -> Result<Vec<String>, ClientError>;
    /// Whether submissions and cancellations are only recorded.
    fn dry_run(&self) -> bool;
}

/// The service name in errors and dry-run records.
pub const SERVICE: &str = "testing-farm";

/// What dry-run records and errors show instead of the webhook token.
pub const REDACTED: &str = "<redacted>";

/// The Testing Farm API over HTTP.
///
/// Without an API token it runs in dry-run: [`TestingFarm::submit`] and
/// [`TestingFarm::cancel`] send nothing and return the request they would
/// have sent; reads ([`TestingFarm::get`], [`TestingFarm::composes`]) are
/// anonymous anyway and still work. Reads never send the token.
pub struct TestingFarmClient {
    http: reqwest::Client,
    api_url: Url,
    token: Option<SecretString>,
    webhook_token: Option<SecretString>,
}

impl std::fmt::Debug for TestingFarmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestingFarmClient")
            .field("api_url", &self.api_url.as_str())
            .field("dry_run", &self.token.is_none())
            .field(
                "webhook_token",
                &self.webhook_token.as_ref().map(|_| REDACTED),
            )
            .finish()
    }
}

impl TestingFarmClient {
    /// `api_url` is the API base including its version, e.g.
    /// `https://api.testing-farm.io/v0.1` (`[testing_farm] api_url`).
    /// `token` is the API token (none: dry-run); `webhook_token` is put into
    /// every submitted request's `notification.webhook.token`, for our
    /// webhook to check.
    pub fn new(
        api_url: &str,
        token: Option<SecretString>,
        webhook_token: Option<SecretString>,
        timeouts: Timeouts,
    ) -> Result<Self, ClientError> {
        let api_url = http::parse_base_url(SERVICE, "testing_farm.api_url", api_url)?;
        let client = http::build_client(SERVICE, timeouts)?;
        let token = token.filter(|t| !t.expose_secret().is_empty());
        let webhook_token = webhook_token.filter(|t| !t.expose_secret().is_empty());
        if token.is_none() {
            tracing::warn!(api_url = %api_url, "Testing Farm: no API token, dry-run: submissions and cancellations are only recorded");
        }
        Ok(TestingFarmClient {
            http: client,
            api_url,
            token,
            webhook_token,
        })
    }

    fn url(&self, segments: &[&str]) -> Result<Url, ClientError> {
        http::join(SERVICE, &self.api_url, segments)
    }

    /// `payload` with `notification.webhook.token` set to `token`, when the
    /// payload asks for a webhook at all.
    fn with_webhook_token(payload: &serde_json::Value, token: Option<&str>) -> serde_json::Value {
        let mut payload = payload.clone();
        if let Some(webhook) = payload
            .get_mut("notification")
            .and_then(|n| n.get_mut("webhook"))
            .and_then(serde_json::Value::as_object_mut)
        {
            match token {
                Some(token) => {
                    webhook.insert("token".to_owned(), serde_json::Value::from(token));
                }
                None => {
                    webhook.remove("token");
                }
            }
        }
        payload
    }

    /// What dry-run shows for a submission: the payload as it would be sent,
    /// the webhook token (ours, or one the caller left in) shown as
    /// [`REDACTED`].
    fn dry_run_payload(&self, payload: &serde_json::Value) -> serde_json::Value {
        let had_token = payload
            .pointer("/notification/webhook/token")
            .is_some_and(|t| !t.is_null());
        let token = (self.webhook_token.is_some() || had_token).then_some(REDACTED);
        Self::with_webhook_token(payload, token)
    }

    fn finish<T>(&self, result: Result<T, ClientError>) -> Result<T, ClientError> {
        result
            .map_err(|err| http::redact(err, self.token.as_ref()))
            .map_err(|err| http::redact(err, self.webhook_token.as_ref()))
    }

    async fn submit_live(
        &self,
        token: &SecretString,
        payload: &serde_json::Value,
    ) -> Result<Submitted, ClientError> {
        let body = Self::with_webhook_token(
            payload,
            self.webhook_token
                .as_ref()
                .map(ExposeSecret::expose_secret)
                .or_else(|| {
                    payload
                        .pointer("/notification/webhook/token")
                        .and_then(|t| t.as_str())
                }),
        );
        let mut request = self.http.post(self.url(&["requests"])?).json(&body);
        if let Some(auth) = http::authorization("Bearer", token) {
            request = request.header(AUTHORIZATION, auth);
        }
        let response = http::call(SERVICE, request).await?;
        #[derive(Deserialize)]
        struct Created {
            id: String,
        }
        let created: Created = http::json(SERVICE, response).await?;
        tracing::info!(request_id = %created.id, "Testing Farm request submitted");
        Ok(Submitted::Request { id: created.id })
    }

    async fn cancel_live(
        &self,
        token: &SecretString,
        request_id: &str,
    ) -> Result<Option<DryRunRequest>, ClientError> {
        let mut request = self.http.delete(self.url(&["requests", request_id])?);
        if let Some(auth) = http::authorization("Bearer", token) {
            request = request.header(AUTHORIZATION, auth);
        }
        let response = http::send(SERVICE, request).await?;
        match response.status().as_u16() {
            // 200: cancellation requested; 204: already canceled or being
            // canceled; 409: already finished.
            200 | 204 | 409 => Ok(None),
            // A request Testing Farm does not know cannot run: there is
            // nothing left to cancel either.
            404 => {
                tracing::warn!(
                    request_id,
                    "Testing Farm does not know the request to cancel"
                );
                Ok(None)
            }
            _ => Err(http::error_from_response(SERVICE, response).await),
        }
    }

    async fn get_live(&self, request_id: &str) -> Result<serde_json::Value, ClientError> {
        let request = self.http.get(self.url(&["requests", request_id])?);
        let response = http::call(SERVICE, request).await?;
        http::json(SERVICE, response).await
    }

    async fn composes_live(&self, ranch: &str) -> Result<Vec<String>, ClientError> {
        let request = self.http.get(self.url(&["composes", ranch])?);
        let response = http::call(SERVICE, request).await?;
        #[derive(Deserialize)]
        struct Compose {
            name: String,
        }
        #[derive(Deserialize)]
        struct Composes {
            #[serde(default)]
            composes: Vec<Compose>,
        }
        let composes: Composes = http::json(SERVICE, response).await?;
        Ok(composes.composes.into_iter().map(|c| c.name).collect())
    }
}

#[async_trait]
impl TestingFarm for TestingFarmClient {
    async fn submit(&self, payload: &serde_json::Value) -> Result<Submitted, ClientError> {
        let Some(token) = &self.token else {
            let url = self.url(&["requests"])?;
            tracing::info!(%url, "dry-run: Testing Farm request not submitted");
            return Ok(Submitted::DryRun(DryRunRequest {
                service: SERVICE,
                method: "POST".to_owned(),
                url: url.to_string(),
                body: Some(self.dry_run_payload(payload)),
            }));
        };
        self.finish(self.submit_live(token, payload).await)
    }

    async fn get(&self, request_id: &str) -> Result<serde_json::Value, ClientError> {
        self.finish(self.get_live(request_id).await)
    }

    async fn cancel(&self, request_id: &str) -> Result<Option<DryRunRequest>, ClientError> {
        let Some(token) = &self.token else {
            let url = self.url(&["requests", request_id])?;
            tracing::info!(%url, "dry-run: Testing Farm request not canceled");
            return Ok(Some(DryRunRequest {
                service: SERVICE,
                method: "DELETE".to_owned(),
                url: url.to_string(),
                body: None,
            }));
        };
        self.finish(self.cancel_live(token, request_id).await)
    }

    /// All names Testing Farm lists for the ranch. Entries of `type: regex`
    /// are patterns, listed as they are (Packit compares names the same way).
    async fn composes(&self, ranch: &str) -> Result<Vec<String>, ClientError> {
        self.finish(self.composes_live(ranch).await)
    }

    fn dry_run(&self) -> bool {
        self.token.is_none()
    }
}
