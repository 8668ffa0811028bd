//! What the HTTP clients share: one way to build a `reqwest` client with
//! timeouts, and one way to turn what came back (a response or a transport
//! error) into [`ClientError`].
//!
//! Classification, the same for every service:
//! - connection failures, timeouts, 408, 429 and 5xx are [`ClientError::Transient`],
//!   with `retry_after` from the `Retry-After` header (seconds or an HTTP date,
//!   capped at [`MAX_RETRY_AFTER`]);
//! - 401 and 403 are [`ClientError::Auth`];
//! - any other status that is not a success is [`ClientError::Permanent`],
//!   carrying the service's own explanation (Pagure's `error` and `errors`,
//!   Testing Farm's `message` or FastAPI's `detail`, FASJSON's `message`).
//!
//! - a redirect (3xx) is [`ClientError::Permanent`], naming the status and
//!   the host it points to: no client follows redirects (a 307 or 308 would
//!   send the request body, a Testing Farm submission with its webhook token,
//!   wherever the `Location` says).
//!
//! Bodies are read chunk by chunk up to a limit ([`MAX_JSON_BYTES`] for an
//! answer, [`MAX_ERROR_BODY_BYTES`] of an error's explanation), never whole.
//!
//! Messages name the method, the URL and the status, never a header: tokens
//! travel only in headers, so they cannot leak into errors. [`redact`] is
//! the second line of defence for a service that echoes a secret back.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode, redirect};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use url::Url;

use crate::ClientError;

/// The longest wait a service may ask for with `Retry-After`; longer answers
/// are cut to this, so a bogus header cannot park a job for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How much of an unexplained error body goes into a message.
const BODY_EXCERPT: usize = 200;

/// The largest answer a client reads (JSON from Testing Farm, dist-git and
/// FASJSON); a larger one is refused rather than buffered. Real answers (a
/// Testing Farm request with its results, a pull request with its comments,
/// a page of groups) are a few kilobytes to a few hundred.
pub const MAX_JSON_BYTES: usize = 4 * 1024 * 1024;

/// How much of an error response's body is read for the service's
/// explanation; the rest is not downloaded.
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Timeouts for every call a client makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the connection (TCP and TLS).
    pub connect: Duration,
    /// The whole call, from sending the request to the end of the body.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            total: Duration::from_secs(30),
        }
    }
}

/// A `reqwest` client with `timeouts` on every call and our user agent,
/// which follows no redirect: the answer comes back as it is and [`check`]
/// turns it into an error.
pub fn build_client(service: &'static str, timeouts: Timeouts) -> Result<Client, ClientError> {
    Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.total)
        .redirect(redirect::Policy::none())
        .user_agent(concat!("fedora-ci-worker/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| ClientError::Permanent {
            service,
            message: format!("cannot build the HTTP client: {}", error_chain(&err)),
        })
}

/// Parses a configured base URL (`api_url`, `url`, ...), naming the key in
/// the error.
pub fn parse_base_url(service: &'static str, what: &str, url: &str) -> Result<Url, ClientError> {
    let parsed = Url::parse(url.trim()).map_err(|err| ClientError::Permanent {
        service,
        message: format!("{what} {url:?} is not a URL: {err}"),
    })?;
    if parsed.cannot_be_a_base() || !matches!(parsed.scheme(), "http" | "https") {
        return Err(ClientError::Permanent {
            service,
            message: format!("{what} {url:?} is not an http(s) URL"),
        });
    }
    Ok(parsed)
}

/// `base` with `segments` appended as path segments, each percent-encoded
/// (so an id or a file name cannot escape its place in the path).
///
/// A segment that is empty, `.` or `..`, or that holds a control character,
/// is refused (a permanent error): the `url` crate would silently drop the
/// first three, and remove tabs and newlines, which turns `.\t.` into `..`;
/// either way the call would go to another path than the one named. Names
/// from messages are checked before they get here; this is the second line
/// of defence.
pub fn join(service: &'static str, base: &Url, segments: &[&str]) -> Result<Url, ClientError> {
    if let Some(bad) = segments
        .iter()
        .find(|s| matches!(**s, "" | "." | "..") || s.chars().any(char::is_control))
    {
        return Err(ClientError::Permanent {
            service,
            message: format!(
                "refusing to build a URL under {} with the path segment {bad:?}",
                describe(base)
            ),
        });
    }
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    Ok(url)
}

