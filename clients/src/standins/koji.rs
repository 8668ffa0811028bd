//! A Koji hub stand-in: `POST /kojihub` XML-RPC with the methods the service
//! uses, answering exactly as `kojihub` does (Python's XML-RPC marshalling,
//! `<nil/>`, `<i8>`, faults with Koji's codes and messages), and scriptable
//! by tests: move tasks through their states, fail or fault the next calls,
//! and get the `buildsys.task.state.change` message Koji would publish.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use events::states::KojiTaskState;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::koji::faults;
use crate::standins::kerberos::{Acceptor, negotiate_token};
use crate::standins::tls::{self, TestCa};
use crate::xmlrpc::{self, Fault, Value};

/// A scratch build the hub was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// The task the hub created for it.
    pub task_id: i64,
    pub src: String,
    pub target: String,
    /// `opts` as sent (`{}` when none were).
    pub opts: serde_json::Value,
    pub priority: Option<i64>,
    pub channel: Option<String>,
    /// When the hub received it.
    pub at: std::time::Instant,
}

/// The running stand-in; it stops when dropped.
pub struct KojiHub {
    url: String,
    state: Arc<Mutex<Hub>>,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
}

impl KojiHub {
    /// The user every task belongs to.
    pub const OWNER_ID: i64 = 4641;
    pub const OWNER_NAME: &'static str = "fedora-ci";

    /// Starts a hub that needs no login, on `127.0.0.1` on a free port: a
    /// development hub. It takes `build` and `cancelTask` from anyone.
    pub async fn start() -> std::io::Result<KojiHub> {
        Self::start_with(None).await
    }

    /// Starts a hub that, like Fedora's, serves HTTPS (with a certificate
    /// `ca` signed, for `localhost`) and takes `build` and `cancelTask` only
    /// in a session opened by a GSSAPI login (`sslLogin` at
    /// `/kojihub/ssllogin`) that `acceptor` verifies against the KDC. Its
    /// URL is `https://localhost:PORT/kojihub`: the name the client asks
    /// the KDC a ticket for (`HTTP/localhost`).
    pub async fn start_kerberos(acceptor: Acceptor, ca: &TestCa) -> std::io::Result<KojiHub> {
        Self::start_with(Some((acceptor, ca.server_config()?))).await
    }

