//! Koji (SPEC §3): XML-RPC reads anonymously; scratch builds and
//! cancellations as the service's own identity.
//!
//! [`KojiClient`] is the one real implementation of [`Koji`]. Reads
//! (`getTaskInfo`, `getTaskChildren`, `getBuild`) are anonymous XML-RPC calls
//! ([`crate::xmlrpc`]). How it writes depends on [`KojiAuth`]:
//!
//! - `None` (a hub that needs no login: the stand-in, a local test hub):
//!   `build` and `cancelTask` over XML-RPC, like the reads.
//! - `Kerberos` with a principal and a keytab: the `koji` command-line client
//!   after `kinit -k -t <keytab> <principal>`, each submission with its own
//!   ticket cache in a private temporary directory, as Fedora's tools do
//!   (see `docs/koji.md` for why). Both programs see only the environment
//!   they need ([`crate::process::INHERITED_ENV`]), never the service's
//!   secrets.
//! - `Kerberos` without a principal or keytab: dry-run. Submissions and
//!   cancellations return the exact call instead of sending it; reads work.
//!
//! The hub's client follows no redirect (a 3xx is a permanent error naming
//! where it points) and reads at most 64 MiB of an answer.
//!
//! Failures are classified ([`ClientError`]): connection errors, timeouts,
//! 5xx and 429 are transient (with `Retry-After`); faults are permanent with
//! their `faultString`, except those that say "try again" (`ServerOffline`,
//! `RetryError`, lock conflicts), which are transient, and Koji's
//! authentication faults, which are [`ClientError::Auth`].

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use events::states::KojiTaskState;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER, USER_AGENT};

use crate::http::{self, BodyError};
use crate::process::{self, Finished, Limit, Overflow, RunError};
use crate::xmlrpc::{self, Value};
use crate::{ClientError, DryRunRequest};

const SERVICE: &str = "koji";

/// A task as `getTaskInfo(id, request=True)` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInfo {
    pub id: i64,
    pub state: KojiTaskState,
    pub method: String,
    pub owner: Option<i64>,
    /// `request`: for a build, `[source, target, {"scratch": ..}]`.
    pub request: Vec<serde_json::Value>,
    pub start_time: Option<f64>,
    pub completion_time: Option<f64>,
    /// The whole answer as JSON, for recording.
    pub raw: serde_json::Value,
}

/// What became of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    Task {
        id: i64,
    },
    /// Dry-run (no identity to build as): nothing was sent.
    DryRun(DryRunRequest),
}

#[async_trait]
pub trait Koji: Send + Sync {
    /// `getTaskInfo(task_id, request=True)`; `None` for a task Koji does not know.
    async fn task_info(&self, task_id: i64) -> Result<Option<TaskInfo>, ClientError>;
    /// `getTaskChildren(task_id)`: the subtasks (per-arch `buildArch` ones among them).
    async fn task_children(&self, task_id: i64) -> Result<Vec<TaskInfo>, ClientError>;
    /// `getBuild(build)` by id or NVR, unchanged; `None` when unknown.
    async fn build(&self, build: &str) -> Result<Option<serde_json::Value>, ClientError>;
    /// A scratch build of `source` (`git+https://...#<sha>`) for `target`.
    async fn submit_scratch_build(
        &self,
        source: &str,
        target: &str,
    ) -> Result<Submitted, ClientError>;
    /// Cancel a task; a task that already ended is not an error.
    /// `Ok(Some(..))` in dry-run.
    async fn cancel_task(&self, task_id: i64) -> Result<Option<DryRunRequest>, ClientError>;
    /// Whether submissions and cancellations are only recorded.
    fn dry_run(&self) -> bool;
}

/// How the client reaches the hub and as whom it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KojiConfig {
    /// The hub's XML-RPC endpoint, e.g. `https://koji.fedoraproject.org/kojihub`.
    pub hub_url: String,
    pub auth: KojiAuth,
    pub timeouts: KojiTimeouts,
    /// Where `koji` and `kinit` are looked up, a `PATH`-style list, also
    /// given to them as their `PATH`; `None`: the service's own `PATH`.
    pub command_path: Option<OsString>,
}

impl KojiConfig {
    /// Default timeouts, commands found on the service's `PATH`.
    pub fn new(hub_url: impl Into<String>, auth: KojiAuth) -> Self {
        KojiConfig {
            hub_url: hub_url.into(),
            auth,
            timeouts: KojiTimeouts::default(),
            command_path: None,
        }
    }
}

