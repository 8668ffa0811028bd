//! A Testing Farm stand-in: `POST /requests`, `GET /requests/{id}`,
//! `DELETE /requests/{id}`, `GET /composes/{ranch}`, and the webhook Testing
//! Farm calls when a request changes (`notify`).
//!
//! It follows the real API (`../testing_farm.rs` lists the facts): requests
//! are answered in the shape of `tests/data/testing-farm/request-complete.json`,
//! cancellation answers 200 / 204 / 409 / 404 like Testing Farm, errors carry
//! `{"message": ...}`. It is a stand-in, not a scheduler: a request stays
//! `new` until a test moves it on with [`TestingFarmStandin::set_state`].
//!
//! Its rules, each as strict as the service's:
//! - Composes: a request may only name composes the ranch lists at `GET
//!   /composes/public`, or none (Testing Farm's default; Packit checks
//!   each compose against that list before it submits,
//!   `testing_farm_client.py` `distro2compose`). Another compose is refused
//!   with 400 and a message naming it.
//! - Request states walk as Testing Farm's do: `new`, `queued`, `running`,
//!   then `complete` or `error`; a cancellation moves an unfinished request
//!   to `cancel-requested` (the DELETE answers 200), and the worker then
//!   ends it `canceled` ([`TestingFarmStandin::finish_cancellations`]); a
//!   DELETE of a request already `cancel-requested` or `canceled` answers
//!   204, of a finished one 409, of an unknown one 404.
//! - Submissions and cancellations need `Authorization: Bearer <token>`
//!   (401 without); reads need none.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::http::standin::{Fault, Server, SharedScript, lock};

/// One call the stand-in received.
pub use crate::http::standin::Call;

/// What the stand-in knows about one request.
#[derive(Debug, Clone)]
struct Stored {
    body: Value,
    received: std::time::Instant,
    state: String,
    result: Option<String>,
    summary: Option<String>,
    created: String,
    updated: String,
}

#[derive(Debug, Default)]
struct Inner {
    token: Option<String>,
    /// Accepted requests by id, and their ids in the order they came.
    requests: BTreeMap<String, Stored>,
    order: Vec<String>,
    composes: BTreeMap<String, Vec<String>>,
    base_url: String,
}

#[derive(Clone)]
struct App {
    inner: Arc<Mutex<Inner>>,
}

/// A running Testing Farm stand-in; stops when dropped.
#[derive(Debug)]
pub struct TestingFarmStandin {
    server: Server,
    inner: Arc<Mutex<Inner>>,
    script: SharedScript,
}

