//! A 20,000-message stream survives a broker restart and a database restart
//! (each between two halves of the stream, and with deliveries in flight), and
//! SIGKILL of the service:
//! every message ends up recorded exactly once, and the broker's queue ends
//! empty with nothing unacknowledged.
//! The broker and database here are private instances, so stopping them does
//! not disturb the tests running beside these.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{
    PrivatePostgres, PrivateRabbit, Service, field_table, fm_properties, fresh_database_at,
    publish_many, service_config, wait_until,
};

const MESSAGES: usize = 20_000;
const TIMEOUT: Duration = Duration::from_secs(300);

/// Short backoffs so that recovery shows within the test's time.
const ENV: &[(&str, &str)] = &[
    ("FEDORA_CI__BUS__RECONNECT_MAX_SECONDS", "2"),
    ("FEDORA_CI__INGEST__RETRY_MAX_SECONDS", "1"),
];

fn spawn(config: &str) -> Service {
    Service::spawn_with_env(config, &["run", "--consumer"], ENV)
}

fn stream(prefix: &str) -> Vec<(String, lapin::BasicProperties, Vec<u8>)> {
    let headers = field_table(&json!({
        "fedora_messaging_schema": "base.message",
        "fedora_messaging_severity": 20,
        "sent-at": "2026-11-22T21:24:17+00:00",
    }));
    (0..MESSAGES)
        .map(|i| {
            (
                "org.fedoraproject.prod.buildsys.tag".to_owned(),
                fm_properties(&format!("{prefix}-{i}"), headers.clone()),
                format!("{{\"n\": {i}, \"tag\": \"f44-updates-candidate\"}}").into_bytes(),
            )
        })
        .collect()
}

async fn count(pool: &sqlx::PgPool) -> Option<i64> {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .ok()
}

async fn until_recorded(pool: &sqlx::PgPool, n: i64, what: &str) {
    wait_until(Duration::from_secs(120), what, || async {
        (count(pool).await? >= n).then_some(())
    })
    .await;
}

/// Each message id once, none missing.
async fn assert_exactly_once(pool: &sqlx::PgPool, prefix: &str) {
    let (rows, distinct): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT message_id) FROM events WHERE message_id LIKE $1",
    )
    .bind(format!("{prefix}-%"))
    .fetch_one(pool)
    .await
    .expect("count");
    assert_eq!(rows, MESSAGES as i64, "rows recorded");
    assert_eq!(distinct, MESSAGES as i64, "distinct ids");
}