    async fn start_with(
        kerberos: Option<(Acceptor, Arc<tokio_rustls::rustls::ServerConfig>)>,
    ) -> std::io::Result<KojiHub> {
        let (acceptor, tls) = kerberos.unzip();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let state = Arc::new(Mutex::new(Hub {
            acceptor,
            ..Hub::default()
        }));
        let app = Router::new()
            .route("/kojihub", post(handle_post).get(method_not_allowed))
            .route("/kojihub/ssllogin", post(handle_login))
            .with_state(state.clone());
        let (shutdown, stop) = oneshot::channel::<()>();
        let url = match &tls {
            Some(_) => format!("https://localhost:{}/kojihub", address.port()),
            None => format!("http://{address}/kojihub"),
        };
        let server = match tls {
            Some(config) => tokio::spawn(tls::serve(listener, app, config, stop)),
            None => tokio::spawn(async move {
                let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                    let _ = stop.await;
                });
                if let Err(error) = serve.await {
                    tracing::warn!(%error, "koji stand-in stopped");
                }
            }),
        };
        Ok(KojiHub {
            url,
            state,
            shutdown: Some(shutdown),
            server,
        })
    }

    /// The hub URL (`http://127.0.0.1:PORT/kojihub`, or
    /// `https://localhost:PORT/kojihub` for [`KojiHub::start_kerberos`]),
    /// what `[koji] hub_url` takes.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Who opened a session, one entry per successful login, in order.
    pub fn logins(&self) -> Vec<String> {
        self.hub().logins.clone()
    }

    /// Why each refused login was refused, in order.
    pub fn refused_logins(&self) -> Vec<String> {
        self.hub().refused_logins.clone()
    }

    fn hub(&self) -> MutexGuard<'_, Hub> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The id the next task gets (ids above 2^31 travel as `<i8>`).
    pub fn set_next_task_id(&self, id: i64) {
        self.hub().next_id = id;
    }

    /// Moves a task to `state`, with the timestamps Koji would set, and gives
    /// it one `buildArch` child per arch in `arches` (created when missing).
    /// Before the first of them comes the child that makes the source RPM,
    /// as on a real hub: a `build` from SCM has a `buildSRPMFromSCM` child
    /// (arch `noarch`, label `srpm`) beside its `buildArch` ones (the real
    /// task message in `tests/data/bus` shows the same for an SRPM upload,
    /// `rebuildSRPM`). So readers must pick the `buildArch` children.
    /// All its children take the same state.
    #[track_caller]
    pub fn set_task_state(&self, id: i64, state: KojiTaskState, arches: &[&str]) {
        let mut hub = self.hub();
        let Some(task) = hub.tasks.get(&id) else {
            panic!("the Koji stand-in has no task {id}");
        };
        let (src, target) = (task.request_str(0), task.request_str(1));
        let opts = task.request.get(2).cloned().unwrap_or(Value::Nil);
        if !arches.is_empty() && hub.children(id).next().is_none() {
            let child_id = hub.take_id();
            let request = vec![
                Value::String(src.clone()),
                Value::String(format!("{target}-build")),
                opts,
            ];
            let mut child = Task::new(child_id, "buildSRPMFromSCM", request);
            child.parent = Some(id);
            child.arch = "noarch".to_owned();
            child.label = Some("srpm".to_owned());
            child.priority = 19;
            hub.tasks.insert(child_id, child);
        }
        for arch in arches {
            let exists = hub
                .tasks
                .values()
                .any(|t| t.parent == Some(id) && t.method == "buildArch" && t.arch == *arch);
            if !exists {
                let child_id = hub.take_id();
                let srpm = format!("tasks/{}/{id}/{}.src.rpm", id % 10000, package_name(&src));
                let request = vec![
                    Value::String(srpm),
                    Value::String(format!("{target}-build")),
                    Value::String((*arch).to_owned()),
                    Value::Bool(false),
                    Value::structure([("repo_id", Value::Int(1))]),
                ];
                let mut child = Task::new(child_id, "buildArch", request);
                child.parent = Some(id);
                child.arch = (*arch).to_owned();
                child.label = Some((*arch).to_owned());
                child.priority = 19;
                hub.tasks.insert(child_id, child);
            }
        }
        let family: Vec<i64> = std::iter::once(id)
            .chain(
                hub.tasks
                    .values()
                    .filter(|t| t.parent == Some(id))
                    .map(|t| t.id),
            )
            .collect();
        for task_id in family {
            if let Some(task) = hub.tasks.get_mut(&task_id) {
                task.move_to(state);
            }
        }
    }

    /// A task's current state.
    pub fn task_state(&self, id: i64) -> Option<KojiTaskState> {
        self.hub().tasks.get(&id).map(|t| t.state)
    }

    /// Adds a build that `getBuild` finds by its `id` or `nvr`.
    pub fn insert_build(&self, build: serde_json::Value) {
        self.hub().builds.push(build);
    }

    /// The scratch builds submitted, in order.
    pub fn submissions(&self) -> Vec<Submission> {
        self.hub().submissions.clone()
    }

    /// The task ids `cancelTask` was called for, in order.
    pub fn cancellations(&self) -> Vec<i64> {
        self.hub().cancellations.clone()
    }

    /// The method of every call received, in order, including the ones
    /// answered with an HTTP error or a fault.
    pub fn calls(&self) -> Vec<String> {
        self.hub().calls.clone()
    }

    /// The next `n` calls get HTTP `status` (e.g. 502, 503) instead of an
    /// answer, as from a proxy in front of an overloaded hub.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.push_failures(
            n,
            Scripted::Http {
                status,
                retry_after: None,
            },
        );
    }

    /// As [`KojiHub::fail_next`], with a `Retry-After: <seconds>` header.
    pub fn fail_next_with_retry_after(&self, n: usize, status: u16, retry_after_seconds: u64) {
        self.push_failures(
            n,
            Scripted::Http {
                status,
                retry_after: Some(retry_after_seconds),
            },
        );
    }

    /// The build targets the hub knows from now on (see [`KNOWN_TARGETS`]).
    pub fn set_targets(&self, targets: &[&str]) {
        self.hub().targets = targets.iter().map(|t| (*t).to_owned()).collect();
    }

    /// The next `n` calls get this fault (see [`crate::koji::faults`]).
    pub fn fault_next(&self, n: usize, fault_code: i64, fault_string: &str) {
        self.push_failures(
            n,
            Scripted::Fault(Fault {
                code: fault_code,
                string: fault_string.to_owned(),
            }),
        );
    }

    fn push_failures(&self, n: usize, failure: Scripted) {
        let mut hub = self.hub();
        hub.scripted.extend(std::iter::repeat_n(failure, n));
    }

    /// The body of the `buildsys.task.state.change` message Koji publishes
    /// for the task's last state change: `{id, attribute: "state", old, new,
    /// info: {.., request, children}, method, owner, srpm?, instance}`.
    #[track_caller]
    pub fn task_message(&self, id: i64) -> serde_json::Value {
        let hub = self.hub();
        let Some(task) = hub.tasks.get(&id) else {
            panic!("the Koji stand-in has no task {id}");
        };
        let mut info = task.message_info();
        let children: Vec<serde_json::Value> = hub.children(id).map(Task::message_info).collect();
        if let Some(map) = info.as_object_mut() {
            map.insert("request".into(), task.request_json());
            map.insert("children".into(), children.into());
            if task.state == KojiTaskState::Closed {
                map.insert("result".into(), serde_json::Value::Null);
            }
        }
        let mut message = json!({
            "id": task.id,
            "attribute": "state",
            "old": task.previous.map(KojiTaskState::name),
            "new": task.state.name(),
            "info": info,
            "method": task.method,
            "owner": Self::OWNER_NAME,
            "instance": "primary",
        });
        let src = task.request_str(0);
        if src.ends_with(".src.rpm")
            && let Some(map) = message.as_object_mut()
        {
            let srpm = src.rsplit('/').next().unwrap_or(&src).to_owned();
            map.insert("srpm".into(), srpm.into());
        }
        message
    }
}

impl Drop for KojiHub {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.server.abort();
    }
}

#[derive(Debug, Clone)]
enum Scripted {
    Http {
        status: u16,
        retry_after: Option<u64>,
    },
    Fault(Fault),
}

