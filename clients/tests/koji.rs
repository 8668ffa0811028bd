//! The Koji client against the stand-in hub over real HTTP, and the
//! Kerberos path against fake `kinit` and `koji` programs.
#![cfg(feature = "standins")]

mod support;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clients::koji::{Koji, KojiAuth, KojiClient, KojiConfig, KojiTimeouts, Submitted, faults};
use clients::standins::koji::{KojiHub, Submission};
use clients::{ClientError, DryRunRequest};
use events::states::KojiTaskState;
use serde_json::json;
use support::{Answer, RawServer};

const SOURCE: &str =
    "git+https://src.fedoraproject.org/rpms/hello.git#beaf90b5e4e8f2fc35d3e3d5fda5f51a3c6f1a2b";

fn timeouts() -> KojiTimeouts {
    KojiTimeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_secs(5),
        command: Duration::from_secs(10),
    }
}

fn client(hub_url: &str, auth: KojiAuth) -> KojiClient {
    KojiClient::new(KojiConfig {
        timeouts: timeouts(),
        ..KojiConfig::new(hub_url, auth)
    })
    .expect("a client")
}

async fn hub() -> KojiHub {
    KojiHub::start().await.expect("the stand-in starts")
}

async fn submit(koji: &KojiClient, target: &str) -> i64 {
    match koji.submit_scratch_build(SOURCE, target).await {
        Ok(Submitted::Task { id }) => id,
        other => panic!("not submitted: {other:?}"),
    }
}

#[tokio::test]
async fn reads_a_submitted_task_with_its_request() {
    let hub = hub().await;
    let koji = client(&hub.url(), KojiAuth::None);
    let id = submit(&koji, "rawhide").await;

    let info = koji.task_info(id).await.expect("read").expect("known task");
    assert_eq!(info.id, id);
    assert_eq!(info.state, KojiTaskState::Free);
    assert_eq!(info.method, "build");
    assert_eq!(info.owner, Some(KojiHub::OWNER_ID));
    assert_eq!(
        info.request,
        vec![json!(SOURCE), json!("rawhide"), json!({"scratch": true})]
    );
    assert_eq!(info.start_time, None);
    assert_eq!(info.raw["state"], json!(0));
    assert_eq!(info.raw["parent"], json!(null));
    assert!(info.raw["create_time"].is_string(), "{}", info.raw);

    hub.set_task_state(id, KojiTaskState::Open, &[]);
    let info = koji.task_info(id).await.expect("read").expect("known task");
    assert_eq!(info.state, KojiTaskState::Open);
    assert!(info.start_time.is_some_and(|t| t > 1.5e9), "{info:?}");
    assert_eq!(info.completion_time, None);

    hub.set_task_state(id, KojiTaskState::Closed, &[]);
    let info = koji.task_info(id).await.expect("read").expect("known task");
    assert_eq!(info.state, KojiTaskState::Closed);
    assert!(info.completion_time >= info.start_time, "{info:?}");
}

#[tokio::test]
async fn an_unknown_task_is_none() {
    let hub = hub().await;
    let koji = client(&hub.url(), KojiAuth::None);
    assert_eq!(koji.task_info(424242).await, Ok(None));
    assert_eq!(koji.task_children(424242).await, Ok(vec![]));
    assert_eq!(hub.calls(), vec!["getTaskInfo", "getTaskChildren"]);
}

#[tokio::test]
async fn reads_per_arch_children() {
    let hub = hub().await;
    let koji = client(&hub.url(), KojiAuth::None);
    let id = submit(&koji, "f41").await;
    assert_eq!(koji.task_children(id).await, Ok(vec![]));

    hub.set_task_state(id, KojiTaskState::Open, &["x86_64", "aarch64"]);
    let children = koji.task_children(id).await.expect("children");
    assert_eq!(children.len(), 3);
    // The source RPM is made first, by a child of its own.
    assert_eq!(children[0].method, "buildSRPMFromSCM");
    assert_eq!(children[0].raw["label"], json!("srpm"));
    assert_eq!(children[0].raw["arch"], json!("noarch"));
    for (child, arch) in children[1..].iter().zip(["x86_64", "aarch64"]) {
        assert_eq!(child.method, "buildArch");
        assert_eq!(child.state, KojiTaskState::Open);
        assert_eq!(child.raw["parent"], json!(id));
        assert_eq!(child.raw["arch"], json!(arch));
        assert_eq!(child.request.get(2), Some(&json!(arch)));
    }

    // The same arches again do not add children; every child follows.
    hub.set_task_state(id, KojiTaskState::Failed, &["x86_64"]);
    let children = koji.task_children(id).await.expect("children");
    assert_eq!(children.len(), 3);
    assert!(children.iter().all(|c| c.state == KojiTaskState::Failed));
}

