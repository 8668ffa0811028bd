//! Configuration: built-in defaults for a local machine, then a TOML file,
//! then `FEDORA_CI__<SECTION>__<KEY>` environment variables.
//!
//! The `[bus]` section takes the keys of a fedora-messaging `config.toml`, or
//! `bus.config_file` names such a file, read as it is. Secrets can come from
//! `*_file` keys; they are held in [`SecretString`] and never printed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "FEDORA_CI";

/// The keys that take comma-separated lists when set from the environment.
const ENV_LIST_KEYS: &[&str] = &[
    "fedora_ci.enabled_projects",
    "fedora_ci.disabled_projects",
    "fedora_ci.enabled_tests",
    "fedora_ci.disabled_projects_for_eln",
    "fedora_ci.eln_packages",
    "fedora_ci.eln_packages_urls",
    "gating.enabled_releases",
    "gating.tests",
];

/// A configuration problem, worded as one line that names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn key(key: &str, problem: impl std::fmt::Display) -> Self {
        ConfigError(format!("{key}: {problem}"))
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: Database,
    pub bus: Bus,
    pub ingest: Ingest,
    pub api: Api,
    pub testing_farm: TestingFarm,
    pub distgit: Distgit,
    pub koji: Koji,
    pub fas: Fas,
    pub fedora_ci: FedoraCi,
    pub gating: Gating,
    pub decider: Decider,
    pub jobs: Jobs,
    pub sentry: Sentry,
    pub service: Service,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    #[serde(serialize_with = "redact_url_password")]
    pub url: SecretString,
    pub max_connections: u32,
}

/// The AMQP side, in fedora-messaging's vocabulary.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Bus {
    /// An existing fedora-messaging `config.toml`; its keys replace the ones below.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_file: Option<PathBuf>,
    #[serde(serialize_with = "redact_url_password")]
    pub amqp_url: SecretString,
    pub topic_prefix: String,
    pub publish_exchange: String,
    pub passive_declares: bool,
    pub tls: Tls,
    pub client_properties: BTreeMap<String, toml::Value>,
    pub exchanges: BTreeMap<String, Exchange>,
    pub queues: BTreeMap<String, Queue>,
    pub bindings: Vec<Binding>,
    pub qos: Qos,
    /// AMQP heartbeat, unless the URL sets `heartbeat=`.
    pub heartbeat_seconds: u16,
    /// Reconnection backoff doubles from one second up to this cap.
    pub reconnect_max_seconds: u64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub ca_cert: Option<PathBuf>,
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    #[serde(rename = "type", default = "default_exchange_type")]
    pub kind: String,
    #[serde(default = "yes")]
    pub durable: bool,
    #[serde(default)]
    pub auto_delete: bool,
    #[serde(default)]
    pub arguments: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    #[serde(default = "yes")]
    pub durable: bool,
    #[serde(default)]
    pub auto_delete: bool,
    #[serde(default)]
    pub exclusive: bool,
    #[serde(default)]
    pub arguments: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// Without a queue, the binding applies to the server-named queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    pub exchange: String,
    pub routing_keys: Vec<String>,
    #[serde(default)]
    pub arguments: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Qos {
    #[serde(default)]
    pub prefetch_size: u32,
    #[serde(default = "default_prefetch")]
    pub prefetch_count: u16,
}

