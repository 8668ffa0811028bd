//! Shared support for the service's integration tests: `mod support;` in a test file.
//!
//! * PostgreSQL: [`fresh_database`] on the shared local server (env
//!   `FCI_TEST_PG_URL`), or a [`PrivatePostgres`] cluster that a test may stop
//!   and start without disturbing tests running beside it.
//! * RabbitMQ: [`fresh_vhost`] on the shared local broker (env
//!   `FCI_TEST_AMQP_HOST`), or a [`PrivateRabbit`] node for stop/start scenarios;
//!   [`publish_raw`], [`publish_many`], [`ProbeQueue`] to publish and observe.
//! * [`Service`]: the `fedora-ci-worker` binary as a child process.
//! * [`wait_until`], [`free_port`].
//! * [`dashboard`]: Packit's fields and types, and a pull request and a Bodhi
//!   update driven through the service, for the dashboard's endpoints.
//!
//! Every external step (initdb, pg_ctl, rabbitmq-server, rabbitmqctl) that
//! fails panics with the tool's stderr; nothing is skipped silently. The
//! private instances and [`fresh_vhost`] block the calling thread while their
//! tools run (a PostgreSQL cluster starts in about a second, a RabbitMQ node in
//! a few seconds).

// Each test binary uses a different part of this module.
#![allow(dead_code, unused_imports)]

pub mod dashboard;
mod pg;
mod process;
mod rabbit;
mod service;
pub mod stack;

use std::future::Future;
use std::time::Duration;

pub use pg::{
    PrivatePostgres, TestDb, fresh_database, fresh_database_at, local_pg_url, with_database,
};
pub use process::{CmdOutput, run_checked, tail_lines};
pub use rabbit::{
    AmqpHost, PrivateRabbit, ProbeQueue, TestVhost, amqp_connect, field_table, fm_properties,
    fresh_vhost, local_amqp_host, percent_encode, publish_many, publish_raw,
};
pub use service::Service;

/// The Python that has the PyPI packages the tests talk to: `FCI_TEST_PYTHON`
/// (`scripts/test` makes a virtualenv and sets it), else `python3`. Panics,
/// saying how to get them, unless `python -c "import <modules>"` works.
pub fn python(modules: &str) -> String {
    let python = std::env::var("FCI_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let check = std::process::Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        check.status.success(),
        "{python} cannot import {modules}: run the tests with scripts/test, which installs them \
         (or set FCI_TEST_PYTHON): {}",
        String::from_utf8_lossy(&check.stderr)
    );
    python
}

/// A script of `tests/python/`.
pub fn python_script(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/python")
        .join(name)
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("cannot get a free port on 127.0.0.1: {e}"))
}

/// Calls `check` every 50 ms until it returns `Some`, and returns that value.
/// After `timeout` panics with "timed out after {secs}s waiting for {what}".
/// A single call of `check` is cut off at the deadline (plus one second of grace,
/// so that the last call gets a fair chance).
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    let deadline = start + timeout;
    loop {
        let limit = deadline.max(tokio::time::Instant::now() + Duration::from_secs(1));
        if let Ok(Some(value)) = tokio::time::timeout_at(limit, check()).await {
            return value;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            break;
        }
        tokio::time::sleep_until((now + Duration::from_millis(50)).min(deadline)).await;
    }
    panic!(
        "timed out after {}s waiting for {what}",
        timeout.as_secs_f64()
    )
}

/// The service's configuration for a test: its own database and vhost, a
/// durable queue `fedora-ci-worker` bound to every topic, the API on `port`.
/// Other keys can be set with `FEDORA_CI__...` variables (`Service::spawn_with_env`).
pub fn service_config(database_url: &str, amqp_url: &str, port: u16) -> String {
    format!(
        r##"
[database]
url = "{database_url}"

[bus]
amqp_url = "{amqp_url}"

[[bus.bindings]]
queue = "fedora-ci-worker"
exchange = "amq.topic"
routing_keys = ["#"]

[api]
listen = "127.0.0.1:{port}"

[fedora_ci]
# Nothing outside the machine is called: no ELN package list is fetched.
eln_packages_urls = []
"##
    )
}

/// GET a JSON document; `None` on any failure or non-2xx answer, for polling.
pub async fn get_json(url: &str) -> Option<serde_json::Value> {
    let response = reqwest::get(url).await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}
