//! The status page at `/`.

use super::AppState;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
}
