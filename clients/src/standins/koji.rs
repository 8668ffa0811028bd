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
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use events::states::KojiTaskState;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::koji::faults;
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

    /// Starts the hub on `127.0.0.1`, on a free port.
    pub async fn start() -> std::io::Result<KojiHub> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let state = Arc::new(Mutex::new(Hub::default()));
        let app = Router::new()
            .route("/kojihub", post(handle_post).get(method_not_allowed))
            .with_state(state.clone());
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stop.await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "koji stand-in stopped");
            }
        });
        Ok(KojiHub {
            url: format!("http://{address}/kojihub"),
            state,
            shutdown: Some(shutdown),
            server,
        })
    }

    /// The hub URL (`http://127.0.0.1:PORT/kojihub`), what `[koji] hub_url` takes.
    pub fn url(&self) -> String {
        self.url.clone()
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

async fn handle_post(State(state): State<Arc<Mutex<Hub>>>, body: String) -> Response {
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
    match hub.scripted.pop_front() {
        Some(Scripted::Http {
            status,
            retry_after,
        }) => {
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
            return response;
        }
        Some(Scripted::Fault(scripted)) => return xml(xmlrpc::encode_fault(&scripted)),
        None => {}
    }
    match dispatch(&mut hub, &method, params) {
        Ok(value) => xml(xmlrpc::encode_response(&value)),
        Err(f) => xml(xmlrpc::encode_fault(&f)),
    }
}

fn dispatch(hub: &mut Hub, method: &str, params: Vec<Value>) -> Result<Value, Fault> {
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