/// How received messages are written to the inbox.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ingest {
    /// Bodies larger than this are recorded as dead, not parsed.
    pub max_body_bytes: usize,
    /// At most this many messages go into one INSERT and one acknowledgement.
    pub batch_size: usize,
    /// A batch also closes once its messages reach this many bytes.
    pub batch_max_bytes: usize,
    /// How long a partial batch may wait for more messages.
    pub batch_wait_ms: u64,
    /// Writes to an unreachable database are retried, with backoff up to this cap.
    pub retry_max_seconds: u64,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    pub listen: String,
    pub public_url: String,
    #[serde(serialize_with = "redact_secret")]
    pub admin_token: Option<SecretString>,
    pub admin_token_file: Option<PathBuf>,
    /// Open HTTP connections at most; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// A request's head (line and headers) must arrive within this, from the
    /// connection's start or the end of its previous response.
    pub header_timeout_seconds: u64,
    /// The longest pause while a request's body arrives.
    pub body_timeout_seconds: u64,
    /// A request must be answered within this.
    pub request_timeout_seconds: u64,
    /// Request bodies larger than this are refused (413); the Testing Farm
    /// webhook takes 4 KiB at most whatever this says.
    pub max_body_bytes: usize,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TestingFarm {
    pub api_url: String,
    #[serde(serialize_with = "redact_secret")]
    pub token: Option<SecretString>,
    pub token_file: Option<PathBuf>,
    #[serde(serialize_with = "redact_secret")]
    pub webhook_token: Option<SecretString>,
    pub webhook_token_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Distgit {
    pub url: String,
    /// Where the dist-git API is called; defaults to `url`.
    pub api_url: Option<String>,
    /// The service's own dist-git account: its comments are never commands.
    pub username: String,
    #[serde(serialize_with = "redact_secret")]
    pub token: Option<SecretString>,
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Koji {
    pub hub_url: String,
    pub web_url: String,
    /// Koji's file tree (its `topurl`), where build logs are.
    pub top_url: String,
    pub auth: KojiAuth,
    pub principal: Option<String>,
    pub keytab: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KojiAuth {
    Kerberos,
    None,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fas {
    pub url: String,
    /// How long a looked-up group membership is trusted.
    pub cache_seconds: u64,
}

/// How jobs run.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Jobs {
    /// A running job's lease: a job whose runner died is taken over after this.
    pub lease_seconds: u64,
    /// Attempts of a dist-git write (a flag, a comment) before it gives up:
    /// more than other jobs get, since a flag that is never sent leaves the
    /// pull request showing an old state.
    pub distgit_attempts: i32,
    /// First retry delay; doubles with each attempt (with full jitter).
    pub backoff_base_ms: u64,
    pub backoff_max_seconds: u64,
    /// How often to look for due jobs when no notification arrives.
    pub poll_interval_ms: u64,
    /// Consecutive failures of a service that pause its queue.
    pub breaker_failures: u32,
    /// How long a paused queue first waits before trying its service again.
    pub breaker_open_seconds: u64,
    pub breaker_max_open_seconds: u64,
    /// How often the periodic work runs.
    pub periodic_interval_seconds: u64,
    /// Unfinished Testing Farm requests not updated for this long are read.
    pub testing_farm_poll_after_seconds: u64,
    /// Unfinished Koji tasks not heard of for this long are polled.
    pub koji_poll_after_seconds: u64,
    /// Test runs with no result this long after they were decided end as errors.
    pub testing_farm_timeout_seconds: u64,
    /// Scratch builds with no result this long after they were decided end as errors.
    pub koji_timeout_seconds: u64,
    /// Finished jobs are deleted after this many days.
    pub retention_days: u64,
    /// Per queue: `concurrency` and `rate_per_second`.
    pub queues: BTreeMap<String, JobQueue>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobQueue {
    pub concurrency: usize,
    pub rate_per_second: Option<f64>,
}

/// How recorded events are turned into decisions and jobs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Decider {
    /// Events decided in one transaction.
    pub batch_size: u32,
    /// Deciders working at once in this process. They take different
    /// events (locked rows are skipped); while one waits on the database the
    /// other works.
    pub concurrency: usize,
    /// How often to look for events when no notification arrives.
    pub poll_interval_ms: u64,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FedoraCi {
    pub deployment: String,
    pub check_name_prefix: String,
    pub comment_prefix: String,
    /// The user documentation linked from help and syntax-error replies.
    pub docs_url: String,
    pub run_by_default: bool,
    pub enabled_projects: Vec<String>,
    pub disabled_projects: Vec<String>,
    pub enabled_tests: Vec<String>,
    pub disabled_projects_for_eln: Vec<String>,
    /// Source packages that are part of ELN whatever the fetched lists say.
    pub eln_packages: Vec<String>,
    /// A Packit-style dashboard that reads our API; flags then link its job
    /// pages (`<dashboard_url>/jobs/koji/<id>`) instead of ours.
    pub dashboard_url: Option<String>,
    /// The ELN package lists (plain text, one source package a line) fetched
    /// on a schedule; empty: none is fetched, and only `eln_packages` counts.
    pub eln_packages_urls: Vec<String>,
    /// How often the lists are fetched again.
    pub eln_packages_refresh_seconds: u64,
    pub tests: BTreeMap<String, TestRepo>,
}

/// Tests of Bodhi updates and the CI messages that report them (SPEC F6).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Gating {
    pub enabled: bool,
    /// Updates with more builds are skipped.
    pub max_builds: usize,
    /// `fedora` (rawhide included), `epel`, `eln`.
    pub enabled_releases: Vec<String>,
    /// Which Bodhi release is rawhide (e.g. `f45`); without it, builds made for the
    /// `rawhide` Koji target mark their release as rawhide.
    pub rawhide_release: Option<String>,
    pub tests: Vec<String>,
    /// CI message topics start with this.
    pub topic_prefix: String,
    pub contact: GatingContact,
    /// Overrides of the test case names, per test.
    pub test_cases: BTreeMap<String, GatingTestCase>,
    /// While the broker refuses messages, the publisher tries again after at most this long.
    pub publish_retry_max_seconds: u64,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatingContact {
    pub name: String,
    pub team: String,
    pub email: String,
    pub docs: String,
    /// Defaults to `api.public_url`.
    pub url: Option<String>,
    pub irc: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatingTestCase {
    pub namespace: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub category: Option<String>,
    pub docs: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TestRepo {
    pub url: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sentry {
    #[serde(serialize_with = "redact_secret")]
    pub dsn: Option<SecretString>,
    pub environment: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// After SIGTERM, in-flight work has this long to finish before the process exits.
    pub shutdown_grace_seconds: u64,
    /// `text` for people at a terminal, `json` for log collectors.
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// What `fedora_ci.eln_packages_refresh_seconds` may be: fetching more often
/// than the periodic pass runs gains nothing, and a list older than a month
/// is not one to keep.
const ELN_REFRESH_SECONDS: std::ops::RangeInclusive<u64> = 60..=2_592_000;

/// The job queues, one per external service (see `store::jobs::JobKind::queue`).
pub const JOB_QUEUES: &[&str] = &["koji", "testing-farm", "distgit", "lookup"];

/// The tests Fedora CI runs after a successful scratch build (REFERENCE.md).
pub const KNOWN_TESTS: &[&str] = &[
    "installability",
    "rpminspect",
    "rpmlint",
    "rmdepcheck",
    "license-validate",
    "custom",
];

/// Defaults for a developer machine: local PostgreSQL and RabbitMQ, no tokens
/// (so every external service is in dry-run), production URLs for reads.
const DEFAULTS: &str = r#"
[database]
url = "postgres://postgres@127.0.0.1:5432/fedora_ci"
max_connections = 10

[bus]
amqp_url = "amqp://guest:guest@127.0.0.1:5672/%2F"
topic_prefix = ""
publish_exchange = "amq.topic"
passive_declares = false
heartbeat_seconds = 30
reconnect_max_seconds = 60

[bus.tls]

[bus.client_properties]
app = "fedora-ci-worker"
app_url = "https://src.fedoraproject.org"

[bus.exchanges."amq.topic"]
type = "topic"
durable = true
auto_delete = false

[bus.queues.fedora-ci-worker]
durable = true
auto_delete = false
exclusive = false

[[bus.bindings]]
queue = "fedora-ci-worker"
exchange = "amq.topic"
routing_keys = [
    "org.fedoraproject.*.pagure.pull-request.#",
    "org.fedoraproject.*.pagure.git.receive",
    "org.fedoraproject.*.git.receive",
    "org.fedoraproject.*.buildsys.task.state.change",
    "org.fedoraproject.*.buildsys.build.state.change",
    "org.fedoraproject.*.buildsys.tag",
    "org.fedoraproject.*.bodhi.update.status.testing.koji-build-group.build.complete",
]

[bus.qos]
prefetch_size = 0
prefetch_count = 1000

[ingest]
max_body_bytes = 1048576
batch_size = 500
batch_max_bytes = 4194304
batch_wait_ms = 5
retry_max_seconds = 30

[api]
listen = "127.0.0.1:8080"
public_url = "http://127.0.0.1:8080"
max_connections = 1024
header_timeout_seconds = 10
body_timeout_seconds = 10
request_timeout_seconds = 30
max_body_bytes = 16384

[testing_farm]
api_url = "https://api.testing-farm.io/v0.1"

[distgit]
url = "https://src.fedoraproject.org"
username = "fedora-ci"

[koji]
hub_url = "https://koji.fedoraproject.org/kojihub"
web_url = "https://koji.fedoraproject.org/koji"
top_url = "https://kojipkgs.fedoraproject.org"
auth = "kerberos"

[fas]
url = "https://fasjson.fedoraproject.org"
cache_seconds = 3600

[fedora_ci]
deployment = "prod"
check_name_prefix = "Fedora CI"
comment_prefix = "/packit-ci"
docs_url = "https://packit.dev/fedora-ci"
run_by_default = true
enabled_projects = []
disabled_projects = []
enabled_tests = ["installability", "rpminspect", "rpmlint", "rmdepcheck", "license-validate", "custom"]
disabled_projects_for_eln = []
eln_packages = []
eln_packages_urls = [
    "https://tiny.distro.builders/view-all-source-package-name-list--view-eln.txt",
    "https://tiny.distro.builders/view-all-source-package-name-list--view-eln-extras.txt",
]
eln_packages_refresh_seconds = 43200

[fedora_ci.tests]

[gating]
enabled = true
max_builds = 20
enabled_releases = ["fedora"]
tests = ["installability", "rpminspect", "rpmlint", "custom"]
topic_prefix = "org.centos.prod.ci"
publish_retry_max_seconds = 30

[gating.contact]
name = "Fedora CI"
team = "Fedora CI"
email = "ci@lists.fedoraproject.org"
docs = "https://docs.fedoraproject.org/en-US/ci/"

[gating.test_cases]

[decider]
batch_size = 500
concurrency = 2
poll_interval_ms = 1000

[jobs]
lease_seconds = 60
distgit_attempts = 50
backoff_base_ms = 2000
backoff_max_seconds = 600
poll_interval_ms = 1000
breaker_failures = 5
breaker_open_seconds = 30
breaker_max_open_seconds = 600
periodic_interval_seconds = 60
testing_farm_poll_after_seconds = 300
koji_poll_after_seconds = 900
testing_farm_timeout_seconds = 43200
koji_timeout_seconds = 86400
retention_days = 30

[jobs.queues.koji]
concurrency = 4
rate_per_second = 5.0

[jobs.queues.testing-farm]
concurrency = 4
rate_per_second = 5.0

[jobs.queues.distgit]
concurrency = 4
rate_per_second = 10.0

[jobs.queues.lookup]
concurrency = 4
rate_per_second = 10.0

[sentry]

[service]
shutdown_grace_seconds = 25
log_format = "text"
"#;

/// Where the configuration file comes from: `--config`, else `$FEDORA_CI_CONFIG`
/// (clap fills that in), else none.
pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
    load_with_env(file, None)
}

/// [`load`] with an explicit environment, for tests.
pub fn load_with_env(
    file: Option<&Path>,
    env: Option<std::collections::HashMap<String, String>>,
) -> Result<Settings, ConfigError> {
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
    if let Some(file) = file {
        if !file.is_file() {
            return Err(ConfigError(format!(
                "--config: {} does not exist or is not a file",
                file.display()
            )));
        }
        builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml));
    }
    let environment = || {
        let mut environment = config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",");
        for key in ENV_LIST_KEYS {
            environment = environment.with_list_parse_key(key);
        }
        if let Some(env) = &env {
            environment = environment.source(Some(env.clone().into_iter().collect()));
        }
        environment
    };
    let merged = builder
        .add_source(environment())
        .build()
        .map_err(|e| ConfigError(e.to_string()))?;
    let mut settings: Settings = merged
        .try_deserialize()
        .map_err(|e| ConfigError(e.to_string()))?;
    // The built-in queue and exchange are defaults, not a base to add to: queues or exchanges
    // the operator names (in the file or the environment) replace them. Maps merge key by key,
    // so the built-in ones are dropped here; one the operator names again keeps the built-in
    // values of the fields it does not set.
    let mut own = config::Config::builder();
    if let Some(file) = file {
        own = own.add_source(config::File::from(file).format(config::FileFormat::Toml));
    }
    let own = own
        .add_source(environment())
        .build()
        .map_err(|e| ConfigError(e.to_string()))?;
    let named = |key: &str| -> Option<BTreeSet<String>> {
        own.get_table(key)
            .ok()
            .map(|table| table.into_keys().collect())
    };
    if let Some(names) = named("bus.queues") {
        settings.bus.queues.retain(|name, _| names.contains(name));
        // The operator's one queue, and no bindings of their own: the built-in bindings (the
        // topics Fedora CI decides) go to it, as they went to the queue it replaces.
        let own_bindings = own.get_array("bus.bindings").is_ok();
        if let (false, [queue]) = (own_bindings, Vec::from_iter(names).as_slice()) {
            for binding in &mut settings.bus.bindings {
                binding.queue = Some(queue.clone());
            }
        }
    }
    if let Some(names) = named("bus.exchanges") {
        settings
            .bus
            .exchanges
            .retain(|name, _| names.contains(name));
    }
    settings.resolve(file.and_then(Path::parent))?;
    settings.validate()?;
    Ok(settings)
}

impl Settings {
    /// Fill in what other keys imply: secrets from files, the fedora-messaging
    /// file; and tidy the lists that may have come from the environment.
    fn resolve(&mut self, config_dir: Option<&Path>) -> Result<(), ConfigError> {
        let ci = &mut self.fedora_ci;
        for list in [
            &mut ci.enabled_projects,
            &mut ci.disabled_projects,
            &mut ci.enabled_tests,
            &mut ci.disabled_projects_for_eln,
            &mut ci.eln_packages,
            &mut ci.eln_packages_urls,
            &mut self.gating.enabled_releases,
            &mut self.gating.tests,
        ] {
            tidy_list(list);
        }
        if let Some(path) = self.bus.config_file.clone() {
            let path = relative_to(config_dir, &path);
            let fm = FedoraMessagingConfig::read(&path)?;
            fm.apply(&mut self.bus);
            self.bus.config_file = Some(path);
        }
        read_secret_file(
            "api.admin_token",
            &mut self.api.admin_token,
            &self.api.admin_token_file,
        )?;
        read_secret_file(
            "testing_farm.token",
            &mut self.testing_farm.token,
            &self.testing_farm.token_file,
        )?;
        read_secret_file(
            "testing_farm.webhook_token",
            &mut self.testing_farm.webhook_token,
            &self.testing_farm.webhook_token_file,
        )?;
        read_secret_file(
            "distgit.token",
            &mut self.distgit.token,
            &self.distgit.token_file,
        )?;
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        check_secret_url(
            "database.url",
            self.database.url.expose_secret(),
            &["postgres", "postgresql"],
        )?;
        // Tokens others present to us: guessable ones would open the door.
        check_token(
            "api.admin_token",
            self.api.admin_token.as_ref(),
            MIN_COMPARED_TOKEN,
        )?;
        check_token(
            "testing_farm.webhook_token",
            self.testing_farm.webhook_token.as_ref(),
            MIN_COMPARED_TOKEN,
        )?;
        // Tokens we present to others: their length is the issuer's business.
        check_token("testing_farm.token", self.testing_farm.token.as_ref(), 1)?;
        check_token("distgit.token", self.distgit.token.as_ref(), 1)?;
        if self.database.max_connections == 0 {
            return Err(ConfigError::key(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        self.bus.validate()?;
        if self.ingest.batch_size == 0 {
            return Err(ConfigError::key("ingest.batch_size", "must be at least 1"));
        }
        if self.ingest.batch_max_bytes == 0 {
            return Err(ConfigError::key(
                "ingest.batch_max_bytes",
                "must be at least 1",
            ));
        }
        if self.ingest.max_body_bytes == 0 {
            return Err(ConfigError::key(
                "ingest.max_body_bytes",
                "must be at least 1",
            ));
        }
        self.api
            .listen
            .parse::<std::net::SocketAddr>()
            .map_err(|e| {
                ConfigError::key(
                    "api.listen",
                    format!(
                        "{:?} is not an address like 127.0.0.1:8080 ({e})",
                        self.api.listen
                    ),
                )
            })?;
        check_url("api.public_url", &self.api.public_url, &["http", "https"])?;
        for (key, value) in [
            ("api.max_connections", self.api.max_connections as u64),
            (
                "api.header_timeout_seconds",
                self.api.header_timeout_seconds,
            ),
            ("api.body_timeout_seconds", self.api.body_timeout_seconds),
            (
                "api.request_timeout_seconds",
                self.api.request_timeout_seconds,
            ),
            ("api.max_body_bytes", self.api.max_body_bytes as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::key(key, "must be at least 1"));
            }
        }
        check_url(
            "testing_farm.api_url",
            &self.testing_farm.api_url,
            &["http", "https"],
        )?;
        check_url("distgit.url", &self.distgit.url, &["http", "https"])?;
        if let Some(api_url) = &self.distgit.api_url {
            check_url("distgit.api_url", api_url, &["http", "https"])?;
        }
        check_url("koji.hub_url", &self.koji.hub_url, &["http", "https"])?;
        check_url("koji.web_url", &self.koji.web_url, &["http", "https"])?;
        check_url("koji.top_url", &self.koji.top_url, &["http", "https"])?;
        if self.koji.auth == KojiAuth::Kerberos
            && let Some(keytab) = &self.koji.keytab
            && !keytab.is_file()
        {
            return Err(ConfigError::key(
                "koji.keytab",
                format!("{} does not exist or is not a file", keytab.display()),
            ));
        }
        check_url("fas.url", &self.fas.url, &["http", "https"])?;
        for name in self.jobs.queues.keys() {
            if !JOB_QUEUES.contains(&name.as_str()) {
                return Err(ConfigError::key(
                    &format!("jobs.queues.{name}"),
                    format!("unknown queue; the queues are {}", JOB_QUEUES.join(", ")),
                ));
            }
        }
        for (name, queue) in &self.jobs.queues {
            if queue.concurrency == 0 {
                return Err(ConfigError::key(
                    &format!("jobs.queues.{name}.concurrency"),
                    "must be at least 1",
                ));
            }
        }
        if self.jobs.lease_seconds < 3 {
            return Err(ConfigError::key("jobs.lease_seconds", "must be at least 3"));
        }
        if self.decider.batch_size == 0 {
            return Err(ConfigError::key("decider.batch_size", "must be at least 1"));
        }
        if self.decider.concurrency == 0 {
            return Err(ConfigError::key(
                "decider.concurrency",
                "must be at least 1",
            ));
        }
        if self.distgit.username.trim().is_empty() {
            return Err(ConfigError::key("distgit.username", "must not be empty"));
        }
        for test in &self.fedora_ci.enabled_tests {
            if !KNOWN_TESTS.contains(&test.as_str()) {
                return Err(ConfigError::key(
                    "fedora_ci.enabled_tests",
                    format!(
                        "unknown test {test:?}; known tests: {}",
                        KNOWN_TESTS.join(", ")
                    ),
                ));
            }
        }
        for (name, repo) in &self.fedora_ci.tests {
            if !KNOWN_TESTS.contains(&name.as_str()) {
                return Err(ConfigError::key(
                    &format!("fedora_ci.tests.{name}"),
                    format!("unknown test; known tests: {}", KNOWN_TESTS.join(", ")),
                ));
            }
            check_url(
                &format!("fedora_ci.tests.{name}.url"),
                &repo.url,
                &["http", "https", "git"],
            )?;
        }
        for (key, list) in [
            (
                "fedora_ci.enabled_projects",
                &self.fedora_ci.enabled_projects,
            ),
            (
                "fedora_ci.disabled_projects",
                &self.fedora_ci.disabled_projects,
            ),
        ] {
            for project in list {
                check_url(key, project, &["http", "https"])?;
            }
        }
        check_url(
            "fedora_ci.docs_url",
            &self.fedora_ci.docs_url,
            &["http", "https"],
        )?;
        for name in &self.fedora_ci.eln_packages {
            if !events::typed::is_pagure_name(name) {
                return Err(ConfigError::key(
                    "fedora_ci.eln_packages",
                    format!("{name:?} is not a source package name"),
                ));
            }
        }
        for url in &self.fedora_ci.eln_packages_urls {
            check_url("fedora_ci.eln_packages_urls", url, &["http", "https"])?;
        }
        if !ELN_REFRESH_SECONDS.contains(&self.fedora_ci.eln_packages_refresh_seconds) {
            return Err(ConfigError::key(
                "fedora_ci.eln_packages_refresh_seconds",
                format!(
                    "must be between {} (a minute) and {} (30 days)",
                    ELN_REFRESH_SECONDS.start(),
                    ELN_REFRESH_SECONDS.end()
                ),
            ));
        }
        if let Some(url) = &self.fedora_ci.dashboard_url {
            check_url("fedora_ci.dashboard_url", url, &["http", "https"])?;
        }
        self.gating.validate()?;
        if let Some(dsn) = &self.sentry.dsn {
            if dsn.expose_secret().trim().is_empty() {
                return Err(ConfigError::key(
                    "sentry.dsn",
                    "is empty: set a DSN, or leave the key out to send no error reports",
                ));
            }
            dsn.expose_secret()
                .parse::<sentry::types::Dsn>()
                .map_err(|_| ConfigError::key("sentry.dsn", "is not a valid Sentry DSN"))?;
        }
        Ok(())
    }

    /// Every configured secret, for scrubbing error reports.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> = [
            &self.api.admin_token,
            &self.testing_farm.token,
            &self.testing_farm.webhook_token,
            &self.distgit.token,
        ]
        .into_iter()
        .flatten()
        .map(|s| s.expose_secret().to_owned())
        .collect();
        if let Ok(url) = url::Url::parse(self.database.url.expose_secret())
            && let Some(password) = url.password()
        {
            secrets.push(password.to_owned());
        }
        if let Ok(url) = url::Url::parse(self.bus.amqp_url.expose_secret())
            && let Some(password) = url.password()
            && password != "guest"
        {
            secrets.push(password.to_owned());
        }
        secrets
    }

    /// How the job runner runs, from `[jobs]`.
    pub fn runner_config(&self) -> crate::jobs::RunnerConfig {
        use std::time::Duration;
        let j = &self.jobs;
        crate::jobs::RunnerConfig {
            queues: JOB_QUEUES
                .iter()
                .map(|name| {
                    let queue = j.queues.get(*name);
                    crate::jobs::QueueConfig {
                        name: (*name).to_owned(),
                        concurrency: queue.map_or(4, |q| q.concurrency),
                        rate_per_second: queue.and_then(|q| q.rate_per_second),
                    }
                })
                .collect(),
            lease: Duration::from_secs(j.lease_seconds),
            distgit_attempts: j.distgit_attempts.max(1),
            backoff_base: Duration::from_millis(j.backoff_base_ms),
            backoff_max: Duration::from_secs(j.backoff_max_seconds),
            poll_interval: Duration::from_millis(j.poll_interval_ms),
            breaker: crate::jobs::BreakerConfig {
                failures: j.breaker_failures.max(1),
                open_for: Duration::from_secs(j.breaker_open_seconds),
                max_open_for: Duration::from_secs(j.breaker_max_open_seconds),
            },
            periodic: crate::jobs::PeriodicConfig {
                interval: Duration::from_secs(j.periodic_interval_seconds.max(1)),
                testing_farm_quiet: Duration::from_secs(j.testing_farm_poll_after_seconds),
                koji_quiet: Duration::from_secs(j.koji_poll_after_seconds),
                testing_farm_timeout: Duration::from_secs(j.testing_farm_timeout_seconds),
                koji_timeout: Duration::from_secs(j.koji_timeout_seconds),
                retention: Duration::from_secs(j.retention_days * 86_400),
                eln_lists: self.fedora_ci.eln_packages_urls.clone(),
                eln_refresh: Duration::from_secs(self.fedora_ci.eln_packages_refresh_seconds),
            },
        }
    }

    /// What the flows need to know of the configuration.
    pub fn handler_context(&self) -> handlers::Context {
        use checkers::policy::{Policy, TestName, TestRepo, default_test_repos};
        let ci = &self.fedora_ci;
        let mut tests = default_test_repos(&ci.deployment);
        for (name, repo) in &ci.tests {
            // Names were validated against KNOWN_TESTS.
            if let Some(test) = TestName::parse(name) {
                tests.insert(
                    test,
                    TestRepo {
                        url: repo.url.clone(),
                        git_ref: repo.git_ref.clone(),
                        name: repo.name.clone(),
                    },
                );
            }
        }
        let policy = Policy {
            deployment: ci.deployment.clone(),
            check_name_prefix: ci.check_name_prefix.clone(),
            comment_prefix: ci.comment_prefix.clone(),
            docs_url: ci.docs_url.clone(),
            run_by_default: ci.run_by_default,
            enabled_projects: ci.enabled_projects.clone(),
            disabled_projects: ci.disabled_projects.clone(),
            enabled_tests: ci
                .enabled_tests
                .iter()
                .filter_map(|t| TestName::parse(t))
                .collect(),
            disabled_projects_for_eln: ci.disabled_projects_for_eln.clone(),
            eln_packages: ci.eln_packages.iter().cloned().collect(),
            eln_packages_urls: ci.eln_packages_urls.clone(),
            tests,
            bot_user: self.distgit.username.clone(),
        };
        handlers::Context {
            policy,
            gating: self.gating.policy(&self.api.public_url),
            distgit_url: self.distgit.url.clone(),
            public_url: self.api.public_url.clone(),
            dashboard_url: self.fedora_ci.dashboard_url.clone(),
            koji_web_url: self.koji.web_url.clone(),
            koji_top_url: self.koji.top_url.clone(),
            membership_ttl: chrono::Duration::seconds(
                i64::try_from(self.fas.cache_seconds).unwrap_or(i64::MAX),
            ),
            branch_ttl: chrono::Duration::hours(6),
        }
    }

    /// The effective configuration as TOML, secrets replaced by `<redacted>`.
    pub fn redacted_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n"))
    }
}

/// The kinds of release gating can be turned on for.
pub const GATING_RELEASES: &[&str] = &["fedora", "epel", "eln"];

impl Gating {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_builds == 0 {
            return Err(ConfigError::key("gating.max_builds", "must be at least 1"));
        }
        for kind in &self.enabled_releases {
            if !GATING_RELEASES.contains(&kind.as_str()) {
                return Err(ConfigError::key(
                    "gating.enabled_releases",
                    format!(
                        "unknown kind of release {kind:?}; the kinds are {}",
                        GATING_RELEASES.join(", ")
                    ),
                ));
            }
        }
        if let Some(release) = &self.rawhide_release
            && !matches!(
                checkers::gating::parse_release(release),
                Some(checkers::naming::Release::Fedora(_))
            )
        {
            return Err(ConfigError::key(
                "gating.rawhide_release",
                format!("{release:?} is not a Fedora release like f45"),
            ));
        }
        for test in &self.tests {
            if !KNOWN_TESTS.contains(&test.as_str()) {
                return Err(ConfigError::key(
                    "gating.tests",
                    format!(
                        "unknown test {test:?}; known tests: {}",
                        KNOWN_TESTS.join(", ")
                    ),
                ));
            }
        }
        for (name, case) in &self.test_cases {
            if !KNOWN_TESTS.contains(&name.as_str()) {
                return Err(ConfigError::key(
                    &format!("gating.test_cases.{name}"),
                    format!("unknown test; known tests: {}", KNOWN_TESTS.join(", ")),
                ));
            }
            for (key, part) in [
                ("namespace", &case.namespace),
                ("type", &case.kind),
                ("category", &case.category),
            ] {
                if let Some(part) = part
                    && (part.is_empty() || part.contains(char::is_whitespace))
                {
                    return Err(ConfigError::key(
                        &format!("gating.test_cases.{name}.{key}"),
                        "must be a non-empty name without spaces",
                    ));
                }
            }
        }
        let prefix = self.topic_prefix.trim_end_matches('.');
        if prefix.is_empty() || prefix.contains(['#', '*', ' ']) {
            return Err(ConfigError::key(
                "gating.topic_prefix",
                "must be a topic prefix like org.centos.prod.ci",
            ));
        }
        if let Some(url) = &self.contact.url {
            check_url("gating.contact.url", url, &["http", "https"])?;
        }
        Ok(())
    }

    /// The `[gating]` section as the flows use it.
    pub fn policy(&self, public_url: &str) -> checkers::gating::GatingPolicy {
        use checkers::gating::{Contact, GatingPolicy, ReleaseKind, default_test_cases};
        use checkers::policy::TestName;
        let mut test_cases = default_test_cases();
        for (name, over) in &self.test_cases {
            if let Some(test) = TestName::parse(name)
                && let Some(case) = test_cases.get_mut(&test)
            {
                if let Some(namespace) = &over.namespace {
                    case.namespace.clone_from(namespace);
                }
                if let Some(kind) = &over.kind {
                    case.kind.clone_from(kind);
                }
                if let Some(category) = &over.category {
                    case.category.clone_from(category);
                }
                if let Some(docs) = &over.docs {
                    case.docs = Some(docs.clone());
                }
            }
        }
        GatingPolicy {
            enabled: self.enabled,
            max_builds: self.max_builds,
            enabled_releases: self
                .enabled_releases
                .iter()
                .filter_map(|kind| match kind.as_str() {
                    "fedora" => Some(ReleaseKind::Fedora),
                    "epel" => Some(ReleaseKind::Epel),
                    "eln" => Some(ReleaseKind::Eln),
                    _ => None,
                })
                .collect(),
            rawhide_release: self.rawhide_release.clone(),
            tests: self
                .tests
                .iter()
                .filter_map(|t| TestName::parse(t))
                .collect(),
            test_cases,
            topic_prefix: self.topic_prefix.trim_end_matches('.').to_owned(),
            contact: Contact {
                name: self.contact.name.clone(),
                team: self.contact.team.clone(),
                email: self.contact.email.clone(),
                docs: self.contact.docs.clone(),
                url: self
                    .contact
                    .url
                    .clone()
                    .unwrap_or_else(|| public_url.to_owned()),
                irc: self.contact.irc.clone(),
            },
        }
    }
}

impl Bus {
    fn validate(&self) -> Result<(), ConfigError> {
        let url = self
            .amqp_uri()
            .map_err(|e| ConfigError::key("bus.amqp_url", e))?;
        let tls = &self.tls;
        for (key, path) in [
            ("bus.tls.ca_cert", &tls.ca_cert),
            ("bus.tls.certfile", &tls.certfile),
            ("bus.tls.keyfile", &tls.keyfile),
        ] {
            if let Some(path) = path
                && let Err(e) = std::fs::metadata(path)
            {
                return Err(ConfigError::key(key, format!("{}: {e}", path.display())));
            }
        }
        if tls.certfile.is_some() != tls.keyfile.is_some() {
            return Err(ConfigError::key(
                "bus.tls",
                "certfile and keyfile go together: set both or neither",
            ));
        }
        if tls.certfile.is_some() && url.scheme != lapin::uri::AMQPScheme::AMQPS {
            return Err(ConfigError::key(
                "bus.amqp_url",
                "a client certificate is configured (bus.tls.certfile), so the URL must be amqps://",
            ));
        }
        if self.queues.len() > 1 {
            return Err(ConfigError::key(
                "bus.queues",
                "the service consumes from one queue; define at most one",
            ));
        }
        for (i, binding) in self.bindings.iter().enumerate() {
            if binding.routing_keys.is_empty() {
                return Err(ConfigError::key(
                    &format!("bus.bindings[{i}].routing_keys"),
                    "is empty: the queue would receive nothing",
                ));
            }
            match &binding.queue {
                Some(queue) if !self.queues.contains_key(queue) => {
                    return Err(ConfigError::key(
                        &format!("bus.bindings[{i}].queue"),
                        format!("queue {queue:?} is not defined under bus.queues"),
                    ));
                }
                _ => {}
            }
        }
        if self.qos.prefetch_count == 0 {
            return Err(ConfigError::key(
                "bus.qos.prefetch_count",
                "must be at least 1 (0 means unlimited and would let a backlog fill our memory)",
            ));
        }
        Ok(())
    }

    /// The broker URL, with SASL EXTERNAL when a client certificate is configured
    /// and our heartbeat unless the URL chose one.
    pub fn amqp_uri(&self) -> Result<lapin::uri::AMQPUri, String> {
        let mut uri: lapin::uri::AMQPUri = self
            .amqp_url
            .expose_secret()
            .parse()
            // The parser's message quotes the whole URL, password included.
            .map_err(|_: String| {
                "is not an AMQP URL like amqps://user@host/%2Fvhost (not shown, since it may \
                 hold a password)"
                    .to_owned()
            })?;
        if self.tls.certfile.is_some() && uri.query.auth_mechanism.is_none() {
            uri.query.auth_mechanism = Some(lapin::uri::SASLMechanism::External);
        }
        if uri.query.heartbeat.is_none() {
            uri.query.heartbeat = Some(self.heartbeat_seconds);
        }
        Ok(uri)
    }

    /// The one queue the service consumes from, or `None` for a server-named queue.
    pub fn queue(&self) -> Option<(&str, &Queue)> {
        self.queues.iter().next().map(|(n, q)| (n.as_str(), q))
    }

    /// The AMQP URL with any password replaced, for logs.
    pub fn display_url(&self) -> String {
        redacted_url(self.amqp_url.expose_secret())
    }
}

/// The parts of a fedora-messaging `config.toml` that concern the broker.
/// Its other keys (`callback`, `consumer_config`, `log_config`, ...) belong to
/// the Python consumer and are ignored.
#[derive(Debug, Deserialize)]
struct FedoraMessagingConfig {
    #[serde(default = "fm_default_url")]
    amqp_url: String,
    #[serde(default)]
    topic_prefix: String,
    #[serde(default = "fm_default_exchange")]
    publish_exchange: String,
    #[serde(default)]
    passive_declares: bool,
    #[serde(default)]
    tls: Tls,
    #[serde(default)]
    client_properties: BTreeMap<String, toml::Value>,
    #[serde(default)]
    exchanges: BTreeMap<String, Exchange>,
    #[serde(default)]
    queues: BTreeMap<String, Queue>,
    #[serde(default)]
    bindings: Vec<Binding>,
    #[serde(default = "fm_default_qos")]
    qos: Qos,
}

fn fm_default_url() -> String {
    "amqp://".to_owned()
}
fn fm_default_exchange() -> String {
    "amq.topic".to_owned()
}
fn fm_default_qos() -> Qos {
    Qos {
        prefetch_size: 0,
        prefetch_count: 10,
    }
}

impl FedoraMessagingConfig {
    fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::key("bus.config_file", format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| {
            ConfigError::key(
                "bus.config_file",
                format!("{}: {}", path.display(), one_line(&e.to_string())),
            )
        })
    }

    fn apply(self, bus: &mut Bus) {
        bus.amqp_url = SecretString::from(self.amqp_url);
        bus.topic_prefix = self.topic_prefix;
        bus.publish_exchange = self.publish_exchange;
        bus.passive_declares = self.passive_declares;
        bus.tls = self.tls;
        // fedora-messaging adds its own identification to what the file sets.
        let mut client_properties = self.client_properties;
        client_properties
            .entry("product".to_owned())
            .or_insert_with(|| toml::Value::String("fedora-ci-worker".to_owned()));
        bus.client_properties = client_properties;
        bus.exchanges = self.exchanges;
        bus.queues = self.queues;
        bus.bindings = self.bindings;
        bus.qos = self.qos;
    }
}

fn relative_to(dir: Option<&Path>, path: &Path) -> PathBuf {
    match dir {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_owned(),
    }
}

fn read_secret_file(
    key: &str,
    value: &mut Option<SecretString>,
    file: &Option<PathBuf>,
) -> Result<(), ConfigError> {
    let Some(file) = file else { return Ok(()) };
    if value.is_some() {
        return Err(ConfigError::key(
            key,
            format!("both {key} and {key}_file are set; keep one"),
        ));
    }
    let text = std::fs::read_to_string(file).map_err(|e| {
        ConfigError::key(&format!("{key}_file"), format!("{}: {e}", file.display()))
    })?;
    // A trailing newline is how editors and `echo` leave a file.
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.trim().is_empty() {
        return Err(ConfigError::key(
            &format!("{key}_file"),
            format!("{} is empty or only whitespace", file.display()),
        ));
    }
    if let Some(problem) = token_problem(secret, 1) {
        return Err(ConfigError::key(
            &format!("{key}_file"),
            format!("{}: the token {problem}", file.display()),
        ));
    }
    *value = Some(SecretString::from(secret.to_owned()));
    Ok(())
}

/// The shortest token we accept for one that callers present to us (the
/// admin token, the webhook token): 16 characters of a random token are out
/// of reach of guessing, and an empty one would match an absent header.
const MIN_COMPARED_TOKEN: usize = 16;

/// A configured token, whichever way it came (the file, `*_file`, the
/// environment): present means usable.
fn check_token(
    key: &str,
    token: Option<&SecretString>,
    min_chars: usize,
) -> Result<(), ConfigError> {
    match token.and_then(|token| token_problem(token.expose_secret(), min_chars)) {
        Some(problem) => Err(ConfigError::key(key, problem)),
        None => Ok(()),
    }
}

/// What is wrong with a token, in words that never quote it.
fn token_problem(token: &str, min_chars: usize) -> Option<String> {
    let chars = token.chars().count();
    if token.trim().is_empty() {
        Some("is empty or only whitespace: set a token, or leave the key out".to_owned())
    } else if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains whitespace or a control character, which no token has".to_owned())
    } else if chars < min_chars {
        Some(format!(
            "is {chars} characters long; it must have at least {min_chars} (a random string)"
        ))
    } else {
        None
    }
}

