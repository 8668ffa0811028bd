//! A stand-in for tiny.distro.builders' ELN package lists: `GET <path>`
//! answers the text set for that path as `text/plain`, as the real lists
//! are served, and 404 for a path it has no list for. Tests can make a path
//! answer an HTML page with 200 (what a proxy's or a portal's error page
//! looks like), and fail the next calls like every stand-in.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::http::standin::{Fault, Server, SharedScript, lock};

/// One call the stand-in received.
pub use crate::http::standin::Call;

/// The path of the ELN list on tiny.distro.builders.
pub const ELN_PATH: &str = "/view-all-source-package-name-list--view-eln.txt";
/// The path of the ELN extras list on tiny.distro.builders.
pub const ELN_EXTRAS_PATH: &str = "/view-all-source-package-name-list--view-eln-extras.txt";

#[derive(Debug, Clone)]
enum Page {
    List(String),
    Html(String),
}

#[derive(Clone)]
struct App {
    pages: Arc<Mutex<BTreeMap<String, Page>>>,
}

/// A running package list stand-in; stops when dropped.
#[derive(Debug)]
pub struct PackageListStandin {
    server: Server,
    pages: Arc<Mutex<BTreeMap<String, Page>>>,
    script: SharedScript,
}

impl PackageListStandin {
    pub async fn start() -> std::io::Result<Self> {
        let pages = Arc::new(Mutex::new(BTreeMap::new()));
        let script = SharedScript::default();
        let router = Router::new().fallback(serve).with_state(App {
            pages: pages.clone(),
        });
        let server = Server::start(router, script.clone()).await?;
        Ok(PackageListStandin {
            server,
            pages,
            script,
        })
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.server.url()
    }

    /// The URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// The URLs of the ELN and ELN extras lists, in that order.
    pub fn eln_urls(&self) -> Vec<String> {
        vec![self.url(ELN_PATH), self.url(ELN_EXTRAS_PATH)]
    }

    /// `path` answers `names`, one a line, as the real lists do.
    pub fn set_list(&self, path: &str, names: &[&str]) {
        let mut text = names.join("\n");
        text.push('\n');
        self.set_text(path, &text);
    }

    /// `path` answers `text` as `text/plain`, whatever it holds.
    pub fn set_text(&self, path: &str, text: &str) {
        lock(&self.pages).insert(path.to_owned(), Page::List(text.to_owned()));
    }

    /// `path` answers an HTML page with 200.
    pub fn set_html(&self, path: &str) {
        lock(&self.pages).insert(
            path.to_owned(),
            Page::Html(
                "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please sign in.</body></html>\n"
                    .to_owned(),
            ),
        );
    }

    /// `path` answers 404 from now on.
    pub fn remove(&self, path: &str) {
        lock(&self.pages).remove(path);
    }

    /// The next `n` calls get `status` instead of an answer.
    pub fn fail_next(&self, n: usize, status: u16) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        lock(&self.script).push(n, Fault::Status(status));
    }

    /// Every call received.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.script).calls()
    }
}

async fn serve(State(app): State<App>, uri: Uri) -> Response {
    let page = lock(&app.pages).get(uri.path()).cloned();
    match page {
        Some(Page::List(text)) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
        Some(Page::Html(text)) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], text).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<html><body><h1>404 Not Found</h1></body></html>\n",
        )
            .into_response(),
    }
}