#[tokio::test]
async fn big_task_ids_travel_as_i8() {
    let hub = hub().await;
    hub.set_next_task_id(3_000_000_000);
    let koji = client(&hub.url(), KojiAuth::None);
    let id = submit(&koji, "rawhide").await;
    assert_eq!(id, 3_000_000_000);
    let info = koji.task_info(id).await.expect("read").expect("known");
    assert_eq!(info.id, 3_000_000_000);

    let body = raw_call(
        &hub,
        "<methodCall><methodName>build</methodName><params>\
        <param><value><string>git+https://x/rpms/a.git#1</string></value></param>\
        <param><value><string>rawhide</string></value></param></params></methodCall>",
    )
    .await;
    assert!(
        body.contains("<value><i8>3000000001</i8></value>"),
        "{body}"
    );
}

#[tokio::test]
async fn reads_builds_by_id_or_nvr() {
    let hub = hub().await;
    let build = json!({"id": 2470880, "nvr": "hello-2.12.1-5.fc41", "state": 1, "task_id": 120000000, "extra": null});
    hub.insert_build(build.clone());
    let koji = client(&hub.url(), KojiAuth::None);
    assert_eq!(koji.build("2470880").await, Ok(Some(build.clone())));
    assert_eq!(koji.build("hello-2.12.1-5.fc41").await, Ok(Some(build)));
    assert_eq!(koji.build("hello-0-0.fc41").await, Ok(None));
    let error = koji.build("hello").await.expect_err("a fault");
    assert!(matches!(error, ClientError::Permanent { .. }), "{error}");
    assert!(
        error.to_string().contains("invalid format: hello"),
        "{error}"
    );
}

#[tokio::test]
async fn submits_a_scratch_build_without_login() {
    let hub = hub().await;
    let koji = client(&hub.url(), KojiAuth::None);
    assert!(!koji.dry_run());
    let id = submit(&koji, "rawhide").await;
    let submissions = hub.submissions();
    assert_eq!(
        submissions,
        vec![Submission {
            task_id: id,
            src: SOURCE.to_owned(),
            target: "rawhide".to_owned(),
            opts: json!({"scratch": true}),
            priority: None,
            channel: None,
            at: submissions[0].at,
        }]
    );
    assert_eq!(hub.task_state(id), Some(KojiTaskState::Free));
}

#[tokio::test]
async fn cancels_a_task_and_its_children_and_leaves_finished_ones_alone() {
    let hub = hub().await;
    let koji = client(&hub.url(), KojiAuth::None);
    let id = submit(&koji, "rawhide").await;
    hub.set_task_state(id, KojiTaskState::Open, &["x86_64"]);
    assert_eq!(koji.cancel_task(id).await, Ok(None));
    assert_eq!(hub.task_state(id), Some(KojiTaskState::Canceled));
    let children = koji.task_children(id).await.expect("children");
    assert_eq!(children[0].state, KojiTaskState::Canceled);

    let done = submit(&koji, "rawhide").await;
    hub.set_task_state(done, KojiTaskState::Closed, &[]);
    assert_eq!(koji.cancel_task(done).await, Ok(None));
    assert_eq!(hub.task_state(done), Some(KojiTaskState::Closed));
    assert_eq!(hub.cancellations(), vec![id, done]);

    let error = koji.cancel_task(999).await.expect_err("unknown task");
    assert!(matches!(error, ClientError::Permanent { .. }), "{error}");
    assert!(error.to_string().contains("No such task: 999"), "{error}");
}