/// As whom submissions and cancellations are made (`[koji] auth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KojiAuth {
    /// The service's own Kerberos identity. Without a principal or keytab
    /// the client runs in dry-run.
    Kerberos {
        principal: Option<String>,
        keytab: Option<PathBuf>,
    },
    /// A hub that needs no login: writes are plain XML-RPC calls.
    None,
}

/// Every call has a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KojiTimeouts {
    /// Establishing the connection to the hub.
    pub connect: Duration,
    /// One XML-RPC call, connection included.
    pub request: Duration,
    /// One run of `kinit` or `koji`; the process is killed after it.
    pub command: Duration,
}

impl Default for KojiTimeouts {
    fn default() -> Self {
        KojiTimeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(60),
            command: Duration::from_secs(120),
        }
    }
}

/// Koji's fault codes (`koji/__init__.py`), by name.
pub mod faults {
    pub const GENERIC_ERROR: i64 = 1000;
    pub const LOCK_ERROR: i64 = 1001;
    pub const AUTH_ERROR: i64 = 1002;
    pub const ACTION_NOT_ALLOWED: i64 = 1004;
    pub const AUTH_LOCK_ERROR: i64 = 1006;
    pub const AUTH_EXPIRED: i64 = 1007;
    pub const SEQUENCE_ERROR: i64 = 1008;
    pub const RETRY_ERROR: i64 = 1009;
    pub const SERVER_OFFLINE: i64 = 1014;
    pub const PARAMETER_ERROR: i64 = 1019;
    pub const GSSAPI_AUTH_ERROR: i64 = 1023;

    /// The exception class Koji raises for a fault code.
    pub fn name(code: i64) -> Option<&'static str> {
        Some(match code {
            1000 => "GenericError",
            1001 => "LockError",
            1002 => "AuthError",
            1003 => "TagError",
            1004 => "ActionNotAllowed",
            1005 => "BuildError",
            1006 => "AuthLockError",
            1007 => "AuthExpired",
            1008 => "SequenceError",
            1009 => "RetryError",
            1010 => "PreBuildError",
            1011 => "PostBuildError",
            1012 => "BuildrootError",
            1013 => "FunctionDeprecated",
            1014 => "ServerOffline",
            1015 => "LiveCDError",
            1016 => "PluginError",
            1017 => "CallbackError",
            1018 => "ApplianceError",
            1019 => "ParameterError",
            1020 => "ImportError",
            1021 => "ConfigurationError",
            1022 => "LiveMediaError",
            1023 => "GSSAPIAuthError",
            _ => return None,
        })
    }
}

/// Answers larger than this are refused rather than buffered.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// How much of a command's output goes into an error message.
const MAX_OUTPUT_CHARS: usize = 4000;
/// How much of each output stream of `kinit` and `koji` is kept; the rest is
/// read and thrown away, so a program that prints without end costs no
/// memory. `koji build` prints `Created task: <id>` on its first line.
const MAX_COMMAND_OUTPUT: Limit = Limit {
    bytes: 64 * 1024,
    overflow: Overflow::Truncate,
};

/// The Koji client: anonymous XML-RPC reads, writes as configured.
#[derive(Debug)]
pub struct KojiClient {
    hub_url: String,
    http: reqwest::Client,
    writer: Writer,
    timeouts: KojiTimeouts,
}

#[derive(Debug)]
enum Writer {
    XmlRpc,
    Cli {
        principal: String,
        keytab: PathBuf,
        command_path: Option<OsString>,
    },
    DryRun,
}

