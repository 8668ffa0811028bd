//! What the periodic jobs look for: Testing Farm requests and Koji tasks we
//! have not heard of for a while, builds and runs past their time limit, and
//! old finished jobs.

use sqlx::PgExecutor;

/// A read of every unfinished Testing Farm request not updated for
/// `quiet`: webhooks are retried only for about 30 s, so some are lost.
/// Polls have priority 1: they come after the rest of their queue.
/// `bucket` (the current polling period) lets each request be read once per
/// period, however many runners schedule. How many reads were scheduled.
pub async fn schedule_testing_farm_polls(
    executor: impl PgExecutor<'_>,
    quiet: std::time::Duration,
    bucket: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        r#"
        INSERT INTO jobs (kind, queue, dedup_key, payload, pipeline_id, priority)
        SELECT 'fetch-testing-farm', 'testing-farm',
               'fetch-testing-farm:' || request_id || ':' || state || ':poll:' || $2::int8,
               jsonb_build_object('request_id', request_id, 'test_run_id', id),
               pipeline_id, 1
        FROM test_runs
        WHERE request_id IS NOT NULL AND state IN ('new', 'queued', 'running')
          AND updated_at < now() - make_interval(secs => $1)
        ON CONFLICT (dedup_key) DO NOTHING
        "#,
        quiet.as_secs_f64(),
        bucket,
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

/// A poll of every unfinished Koji task we have heard nothing of for
/// `quiet` (its messages may have been lost).
pub async fn schedule_koji_polls(
    executor: impl PgExecutor<'_>,
    quiet: std::time::Duration,
    bucket: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        r#"
        INSERT INTO jobs (kind, queue, dedup_key, payload, pipeline_id, priority)
        SELECT 'poll-koji-task', 'koji',
               'poll-koji-task:' || task_id || ':' || $2::int8,
               jsonb_build_object('task_id', task_id, 'koji_build_id', id),
               pipeline_id, 1
        FROM koji_builds
        WHERE task_id IS NOT NULL AND status IN ('pending', 'running')
          AND COALESCE(last_heard_at, submitted_at, created_at) < now() - make_interval(secs => $1)
        ON CONFLICT (dedup_key) DO NOTHING
        "#,
        quiet.as_secs_f64(),
        bucket,
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

/// Test runs decided longer than `limit` ago that have not ended.
pub async fn overdue_test_runs(
    executor: impl PgExecutor<'_>,
    limit: std::time::Duration,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        SELECT id FROM test_runs
        WHERE state IN ('new', 'queued', 'running') AND NOT superseded
          AND created_at < now() - make_interval(secs => $1)
        ORDER BY id LIMIT 1000
        "#,
        limit.as_secs_f64(),
    )
    .fetch_all(executor)
    .await
}

/// Scratch builds decided longer than `limit` ago that have not ended.
pub async fn overdue_builds(
    executor: impl PgExecutor<'_>,
    limit: std::time::Duration,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        SELECT id FROM koji_builds
        WHERE scratch AND status IN ('pending', 'running') AND NOT superseded
          AND created_at < now() - make_interval(secs => $1)
        ORDER BY id LIMIT 1000
        "#,
        limit.as_secs_f64(),
    )
    .fetch_all(executor)
    .await
}

/// Delete jobs that finished (done or canceled) longer than `age` ago, and
/// facts looked up longer than `age` ago, but the ELN package list and its
/// last failure ([`crate::eln`]): an old list is still the best one there
/// is. How many rows went.
pub async fn clean_up(
    executor: impl PgExecutor<'_> + Copy,
    age: std::time::Duration,
) -> Result<u64, sqlx::Error> {
    let jobs = sqlx::query!(
        r#"
        DELETE FROM jobs WHERE state IN ('done', 'canceled')
          AND finished_at < now() - make_interval(secs => $1)
        "#,
        age.as_secs_f64(),
    )
    .execute(executor)
    .await?;
    let facts = sqlx::query!(
        r#"
        DELETE FROM facts WHERE checked_at < now() - make_interval(secs => $1)
          AND key <> ALL($2::text[])
        "#,
        age.as_secs_f64(),
        &[crate::eln::LIST_KEY, crate::eln::FAILURE_KEY] as &[&str],
    )
    .execute(executor)
    .await?;
    Ok(jobs.rows_affected() + facts.rows_affected())
}
