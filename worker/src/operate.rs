//! `jobs`: what an operator needs without a database shell — list jobs,
//! retry dead ones, cancel ones that have not started.

use crate::config::Settings;

pub async fn list(
    settings: &Settings,
    state: Option<&str>,
    kind: Option<&str>,
    queue: Option<&str>,
    limit: i64,
) -> anyhow::Result<bool> {
    let pool = crate::run::database(settings).await?;
    let jobs = store::jobs::list(&pool, state, kind, queue, limit, 0).await?;
    println!(
        "{:>8}  {:<21} {:<8} {:>3}  {:<25} key / last error",
        "id", "kind", "state", "try", "updated"
    );
    for job in &jobs {
        println!(
            "{:>8}  {:<21} {:<8} {:>3}  {:<25} {}{}",
            job.id,
            job.kind,
            job.state,
            job.attempts,
            job.updated_at.format("%Y-%m-%d %H:%M:%S UTC"),
            job.dedup_key,
            job.last_error
                .as_deref()
                .map(|e| format!("\n{:>10}{}", "", e))
                .unwrap_or_default()
        );
    }
    if jobs.is_empty() {
        println!("no jobs match");
    }
    Ok(true)
}

/// Retry dead jobs (with fresh attempts) or cancel pending ones.
pub async fn act(settings: &Settings, retry: bool, ids: &[i64]) -> anyhow::Result<bool> {
    let pool = crate::run::database(settings).await?;
    let mut all = true;
    for id in ids {
        let done = if retry {
            crate::jobs::retry_by_operator(&pool, *id).await?
        } else {
            crate::jobs::cancel_by_operator(&pool, *id).await?
        };
        if done {
            println!("job {id}: {}", if retry { "due again" } else { "canceled" });
        } else {
            all = false;
            eprintln!(
                "job {id}: {}",
                if retry {
                    "not retried: no such dead job"
                } else {
                    "not canceled: no such job waiting to run"
                }
            );
        }
    }
    if retry && !ids.is_empty() {
        store::jobs::notify_runners(&pool).await?;
    }
    Ok(all)
}