impl KojiClient {
    /// A client for `config`. Fails only on a hub URL that is not http(s)
    /// or an HTTP client that cannot be built.
    pub fn new(config: KojiConfig) -> Result<Self, ClientError> {
        let parsed = url::Url::parse(&config.hub_url)
            .map_err(|e| permanent(format!("hub_url {:?} is not a URL: {e}", config.hub_url)))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(permanent(format!(
                "hub_url {:?} is not http(s)",
                config.hub_url
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeouts.connect)
            .timeout(config.timeouts.request)
            // A 307 or 308 would resend the call elsewhere; see http_status_error.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| permanent(format!("cannot build the HTTP client: {e}")))?;
        let writer = match config.auth {
            KojiAuth::None => Writer::XmlRpc,
            KojiAuth::Kerberos { principal, keytab } => match (
                principal.filter(|p| !p.trim().is_empty()),
                keytab.filter(|k| !k.as_os_str().is_empty()),
            ) {
                (Some(principal), Some(keytab)) => Writer::Cli {
                    principal,
                    keytab,
                    command_path: config.command_path,
                },
                _ => Writer::DryRun,
            },
        };
        Ok(KojiClient {
            hub_url: config.hub_url,
            http,
            writer,
            timeouts: config.timeouts,
        })
    }

    /// The hub this client talks to.
    pub fn hub_url(&self) -> &str {
        &self.hub_url
    }

    /// One XML-RPC call: its value, or the classified failure.
    async fn call(&self, method: &str, params: &[Value]) -> Result<Value, ClientError> {
        let mut response = self
            .http
            .post(&self.hub_url)
            .header(CONTENT_TYPE, "text/xml")
            .header(
                USER_AGENT,
                concat!("fedora-ci-worker/", env!("CARGO_PKG_VERSION")),
            )
            .body(xmlrpc::encode_call(method, params))
            .send()
            .await
            .map_err(|e| transport_error(method, &e))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = retry_after(response.headers());
            let location = http::location(&response);
            let body = http::body_excerpt(&mut response, http::MAX_ERROR_BODY_BYTES).await;
            return Err(http_status_error(
                method,
                status,
                retry_after,
                location.as_deref(),
                &String::from_utf8_lossy(&body),
            ));
        }
        let body = read_body(method, response).await?;
        match xmlrpc::decode_response(&body) {
            Ok(xmlrpc::Response::Value(value)) => Ok(value),
            Ok(xmlrpc::Response::Fault(fault)) => Err(fault_error(method, &fault)),
            // A 200 that is not XML-RPC comes from something in front of the
            // hub (a proxy's error or maintenance page), not from Koji.
            Err(e) => Err(transient(
                format!(
                    "{method}: the hub answered something that is not XML-RPC ({e}): {}",
                    excerpt(&body)
                ),
                None,
            )),
        }
    }

    fn dry_run_request(&self, method: &str, body: serde_json::Value) -> DryRunRequest {
        DryRunRequest {
            service: SERVICE,
            method: method.to_owned(),
            url: self.hub_url.clone(),
            body: Some(body),
        }
    }

    /// `kinit` into a fresh private ticket cache, then `koji <args>`.
    async fn run_koji(
        &self,
        principal: &str,
        keytab: &Path,
        command_path: Option<&OsStr>,
        args: &[&str],
    ) -> Result<String, ClientError> {
        let what = args.first().copied().unwrap_or("koji");
        // The ticket cache lives and dies with one command.
        let ccache_dir = process::private_temp_dir().map_err(|e| {
            transient(
                format!("cannot create a private directory for the Kerberos ticket cache: {e}"),
                None,
            )
        })?;
        let mut ccache = OsString::from("FILE:");
        ccache.push(ccache_dir.path().join("ccache"));
        let runner = CommandRunner {
            search_path: command_path
                .map(OsStr::to_owned)
                .or_else(|| std::env::var_os("PATH"))
                .unwrap_or_default(),
            ccache,
            timeout: self.timeouts.command,
        };

        let kinit_args = [
            OsStr::new("-k"),
            OsStr::new("-t"),
            keytab.as_os_str(),
            OsStr::new(principal),
        ];
        match runner.run("kinit", &kinit_args).await {
            Ok(output) if output.status.success() => {}
            Ok(output) => return Err(kinit_failure(principal, &output)),
            Err(CommandError::NotFound) => {
                return Err(auth(
                    "kinit was not found on PATH: the service needs krb5-workstation (kinit) to get its Kerberos ticket"
                        .to_owned(),
                ));
            }
            Err(CommandError::Io(e)) => return Err(auth(format!("kinit could not be run: {e}"))),
            Err(CommandError::TimedOut) => {
                return Err(transient(
                    format!(
                        "kinit did not finish within {:?} (is the KDC reachable?)",
                        self.timeouts.command
                    ),
                    None,
                ));
            }
        }

        let mut koji_args: Vec<&OsStr> = vec![
            OsStr::new("--server"),
            OsStr::new(&self.hub_url),
            OsStr::new("--authtype"),
            OsStr::new("kerberos"),
        ];
        koji_args.extend(args.iter().map(OsStr::new));
        let output = match runner.run("koji", &koji_args).await {
            Ok(output) => output,
            Err(CommandError::NotFound) => {
                return Err(permanent(
                    "koji was not found on PATH: the service needs the koji command-line client to submit builds"
                        .to_owned(),
                ));
            }
            Err(CommandError::Io(e)) => {
                return Err(permanent(format!("koji could not be run: {e}")));
            }
            Err(CommandError::TimedOut) => {
                return Err(transient(
                    format!(
                        "koji {what} did not finish within {:?} and was killed",
                        self.timeouts.command
                    ),
                    None,
                ));
            }
        };
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(koji_cli_failure(what, output.status, &output_text(&output)))
        }
    }
}

