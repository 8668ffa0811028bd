//! What one request may send and take, and how a refusal reads.
//!
//! Every route gets a body size limit (the Testing Farm webhook a much
//! smaller one, [`WEBHOOK_MAX_BODY_BYTES`]), a deadline between two pieces
//! of its body and a deadline for the whole request. The connection-level
//! limits are in [`super::serve`]. Whatever refuses a request, here, in axum
//! or in the handlers, the answer is the API's JSON error body; only the
//! HTML pages (the status page, the pages of pipelines, builds and runs)
//! answer their errors with a page, for the people who read them.

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use super::{ApiError, AppState};

/// Testing Farm's webhook call is `{"request_id": "<uuid>", "token": "<token>"}`,
/// about 100 bytes; room for a longer token and nothing more.
pub const WEBHOOK_MAX_BODY_BYTES: usize = 4096;

/// An error body longer than this (none of ours is) is cut.
const ERROR_TEXT_BYTES: usize = 4096;

/// The request limits, from `[api]`.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Any route's request body at most (bytes).
    pub max_body_bytes: usize,
    /// The longest wait for the next piece of a request body.
    pub body_timeout: Duration,
    /// From the request's head to the end of its response's head.
    pub request_timeout: Duration,
}

/// `router` with the limits, and JSON for every error answer.
pub fn apply(router: Router<AppState>, limits: RequestLimits) -> Router<AppState> {
    // The last layer added runs first.
    router
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(middleware::from_fn(refuse_nul))
        .layer(middleware::from_fn(json_errors))
}

/// A NUL character (`%00`) in the path or the query is refused at once: no
/// identifier or filter of ours can hold one, and PostgreSQL refuses to
/// compare text with it, which would otherwise show up as a database error.
async fn refuse_nul(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let has_nul = |text: &str| {
        text.as_bytes()
            .windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
    };
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        return ApiError::bad_request("the path or the query contains a NUL character (%00)")
            .into_response();
    }
    next.run(request).await
}

/// Error answers that are neither JSON nor one of our HTML pages (axum's
/// own rejections, the limits above, an unknown method) become
/// `{"error": "..."}` with the same status and headers (`Allow`,
/// `Retry-After`, ...). A page's 404, 400 or 503 stays a page: a person
/// who followed a flag's link reads it in a browser.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let as_is = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || as_is {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, ERROR_TEXT_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than this endpoint accepts".to_owned()
        }
        StatusCode::REQUEST_TIMEOUT => {
            "the request took too long to arrive or to answer".to_owned()
        }
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed on this path".to_owned(),
        _ if !text.is_empty() => text,
        _ => status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase(),
    };
    let mut answer = ApiError(status, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().append(name, value.clone());
        }
    }
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    answer
}
