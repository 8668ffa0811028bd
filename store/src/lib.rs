//! PostgreSQL access for the service.
//!
//! Plain `async fn`s over `impl PgExecutor` so that a caller picks a pool or a
//! transaction. Queries are checked at compile time against `migrations/`
//! (offline data in `.sqlx/`).

pub mod dashboard;
pub mod eln;
pub mod events;
pub mod flows;
pub mod gating;
pub mod jobs;
pub mod outbox;
pub mod pages;
pub mod periodic;
pub mod projects;
pub mod status;
pub mod usage;

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

/// Whether the database refused the data itself (a data exception, an
/// integrity violation, a value too large), as opposed to being unreachable
/// or busy. Retrying the same data cannot succeed after such an error.
pub fn is_data_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => e.code().is_some_and(|code| {
            ["22", "23", "54"]
                .iter()
                .any(|class| code.starts_with(class))
        }),
        sqlx::Error::Encode(_) => true,
        _ => false,
    }
}