#[async_trait]
impl Koji for KojiClient {
    async fn task_info(&self, task_id: i64) -> Result<Option<TaskInfo>, ClientError> {
        const METHOD: &str = "getTaskInfo";
        let params = [
            Value::Int(task_id),
            Value::kwargs([("request", Value::Bool(true))]),
        ];
        match self.call(METHOD, &params).await? {
            Value::Nil => Ok(None),
            value => parse_task_info(METHOD, &value).map(Some),
        }
    }

    async fn task_children(&self, task_id: i64) -> Result<Vec<TaskInfo>, ClientError> {
        const METHOD: &str = "getTaskChildren";
        let params = [
            Value::Int(task_id),
            Value::kwargs([("request", Value::Bool(true))]),
        ];
        match self.call(METHOD, &params).await? {
            Value::Array(children) => children
                .iter()
                .map(|c| parse_task_info(METHOD, c))
                .collect(),
            other => Err(unexpected(METHOD, "a list of tasks", &other)),
        }
    }

    async fn build(&self, build: &str) -> Result<Option<serde_json::Value>, ClientError> {
        const METHOD: &str = "getBuild";
        // Koji takes a build id as an integer; a string must be an NVR.
        let param = match build.trim().parse::<i64>() {
            Ok(id) => Value::Int(id),
            Err(_) => Value::String(build.to_owned()),
        };
        match self.call(METHOD, &[param]).await? {
            Value::Nil => Ok(None),
            value @ Value::Struct(_) => Ok(Some(value.to_json())),
            other => Err(unexpected(METHOD, "a build", &other)),
        }
    }

    async fn submit_scratch_build(
        &self,
        source: &str,
        target: &str,
    ) -> Result<Submitted, ClientError> {
        match &self.writer {
            Writer::DryRun => {
                let request = self.dry_run_request(
                    "build",
                    serde_json::json!({"src": source, "target": target, "opts": {"scratch": true}}),
                );
                tracing::info!(source, target, "koji: dry-run, scratch build not submitted");
                Ok(Submitted::DryRun(request))
            }
            Writer::XmlRpc => {
                const METHOD: &str = "build";
                let params = [
                    Value::String(source.to_owned()),
                    Value::String(target.to_owned()),
                    Value::structure([("scratch", Value::Bool(true))]),
                ];
                match self.call(METHOD, &params).await? {
                    Value::Int(id) => {
                        tracing::info!(
                            task_id = id,
                            source,
                            target,
                            "koji: scratch build submitted"
                        );
                        Ok(Submitted::Task { id })
                    }
                    other => Err(unexpected(METHOD, "a task id", &other)),
                }
            }
            Writer::Cli {
                principal,
                keytab,
                command_path,
            } => {
                for (name, value) in [("target", target), ("source", source)] {
                    if value.is_empty() || value.starts_with('-') {
                        return Err(permanent(format!(
                            "refusing to pass {name} {value:?} to koji build"
                        )));
                    }
                }
                let stdout = self
                    .run_koji(
                        principal,
                        keytab,
                        command_path.as_deref(),
                        &[
                            "build",
                            "--scratch",
                            "--nowait",
                            "--noprogress",
                            target,
                            source,
                        ],
                    )
                    .await?;
                match created_task(&stdout) {
                    Some(id) => {
                        tracing::info!(
                            task_id = id,
                            source,
                            target,
                            "koji: scratch build submitted"
                        );
                        Ok(Submitted::Task { id })
                    }
                    // The command succeeded, so a task may well exist:
                    // submitting again could build twice.
                    None => Err(permanent(format!(
                        "koji build succeeded but printed no \"Created task:\" line: {}",
                        excerpt(&stdout)
                    ))),
                }
            }
        }
    }

    async fn cancel_task(&self, task_id: i64) -> Result<Option<DryRunRequest>, ClientError> {
        match &self.writer {
            Writer::DryRun => {
                tracing::info!(task_id, "koji: dry-run, task not canceled");
                Ok(Some(self.dry_run_request(
                    "cancelTask",
                    serde_json::json!({"task_id": task_id}),
                )))
            }
            Writer::XmlRpc => {
                // Koji answers None, and cancels nothing for a task that
                // already ended.
                self.call("cancelTask", &[Value::Int(task_id)]).await?;
                tracing::info!(task_id, "koji: task canceled");
                Ok(None)
            }
            Writer::Cli {
                principal,
                keytab,
                command_path,
            } => {
                if task_id <= 0 {
                    return Err(permanent(format!("{task_id} is not a Koji task id")));
                }
                let id = task_id.to_string();
                self.run_koji(principal, keytab, command_path.as_deref(), &["cancel", &id])
                    .await?;
                tracing::info!(task_id, "koji: task canceled");
                Ok(None)
            }
        }
    }

