//! Gating end to end: Bodhi's real message published to RabbitMQ, the real
//! service process, the Koji, Testing Farm and dist-git stand-ins, and a
//! consumer written with the Python fedora-messaging library bound to
//! `org.centos.prod.ci.#`, which checks every CI message it receives against
//! the JSON schemas of tests/data/ci-messages. Also: the SIGKILL between a
//! result and its message, and a broker that is down for a minute.
//! `scripts/test` installs fedora-messaging and sets FCI_TEST_PYTHON.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;
use support::stack::{self, Stack};
use support::{PrivateRabbit, ProbeQueue, get_json, wait_until};

const TIMEOUT: Duration = Duration::from_secs(300);
const SHA: &str = "5b7e3a1d9f1c2e4b6a8d0c2e4f6a8b0d2c4e6f80";
const BODHI: &str = "bodhi.update.status.testing.koji-build-group.build.complete.json";
const GDB_TASK: i64 = 78_709_925;
const BINUTILS_TASK: i64 = 78_709_999;
/// The outbox publisher's lock (store::outbox::try_lock_publisher).
const PUBLISHER_LOCK: i64 = 0x6663_695f_6f75_7462;

fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// `tests/python/fm_ci_consume.py`: a fedora-messaging consumer of CI
/// messages, each checked against the schemas.
struct CiConsumer {
    child: Child,
    reader: tokio::task::JoinHandle<Vec<Value>>,
}

impl CiConsumer {
    /// Bound and ready; it stops after `count` messages (0: after
    /// `quiet_seconds` without one).
    fn start(amqp_url: &str, count: usize, quiet_seconds: u64) -> Self {
        let mut child = Command::new(support::python(
            "fedora_messaging, pika, jsonschema, ci_messages",
        ))
        .arg(support::python_script("fm_ci_consume.py"))
        .arg(amqp_url)
        .arg(repo_path("tests/data/ci-messages"))
        .arg(count.to_string())
        .arg(quiet_seconds.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run fm_ci_consume.py");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        assert_eq!(
            lines.next().and_then(Result::ok).as_deref(),
            Some("ready"),
            "the consumer did not bind"
        );
        let reader = tokio::task::spawn_blocking(move || {
            lines
                .map(|line| serde_json::from_str(&line.expect("a line")).expect("JSON"))
                .collect()
        });
        CiConsumer { child, reader }
    }

    /// What it received, once it has stopped.
    async fn finish(mut self) -> Vec<Value> {
        let messages = self.reader.await.expect("reader");
        let status = tokio::task::spawn_blocking(move || self.child.wait())
            .await
            .expect("join")
            .expect("wait");
        assert!(
            status.success(),
            "fm_ci_consume.py failed after {} messages",
            messages.len()
        );
        messages
    }
}

/// The real Bodhi message, with a fresh message id.
fn bodhi() -> Value {
    let mut message = stack::message(BODHI);
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    message
}

