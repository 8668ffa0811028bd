//! Hostile input against the real service process, the local RabbitMQ and
//! PostgreSQL (docs/operations.md, "Hostile input"; the inputs of the
//! December 2026 security review and variants of them).
//!
//! For every input: the process stays up, `GET /api/healthz` answers within
//! a second the whole time, the input is recorded `dead` or refused with its
//! reason, and an ordinary message published right after it is decided.
//! Deep headers are published with pika (`tests/python/hostile_publish.py`),
//! as any client of the broker could.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::stack::{self, Stack};
use support::{Service, field_table, fm_properties, get_json, publish_raw, wait_until};

const TIMEOUT: Duration = Duration::from_secs(300);
/// Where the hostile messages go: a topic no handler reads, so that an
/// accepted one ends `skipped` and a refused one `dead`.
const HOSTILE_TOPIC: &str = "org.fedoraproject.prod.hostile.probe";

/// `GET /api/healthz` every 100 ms until dropped; what it saw.
struct HealthWatch {
    stop: Arc<AtomicBool>,
    handle: Option<tokio::task::JoinHandle<HealthReport>>,
}

#[derive(Debug, Default)]
struct HealthReport {
    asked: u32,
    slowest: Duration,
    failures: Vec<String>,
}

impl HealthWatch {
    fn start(api: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let url = format!("{api}/api/healthz");
        let flag = stop.clone();
        let handle = tokio::spawn(async move {
            // A new connection for each call, as OpenShift's probes make
            // them: the answer measures the service, not the fate of one
            // kept-alive connection among the hundreds the test holds.
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(1))
                .pool_max_idle_per_host(0)
                .build()
                .expect("client");
            let mut report = HealthReport::default();
            while !flag.load(Ordering::Relaxed) {
                let started = Instant::now();
                let answer = client.get(&url).send().await;
                let took = started.elapsed();
                report.asked += 1;
                report.slowest = report.slowest.max(took);
                match answer {
                    Ok(response) if response.status().is_success() => {}
                    Ok(response) => report
                        .failures
                        .push(format!("{} after {took:?}", response.status())),
                    Err(error) => report.failures.push(format!("{error} after {took:?}")),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            report
        });
        HealthWatch {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops watching; panics unless every answer came, 200, within a second.
    async fn check(mut self) -> HealthReport {
        self.stop.store(true, Ordering::Relaxed);
        let report = self
            .handle
            .take()
            .expect("not checked twice")
            .await
            .expect("the watcher ran");
        assert!(
            report.failures.is_empty() && report.slowest < Duration::from_secs(1),
            "/api/healthz did not always answer within 1 s: {report:?}"
        );
        assert!(report.asked > 0, "the watcher never asked");
        report
    }
}

/// The service's status line values from /proc (kB).
fn proc_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("the service (pid {pid}) is gone: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

async fn event(api: &str, message_id: &str) -> Option<Value> {
    get_json(&format!(
        "{api}/api/events/{}",
        support::percent_encode(message_id)
    ))
    .await
}

/// Waits until the event is recorded with a status other than `received`.
async fn decided(api: &str, message_id: &str) -> Value {
    wait_until(
        Duration::from_secs(30),
        &format!("event {message_id} to be recorded and decided"),
        || async {
            event(api, message_id)
                .await
                .filter(|e| e["status"] != "received")
        },
    )
    .await
}

async fn assert_dead(api: &str, message_id: &str, reason: &str) -> Value {
    let event = decided(api, message_id).await;
    assert_eq!(event["status"], "dead", "{message_id}: {event}");
    let text = event["reason"].as_str().unwrap_or_default();
    assert!(
        text.contains(reason),
        "{message_id}: reason {text:?} does not say {reason:?}"
    );
    event
}

/// A real pull request, as a new message: decided as any would be.
async fn ordinary_is_decided(stack: &Stack, api: &str, label: &str) {
    let mut message = stack::message("pagure.pull-request.new-fork.json");
    let id = format!("ordinary-after-{label}-{}", uuid::Uuid::new_v4());
    message["id"] = json!(id);
    stack.publish(&message).await;
    let event = decided(api, &id).await;
    assert!(
        event["status"] == "processed" || event["status"] == "skipped",
        "the ordinary message after {label} was not decided normally: {event}"
    );
}

fn usual_headers() -> Value {
    json!({
        "fedora_messaging_schema": "base.message",
        "fedora_messaging_severity": 20,
        "sent-at": "2026-12-07T10:00:00+00:00",
    })
}

/// Publishes with pika; `shape` and `size` as hostile_publish.py takes them.
fn publish_with_pika(amqp_url: &str, message_id: &str, shape: &str, size: &str, body: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, body).expect("write the body");
    let output = Command::new(support::python("pika"))
        .arg(support::python_script("hostile_publish.py"))
        .args([amqp_url, HOSTILE_TOPIC, message_id, shape, size])
        .arg(&body_file)
        .output()
        .expect("run hostile_publish.py");
    assert!(
        output.status.success(),
        "publishing {shape} {size} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_of_any_shape_never_stop_the_consumer() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let mut service = stack.spawn(&[]).await;
        let api = stack.api();
        let pid = service.pid();
        let watch = HealthWatch::start(&api);

        // (shape, size, None when accepted, else what the reason says)
        let cases: &[(&str, &str, Option<&str>)] = &[
            // The review's crash: 1,000 nested tables.
            (
                "tables",
                "1000",
                Some("headers nest 1001 levels deep, over the limit of 32"),
            ),
            // The deepest that fits in one 128 KiB frame, of each kind.
            ("tables", "max", Some("levels deep, over the limit of 32")),
            ("arrays", "max", Some("levels deep, over the limit of 32")),
            ("mixed", "max", Some("levels deep, over the limit of 32")),
            // At and just over the limit: the header table is level 1.
            ("tables", "31", None),
            (
                "tables",
                "32",
                Some("headers nest 33 levels deep, over the limit of 32"),
            ),
            ("arrays", "31", None),
            // Wide, long and large, but flat: a message like any other.
            ("wide", "max", None),
            ("names", "max", None),
            ("value", "max", None),
            // None at all: fedora-messaging accepts it (and logs an error), so do we.
            ("none", "0", None),
        ];
        for (shape, size, refused) in cases {
            let id = format!("hostile-headers-{shape}-{size}");
            publish_with_pika(&stack.amqp_url, &id, shape, size, br#"{"a": 1}"#);
            match refused {
                Some(reason) => {
                    let event = assert_dead(&api, &id, reason).await;
                    assert_eq!(
                        event["headers"],
                        json!({}),
                        "{id}: deep headers are not kept"
                    );
                }
                None => {
                    let event = decided(&api, &id).await;
                    assert_eq!(event["status"], "skipped", "{id}: {event}");
                }
            }
            ordinary_is_decided(&stack, &api, &id).await;
            assert!(service.is_running(), "the service died after {id}");
        }
        let report = watch.check().await;
        assert_eq!(service.pid(), pid);
        assert!(service.is_running());
        eprintln!(
            "headers: healthz asked {} times, slowest {:?}; service VmHWM {} kB, VmRSS {} kB",
            report.asked,
            report.slowest,
            proc_kb(pid, "VmHWM:"),
            proc_kb(pid, "VmRSS:")
        );
    })
    .await
    .expect("test timed out");
}

/// `{"a": [[[…]]]}` nesting `depth` levels in all (the object is level 1).
fn nested_arrays(depth: usize) -> Vec<u8> {
    let inner = depth - 1;
    format!("{{\"a\": {}1{}}}", "[".repeat(inner), "]".repeat(inner)).into_bytes()
}

fn nested_objects(depth: usize) -> Vec<u8> {
    let mut text = "{\"a\": ".repeat(depth);
    text.push('1');
    text.push_str(&"}".repeat(depth));
    text.into_bytes()
}

/// A JSON object of exactly `size` bytes.
fn object_of_size(size: usize) -> Vec<u8> {
    let mut text = String::from("{\"pad\": \"");
    let end = "\"}";
    text.push_str(&"x".repeat(size - text.len() - end.len()));
    text.push_str(end);
    assert_eq!(text.len(), size);
    text.into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_the_decider_could_not_read_are_refused_at_the_door() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let mut service = stack.spawn(&[]).await;
        let api = stack.api();
        let watch = HealthWatch::start(&api);
        let limit = 1_048_576;
        let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
            // The review's halt: 150 nested arrays, about 300 bytes.
            (
                "arrays-150",
                nested_arrays(150),
                Some("body nests 150 levels deep, over the limit of 64"),
            ),
            ("arrays-64", nested_arrays(64), None),
            (
                "arrays-65",
                nested_arrays(65),
                Some("body nests 65 levels deep"),
            ),
            ("objects-64", nested_objects(64), None),
            (
                "objects-65",
                nested_objects(65),
                Some("body nests 65 levels deep"),
            ),
            (
                "objects-100000",
                nested_objects(100_000),
                Some("body nests 100000 levels deep"),
            ),
            // The review's deepest: valid, and 300,001 levels deep.
            (
                "arrays-300001",
                nested_arrays(300_001),
                Some("body nests 300001 levels deep"),
            ),
            ("at-the-size-limit", object_of_size(limit), None),
            (
                "one-byte-over",
                object_of_size(limit + 1),
                Some("over the 1048576-byte limit"),
            ),
            (
                "ten-megabytes",
                object_of_size(10 * limit),
                Some("body is 10485760 bytes"),
            ),
            (
                "not-utf-8",
                b"{\"a\": \"\xff\"}".to_vec(),
                Some("not valid UTF-8"),
            ),
            ("nul", br#"{"a": "\u0000"}"#.to_vec(), Some("NUL character")),
            ("array", b"[1, 2]".to_vec(), Some("body is a JSON array")),
        ];
        for (label, body, refused) in cases {
            let id = format!("hostile-body-{label}");
            publish_raw(
                &stack.amqp_url,
                HOSTILE_TOPIC,
                fm_properties(&id, field_table(&usual_headers())),
                &body,
            )
            .await;
            match refused {
                Some(reason) => {
                    assert_dead(&api, &id, reason).await;
                }
                None => {
                    let event = decided(&api, &id).await;
                    assert_eq!(event["status"], "skipped", "{id}: {event}");
                }
            }
            ordinary_is_decided(&stack, &api, label).await;
            assert!(service.is_running(), "the service died after {label}");
        }
        watch.check().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_row_that_cannot_be_read_back_blocks_nothing() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let mut service = stack.spawn(&[]).await;
        let api = stack.api();
        let pool = stack.db.pool().await;
        // As a row recorded before ingest refused deep bodies and headers
        // would be: PostgreSQL stores them; serde_json cannot read them back.
        let deep = String::from_utf8(nested_arrays(150)).expect("utf-8");
        for (id, headers, body) in [
            ("unreadable-body", "{}".to_owned(), deep.clone()),
            (
                "unreadable-headers",
                format!("{{\"h\": {deep}}}"),
                "{}".to_owned(),
            ),
        ] {
            sqlx::query(
                "INSERT INTO events (message_id, topic, headers, body, body_size, source, status)
                 VALUES ($1, $2, $3::jsonb, $4::jsonb, 300, 'bus', 'received')",
            )
            .bind(id)
            .bind(HOSTILE_TOPIC)
            .bind(headers)
            .bind(body)
            .execute(&pool)
            .await
            .expect("insert a row");
        }
        // Events behind it are decided.
        ordinary_is_decided(&stack, &api, "an unreadable row").await;
        let failed: (String, Option<String>) = sqlx::query_as(
            "SELECT status, reason FROM events WHERE message_id = 'unreadable-body'",
        )
        .fetch_one(&pool)
        .await
        .expect("the row");
        assert_eq!(failed.0, "failed");
        assert!(
            failed.1.as_deref().is_some_and(|r| r.contains("cannot be read back")
                && r.contains("recursion limit")),
            "{failed:?}"
        );
        // The API says what is wrong with such a row.
        for id in ["unreadable-body", "unreadable-headers"] {
            let response = reqwest::get(format!("{api}/api/events/{id}"))
                .await
                .expect("answer");
            assert_eq!(response.status(), 500, "{id}");
            let body: Value = response.json().await.expect("a JSON error");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(
                error.contains(id) && error.contains("cannot be read back"),
                "{id}: {error}"
            );
            assert!(!error.contains("database did not answer"), "{error}");
        }
        assert!(service.is_running());
    })
    .await
    .expect("test timed out");
}

/// Opens a connection and sends `bytes`, then keeps it open.
fn hold(port: u16, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.write_all(bytes).expect("send");
    stream
}

/// Whether the server closes the connection within `within` (read gives EOF or a reset).
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream.set_read_timeout(Some(within)).expect("read timeout");
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(_) => return Some(started.elapsed()),
        }
    }
}