struct Hub {
    next_id: i64,
    tasks: BTreeMap<i64, Task>,
    builds: Vec<serde_json::Value>,
    submissions: Vec<Submission>,
    cancellations: Vec<i64>,
    calls: Vec<String>,
    scripted: VecDeque<Scripted>,
    targets: Vec<String>,
    /// `None` for a hub that needs no login.
    acceptor: Option<Acceptor>,
    /// Open sessions by id: their key and who logged in.
    sessions: BTreeMap<i64, (String, String)>,
    next_session: i64,
    logins: Vec<String>,
    refused_logins: Vec<String>,
}

/// The caller of one XML-RPC call, from its session headers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Caller {
    Anonymous,
    /// The session's id and who opened it.
    LoggedIn(i64, String),
}

/// The build targets the hub knows: one per release branch the tests' real
/// messages and flows use, named as on Fedora's hub (`koji list-targets`:
/// `rawhide`, `fNN`, `eln`, `epelN`, `epelN.M`). A `build` for any other
/// target is refused with the `GenericError` "No such build target: <name>"
/// that `getBuildTarget(<name>, strict=True)` raises on the hub (kojihub's
/// `get_build_target`; koji's `tests/test_hub/test_get_build_target.py`), and
/// that `koji build` (cli `handle_build`, the route production takes) reports
/// before it submits anything; the stand-in refuses the `build` call itself
/// with it, so the XML-RPC route sees the same refusal. Tests may change the
/// list with [`KojiHub::set_targets`].
pub const KNOWN_TARGETS: &[&str] = &[
    "rawhide", "f40", "f41", "f42", "f43", "eln", "epel9", "epel10", "epel10.0", "epel10.1",
];

impl Default for Hub {
    fn default() -> Self {
        Hub {
            // Where Fedora's task ids are these days.
            next_id: 130_000_000,
            tasks: BTreeMap::new(),
            builds: Vec::new(),
            submissions: Vec::new(),
            cancellations: Vec::new(),
            calls: Vec::new(),
            scripted: VecDeque::new(),
            targets: KNOWN_TARGETS.iter().map(|t| (*t).to_owned()).collect(),
            acceptor: None,
            sessions: BTreeMap::new(),
            next_session: 93_000_000,
            logins: Vec::new(),
            refused_logins: Vec::new(),
        }
    }
}

impl Hub {
    fn take_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn children(&self, id: i64) -> impl Iterator<Item = &Task> {
        self.tasks.values().filter(move |t| t.parent == Some(id))
    }

    fn cancel(&mut self, id: i64, recurse: bool) {
        if let Some(task) = self.tasks.get_mut(&id) {
            // Koji leaves finished tasks as they are, without an error.
            if task.state.is_final() {
                return;
            }
            task.move_to(KojiTaskState::Canceled);
        }
        if recurse {
            let children: Vec<i64> = self.children(id).map(|t| t.id).collect();
            for child in children {
                self.cancel(child, true);
            }
        }
    }
}

struct Task {
    id: i64,
    parent: Option<i64>,
    method: String,
    arch: String,
    label: Option<String>,
    state: KojiTaskState,
    previous: Option<KojiTaskState>,
    request: Vec<Value>,
    priority: i64,
    host_id: Option<i64>,
    create_ts: f64,
    start_ts: Option<f64>,
    completion_ts: Option<f64>,
}

impl Task {
    fn new(id: i64, method: &str, request: Vec<Value>) -> Task {
        Task {
            id,
            parent: None,
            method: method.to_owned(),
            arch: "noarch".to_owned(),
            label: None,
            state: KojiTaskState::Free,
            previous: None,
            request,
            priority: 20,
            host_id: None,
            create_ts: now(),
            start_ts: None,
            completion_ts: None,
        }
    }