/// Koji's real COMPLETE message, as the official build of `nvr` from `SHA`.
fn official_build(build_id: i64, task_id: i64, nvr: &str, target: &str) -> Value {
    let mut message = stack::message("buildsys.build.state.change-complete.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    let mut parts = nvr.rsplitn(3, '-');
    let (release, version, name) = (
        parts.next().expect("release"),
        parts.next().expect("version"),
        parts.next().expect("name"),
    );
    let body = &mut message["body"];
    body["build_id"] = json!(build_id);
    body["task_id"] = json!(task_id);
    body["name"] = json!(name);
    body["version"] = json!(version);
    body["release"] = json!(release);
    body["owner"] = json!("kevinb");
    body["request"] = json!([
        format!("git+https://src.fedoraproject.org/rpms/{name}.git#{SHA}"),
        target,
        {}
    ]);
    message
}

/// The test a Testing Farm request runs, from its tmt repository.
fn test_of(request: &Value) -> String {
    let url = request["test"]["tmt"]["url"].as_str().unwrap_or_default();
    let task = request["environments"][0]["variables"]["KOJI_TASK_ID"]
        .as_str()
        .unwrap_or_default();
    let test = if url.contains("installability") {
        "installability"
    } else if url.contains("rpminspect") {
        "rpminspect"
    } else if url.contains("tmt-plans") {
        "rpmlint"
    } else if url.contains("src.fedoraproject.org/rpms/") {
        "custom"
    } else {
        url
    };
    format!("{test} {task}")
}

/// The requests Testing Farm received, by "<test> <task id>", once there
/// are `count`.
async fn requests(stack: &Stack, count: usize) -> BTreeMap<String, (String, Value)> {
    wait_until(
        Duration::from_secs(60),
        &format!("{count} Testing Farm requests"),
        || async {
            let ids = stack.testing_farm.request_ids();
            let bodies = stack.testing_farm.requests();
            (ids.len() >= count).then(|| {
                ids.into_iter()
                    .zip(bodies)
                    .map(|(id, body)| (test_of(&body), (id, body)))
                    .collect()
            })
        },
    )
    .await
}

/// The outbox: (test name, state, message id, published) in order.
async fn outbox(pool: &PgPool) -> Vec<(String, String, String, bool)> {
    sqlx::query_as(
        "SELECT r.test_name, reverse(split_part(reverse(o.topic), '.', 1)),
                o.message_id::text, o.published_at IS NOT NULL
         FROM outbox o JOIN test_runs r ON r.id = o.test_run_id ORDER BY o.id",
    )
    .fetch_all(pool)
    .await
    .expect("outbox")
}

async fn wait_for_outbox(
    pool: &PgPool,
    what: &str,
    check: impl Fn(&[(String, String, String, bool)]) -> bool,
) {
    wait_until(Duration::from_secs(60), what, || async {
        let rows = outbox(pool).await;
        check(&rows).then_some(())
    })
    .await;
}

/// Every message valid, and each test's states in order: queued, running,
/// then complete or error, each once.
fn assert_valid_and_in_order(messages: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut states: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for message in messages {
        // Decoded by the class the headers name, which validated the body.
        assert_eq!(
            message["decode_error"],
            Value::Null,
            "ci_messages.CIMessageV1 refused {}: {message:#}",
            message["topic"]
        );
        assert_eq!(message["class"], "ci_messages.schema.CIMessageV1");
        assert_eq!(
            message["schema_errors"],
            json!([]),
            "{} does not follow the CI message schema: {message:#}",
            message["topic"]
        );
        assert_eq!(message["delivery_mode"], 2);
        assert_eq!(message["content_type"], "application/json");
        let topic = message["topic"].as_str().expect("topic");
        assert!(
            topic.starts_with("org.centos.prod.ci.koji-build.test."),
            "{topic}"
        );
        let body = &message["body"];
        let key = format!(
            "{} {} {}",
            body["test"]["type"].as_str().unwrap_or_default(),
            body["artifact"]["id"],
            body["pipeline"]["id"].as_str().unwrap_or_default()
        );
        states
            .entry(key)
            .or_default()
            .push(topic.rsplit('.').next().unwrap_or_default().to_owned());
    }
    // Each state once, in Testing Farm's order, and one end at most: a run that completes
    // never errors as well.
    let allowed: [&[&str]; 6] = [
        &["queued"],
        &["queued", "running"],
        &["queued", "running", "complete"],
        &["queued", "running", "error"],
        &["queued", "complete"],
        &["queued", "error"],
    ];
    for (test, seen) in &states {
        assert!(
            allowed.iter().any(|sequence| sequence == seen),
            "{test}: states out of order, repeated or ending twice: {seen:?}"
        );
    }
    states
}

#[tokio::test(flavor = "multi_thread")]
async fn the_real_update_is_tested_and_its_ci_messages_reach_a_fedora_messaging_consumer() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        stack.distgit.set_file("rpms/gdb", SHA, ".fmf/version");
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        // Two rounds of four tests, three messages each.
        let consumer = CiConsumer::start(&stack.amqp_url, 24, 120);

        stack
            .publish(&official_build(1_854_854, GDB_TASK, "gdb-11.1-5.fc34", "f34-candidate"))
            .await;
        // The same message twice, and again with another id: one set of tests.
        let message = bodhi();
        stack.publish(&message).await;
        stack.publish(&message).await;
        stack.publish(&bodhi()).await;

        let first = requests(&stack, 4).await;
        let tests: Vec<&str> = first.keys().map(String::as_str).collect();
        assert_eq!(
            tests,
            [
                "custom 78709925",
                "installability 78709925",
                "rpminspect 78709925",
                "rpmlint 78709925"
            ]
        );
        let installability = &first["installability 78709925"].1;
        assert_eq!(
            installability["environments"][0]["os"]["compose"],
            "Fedora-34"
        );
        assert_eq!(
            installability["environments"][0]["tmt"]["context"]["trigger"],
            "build"
        );
        let custom = &first["custom 78709925"].1;
        assert_eq!(
            custom["test"]["tmt"],
            json!({"url": "https://src.fedoraproject.org/rpms/gdb.git", "ref": SHA})
        );
        assert_eq!(
            custom["environments"][0]["artifacts"],
            json!([{"id": "78709925", "type": "fedora-koji-build"}])
        );
        wait_for_outbox(&pool, "four queued messages published", |rows| {
            rows.iter().filter(|r| r.1 == "queued" && r.3).count() == 4
        })
        .await;

        // Testing Farm runs them; each state is read and said on the bus.
        for (id, _) in first.values() {
            stack.testing_farm.set_state(id, "running", None, None);
            stack.testing_farm.notify(id).await.expect("webhook");
        }
        wait_for_outbox(&pool, "four running messages", |rows| {
            rows.iter().filter(|r| r.1 == "running").count() == 4
        })
        .await;
        let outcomes = [
            ("installability 78709925", "complete", Some("passed")),
            ("rpminspect 78709925", "complete", Some("failed")),
            ("rpmlint 78709925", "error", Some("error")),
            ("custom 78709925", "complete", Some("passed")),
        ];
        for (test, state, result) in outcomes {
            let id = &first[test].0;
            stack
                .testing_farm
                .set_state(id, state, result, Some(&format!("{test}: {state}")));
            stack.testing_farm.notify(id).await.expect("webhook");
        }
        wait_for_outbox(&pool, "the first round's results", |rows| {
            rows.iter()
                .filter(|r| r.1 == "complete" || r.1 == "error")
                .count()
                == 4
        })
        .await;

        // A re-trigger: a new round of the same four tests.
        let mut retrigger = bodhi();
        retrigger["body"]["re-trigger"] = json!(true);
        retrigger["body"]["agent"] = json!("kevinb");
        stack.publish(&retrigger).await;
        wait_until(Duration::from_secs(60), "eight requests", || async {
            (stack.testing_farm.request_ids().len() >= 8).then_some(())
        })
        .await;
        let second: Vec<String> = stack.testing_farm.request_ids()[4..].to_vec();
        for id in &second {
            stack.testing_farm.set_state(id, "running", None, None);
            stack.testing_farm.notify(id).await.expect("webhook");
        }
        wait_for_outbox(&pool, "the second round running", |rows| {
            rows.iter().filter(|r| r.1 == "running").count() == 8
        })
        .await;
        for id in &second {
            stack
                .testing_farm
                .set_state(id, "complete", Some("passed"), Some("all passed"));
            stack.testing_farm.notify(id).await.expect("webhook");
        }

        let received = consumer.finish().await;
        assert_eq!(received.len(), 24);
        let states = assert_valid_and_in_order(&received);
        assert_eq!(states.len(), 8, "four tests, two rounds: {states:#?}");
        // Every message the consumer got is one the outbox wrote, once.
        stack.settle(&pool).await;
        let rows = outbox(&pool).await;
        assert_eq!(rows.len(), 24);
        assert!(rows.iter().all(|r| r.3), "all published");
        let mut ids: Vec<&str> = received.iter().filter_map(|m| m["id"].as_str()).collect();
        ids.sort_unstable();
        let mut written: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
        written.sort_unstable();
        assert_eq!(ids, written);
        assert_eq!(stack.testing_farm.request_ids().len(), 8);

        // What the first round said.
        let result_of = |test_type: &str| {
            received
                .iter()
                .find(|m| {
                    m["body"]["test"]["type"] == test_type
                        && m["topic"].as_str().is_some_and(|t| {
                            t.ends_with(".complete") || t.ends_with(".error")
                        })
                })
                .expect("a result")
                .clone()
        };
        let complete = result_of("installability");
        assert_eq!(complete["body"]["test"]["result"], "passed");
        assert_eq!(complete["body"]["test"]["namespace"], "fedora-ci.koji-build");
        assert_eq!(complete["body"]["artifact"]["id"], GDB_TASK);
        assert_eq!(complete["body"]["artifact"]["nvr"], "gdb-11.1-5.fc34");
        assert_eq!(complete["body"]["artifact"]["issuer"], "kevinb");
        assert_eq!(complete["headers"]["fedora_messaging_schema"], "ci_messages.CIMessageV1");
        // What a Fedora consumer (FMN, the datagrepper pages) shows of it.
        assert_eq!(
            complete["summary"],
            "CI: installability test of koji-build gdb-11.1-5.fc34 finished"
        );
        assert!(
            complete["body"]["run"]["url"]
                .as_str()
                .is_some_and(|u| u.contains("/artifacts/")),
            "{complete:#}"
        );
        assert_eq!(result_of("rpminspect")["body"]["test"]["result"], "failed");
        assert_eq!(
            result_of("tier0")["body"]["test"]["category"],
            "functional"
        );
        let error = result_of("rpmlint");
        assert!(error["topic"].as_str().expect("topic").ends_with(".error"));
        assert_eq!(error["body"]["error"]["reason"], "rpmlint 78709925: error");

        // The API shows why. Which of the two announcements of one round starts which test
        // depends on the order they are woken in when `.fmf/version` is known: each says what
        // it started, and one that started nothing says it found the round decided.
        let events = get_json(&format!(
            "{}/api/events?topic=org.fedoraproject.prod.bodhi.update.status.testing.koji-build-group.build.complete",
            stack.api()
        ))
        .await
        .expect("events");
        let events = events.as_array().expect("list");
        assert_eq!(events.len(), 3, "{events:#?}");
        for event in events {
            let reason = event["reason"].as_str().unwrap_or_default();
            match event["status"].as_str() {
                Some("processed") => assert!(reason.contains("submitting to Testing Farm"), "{event:#}"),
                Some("skipped") => assert!(reason.contains("already decided"), "{event:#}"),
                _ => panic!("decided, not failed: {event:#}"),
            }
        }
        let custom_starts = events
            .iter()
            .filter(|e| {
                e["reason"].as_str().is_some_and(|r| {
                    r.split("; ")
                        .any(|part| part.starts_with("custom") && part.contains("submitting"))
                })
            })
            .count();
        assert_eq!(custom_starts, 2, "custom started once in each round: {events:#?}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn several_builds_go_together_and_eln_and_oversize_updates_are_skipped() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        stack.distgit.set_file("rpms/gdb", SHA, ".fmf/version");
        // binutils' official build message was never seen: Koji is asked.
        stack.koji.insert_build(json!({
            "id": 1_854_860, "nvr": "binutils-2.37-10.fc34", "name": "binutils",
            "version": "2.37", "release": "10.fc34", "task_id": BINUTILS_TASK,
            "owner_name": "nickc", "state": 1,
            "source": format!("git+https://src.fedoraproject.org/rpms/binutils.git#{SHA}"),
        }));
        let _service = stack.spawn(&[]).await;
        let pool = stack.db.pool().await;
        let consumer = CiConsumer::start(&stack.amqp_url, 7, 120);

        stack
            .publish(&official_build(
                1_854_854,
                GDB_TASK,
                "gdb-11.1-5.fc34",
                "f34-candidate",
            ))
            .await;
        let mut eln = bodhi();
        eln["body"]["artifact"]["release"] = json!("eln");
        stack.publish(&eln).await;
        let mut oversize = bodhi();
        let build = oversize["body"]["artifact"]["builds"][0].clone();
        oversize["body"]["artifact"]["builds"] = Value::Array(vec![build; 21]);
        stack.publish(&oversize).await;
        let mut two = bodhi();
        two["body"]["artifact"]["id"] = json!("FEDORA-2021-53a7dfa185-two-builds");
        two["body"]["artifact"]["builds"]
            .as_array_mut()
            .expect("builds")
            .push(json!({
                "component": "binutils", "id": 1_854_860, "issuer": "nickc",
                "nvr": "binutils-2.37-10.fc34", "scratch": false, "task_id": BINUTILS_TASK,
                "type": "koji-build"
            }));
        stack.publish(&two).await;

        // gdb: four tests; binutils, without tmt plans: three.
        let all = requests(&stack, 7).await;
        let tests: Vec<&str> = all.keys().map(String::as_str).collect();
        assert_eq!(
            tests,
            [
                "custom 78709925",
                "installability 78709925",
                "installability 78709999",
                "rpminspect 78709925",
                "rpminspect 78709999",
                "rpmlint 78709925",
                "rpmlint 78709999",
            ]
        );
        assert_eq!(
            all["custom 78709925"].1["environments"][0]["artifacts"],
            json!([
                {"id": "78709925", "type": "fedora-koji-build"},
                {"id": "78709999", "type": "fedora-koji-build"},
            ])
        );
        assert_eq!(
            all["installability 78709999"].1["environments"][0]["artifacts"],
            json!([{"id": "78709925", "type": "fedora-koji-build", "install": false}])
        );
        let received = consumer.finish().await;
        assert_eq!(received.len(), 7, "one queued message per test");
        stack.settle(&pool).await;
        assert_eq!(stack.testing_farm.request_ids().len(), 7);
        assert_eq!(outbox(&pool).await.len(), 7, "and no other message");
        assert_valid_and_in_order(&received);
        let issuers: Vec<&str> = received
            .iter()
            .filter(|m| m["body"]["artifact"]["id"] == BINUTILS_TASK)
            .filter_map(|m| m["body"]["artifact"]["issuer"].as_str())
            .collect();
        assert_eq!(issuers, ["nickc"; 3]);

        // The skipped updates say why.
        for (message, phrase) in [
            (&eln, "release not enabled: eln"),
            (&oversize, "update too large: 21 builds"),
        ] {
            let id = message["id"].as_str().expect("id");
            let event = wait_until(Duration::from_secs(10), "the event", || async {
                let list = get_json(&format!(
                    "{}/api/events?topic={}",
                    stack.api(),
                    message["topic"].as_str().expect("topic")
                ))
                .await?;
                list.as_array()?
                    .iter()
                    .find(|e| e["message_id"] == id)
                    .cloned()
            })
            .await;
            assert_eq!(event["status"], "skipped", "{event:#}");
            assert!(
                event["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(phrase),
                "{phrase}: {event:#}"
            );
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_read_before_a_sigkill_is_published_once_after_the_restart() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let env = [("FEDORA_CI__GATING__TESTS", "installability")];
        let mut service = stack.spawn(&env).await;
        let pool = stack.db.pool().await;
        // Another publisher holds the outbox: nothing goes out for now.
        let mut holder = pool.acquire().await.expect("connection");
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(PUBLISHER_LOCK)
            .execute(&mut *holder)
            .await
            .expect("lock");

        stack
            .publish(&official_build(
                1_854_854,
                GDB_TASK,
                "gdb-11.1-5.fc34",
                "f34-candidate",
            ))
            .await;
        stack.publish(&bodhi()).await;
        let requests = requests(&stack, 1).await;
        let (id, _) = &requests["installability 78709925"];
        stack
            .testing_farm
            .set_state(id, "complete", Some("passed"), Some("all good"));
        stack.testing_farm.notify(id).await.expect("webhook");
        wait_for_outbox(&pool, "the result written", |rows| {
            rows.iter().any(|r| r.1 == "complete")
        })
        .await;
        let written = outbox(&pool).await;
        assert_eq!(written.len(), 3, "{written:?}");
        assert!(written.iter().all(|r| !r.3), "nothing published yet");

        // The result is read and its message written; the process dies
        // before publishing it.
        service.sigkill();
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(PUBLISHER_LOCK)
            .execute(&mut *holder)
            .await
            .expect("unlock");
        drop(holder);

        let consumer = CiConsumer::start(&stack.amqp_url, 3, 120);
        let probe = ProbeQueue::declare(&stack.amqp_url, None, &["org.centos.prod.ci.#"]).await;
        let _service = stack.spawn(&env).await;
        let received = consumer.finish().await;
        // Nothing more comes after the three.
        wait_for_outbox(&pool, "all marked published", |rows| {
            rows.iter().all(|r| r.3)
        })
        .await;
        stack.settle(&pool).await;
        let mut copies = 0;
        while probe.next(Duration::from_secs(2)).await.is_some() {
            copies += 1;
        }
        probe.close().await;
        assert_eq!(copies, 3, "each message reached the bus once");
        assert_valid_and_in_order(&received);
        let got: Vec<(&str, &str)> = received
            .iter()
            .map(|m| {
                (
                    m["topic"]
                        .as_str()
                        .unwrap_or_default()
                        .rsplit('.')
                        .next()
                        .unwrap_or_default(),
                    m["id"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        let expected: Vec<(&str, &str)> = written
            .iter()
            .map(|r| (r.1.as_str(), r.2.as_str()))
            .collect();
        assert_eq!(
            got, expected,
            "each message once, with the id it was written with"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_written_while_the_broker_is_down_for_a_minute_are_all_published() {
    tokio::time::timeout(TIMEOUT, async {
        let rabbit = tokio::task::spawn_blocking(PrivateRabbit::start)
            .await
            .expect("broker");
        let stack = Stack::start_on(&rabbit.amqp_url()).await;
        let probe = ProbeQueue::declare(
            &rabbit.amqp_url(),
            Some("ci-observer"),
            &["org.centos.prod.ci.#"],
        )
        .await;
        let env = [("FEDORA_CI__GATING__TESTS", "installability,rpminspect")];
        let _service = stack.spawn(&env).await;
        let pool = stack.db.pool().await;

        stack
            .publish(&official_build(1_854_854, GDB_TASK, "gdb-11.1-5.fc34", "f34-candidate"))
            .await;
        stack.publish(&bodhi()).await;
        let requests = requests(&stack, 2).await;
        wait_for_outbox(&pool, "two queued messages published", |rows| {
            rows.iter().filter(|r| r.3).count() == 2
        })
        .await;
        probe.close().await;

        let rabbit = std::sync::Arc::new(rabbit);
        let stopping = rabbit.clone();
        tokio::task::spawn_blocking(move || stopping.stop_app())
            .await
            .expect("stop");
        let down = Instant::now();
        // The tests run and end while the broker is away; the service reads
        // their results from Testing Farm (polls; no bus needed).
        for (id, _) in requests.values() {
            stack.testing_farm.set_state(id, "running", None, None);
        }
        wait_for_outbox(&pool, "running written", |rows| {
            rows.iter().filter(|r| r.1 == "running").count() == 2
        })
        .await;
        for (id, _) in requests.values() {
            stack
                .testing_farm
                .set_state(id, "complete", Some("passed"), Some("all good"));
        }
        wait_for_outbox(&pool, "results written", |rows| {
            rows.iter().filter(|r| r.1 == "complete").count() == 2
        })
        .await;
        let waiting = outbox(&pool).await;
        assert_eq!(waiting.iter().filter(|r| !r.3).count(), 4, "{waiting:?}");
        let attempts: i64 = sqlx::query_scalar("SELECT COALESCE(max(attempts), 0)::int8 FROM outbox")
            .fetch_one(&pool)
            .await
            .expect("attempts");
        if let Some(rest) = Duration::from_secs(60).checked_sub(down.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        let starting = rabbit.clone();
        tokio::task::spawn_blocking(move || starting.start_app())
            .await
            .expect("start");
        eprintln!(
            "broker down for {:.0} s; publish attempts on the first waiting message before: {attempts}",
            down.elapsed().as_secs_f64()
        );

        wait_for_outbox(&pool, "everything published", |rows| rows.iter().all(|r| r.3)).await;
        let probe = ProbeQueue::declare(
            &rabbit.amqp_url(),
            Some("ci-observer"),
            &["org.centos.prod.ci.#"],
        )
        .await;
        let mut ids = Vec::new();
        while let Some(delivery) = probe.next(Duration::from_secs(3)).await {
            let id = delivery
                .properties
                .message_id()
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            ids.push(id);
        }
        probe.close().await;
        let rows = outbox(&pool).await;
        let mut written: Vec<String> = rows.iter().map(|r| r.2.clone()).collect();
        written.sort();
        ids.sort();
        assert_eq!(ids, written, "every message, each once");
        assert_eq!(rows.len(), 6);
    })
    .await
    .expect("test timed out");
}