    fn dry_run(&self) -> bool {
        matches!(self.writer, Writer::DryRun)
    }
}

fn parse_task_info(method: &str, value: &Value) -> Result<TaskInfo, ClientError> {
    let field = |name: &str| value.get(name);
    let id = field("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| unexpected(method, "a task with an integer id", value))?;
    let state = field("state")
        .and_then(Value::as_i64)
        .and_then(KojiTaskState::from_number)
        .ok_or_else(|| unexpected(method, "a task with a known state", value))?;
    let method_name = field("method")
        .and_then(Value::as_str)
        .ok_or_else(|| unexpected(method, "a task with a method", value))?;
    // Current hubs send `start_time` as a date string and the epoch seconds
    // as `start_ts`; older ones (and the bus) send seconds as `start_time`.
    let seconds = |ts: &str, time: &str| {
        field(ts)
            .and_then(Value::as_f64)
            .or_else(|| field(time).and_then(Value::as_f64))
    };
    Ok(TaskInfo {
        id,
        state,
        method: method_name.to_owned(),
        owner: field("owner").and_then(Value::as_i64),
        request: field("request")
            .and_then(Value::as_array)
            .map(|items| items.iter().map(Value::to_json).collect())
            .unwrap_or_default(),
        start_time: seconds("start_ts", "start_time"),
        completion_time: seconds("completion_ts", "completion_time"),
        raw: value.to_json(),
    })
}

/// The task id in `koji build` output (`Created task: 123`).
fn created_task(stdout: &str) -> Option<i64> {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Created task:"))
        .and_then(|id| id.trim().parse().ok())
}

fn transient(message: String, retry_after: Option<Duration>) -> ClientError {
    ClientError::Transient {
        service: SERVICE,
        message,
        retry_after,
    }
}

fn permanent(message: String) -> ClientError {
    ClientError::Permanent {
        service: SERVICE,
        message,
    }
}

fn auth(message: String) -> ClientError {
    ClientError::Auth {
        service: SERVICE,
        message,
    }
}

fn unexpected(method: &str, wanted: &str, got: &Value) -> ClientError {
    permanent(format!(
        "{method}: expected {wanted}, the hub answered {}",
        excerpt(&got.to_json().to_string())
    ))
}

fn transport_error(method: &str, error: &reqwest::Error) -> ClientError {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect to the hub"
    } else {
        "request failed"
    };
    let mut message = format!("{method}: {what}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    transient(message, None)
}

fn http_status_error(
    method: &str,
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    location: Option<&str>,
    body: &str,
) -> ClientError {
    if status.is_redirection() {
        return http::redirect_error(SERVICE, method, status.as_u16(), location);
    }
    let message = format!("{method}: HTTP {status}: {}", excerpt(body));
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        transient(message, retry_after)
    } else if matches!(status.as_u16(), 401 | 403) {
        auth(message)
    } else {
        permanent(message)
    }
}

fn fault_error(method: &str, fault: &xmlrpc::Fault) -> ClientError {
    let name = faults::name(fault.code).unwrap_or("Fault");
    let message = format!("{method}: {name} ({}): {}", fault.code, fault.string);
    match fault.code {
        faults::LOCK_ERROR
        | faults::AUTH_LOCK_ERROR
        | faults::SEQUENCE_ERROR
        | faults::RETRY_ERROR
        | faults::SERVER_OFFLINE => transient(message, None),
        faults::AUTH_ERROR | faults::AUTH_EXPIRED | faults::GSSAPI_AUTH_ERROR => auth(message),
        _ => permanent(message),
    }
}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

async fn read_body(method: &str, mut response: reqwest::Response) -> Result<String, ClientError> {
    match http::body_up_to(&mut response, MAX_RESPONSE_BYTES).await {
        Ok(body) => Ok(String::from_utf8_lossy(&body).into_owned()),
        Err(BodyError::TooLarge) => Err(http::too_large(SERVICE, method, MAX_RESPONSE_BYTES)),
        Err(BodyError::Transport(e)) => Err(transport_error(method, &e)),
    }
}

