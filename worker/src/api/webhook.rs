//! The Testing Farm webhook (`POST /api/testing-farm/results`, SPEC §3/F4).
//!
//! Testing Farm sends only `{request_id, token}`, and retries for about 30 s
//! only, so the answer is immediate: the token is checked (in constant
//! time), the call is recorded as an event, and 200 is returned. Reading the
//! request and setting the flag happen in a job; however many times Testing
//! Farm calls, the request is read once for each state it is known in.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState, token_matches};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(results))
        .layer(axum::extract::DefaultBodyLimit::max(
            super::limits::WEBHOOK_MAX_BODY_BYTES,
        ))
}

/// What Testing Farm posts.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code, reason = "the schema of the body, read field by field")]
struct Notification {
    /// The request that changed.
    request_id: String,
    /// The token this service gave in the request's `notification.webhook`.
    token: String,
}

/// Testing Farm says a request changed.
#[utoipa::path(post, path = "/api/testing-farm/results", tag = "testing-farm",
    request_body(content = Notification, content_type = "application/json"),
    responses(
        (status = 200, description = "Accepted: the request will be read", body = serde_json::Value),
        (status = 400, description = "Not JSON, or no request_id", body = super::ErrorBody),
        (status = 401, description = "A wrong or missing token", body = super::ErrorBody),
        (status = 413, description = "A body over 4 KiB", body = super::ErrorBody)))]
async fn results(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let request_id = body
        .get("request_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= 200)
        .ok_or_else(|| ApiError::bad_request("request_id is missing or not a string"))?;
    if request_id.contains('\0') {
        return Err(ApiError::bad_request(
            "request_id contains a NUL character; Testing Farm's ids never do",
        ));
    }
    let token = body.get("token").and_then(Value::as_str).unwrap_or("");
    let authorized = !token.is_empty()
        && state
            .webhook_token
            .as_ref()
            .is_some_and(|expected| token_matches(token, expected));
    if !authorized {
        metrics::counter!("fedora_ci_webhooks_total", "outcome" => "refused").increment(1);
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "the token does not match the one this service gave Testing Farm".into(),
        ));
    }
    store::events::insert_internal(
        &state.pool,
        &format!("testing-farm-webhook:{}", uuid::Uuid::new_v4()),
        events::typed::TOPIC_TF_NOTIFICATION,
        &json!({"request_id": request_id}),
        store::events::Source::Webhook,
    )
    .await?;
    metrics::counter!("fedora_ci_webhooks_total", "outcome" => "accepted").increment(1);
    Ok(Json(
        json!({"status": "accepted", "request_id": request_id}),
    ))
}