#[tokio::test]
async fn faults_are_permanent_with_the_fault_string() {
    let hub = hub().await;
    let koji = client(&hub.url(), KojiAuth::None);
    hub.fault_next(1, faults::GENERIC_ERROR, "No such build target: f99");
    let error = koji
        .submit_scratch_build(SOURCE, "f99")
        .await
        .expect_err("a fault");
    assert_eq!(
        error,
        ClientError::Permanent {
            service: "koji",
            message: "build: GenericError (1000): No such build target: f99".to_owned(),
        }
    );
    hub.fault_next(
        1,
        faults::ACTION_NOT_ALLOWED,
        "you must be logged in for this operation",
    );
    let error = koji
        .submit_scratch_build(SOURCE, "rawhide")
        .await
        .expect_err("a fault");
    assert!(matches!(error, ClientError::Permanent { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("you must be logged in for this operation"),
        "{error}"
    );
    assert!(hub.submissions().is_empty());
}

#[tokio::test]
async fn offline_and_retry_faults_are_transient_and_auth_faults_auth() {
    let hub = hub().await;
    let koji = client(&hub.url(), KojiAuth::None);
    hub.fault_next(1, faults::SERVER_OFFLINE, "server is offline");
    let error = koji.task_info(1).await.expect_err("offline");
    assert!(error.is_transient(), "{error}");
    assert!(
        error
            .to_string()
            .contains("ServerOffline (1014): server is offline"),
        "{error}"
    );
    hub.fault_next(
        1,
        faults::RETRY_ERROR,
        "unable to retry call 7 (method build) for session 1",
    );
    assert!(
        koji.submit_scratch_build(SOURCE, "rawhide")
            .await
            .expect_err("retry")
            .is_transient()
    );
    hub.fault_next(1, faults::AUTH_EXPIRED, "session 12 expired");
    assert!(matches!(
        koji.cancel_task(1).await,
        Err(ClientError::Auth { .. })
    ));
    // Then the hub answers again.
    assert_eq!(koji.task_info(1).await, Ok(None));
}

#[tokio::test]
async fn http_errors_are_transient_with_retry_after() {
    let hub = hub().await;
    let koji = client(&hub.url(), KojiAuth::None);
    hub.fail_next_with_retry_after(1, 503, 7);
    hub.fail_next(1, 502);
    hub.fail_next_with_retry_after(1, 429, 30);

    let error = koji.task_info(1).await.expect_err("503");
    assert!(error.is_transient(), "{error}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    assert!(error.to_string().contains("503"), "{error}");
    let error = koji.task_children(1).await.expect_err("502");
    assert!(error.is_transient(), "{error}");
    assert_eq!(error.retry_after(), None);
    let error = koji
        .submit_scratch_build(SOURCE, "rawhide")
        .await
        .expect_err("429");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(30)));
    assert!(hub.submissions().is_empty());

    assert_eq!(koji.task_info(1).await, Ok(None));
    hub.fail_next(1, 404);
    assert!(matches!(
        koji.task_info(1).await,
        Err(ClientError::Permanent { .. })
    ));
    hub.fail_next(1, 403);
    assert!(matches!(
        koji.task_info(1).await,
        Err(ClientError::Auth { .. })
    ));
}

#[tokio::test]
async fn an_unreachable_hub_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let koji = client(&format!("http://{address}/kojihub"), KojiAuth::None);
    let error = koji.task_info(1).await.expect_err("refused");
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("cannot connect"), "{error}");
}

#[tokio::test]
async fn a_hub_that_does_not_answer_times_out_as_transient() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let koji = KojiClient::new(KojiConfig {
        timeouts: KojiTimeouts {
            request: Duration::from_millis(300),
            ..timeouts()
        },
        ..KojiConfig::new(format!("http://{address}/kojihub"), KojiAuth::None)
    })
    .expect("client");
    let error = koji.task_info(1).await.expect_err("timeout");
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("timed out"), "{error}");
    silent.abort();
}