/// The start of a long text, cut on a character boundary.
fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_OUTPUT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn output_text(output: &Finished) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let joined = match (stderr.trim(), stdout.trim()) {
        ("", "") => "no output".to_owned(),
        (err, "") => err.to_owned(),
        ("", out) => out.to_owned(),
        (err, out) => format!("{err}\n{out}"),
    };
    let text = excerpt(&joined);
    if output.stdout_cut || output.stderr_cut {
        format!(
            "{text} (output beyond {} was dropped)",
            http::describe_size(MAX_COMMAND_OUTPUT.bytes)
        )
    } else {
        text
    }
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_owned(),
    }
}

fn contains_any(haystack: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| haystack.contains(n))
}

/// Signs of a network or hub problem in command output: trying again later
/// can help.
const TRANSIENT_MARKERS: &[&str] = &[
    "serveroffline",
    "retryerror",
    "lockerror",
    "sequenceerror",
    "connectionerror",
    "connection refused",
    "connection reset",
    "connection aborted",
    "remotedisconnected",
    "unable to connect to server",
    "max retries exceeded",
    "timed out",
    "timeout",
    "temporary failure in name resolution",
    "cannot contact any kdc",
    "service unavailable",
    "bad gateway",
    "gateway time",
    "too many requests",
    "500 server error",
    "502 server error",
    "503 server error",
    "504 server error",
];

/// Signs that our identity was refused.
const AUTH_MARKERS: &[&str] = &[
    "unable to log in",
    "gssapiautherror",
    "autherror",
    "authexpired",
    "could not connect to kerberos",
    "no kerberos credentials",
    "credentials cache",
    "ticket expired",
    "401 client error",
    "unauthorized",
];

/// Signs that HTTPS to the hub cannot work as deployed: its certificate is
/// not trusted, or it does not speak HTTPS (`koji` logs in over HTTPS
/// whatever the hub URL says). The deployment must change; trying again
/// cannot help.
const TLS_TRUST_MARKERS: &[&str] = &["certificate verify failed", "wrong version number"];

/// A failed `koji` run. A login that failed because the hub or the KDC could
/// not be reached is network trouble, not a refused identity: `koji` reports
/// both as "gssapi auth failed: <why>", so the why decides. In order: a
/// certificate the deployment does not trust (permanent), network or hub
/// trouble (transient), a refused identity (auth); everything else (no such
/// target, not allowed, bad arguments) cannot be fixed by trying again.
fn koji_cli_failure(what: &str, status: ExitStatus, text: &str) -> ClientError {
    // What went wrong first, for the flag (which keeps 140 characters),
    // then all the output, for the operator.
    let message = match cli_reason(text) {
        Some(reason) => format!(
            "koji {what} failed ({}): {reason}; output: {text}",
            describe(status)
        ),
        None => format!("koji {what} failed ({}): {text}", describe(status)),
    };
    let lower = text.to_lowercase();
    if contains_any(&lower, TLS_TRUST_MARKERS) {
        permanent(message)
    } else if status.code().is_none() || contains_any(&lower, TRANSIENT_MARKERS) {
        transient(message, None)
    } else if contains_any(&lower, AUTH_MARKERS) {
        auth(message)
    } else {
        permanent(message)
    }
}

/// The line of `koji`'s output that says what went wrong: its option
/// parser's `koji: error: ...` (a usage text comes before it), or its logged
/// `[ERROR] koji: ...` without the time stamp, a failed login as "login
/// failed: ...", without Python's module paths.
fn cli_reason(text: &str) -> Option<String> {
    let line = text.lines().rev().find_map(|line| {
        let line = line.trim();
        line.strip_prefix("koji: error: ")
            .or_else(|| line.split_once("[ERROR] koji: ").map(|(_, rest)| rest))
    })?;
    let line = match line.strip_prefix("(gssapi auth failed: ").or_else(|| {
        line.strip_prefix("GSSAPIAuthError: unable to obtain a session (gssapi auth failed: ")
    }) {
        Some(why) => format!("login failed: {}", why.trim_end_matches(')')),
        None => line.to_owned(),
    };
    Some(line.replace("requests.exceptions.", ""))
}

/// A failed `kinit`: unreachable KDCs are transient, anything else (no such
/// principal, unreadable keytab, wrong keys) is an authentication problem.
fn kinit_failure(principal: &str, output: &Finished) -> ClientError {
    let text = output_text(output);
    let message = format!(
        "kinit for {principal} failed ({}): {text}",
        describe(output.status)
    );
    let lower = text.to_lowercase();
    if output.status.code().is_none()
        || contains_any(
            &lower,
            &[
                "cannot contact any kdc",
                "cannot resolve network address",
                "timed out",
                "temporary failure",
            ],
        )
    {
        transient(message, None)
    } else {
        auth(message)
    }
}

