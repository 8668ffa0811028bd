//! The service process against the local PostgreSQL and RabbitMQ: messages
//! published to the bus are recorded once, bad ones are recorded as dead, and
//! SIGTERM leaves nothing unrecorded.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{
    Service, field_table, fm_properties, fresh_database, fresh_vhost, get_json, publish_raw,
    service_config, wait_until,
};

const TIMEOUT: Duration = Duration::from_secs(120);

fn start(database_url: &str, amqp_url: &str) -> (Service, String) {
    let port = support::free_port();
    // Ingest only: the decider would move the events on from `received`.
    let service = Service::spawn(
        &service_config(database_url, amqp_url, port),
        &["run", "--consumer", "--api"],
    );
    (service, format!("http://127.0.0.1:{port}"))
}

async fn ready(api: &str) {
    wait_until(
        Duration::from_secs(60),
        "the service to be ready",
        || async { get_json(&format!("{api}/api/readyz")).await },
    )
    .await;
}

fn headers(topic_user: &str) -> Value {
    json!({
        "fedora_messaging_schema": "pagure.pull-request.new",
        "fedora_messaging_schema_package": "pagure_messages",
        "fedora_messaging_severity": 20,
        "sent-at": "2026-11-22T21:24:17+00:00",
        "priority": 0,
        format!("fedora_messaging_user_{topic_user}"): true,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_published_three_times_is_recorded_once() {
    tokio::time::timeout(TIMEOUT, async {
        let db = fresh_database().await;
        let vhost = fresh_vhost();
        let (_service, api) = start(&db.url, &vhost.amqp_url);
        ready(&api).await;

        let topic = "org.fedoraproject.prod.pagure.pull-request.new";
        let body = br#"{"agent": "zbyszek", "pullrequest": {"id": 2}}"#;
        for _ in 0..3 {
            publish_raw(
                &vhost.amqp_url,
                topic,
                fm_properties(
                    "f2924120-4a58-5fff-9100-2b7503797884",
                    field_table(&headers("zbyszek")),
                ),
                body,
            )
            .await;
        }
        let events = wait_until(
            Duration::from_secs(10),
            "the message in /api/events",
            || async {
                get_json(&format!("{api}/api/events"))
                    .await
                    .filter(|e| e.as_array().is_some_and(|a| !a.is_empty()))
            },
        )
        .await;
        let list = events.as_array().expect("a list");
        assert_eq!(
            list[0]["message_id"],
            "f2924120-4a58-5fff-9100-2b7503797884"
        );
        assert_eq!(list[0]["topic"], topic);
        assert_eq!(list[0]["status"], "received");
        // All three deliveries were taken and acknowledged, the copies too: none is waiting,
        // none is left unacknowledged to be redelivered. Only then count.
        wait_until(
            Duration::from_secs(15),
            "the queue drained, every delivery acknowledged",
            || async { vhost.drained().then_some(()) },
        )
        .await;
        let pool = db.pool().await;
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(count, 1);
        let detail = get_json(&format!(
            "{api}/api/events/f2924120-4a58-5fff-9100-2b7503797884"
        ))
        .await
        .expect("detail");
        assert_eq!(
            detail["body"],
            json!({"agent": "zbyszek", "pullrequest": {"id": 2}})
        );
        assert_eq!(detail["headers"]["fedora_messaging_severity"], 20);
        assert_eq!(detail["headers"]["fedora_messaging_user_zbyszek"], true);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_messages_are_dead_with_reasons_and_consumption_continues() {
    tokio::time::timeout(TIMEOUT, async {
        let db = fresh_database().await;
        let vhost = fresh_vhost();
        let (_service, api) = start(&db.url, &vhost.amqp_url);
        ready(&api).await;

        let topic = "org.fedoraproject.prod.buildsys.tag";
        let good_headers = field_table(&headers("nforro"));
        let large = {
            let mut body = b"{\"x\": \"".to_vec();
            body.resize(10 * 1024 * 1024, b'a');
            body.extend_from_slice(b"\"}");
            body
        };
        let poison: Vec<(&str, lapin::BasicProperties, Vec<u8>, &str)> = vec![
            (
                "bad-utf8",
                fm_properties("bad-utf8", good_headers.clone()),
                b"{\"a\": \"\xff\xfe\"}".to_vec(),
                "UTF-8",
            ),
            (
                "not-json",
                fm_properties("not-json", good_headers.clone()),
                b"this is not json".to_vec(),
                "not JSON",
            ),
            (
                "an-array",
                fm_properties("an-array", good_headers.clone()),
                b"[1, 2, 3]".to_vec(),
                "array",
            ),
            (
                "too-large",
                fm_properties("too-large", good_headers.clone()),
                large,
                "limit",
            ),
            // Python accepts these; PostgreSQL cannot store them as text or jsonb.
            (
                "nul-in-body",
                fm_properties("nul-in-body", good_headers.clone()),
                b"{\"a\": \"x\\u0000y\"}".to_vec(),
                "NUL character",
            ),
            (
                "nul-in-header",
                fm_properties(
                    "nul-in-header",
                    field_table(&serde_json::json!({"sent-at": "2024-06-20T15:04:24+00:00", "x": "a\u{0}b"})),
                ),
                b"{\"a\": 1}".to_vec(),
                "a header contains a NUL character",
            ),
            // Valid JSON that jsonb refuses: found only by the database, which
            // makes the writer record the batch's messages one by one.
            (
                "numeric-overflow",
                fm_properties("numeric-overflow", good_headers.clone()),
                b"{\"n\": 1e1000000}".to_vec(),
                "the database refused to store it",
            ),
        ];
        for (_, properties, body, _) in &poison {
            publish_raw(&vhost.amqp_url, topic, properties.clone(), body).await;
        }
        // Without AMQP headers, fedora-messaging still accepts a message (it logs an error):
        // so do we.
        publish_raw(
            &vhost.amqp_url,
            topic,
            lapin::BasicProperties::default().with_message_id("no-headers".into()),
            b"{\"a\": 1}",
        )
        .await;
        publish_raw(
            &vhost.amqp_url,
            topic,
            fm_properties("good-after", good_headers.clone()),
            b"{\"ok\": true}",
        )
        .await;

        let dead = wait_until(Duration::from_secs(20), "the poison recorded dead", || async {
            get_json(&format!("{api}/api/events?status=dead&per_page=100"))
                .await
                .filter(|e| e.as_array().is_some_and(|a| a.len() == poison.len()))
        })
        .await;
        for (id, _, _, reason) in &poison {
            let event = dead
                .as_array()
                .expect("list")
                .iter()
                .find(|e| e["message_id"] == *id)
                .unwrap_or_else(|| panic!("{id} is not listed as dead: {dead}"));
            let text = event["reason"].as_str().expect("a reason");
            assert!(
                text.contains(reason),
                "{id}: reason {text:?} should mention {reason:?}"
            );
        }
        let good = wait_until(
            Duration::from_secs(10),
            "the good message after the poison",
            || async { get_json(&format!("{api}/api/events/good-after")).await },
        )
        .await;
        assert_eq!(good["status"], "received");
        let bare = get_json(&format!("{api}/api/events/no-headers"))
            .await
            .expect("the message without headers is recorded");
        assert_eq!(bare["status"], "received", "{bare}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_zero_with_every_message_recorded() {
    tokio::time::timeout(TIMEOUT, async {
        let db = fresh_database().await;
        let vhost = fresh_vhost();
        let (mut service, api) = start(&db.url, &vhost.amqp_url);
        ready(&api).await;
        let messages: Vec<_> = (0..5000)
            .map(|i| {
                let id = format!("term-{i}");
                (
                    "org.fedoraproject.prod.buildsys.tag".to_owned(),
                    fm_properties(&id, field_table(&headers("x"))),
                    format!("{{\"n\": {i}}}").into_bytes(),
                )
            })
            .collect();
        support::publish_many(&vhost.amqp_url, messages).await;
        service.sigterm();
        let status = service
            .wait_exit(Duration::from_secs(30))
            .expect("the service exits within the grace period");
        assert!(status.success(), "exit status {status:?}");

        // What was not recorded before the exit is still on the queue: a
        // second run records the rest, and nothing is recorded twice.
        let (mut again, api) = start(&db.url, &vhost.amqp_url);
        ready(&api).await;
        let pool = db.pool().await;
        wait_until(
            Duration::from_secs(30),
            "all 5000 messages recorded",
            || {
                let pool = pool.clone();
                async move {
                    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
                        .fetch_one(&pool)
                        .await
                        .ok()?;
                    (n == 5000).then_some(())
                }
            },
        )
        .await;
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

/// Every real message of tests/data/bus/ goes out through `publish` and comes
/// back through the consumer with its topic, headers and body unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn real_messages_round_trip_through_publish_and_the_consumer() {
    tokio::time::timeout(TIMEOUT, async {
        let db = fresh_database().await;
        let vhost = fresh_vhost();
        let port = support::free_port();
        let config = service_config(&db.url, &vhost.amqp_url, port);
        let _service = Service::spawn(&config, &["run", "--consumer", "--api"]);
        ready(&format!("http://127.0.0.1:{port}")).await;

        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/bus");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("tests/data/bus")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        assert!(files.len() >= 17, "the real messages are there");
        let mut args = vec!["publish".to_owned()];
        args.extend(files.iter().map(|f| f.display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut publish = Service::spawn(&config, &args);
        let status = publish
            .wait_exit(Duration::from_secs(60))
            .expect("publish finishes");
        assert!(status.success(), "publish failed: {}", publish.log());

        let pool = db.pool().await;
        for file in &files {
            let text = std::fs::read_to_string(file).expect("read");
            let envelope = events::parse_serialized(&text).expect("parses")[0]
                .clone()
                .expect("a message");
            let id = envelope.id.as_str().to_owned();
            let row: (String, Value, Option<Value>, String) = wait_until(
                Duration::from_secs(10),
                &format!("{} recorded", file.display()),
                || {
                    let (pool, id) = (pool.clone(), id.clone());
                    async move {
                        sqlx::query_as(
                            "SELECT topic, headers, body, status FROM events WHERE message_id = $1",
                        )
                        .bind(&id)
                        .fetch_optional(&pool)
                        .await
                        .ok()
                        .flatten()
                    }
                },
            )
            .await;
            let name = file.display();
            assert_eq!(row.0, envelope.topic, "{name}: topic");
            assert_eq!(
                row.1,
                Value::Object(envelope.headers.clone()),
                "{name}: headers"
            );
            assert_eq!(
                row.2,
                Some(Value::Object(envelope.body.clone())),
                "{name}: body"
            );
            assert_eq!(row.3, "received", "{name}: status");
        }
    })
    .await
    .expect("test timed out");
}
