//! A FASJSON stand-in: `GET /v1/users/<name>/groups/`, paged like FASJSON
//! (`page_size`, `page_number`, and a `page` object in the answer), 404 for
//! a user it does not know.
//!
//! Started with [`FasStandin::start_kerberos`] it asks for a SPNEGO login
//! on every call, as Fedora's FASJSON does (it sits behind Apache's
//! `mod_auth_gssapi`): a call without a valid `Authorization: Negotiate`
//! token gets 401 with `WWW-Authenticate: Negotiate`, and the token is
//! checked against the test KDC. [`FasStandin::start`] asks for nothing, as
//! a FASJSON behind a proxy that authenticates would.
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
use crate::standins::kerberos::{Acceptor, negotiate_token};

/// One call the stand-in received.
pub use crate::http::standin::Call;

#[derive(Debug)]
struct Inner {
    users: BTreeMap<String, Vec<String>>,
    max_page_size: usize,
    base_url: String,
    /// Who each accepted call came from, in order.
    logins: Vec<String>,
    /// Why each refused login was refused, in order.
    refused_logins: Vec<String>,
}

#[derive(Clone)]
struct App {
    inner: Arc<Mutex<Inner>>,
    acceptor: Option<Acceptor>,
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
        Self::start_with(None).await
    }

    /// A FASJSON that takes only calls with a SPNEGO login `acceptor`
    /// verifies.
    pub async fn start_kerberos(acceptor: Acceptor) -> std::io::Result<Self> {
        Self::start_with(Some(acceptor)).await
    }

    async fn start_with(acceptor: Option<Acceptor>) -> std::io::Result<Self> {
        let inner = Arc::new(Mutex::new(Inner {
            users: BTreeMap::new(),
            max_page_size: 2,
            base_url: String::new(),
            logins: Vec::new(),
            refused_logins: Vec::new(),
        }));
        let script = SharedScript::default();
        let app = App {
            inner: inner.clone(),
            acceptor,
        };
        let router = Router::new()
            .route("/v1/users/{name}/groups/", get(groups))
            .layer(axum::middleware::from_fn_with_state(app.clone(), negotiate))
            .with_state(app);
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

    /// Who each call that passed the login check came from.
    pub fn logins(&self) -> Vec<String> {
        lock(&self.inner).logins.clone()
    }

    /// Why each refused login was refused.
    pub fn refused_logins(&self) -> Vec<String> {
        lock(&self.inner).refused_logins.clone()
    }
}

/// The login check in front of every route, as `mod_auth_gssapi` does it.
async fn negotiate(
    State(app): State<App>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(acceptor) = &app.acceptor else {
        return next.run(request).await;
    };
    let Some(token) = negotiate_token(request.headers()) else {
        return unauthorized();
    };
    match acceptor.accept(token).await {
        Ok(accepted) => {
            lock(&app.inner).logins.push(accepted.principal);
            let mut response = next.run(request).await;
            if let Some(answer) = accepted.token
                && let Ok(value) = axum::http::HeaderValue::from_str(&format!("Negotiate {answer}"))
            {
                response
                    .headers_mut()
                    .insert(axum::http::header::WWW_AUTHENTICATE, value);
            }
            response
        }
        Err(reason) => {
            lock(&app.inner).refused_logins.push(reason);
            unauthorized()
        }
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (axum::http::header::WWW_AUTHENTICATE, "Negotiate"),
            (
                axum::http::header::CONTENT_TYPE,
                "text/html; charset=iso-8859-1",
            ),
        ],
        "<html><head><title>401 Unauthorized</title></head><body><h1>Unauthorized</h1></body></html>\n",
    )
        .into_response()
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
