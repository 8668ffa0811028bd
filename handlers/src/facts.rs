//! A fact a job looked up: remember it, and decide again the events that
//! were waiting for it.

use sqlx::PgConnection;
use store::flows;

use crate::common::Decisions;

const HANDLER: &str = "fact";

pub(crate) async fn arrived(
    conn: &mut PgConnection,
    d: &mut Decisions,
    key: &str,
    value: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    flows::lock_fact(&mut *conn, key, true).await?;
    flows::store_fact(&mut *conn, key, value).await?;
    let woken = flows::wake_waiting_events(&mut *conn, key).await?;
    d.acted(
        HANDLER,
        Some(key.to_string()),
        format!(
            "now known ({value}); {} waiting event(s) to decide again",
            woken.len()
        ),
        None,
    );
    d.woke(woken);
    Ok(())
}