#[tokio::test]
async fn a_page_that_is_not_xml_rpc_is_transient() {
    let app = axum::Router::new().route(
        "/kojihub",
        axum::routing::post(|| async { "<html><body>Service in maintenance</body></html>" }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let koji = client(&format!("http://{address}/kojihub"), KojiAuth::None);
    let error = koji.task_info(1).await.expect_err("not XML-RPC");
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("maintenance"), "{error}");
    server.abort();
}

#[tokio::test]
async fn dry_run_returns_the_exact_call_and_sends_nothing() {
    let hub = hub().await;
    let koji = client(
        &hub.url(),
        KojiAuth::Kerberos {
            principal: None,
            keytab: Some("/etc/fedora-ci/koji.keytab".into()),
        },
    );
    assert!(koji.dry_run());
    assert_eq!(
        koji.submit_scratch_build(SOURCE, "rawhide").await,
        Ok(Submitted::DryRun(DryRunRequest {
            service: "koji",
            method: "build".to_owned(),
            url: hub.url(),
            body: Some(json!({"src": SOURCE, "target": "rawhide", "opts": {"scratch": true}})),
        }))
    );
    assert_eq!(
        koji.cancel_task(130000000).await,
        Ok(Some(DryRunRequest {
            service: "koji",
            method: "cancelTask".to_owned(),
            url: hub.url(),
            body: Some(json!({"task_id": 130000000})),
        }))
    );
    assert!(hub.calls().is_empty());
    assert!(hub.submissions().is_empty());
    assert!(hub.cancellations().is_empty());

    // Reads still go to the hub.
    assert_eq!(koji.task_info(1).await, Ok(None));
    assert_eq!(hub.calls(), vec!["getTaskInfo"]);
}

#[tokio::test]
async fn task_messages_have_the_shape_koji_publishes() {
    let hub = hub().await;
    let koji = client(&hub.url(), KojiAuth::None);
    let id = submit(&koji, "rawhide").await;

    let message = hub.task_message(id);
    assert_eq!(message["old"], json!(null));
    assert_eq!(message["new"], json!("FREE"));

    hub.set_task_state(id, KojiTaskState::Open, &["x86_64", "aarch64"]);
    let message = hub.task_message(id);
    assert_eq!(message["old"], json!("FREE"));
    assert_eq!(message["new"], json!("OPEN"));
    assert_eq!(
        message["info"]["children"].as_array().map(Vec::len),
        Some(3),
        "the SRPM child and one per arch"
    );

    hub.set_task_state(id, KojiTaskState::Closed, &["x86_64", "aarch64"]);
    let message = hub.task_message(id);
    for key in [
        "id",
        "attribute",
        "old",
        "new",
        "info",
        "method",
        "owner",
        "instance",
    ] {
        assert!(message.get(key).is_some(), "{key} missing: {message}");
    }
    assert_eq!(message["id"], json!(id));
    assert_eq!(message["attribute"], json!("state"));
    assert_eq!(message["old"], json!("OPEN"));
    assert_eq!(message["new"], json!("CLOSED"));
    assert_eq!(message["method"], json!("build"));
    assert_eq!(message["owner"], json!(KojiHub::OWNER_NAME));
    assert_eq!(message["instance"], json!("primary"));
    assert_eq!(message["info"]["id"], json!(id));
    assert_eq!(message["info"]["state"], json!(2));
    assert_eq!(
        message["info"]["request"],
        json!([SOURCE, "rawhide", {"scratch": true}])
    );
    assert!(message["info"]["start_time"].is_f64(), "{message}");
    assert!(message["info"]["completion_time"].is_f64(), "{message}");
    let children = message["info"]["children"].as_array().expect("children");
    assert!(
        children
            .iter()
            .all(|c| c["state"] == 2 && c["parent"] == id)
    );
    let methods: Vec<&str> = children
        .iter()
        .filter_map(|c| c["method"].as_str())
        .collect();
    assert_eq!(methods, ["buildSRPMFromSCM", "buildArch", "buildArch"]);

    // The same keys as a real message (tests/data/bus), and the service reads it.
    let real: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/data/bus/buildsys.task.state.change-closed-scratch.json"),
        )
        .expect("the captured message"),
    )
    .expect("JSON");
    let keys = |v: &serde_json::Value| {
        v.as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let mut real_body_keys = keys(&real["body"]);
    real_body_keys.retain(|k| k != "srpm");
    let mut ours = keys(&message);
    ours.sort();
    real_body_keys.sort();
    assert_eq!(ours, real_body_keys);
    let mut info_keys = keys(&message["info"]);
    let mut real_info_keys = keys(&real["body"]["info"]);
    info_keys.sort();
    real_info_keys.sort();
    assert_eq!(info_keys, real_info_keys);
    let mut child_keys = keys(&children[0]);
    let mut real_child_keys = keys(&real["body"]["info"]["children"][0]);
    child_keys.sort();
    real_child_keys.sort();
    assert_eq!(child_keys, real_child_keys);

    let event = events::typed::parse(
        "org.fedoraproject.prod.buildsys.task.state.change",
        &message,
    )
    .expect("parses");
    let events::typed::Event::KojiTask(task) = event else {
        panic!("not a Koji task event: {event:?}");
    };
    assert_eq!(task.id.0, id);
    assert_eq!(task.new, KojiTaskState::Closed);
    assert_eq!(task.old, Some(KojiTaskState::Open));
    assert_eq!(task.source.as_deref(), Some(SOURCE));
    assert_eq!(task.target.as_deref(), Some("rawhide"));
    assert_eq!(task.scratch, Some(true));
    assert_eq!(
        task.arch_tasks.len(),
        2,
        "the SRPM child is not an arch task"
    );
}

