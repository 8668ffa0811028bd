//! The whole system for end-to-end tests: the real service process, its own
//! database and vhost on the local PostgreSQL and RabbitMQ, and stand-ins for
//! Koji, Testing Farm, dist-git and FASJSON that follow the real APIs. Tests
//! publish real bus messages, play what the outside world does (Koji closes
//! a task, Testing Farm finishes a request), and wait until the system
//! settles before asserting.
//!
//! Kerberos is real, as in production: a KDC of the stack's own with the
//! service's principal and keytab, `[koji] auth = "kerberos"`, so scratch
//! builds and cancellations go through `kinit -k -t` and the real `koji`
//! client (PyPI) with its GSSAPI login, and FASJSON calls through `curl
//! --negotiate`. The Koji and FASJSON stand-ins check each login against
//! the KDC and refuse writes and calls without one.

use std::time::Duration;

use clients::standins::distgit::DistGitStandin;
use clients::standins::fas::FasStandin;
use clients::standins::kerberos::{self, Kdc};
use clients::standins::koji::KojiHub;
use clients::standins::testing_farm::TestingFarmStandin;
use clients::standins::tls::TestCa;
use serde_json::Value;

use super::{
    Service, TestDb, TestVhost, field_table, fm_properties, fresh_database, fresh_vhost, get_json,
    publish_raw, wait_until,
};

pub const TF_TOKEN: &str = "tf-secret-token";
pub const WEBHOOK_TOKEN: &str = "webhook-secret-token";
pub const DISTGIT_TOKEN: &str = "distgit-secret-token";

pub struct Stack {
    pub db: TestDb,
    /// The vhost of its own on the shared broker (none on a private broker).
    pub vhost: Option<TestVhost>,
    /// Where the service consumes and publishes.
    pub amqp_url: String,
    pub koji: KojiHub,
    pub testing_farm: TestingFarmStandin,
    pub distgit: DistGitStandin,
    pub fas: FasStandin,
    pub kdc: Kdc,
    /// The directory of the Python with `koji` and `gssapi` (PyPI): the
    /// real `koji` client the service runs.
    python_bin: std::path::PathBuf,
    /// The service's home, with the `koji` client's configuration
    /// (`~/.koji/config`), as Fedora's `/etc/koji.conf` gives it in the image.
    home: tempfile::TempDir,
    /// The CA of the Koji stand-in's certificate, which the service trusts.
    pub ca: TestCa,
    pub port: u16,
}

impl Stack {
    pub async fn start() -> Stack {
        let vhost = fresh_vhost();
        let amqp_url = vhost.amqp_url.clone();
        Self::start_with(Some(vhost), amqp_url).await
    }

    /// The stack on a broker of the test's own (a private node it may stop).
    pub async fn start_on(amqp_url: &str) -> Stack {
        Self::start_with(None, amqp_url.to_owned()).await
    }

    async fn start_with(vhost: Option<TestVhost>, amqp_url: String) -> Stack {
        let db = fresh_database().await;
        let python = super::python("gssapi, koji, requests_gssapi");
        let kdc = Kdc::start().expect("a KDC (Debian's krb5-kdc, krb5-admin-server)");
        let acceptor = kdc.acceptor(&python);
        let python_bin = std::path::Path::new(&python)
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        let testing_farm = TestingFarmStandin::start_with_token(TF_TOKEN)
            .await
            .expect("Testing Farm stand-in");
        // Today's public composes, and Fedora 34's: the gating tests replay
        // real Bodhi and Koji messages of 2021, when Testing Farm listed it.
        testing_farm.set_composes(
            "public",
            &[
                "Fedora-Rawhide",
                "Fedora-43",
                "Fedora-42",
                "Fedora-41",
                "Fedora-34",
                "Fedora-eln",
                "CentOS-Stream-9",
                "CentOS-Stream-10",
            ],
        );
        let ca = TestCa::new().expect("a test CA (openssl)");
        let koji = KojiHub::start_kerberos(acceptor.clone(), &ca)
            .await
            .expect("Koji stand-in");
        let home = tempfile::Builder::new()
            .prefix("fci-home-")
            .tempdir()
            .expect("a home for the service");
        std::fs::create_dir_all(home.path().join(".koji")).expect("~/.koji");
        // Fedora's profile (the koji package's /etc/koji.conf), on the stand-in.
        std::fs::write(
            home.path().join(".koji/config"),
            format!(
                "[koji]\nserver = {}\nweburl = https://koji.fedoraproject.org/koji\n\
                 topurl = https://kojipkgs.fedoraproject.org/\nauthtype = kerberos\n",
                koji.url()
            ),
        )
        .expect("~/.koji/config");
        Stack {
            db,
            vhost,
            amqp_url,
            koji,
            testing_farm,
            distgit: DistGitStandin::start_with_token(DISTGIT_TOKEN)
                .await
                .expect("dist-git stand-in"),
            fas: FasStandin::start_kerberos(acceptor)
                .await
                .expect("FASJSON stand-in"),
            kdc,
            python_bin,
            home,
            ca,
            port: super::free_port(),
        }
    }

    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The service's configuration: everything local, quick retries and
    /// polls so that tests settle in seconds.
    pub fn config(&self) -> String {
        format!(
            r##"
[database]
url = "{db}"

[bus]
amqp_url = "{amqp}"

[[bus.bindings]]
queue = "fedora-ci-worker"
exchange = "amq.topic"
routing_keys = ["#"]

[api]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"

[testing_farm]
api_url = "{tf}"
token = "{TF_TOKEN}"
webhook_token = "{WEBHOOK_TOKEN}"

[distgit]
api_url = "{distgit}"
token = "{DISTGIT_TOKEN}"

[koji]
hub_url = "{koji}"
auth = "kerberos"
principal = "{principal}"
keytab = "{keytab}"

[fas]
url = "{fas}"

[decider]
poll_interval_ms = 200

[jobs]
lease_seconds = 3
backoff_base_ms = 50
backoff_max_seconds = 1
poll_interval_ms = 200
breaker_failures = 1000
periodic_interval_seconds = 1
testing_farm_poll_after_seconds = 1
koji_poll_after_seconds = 2

[gating]
publish_retry_max_seconds = 2

[fedora_ci]
# No ELN package list is fetched (nothing outside the machine is called);
# a test that wants one points FEDORA_CI__FEDORA_CI__ELN_PACKAGES_URLS at a stand-in.
eln_packages_urls = []
"##,
            db = self.db.url,
            amqp = self.amqp_url,
            port = self.port,
            tf = self.testing_farm.url(),
            distgit = self.distgit.url(),
            koji = self.koji.url(),
            principal = kerberos::SERVICE_PRINCIPAL,
            keytab = self.kdc.keytab().display(),
            fas = self.fas.url(),
        )
    }