/// [`join`], with a trailing slash (FASJSON's paths end in one).
pub fn join_dir(service: &'static str, base: &Url, segments: &[&str]) -> Result<Url, ClientError> {
    let mut url = join(service, base, segments)?;
    if let Ok(mut path) = url.path_segments_mut() {
        path.push("");
    }
    Ok(url)
}

/// An `Authorization` header value `<scheme> <token>`, marked sensitive so
/// that it is never printed by `Debug` or HTTP-level logging.
pub fn authorization(scheme: &str, token: &SecretString) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("{scheme} {}", token.expose_secret())).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Sends a request; only transport errors are turned into errors here, any
/// status comes back as a response (see [`check`]).
pub async fn send(service: &'static str, request: RequestBuilder) -> Result<Response, ClientError> {
    let (client, request) = request.build_split();
    let request = request.map_err(|err| from_reqwest(service, &err))?;
    let method = request.method().clone();
    let mut response = client
        .execute(request)
        .await
        .map_err(|err| from_reqwest(service, &err))?;
    // Kept for the error messages, which name the call.
    response.extensions_mut().insert(method);
    Ok(response)
}

/// One call, start to end: sends `request` and turns anything but a success
/// status into the matching [`ClientError`].
pub async fn call(service: &'static str, request: RequestBuilder) -> Result<Response, ClientError> {
    let response = send(service, request).await?;
    check(service, response).await
}

/// A success response as is; any other status as the matching
/// [`ClientError`] (reads the body for the service's explanation).
pub async fn check(service: &'static str, response: Response) -> Result<Response, ClientError> {
    if response.status().is_success() {
        return Ok(response);
    }
    Err(error_from_response(service, response).await)
}

/// The error for a response whose status is not what the caller wanted.
pub async fn error_from_response(service: &'static str, mut response: Response) -> ClientError {
    let status = response.status();
    let context = describe_response(&response);
    if status.is_redirection() {
        let location = location(&response);
        return redirect_error(service, &context, status.as_u16(), location.as_deref());
    }
    let retry_after = retry_after_header(response.headers());
    // A body that cannot be read only costs us the explanation.
    let body = body_excerpt(&mut response, MAX_ERROR_BODY_BYTES).await;
    error_for_status(
        service,
        &context,
        status.as_u16(),
        retry_after.as_deref(),
        &String::from_utf8_lossy(&body),
    )
}

/// The body of a success response as JSON of type `T`, at most
/// [`MAX_JSON_BYTES`]. A body that is not what the API documents, or is
/// larger, is a permanent error: asking again would get the same answer, and
/// for a submission it may already have been acted upon.
pub async fn json<T: DeserializeOwned>(
    service: &'static str,
    response: Response,
) -> Result<T, ClientError> {
    let context = describe_response(&response);
    let bytes = read_limited(service, &context, response, MAX_JSON_BYTES).await?;
    serde_json::from_slice(&bytes).map_err(|err| ClientError::Permanent {
        service,
        message: format!("{context}: unexpected response: {err}"),
    })
}

/// Why a body was not read to its end.
#[derive(Debug)]
pub enum BodyError {
    /// It is larger than the limit (said so by `Content-Length`, or found
    /// while reading).
    TooLarge,
    /// The connection failed or timed out while reading.
    Transport(reqwest::Error),
}

/// The whole body, read chunk by chunk, or [`BodyError::TooLarge`] as soon
/// as it is known to be larger than `limit` bytes: the rest is never read.
pub async fn body_up_to(response: &mut Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The first `limit` bytes of the body at most, for an error's explanation;
/// a body that cannot be read gives what came so far.
pub async fn body_excerpt(response: &mut Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        let Ok(Some(chunk)) = response.chunk().await else {
            break;
        };
        let room = limit - body.len();
        body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
    }
    body
}