    fn request_str(&self, index: usize) -> String {
        self.request
            .get(index)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    fn request_json(&self) -> serde_json::Value {
        self.request.iter().map(Value::to_json).collect()
    }

    fn move_to(&mut self, state: KojiTaskState) {
        if state == self.state {
            return;
        }
        self.previous = Some(self.state);
        self.state = state;
        match state {
            KojiTaskState::Free => {
                self.host_id = None;
                self.start_ts = None;
                self.completion_ts = None;
            }
            KojiTaskState::Assigned => self.host_id = Some(305),
            KojiTaskState::Open => {
                self.host_id = Some(305);
                self.start_ts.get_or_insert_with(now);
            }
            KojiTaskState::Closed | KojiTaskState::Failed | KojiTaskState::Canceled => {
                if state != KojiTaskState::Canceled {
                    self.host_id.get_or_insert(305);
                    self.start_ts.get_or_insert_with(now);
                }
                self.completion_ts = Some(now());
            }
        }
    }

    /// `getTaskInfo` / `getTaskChildren` as a current hub answers: the
    /// columns of `Task.fields`, dates as strings, epoch seconds as `*_ts`.
    fn hub_info(&self, request: bool) -> Value {
        let opt_int = |v: Option<i64>| v.map_or(Value::Nil, Value::Int);
        let opt_time = |ts: Option<f64>| ts.map_or(Value::Nil, |ts| Value::String(date_string(ts)));
        let opt_ts = |ts: Option<f64>| ts.map_or(Value::Nil, Value::Double);
        let mut members = vec![
            ("id", Value::Int(self.id)),
            ("state", Value::Int(self.state.number())),
            ("create_time", Value::String(date_string(self.create_ts))),
            ("create_ts", Value::Double(self.create_ts)),
            ("start_time", opt_time(self.start_ts)),
            ("start_ts", opt_ts(self.start_ts)),
            ("completion_time", opt_time(self.completion_ts)),
            ("completion_ts", opt_ts(self.completion_ts)),
            ("channel_id", Value::Int(1)),
            ("host_id", opt_int(self.host_id)),
            ("parent", opt_int(self.parent)),
            (
                "label",
                self.label.clone().map_or(Value::Nil, Value::String),
            ),
            ("waiting", Value::Nil),
            (
                "awaited",
                if self.parent.is_some() {
                    Value::Bool(false)
                } else {
                    Value::Nil
                },
            ),
            ("owner", Value::Int(KojiHub::OWNER_ID)),
            ("method", Value::String(self.method.clone())),
            ("arch", Value::String(self.arch.clone())),
            ("priority", Value::Int(self.priority)),
            (
                "weight",
                Value::Double(if self.method == "buildArch" { 1.5 } else { 0.2 }),
            ),
        ];
        if request {
            members.push(("request", Value::Array(self.request.clone())));
        }
        Value::structure(members)
    }

    /// The task as `info` in a bus message: times as epoch seconds.
    fn message_info(&self) -> serde_json::Value {
        json!({
            "arch": self.arch,
            "awaited": if self.parent.is_some() { Some(false) } else { None },
            "channel_id": 1,
            "completion_time": self.completion_ts,
            "create_time": self.create_ts,
            "host_id": self.host_id,
            "id": self.id,
            "label": self.label,
            "method": self.method,
            "owner": KojiHub::OWNER_ID,
            "parent": self.parent,
            "priority": self.priority,
            "start_time": self.start_ts,
            "state": self.state.number(),
            "waiting": serde_json::Value::Null,
        })
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| (d.as_micros() as f64) / 1e6)
}

/// Python's `datetime.isoformat(' ')` of a UTC time, as the hub sends dates.
fn date_string(ts: f64) -> String {
    let micros = (ts * 1e6).round() as i64;
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string())
        .unwrap_or_default()
}

/// `hello` from `git+https://src.fedoraproject.org/rpms/hello.git#abc`.
fn package_name(src: &str) -> String {
    let path = src.split(['#', '?']).next().unwrap_or(src);
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path);
    let name = last.trim_end_matches(".git").trim_end_matches(".src.rpm");
    if name.is_empty() {
        "package".to_owned()
    } else {
        name.to_owned()
    }
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [
            (header::ALLOW, "POST"),
            (header::CONTENT_TYPE, "text/plain"),
        ],
        "Method Not Allowed\nThis is an XML-RPC server. Only POST requests are accepted.",
    )
        .into_response()
}

fn xml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

fn fault(code: i64, string: impl Into<String>) -> Fault {
    Fault {
        code,
        string: string.into(),
    }
}

async fn handle_post(
    State(state): State<Arc<Mutex<Hub>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut hub = state.lock().unwrap_or_else(PoisonError::into_inner);
    let (method, params) = match xmlrpc::decode_call(&body) {
        Ok(call) => call,
        // The hub turns any exception into a fault with code 1.
        Err(error) => {
            return xml(xmlrpc::encode_fault(&fault(
                1,
                format!("<class 'xml.parsers.expat.ExpatError'>: {error}"),
            )));
        }
    };
    hub.calls.push(method.clone());
    if let Some(response) = scripted_answer(&mut hub) {
        return response;
    }
    let caller = match hub.caller(&headers) {
        Ok(caller) => caller,
        Err(f) => return xml(xmlrpc::encode_fault(&f)),
    };
    match dispatch(&mut hub, &caller, &method, params) {
        Ok(value) => xml(xmlrpc::encode_response(&value)),
        Err(f) => xml(xmlrpc::encode_fault(&f)),
    }
}

/// The next scripted failure, if a test asked for one.
fn scripted_answer(hub: &mut Hub) -> Option<Response> {
    match hub.scripted.pop_front()? {
        Scripted::Http {
            status,
            retry_after,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (
                status,
                [(header::CONTENT_TYPE, "text/plain")],
                format!("{status}\nThe stand-in was told to fail this call."),
            )
                .into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            Some(response)
        }
        Scripted::Fault(scripted) => Some(xml(xmlrpc::encode_fault(&scripted))),
    }
}