/// [`check_url`] for a URL that may hold a password: what is wrong is said
/// without quoting any of it, since a mistyped URL may not parse far enough
/// for the password to be found and hidden.
fn check_secret_url(key: &str, value: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let url = url::Url::parse(value).map_err(|e| {
        ConfigError::key(
            key,
            format!("is not a URL ({e}); it is not shown since it may hold a password"),
        )
    })?;
    if !schemes.contains(&url.scheme()) {
        return Err(ConfigError::key(
            key,
            format!(
                "must start with {}://; it is not shown since it may hold a password",
                schemes.join(":// or ")
            ),
        ));
    }
    Ok(())
}

fn check_url(key: &str, value: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let url = url::Url::parse(value).map_err(|e| {
        ConfigError::key(key, format!("{:?} is not a URL ({e})", redacted_url(value)))
    })?;
    if !schemes.contains(&url.scheme()) {
        return Err(ConfigError::key(
            key,
            format!(
                "{:?} has scheme {:?}; expected {}",
                redacted_url(value),
                url.scheme(),
                schemes.join(" or ")
            ),
        ));
    }
    Ok(())
}

/// A URL with its password (if any) replaced, safe to log.
pub fn redacted_url(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("REDACTED"));
            }
            url.to_string()
        }
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

fn redact_url_password<S: Serializer>(value: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redacted_url(value.expose_secret()))
}

