//! The HTTP API: health, readiness, the inbox, metrics.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use store::events::{EventFilter, Status};

use crate::bus::consumer::BusState;

#[derive(Clone)]
pub struct AppState {
    pub pool: store::PgPool,
    /// Set when this process runs the consumer; readiness then includes the bus.
    pub bus: Option<Arc<BusState>>,
    pub metrics: PrometheusHandle,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/healthz", get(healthz))
        .route("/api/readyz", get(readyz))
        .route("/api/events", get(list_events))
        .route("/api/events/{message_id}", get(get_event))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// An API error: a status and a sentence saying what was wrong.
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        tracing::error!(%error, "database error while answering a request");
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database did not answer; try again".to_owned(),
        )
    }
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such endpoint".to_owned())
}

/// Liveness: the process answers. Same body as Packit Service's.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "We are healthy!" }))
}

/// Readiness: the database answers and, where this process consumes, the bus is connected.
async fn readyz(State(state): State<AppState>) -> Response {
    let database = match store::ping(&state.pool).await {
        Ok(()) => "ok".to_owned(),
        Err(error) => format!("unreachable: {error}"),
    };
    let bus = match &state.bus {
        None => "not consumed by this process".to_owned(),
        Some(bus) if bus.is_connected() => "ok".to_owned(),
        Some(_) => "disconnected".to_owned(),
    };
    let ready = database == "ok" && (state.bus.is_none() || bus == "ok");
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "ready": ready, "database": database, "bus": bus })),
    )
        .into_response()
}

/// Page through the inbox, newest first.
async fn list_events(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<store::events::EventSummary>>, ApiError> {
    let allowed = ["topic", "status", "since", "page", "per_page"];
    if let Some(unknown) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown parameter {unknown:?}; accepted: {}",
            allowed.join(", ")
        )));
    }
    let status = match params.get("status") {
        None => None,
        Some(text) => Some(Status::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "status {text:?} is not one of {}",
                Status::ALL.map(Status::as_str).join(", ")
            ))
        })?),
    };
    let since = params
        .get("since")
        .map(|text| parse_time(text))
        .transpose()?;
    let (limit, offset) = pagination(&params)?;
    let filter = EventFilter {
        topic: params.get("topic").cloned(),
        status,
        since,
    };
    Ok(Json(
        store::events::list(&state.pool, &filter, limit, offset).await?,
    ))
}

/// One event with everything recorded about it, and every decision taken
/// for it, in order.
async fn get_event(
    State(state): State<AppState>,
    Path(message_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let event = store::events::get(&state.pool, &message_id)
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no event {message_id:?}")))?;
    let decisions = store::flows::decisions_of_event(&state.pool, event.id).await?;
    let mut body = serde_json::to_value(&event)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    body["decisions"] = serde_json::to_value(&decisions)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(body))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// `page` (from 1, default 1) and `per_page` (1 to 100, default 10), as the
/// Packit dashboard API has them. Returns LIMIT and OFFSET.
fn pagination(params: &HashMap<String, String>) -> Result<(i64, i64), ApiError> {
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
    let page = number("page", 1, 1_000_000)?;
    let per_page = number("per_page", 10, 100)?;
    Ok((per_page, (page - 1) * per_page))
}

/// RFC 3339 (`2026-11-23T10:00:00Z`) or epoch seconds.
fn parse_time(text: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Ok(seconds) = text.parse::<i64>()
        && let Some(time) = DateTime::from_timestamp(seconds, 0)
    {
        return Ok(time);
    }
    Err(ApiError::bad_request(format!(
        "since {text:?} is neither an RFC 3339 time (2026-11-23T10:00:00Z) nor epoch seconds"
    )))
}
