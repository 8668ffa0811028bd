//! Health, readiness, the inbox with its decisions, and metrics.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use store::events::{EventFilter, Status};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState, only_params, pagination, parse_time};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(list_events))
        .routes(routes!(get_event))
        .routes(routes!(metrics))
}

/// Liveness: the process answers. Same body as Packit Service's.
#[utoipa::path(get, path = "/api/healthz", tag = "health",
    responses((status = 200, description = "The process answers", body = serde_json::Value)))]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "We are healthy!" }))
}

/// Readiness: the database answers and, where this process consumes, the bus is connected.
#[utoipa::path(get, path = "/api/readyz", tag = "health", responses(
    (status = 200, description = "Ready", body = serde_json::Value),
    (status = 503, description = "The database or the bus is away", body = serde_json::Value)))]
async fn readyz(State(state): State<AppState>) -> Response {
    // Anyone may ask: the database's own error (host names, user names)
    // goes to the log, not into the answer.
    let database = match store::ping(&state.pool).await {
        Ok(()) => "ok".to_owned(),
        Err(error) => {
            tracing::warn!(%error, "readiness: the database does not answer");
            "unreachable".to_owned()
        }
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

/// Page through the inbox, newest first: each event with its status and
/// the reason for it.
#[utoipa::path(get, path = "/api/events", tag = "events",
    params(
        ("topic" = Option<String>, Query, description = "Only this topic (the full routing key)"),
        ("status" = Option<String>, Query, description = "received, processed, skipped, failed or dead"),
        ("since" = Option<String>, Query, description = "Received at or after: RFC 3339 or epoch seconds"),
        ("page" = Option<i64>, Query, description = "From 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 200, description = "Events, newest first", body = Vec<serde_json::Value>),
        (status = 400, description = "A bad parameter, named", body = super::ErrorBody)))]
async fn list_events(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<store::events::EventSummary>>, ApiError> {
    only_params(&params, &["topic", "status", "since", "page", "per_page"])?;
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
        .map(|text| parse_time("since", text))
        .transpose()?;
    let (_, limit, offset) = pagination(&params)?;
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
#[utoipa::path(get, path = "/api/events/{message_id}", tag = "events",
    params(("message_id" = String, Path, description = "The message id")),
    responses(
        (status = 200, description = "The event and its decisions", body = serde_json::Value),
        (status = 404, description = "No such event", body = super::ErrorBody)))]
async fn get_event(
    State(state): State<AppState>,
    Path(message_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let event = store::events::get(&state.pool, &message_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no event {message_id:?}")))?;
    let decisions = store::flows::decisions_of_event(&state.pool, event.id).await?;
    let mut body = serde_json::to_value(&event)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    body["decisions"] = serde_json::to_value(&decisions)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(body))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // What only the database knows, as of now: whichever process runs the
    // consumer, the deciders and the jobs, any API replica shows it.
    if let Ok((waiting, oldest)) = store::events::waiting(&state.pool).await {
        metrics::gauge!("fedora_ci_events_waiting").set(waiting as f64);
        metrics::gauge!("fedora_ci_events_oldest_waiting_seconds").set(oldest);
    }
    if let Ok((waiting, oldest)) = store::outbox::backlog(&state.pool).await {
        let age = oldest.map_or(0.0, |oldest| {
            (chrono::Utc::now() - oldest).num_milliseconds().max(0) as f64 / 1000.0
        });
        metrics::gauge!("fedora_ci_outbox_waiting").set(waiting as f64);
        metrics::gauge!("fedora_ci_outbox_oldest_waiting_seconds").set(age);
    }
    if let Ok(counts) = store::jobs::counts(&state.pool).await {
        for queue in crate::config::JOB_QUEUES {
            for job_state in ["pending", "running", "dead"] {
                let n = counts
                    .iter()
                    .find(|(q, s, _)| q == queue && s == job_state)
                    .map_or(0, |(_, _, n)| *n);
                metrics::gauge!("fedora_ci_jobs", "queue" => *queue, "state" => job_state)
                    .set(n as f64);
            }
        }
    }
    if let Ok(eln) = store::eln::status(&state.pool).await {
        match eln.list {
            Some(list) => {
                let age = (chrono::Utc::now() - list.fetched_at)
                    .num_milliseconds()
                    .max(0);
                metrics::gauge!("fedora_ci_eln_packages").set(list.count as f64);
                metrics::gauge!("fedora_ci_eln_packages_age_seconds").set(age as f64 / 1000.0);
            }
            // No list: no package gets ELN builds but the configured ones;
            // an age of a list that does not exist would read as fresh.
            None => metrics::gauge!("fedora_ci_eln_packages").set(0.0),
        }
    }
    state.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