impl TestingFarmStandin {
    /// A stand-in that takes any token, or none.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_inner(None).await
    }

    /// A stand-in that answers 401 to submissions and cancellations without
    /// `Authorization: Bearer <token>`.
    pub async fn start_with_token(token: &str) -> std::io::Result<Self> {
        Self::start_inner(Some(token.to_owned())).await
    }

    async fn start_inner(token: Option<String>) -> std::io::Result<Self> {
        // The public ranch's Fedora and CentOS Stream composes, and ELN
        // (`Fedora-eln`, the spelling Testing Farm uses).
        let public = [
            "Fedora-Rawhide",
            "Fedora-43",
            "Fedora-42",
            "Fedora-41",
            "Fedora-eln",
            "CentOS-Stream-9",
            "CentOS-Stream-10",
        ];
        let inner = Arc::new(Mutex::new(Inner {
            token,
            composes: BTreeMap::from([(
                "public".to_owned(),
                public.iter().map(|c| (*c).to_owned()).collect(),
            )]),
            ..Inner::default()
        }));
        let script = SharedScript::default();
        let router = Router::new()
            .route("/requests", axum::routing::post(submit))
            .route("/requests/{id}", get(read).delete(cancel))
            .route("/composes/{ranch}", get(composes))
            .with_state(App {
                inner: inner.clone(),
            });
        let server = Server::start(router, script.clone()).await?;
        lock(&inner).base_url = server.url();
        Ok(TestingFarmStandin {
            server,
            inner,
            script,
        })
    }

    /// The API base to configure as `[testing_farm] api_url` (the stand-in
    /// serves the paths below `/v0.1` at its root).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The next `n` calls get `status` (e.g. five 500s) instead of an answer.
    /// Forget the scripted failures not used yet: the service is back.
    pub fn recover(&self) {
        lock(&self.script).clear_faults();
    }

    pub fn fail_next(&self, n: usize, status: u16) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        lock(&self.script).push(n, Fault::Status(status));
    }

    /// The next `n` calls get 429 with `Retry-After: <seconds>`.
    pub fn throttle_next(&self, n: usize, retry_after_seconds: u64) {
        lock(&self.script).push(
            n,
            Fault::Throttle {
                retry_after_seconds,
            },
        );
    }

    /// Moves a request on: `state` (`new`, `queued`, `running`, `complete`,
    /// `error`, `canceled`), `result` (`passed`, `failed`, `skipped`,
    /// `unknown`, `error`) and the result's summary. False for an unknown id.
    pub fn set_state(
        &self,
        id: &str,
        state: &str,
        result: Option<&str>,
        summary: Option<&str>,
    ) -> bool {
        let mut inner = lock(&self.inner);
        let Some(stored) = inner.requests.get_mut(id) else {
            return false;
        };
        stored.state = state.to_owned();
        stored.result = result.map(str::to_owned);
        stored.summary = summary.map(str::to_owned);
        stored.updated = now();
        true
    }

    /// What Testing Farm's worker does after a cancellation was asked for:
    /// every request in `cancel-requested` ends `canceled`. The count.
    pub fn finish_cancellations(&self) -> usize {
        let mut inner = lock(&self.inner);
        let mut ended = 0;
        for stored in inner.requests.values_mut() {
            if stored.state == "cancel-requested" {
                stored.state = "canceled".to_owned();
                stored.updated = now();
                ended += 1;
            }
        }
        ended
    }

    /// The state a request is in now (`None` for an unknown id).
    pub fn state(&self, id: &str) -> Option<String> {
        lock(&self.inner).requests.get(id).map(|r| r.state.clone())
    }

    /// Sets the composes listed for a ranch (`public` has Fedora's by default).
    pub fn set_composes(&self, ranch: &str, composes: &[&str]) {
        lock(&self.inner).composes.insert(
            ranch.to_owned(),
            composes.iter().map(|c| (*c).to_owned()).collect(),
        );
    }

    /// The bodies of the requests accepted, in order, as they were received
    /// (webhook token included).
    /// The bodies received, with when each arrived, in order.
    pub fn requests_with_times(&self) -> Vec<(std::time::Instant, Value)> {
        let inner = lock(&self.inner);
        inner
            .order
            .iter()
            .filter_map(|id| inner.requests.get(id).map(|r| (r.received, r.body.clone())))
            .collect()
    }

    pub fn requests(&self) -> Vec<Value> {
        let inner = lock(&self.inner);
        inner
            .order
            .iter()
            .filter_map(|id| inner.requests.get(id).map(|r| r.body.clone()))
            .collect()
    }

    /// The ids of the requests accepted, in order.
    pub fn request_ids(&self) -> Vec<String> {
        lock(&self.inner).order.clone()
    }

    /// Every call received, scripted failures included.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.script).calls()
    }

    /// How many calls were made to `path` (e.g. `/requests`), any method.
    pub fn call_count(&self, path: &str) -> usize {
        lock(&self.script)
            .calls()
            .iter()
            .filter(|c| c.path == path)
            .count()
    }

    /// Does what Testing Farm does when a request changes: POSTs
    /// `{"request_id", "token"}` to the `notification.webhook.url` the
    /// request carried, with the token it carried. Returns the webhook's
    /// status.
    pub async fn notify(&self, id: &str) -> Result<u16, String> {
        let (url, token) = {
            let inner = lock(&self.inner);
            let stored = inner
                .requests
                .get(id)
                .ok_or_else(|| format!("no request {id}"))?;
            let webhook = stored.body.pointer("/notification/webhook");
            let url = webhook
                .and_then(|w| w.get("url"))
                .and_then(Value::as_str)
                .ok_or_else(|| format!("request {id} asked for no webhook"))?
                .to_owned();
            let token = webhook.and_then(|w| w.get("token")).cloned();
            (url, token)
        };
        let mut body = json!({ "request_id": id });
        if let Some(token) = token {
            body["token"] = token;
        }
        let response = reqwest::Client::new()
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|err| err.to_string())?;
        Ok(response.status().as_u16())
    }
}

