//! Tests of the shared integration-test support module itself.

mod support;

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use lapin::types::{AMQPValue, FieldTable};
use sqlx::{Connection, PgConnection};
use support::*;

/// Every test runs under a time limit, so a hung broker or server fails it.
async fn within<T>(limit: Duration, test: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, test)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {}s", limit.as_secs()))
}

#[tokio::test]
async fn fresh_database_is_empty_and_usable() {
    within(Duration::from_secs(60), async {
        let db = fresh_database().await;
        assert!(db.name.starts_with("fci_test_"), "{}", db.name);
        assert!(db.url.ends_with(&format!("/{}", db.name)), "{}", db.url);

        let mut conn = PgConnection::connect(&db.url).await.expect("connect");
        let current: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&mut conn)
            .await
            .expect("current_database");
        assert_eq!(current, db.name);
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("count tables");
        assert_eq!(tables, 0, "a fresh database has no tables");

        sqlx::raw_sql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);")
            .execute(&mut conn)
            .await
            .expect("create and fill a table");
        let sum: i64 = sqlx::query_scalar("SELECT sum(id) FROM t")
            .fetch_one(&mut conn)
            .await
            .expect("sum");
        assert_eq!(sum, 3);

        // A second one is a different database.
        let other = fresh_database().await;
        assert_ne!(other.name, db.name);
        let pool = other.pool().await;
        let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('t')::text")
            .fetch_one(&pool)
            .await
            .expect("to_regclass");
        assert_eq!(exists, None, "databases do not share tables");
    })
    .await
}

#[tokio::test]
async fn fresh_vhost_has_its_own_amq_topic() {
    within(Duration::from_secs(90), async {
        let a = fresh_vhost();
        let b = fresh_vhost();
        assert!(a.name.starts_with("fci_test_"), "{}", a.name);
        assert_eq!(
            a.amqp_url,
            format!("amqp://guest:guest@127.0.0.1:5672/{}", a.name)
        );

        let probe_a = ProbeQueue::declare(&a.amqp_url, None, &["org.fedoraproject.#"]).await;
        let probe_b = ProbeQueue::declare(&b.amqp_url, None, &["#"]).await;

        let headers = field_table(&serde_json::json!({
            "fedora_messaging_schema": "base.message",
            "fedora_messaging_severity": 20,
            "fedora_messaging_user_alice": true,
            "sent-at": "2024-01-01T00:00:00+00:00",
        }));
        let body = br#"{"hello": "world"}"#;
        publish_raw(
            &a.amqp_url,
            "org.fedoraproject.prod.test.message",
            fm_properties("msg-1", headers),
            body,
        )
        .await;

        let delivery = probe_a
            .next(Duration::from_secs(10))
            .await
            .expect("the message reached the queue bound to amq.topic");
        assert_eq!(delivery.data, body);
        assert_eq!(
            delivery.routing_key.as_str(),
            "org.fedoraproject.prod.test.message"
        );
        let props = &delivery.properties;
        assert_eq!(
            props.message_id().as_ref().map(|s| s.as_str()),
            Some("msg-1")
        );
        assert_eq!(props.delivery_mode(), &Some(2));
        assert_eq!(
            props.content_type().as_ref().map(|s| s.as_str()),
            Some("application/json")
        );
        let got_headers: &FieldTable = props.headers().as_ref().expect("headers");
        assert_eq!(
            got_headers.inner().get("fedora_messaging_severity"),
            Some(&AMQPValue::LongLongInt(20))
        );
        assert_eq!(
            got_headers.inner().get("fedora_messaging_user_alice"),
            Some(&AMQPValue::Boolean(true))
        );

        // The other vhost's amq.topic saw nothing.
        assert!(probe_b.next(Duration::from_millis(300)).await.is_none());

        // publish_many pipelines confirms; everything arrives.
        let n = 3000;
        let started = Instant::now();
        let published = publish_many(
            &a.amqp_url,
            (0..n).map(|i| {
                (
                    format!("org.fedoraproject.prod.bulk.{i}"),
                    fm_properties(&format!("bulk-{i}"), FieldTable::default()),
                    format!("{{\"n\": {i}}}").into_bytes(),
                )
            }),
        )
        .await;
        eprintln!(
            "publish_many: {n} messages confirmed in {:.2}s",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(published, n);
        let count = wait_until(
            Duration::from_secs(10),
            "all bulk messages queued",
            || async {
                let c = probe_a.message_count().await;
                (c as usize == n).then_some(c)
            },
        )
        .await;
        assert_eq!(count as usize, n);

        probe_a.close().await;
        probe_b.close().await;
    })
    .await
}

#[tokio::test]
async fn private_postgres_survives_stop_and_start_again() {
    within(Duration::from_secs(120), async {
        let pg = PrivatePostgres::start();
        assert!(pg.url().contains(&format!(":{}/", pg.port())));

        let mut conn = PgConnection::connect(&pg.url()).await.expect("connect");
        sqlx::raw_sql("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before stop');")
            .execute(&mut conn)
            .await
            .expect("write before stop");
        drop(conn);

        pg.stop();
        let refused = PgConnection::connect(&pg.url()).await;
        assert!(refused.is_err(), "a stopped server refuses connections");

        pg.start_again();
        let mut conn = PgConnection::connect(&pg.url())
            .await
            .expect("connect after start_again");
        let v: String = sqlx::query_scalar("SELECT v FROM kept")
            .fetch_one(&mut conn)
            .await
            .expect("read after restart");
        assert_eq!(v, "before stop");
        drop(conn);

        // A crash-like stop recovers too, and fresh_database_at works on it.
        pg.stop_immediate();
        pg.start_again();
        let db = fresh_database_at(&pg.url()).await;
        let mut conn = PgConnection::connect(&db.url)
            .await
            .expect("connect to a database on the private server");
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut conn)
            .await
            .expect("select");
        assert_eq!(one, 1);
    })
    .await
}

