//! Operator actions, behind the admin token (`Authorization: Bearer
//! <api.admin_token>`): list jobs, retry a dead job, cancel a job that has
//! not started or a whole pipeline, decide an event again, and decide again
//! every event of a time window (after an outage was fixed, say). Without a
//! configured token every admin endpoint answers 403.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState, only_params, pagination, parse_time, token_matches};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(retry_job))
        .routes(routes!(cancel_job))
        .routes(routes!(cancel_pipeline))
        .routes(routes!(redecide_event))
        .routes(routes!(replay_events))
}

/// Proof that the request carries the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = &state.admin_token else {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                "admin actions are off: api.admin_token is not configured".into(),
            ));
        };
        // The scheme is case-insensitive (RFC 9110 §11.1); the token is not.
        let presented = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token);
        // A missing token is refused without comparing: no configured token
        // is empty (the configuration refuses one), but nothing relies on it.
        if presented.is_some_and(|token| !token.is_empty() && token_matches(token, expected)) {
            Ok(Admin)
        } else {
            metrics::counter!("fedora_ci_admin_refused_total").increment(1);
            tracing::warn!(
                method = %parts.method,
                path = %parts.uri.path(),
                token_given = presented.is_some(),
                "admin request refused: no or a wrong admin token"
            );
            Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "this needs the admin token: Authorization: Bearer <api.admin_token>".into(),
            ))
        }
    }
}

/// Jobs, newest first.
#[utoipa::path(get, path = "/api/jobs", tag = "admin",
    security(("admin_token" = [])),
    params(
        ("state" = Option<String>, Query, description = "pending, running, done, dead or canceled"),
        ("kind" = Option<String>, Query, description = "e.g. submit-testing-farm"),
        ("queue" = Option<String>, Query, description = "koji, testing-farm, distgit or lookup"),
        ("page" = Option<i64>, Query, description = "From 1"),
        ("per_page" = Option<i64>, Query, description = "1 to 100, default 10"),
    ),
    responses(
        (status = 200, description = "Jobs", body = Vec<serde_json::Value>),
        (status = 400, description = "A bad parameter, named", body = super::ErrorBody),
        (status = 401, description = "No or a wrong admin token", body = super::ErrorBody),
        (status = 403, description = "No admin token configured", body = super::ErrorBody)))]
async fn list_jobs(
    _: Admin,
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<store::jobs::JobSummary>>, ApiError> {
    only_params(&params, &["state", "kind", "queue", "page", "per_page"])?;
    let states = ["pending", "running", "done", "dead", "canceled"];
    if let Some(s) = params.get("state")
        && !states.contains(&s.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "state {s:?} is not one of {}",
            states.join(", ")
        )));
    }
    let (_, limit, offset) = pagination(&params)?;
    Ok(Json(
        store::jobs::list(
            &state.pool,
            params.get("state").map(String::as_str),
            params.get("kind").map(String::as_str),
            params.get("queue").map(String::as_str),
            limit,
            offset,
        )
        .await?,
    ))
}

async fn job_state(state: &AppState, id: i64) -> Result<String, ApiError> {
    store::jobs::state_of(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))
}

/// Make a dead job due again, with fresh attempts.
#[utoipa::path(post, path = "/api/jobs/{id}/retry", tag = "admin",
    security(("admin_token" = [])),
    params(("id" = i64, Path, description = "The job")),
    responses(
        (status = 200, description = "Due again", body = serde_json::Value),
        (status = 400, description = "The id is not a whole number", body = super::ErrorBody),
        (status = 401, description = "No or a wrong admin token", body = super::ErrorBody),
        (status = 403, description = "No admin token configured", body = super::ErrorBody),
        (status = 404, description = "No such job", body = super::ErrorBody),
        (status = 409, description = "The job is not dead", body = super::ErrorBody)))]
async fn retry_job(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = super::dashboard::path_id(&id)?;
    if !crate::jobs::retry_by_operator(&state.pool, id).await? {
        let now = job_state(&state, id).await?;
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("job {id} is {now}, not dead"),
        ));
    }
    store::jobs::notify_runners(&state.pool).await?;
    tracing::info!(job_id = id, "an operator retried a dead job");
    Ok(Json(json!({"id": id, "state": "pending"})))
}

/// Cancel a job that has not started.
#[utoipa::path(post, path = "/api/jobs/{id}/cancel", tag = "admin",
    security(("admin_token" = [])),
    params(("id" = i64, Path, description = "The job")),
    responses(
        (status = 200, description = "Canceled", body = serde_json::Value),
        (status = 400, description = "The id is not a whole number", body = super::ErrorBody),
        (status = 401, description = "No or a wrong admin token", body = super::ErrorBody),
        (status = 403, description = "No admin token configured", body = super::ErrorBody),
        (status = 404, description = "No such job", body = super::ErrorBody),
        (status = 409, description = "The job is not waiting to run", body = super::ErrorBody)))]