enum CommandError {
    NotFound,
    Io(std::io::Error),
    TimedOut,
}

/// Runs `kinit` and `koji` with a private ticket cache, only the environment
/// they need ([`process::INHERITED_ENV`]), no stdin, English messages (they
/// are classified by their text), a deadline, and their output kept up to
/// [`MAX_COMMAND_OUTPUT`].
struct CommandRunner {
    search_path: OsString,
    ccache: OsString,
    timeout: Duration,
}

impl CommandRunner {
    async fn run(&self, program: &str, args: &[&OsStr]) -> Result<Finished, CommandError> {
        let executable = find_program(program, &self.search_path).ok_or(CommandError::NotFound)?;
        let mut command = process::command(
            executable.as_os_str(),
            Some(&self.search_path),
            &self.ccache,
        );
        command.args(args);
        match process::run(
            command,
            self.timeout,
            MAX_COMMAND_OUTPUT,
            MAX_COMMAND_OUTPUT,
        )
        .await
        {
            Ok(finished) => Ok(finished),
            Err(RunError::Spawn(e) | RunError::Io(e)) => Err(CommandError::Io(e)),
            Err(RunError::TimedOut) => Err(CommandError::TimedOut),
            // Only a stream that refuses overflow ends a run early, and these
            // truncate.
            Err(RunError::TooMuchOutput) => Err(CommandError::Io(std::io::Error::other(
                "the program printed more than its output limit",
            ))),
        }
    }
}

