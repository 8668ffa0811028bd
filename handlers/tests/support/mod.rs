//! A fresh, migrated database per test on the local PostgreSQL, real bus
//! messages from tests/data/bus, and the decider run over what was recorded.

#![allow(dead_code)]

use std::time::Duration;

use handlers::Context;
use serde_json::{Value, json};
use sqlx::{Connection as _, PgPool};
use store::events::{NewEvent, Source};

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A new database `fci_test_<random>`, migrated. Fails loudly when the
/// server is not reachable: these tests never skip.
pub async fn fresh_db() -> PgPool {
    let server = std::env::var("FCI_TEST_PG_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_PG_URL.to_string());
    let mut conn = tokio::time::timeout(Duration::from_secs(15), sqlx::PgConnection::connect(&server))
        .await
        .unwrap_or_else(|_| panic!("PostgreSQL at {server} did not answer within 15 s"))
        .unwrap_or_else(|e| {
            panic!("PostgreSQL at {server} is not reachable: {e}\nstart it with: pg_ctlcluster 15 main start")
        });
    let name = format!("fci_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    let _ = conn.close().await;
    let base = server
        .rsplit_once('/')
        .map_or(server.as_str(), |(base, _)| base);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&format!("{base}/{name}"))
        .await
        .unwrap_or_else(|e| panic!("connecting to {name}: {e}"));
    store::migrate(&pool)
        .await
        .unwrap_or_else(|e| panic!("migrating {name}: {e}"));
    pool
}

pub fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data")
}

/// A real message of tests/data/bus, in serialized form.
pub fn message(file: &str) -> Value {
    let path = data_dir().join("bus").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let envelope = events::parse_serialized(&text)
        .expect("serialized")
        .into_iter()
        .next()
        .expect("one entry")
        .expect("a valid entry");
    envelope.to_serialized()
}

/// A Testing Farm API response of tests/data/testing-farm.
pub fn testing_farm(file: &str) -> Value {
    let path = data_dir().join("testing-farm").join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("file")).expect("JSON")
}