/// `POST /kojihub/ssllogin`: on Fedora's hub `mod_auth_gssapi` guards this
/// URL, so a request without a valid `Authorization: Negotiate` token gets
/// Apache's 401 with `WWW-Authenticate: Negotiate` and never reaches the
/// hub; with one, the hub's `sslLogin` opens a session for the principal and
/// answers `session-id`, `session-key` and `header-auth` (the client then
/// sends them as `Koji-Session-Id` and `Koji-Session-Key` headers).
async fn handle_login(
    State(state): State<Arc<Mutex<Hub>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let acceptor = {
        let mut hub = state.lock().unwrap_or_else(PoisonError::into_inner);
        hub.calls.push("sslLogin".to_owned());
        if let Some(response) = scripted_answer(&mut hub) {
            return response;
        }
        hub.acceptor.clone()
    };
    let Some(acceptor) = acceptor else {
        return xml(xmlrpc::encode_fault(&fault(
            faults::AUTH_ERROR,
            "GSSAPI authentication is not enabled on this hub",
        )));
    };
    let Some(token) = negotiate_token(&headers) else {
        return unauthorized();
    };
    let accepted = match acceptor.accept(token).await {
        Ok(accepted) => accepted,
        Err(reason) => {
            state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .refused_logins
                .push(reason);
            return unauthorized();
        }
    };
    let mut hub = state.lock().unwrap_or_else(PoisonError::into_inner);
    if let Err(f) = xmlrpc::decode_call(&body)
        .map_err(|e| e.to_string())
        .and_then(|(method, params)| {
            if method != "sslLogin" {
                return Err(format!("{method} is not sslLogin"));
            }
            bind(
                "sslLogin",
                params,
                [
                    ("proxyuser", Some(Value::Nil)),
                    ("proxyauthtype", Some(Value::Nil)),
                    ("renew", Some(Value::Bool(false))),
                    ("exclusive", Some(Value::Nil)),
                ],
            )
            .map(|_| ())
            .map_err(|f| f.string)
        })
    {
        return xml(xmlrpc::encode_fault(&fault(faults::PARAMETER_ERROR, f)));
    }
    hub.next_session += 1;
    let id = hub.next_session;
    let key = format!("{id}-{}", uuid::Uuid::new_v4().simple());
    hub.sessions
        .insert(id, (key.clone(), accepted.principal.clone()));
    hub.logins.push(accepted.principal);
    let mut response = xml(xmlrpc::encode_response(&Value::structure([
        ("session-id", Value::Int(id)),
        ("session-key", Value::String(key)),
        ("header-auth", Value::Bool(true)),
    ])));
    if let Some(answer) = accepted.token
        && let Ok(value) = HeaderValue::from_str(&format!("Negotiate {answer}"))
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Apache's answer to a request that `mod_auth_gssapi` did not let in.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Negotiate"),
            (header::CONTENT_TYPE, "text/html; charset=iso-8859-1"),
        ],
        "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>401 Unauthorized</title>\n</head><body>\n<h1>Unauthorized</h1>\n</body></html>\n",
    )
        .into_response()
}

impl Hub {
    /// Who makes a call: the session its `Koji-Session-Id` and
    /// `Koji-Session-Key` headers name, or nobody. A session the hub does not
    /// have is refused, as kojihub's `Session` refuses it.
    fn caller(&self, headers: &HeaderMap) -> Result<Caller, Fault> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(id), Some(key)) = (header("Koji-Session-Id"), header("Koji-Session-Key")) else {
            return Ok(Caller::Anonymous);
        };
        let id = id.parse::<i64>().unwrap_or(-1);
        match self.sessions.get(&id) {
            Some((expected, principal)) if expected == key => {
                Ok(Caller::LoggedIn(id, principal.clone()))
            }
            _ => Err(fault(faults::AUTH_ERROR, "Invalid Session ID/Key")),
        }
    }
}