/// [`body_up_to`] with its failures as [`ClientError`]s.
pub async fn read_limited(
    service: &'static str,
    context: &str,
    mut response: Response,
    limit: usize,
) -> Result<Vec<u8>, ClientError> {
    body_up_to(&mut response, limit)
        .await
        .map_err(|err| match err {
            BodyError::TooLarge => too_large(service, context, limit),
            BodyError::Transport(err) => from_reqwest(service, &err),
        })
}

/// The error for an answer larger than `limit` bytes. Permanent: the same
/// request gets the same answer, and reading it again would only cost the
/// download again.
pub fn too_large(service: &'static str, context: &str, limit: usize) -> ClientError {
    ClientError::Permanent {
        service,
        message: format!(
            "{context}: the answer is larger than the limit of {}",
            describe_size(limit)
        ),
    }
}

/// `4 MiB (4194304 bytes)`, for messages.
pub fn describe_size(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB ({bytes} bytes)", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB ({bytes} bytes)", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// The error for a redirect (any 3xx). Redirects are not followed: a 307 or
/// 308 would send the request body again, to wherever `location` points,
/// and no API we call redirects, so one means a wrong URL in the
/// configuration, or something in between that should not be trusted.
/// Permanent: asking again gets the same answer.
///
/// `location` is the `Location` header, made absolute against the request's
/// URL by the caller where it can; only its host is named.
pub fn redirect_error(
    service: &'static str,
    context: &str,
    status: u16,
    location: Option<&str>,
) -> ClientError {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let status = format!("{status} {reason}");
    let target = match location.map(str::trim).filter(|l| !l.is_empty()) {
        None => "without a Location".to_owned(),
        Some(location) => match Url::parse(location).ok().and_then(|url| host_of(&url)) {
            Some(host) => format!("to {host}"),
            None => format!("to {:?}", excerpt(location)),
        },
    };
    ClientError::Permanent {
        service,
        message: format!(
            "{context}: {}: redirected {target}, and redirects are not followed (is the configured URL the API's own?)",
            status.trim_end()
        ),
    }
}

/// `host` or `host:port` of a URL.
fn host_of(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// A response's `Location` header, absolute (resolved against the URL the
/// request went to).
pub fn location(response: &Response) -> Option<String> {
    let value = response.headers().get(LOCATION)?.to_str().ok()?;
    Some(
        response
            .url()
            .join(value)
            .map_or_else(|_| value.to_owned(), String::from),
    )
}

/// The error for a transport failure: connection refused or reset, DNS,
/// TLS, timeouts, a body cut short. Everything but a request we could not
/// even build is worth trying again.
pub fn from_reqwest(service: &'static str, err: &reqwest::Error) -> ClientError {
    let message = error_chain(err);
    if err.is_builder() || err.is_redirect() {
        return ClientError::Permanent { service, message };
    }
    let message = if err.is_timeout() {
        format!("timed out: {message}")
    } else {
        message
    };
    ClientError::Transient {
        service,
        message,
        retry_after: None,
    }
}

/// The error for an HTTP status that is not a success, shared by every
/// transport (reqwest, and `curl` for FASJSON with Kerberos).
///
/// `context` says which call it was (`GET https://...`), `retry_after` is the
/// raw `Retry-After` header, `body` the response body.
pub fn error_for_status(
    service: &'static str,
    context: &str,
    status: u16,
    retry_after: Option<&str>,
    body: &str,
) -> ClientError {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut message = format!("{context}: {status} {reason}")
        .trim_end()
        .to_owned();
    if let Some(explanation) = explanation(body) {
        message.push_str(": ");
        message.push_str(&explanation);
    }
    match status {
        401 | 403 => ClientError::Auth { service, message },
        408 | 429 | 500..=599 => ClientError::Transient {
            service,
            message,
            retry_after: retry_after.and_then(|value| parse_retry_after(value, SystemTime::now())),
        },
        _ => ClientError::Permanent { service, message },
    }
}

/// A `Retry-After` value as a delay from `now`: delta-seconds or an HTTP
/// date (RFC 9110 §10.2.3), at most [`MAX_RETRY_AFTER`]. A date in the past
/// means "now" (zero); anything unreadable is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// Replaces every occurrence of `secret` in the error's message: for the
/// case a service quotes our request back to us.
pub fn redact(err: ClientError, secret: Option<&SecretString>) -> ClientError {
    let Some(secret) = secret.map(|s| s.expose_secret()).filter(|s| !s.is_empty()) else {
        return err;
    };
    let clean = |message: String| message.replace(secret, "<redacted>");
    match err {
        ClientError::Transient {
            service,
            message,
            retry_after,
        } => ClientError::Transient {
            service,
            message: clean(message),
            retry_after,
        },
        ClientError::Permanent { service, message } => ClientError::Permanent {
            service,
            message: clean(message),
        },
        ClientError::Auth { service, message } => ClientError::Auth {
            service,
            message: clean(message),
        },
    }
}

/// `METHOD url` for messages; the URL without user info (we never put
/// credentials in URLs, but a configured URL might carry some).
pub fn describe_call(method: &Method, url: &Url) -> String {
    format!("{method} {}", describe(url))
}

fn describe_response(response: &Response) -> String {
    match response.extensions().get::<Method>() {
        Some(method) => describe_call(method, response.url()),
        None => describe(response.url()),
    }
}

fn describe(url: &Url) -> String {
    let mut url = url.clone();
    // Only fails for URLs that cannot have credentials anyway.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

fn retry_after_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// What the service said went wrong, from the body of an error response.
fn explanation(body: &str) -> Option<String> {
    let body = body.trim();
    if body.is_empty() {
        return None;
    }
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return Some(excerpt(body));
    };
    let mut parts = Vec::new();
    for key in ["error", "message", "detail"] {
        match json.get(key) {
            Some(serde_json::Value::String(text)) if !text.is_empty() => parts.push(text.clone()),
            // FastAPI validation errors: [{"loc": [...], "msg": "...", ...}].
            Some(serde_json::Value::Array(items)) => {
                let messages: Vec<String> = items
                    .iter()
                    .map(|item| match (item.get("loc"), item.get("msg")) {
                        (Some(loc), Some(serde_json::Value::String(msg))) => {
                            format!("{}: {msg}", compact(loc))
                        }
                        (None, Some(serde_json::Value::String(msg))) => msg.clone(),
                        _ => compact(item),
                    })
                    .collect();
                if !messages.is_empty() {
                    parts.push(messages.join("; "));
                }
            }
            // FASJSON's older `{"error": {"message": ...}}`.
            Some(serde_json::Value::Object(inner)) => {
                if let Some(serde_json::Value::String(text)) = inner.get("message") {
                    parts.push(text.clone());
                }
            }
            _ => {}
        }
    }
    // Pagure's form errors: {"errors": {"url": ["This field is required."]}}.
    if let Some(errors) = json.get("errors").filter(|e| !e.is_null()) {
        parts.push(compact(errors));
    }
    if parts.is_empty() {
        Some(excerpt(body))
    } else {
        Some(parts.join(": "))
    }
}

fn compact(value: &serde_json::Value) -> String {
    excerpt(&value.to_string())
}

fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(BODY_EXCERPT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// An error with its causes: reqwest's own message ("error sending request")
/// says little without them ("connection refused").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// The server side of the same contract, shared by the stand-ins: a server
/// on `127.0.0.1:0` stopped on drop, scripted failures (`5xx`, `429` with
/// `Retry-After`), and a log of the calls received.
#[cfg(feature = "standins")]
pub mod standin {
    use std::collections::VecDeque;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex, MutexGuard};
    use std::time::Instant;

    use axum::Router;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::middleware::Next;
    use axum::response::{IntoResponse, Response};
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    /// One call a stand-in received.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Call {
        pub method: String,
        /// The path, without the query.
        pub path: String,
        pub query: Option<String>,
        /// When it arrived.
        pub at: Instant,
        /// When its answer was ready.
        pub done: Instant,
        /// What the stand-in answered.
        pub status: u16,
    }

    /// A scripted answer that replaces the next call's real one.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Fault {
        Status(StatusCode),
        Throttle { retry_after_seconds: u64 },
    }

    /// The scripted failures and the call log of one stand-in.
    #[derive(Debug, Default)]
    pub(crate) struct Script {
        faults: VecDeque<Fault>,
        calls: Vec<Call>,
        /// How long every answer takes, as from a slow service.
        delay: std::time::Duration,
    }

    impl Script {
        /// Every answer takes `delay` from now on.
        pub(crate) fn set_delay(&mut self, delay: std::time::Duration) {
            self.delay = delay;
        }

        pub(crate) fn push(&mut self, n: usize, fault: Fault) {
            self.faults.extend(std::iter::repeat_n(fault, n));
        }

        pub(crate) fn calls(&self) -> Vec<Call> {
            self.calls.clone()
        }

        /// Drop the scripted faults not used yet: the service is back.
        pub(crate) fn clear_faults(&mut self) {
            self.faults.clear();
        }
    }

    pub(crate) type SharedScript = Arc<Mutex<Script>>;

    /// Locks a stand-in's state; a test that panicked while holding it
    /// leaves the state usable for the others.
    pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A running stand-in; stops when dropped.
    #[derive(Debug)]
    pub(crate) struct Server {
        addr: SocketAddr,
        shutdown: Option<oneshot::Sender<()>>,
        task: JoinHandle<()>,
    }

    impl Server {
        /// Serves `router` on `127.0.0.1:0`, recording every call in
        /// `script` and answering with its next fault first, if any.
        pub(crate) async fn start(router: Router, script: SharedScript) -> std::io::Result<Server> {
            let router = router.layer(axum::middleware::from_fn(move |request, next| {
                let script = script.clone();
                async move { scripted(script, request, next).await }
            }));
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
            let addr = listener.local_addr()?;
            let (shutdown, stop) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(async {
                        let _ = stop.await;
                    })
                    .await;
                if let Err(err) = served {
                    tracing::warn!(error = %err, "stand-in stopped");
                }
            });
            Ok(Server {
                addr,
                shutdown: Some(shutdown),
                task,
            })
        }

        /// `http://127.0.0.1:<port>`, without a trailing slash.
        pub(crate) fn url(&self) -> String {
            format!("http://{}", self.addr)
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            if let Some(shutdown) = self.shutdown.take() {
                let _ = shutdown.send(());
            }
            self.task.abort();
        }
    }

    async fn scripted(script: SharedScript, request: Request, next: Next) -> Response {
        let at = Instant::now();
        let method = request.method().to_string();
        let path = request.uri().path().to_owned();
        let query = request.uri().query().map(str::to_owned);
        let (fault, delay) = {
            let mut script = lock(&script);
            (script.faults.pop_front(), script.delay)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let response = match fault {
            Some(Fault::Status(status)) => (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                format!(r#"{{"message": "stand-in: scripted {}"}}"#, status.as_u16()),
            )
                .into_response(),
            Some(Fault::Throttle {
                retry_after_seconds,
            }) => {
                let mut response =
                    Response::new(Body::from(r#"{"message": "stand-in: too many requests"}"#));
                *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
                response
            }
            None => next.run(request).await,
        };
        lock(&script).calls.push(Call {
            method,
            path,
            query,
            at,
            done: Instant::now(),
            status: response.status().as_u16(),
        });
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        // 2015-10-21T07:28:00Z plus 90 s.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:29:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn statuses_are_classified() {
        let err = |status| error_for_status("svc", "GET http://x/", status, Some("7"), "");
        assert!(matches!(err(401), ClientError::Auth { .. }));
        assert!(matches!(err(403), ClientError::Auth { .. }));
        for status in [400, 404, 409, 422] {
            assert!(
                matches!(err(status), ClientError::Permanent { .. }),
                "{status}"
            );
        }
        for status in [408, 429, 500, 502, 503, 504] {
            let e = err(status);
            assert!(e.is_transient(), "{status}");
            assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        }
    }

    #[test]
    fn the_services_explanation_is_kept() {
        let message = |body| match error_for_status("svc", "POST http://x/", 400, None, body) {
            ClientError::Permanent { message, .. } => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            message(
                r#"{"error": "Invalid or incomplete input submitted", "error_code": "EINVALIDREQ", "errors": {"url": ["This field is required."]}}"#
            ),
            r#"POST http://x/: 400 Bad Request: Invalid or incomplete input submitted: {"url":["This field is required."]}"#
        );
        assert_eq!(
            message(r#"{"message": "Invalid compose"}"#),
            "POST http://x/: 400 Bad Request: Invalid compose"
        );
        assert_eq!(
            message(
                r#"{"detail": [{"loc": ["body", "test"], "msg": "field required", "type": "value_error.missing"}]}"#
            ),
            r#"POST http://x/: 400 Bad Request: ["body","test"]: field required"#
        );
        assert_eq!(
            message(r#"{"detail": "Not Found"}"#),
            "POST http://x/: 400 Bad Request: Not Found"
        );
        assert_eq!(message(""), "POST http://x/: 400 Bad Request");
        let long = "x".repeat(1000);
        assert_eq!(
            message(&long).chars().count(),
            "POST http://x/: 400 Bad Request: ".len() + 201
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let secret = SecretString::from("s3cr3t");
        let err = ClientError::Permanent {
            service: "svc",
            message: "you sent s3cr3t".to_owned(),
        };
        assert_eq!(
            redact(err, Some(&secret)).to_string(),
            "svc: you sent <redacted>"
        );
    }

    #[test]
    fn segments_are_encoded_and_appended() {
        let base = Url::parse("https://api.testing-farm.io/v0.1/").expect("url");
        assert_eq!(
            join("svc", &base, &["requests", "a/b c"])
                .expect("joined")
                .as_str(),
            "https://api.testing-farm.io/v0.1/requests/a%2Fb%20c"
        );
        assert_eq!(
            join("svc", &base, &["requests", "%2e%2e", "a?b#c"])
                .expect("joined")
                .as_str(),
            "https://api.testing-farm.io/v0.1/requests/%252e%252e/a%3Fb%23c"
        );
        let base = Url::parse("https://fasjson.fedoraproject.org").expect("url");
        assert_eq!(
            join_dir("svc", &base, &["v1", "users", "alice", "groups"])
                .expect("joined")
                .as_str(),
            "https://fasjson.fedoraproject.org/v1/users/alice/groups/"
        );
    }

    /// The `url` crate drops `.` and `..`, and strips tabs and newlines (so
    /// `.\t.` becomes `..`, which removes the segment before it): each would
    /// send the call to another path than the one named.
    #[test]
    fn segments_the_url_crate_would_drop_are_refused() {
        let base = Url::parse("https://src.fedoraproject.org/").expect("url");
        for bad in ["", ".", "..", ".\t.", "\n", "a\rb", "x\u{7f}"] {
            let err = join("dist-git", &base, &["api", "0", "rpms", bad, "flag"]).expect_err(bad);
            assert!(matches!(err, ClientError::Permanent { .. }), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!(
                    "dist-git: refusing to build a URL under https://src.fedoraproject.org/ with the path segment {bad:?}"
                )
            );
        }
        assert!(join_dir("fasjson", &base, &["v1", "users", "", "groups"]).is_err());
    }

    #[test]
    fn redirects_name_the_status_and_the_host() {
        let err = redirect_error(
            "testing-farm",
            "POST https://api.testing-farm.io/v0.1/requests",
            307,
            Some("http://127.0.0.1:18491/steal?token=x"),
        );
        assert_eq!(
            err,
            ClientError::Permanent {
                service: "testing-farm",
                message: "POST https://api.testing-farm.io/v0.1/requests: 307 Temporary Redirect: redirected to 127.0.0.1:18491, and redirects are not followed (is the configured URL the API's own?)".to_owned(),
            }
        );
        let message = |location| redirect_error("svc", "GET x", 301, location).to_string();
        assert!(message(Some("https://evil.example/a")).contains("redirected to evil.example,"));
        assert!(message(None).contains("301 Moved Permanently: redirected without a Location"));
        assert!(message(Some("not a url")).contains("redirected to \"not a url\""));
    }

    #[test]
    fn sizes_are_described() {
        assert_eq!(describe_size(MAX_JSON_BYTES), "4 MiB (4194304 bytes)");
        assert_eq!(describe_size(MAX_ERROR_BODY_BYTES), "64 KiB (65536 bytes)");
        assert_eq!(describe_size(1000), "1000 bytes");
    }

    #[test]
    fn credentials_in_urls_are_not_described() {
        let url = Url::parse("https://user:pw@example.org/x").expect("url");
        assert_eq!(
            describe_call(&Method::GET, &url),
            "GET https://example.org/x"
        );
    }
}