#[tokio::test]
async fn private_rabbit_survives_stop_app_and_start_app() {
    within(Duration::from_secs(240), async {
        let rabbit = PrivateRabbit::start();
        eprintln!(
            "private RabbitMQ start took {:.2}s",
            rabbit.startup_time().as_secs_f64()
        );
        assert_ne!(rabbit.port(), 5672);
        assert_eq!(
            rabbit.amqp_url(),
            format!("amqp://guest:guest@127.0.0.1:{}/%2f", rabbit.port())
        );

        let probe = ProbeQueue::declare(&rabbit.amqp_url(), Some("kept"), &["test.#"]).await;
        publish_raw(
            &rabbit.amqp_url(),
            "test.one",
            fm_properties("one", FieldTable::default()),
            b"{}",
        )
        .await;
        probe.close().await;

        rabbit.stop_app();
        let url = rabbit.amqp_url();
        let refused = tokio::time::timeout(
            Duration::from_secs(10),
            lapin::Connection::connect(&url, lapin::ConnectionProperties::default()),
        )
        .await;
        assert!(
            matches!(refused, Ok(Err(_))),
            "a stopped app refuses AMQP connections"
        );

        rabbit.start_app();
        publish_raw(
            &rabbit.amqp_url(),
            "test.two",
            fm_properties("two", FieldTable::default()),
            b"{}",
        )
        .await;
        let probe = ProbeQueue::declare(&rabbit.amqp_url(), Some("kept"), &["test.#"]).await;
        assert_eq!(
            probe.message_count().await,
            2,
            "the durable queue kept the persistent message"
        );
        let listed = rabbit.ctl(&["list_queues", "-q", "name", "messages"]);
        assert!(listed.contains("kept"), "{listed}");
        probe.close().await;
    })
    .await
}