/// One request on its own connection; the status and the body.
fn raw_request(port: u16, request: &str) -> (u16, String) {
    let mut stream = hold(port, request.as_bytes());
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_oversized_requests_cost_little_and_end() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let service = stack.spawn(&[("FEDORA_CI__API__HEADER_TIMEOUT_SECONDS", "5"), ("FEDORA_CI__API__BODY_TIMEOUT_SECONDS", "5")]).await;
        let api = stack.api();
        let port = stack.port;
        let pid = service.pid();
        // Settle the allocator and the pools with a few ordinary requests.
        for _ in 0..20 {
            get_json(&format!("{api}/api/events")).await.expect("events");
        }
        let before = proc_kb(pid, "VmRSS:");
        let watch = HealthWatch::start(&api);

        // The review's M2: a body announced at 2 MB is refused on its
        // Content-Length, before any of it is read.
        let (status, body) = tokio::task::spawn_blocking(move || {
            raw_request(
                port,
                "POST /api/testing-farm/results HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: 2090000\r\nConnection: close\r\n\r\n{\"request_id\": \"",
            )
        })
        .await
        .expect("request");
        assert_eq!(status, 413, "{body}");
        assert!(body.contains("\"error\""), "a JSON error: {body}");

        // 100 webhook bodies that stall after 3 KB (chunked: no length to
        // refuse them on), and 300 connections that stall in their request line.
        let held = tokio::task::spawn_blocking(move || {
            let mut held = Vec::new();
            for _ in 0..100 {
                let mut stream = hold(
                    port,
                    b"POST /api/testing-farm/results HTTP/1.1\r\nHost: x\r\n\
                      Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nbb8\r\n",
                );
                stream.write_all(&[b' '; 3000]).expect("send part of the body");
                held.push(stream);
            }
            for _ in 0..300 {
                held.push(hold(port, b"GET /api/heal"));
            }
            held
        })
        .await
        .expect("connections");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let during = proc_kb(pid, "VmRSS:");
        let peak = proc_kb(pid, "VmHWM:");
        get_json(&format!("{api}/api/healthz"))
            .await
            .expect("healthz answers while they are held");
        // The server ends every one of them by itself: the head and body timeouts.
        let closed = tokio::task::spawn_blocking(move || {
            held.into_iter()
                .map(|mut stream| closed_by_server(&mut stream, Duration::from_secs(15)))
                .collect::<Vec<_>>()
        })
        .await
        .expect("waiting for the server to close them");
        let open = closed.iter().filter(|c| c.is_none()).count();
        assert_eq!(open, 0, "connections the server did not close within 15 s");
        // The allocator gives freed memory back to the system after a while.
        let closed_at = Instant::now();
        let after = wait_until(
            Duration::from_secs(30),
            "memory to come back within 20% of where it started",
            || async {
                let now = proc_kb(pid, "VmRSS:");
                ((now as f64) < before as f64 * 1.2).then_some(now)
            },
        )
        .await;
        eprintln!(
            "400 held connections: VmRSS {before} kB before, {during} kB while held, \
             {after} kB {:.1} s after they closed; VmHWM {peak} kB",
            closed_at.elapsed().as_secs_f64()
        );
        assert!(peak < 150 * 1024, "peak RSS {peak} kB");

        // An idle keep-alive connection is closed after the head timeout too.
        let idle = tokio::task::spawn_blocking(move || {
            let mut stream = hold(port, b"GET /api/healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut first = [0u8; 256];
            let _ = stream.read(&mut first);
            closed_by_server(&mut stream, Duration::from_secs(15))
        })
        .await
        .expect("idle");
        assert!(idle.is_some(), "an idle keep-alive connection stayed open");

        // Errors of every kind are the API's JSON errors.
        let client = reqwest::Client::new();
        for (method, path, status) in [
            ("GET", "/api/events/%00", 400),
            ("GET", "/api/events?topic=%00", 400),
            ("GET", "/api/projects/%00/a/b/prs", 400),
            ("GET", "/api/events?page=1002&per_page=100", 400),
            ("PUT", "/api/jobs", 405),
            ("GET", "/api/nothing-here", 404),
        ] {
            let response = client
                .request(method.parse().expect("method"), format!("{api}{path}"))
                .send()
                .await
                .expect("answer");
            assert_eq!(response.status(), status, "{method} {path}");
            let body: Value = response.json().await.unwrap_or_else(|e| panic!("{method} {path}: not JSON: {e}"));
            assert!(body["error"].is_string(), "{method} {path}: {body}");
        }
        // A NUL in a webhook's request id is refused, not a database error.
        let response = client
            .post(format!("{api}/api/testing-farm/results"))
            .json(&json!({"request_id": "a\u{0}b", "token": stack::WEBHOOK_TOKEN}))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 400);
        // A chunked webhook body over 4 KiB: 413, as JSON.
        let (status, body) = tokio::task::spawn_blocking(move || {
            let chunk = " ".repeat(5000);
            raw_request(
                port,
                &format!(
                    "POST /api/testing-farm/results HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                     Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
                    chunk.len()
                ),
            )
        })
        .await
        .expect("request");
        assert_eq!(status, 413, "{body}");
        assert!(body.contains("\"error\""), "{body}");
        let report = watch.check().await;
        eprintln!("healthz asked {} times, slowest {:?}", report.asked, report.slowest);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_cap_are_closed_and_the_rest_served() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack
            .spawn(&[("FEDORA_CI__API__MAX_CONNECTIONS", "50")])
            .await;
        let port = stack.port;
        let api = stack.api();
        let (held, refused) = tokio::task::spawn_blocking(move || {
            let held: Vec<TcpStream> = (0..50).map(|_| hold(port, b"GET /api/heal")).collect();
            // Once the server has taken all 50 (on a busy machine that can
            // take a moment), the next one is closed at once.
            let mut refused = None;
            for _ in 0..20 {
                let mut extra = hold(port, b"GET /api/healthz HTTP/1.1\r\nHost: x\r\n\r\n");
                let mut answer = [0u8; 16];
                extra
                    .set_read_timeout(Some(Duration::from_secs(1)))
                    .expect("read timeout");
                let closed = match extra.read(&mut answer) {
                    Ok(n) => n == 0,
                    Err(e) => !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                };
                if closed {
                    refused = Some(());
                    break;
                }
                // Answered (not all 50 taken yet) or still waiting: again.
            }
            (held, refused)
        })
        .await
        .expect("connections");
        assert!(refused.is_some(), "a connection over the cap was kept");
        drop(held);
        wait_until(
            Duration::from_secs(5),
            "healthz after the held connections closed",
            || async { get_json(&format!("{api}/api/healthz")).await },
        )
        .await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn routing_keys_made_up_by_a_publisher_make_no_new_series() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let api = stack.api();
        let messages = (0..300).map(|i| {
            (
                format!("org.fedoraproject.prod.pagure.pull-request.made-up-{i}-{}", uuid::Uuid::new_v4()),
                fm_properties(&format!("made-up-{i}"), field_table(&usual_headers())),
                br#"{"a": 1}"#.to_vec(),
            )
        });
        support::publish_many(&stack.amqp_url, messages).await;
        let pool = stack.db.pool().await;
        wait_until(Duration::from_secs(60), "the 300 messages decided", || async {
            let left: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM events WHERE message_id LIKE 'made-up-%' AND status = 'received'",
            )
            .fetch_one(&pool)
            .await
            .ok()?;
            let all: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE message_id LIKE 'made-up-%'")
                .fetch_one(&pool)
                .await
                .ok()?;
            (all == 300 && left == 0).then_some(())
        })
        .await;
        let metrics = reqwest::get(format!("{api}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let series: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("fedora_ci_events_decided_total{"))
            .collect();
        assert!(!metrics.contains("made-up-"), "a made-up topic became a label");
        assert!(series.len() <= 10, "{series:#?}");
        assert!(series.iter().any(|l| l.contains("topic=\"other\"")), "{series:#?}");
    })
    .await
    .expect("test timed out");
}

