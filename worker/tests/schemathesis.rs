//! Schemathesis (PyPI) against `/api/openapi.json` of a running service:
//! requests generated from the document, valid and not, find no server
//! error, and every answer is one the document promises: a documented status
//! code, the documented content type and headers, and a body that follows
//! the documented schema. The admin endpoints refuse requests without the
//! admin token.
//! `scripts/test` installs it and sets FCI_TEST_PYTHON.

mod support;

use std::process::Command;
use std::time::Duration;

use support::stack::{self, Stack};
use support::wait_until;

const TIMEOUT: Duration = Duration::from_secs(600);
const ADMIN: &str = "admin-secret-token";

fn schemathesis() -> std::path::PathBuf {
    let python = std::env::var("FCI_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let bin = std::path::Path::new(&python).with_file_name("schemathesis");
    assert!(
        bin.is_file(),
        "{} not found: run the tests with scripts/test, which installs schemathesis (or set FCI_TEST_PYTHON to a Python whose bin has it)",
        bin.display()
    );
    bin
}

fn run(bin: &std::path::Path, api: &str, extra: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(bin)
        .current_dir(dir.path())
        .args(["run", &format!("{api}/api/openapi.json")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "25", "--seed", "1"])
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis runs");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_requests_get_only_answers_the_document_promises() {
    tokio::time::timeout(TIMEOUT, async {
        let bin = schemathesis();
        let stack = Stack::start().await;
        let pool = stack.db.pool().await;
        let _service = stack.spawn(&[("FEDORA_CI__API__ADMIN_TOKEN", ADMIN)]).await;
        // Something to find: a pull request with its build and tests.
        let mut message = stack::message("pagure.pull-request.new-fork.json");
        message["id"] = serde_json::json!(uuid::Uuid::new_v4().to_string());
        stack.publish(&message).await;
        wait_until(Duration::from_secs(30), "a build", || async {
            stack.koji.submissions().first().map(|_| ())
        })
        .await;
        stack.settle(&pool).await;

        let api = stack.api();
        let (ok, report) = run(
            &bin,
            &api,
            &["-H", &format!("Authorization: Bearer {ADMIN}")],
        );
        assert!(ok, "schemathesis found problems:\n{report}");
        eprintln!(
            "{}",
            report
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
        let (ok, report) = run(&bin, &api, &["--checks", "ignored_auth"]);
        assert!(
            ok,
            "an admin endpoint answered without the token:\n{report}"
        );
    })
    .await
    .expect("test timed out");
}