async fn cancel_job(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = super::dashboard::path_id(&id)?;
    if !crate::jobs::cancel_by_operator(&state.pool, id).await? {
        let now = job_state(&state, id).await?;
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("job {id} is {now}; only a pending job can be canceled"),
        ));
    }
    tracing::info!(job_id = id, "an operator canceled a job");
    Ok(Json(json!({"id": id, "state": "canceled"})))
}

/// Cancel a pipeline: what it runs is stopped at Koji and Testing Farm, its
/// waiting jobs are dropped, its pending flags end as canceled. Done by the
/// decider, as an event of its own, so it is recorded with its decisions.
#[utoipa::path(post, path = "/api/pipelines/{id}/cancel", tag = "admin",
    security(("admin_token" = [])),
    params(("id" = i64, Path, description = "The pipeline")),
    responses(
        (status = 202, description = "Recorded; the decider carries it out", body = serde_json::Value),
        (status = 400, description = "The id is not a whole number", body = super::ErrorBody),
        (status = 401, description = "No or a wrong admin token", body = super::ErrorBody),
        (status = 403, description = "No admin token configured", body = super::ErrorBody),
        (status = 404, description = "No such pipeline", body = super::ErrorBody),
        (status = 409, description = "The pipeline has ended", body = super::ErrorBody)))]
async fn cancel_pipeline(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = super::dashboard::path_id(&id)?;
    let now = store::flows::pipeline_state(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no pipeline {id}")))?;
    if now != "active" {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("pipeline {id} has ended ({now})"),
        ));
    }
    let message_id = format!("operator-cancel-pipeline:{id}:{}", uuid::Uuid::new_v4());
    store::events::insert_internal(
        &state.pool,
        &message_id,
        events::typed::TOPIC_CANCEL_PIPELINE,
        &json!({"pipeline_id": id}),
        store::events::Source::Internal,
    )
    .await?;
    tracing::info!(pipeline_id = id, "an operator canceled a pipeline");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"pipeline_id": id, "event": message_id})),
    ))
}

/// Decide an event again (its earlier decisions stay recorded; nothing
/// already done is done twice).
#[utoipa::path(post, path = "/api/events/{message_id}/redecide", tag = "admin",
    security(("admin_token" = [])),
    params(("message_id" = String, Path, description = "The event's message id")),
    responses(
        (status = 202, description = "Back in line for the decider", body = serde_json::Value),
        (status = 401, description = "No or a wrong admin token", body = super::ErrorBody),
        (status = 403, description = "No admin token configured", body = super::ErrorBody),
        (status = 404, description = "No such event, or it is dead", body = super::ErrorBody)))]
async fn redecide_event(
    _: Admin,
    State(state): State<AppState>,
    Path(message_id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !store::events::redecide(&state.pool, &message_id).await? {
        return Err(ApiError::not_found(format!(
            "no event {message_id:?} to decide again (dead events have nothing to decide on)"
        )));
    }
    tracing::info!(%message_id, "an operator asked to decide an event again");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message_id": message_id, "status": "received"})),
    ))
}

/// Decide again every event received in a time window.
#[utoipa::path(post, path = "/api/events/replay", tag = "admin",
    security(("admin_token" = [])),
    params(
        ("since" = String, Query, description = "Received at or after: RFC 3339 or epoch seconds"),
        ("until" = Option<String>, Query, description = "Received before (default: now)"),
        ("topic" = Option<String>, Query, description = "Only this topic"),
    ),
    responses(
        (status = 202, description = "Back in line for the decider", body = serde_json::Value),
        (status = 400, description = "A bad parameter, named", body = super::ErrorBody),
        (status = 401, description = "No or a wrong admin token", body = super::ErrorBody),
        (status = 403, description = "No admin token configured", body = super::ErrorBody)))]
async fn replay_events(
    _: Admin,
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    only_params(&params, &["since", "until", "topic"])?;
    let since = params
        .get("since")
        .ok_or_else(|| ApiError::bad_request("since is required"))
        .and_then(|t| parse_time("since", t))?;
    let until = match params.get("until") {
        Some(t) => parse_time("until", t)?,
        None => chrono::Utc::now(),
    };
    if until <= since {
        return Err(ApiError::bad_request("until must come after since"));
    }
    let events = store::events::redecide_window(
        &state.pool,
        since,
        until,
        params.get("topic").map(String::as_str),
    )
    .await?;
    tracing::info!(events, %since, %until, "an operator asked to decide a window of events again");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"events": events, "since": since, "until": until})),
    ))
}
