//! A FASJSON stand-in: `GET /v1/users/<name>/groups/`, paged like FASJSON
//! (`page_size`, `page_number`, and a `page` object in the answer), 404 for
//! a user it does not know. It takes no authentication: Kerberos cannot be
//! stood in for locally, and `curl --negotiate` talks to it like any server
//! that does not ask for it.
//!
//! To exercise paging it pages every answer, at most `max_page_size` groups
//! a page (2 by default), even when asked for more.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::http::standin::{Fault, Server, SharedScript, lock};

/// One call the stand-in received.
pub use crate::http::standin::Call;

#[derive(Debug)]
struct Inner {
    users: BTreeMap<String, Vec<String>>,
    max_page_size: usize,
    base_url: String,
}

#[derive(Clone)]
struct App {
    inner: Arc<Mutex<Inner>>,
}

/// A running FASJSON stand-in; stops when dropped.
#[derive(Debug)]
pub struct FasStandin {
    server: Server,
    inner: Arc<Mutex<Inner>>,
    script: SharedScript,
}

impl FasStandin {
    pub async fn start() -> std::io::Result<Self> {
        let inner = Arc::new(Mutex::new(Inner {
            users: BTreeMap::new(),
            max_page_size: 2,
            base_url: String::new(),
        }));
        let script = SharedScript::default();
        let router = Router::new()
            .route("/v1/users/{name}/groups/", get(groups))
            .with_state(App {
                inner: inner.clone(),
            });
        let server = Server::start(router, script.clone()).await?;
        lock(&inner).base_url = server.url();
        Ok(FasStandin {
            server,
            inner,
            script,
        })
    }

    /// The base to configure as `[fas] url`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Makes `user` known, a member of `groups` (in this order).
    pub fn set_groups(&self, user: &str, groups: &[&str]) {
        lock(&self.inner).users.insert(
            user.to_owned(),
            groups.iter().map(|g| (*g).to_owned()).collect(),
        );
    }

    /// The most groups one page holds (at least 1).
    pub fn set_max_page_size(&self, size: usize) {
        lock(&self.inner).max_page_size = size.max(1);
    }

    /// The next `n` calls get `status` instead of an answer.
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

    /// Every call received.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.script).calls()
    }
}

#[derive(Deserialize)]
struct Paging {
    page_size: Option<usize>,
    page_number: Option<usize>,
}

async fn groups(
    State(app): State<App>,
    Path(name): Path<String>,
    Query(paging): Query<Paging>,
) -> Response {
    let inner = lock(&app.inner);
    let Some(groups) = inner.users.get(&name) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "name": name, "message": "User does not exist" })),
        )
            .into_response();
    };
    let page_size = paging
        .page_size
        .unwrap_or(inner.max_page_size)
        .clamp(1, inner.max_page_size);
    let page_number = paging.page_number.unwrap_or(1).max(1);
    let total_pages = groups.len().div_ceil(page_size);
    let result: Vec<_> = groups
        .iter()
        .skip((page_number - 1) * page_size)
        .take(page_size)
        .map(|group| {
            json!({
                "groupname": group,
                "uri": format!("{}/v1/groups/{group}/", inner.base_url),
            })
        })
        .collect();
    let mut page = json!({
        "total_results": groups.len(),
        "page_size": page_size,
        "page_number": page_number,
        "total_pages": total_pages,
    });
    if page_number < total_pages {
        page["next_page"] = json!(format!(
            "{}/v1/users/{name}/groups/?page_size={page_size}&page_number={}",
            inner.base_url,
            page_number + 1
        ));
    }
    axum::Json(json!({ "result": result, "page": page })).into_response()
}