/// The sizing rule of docs/operations.md ("Memory"), in KiB: the process,
/// the stack of the deepest headers, two copies of a full prefetch window of
/// the largest bodies, and eight batches.
fn sizing_rule_kib(prefetch: u64, max_body_bytes: u64, batch_max_bytes: u64) -> u64 {
    64 * 1024 + 64 * 1024 + (2 * prefetch * max_body_bytes + 8 * batch_max_bytes) / 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_fed_large_messages_stays_within_its_sizing_rule() {
    tokio::time::timeout(TIMEOUT, async {
        let db = support::fresh_database().await;
        let vhost = support::fresh_vhost();
        let port = support::free_port();
        // Production's values (ansible/vars/apps/fedora-ci-worker/common.yml).
        let (prefetch, max_body, batch_bytes) = (50u64, 1_048_576u64, 4_194_304u64);
        let config = support::service_config(&db.url, &vhost.amqp_url, port);
        let env = [
            ("FEDORA_CI__BUS__QOS__PREFETCH_COUNT", prefetch.to_string()),
            ("FEDORA_CI__INGEST__MAX_BODY_BYTES", max_body.to_string()),
            (
                "FEDORA_CI__INGEST__BATCH_MAX_BYTES",
                batch_bytes.to_string(),
            ),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // Declare the queue (the service does on start), stop, fill it, start again:
        // the consumer meets a backlog of 200 messages of 1 MiB.
        let mut service = Service::spawn_with_env(&config, &["run", "--consumer", "--api"], &env);
        let api = format!("http://127.0.0.1:{port}");
        wait_until(Duration::from_secs(60), "ready", || async {
            get_json(&format!("{api}/api/readyz")).await
        })
        .await;
        service.sigterm();
        service
            .wait_exit_async(Duration::from_secs(30))
            .await
            .expect("stopped");
        let body = object_of_size(max_body as usize);
        let messages = (0..200).map(|i| {
            (
                HOSTILE_TOPIC.to_owned(),
                fm_properties(&format!("large-{i}"), field_table(&usual_headers())),
                body.clone(),
            )
        });
        support::publish_many(&vhost.amqp_url, messages).await;
        let service = Service::spawn_with_env(&config, &["run", "--consumer", "--api"], &env);
        let pool = db.pool().await;
        wait_until(
            Duration::from_secs(120),
            "200 large messages recorded",
            || async {
                let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
                    .fetch_one(&pool)
                    .await
                    .ok()?;
                (n == 200).then_some(())
            },
        )
        .await;
        // Batches closed by bytes: 1 MiB messages, 4 MiB batches, so no batch
        // reached the histogram's bucket of 10 (by count they could be 50).
        let metrics = reqwest::get(format!("{api}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let value = |prefix: &str| -> f64 {
            metrics
                .lines()
                .find_map(|line| line.strip_prefix(prefix))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {prefix} in the metrics"))
        };
        let batches = value("fedora_ci_inbox_batch_size_count ");
        assert!(batches >= 50.0, "{batches} batches for 200 messages");
        assert_eq!(
            value("fedora_ci_inbox_batch_size_bucket{le=\"10\"} "),
            batches
        );
        let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE status = 'dead'")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(dead, 0);
        let peak = proc_kb(service.pid(), "VmHWM:");
        let rule = sizing_rule_kib(prefetch, max_body, batch_bytes);
        eprintln!("200 messages of 1 MiB: VmHWM {peak} kB; the sizing rule allows {rule} kB");
        assert!(
            peak < rule,
            "VmHWM {peak} kB is over the sizing rule's {rule} kB"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_project_names_reach_neither_dist_git_nor_koji() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let api = stack.api();
        // The review's L1: `rpms/..` and `fork/../rpms/bash`, which a URL
        // library would turn into the project `rpms` and a path out of the fork.
        let mut forged = stack::message("pagure.pull-request.new-fork.json");
        forged["id"] = json!("forged-dot-dot");
        let pr = &mut forged["body"]["pullrequest"];
        pr["project"]["full_url"] = json!("https://src.fedoraproject.org/rpms/..");
        pr["project"]["fullname"] = json!("rpms/..");
        pr["project"]["name"] = json!("..");
        pr["repo_from"]["full_url"] = json!("https://src.fedoraproject.org/fork/../rpms/bash");
        stack.publish(&forged).await;
        let mut head = stack::message("pagure.pull-request.new-fork.json");
        head["id"] = json!("forged-head");
        head["body"]["pullrequest"]["commit_stop"] = json!("ddd/../../etc");
        stack.publish(&head).await;

        let event = decided(&api, "forged-dot-dot").await;
        assert_eq!(event["status"], "skipped", "{event}");
        assert!(
            event["reason"]
                .as_str()
                .is_some_and(|r| r.contains("\"..\"")),
            "{event}"
        );
        let event = decided(&api, "forged-head").await;
        assert_eq!(event["status"], "failed", "{event}");
        assert!(
            event["reason"]
                .as_str()
                .is_some_and(|r| r.contains("is not a commit hash")),
            "{event}"
        );
        // An ordinary one after them goes all the way, and is the only one that does.
        ordinary_is_decided(&stack, &api, "forged names").await;
        stack.settle(&stack.db.pool().await).await;
        let submissions = stack.koji.submissions();
        assert_eq!(submissions.len(), 1, "{submissions:#?}");
        assert!(
            submissions.iter().all(|s| !s.src.contains("..")),
            "{submissions:#?}"
        );
        let flagged: Vec<_> = stack.distgit.flags().into_keys().collect();
        assert!(
            flagged
                .iter()
                .all(|(project, _)| project == "rpms/optee_os"),
            "{flagged:?}"
        );
    })
    .await
    .expect("test timed out");
}

#[test]
fn empty_or_short_tokens_stop_the_service_before_it_serves() {
    let db = "postgres://postgres@127.0.0.1:1/unused";
    // The review's M1: empty tokens from the environment turned
    // authentication off. Now the service does not start, and says which key.
    for (vars, key) in [
        (
            vec![
                ("FEDORA_CI__API__ADMIN_TOKEN", ""),
                ("FEDORA_CI__TESTING_FARM__WEBHOOK_TOKEN", ""),
            ],
            "api.admin_token",
        ),
        (
            vec![("FEDORA_CI__TESTING_FARM__WEBHOOK_TOKEN", "   ")],
            "testing_farm.webhook_token",
        ),
        (
            vec![("FEDORA_CI__API__ADMIN_TOKEN", "admin")],
            "api.admin_token",
        ),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fedora-ci-worker"));
        command
            .args(["run", "--api"])
            .env_remove("FEDORA_CI_CONFIG")
            .env("FEDORA_CI__DATABASE__URL", db)
            .env("FEDORA_CI__API__LISTEN", "127.0.0.1:0");
        for (name, value) in &vars {
            command.env(name, value);
        }
        let output = command.output().expect("run the service");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{vars:?}: {stderr}");
        assert!(
            stderr.starts_with("configuration error: ") && stderr.contains(key),
            "{vars:?}: {stderr}"
        );
    }
}

/// `{"h": {"h": …}}`, `depth` levels in all.
fn nested_value(depth: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..depth {
        value = json!({ "h": value });
    }
    value
}

#[tokio::test(flavor = "multi_thread")]
async fn replayed_files_meet_the_same_limits_as_the_bus() {
    tokio::time::timeout(TIMEOUT, async {
        let db = support::fresh_database().await;
        let dir = tempfile::tempdir().expect("tempdir");
        // Within what a replay file's parser reads (128 levels), beyond our limits.
        let entry = |id: &str, headers: Value, body: Value| {
            json!({"id": id, "topic": HOSTILE_TOPIC, "headers": headers, "body": body})
        };
        let lines = [
            entry("replay-ok", usual_headers(), nested_value(64)),
            entry("replay-deep-body", usual_headers(), nested_value(65)),
            entry(
                "replay-deep-headers",
                json!({"sent-at": "2026-12-07T10:00:00+00:00", "deep": nested_value(32)}),
                json!({"a": 1}),
            ),
        ]
        .map(|line| line.to_string())
        .join("\n");
        let file = dir.path().join("messages.jsonl");
        std::fs::write(&file, lines).expect("write");
        let output = Command::new(env!("CARGO_BIN_EXE_fedora-ci-worker"))
            .arg("replay")
            .arg(&file)
            .env_remove("FEDORA_CI_CONFIG")
            .env("FEDORA_CI__DATABASE__URL", &db.url)
            .output()
            .expect("run replay");
        assert!(
            output.status.code().is_some(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let pool = db.pool().await;
        let rows: Vec<(String, String, Option<String>, Value)> = sqlx::query_as(
            "SELECT message_id, status, reason, headers FROM events ORDER BY message_id",
        )
        .fetch_all(&pool)
        .await
        .expect("rows");
        assert_eq!(rows.len(), 3, "{rows:#?}");
        let (id, status, reason, _) = &rows[0];
        assert_eq!((id.as_str(), status.as_str()), ("replay-deep-body", "dead"));
        assert_eq!(
            reason.as_deref(),
            Some("body nests 65 levels deep, over the limit of 64")
        );
        let (id, status, reason, headers) = &rows[1];
        assert_eq!((id.as_str(), status.as_str()), ("replay-deep-headers", "dead"));
        assert_eq!(
            reason.as_deref(),
            Some("headers nest 33 levels deep, over the limit of 32; they were not kept")
        );
        assert_eq!(headers, &json!({}));
        let (id, status, _, _) = &rows[2];
        assert_eq!((id.as_str(), status.as_str()), ("replay-ok", "received"));
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_request_limits_are_the_configured_ones() {
    tokio::time::timeout(TIMEOUT, async {
        let stack = Stack::start().await;
        let _service = stack
            .spawn(&[
                ("FEDORA_CI__API__MAX_BODY_BYTES", "1000"),
                ("FEDORA_CI__API__REQUEST_TIMEOUT_SECONDS", "2"),
                ("FEDORA_CI__API__BODY_TIMEOUT_SECONDS", "60"),
            ])
            .await;
        let port = stack.port;
        // Any route: a body over api.max_body_bytes is refused on its length.
        let (status, body) = tokio::task::spawn_blocking(move || {
            raw_request(
                port,
                &format!(
                    "POST /api/events/x/redecide HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\
                     Connection: close\r\n\r\n{}",
                    " ".repeat(2000)
                ),
            )
        })
        .await
        .expect("request");
        assert_eq!(status, 413, "{body}");
        assert!(body.contains("\"error\""), "{body}");
        // A body that stalls within the body timeout still ends with the request's.
        let (status, took) = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let (status, _) = raw_request(
                port,
                "POST /api/testing-farm/results HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n10\r\n{\"request_id\": ",
            );
            (status, started.elapsed())
        })
        .await
        .expect("request");
        assert_eq!(status, 408);
        assert!(took < Duration::from_secs(10), "answered after {took:?}");
    })
    .await
    .expect("test timed out");
}