    /// What the service's environment needs for its Kerberos route, as a
    /// deployment sets it: `KRB5_CONFIG` naming the realm's KDC, the real
    /// `koji` client on `PATH`, a home with its configuration, and the CA
    /// of the hub's certificate.
    pub fn kerberos_env(&self) -> Vec<(String, String)> {
        let mut path = self.python_bin.display().to_string();
        if let Some(system) = std::env::var_os("PATH") {
            path.push(':');
            path.push_str(&system.to_string_lossy());
        }
        vec![
            (
                "KRB5_CONFIG".to_owned(),
                self.kdc.krb5_config().display().to_string(),
            ),
            ("PATH".to_owned(), path),
            ("HOME".to_owned(), self.home.path().display().to_string()),
            // Koji's HTTPS, by a private CA: the service's own client and
            // curl read SSL_CERT_FILE, koji (Python requests) REQUESTS_CA_BUNDLE.
            (
                "SSL_CERT_FILE".to_owned(),
                self.ca.ca_file().display().to_string(),
            ),
            (
                "REQUESTS_CA_BUNDLE".to_owned(),
                self.ca.ca_file().display().to_string(),
            ),
        ]
    }

    /// [`Stack::kerberos_env`] with `extra` settings after it.
    pub fn env_with<'a>(
        &'a self,
        kerberos: &'a [(String, String)],
        extra: &[(&'a str, &'a str)],
    ) -> Vec<(&'a str, &'a str)> {
        kerberos
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(extra.iter().copied())
            .collect()
    }

    /// The service with every role, with extra `FEDORA_CI__...` settings.
    pub async fn spawn(&self, env: &[(&str, &str)]) -> Service {
        let kerberos = self.kerberos_env();
        let service =
            Service::spawn_with_env(&self.config(), &["run"], &self.env_with(&kerberos, env));
        let api = self.api();
        wait_until(
            Duration::from_secs(60),
            "the service to be ready",
            || async { get_json(&format!("{api}/api/readyz")).await },
        )
        .await;
        service
    }

    /// Publish a serialized message as fedora-messaging would. A pull
    /// request the message describes exists on dist-git from then on, as it
    /// does when Pagure announces it.
    pub async fn publish(&self, message: &Value) {
        if let Some(pullrequest) = message["body"].get("pullrequest") {
            self.distgit.add_pull_request_from_message(pullrequest);
        }
        let id = message["id"].as_str().expect("an id");
        let topic = message["topic"].as_str().expect("a topic");
        let headers = message
            .get("headers")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        let body = events::python_json_dumps(&message["body"]);
        publish_raw(
            &self.amqp_url,
            topic,
            fm_properties(id, field_table(&headers)),
            body.as_bytes(),
        )
        .await;
    }

    /// The flags on a pull request, by check name.
    pub fn flags(
        &self,
        project: &str,
        pr: i64,
    ) -> std::collections::BTreeMap<String, clients::distgit::Flag> {
        self.distgit
            .flags()
            .get(&(project.to_string(), pr))
            .map(|by_uid| {
                by_uid
                    .values()
                    .map(|f| (f.username.clone(), f.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until the service has canceled Koji task `task_id`.
    pub async fn task_canceled(&self, task_id: i64) {
        wait_until(
            Duration::from_secs(60),
            &format!("Koji task {task_id} canceled"),
            || async { self.koji.cancellations().contains(&task_id).then_some(()) },
        )
        .await;
    }

    /// Waits for the first scratch build submitted to the Koji stand-in, closes its task
    /// (one `x86_64` build) and publishes Koji's message for it; the task id.
    pub async fn close_first_build(&self) -> i64 {
        let task = wait_until(Duration::from_secs(30), "a build submitted", || async {
            self.koji.submissions().first().map(|s| s.task_id)
        })
        .await;
        self.koji
            .set_task_state(task, events::states::KojiTaskState::Closed, &["x86_64"]);
        self.publish_koji_task(task).await;
        task
    }

    /// Publish what Koji's message bus plugin sends for the task's current state, once the
    /// service has recorded the task as its build. Koji takes seconds at least to start a task
    /// and publish its first change; on a loaded test machine the message could otherwise
    /// overtake the service's own record of the submission, and be decided as somebody
    /// else's task (the periodic poll would then bring the state, later than a test waits).
    pub async fn publish_koji_task(&self, task_id: i64) {
        let pool = self.db.pool().await;
        wait_until(
            Duration::from_secs(60),
            &format!("Koji task {task_id} recorded as our build"),
            || async {
                let known: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM koji_builds WHERE task_id = $1")
                        .bind(task_id)
                        .fetch_one(&pool)
                        .await
                        .ok()?;
                (known > 0).then_some(())
            },
        )
        .await;
        pool.close().await;
        let message = serde_json::json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "topic": "org.fedoraproject.prod.buildsys.task.state.change",
            "headers": {
                "fedora_messaging_schema": "base.message",
                "fedora_messaging_schema_package": "fedora_messaging",
                "fedora_messaging_severity": 20,
                "sent-at": chrono::Utc::now().to_rfc3339(),
            },
            "body": self.koji.task_message(task_id),
        });
        self.publish(&message).await;
    }

    /// Wait until nothing is left to do now: no event waits for its
    /// decisions, no job runs or is due within a few seconds, three times in
    /// a row 100 ms apart. The periodic reads of unfinished requests and
    /// tasks do not count: they go on as long as something is unfinished.
    pub async fn settle(&self, pool: &sqlx::PgPool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut calm = 0;
        while calm < 3 {
            if tokio::time::Instant::now() >= deadline {
                let busy: Vec<(String, String, String, i32, Option<String>)> = sqlx::query_as(
                    "SELECT kind, dedup_key, state, attempts, last_error FROM jobs
                     WHERE state IN ('pending', 'running') ORDER BY id",
                )
                .fetch_all(pool)
                .await
                .unwrap_or_default();
                panic!("the system did not settle within 60 s; jobs still to do: {busy:#?}");
            }
            let busy: Option<i64> = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM events WHERE status = 'received')
                      + (SELECT count(*) FROM jobs
                         WHERE (state = 'running'
                                OR (state = 'pending' AND run_at < now() + interval '3 seconds'))
                           AND dedup_key NOT LIKE '%:poll:%'
                           AND kind <> 'poll-koji-task')",
            )
            .fetch_one(pool)
            .await
            .ok();
            calm = if busy == Some(0) { calm + 1 } else { 0 };
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The real PR-opened message from a fork (`rpms/optee_os`, PR 2, head
/// `889f07a`), with an id of its own.
pub fn opened() -> Value {
    let mut message = message("pagure.pull-request.new-fork.json");
    message["id"] = serde_json::json!(uuid::Uuid::new_v4().to_string());
    message
}

/// The real comment message, on the pull request of [`opened`], with the
/// newest comment `id` written by `user`.
pub fn pr_comment(id: i64, user: &str, text: &str) -> Value {
    use serde_json::json;
    let mut message = message("pagure.pull-request.comment.added.json");
    let mut pr = opened()["body"]["pullrequest"].clone();
    let mut comment = message["body"]["pullrequest"]["comments"][0].clone();
    comment["id"] = json!(id);
    comment["comment"] = json!(text);
    comment["user"]["name"] = json!(user);
    comment["user"]["url_path"] = json!(format!("user/{user}"));
    pr["comments"] = json!([comment]);
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    message["body"]["agent"] = json!(user);
    message["body"]["pullrequest"] = pr;
    message
}

/// A real bus message of tests/data/bus.
pub fn message(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/bus")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    events::parse_serialized(&text)
        .expect("serialized")
        .into_iter()
        .next()
        .expect("one entry")
        .expect("a valid entry")
        .to_serialized()
}