#[tokio::test]
#[should_panic(expected = "timed out after 0.2s waiting for the impossible")]
async fn wait_until_times_out_with_a_clear_message() {
    within(Duration::from_secs(10), async {
        let started = Instant::now();
        let result: () = wait_until(Duration::from_millis(200), "the impossible", || async {
            assert!(started.elapsed() < Duration::from_secs(5), "kept polling");
            None
        })
        .await;
        result
    })
    .await
}

#[tokio::test]
async fn wait_until_returns_the_first_value() {
    within(Duration::from_secs(10), async {
        let mut calls = 0;
        let started = Instant::now();
        let got = wait_until(Duration::from_secs(5), "the third call", || {
            calls += 1;
            let n = calls;
            async move { (n >= 3).then_some(n * 10) }
        })
        .await;
        assert_eq!(got, 30);
        // Two 50 ms pauses between three calls.
        assert!(started.elapsed() >= Duration::from_millis(100));
    })
    .await
}

#[tokio::test]
async fn service_runs_the_binary_with_a_config_file() {
    within(Duration::from_secs(60), async {
        // What the binary does with `--help` is up to the service; it must exit.
        let mut service = Service::spawn("[database]\n", &["--help"]);
        let status = service.wait_exit_async(Duration::from_secs(30)).await;
        assert!(status.is_some(), "log:\n{}", service.log());
        assert!(!service.is_running());
    })
    .await
}

#[tokio::test]
async fn service_signals_logs_and_exit_status() {
    within(Duration::from_secs(60), async {
        let sh = Path::new("/bin/sh");
        let script = "echo started; echo to-stderr >&2; \
                      trap 'echo got-term; exit 3' TERM; \
                      while :; do sleep 0.05; done";
        let mut service = Service::spawn_program(sh, &["-c", script], &[]);
        service
            .wait_for_log("started", Duration::from_secs(10))
            .await;
        assert!(service.is_running());
        service.sigterm();
        let status = service
            .wait_exit_async(Duration::from_secs(10))
            .await
            .expect("exits on SIGTERM");
        assert_eq!(status.code(), Some(3));
        let log = service.log();
        assert!(log.contains("to-stderr"), "stderr is captured: {log}");
        assert!(log.contains("got-term"), "{log}");

        let mut stubborn =
            Service::spawn_program(sh, &["-c", "trap '' TERM; echo up; exec sleep 30"], &[]);
        stubborn.wait_for_log("up", Duration::from_secs(10)).await;
        stubborn.sigterm();
        assert_eq!(stubborn.wait_exit(Duration::from_millis(300)), None);
        stubborn.sigkill();
        assert!(!stubborn.is_running());
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(stubborn.exit_status().and_then(|s| s.signal()), Some(9));

        let env = Service::spawn_program(
            sh,
            &["-c", "echo \"RUST_LOG=$RUST_LOG X=$X\""],
            &[("X", "y")],
        );
        let mut env = env;
        env.wait_exit(Duration::from_secs(10)).expect("exits");
        let expected = match std::env::var("RUST_LOG") {
            Ok(v) => format!("RUST_LOG={v} X=y"),
            Err(_) => "RUST_LOG=info X=y".to_string(),
        };
        assert!(env.log().contains(&expected), "{}", env.log());
    })
    .await
}

/// Drop of a Service during a panic prints the log tail (see the test's stderr)
/// and kills the process without a second panic.
#[tokio::test]
#[should_panic(expected = "deliberate failure")]
async fn service_drop_on_a_failing_test_prints_its_log() {
    within(Duration::from_secs(30), async {
        let mut service = Service::spawn_program(
            Path::new("/bin/sh"),
            &["-c", "echo marker-line-for-drop; exec sleep 30"],
            &[],
        );
        service
            .wait_for_log("marker-line-for-drop", Duration::from_secs(10))
            .await;
        panic!("deliberate failure");
    })
    .await
}
