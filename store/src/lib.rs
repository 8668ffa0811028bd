//! PostgreSQL access for the service.
//!
//! Plain `async fn`s over `impl PgExecutor` so that a caller picks a pool or a
//! transaction. Queries are checked at compile time against `migrations/`
//! (offline data in `.sqlx/`).

pub mod events;

pub use sqlx::{PgPool, Postgres, Transaction};

/// The migrations of `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Apply pending migrations. sqlx holds a PostgreSQL advisory lock while it
/// migrates, so replicas starting together apply each migration once.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// A cheap round trip, for readiness checks.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query_scalar!("SELECT 1 AS \"one!\"")
        .fetch_one(pool)
        .await
        .map(|_| ())
}
