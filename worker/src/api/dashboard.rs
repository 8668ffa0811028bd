//! The endpoints the Packit dashboard reads, with Packit Service's paths,
//! field names and conventions.

use utoipa_axum::router::OpenApiRouter;

use super::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