fn now() -> String {
    // The format Testing Farm uses for `created` and `updated`.
    chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

fn authorized(inner: &Inner, headers: &HeaderMap) -> bool {
    let Some(token) = &inner.token else {
        return true;
    };
    let expected = format!("Bearer {token}");
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

async fn submit(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let mut inner = lock(&app.inner);
    if !authorized(&inner, &headers) {
        return message(
            StatusCode::UNAUTHORIZED,
            "Not authorized to perform this action",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return message(StatusCode::BAD_REQUEST, "Request body is not JSON");
    };
    if !body.get("test").is_some_and(Value::is_object) {
        return message(StatusCode::BAD_REQUEST, "Request has no test");
    }
    if body
        .get("environments")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return message(StatusCode::BAD_REQUEST, "Request has no environments");
    }
    let listed = inner.composes.get("public").cloned().unwrap_or_default();
    // An environment without `os` runs on Testing Farm's default (the tests
    // that bring their own container do).
    for environment in body["environments"].as_array().into_iter().flatten() {
        let Some(os) = environment.get("os") else {
            continue;
        };
        let compose = os.get("compose").and_then(Value::as_str);
        if !compose.is_some_and(|compose| listed.iter().any(|name| name == compose)) {
            return message(
                StatusCode::BAD_REQUEST,
                &format!(
                    "Compose {} is not available in the public ranch",
                    compose.map_or_else(|| os.to_string(), |c| format!("'{c}'"))
                ),
            );
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let created = now();
    inner.requests.insert(
        id.clone(),
        Stored {
            body: body.clone(),
            received: std::time::Instant::now(),
            state: "new".to_owned(),
            result: None,
            summary: None,
            created: created.clone(),
            updated: created.clone(),
        },
    );
    inner.order.push(id.clone());
    let answer = json!({
        "id": id,
        "test": body.get("test"),
        "state": "new",
        "environments": body.get("environments"),
        "notification": body.get("notification"),
        "settings": body.get("settings"),
        "created": created,
        "updated": created,
    });
    (StatusCode::OK, axum::Json(answer)).into_response()
}

async fn read(State(app): State<App>, Path(id): Path<String>) -> Response {
    let inner = lock(&app.inner);
    let Some(stored) = inner.requests.get(&id) else {
        return message(StatusCode::NOT_FOUND, "No such entity");
    };
    let finished = matches!(stored.state.as_str(), "complete" | "error" | "canceled");
    let result = (finished || stored.result.is_some()).then(|| {
        json!({
            "overall": stored.result,
            "summary": stored.summary,
            "xunit": null,
            "xunit_url": finished.then(|| format!("{}/artifacts/{id}/results.xml", inner.base_url)),
        })
    });
    let run = (stored.state != "new").then(|| {
        json!({
            "artifacts": format!("{}/artifacts/{id}", inner.base_url),
        })
    });
    let answer = json!({
        "id": id,
        "user_id": "00000000-0000-0000-0000-000000000000",
        "test": stored.body.get("test"),
        "state": stored.state,
        "environments_requested": stored.body.get("environments"),
        "notes": [],
        "result": result,
        "run": run,
        "created": stored.created,
        "updated": stored.updated,
    });
    (StatusCode::OK, axum::Json(answer)).into_response()
}

async fn cancel(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut inner = lock(&app.inner);
    if !authorized(&inner, &headers) {
        return message(
            StatusCode::UNAUTHORIZED,
            "Not authorized to perform this action",
        );
    }
    let Some(stored) = inner.requests.get_mut(&id) else {
        return message(StatusCode::NOT_FOUND, "No such entity");
    };
    match stored.state.as_str() {
        "complete" | "error" => message(StatusCode::CONFLICT, "Request already finished"),
        "canceled" | "cancel-requested" => StatusCode::NO_CONTENT.into_response(),
        _ => {
            stored.state = "cancel-requested".to_owned();
            stored.updated = now();
            StatusCode::OK.into_response()
        }
    }
}

async fn composes(State(app): State<App>, Path(ranch): Path<String>) -> Response {
    let inner = lock(&app.inner);
    let Some(names) = inner.composes.get(&ranch) else {
        return message(StatusCode::NOT_FOUND, "No such ranch");
    };
    let composes: Vec<Value> = names
        .iter()
        .map(|name| json!({ "name": name, "type": "compose" }))
        .collect();
    (StatusCode::OK, axum::Json(json!({ "composes": composes }))).into_response()
}