/// Record a serialized message in the inbox (as the bus consumer would); its event id.
pub async fn record(pool: &PgPool, message: &Value) -> i64 {
    let id = message["id"].as_str().expect("an id").to_string();
    let event = NewEvent {
        message_id: id.clone(),
        topic: message["topic"].as_str().expect("a topic").to_string(),
        headers: message.get("headers").cloned().unwrap_or(json!({})),
        body: Some(message["body"].to_string()),
        raw_body: None,
        body_size: 0,
        sent_at: None,
        source: Source::Bus,
        queue: None,
        priority: None,
        dead_reason: None,
    };
    store::events::insert_batch(pool, &[event])
        .await
        .expect("insert");
    sqlx::query_scalar("SELECT id FROM events WHERE message_id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .expect("recorded")
}

/// Record an internal event (what jobs and the webhook write).
pub async fn record_internal(pool: &PgPool, topic: &str, body: Value) -> i64 {
    record(
        pool,
        &json!({"id": format!("internal-{}", uuid::Uuid::new_v4()), "topic": topic, "headers": {}, "body": body}),
    )
    .await
}

/// Decide everything waiting, as the service's decider does.
pub async fn decide_all(pool: &PgPool, ctx: &Context) {
    loop {
        let report = handlers::decider::decide_batch(pool, ctx, 100)
            .await
            .expect("deciding");
        if report.is_empty() {
            break;
        }
    }
}

/// Decisions, status and reason of an event, as JSON for snapshots and asserts.
pub async fn outcome(pool: &PgPool, event_id: i64) -> Value {
    let (status, reason): (String, Option<String>) =
        sqlx::query_as("SELECT status, reason FROM events WHERE id = $1")
            .bind(event_id)
            .fetch_one(pool)
            .await
            .expect("event");
    let decisions = store::flows::decisions_of_event(pool, event_id)
        .await
        .expect("decisions");
    json!({"status": status, "reason": reason, "decisions": decisions})
}

/// Jobs created for an event, with keys made stable for snapshots.
pub async fn jobs_of_event(pool: &PgPool, event_id: i64) -> Vec<Value> {
    let rows: Vec<(String, String, Value, String)> = sqlx::query_as(
        "SELECT kind, dedup_key, payload, state FROM jobs WHERE event_id = $1 ORDER BY kind, dedup_key",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
    .expect("jobs");
    rows.into_iter()
        .map(|(kind, key, payload, state)| {
            json!({"kind": kind, "key": stable_key(&key), "payload": payload, "state": state})
        })
        .collect()
}

/// Every job, with stable keys.
pub async fn all_jobs(pool: &PgPool) -> Vec<Value> {
    store::jobs::all(pool)
        .await
        .expect("jobs")
        .into_iter()
        .map(|j| json!({"id": j.id, "kind": j.kind, "key": stable_key(&j.dedup_key), "payload": j.payload, "state": j.state}))
        .collect()
}

/// Fact look-ups carry the number of the period they were asked in.
fn stable_key(key: &str) -> String {
    if key.starts_with("lookup-fact:")
        && let Some((rest, round)) = key.rsplit_once(':')
        && round.chars().all(|c| c.is_ascii_digit())
    {
        return format!("{rest}:<round>");
    }
    key.to_string()
}

/// The context the tests decide with: everything on, `optee_os` an ELN package.
pub fn context() -> Context {
    let mut policy = checkers::policy::Policy::local_default();
    policy.eln_packages.insert("optee_os".into());
    Context::local(policy)
}

/// The real PR-opened message, as an update to `sha` at `updated`.
pub fn pr_message(topic: &str, sha: &str, updated: i64) -> Value {
    let mut message = self::message("pagure.pull-request.new-fork.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    message["topic"] = json!(format!(
        "org.fedoraproject.prod.pagure.pull-request.{topic}"
    ));
    let pr = &mut message["body"]["pullrequest"];
    pr["commit_stop"] = json!(sha);
    pr["last_updated"] = json!(updated.to_string());
    message
}

/// The real Koji task message, for one of our tasks.
pub fn koji_message(task_id: i64, old: &str, new: &str) -> Value {
    let mut message = self::message("buildsys.task.state.change-closed-scratch.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    message["body"]["id"] = json!(task_id);
    message["body"]["info"]["id"] = json!(task_id);
    message["body"]["old"] = json!(old);
    message["body"]["new"] = json!(new);
    message
}

/// The real comment message, as a new comment on the same pull request.
pub fn comment_message(comment_id: i64, user: &str, text: &str, head: &str) -> Value {
    let mut message = self::message("pagure.pull-request.comment.added.json");
    let opened = self::message("pagure.pull-request.new-fork.json");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    let mut pr = opened["body"]["pullrequest"].clone();
    let mut comment = message["body"]["pullrequest"]["comments"][0].clone();
    comment["id"] = json!(comment_id);
    comment["comment"] = json!(text);
    comment["user"]["name"] = json!(user);
    pr["comments"] = json!([comment]);
    pr["commit_stop"] = json!(head);
    message["body"]["pullrequest"] = pr;
    message["body"]["agent"] = json!(user);
    message
}

pub async fn decide(pool: &PgPool, ctx: &Context, message: &Value) -> i64 {
    let event = record(pool, message).await;
    decide_all(pool, ctx).await;
    event
}

pub async fn fact(pool: &PgPool, ctx: &Context, fact: &checkers::rules::Fact, value: bool) {
    record_internal(
        pool,
        events::typed::TOPIC_FACT,
        json!({"key": fact.key(), "value": value}),
    )
    .await;
    decide_all(pool, ctx).await;
}

/// Kinds of the jobs of an event, in alphabetical order.
pub async fn kinds(pool: &PgPool, event: i64) -> Vec<String> {
    jobs_of_event(pool, event)
        .await
        .into_iter()
        .map(|j| j["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// What the submit job records once Koji accepted the build.
pub async fn koji_accepted(pool: &PgPool, build_id: i64, task_id: i64) {
    sqlx::query("UPDATE koji_builds SET task_id = $2, submitted_at = now() WHERE id = $1")
        .bind(build_id)
        .bind(task_id)
        .execute(pool)
        .await
        .expect("task id");
    sqlx::query("UPDATE jobs SET state = 'done' WHERE dedup_key = $1")
        .bind(format!("submit-scratch-build:{build_id}"))
        .execute(pool)
        .await
        .expect("job done");
}

pub async fn flags(pool: &PgPool) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT check_name, status, comment FROM flags ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("flags")
}

/// The real pull request, as if its repository were in another namespace.
pub fn in_namespace(mut message: Value, namespace: &str) -> Value {
    let pr = &mut message["body"]["pullrequest"];
    for (repo, path) in [
        ("project", format!("{namespace}/optee_os")),
        ("repo_from", format!("fork/zbyszek/{namespace}/optee_os")),
    ] {
        pr[repo]["namespace"] = json!(namespace);
        pr[repo]["full_url"] = json!(format!("https://src.fedoraproject.org/{path}"));
        pr[repo]["url_path"] = json!(path);
    }
    pr["project"]["fullname"] = json!(format!("{namespace}/optee_os"));
    pr["repo_from"]["fullname"] = json!(format!("forks/zbyszek/{namespace}/optee_os"));
    message
}