fn dispatch(
    hub: &mut Hub,
    caller: &Caller,
    method: &str,
    params: Vec<Value>,
) -> Result<Value, Fault> {
    // Writes need a session on a hub with logins (kojihub's `make_task`
    // calls `assertLogin`, and only a task's owner may cancel it).
    if hub.acceptor.is_some() && *caller == Caller::Anonymous {
        match method {
            "build" => {
                return Err(fault(
                    faults::ACTION_NOT_ALLOWED,
                    "you must be logged in for this operation",
                ));
            }
            "cancelTask" => {
                return Err(fault(
                    faults::ACTION_NOT_ALLOWED,
                    "Cannot cancel task, not owner",
                ));
            }
            _ => {}
        }
    }
    match method {
        "getTaskInfo" => {
            let [task_id, request, strict] = bind(
                method,
                params,
                [
                    ("task_id", None),
                    ("request", Some(Value::Bool(false))),
                    ("strict", Some(Value::Bool(false))),
                ],
            )?;
            let (request, strict) = (truthy(&request), truthy(&strict));
            let info = |hub: &Hub, id: &Value| -> Result<Value, Fault> {
                match hub.tasks.get(&int_arg(id)?) {
                    Some(task) => Ok(task.hub_info(request)),
                    None if strict => Err(fault(faults::GENERIC_ERROR, "query returned no rows")),
                    None => Ok(Value::Nil),
                }
            };
            match &task_id {
                Value::Array(ids) => ids
                    .iter()
                    .map(|id| info(hub, id))
                    .collect::<Result<_, _>>()
                    .map(Value::Array),
                id => info(hub, id),
            }
        }
        "getTaskChildren" => {
            let [task_id, request, strict] = bind(
                method,
                params,
                [
                    ("task_id", None),
                    ("request", Some(Value::Bool(false))),
                    ("strict", Some(Value::Bool(false))),
                ],
            )?;
            let id = int_arg(&task_id)?;
            if truthy(&strict) && !hub.tasks.contains_key(&id) {
                return Err(fault(faults::GENERIC_ERROR, "query returned no rows"));
            }
            let request = truthy(&request);
            Ok(Value::Array(
                hub.children(id).map(|t| t.hub_info(request)).collect(),
            ))
        }
        "getBuild" => {
            let [build_info, strict] = bind(
                method,
                params,
                [("buildInfo", None), ("strict", Some(Value::Bool(false)))],
            )?;
            let found = match &build_info {
                Value::Int(id) => hub
                    .builds
                    .iter()
                    .find(|b| b.get("id").and_then(serde_json::Value::as_i64) == Some(*id)),
                Value::String(nvr) => {
                    if nvr.split('-').count() < 3 {
                        return Err(fault(
                            faults::GENERIC_ERROR,
                            format!("invalid format: {nvr}"),
                        ));
                    }
                    hub.builds
                        .iter()
                        .find(|b| b.get("nvr").and_then(serde_json::Value::as_str) == Some(nvr))
                }
                other => return Err(invalid_type(other, "int")),
            };
            match found {
                Some(build) => Ok(Value::from_json(build)),
                None if truthy(&strict) => Err(fault(
                    faults::GENERIC_ERROR,
                    format!("No such build: {}", python_repr(&build_info)),
                )),
                None => Ok(Value::Nil),
            }
        }
        "build" => {
            let [src, target, opts, priority, channel] = bind(
                method,
                params,
                [
                    ("src", None),
                    ("target", None),
                    ("opts", Some(Value::Nil)),
                    ("priority", Some(Value::Nil)),
                    ("channel", Some(Value::Nil)),
                ],
            )?;
            let Value::String(src) = src else {
                return Err(invalid_type(&src, "str"));
            };
            let Value::String(target) = target else {
                return Err(invalid_type(&target, "str"));
            };
            if !hub.targets.contains(&target) {
                return Err(fault(
                    faults::GENERIC_ERROR,
                    format!("No such build target: {target}"),
                ));
            }
            let opts = match opts {
                Value::Nil => Value::Struct(Vec::new()),
                opts @ Value::Struct(_) => opts,
                other => return Err(invalid_type(&other, "dict")),
            };
            let priority = match priority {
                Value::Nil => None,
                other => Some(int_arg(&other)?),
            };
            let channel = match channel {
                Value::Nil => None,
                Value::String(channel) => Some(channel),
                other => return Err(invalid_type(&other, "str")),
            };
            let id = hub.take_id();
            let mut task = Task::new(
                id,
                "build",
                vec![
                    Value::String(src.clone()),
                    Value::String(target.clone()),
                    opts.clone(),
                ],
            );
            task.priority = 20 + priority.unwrap_or(0);
            hub.tasks.insert(id, task);
            hub.submissions.push(Submission {
                task_id: id,
                src,
                target,
                opts: opts.to_json(),
                priority,
                channel,
                at: std::time::Instant::now(),
            });
            Ok(Value::Int(id))
        }
        "cancelTask" => {
            let [task_id, recurse] = bind(
                method,
                params,
                [("task_id", None), ("recurse", Some(Value::Bool(true)))],
            )?;
            let id = int_arg(&task_id)?;
            hub.cancellations.push(id);
            if !hub.tasks.contains_key(&id) {
                return Err(fault(faults::GENERIC_ERROR, format!("No such task: {id}")));
            }
            hub.cancel(id, truthy(&recurse));
            Ok(Value::Nil)
        }
        // What `koji build` asks before it submits (cli `handle_build`):
        // the target, then its destination tag. Each target here builds from
        // `<target>-build` into `<target>-candidate`.
        "getBuildTarget" => {
            let [info, _event, strict] = bind(
                method,
                params,
                [
                    ("info", None),
                    ("event", Some(Value::Nil)),
                    ("strict", Some(Value::Bool(false))),
                ],
            )?;
            let found = match &info {
                Value::String(name) => hub.targets.iter().position(|t| t == name),
                Value::Int(id) => usize::try_from(*id - 1)
                    .ok()
                    .filter(|i| *i < hub.targets.len()),
                other => return Err(invalid_type(other, "int or str")),
            };
            match found {
                Some(index) => {
                    let name = hub.targets[index].clone();
                    let id = i64::try_from(index).unwrap_or(0);
                    Ok(Value::structure([
                        ("id", Value::Int(id + 1)),
                        ("name", Value::String(name.clone())),
                        ("build_tag", Value::Int(2 * id + 1001)),
                        ("build_tag_name", Value::String(format!("{name}-build"))),
                        ("dest_tag", Value::Int(2 * id + 1002)),
                        ("dest_tag_name", Value::String(format!("{name}-candidate"))),
                    ]))
                }
                None if truthy(&strict) => Err(fault(
                    faults::GENERIC_ERROR,
                    format!("No such build target: {}", python_repr(&info)),
                )),
                None => Ok(Value::Nil),
            }
        }
        "getTag" => {
            let [info, strict, _event, _blocked] = bind(
                method,
                params,
                [
                    ("tagInfo", None),
                    ("strict", Some(Value::Bool(false))),
                    ("event", Some(Value::Nil)),
                    ("blocked", Some(Value::Bool(false))),
                ],
            )?;
            let tag = hub.targets.iter().enumerate().find_map(|(index, target)| {
                let index = i64::try_from(index).unwrap_or(0);
                [
                    (2 * index + 1001, format!("{target}-build")),
                    (2 * index + 1002, format!("{target}-candidate")),
                ]
                .into_iter()
                .find(|(id, name)| match &info {
                    Value::Int(wanted) => wanted == id,
                    Value::String(wanted) => wanted == name,
                    _ => false,
                })
            });
            match tag {
                Some((id, name)) => Ok(Value::structure([
                    ("id", Value::Int(id)),
                    ("name", Value::String(name)),
                    (
                        "arches",
                        Value::String("aarch64 ppc64le s390x x86_64".to_owned()),
                    ),
                    ("locked", Value::Bool(false)),
                    ("perm", Value::Nil),
                    ("perm_id", Value::Nil),
                    ("maven_support", Value::Bool(false)),
                    ("maven_include_all", Value::Bool(false)),
                    ("extra", Value::Struct(Vec::new())),
                ])),
                None if truthy(&strict) => Err(fault(
                    faults::GENERIC_ERROR,
                    format!("No such tagInfo: {}", python_repr(&info)),
                )),
                None => Ok(Value::Nil),
            }
        }
        // Koji's own batch call (not `system.multicall`), which `koji
        // cancel` uses: each result is `[value]` or a fault struct.
        "multiCall" => {
            let [calls] = bind(method, params, [("calls", None)])?;
            let Value::Array(calls) = calls else {
                return Err(invalid_type(&calls, "list"));
            };
            let mut results = Vec::with_capacity(calls.len());
            for call in calls {
                let Value::Struct(members) = call else {
                    return Err(invalid_type(&call, "dict"));
                };
                let member = |name: &str| members.iter().find(|(k, _)| k == name).map(|(_, v)| v);
                let name = match member("methodName") {
                    Some(Value::String(name)) if name != "multiCall" => name.clone(),
                    _ => return Err(fault(faults::GENERIC_ERROR, "Invalid multicall entry")),
                };
                let params = match member("params") {
                    Some(Value::Array(params)) => params.clone(),
                    _ => Vec::new(),
                };
                hub.calls.push(name.clone());
                results.push(match dispatch(hub, caller, &name, params) {
                    Ok(value) => Value::Array(vec![value]),
                    Err(f) => Value::structure([
                        ("faultCode", Value::Int(f.code)),
                        ("faultString", Value::String(f.string)),
                    ]),
                });
            }
            Ok(Value::Array(results))
        }
        "logout" => {
            let [_session_id] = bind(method, params, [("session_id", Some(Value::Nil))])?;
            if let Caller::LoggedIn(id, _) = caller {
                hub.sessions.remove(id);
            }
            Ok(Value::Nil)
        }
        "getKojiVersion" => {
            let [] = bind(method, params, [])?;
            Ok(Value::String("1.35.3".to_owned()))
        }
        "getAPIVersion" => {
            let [] = bind(method, params, [])?;
            Ok(Value::Int(1))
        }
        "hello" => Ok(Value::String("Hello World".to_owned())),
        _ => Err(fault(
            faults::GENERIC_ERROR,
            format!("Invalid method: {method}"),
        )),
    }
}

