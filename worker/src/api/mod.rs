//! The HTTP API (SPEC §4): health and readiness, the inbox with every
//! decision, the endpoints the Packit dashboard reads (builds, test runs,
//! runs, projects, usage, and empty pages of the Packit features Fedora CI
//! does not have), Bodhi updates with their gating runs, the Testing Farm
//! webhook, operator actions behind the admin token, the status page at `/`
//! with the pages of each pipeline, Koji build and Testing Farm run that the
//! flags link to, Prometheus metrics, and `/api/openapi.json`, generated from
//! the handlers themselves.

mod admin;
mod dashboard;
mod inbox;
mod limits;
mod packit_empty;
mod pages;
mod projects;
pub mod serve;
mod status;
mod updates;
mod usage;
mod webhook;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use serde_json::json;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::bus::consumer::BusState;

#[derive(Clone)]
pub struct AppState {
    pub pool: store::PgPool,
    /// Set when this process runs the consumer; readiness then includes the bus.
    pub bus: Option<Arc<BusState>>,
    pub metrics: PrometheusHandle,
    /// Operator actions need it as a Bearer token; without one they are refused.
    pub admin_token: Option<SecretString>,
    /// What Testing Farm sends back in its webhook calls.
    pub webhook_token: Option<SecretString>,
    /// Koji's web UI (`koji.web_url`), for links to tasks.
    pub koji_web_url: String,
    /// The Testing Farm API (`testing_farm.api_url`), for links to requests.
    pub testing_farm_api_url: String,
    /// What one request may send and take.
    pub limits: limits::RequestLimits,
}

pub use limits::RequestLimits;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fedora-ci-worker",
        description = "Fedora CI for dist-git: events and their decisions, Koji builds, Testing Farm runs, pipelines, Bodhi updates and their gating runs, jobs."
    ),
    components(schemas(ErrorBody)),
    modifiers(&AdminToken)
)]
struct ApiDoc;

/// The admin token, as the OpenAPI document describes it.
struct AdminToken;

impl utoipa::Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "admin_token",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

pub fn router(state: AppState) -> axum::Router {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(inbox::routes())
        .merge(dashboard::routes())
        .merge(projects::routes())
        .merge(usage::routes())
        .merge(packit_empty::routes())
        .merge(updates::routes())
        .merge(webhook::routes())
        .merge(admin::routes())
        .split_for_parts();
    let openapi = Arc::new(openapi);
    let router = router
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let openapi = openapi.clone();
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        .merge(status::routes())
        .merge(pages::routes())
        .fallback(not_found);
    limits::apply(router, state.limits)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        // Outermost, so that every answer carries it, refusals and unknown paths included:
        // the Packit dashboard is a page of another origin that reads this API, and Packit
        // Service allows every origin the same way (`CORS(app)` with flask-cors' defaults).
        // Nothing here rides on cookies, so no credentials are allowed.
        .layer(cors())
        .with_state(state)
}

/// Any origin may read the API, with any method and request header.
fn cors() -> tower_http::cors::CorsLayer {
    use tower_http::cors::{Any, CorsLayer};
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers(Any)
}

/// What every error answer says.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What was wrong, for people.
    pub error: String,
}

/// An API error: a status and a sentence saying what was wrong.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError(StatusCode::NOT_FOUND, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    /// Only an unreachable or busy database is worth trying again (503). A
    /// value of the request the database refuses (SQLSTATE class 22: a NUL
    /// character, a number out of range) is the request's fault (400); a
    /// recorded row that cannot be read back is ours (500). Neither is logged
    /// as an error: anyone can send such a request, and errors go to Sentry.
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.code().is_some_and(|code| code.starts_with("22")) => {
                tracing::warn!(%error, "the database refused a value of a request");
                ApiError::bad_request(format!(
                    "a value in the request cannot be used: {}",
                    db.message()
                ))
            }
            sqlx::Error::Decode(source) => {
                tracing::warn!(%error, "a recorded row cannot be read back");
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, source.to_string())
            }
            sqlx::Error::ColumnDecode { index, source } => {
                tracing::warn!(%error, "a recorded row cannot be read back");
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("a recorded value (column {index}) cannot be read back: {source}"),
                )
            }
            _ if handlers::decider::is_transient(&error) => {
                tracing::error!(%error, "database error while answering a request");
                ApiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database did not answer; try again".to_owned(),
                )
            }
            _ => {
                tracing::error!(%error, "database error while answering a request");
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the request failed on our side; the service's logs say why".to_owned(),
                )
            }
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// Refuse unknown query parameters, naming the accepted ones.
pub fn only_params(params: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::bad_request(format!(
            "unknown parameter {unknown:?}; accepted: {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// How far into a list a page may start. Every list is read newest first
/// with OFFSET, which the database pays for row by row; 100,000 rows is
/// 1,000 pages of 100, deeper than the dashboard ever scrolls.
pub const MAX_OFFSET: i64 = 100_000;

/// `page` (from 1, default 1) and `per_page` (1 to 100, default 10), as the
/// Packit dashboard API has them, starting at most [`MAX_OFFSET`] rows in.
/// Returns the page, LIMIT and OFFSET.
pub fn pagination(params: &HashMap<String, String>) -> Result<(i64, i64, i64), ApiError> {
    let number = |key: &str, default: i64, max: i64| -> Result<i64, ApiError> {
        match params.get(key) {
            None => Ok(default),
            Some(text) => match text.parse::<i64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::bad_request(format!(
                    "{key} must be a whole number from 1 to {max}, not {text:?}"
                ))),
            },
        }
    };
    let per_page = number("per_page", 10, 100)?;
    let page = number("page", 1, MAX_OFFSET / per_page + 1)?;
    Ok((page, per_page, (page - 1) * per_page))
}

/// RFC 3339 (`2026-11-23T10:00:00Z`) or epoch seconds.
pub fn parse_time(key: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Ok(seconds) = text.parse::<i64>()
        && let Some(time) = DateTime::from_timestamp(seconds, 0)
    {
        return Ok(time);
    }
    Err(ApiError::bad_request(format!(
        "{key} {text:?} is neither an RFC 3339 time (2026-11-23T10:00:00Z) nor epoch seconds"
    )))
}

/// A page of a list, the way Packit's dashboard API answers: `206 Partial
/// Content` with `Content-Range: <kind> <first>-<last>/*`, counted from 1
/// over the page asked for (Packit's `response_maker`).
pub fn partial<T: serde::Serialize>(
    kind: &str,
    offset: i64,
    per_page: i64,
    items: Vec<T>,
) -> Response {
    (
        StatusCode::PARTIAL_CONTENT,
        [(
            axum::http::header::CONTENT_RANGE,
            format!("{kind} {}-{}/*", offset + 1, offset + per_page),
        )],
        Json(items),
    )
        .into_response()
}

/// Compare a presented token with the configured one in constant time: the
/// digests are compared, so neither content nor length shows in the timing.
pub fn token_matches(presented: &str, expected: &SecretString) -> bool {
    use secrecy::ExposeSecret as _;
    use sha2::{Digest as _, Sha256};
    use subtle::ConstantTimeEq as _;
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(expected.expose_secret().as_bytes());
    bool::from(presented.ct_eq(&expected))
}