async fn raw_call(hub: &KojiHub, body: &'static str) -> String {
    reqwest::Client::new()
        .post(hub.url())
        .header("content-type", "text/xml")
        .body(body)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body")
}

#[tokio::test]
async fn the_stand_in_speaks_kojis_xml() {
    let hub = hub().await;
    // Keyword arguments as koji's ClientSession sends them.
    let body = raw_call(
        &hub,
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>getTaskInfo</methodName>\n<params>\n\
         <param>\n<value><int>7</int></value>\n</param>\n<param>\n<value><struct>\n\
         <member>\n<name>request</name>\n<value><boolean>1</boolean></value>\n</member>\n\
         <member>\n<name>__starstar</name>\n<value><boolean>1</boolean></value>\n</member>\n\
         </struct></value>\n</param>\n</params>\n</methodCall>\n",
    )
    .await;
    assert_eq!(
        body,
        "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><nil/></value></param>\n</params>\n</methodResponse>\n"
    );

    let body = raw_call(
        &hub,
        "<methodCall><methodName>frobnicate</methodName><params/></methodCall>",
    )
    .await;
    assert_eq!(
        body,
        "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n\
         <member>\n<name>faultCode</name>\n<value><int>1000</int></value>\n</member>\n\
         <member>\n<name>faultString</name>\n<value><string>Invalid method: frobnicate</string></value>\n</member>\n\
         </struct></value>\n</fault>\n</methodResponse>\n"
    );

    let body = raw_call(
        &hub,
        "<methodCall><methodName>getTaskInfo</methodName><params>\
         <param><value><string>abc</string></value></param></params></methodCall>",
    )
    .await;
    assert!(body.contains("<int>1019</int>"), "{body}");
    assert!(
        body.contains("Invalid type for value &apos;abc&apos;")
            || body.contains("Invalid type for value 'abc'"),
        "{body}"
    );

    let body = raw_call(
        &hub,
        "<methodCall><methodName>build</methodName><params/></methodCall>",
    )
    .await;
    assert!(body.contains("<int>1019</int>"), "{body}");
    assert!(
        body.contains("build() missing 1 required positional argument: 'src'"),
        "{body}"
    );

    let body = raw_call(&hub, "not xml at all").await;
    assert!(
        body.contains("<fault>") && body.contains("ExpatError"),
        "{body}"
    );

    let response = reqwest::get(hub.url()).await.expect("GET");
    assert_eq!(response.status(), 405);
    assert_eq!(
        response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    assert_eq!(
        hub.calls(),
        vec!["getTaskInfo", "frobnicate", "getTaskInfo", "build"]
    );
}

/// A directory of fake programs that come first on the client's `PATH`.
struct FakeBin {
    dir: tempfile::TempDir,
}

impl FakeBin {
    fn new() -> FakeBin {
        FakeBin {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn add(&self, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}")).expect("write the script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap_or_default()
    }

    /// This directory first, then the system's `PATH` (for `sleep`).
    fn search_path(&self) -> OsString {
        let mut path = OsString::from(self.path());
        if let Some(system) = std::env::var_os("PATH") {
            path.push(":");
            path.push(system);
        }
        path
    }

    fn client(
        &self,
        hub_url: &str,
        search_path: OsString,
        command_timeout: Duration,
    ) -> KojiClient {
        let keytab = self.path().join("koji.keytab");
        std::fs::write(&keytab, "SECRET-KEYTAB-BYTES").expect("keytab");
        KojiClient::new(KojiConfig {
            hub_url: hub_url.to_owned(),
            auth: KojiAuth::Kerberos {
                principal: Some("fedora-ci/ci.fedoraproject.org@FEDORAPROJECT.ORG".to_owned()),
                keytab: Some(keytab),
            },
            timeouts: KojiTimeouts {
                command: command_timeout,
                ..timeouts()
            },
            command_path: Some(search_path),
        })
        .expect("client")
    }
}

/// Records its arguments and gets a "ticket": only shell builtins, so it
/// runs with any `PATH`.
const KINIT: &str = r#"d=${0%/*}
printf '%s\n' "$@" > "$d/kinit.args"
printf '%s\n' "$KRB5CCNAME" > "$d/kinit.ccache"
: > "${KRB5CCNAME#FILE:}"
"#;

const KOJI_BUILD_OK: &str = r#"d=${0%/*}
printf '%s\n' "$@" > "$d/koji.args"
printf '%s\n' "$KRB5CCNAME" > "$d/koji.ccache"
printf '%s\n' "$LC_ALL" > "$d/koji.lc_all"
if [ ! -f "${KRB5CCNAME#FILE:}" ]; then
  echo "Unable to log in, no authentication methods available" >&2
  exit 1
fi
echo "Created task: 123"
echo "Task info: https://koji.fedoraproject.org/koji/taskinfo?taskID=123"
"#;

#[tokio::test]
async fn kerberos_submits_with_the_koji_cli_after_kinit() {
    let bin = FakeBin::new();
    bin.add("kinit", KINIT);
    bin.add("koji", KOJI_BUILD_OK);
    let hub_url = "https://koji.fedoraproject.org/kojihub";
    let koji = bin.client(hub_url, bin.search_path(), Duration::from_secs(10));
    assert!(!koji.dry_run());

    assert_eq!(
        koji.submit_scratch_build(SOURCE, "rawhide").await,
        Ok(Submitted::Task { id: 123 })
    );
    assert_eq!(
        bin.read("kinit.args"),
        format!(
            "-k\n-t\n{}\nfedora-ci/ci.fedoraproject.org@FEDORAPROJECT.ORG\n",
            bin.path().join("koji.keytab").display()
        )
    );
    assert_eq!(
        bin.read("koji.args"),
        format!(
            "--server\n{hub_url}\n--authtype\nkerberos\nbuild\n--scratch\n--nowait\n--noprogress\nrawhide\n{SOURCE}\n"
        )
    );
    assert_eq!(bin.read("koji.lc_all"), "C\n");
    // Both ran with the same private ticket cache, gone afterwards.
    let ccache = bin.read("koji.ccache");
    assert_eq!(ccache, bin.read("kinit.ccache"));
    let ccache_path = PathBuf::from(ccache.trim().strip_prefix("FILE:").expect("a FILE: cache"));
    let ccache_dir = ccache_path.parent().expect("a directory");
    assert!(!ccache_dir.starts_with(bin.path()));
    assert!(
        !ccache_dir.exists(),
        "{} was left behind",
        ccache_dir.display()
    );
}

#[tokio::test]
async fn kerberos_cancels_with_the_koji_cli() {
    let bin = FakeBin::new();
    bin.add("kinit", KINIT);
    bin.add("koji", "printf '%s\\n' \"$@\" > \"${0%/*}/koji.args\"\n");
    let koji = bin.client(
        "https://koji.example/kojihub",
        bin.search_path(),
        Duration::from_secs(10),
    );
    assert_eq!(koji.cancel_task(130000123).await, Ok(None));
    assert_eq!(
        bin.read("koji.args"),
        "--server\nhttps://koji.example/kojihub\n--authtype\nkerberos\ncancel\n130000123\n"
    );
}

#[tokio::test]
async fn kerberos_bad_target_is_permanent_with_the_output() {
    let bin = FakeBin::new();
    bin.add("kinit", KINIT);
    bin.add(
        "koji",
        "cat >&2 <<'EOF'\nUsage: koji build [options] <target> <srpm path or scm url>\n\n\
         (Specify the --help global option for a list of other help options)\n\n\
         koji: error: No such build target: f99\nEOF\nexit 1\n",
    );
    let koji = bin.client(
        "https://koji.example/kojihub",
        bin.search_path(),
        Duration::from_secs(10),
    );
    let error = koji
        .submit_scratch_build(SOURCE, "f99")
        .await
        .expect_err("bad target");
    assert!(matches!(error, ClientError::Permanent { .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains("koji build failed (exit status 1)"), "{text}");
    assert!(text.contains("No such build target: f99"), "{text}");
    assert!(!text.contains("SECRET-KEYTAB-BYTES"), "{text}");
}

#[tokio::test]
async fn kerberos_hub_trouble_is_transient() {
    let bin = FakeBin::new();
    bin.add("kinit", KINIT);
    bin.add(
        "koji",
        "echo \"2025-01-01 00:00:00,000 [ERROR] koji: ServerOffline: server is offline\" >&2\nexit 1\n",
    );
    let koji = bin.client(
        "https://koji.example/kojihub",
        bin.search_path(),
        Duration::from_secs(10),
    );
    let error = koji
        .submit_scratch_build(SOURCE, "rawhide")
        .await
        .expect_err("offline");
    assert!(error.is_transient(), "{error}");
}

#[tokio::test]
async fn kerberos_command_that_hangs_is_killed_and_transient() {
    let bin = FakeBin::new();
    bin.add("kinit", KINIT);
    bin.add("koji", "exec sleep 30\n");
    let koji = bin.client(
        "https://koji.example/kojihub",
        bin.search_path(),
        Duration::from_millis(500),
    );
    let started = std::time::Instant::now();
    let error = koji
        .submit_scratch_build(SOURCE, "rawhide")
        .await
        .expect_err("timeout");
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("did not finish"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited for the command"
    );
}

#[tokio::test]
async fn kinit_failure_is_auth_and_koji_does_not_run() {
    let bin = FakeBin::new();
    bin.add(
        "kinit",
        "echo 'kinit: Keytab contains no suitable keys for fedora-ci/ci.fedoraproject.org@FEDORAPROJECT.ORG while getting initial credentials' >&2\nexit 1\n",
    );
    bin.add("koji", KOJI_BUILD_OK);
    let koji = bin.client(
        "https://koji.example/kojihub",
        bin.search_path(),
        Duration::from_secs(10),
    );
    let error = koji
        .submit_scratch_build(SOURCE, "rawhide")
        .await
        .expect_err("kinit fails");
    assert!(matches!(error, ClientError::Auth { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("Keytab contains no suitable keys"),
        "{error}"
    );
    assert!(
        !error.to_string().contains("SECRET-KEYTAB-BYTES"),
        "{error}"
    );
    assert_eq!(bin.read("koji.args"), "");

    bin.add("kinit", "echo 'kinit: Cannot contact any KDC for realm FEDORAPROJECT.ORG while getting initial credentials' >&2\nexit 1\n");
    let error = koji
        .submit_scratch_build(SOURCE, "rawhide")
        .await
        .expect_err("no KDC");
    assert!(error.is_transient(), "{error}");
}

#[tokio::test]
async fn missing_programs_are_named() {
    let bin = FakeBin::new();
    let only_bin = OsString::from(bin.path());
    let koji = bin.client(
        "https://koji.example/kojihub",
        only_bin.clone(),
        Duration::from_secs(10),
    );
    let error = koji
        .submit_scratch_build(SOURCE, "rawhide")
        .await
        .expect_err("no kinit");
    assert!(matches!(error, ClientError::Auth { .. }), "{error}");
    assert!(error.to_string().contains("kinit was not found"), "{error}");

    bin.add("kinit", KINIT);
    let error = koji.cancel_task(5).await.expect_err("no koji");
    assert!(matches!(error, ClientError::Permanent { .. }), "{error}");
    assert!(error.to_string().contains("koji was not found"), "{error}");
}

#[tokio::test]
async fn arguments_that_look_like_options_are_refused() {
    let bin = FakeBin::new();
    bin.add("kinit", KINIT);
    bin.add("koji", KOJI_BUILD_OK);
    let koji = bin.client(
        "https://koji.example/kojihub",
        bin.search_path(),
        Duration::from_secs(10),
    );
    let error = koji
        .submit_scratch_build(SOURCE, "--help")
        .await
        .expect_err("refused");
    assert!(matches!(error, ClientError::Permanent { .. }), "{error}");
    assert_eq!(bin.read("kinit.args"), "");
}

#[tokio::test]
async fn a_redirect_from_the_hub_is_a_permanent_error_and_is_not_followed() {
    let elsewhere = RawServer::start(Answer::json("<methodResponse/>")).await;
    let redirecting = RawServer::start(Answer::redirect(
        307,
        &format!("{}/kojihub", elsewhere.url()),
    ))
    .await;
    let koji = client(&format!("{}/kojihub", redirecting.url()), KojiAuth::None);
    let error = koji
        .submit_scratch_build(SOURCE, "rawhide")
        .await
        .expect_err("a redirect");
    assert_eq!(
        error,
        ClientError::Permanent {
            service: "koji",
            message: format!(
                "build: 307 Temporary Redirect: redirected to {}, and redirects are not followed (is the configured URL the API's own?)",
                elsewhere.host()
            ),
        }
    );
    assert!(
        elsewhere.requests().is_empty(),
        "{:?}",
        elsewhere.requests()
    );
}

#[tokio::test]
async fn an_endless_answer_is_refused_at_the_limit() {
    let server = RawServer::start(Answer::Endless { status: 200 }).await;
    let koji = client(&format!("{}/kojihub", server.url()), KojiAuth::None);
    let error = koji.task_info(1).await.expect_err("too large");
    assert_eq!(
        error,
        ClientError::Permanent {
            service: "koji",
            message: "getTaskInfo: the answer is larger than the limit of 64 MiB (67108864 bytes)"
                .to_owned(),
        }
    );

    // An error's body is only read for its start.
    let server = RawServer::start(Answer::Endless { status: 502 }).await;
    let koji = client(&format!("{}/kojihub", server.url()), KojiAuth::None);
    let error = koji.task_info(1).await.expect_err("502");
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("HTTP 502"), "{error}");
    assert!(!error.to_string().contains("timed out"), "{error}");
}

#[tokio::test]
async fn a_koji_that_prints_a_lot_keeps_its_task_id() {
    let bin = FakeBin::new();
    bin.add("kinit", KINIT);
    bin.add(
        "koji",
        "echo 'Created task: 123'\ni=0\nwhile [ $i -lt 20000 ]; do echo 'Watching tasks (this may be safely interrupted)...'; i=$((i+1)); done\n",
    );
    let koji = bin.client(
        "https://koji.example/kojihub",
        bin.search_path(),
        Duration::from_secs(60),
    );
    assert_eq!(
        koji.submit_scratch_build(SOURCE, "rawhide").await,
        Ok(Submitted::Task { id: 123 })
    );
}

/// Records its environment (`export -p` is a builtin), then does what
/// [`KINIT`] does.
const KINIT_RECORDING_ENV: &str = r#"d=${0%/*}
export -p > "$d/kinit.env"
: > "${KRB5CCNAME#FILE:}"
"#;

const KOJI_RECORDING_ENV: &str = r#"d=${0%/*}
export -p > "$d/koji.env"
echo "Created task: 123"
"#;

/// The child processes get a clean environment (support::child_env).
#[test]
fn kinit_and_koji_get_only_the_environment_they_need() {
    if !support::child_env::rerun_with_service_secrets(
        "kinit_and_koji_get_only_the_environment_they_need",
    ) {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let bin = FakeBin::new();
        bin.add("kinit", KINIT_RECORDING_ENV);
        bin.add("koji", KOJI_RECORDING_ENV);
        let search_path = bin.search_path();
        let koji = bin.client(
            "https://koji.example/kojihub",
            search_path.clone(),
            Duration::from_secs(10),
        );
        assert_eq!(
            koji.submit_scratch_build(SOURCE, "rawhide").await,
            Ok(Submitted::Task { id: 123 })
        );
        for program in ["kinit", "koji"] {
            let env =
                support::child_env::check_child_env(program, &bin.read(&format!("{program}.env")));
            assert_eq!(
                env.get("PATH").cloned(),
                Some(search_path.to_string_lossy().into_owned()),
                "{program}"
            );
        }
    });
}