fn find_program(name: &str, search_path: &OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::split_paths(search_path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|path| {
            path.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    fn exit(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn reads_the_task_id_koji_build_prints() {
        let stdout = "Created task: 45270170\nTask info: https://koji.fedoraproject.org/koji/taskinfo?taskID=45270170\n";
        assert_eq!(created_task(stdout), Some(45270170));
        assert_eq!(
            created_task("Uploading srpm: x\n\nCreated task: 7\n"),
            Some(7)
        );
        assert_eq!(created_task("nothing here"), None);
        assert_eq!(created_task("Created task: soon"), None);
    }

    #[test]
    fn classifies_koji_cli_failures_by_their_output() {
        let cases = [
            (
                "Usage: koji build [options] <target> <srpm path or scm url>\n\n(Specify the --help global option for a list of other help options)\n\nkoji: error: No such build target: f99",
                "permanent",
            ),
            (
                "2024-01-01 00:00:00,000 [ERROR] koji: ActionNotAllowed: policy violation (build_from_srpm)",
                "permanent",
            ),
            (
                "2024-01-01 00:00:00,000 [ERROR] koji: ConnectionError: HTTPSConnectionPool(host='koji.fedoraproject.org', port=443): Max retries exceeded with url: /kojihub (Caused by NewConnectionError('Failed to establish a new connection: [Errno 111] Connection refused'))",
                "transient",
            ),
            (
                "2024-01-01 00:00:00,000 [ERROR] koji: ServerOffline: server is offline",
                "transient",
            ),
            (
                "2024-01-01 00:00:00,000 [ERROR] koji: HTTPError: 503 Server Error: Service Unavailable for url: https://koji/kojihub",
                "transient",
            ),
            (
                "Unable to log in, no authentication methods available",
                "auth",
            ),
            (
                "2024-01-01 00:00:00,000 [ERROR] koji: GSSAPIAuthError: unable to obtain a session (gssapi auth failed: No Kerberos credentials available)",
                "auth",
            ),
            // A login the hub could not take because it was down is not a
            // refused identity.
            (
                "2026-12-08 01:57:42,355 [ERROR] koji: (gssapi auth failed: requests.exceptions.HTTPError: 503 Server Error: Service Unavailable for url: https://koji/kojihub/ssllogin)\nUnable to log in, no authentication methods available",
                "transient",
            ),
            // A hub whose certificate the deployment does not trust.
            (
                "2026-12-08 01:57:42,355 [ERROR] koji: (gssapi auth failed: requests.exceptions.SSLError: HTTPSConnectionPool(host='koji', port=443): Max retries exceeded with url: /kojihub/ssllogin (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain (_ssl.c:1006)'))))",
                "permanent",
            ),
        ];
        for (output, want) in cases {
            let got = match koji_cli_failure("build", exit(1), output) {
                ClientError::Transient { .. } => "transient",
                ClientError::Permanent { .. } => "permanent",
                ClientError::Auth { .. } => "auth",
            };
            assert_eq!(got, want, "{output}");
        }
        let killed = koji_cli_failure("build", ExitStatus::from_raw(9), "no output");
        assert!(killed.is_transient(), "{killed}");
        assert!(
            killed.to_string().contains("killed by a signal"),
            "{killed}"
        );
    }

    #[test]
    fn the_reason_comes_first_from_koji_output() {
        let cases = [
            (
                "Usage: koji build [options] <target> <srpm path or scm url>\n\n(Specify the --help global option for a list of other help options)\n\nkoji: error: No such build target: f39",
                Some("No such build target: f39"),
            ),
            (
                "2026-12-08 02:19:55,906 [ERROR] koji: (gssapi auth failed: requests.exceptions.HTTPError: 503 Server Error: Service Unavailable for url: https://koji/kojihub/ssllogin)\nUse following documentation to debug kerberos/gssapi auth issues. https://docs.pagure.org/koji/kerberos_gssapi_debug/\nUnable to log in, no authentication methods available",
                Some(
                    "login failed: HTTPError: 503 Server Error: Service Unavailable for url: https://koji/kojihub/ssllogin",
                ),
            ),
            (
                "2024-01-01 00:00:00,000 [ERROR] koji: ActionNotAllowed: policy violation (build_from_srpm)",
                Some("ActionNotAllowed: policy violation (build_from_srpm)"),
            ),
            (
                "Unable to log in, no authentication methods available",
                None,
            ),
        ];
        for (output, want) in cases {
            assert_eq!(cli_reason(output).as_deref(), want, "{output}");
        }
        let error = koji_cli_failure("build", exit(2), cases[0].0);
        assert!(
            error.to_string().contains(
                "koji build failed (exit status 2): No such build target: f39; output: Usage:"
            ),
            "{error}"
        );
    }

    #[test]
    fn classifies_faults() {
        let fault = |code: i64| {
            fault_error(
                "build",
                &xmlrpc::Fault {
                    code,
                    string: "why".into(),
                },
            )
        };
        assert!(fault(faults::SERVER_OFFLINE).is_transient());
        assert!(fault(faults::RETRY_ERROR).is_transient());
        assert!(fault(faults::LOCK_ERROR).is_transient());
        assert!(matches!(
            fault(faults::AUTH_EXPIRED),
            ClientError::Auth { .. }
        ));
        assert!(matches!(
            fault(faults::GENERIC_ERROR),
            ClientError::Permanent { .. }
        ));
        assert!(matches!(
            fault(faults::ACTION_NOT_ALLOWED),
            ClientError::Permanent { .. }
        ));
        assert!(matches!(fault(4242), ClientError::Permanent { .. }));
        assert_eq!(
            fault(faults::ACTION_NOT_ALLOWED).to_string(),
            "koji: build: ActionNotAllowed (1004): why"
        );
    }

    #[test]
    fn reads_retry_after_as_seconds_or_date() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(
            RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("120"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
        headers.insert(
            RETRY_AFTER,
            reqwest::header::HeaderValue::from_str(&later).expect("header"),
        );
        let wait = retry_after(&headers).expect("a date");
        assert!(
            wait > Duration::from_secs(3500) && wait <= Duration::from_secs(3600),
            "{wait:?}"
        );
        headers.insert(
            RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("soon"),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn kerberos_without_principal_or_keytab_is_dry_run() {
        let client = |auth| {
            KojiClient::new(KojiConfig::new("https://koji.example/kojihub", auth)).expect("client")
        };
        assert!(!client(KojiAuth::None).dry_run());
        assert!(
            client(KojiAuth::Kerberos {
                principal: None,
                keytab: None
            })
            .dry_run()
        );
        assert!(
            client(KojiAuth::Kerberos {
                principal: Some("fedora-ci@FEDORAPROJECT.ORG".into()),
                keytab: None
            })
            .dry_run()
        );
        assert!(
            client(KojiAuth::Kerberos {
                principal: Some(" ".into()),
                keytab: Some("/etc/keytab".into())
            })
            .dry_run()
        );
        assert!(
            !client(KojiAuth::Kerberos {
                principal: Some("fedora-ci@FEDORAPROJECT.ORG".into()),
                keytab: Some("/etc/keytab".into())
            })
            .dry_run()
        );
        assert!(
            KojiClient::new(KojiConfig::new(
                "ftp://koji.example/kojihub",
                KojiAuth::None
            ))
            .is_err()
        );
        assert!(KojiClient::new(KojiConfig::new("koji.example", KojiAuth::None)).is_err());
    }

    #[test]
    fn excerpts_are_cut_on_character_boundaries() {
        let long = "é".repeat(MAX_OUTPUT_CHARS + 10);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), MAX_OUTPUT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