/// Koji's `decode_args` and Python's own argument binding: positional
/// parameters, then keyword ones from a trailing `__starstar` struct, with
/// Python's complaints as `ParameterError`s.
fn bind<const N: usize>(
    method: &str,
    mut params: Vec<Value>,
    signature: [(&str, Option<Value>); N],
) -> Result<[Value; N], Fault> {
    let parameter_error = |message: String| fault(faults::PARAMETER_ERROR, message);
    let mut kwargs = Vec::new();
    if let Some(Value::Struct(members)) = params.last()
        && members.iter().any(|(k, v)| k == "__starstar" && truthy(v))
    {
        kwargs = members
            .iter()
            .filter(|(k, _)| k != "__starstar")
            .cloned()
            .collect();
        params.pop();
    }
    if params.len() > N {
        return Err(parameter_error(format!(
            "{method}() takes {N} positional arguments but {} were given",
            params.len()
        )));
    }
    let mut bound: Vec<Option<Value>> = params.into_iter().map(Some).collect();
    bound.resize(N, None);
    for (name, value) in kwargs {
        let Some(index) = signature.iter().position(|(n, _)| *n == name) else {
            return Err(parameter_error(format!(
                "{method}() got an unexpected keyword argument '{name}'"
            )));
        };
        if bound[index].is_some() {
            return Err(parameter_error(format!(
                "{method}() got multiple values for argument '{name}'"
            )));
        }
        bound[index] = Some(value);
    }
    let mut values = Vec::with_capacity(N);
    for ((name, default), value) in signature.into_iter().zip(bound) {
        match value.or(default) {
            Some(value) => values.push(value),
            None => {
                return Err(parameter_error(format!(
                    "{method}() missing 1 required positional argument: '{name}'"
                )));
            }
        }
    }
    values
        .try_into()
        .map_err(|_| parameter_error(format!("{method}(): wrong number of arguments")))
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Nil => false,
        Value::Bool(b) => *b,
        Value::Int(n) => *n != 0,
        Value::Double(n) => *n != 0.0,
        Value::String(s) | Value::DateTime(s) => !s.is_empty(),
        Value::Base64(b) => !b.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Struct(members) => !members.is_empty(),
    }
}

/// `convert_value(value, cast=int)`: integers, and strings that hold one.
fn int_arg(value: &Value) -> Result<i64, Fault> {
    match value {
        Value::Int(n) => Ok(*n),
        Value::String(s) => s.trim().parse().map_err(|_| invalid_type(value, "int")),
        other => Err(invalid_type(other, "int")),
    }
}

fn invalid_type(value: &Value, expected: &str) -> Fault {
    let class = match value {
        Value::Int(_) => "int",
        Value::Bool(_) => "bool",
        Value::String(_) => "str",
        Value::Double(_) => "float",
        Value::DateTime(_) => "xmlrpc.client.DateTime",
        Value::Base64(_) => "xmlrpc.client.Binary",
        Value::Array(_) => "list",
        Value::Struct(_) => "dict",
        Value::Nil => "NoneType",
    };
    fault(
        faults::PARAMETER_ERROR,
        format!(
            "Invalid type for value {}: <class '{class}'>, expected type <class '{expected}'>",
            python_repr(value)
        ),
    )
}