async fn started(service: &mut Service) {
    service
        .wait_for_log("consuming", Duration::from_secs(60))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_restart() {
    tokio::time::timeout(TIMEOUT, async {
        let rabbit = PrivateRabbit::start();
        let db = support::fresh_database().await;
        let pool = db.pool().await;
        let mut service = spawn(&service_config(
            &db.url,
            &rabbit.amqp_url(),
            support::free_port(),
        ));
        started(&mut service).await;
        // Half the stream before the restart, half after: the second half
        // arrives only if the consumer reconnects and re-declares.
        let mut first = stream("broker");
        let second = first.split_off(MESSAGES / 2);
        publish_many(&rabbit.amqp_url(), first).await;
        until_recorded(&pool, (MESSAGES / 2) as i64, "the first half recorded").await;
        rabbit.stop_app();
        tokio::time::sleep(Duration::from_secs(2)).await;
        rabbit.start_app();
        publish_many(&rabbit.amqp_url(), second).await;
        until_recorded(
            &pool,
            MESSAGES as i64,
            "the whole stream after the broker came back",
        )
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_exactly_once(&pool, "broker").await;
        assert!(
            service.log().contains("reconnecting"),
            "the service noticed the restart"
        );
        stops_cleanly(&mut service);
    })
    .await
    .expect("test timed out");
}

/// Locks the inbox, so that the consumer holds what it is delivered without
/// being able to record it, and so without acknowledging it; the lock lasts as
/// long as the transaction.
async fn lock_inbox(pool: &sqlx::PgPool) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut lock = pool.begin().await.expect("a transaction");
    sqlx::query("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("lock the inbox");
    lock
}

/// Waits until the broker reports deliveries the consumer holds unacknowledged;
/// how many.
async fn held_unacknowledged(depths: impl Fn() -> Vec<(String, u64, u64)>) -> u64 {
    wait_until(
        Duration::from_secs(30),
        "deliveries held unacknowledged by the consumer",
        || {
            let held: u64 = depths().iter().map(|(_, _, unacked)| unacked).sum();
            async move { (held > 0).then_some(held) }
        },
    )
    .await
}

/// The broker goes away while the stream is being taken in: deliveries the
/// consumer holds unacknowledged at that moment come again after the restart.
/// Each is recorded once, none is lost, and the queue ends empty with nothing
/// left unacknowledged.
#[tokio::test(flavor = "multi_thread")]
async fn broker_restart_with_deliveries_in_flight() {
    tokio::time::timeout(TIMEOUT, async {
        let rabbit = PrivateRabbit::start();
        let db = support::fresh_database().await;
        let pool = db.pool().await;
        let mut service = spawn(&service_config(
            &db.url,
            &rabbit.amqp_url(),
            support::free_port(),
        ));
        started(&mut service).await;
        let lock = lock_inbox(&pool).await;
        publish_many(&rabbit.amqp_url(), stream("inflight")).await;
        let held = held_unacknowledged(|| rabbit.queue_depths()).await;
        // The broker goes away with them in flight; then the inbox opens: the consumer
        // records what it holds, and its acknowledgements have nowhere to go.
        rabbit.stop_app();
        lock.commit().await.expect("unlock the inbox");
        until_recorded(&pool, 1, "what the consumer held, recorded").await;
        let at_stop = count(&pool).await.expect("count");
        tokio::time::sleep(Duration::from_secs(2)).await;
        rabbit.start_app();
        until_recorded(
            &pool,
            MESSAGES as i64,
            "the whole stream after the broker came back",
        )
        .await;
        wait_until(
            Duration::from_secs(30),
            "the queue empty with nothing unacknowledged",
            || async { rabbit.drained().then_some(()) },
        )
        .await;
        assert_exactly_once(&pool, "inflight").await;
        eprintln!(
            "{held} deliveries held unacknowledged when the broker stopped; {at_stop} recorded \
             while it was away, then delivered again and found recorded"
        );
        stops_cleanly(&mut service);
    })
    .await
    .expect("test timed out");
}

/// The database goes away while the consumer is writing what it was delivered: those
/// deliveries are not acknowledged, come again once it is back, and are recorded once each;
/// the queue ends with nothing unacknowledged.
#[tokio::test(flavor = "multi_thread")]
async fn database_restart_with_deliveries_in_flight() {
    tokio::time::timeout(TIMEOUT, async {
        let postgres = PrivatePostgres::start();
        let vhost = support::fresh_vhost();
        let db = fresh_database_at(&postgres.url()).await;
        let mut service = spawn(&service_config(
            &db.url,
            &vhost.amqp_url,
            support::free_port(),
        ));
        started(&mut service).await;
        // The consumer's write waits on the locked inbox, holding its deliveries.
        let pool = db.pool().await;
        let lock = lock_inbox(&pool).await;
        publish_many(&vhost.amqp_url, stream("dbinflight")).await;
        let held = held_unacknowledged(|| vhost.queue_depths()).await;
        // The database dies under the waiting write (and the lock with it).
        postgres.stop_immediate();
        drop(lock);
        pool.close().await;
        // Longer than the pool's 5 s acquire timeout, so that the writer's
        // attempt fails (and says so) instead of just waiting for a connection.
        tokio::time::sleep(Duration::from_secs(8)).await;
        postgres.start_again();
        let pool = db.pool().await;
        until_recorded(
            &pool,
            MESSAGES as i64,
            "the whole stream after the database came back",
        )
        .await;
        wait_until(
            Duration::from_secs(30),
            "the queue empty with nothing unacknowledged",
            || async { vhost.drained().then_some(()) },
        )
        .await;
        assert_exactly_once(&pool, "dbinflight").await;
        eprintln!("{held} deliveries held unacknowledged when the database stopped");
        stops_cleanly(&mut service);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn database_restart() {
    tokio::time::timeout(TIMEOUT, async {
        let postgres = PrivatePostgres::start();
        let vhost = support::fresh_vhost();
        let db = fresh_database_at(&postgres.url()).await;
        let mut service = spawn(&service_config(
            &db.url,
            &vhost.amqp_url,
            support::free_port(),
        ));
        started(&mut service).await;
        // Half the stream before the crash, half while the database is down.
        let mut first = stream("database");
        let second = first.split_off(MESSAGES / 2);
        publish_many(&vhost.amqp_url, first).await;
        {
            let pool = db.pool().await;
            until_recorded(&pool, (MESSAGES / 2) as i64, "the first half recorded").await;
            pool.close().await;
        }
        postgres.stop_immediate();
        publish_many(&vhost.amqp_url, second).await;
        // Longer than the pool's 5 s acquire timeout, so that the writer's
        // attempt fails (and says so) instead of just waiting for a connection.
        tokio::time::sleep(Duration::from_secs(8)).await;
        postgres.start_again();
        let pool = db.pool().await;
        until_recorded(
            &pool,
            MESSAGES as i64,
            "the whole stream after the database came back",
        )
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_exactly_once(&pool, "database").await;
        assert!(
            service.log().contains("consumption pauses"),
            "the writer saw the outage"
        );
        stops_cleanly(&mut service);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_and_restart() {
    tokio::time::timeout(TIMEOUT, async {
        let vhost = support::fresh_vhost();
        let db = support::fresh_database().await;
        let pool = db.pool().await;
        let config = service_config(&db.url, &vhost.amqp_url, support::free_port());
        let mut service = spawn(&config);
        started(&mut service).await;
        publish_many(&vhost.amqp_url, stream("kill")).await;
        until_recorded(&pool, 2_000, "part of the stream recorded").await;
        service.sigkill();
        let recorded_at_kill = count(&pool).await.unwrap_or_default();
        let mut again = spawn(&config);
        started(&mut again).await;
        until_recorded(&pool, MESSAGES as i64, "the whole stream after the restart").await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_exactly_once(&pool, "kill").await;
        eprintln!("{recorded_at_kill} of {MESSAGES} were recorded when the service was killed");
        again.sigterm();
        assert!(
            again
                .wait_exit(Duration::from_secs(30))
                .is_some_and(|s| s.success())
        );
    })
    .await
    .expect("test timed out");
}

/// SIGTERM, and the service exits 0 within 30 s.
fn stops_cleanly(service: &mut support::Service) {
    service.sigterm();
    assert!(
        service
            .wait_exit(Duration::from_secs(30))
            .is_some_and(|s| s.success())
    );
}