fn redact_secret<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str("<redacted>"),
        None => s.serialize_none(),
    }
}

/// A list as the environment gives it: entries split at commas keep the
/// spaces around them, and an empty variable (the only way to say "none")
/// is one empty entry.
fn tidy_list(list: &mut Vec<String>) {
    for entry in list.iter_mut() {
        if entry.trim().len() != entry.len() {
            *entry = entry.trim().to_owned();
        }
    }
    if matches!(list.as_slice(), [only] if only.is_empty()) {
        list.clear();
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn yes() -> bool {
    true
}
fn default_exchange_type() -> String {
    "topic".to_owned()
}
fn default_prefetch() -> u16 {
    10
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write test file");
        path
    }

    fn error(file: Option<&Path>, vars: &[(&str, &str)]) -> String {
        load_with_env(file, env(vars))
            .expect_err("the configuration should be refused")
            .to_string()
    }

    #[test]
    fn defaults_are_valid_and_local() {
        let settings = load_with_env(None, env(&[])).expect("defaults load");
        assert_eq!(
            settings.bus.display_url(),
            "amqp://guest:REDACTED@127.0.0.1:5672/%2F"
        );
        assert_eq!(
            settings.bus.queue().map(|(name, _)| name),
            Some("fedora-ci-worker")
        );
        assert!(settings.testing_farm.token.is_none());
        assert_eq!(settings.fedora_ci.comment_prefix, "/packit-ci");
    }

    #[test]
    fn environment_overrides_file_and_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(
            &dir,
            "c.toml",
            "[database]\nmax_connections = 3\n[api]\nlisten = \"0.0.0.0:9000\"\n",
        );
        let settings = load_with_env(
            Some(&file),
            env(&[
                ("FEDORA_CI__DATABASE__MAX_CONNECTIONS", "7"),
                (
                    "FEDORA_CI__FEDORA_CI__DISABLED_PROJECTS",
                    "https://src.fedoraproject.org/rpms/a,https://src.fedoraproject.org/rpms/b",
                ),
            ]),
        )
        .expect("loads");
        assert_eq!(settings.database.max_connections, 7);
        assert_eq!(settings.api.listen, "0.0.0.0:9000");
        assert_eq!(settings.fedora_ci.disabled_projects.len(), 2);
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: &[(&str, &str)] = &[
            ("FEDORA_CI__DATABASE__MAX_CONNECTIONS", "many"),
            ("FEDORA_CI__DATABASE__URL", "mysql://localhost/x"),
            ("FEDORA_CI__API__LISTEN", "localhost"),
            ("FEDORA_CI__BUS__AMQP_URL", "http://x"),
            ("FEDORA_CI__BUS__QOS__PREFETCH_COUNT", "0"),
            ("FEDORA_CI__KOJI__AUTH", "password"),
            ("FEDORA_CI__INGEST__BATCH_MAX_BYTES", "0"),
            ("FEDORA_CI__API__MAX_CONNECTIONS", "0"),
            ("FEDORA_CI__API__HEADER_TIMEOUT_SECONDS", "0"),
            ("FEDORA_CI__API__MAX_BODY_BYTES", "0"),
            ("FEDORA_CI__FEDORA_CI__DOCS_URL", "packit.dev/fedora-ci"),
            (
                "FEDORA_CI__FEDORA_CI__ELN_PACKAGES_URLS",
                "ftp://tiny.distro.builders/eln.txt",
            ),
            (
                "FEDORA_CI__FEDORA_CI__ELN_PACKAGES_URLS",
                "https://tiny.distro.builders/eln.txt,,https://tiny.distro.builders/x.txt",
            ),
            ("FEDORA_CI__FEDORA_CI__ELN_PACKAGES_REFRESH_SECONDS", "0"),
            ("FEDORA_CI__FEDORA_CI__ELN_PACKAGES_REFRESH_SECONDS", "soon"),
            (
                "FEDORA_CI__FEDORA_CI__ELN_PACKAGES_REFRESH_SECONDS",
                "9999999999",
            ),
            ("FEDORA_CI__FEDORA_CI__ELN_PACKAGES", "bash,rm -rf"),
        ];
        for (var, value) in cases {
            let key = var
                .trim_start_matches("FEDORA_CI__")
                .to_lowercase()
                .replace("__", ".");
            let message = error(None, &[(var, value)]);
            assert!(
                message.contains(&key),
                "{var}={value}: {message:?} does not name {key}"
            );
            assert!(!message.contains('\n'), "one line: {message:?}");
        }
    }

    /// The ELN package lists and their refresh, every way a key can be given:
    /// the defaults, a file (arrays inline, over several lines, and as the
    /// Ansible template renders them), and the environment (over the file).
    #[test]
    fn eln_package_lists_come_every_documented_way() {
        let tiny = "https://tiny.distro.builders/view-all-source-package-name-list--view-eln.txt";
        let extras =
            "https://tiny.distro.builders/view-all-source-package-name-list--view-eln-extras.txt";
        let defaults = load_with_env(None, env(&[])).expect("defaults load");
        assert_eq!(defaults.fedora_ci.eln_packages_urls, [tiny, extras]);
        assert_eq!(defaults.fedora_ci.eln_packages_refresh_seconds, 43_200);
        assert!(defaults.fedora_ci.eln_packages.is_empty());
        assert_eq!(
            checkers::policy::ELN_PACKAGE_LISTS,
            [tiny, extras],
            "the configuration's default is the policy's"
        );
        let runner = defaults.runner_config();
        assert_eq!(runner.periodic.eln_lists, [tiny, extras]);
        assert_eq!(
            runner.periodic.eln_refresh,
            std::time::Duration::from_secs(43_200)
        );
        assert_eq!(
            defaults.handler_context().policy.eln_packages_urls,
            [tiny, extras]
        );

        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text, urls) in [
            (
                "inline.toml",
                "[fedora_ci]\neln_packages_urls = [\"https://example.org/eln.txt\"]\n\
                 eln_packages_refresh_seconds = 3600\neln_packages = [\"bash\", \"glibc\"]\n",
                vec!["https://example.org/eln.txt"],
            ),
            (
                "lines.toml",
                "[fedora_ci]\neln_packages_urls = [\n  \"https://example.org/eln.txt\",\n  \
                 \"https://example.org/extras.txt\",\n]\neln_packages_refresh_seconds = 3600\n\
                 eln_packages = [\n  \"bash\",\n  \"glibc\",\n]\n",
                vec![
                    "https://example.org/eln.txt",
                    "https://example.org/extras.txt",
                ],
            ),
            // config.toml.j2: `{{ list | to_json }}` and `{{ seconds | int }}`.
            (
                "ansible.toml",
                "[fedora_ci]\neln_packages_urls = [\"https://example.org/eln.txt\", \
                 \"https://example.org/extras.txt\"]\neln_packages_refresh_seconds = 3600\n\
                 eln_packages = [\"bash\", \"glibc\"]\n",
                vec![
                    "https://example.org/eln.txt",
                    "https://example.org/extras.txt",
                ],
            ),
            (
                "off.toml",
                "[fedora_ci]\neln_packages_urls = []\neln_packages_refresh_seconds = 3600\n\
                 eln_packages = [\"bash\", \"glibc\"]\n",
                vec![],
            ),
        ] {
            let file = write(&dir, name, text);
            let settings = load_with_env(Some(&file), env(&[])).expect(name);
            assert_eq!(settings.fedora_ci.eln_packages_urls, urls, "{name}");
            assert_eq!(
                settings.fedora_ci.eln_packages_refresh_seconds, 3600,
                "{name}"
            );
            assert_eq!(settings.fedora_ci.eln_packages, ["bash", "glibc"], "{name}");
        }

        let file = write(&dir, "c.toml", "[fedora_ci]\neln_packages_urls = []\n");
        for (value, urls) in [
            (
                "https://example.org/eln.txt, https://example.org/extras.txt",
                vec![
                    "https://example.org/eln.txt",
                    "https://example.org/extras.txt",
                ],
            ),
            (
                "https://example.org/eln.txt",
                vec!["https://example.org/eln.txt"],
            ),
            // An empty variable is the environment's empty list: fetching off.
            ("", vec![]),
        ] {
            let settings = load_with_env(
                Some(&file),
                env(&[
                    ("FEDORA_CI__FEDORA_CI__ELN_PACKAGES_URLS", value),
                    ("FEDORA_CI__FEDORA_CI__ELN_PACKAGES_REFRESH_SECONDS", "600"),
                    ("FEDORA_CI__FEDORA_CI__ELN_PACKAGES", "bash, python3"),
                ]),
            )
            .expect(value);
            assert_eq!(settings.fedora_ci.eln_packages_urls, urls, "{value:?}");
            assert_eq!(settings.fedora_ci.eln_packages_refresh_seconds, 600);
            assert_eq!(settings.fedora_ci.eln_packages, ["bash", "python3"]);
        }
        let off = load_with_env(
            None,
            env(&[
                ("FEDORA_CI__FEDORA_CI__ELN_PACKAGES_URLS", ""),
                ("FEDORA_CI__FEDORA_CI__ELN_PACKAGES", ""),
            ]),
        )
        .expect("empty lists");
        assert!(off.fedora_ci.eln_packages_urls.is_empty());
        assert!(off.fedora_ci.eln_packages.is_empty());
        assert!(off.handler_context().policy.eln_packages_urls.is_empty());

        // The key that went away is refused by name, not ignored.
        let old = write(
            &dir,
            "old.toml",
            "[fedora_ci]\neln_packages_url = \"https://example.org/eln.txt\"\n",
        );
        assert!(error(Some(&old), &[]).contains("eln_packages_url"));
    }

    #[test]
    fn the_cutover_keys_reach_the_flows_from_a_file_and_the_environment() {
        let defaults = load_with_env(None, env(&[]))
            .expect("defaults load")
            .handler_context();
        assert_eq!(defaults.policy.check_name_prefix, "Fedora CI");
        assert_eq!(defaults.policy.docs_url, "https://packit.dev/fedora-ci");

        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(
            &dir,
            "c.toml",
            "[fedora_ci]\ncheck_name_prefix = \"Packit\"\ncomment_prefix = \"/packit-ci-stg\"\n\
             docs_url = \"https://docs.example.org/ci\"\n",
        );
        let from_file = load_with_env(Some(&file), env(&[]))
            .expect("loads")
            .handler_context();
        assert_eq!(from_file.policy.check_name_prefix, "Packit");
        assert_eq!(from_file.policy.comment_prefix, "/packit-ci-stg");
        assert_eq!(from_file.policy.docs_url, "https://docs.example.org/ci");

        let from_env = load_with_env(
            Some(&file),
            env(&[
                ("FEDORA_CI__FEDORA_CI__CHECK_NAME_PREFIX", "Packit-stg"),
                (
                    "FEDORA_CI__FEDORA_CI__DOCS_URL",
                    "https://packit.dev/fedora-ci/retriggering",
                ),
            ]),
        )
        .expect("loads")
        .handler_context();
        assert_eq!(from_env.policy.check_name_prefix, "Packit-stg");
        assert_eq!(
            from_env.policy.docs_url,
            "https://packit.dev/fedora-ci/retriggering"
        );
    }

    #[test]
    fn the_dashboard_url_comes_every_way_and_is_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let var = "FEDORA_CI__FEDORA_CI__DASHBOARD_URL";
        // Unset: flags link the service's own pages.
        let settings = load_with_env(None, env(&[])).expect("defaults load");
        assert_eq!(settings.fedora_ci.dashboard_url, None);
        let ctx = settings.handler_context();
        assert_eq!(ctx.build_page(7), "http://127.0.0.1:8080/koji-builds/7");
        assert_eq!(ctx.test_page(8), "http://127.0.0.1:8080/testing-farm/8");
        // The file: Packit's job pages, a trailing slash ignored.
        let file = write(
            &dir,
            "c.toml",
            "[fedora_ci]\ndashboard_url = \"https://dashboard.example.org/\"\n",
        );
        let ctx = load_with_env(Some(&file), env(&[]))
            .expect("loads")
            .handler_context();
        assert_eq!(
            ctx.build_page(7),
            "https://dashboard.example.org/jobs/koji/7"
        );
        assert_eq!(
            ctx.test_page(8),
            "https://dashboard.example.org/jobs/testing-farm/8"
        );
        // The environment, alone and over the file.
        for file in [None, Some(file.as_path())] {
            let ctx = load_with_env(file, env(&[(var, "http://dashboard.local:3000")]))
                .expect("loads")
                .handler_context();
            assert_eq!(ctx.build_page(7), "http://dashboard.local:3000/jobs/koji/7");
        }
        // Anything but an http(s) URL is refused by name, whichever way it comes.
        for bad in [
            "",
            "dashboard.example.org",
            "ftp://dashboard.example.org",
            "javascript:alert(1)",
        ] {
            let message = error(None, &[(var, bad)]);
            assert!(
                message.contains("fedora_ci.dashboard_url"),
                "{var}={bad:?}: {message}"
            );
            let inline = write(
                &dir,
                "bad.toml",
                &format!("[fedora_ci]\ndashboard_url = {bad:?}\n"),
            );
            let message = error(Some(&inline), &[]);
            assert!(
                message.contains("fedora_ci.dashboard_url"),
                "dashboard_url = {bad:?}: {message}"
            );
            assert!(!message.contains('\n'), "one line: {message:?}");
        }
    }

    #[test]
    fn own_queues_and_exchanges_replace_the_built_in_ones_every_way() {
        let dir = tempfile::tempdir().expect("tempdir");
        let names = |settings: &Settings| {
            (
                settings.bus.queues.keys().cloned().collect::<Vec<_>>(),
                settings.bus.exchanges.keys().cloned().collect::<Vec<_>>(),
            )
        };
        // In the service's own file, as a fedora-messaging consumer names its queue.
        let own = write(
            &dir,
            "own.toml",
            "[bus.exchanges.\"zmq.topic\"]\ntype = \"topic\"\n\
             [bus.queues.fedora-ci-worker-stg]\nauto_delete = false\n\
             [[bus.bindings]]\nqueue = \"fedora-ci-worker-stg\"\nexchange = \"zmq.topic\"\n\
             routing_keys = [\"org.fedoraproject.stg.buildsys.tag\"]\n",
        );
        let settings = load_with_env(Some(&own), env(&[])).expect("an own queue loads");
        assert_eq!(
            names(&settings),
            (
                vec!["fedora-ci-worker-stg".to_owned()],
                vec!["zmq.topic".to_owned()]
            )
        );
        assert!(settings.bus.queues["fedora-ci-worker-stg"].durable);

        // From the environment, with the binding in the file.
        let binding = write(
            &dir,
            "binding.toml",
            "[[bus.bindings]]\nqueue = \"mine\"\nexchange = \"amq.topic\"\n\
             routing_keys = [\"#\"]\n",
        );
        let settings = load_with_env(
            Some(&binding),
            env(&[("FEDORA_CI__BUS__QUEUES__MINE__DURABLE", "false")]),
        )
        .expect("a queue from the environment loads");
        assert_eq!(names(&settings).0, ["mine"]);
        assert!(!settings.bus.queues["mine"].durable);
        assert_eq!(
            names(&settings).1,
            ["amq.topic"],
            "no exchange named: the built-in one"
        );

        // The built-in queue named again keeps its other built-in values.
        let again = write(
            &dir,
            "again.toml",
            "[bus.queues.fedora-ci-worker.arguments]\n\"x-queue-type\" = \"quorum\"\n",
        );
        let settings = load_with_env(Some(&again), env(&[])).expect("loads");
        let queue = &settings.bus.queues["fedora-ci-worker"];
        assert!(queue.durable);
        assert_eq!(
            queue.arguments.get("x-queue-type").and_then(|v| v.as_str()),
            Some("quorum")
        );
        assert_eq!(names(&settings).0, ["fedora-ci-worker"]);

        // An own queue and no bindings: the built-in bindings go to it.
        let unbound = write(&dir, "unbound.toml", "[bus.queues.lonely]\n");
        let settings = load_with_env(Some(&unbound), env(&[])).expect("an own queue alone loads");
        assert_eq!(names(&settings).0, ["lonely"]);
        assert!(!settings.bus.bindings.is_empty());
        assert!(
            settings
                .bus
                .bindings
                .iter()
                .all(|b| b.queue.as_deref() == Some("lonely")),
            "{:?}",
            settings.bus.bindings
        );
        // The same from the environment.
        let settings = load_with_env(
            None,
            env(&[("FEDORA_CI__BUS__QUEUES__LONELY__DURABLE", "true")]),
        )
        .expect("an own queue from the environment loads");
        assert!(
            settings
                .bus
                .bindings
                .iter()
                .all(|b| b.queue.as_deref() == Some("lonely"))
        );
        // Two queues: the service consumes from one; refused, naming the key.
        let two = write(&dir, "two.toml", "[bus.queues.one]\n[bus.queues.two]\n");
        let message = error(Some(&two), &[]);
        assert!(
            message.contains("bus.queues: the service consumes from one queue"),
            "{message}"
        );
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(&dir, "c.toml", "[database]\nmax_conections = 3\n");
        let message = error(Some(&file), &[]);
        assert!(message.contains("max_conections"), "{message}");
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = write(&dir, "tf-token", "s3cr3t-tf\n");
        let file = write(
            &dir,
            "c.toml",
            &format!(
                "[testing_farm]\ntoken_file = {:?}\n[database]\nurl = \"postgres://u:dbpass@h/db\"\n",
                token.display()
            ),
        );
        let settings = load_with_env(Some(&file), env(&[])).expect("loads");
        assert_eq!(
            settings
                .testing_farm
                .token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            Some("s3cr3t-tf".to_owned())
        );
        let shown = settings.redacted_toml();
        assert!(!shown.contains("s3cr3t-tf"), "{shown}");
        assert!(!shown.contains("dbpass"), "{shown}");
        assert!(!format!("{settings:?}").contains("s3cr3t-tf"));
        let missing = write(
            &dir,
            "d.toml",
            "[distgit]\ntoken_file = \"/nonexistent/token\"\n",
        );
        assert!(error(Some(&missing), &[]).contains("distgit.token_file"));
    }

    #[test]
    fn unusable_tokens_are_refused_by_every_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = "a-random-token-0123456789";
        for key in [
            "api.admin_token",
            "testing_farm.webhook_token",
            "testing_farm.token",
            "distgit.token",
        ] {
            let (section, name) = key.split_once('.').expect("dotted");
            let var = format!(
                "FEDORA_CI__{}__{}",
                section.to_uppercase(),
                name.to_uppercase()
            );
            for bad in ["", "   ", "\t", "two words here", "tab\tinside"] {
                // The environment.
                let message = error(None, &[(var.as_str(), bad)]);
                assert!(message.contains(key), "{var}={bad:?}: {message}");
                assert!(!message.contains('\n'), "one line: {message:?}");
                // The file, inline.
                let inline = write(
                    &dir,
                    "inline.toml",
                    &format!("[{section}]\n{name} = {bad:?}\n"),
                );
                let message = error(Some(&inline), &[]);
                assert!(message.contains(key), "{key} = {bad:?}: {message}");
                // A `*_file` (a trailing newline is fine; the rest is not).
                let secret = write(&dir, "secret", &format!("{bad}\n"));
                let file = write(
                    &dir,
                    "file.toml",
                    &format!("[{section}]\n{name}_file = {:?}\n", secret.display()),
                );
                let message = error(Some(&file), &[]);
                assert!(
                    message.contains(&format!("{key}_file")),
                    "{key}_file {bad:?}: {message}"
                );
            }
            // A good token passes every way.
            assert!(
                load_with_env(None, env(&[(var.as_str(), good)])).is_ok(),
                "{key}"
            );
            let secret = write(&dir, "good", &format!("{good}\n"));
            let file = write(
                &dir,
                "good.toml",
                &format!("[{section}]\n{name}_file = {:?}\n", secret.display()),
            );
            assert!(load_with_env(Some(&file), env(&[])).is_ok(), "{key}_file");
        }
        // The tokens others present to us must be hard to guess.
        for key in [
            "FEDORA_CI__API__ADMIN_TOKEN",
            "FEDORA_CI__TESTING_FARM__WEBHOOK_TOKEN",
        ] {
            let message = error(None, &[(key, "short-token")]);
            assert!(message.contains("at least 16"), "{message}");
            assert!(
                !message.contains("short-token"),
                "the token is not quoted: {message}"
            );
        }
        assert!(error(None, &[("FEDORA_CI__SENTRY__DSN", " ")]).contains("sentry.dsn"));
    }

    #[test]
    fn errors_about_secret_urls_never_quote_them() {
        for (var, value, secret) in [
            (
                "FEDORA_CI__BUS__AMQP_URL",
                "amqps:fci:S3CRETPW1@rabbit.example",
                "S3CRETPW1",
            ),
            (
                "FEDORA_CI__BUS__AMQP_URL",
                "amqp://u:S3CRETPW3@host:notaport/",
                "S3CRETPW3",
            ),
            (
                "FEDORA_CI__DATABASE__URL",
                "u:S3CRETPW2b@h/db",
                "S3CRETPW2b",
            ),
            (
                "FEDORA_CI__DATABASE__URL",
                "mysql://u:S3CRETPW4@h/db",
                "S3CRETPW4",
            ),
            (
                "FEDORA_CI__DATABASE__URL",
                "not a url S3CRETPW5",
                "S3CRETPW5",
            ),
        ] {
            let message = error(None, &[(var, value)]);
            let key = var
                .trim_start_matches("FEDORA_CI__")
                .to_lowercase()
                .replace("__", ".");
            assert!(message.contains(&key), "{message}");
            assert!(!message.contains(secret), "{var}: {message}");
        }
    }

    /// The public-broker configuration that fedora-messaging ships
    /// (configs/fedora.toml), byte for byte, with its certificate files beside it.
    #[test]
    fn reads_fedora_messaging_public_broker_config() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/fedora-messaging");
        let settings = load_with_env(
            None,
            env(&[(
                "FEDORA_CI__BUS__CONFIG_FILE",
                data.join("fedora.toml").to_str().expect("utf-8 path"),
            )]),
        );
        let message = settings
            .expect_err("the certificates are under /etc/fedora-messaging, absent here")
            .to_string();
        assert!(
            message.contains("bus.tls.ca_cert")
                && message.contains("/etc/fedora-messaging/cacert.pem"),
            "{message}"
        );

        let text = std::fs::read_to_string(data.join("fedora.toml")).expect("fedora.toml");
        let fm: FedoraMessagingConfig = toml::from_str(&text).expect("parses");
        let mut bus = load_with_env(None, env(&[])).expect("defaults").bus;
        fm.apply(&mut bus);
        assert_eq!(
            bus.display_url(),
            "amqps://fedora@rabbitmq.fedoraproject.org/%2Fpublic_pubsub"
        );
        let uri = bus.amqp_uri().expect("uri");
        assert_eq!(
            uri.query.auth_mechanism,
            Some(lapin::uri::SASLMechanism::External)
        );
        assert_eq!(uri.vhost, "/public_pubsub");
        assert!(bus.queues.is_empty(), "server-named queue");
        assert_eq!(bus.bindings.len(), 1);
        assert_eq!(bus.bindings[0].queue, None);
        assert_eq!(bus.bindings[0].routing_keys, vec!["#".to_owned()]);
        assert_eq!(bus.qos.prefetch_count, 25);
        assert_eq!(
            bus.tls.certfile,
            Some(PathBuf::from("/etc/fedora-messaging/fedora-cert.pem"))
        );
    }
}