/// Close enough to Python's `repr` for error messages.
fn python_repr(value: &Value) -> String {
    match value {
        Value::String(s) => format!("'{s}'"),
        Value::Nil => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        other => other.to_json().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hub with logins: writes without a session are refused as kojihub
    /// refuses them (`assertLogin`, and only a task's owner may cancel it);
    /// reads need none; a session the hub did not open is refused.
    #[test]
    fn writes_need_a_session_on_a_hub_with_logins() {
        let mut hub = Hub {
            acceptor: Some(Acceptor::new("python3", "/nonexistent", "/nonexistent")),
            ..Hub::default()
        };
        let build = || {
            vec![
                Value::String("git+https://src.fedoraproject.org/rpms/foo.git#abc".to_owned()),
                Value::String("rawhide".to_owned()),
                Value::structure([("scratch", Value::Bool(true))]),
            ]
        };
        let refused =
            dispatch(&mut hub, &Caller::Anonymous, "build", build()).expect_err("no session");
        assert_eq!(
            (refused.code, refused.string.as_str()),
            (
                faults::ACTION_NOT_ALLOWED,
                "you must be logged in for this operation"
            )
        );
        let refused = dispatch(
            &mut hub,
            &Caller::Anonymous,
            "cancelTask",
            vec![Value::Int(1)],
        )
        .expect_err("no session");
        assert_eq!(
            (refused.code, refused.string.as_str()),
            (faults::ACTION_NOT_ALLOWED, "Cannot cancel task, not owner")
        );
        assert!(hub.submissions.is_empty() && hub.cancellations.is_empty());
        assert!(dispatch(&mut hub, &Caller::Anonymous, "getAPIVersion", Vec::new()).is_ok());
        let caller = Caller::LoggedIn(7, "fedora-ci@FCI.TEST".to_owned());
        assert!(matches!(
            dispatch(&mut hub, &caller, "build", build()),
            Ok(Value::Int(_))
        ));

        let mut headers = HeaderMap::new();
        headers.insert("Koji-Session-Id", HeaderValue::from_static("7"));
        headers.insert("Koji-Session-Key", HeaderValue::from_static("guessed"));
        let refused = hub.caller(&headers).expect_err("not a session of the hub");
        assert_eq!(refused.code, faults::AUTH_ERROR);
        assert_eq!(hub.caller(&HeaderMap::new()), Ok(Caller::Anonymous));
    }

    #[test]
    fn binds_positional_and_keyword_arguments_as_python_does() {
        let sig = || {
            [
                ("task_id", None),
                ("request", Some(Value::Bool(false))),
                ("strict", Some(Value::Bool(false))),
            ]
        };
        let bound = bind(
            "getTaskInfo",
            vec![
                Value::Int(1),
                Value::kwargs([("strict", Value::Bool(true))]),
            ],
            sig(),
        );
        assert_eq!(
            bound,
            Ok([Value::Int(1), Value::Bool(false), Value::Bool(true)])
        );
        let bound = bind("getTaskInfo", vec![Value::Int(1), Value::Bool(true)], sig());
        assert_eq!(
            bound,
            Ok([Value::Int(1), Value::Bool(true), Value::Bool(false)])
        );
        // A struct without __starstar is a positional argument.
        let plain = Value::structure([("strict", Value::Bool(true))]);
        let bound = bind("getTaskInfo", vec![Value::Int(1), plain.clone()], sig());
        assert_eq!(bound, Ok([Value::Int(1), plain, Value::Bool(false)]));

        let error = |params| {
            bind("getTaskInfo", params, sig())
                .err()
                .map(|f| (f.code, f.string))
        };
        assert_eq!(
            error(vec![]),
            Some((
                1019,
                "getTaskInfo() missing 1 required positional argument: 'task_id'".into()
            ))
        );
        assert_eq!(
            error(vec![Value::Int(1), Value::kwargs([("bogus", Value::Nil)])]),
            Some((
                1019,
                "getTaskInfo() got an unexpected keyword argument 'bogus'".into()
            ))
        );
        assert_eq!(
            error(vec![
                Value::Int(1),
                Value::kwargs([("task_id", Value::Int(2))])
            ]),
            Some((
                1019,
                "getTaskInfo() got multiple values for argument 'task_id'".into()
            ))
        );
        assert_eq!(
            error(vec![Value::Int(1), Value::Nil, Value::Nil, Value::Nil]),
            Some((
                1019,
                "getTaskInfo() takes 3 positional arguments but 4 were given".into()
            ))
        );
    }

    #[test]
    fn dates_look_like_the_hubs() {
        assert_eq!(
            date_string(1590993047.5),
            "2020-06-01 06:30:47.500000+00:00"
        );
    }

    #[test]
    fn package_names_come_from_the_source() {
        assert_eq!(
            package_name("git+https://src.fedoraproject.org/rpms/hello.git#abc"),
            "hello"
        );
        assert_eq!(
            package_name("git+https://src.fedoraproject.org/forks/u/rpms/optee_os.git#a"),
            "optee_os"
        );
        assert_eq!(
            package_name("cli-build/1/hello-0.74-1.fc31.src.rpm"),
            "hello-0.74-1.fc31"
        );
        assert_eq!(package_name(""), "package");
    }
}
