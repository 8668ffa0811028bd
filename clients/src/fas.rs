//! FASJSON (`/v1/users/<name>/groups/`, SPEC §3): group membership for the
//! packager check. The service caches answers itself (`facts`).
//!
//! [`FasClient`] is the real implementation. Facts it relies on (FASJSON's
//! `fasjson/web/resources/users.py` and `fasjson/web/utils/pagination.py`):
//! - `GET /v1/users/<name>/groups/` answers `{"result": [{"groupname": ..,
//!   "uri": ..}, ..]}`, and 404 (`{"message": "User does not exist", ..}`)
//!   for a user it does not know;
//! - paging is asked for with `page_size` and `page_number` (from 1), and
//!   described in `"page": {"page_number", "page_size", "total_pages",
//!   "total_results", "next_page"}`; without `page_size` nothing is paged;
//! - Fedora's production FASJSON takes only Kerberos (SPNEGO,
//!   `Authorization: Negotiate`), which the Python client does with
//!   `requests_gssapi`.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use url::Url;

use crate::ClientError;
use crate::http::{self, BodyError, Timeouts};
use crate::process::{self, Limit, Overflow, RunError};

#[async_trait]
pub trait Fas: Send + Sync {
    /// Whether `user` is a member of `group`. A user FASJSON does not know is
    /// a member of nothing.
    async fn is_member(&self, user: &str, group: &str) -> Result<bool, ClientError>;
}

/// The service name in errors.
pub const SERVICE: &str = "fasjson";

/// Groups asked for per page.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// A bound on the pages followed for one user, so that a server that keeps
/// saying "there is more" cannot hold a job forever.
const MAX_PAGES: u32 = 1000;

/// What is kept of `kinit`'s output and of `curl`'s error messages.
const MAX_MESSAGE_OUTPUT: Limit = Limit {
    bytes: 16 * 1024,
    overflow: Overflow::Truncate,
};

/// Room after the body in `curl`'s output for the status trailer.
const TRAILER_BYTES: usize = 16 * 1024;

/// How the client authenticates to FASJSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FasAuth {
    /// Anonymous calls through `reqwest`: for a FASJSON that does not ask for
    /// authentication (local runs, stand-ins, a proxy that authenticates).
    None,
    /// Kerberos (SPNEGO), as Fedora's production FASJSON requires.
    Kerberos(Kerberos),
}

/// The service's own Kerberos identity.
///
/// `reqwest` cannot speak SPNEGO and no well-kept pure-Rust GSSAPI client
/// exists, so calls go through the system's tools, as a Fedora
/// infrastructure host would make them: `kinit -k -t <keytab> <principal>`
/// fills a credential cache private to this client, then
/// `curl --negotiate -u :` makes each call with it (the container needs
/// `krb5-workstation` and a `curl` built with GSS-API, as Fedora's is). The
/// ticket is renewed every `renew_after`, and once more when FASJSON answers
/// 401. The keytab's content never passes through this process. Both
/// programs get only the environment they need
/// ([`crate::process::INHERITED_ENV`]) and a deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kerberos {
    pub principal: String,
    pub keytab: PathBuf,
    /// The credential cache (`KRB5CCNAME=FILE:<path>`). `None` (the
    /// default): `ccache` in a private directory (mode 0700, with a random
    /// name) that the client creates and removes when it is dropped, so that
    /// nobody else on the host can pre-create the cache or make it a symlink.
    pub ccache: Option<PathBuf>,
    /// Get a fresh ticket when the last one is older than this.
    pub renew_after: Duration,
    /// How long `kinit` may take (a KDC that does not answer); it is killed
    /// after that.
    pub kinit_timeout: Duration,
    /// The programs to run; `kinit` and `curl` from `PATH` by default.
    pub kinit_program: PathBuf,
    pub curl_program: PathBuf,
}

impl Kerberos {
    pub fn new(principal: impl Into<String>, keytab: impl Into<PathBuf>) -> Kerberos {
        Kerberos {
            principal: principal.into(),
            keytab: keytab.into(),
            ccache: None,
            renew_after: Duration::from_secs(3600),
            kinit_timeout: Duration::from_secs(60),
            kinit_program: PathBuf::from("kinit"),
            curl_program: PathBuf::from("curl"),
        }
    }
}

/// FASJSON over HTTP.
#[derive(Debug)]
pub struct FasClient {
    url: Url,
    auth: FasAuth,
    timeouts: Timeouts,
    http: reqwest::Client,
    page_size: u32,
    /// When the Kerberos ticket was last obtained.
    ticket: Mutex<Option<Instant>>,
    /// `KRB5CCNAME` for `kinit` and `curl`: `FILE:<path>`.
    ccache: OsString,
    /// The private directory of the credential cache, removed with the
    /// client; `None` with no Kerberos, or a cache path of the caller's.
    _ccache_dir: Option<tempfile::TempDir>,
}

/// An answer, whichever way it came.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    /// Where a redirect points, absolute.
    location: Option<String>,
    body: Vec<u8>,
}

#[derive(Deserialize)]
struct GroupsPage {
    #[serde(default)]
    result: Vec<Group>,
    page: Option<PageInfo>,
}

#[derive(Deserialize)]
struct Group {
    groupname: String,
}

#[derive(Deserialize)]
struct PageInfo {
    page_number: u32,
    total_pages: u32,
}

impl FasClient {
    /// `url` is FASJSON's base (`[fas] url`), e.g.
    /// `https://fasjson.fedoraproject.org`; calls go to `<url>/v1/...`.
    pub fn new(url: &str, auth: FasAuth, timeouts: Timeouts) -> Result<Self, ClientError> {
        let (ccache_path, ccache_dir) = match &auth {
            FasAuth::Kerberos(Kerberos {
                ccache: Some(path), ..
            }) => (Some(path.clone()), None),
            FasAuth::Kerberos(Kerberos { ccache: None, .. }) => {
                let dir = process::private_temp_dir().map_err(|err| ClientError::Permanent {
                    service: SERVICE,
                    message: format!(
                        "cannot create a private directory for the Kerberos credential cache: {err}"
                    ),
                })?;
                (Some(dir.path().join("ccache")), Some(dir))
            }
            FasAuth::None => (None, None),
        };
        let mut ccache = OsString::new();
        if let Some(path) = ccache_path {
            ccache.push("FILE:");
            ccache.push(path);
        }
        Ok(FasClient {
            url: http::parse_base_url(SERVICE, "fas.url", url)?,
            auth,
            timeouts,
            http: http::build_client(SERVICE, timeouts)?,
            page_size: DEFAULT_PAGE_SIZE,
            ticket: Mutex::new(None),
            ccache,
            _ccache_dir: ccache_dir,
        })
    }

    /// Groups asked for per page (at least 1).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    fn groups_url(&self, user: &str, page: u32) -> Result<Url, ClientError> {
        let mut url = http::join_dir(SERVICE, &self.url, &["v1", "users", user, "groups"])?;
        url.query_pairs_mut()
            .append_pair("page_size", &self.page_size.to_string())
            .append_pair("page_number", &page.to_string());
        Ok(url)
    }

    async fn get(&self, url: &Url, context: &str) -> Result<Answer, ClientError> {
        match &self.auth {
            FasAuth::None => {
                let mut response = http::send(SERVICE, self.http.get(url.clone())).await?;
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let location = http::location(&response);
                let body = if status.is_success() {
                    match http::body_up_to(&mut response, http::MAX_JSON_BYTES).await {
                        Ok(body) => body,
                        Err(BodyError::TooLarge) => {
                            return Err(http::too_large(SERVICE, context, http::MAX_JSON_BYTES));
                        }
                        Err(BodyError::Transport(err)) => {
                            return Err(http::from_reqwest(SERVICE, &err));
                        }
                    }
                } else {
                    http::body_excerpt(&mut response, http::MAX_ERROR_BODY_BYTES).await
                };
                Ok(Answer {
                    status: status.as_u16(),
                    retry_after,
                    location,
                    body,
                })
            }
            FasAuth::Kerberos(kerberos) => {
                self.ensure_ticket(kerberos, false).await?;
                let answer = curl_get(kerberos, &self.ccache, self.timeouts, url).await?;
                if answer.status != 401 {
                    return Ok(answer);
                }
                // The ticket may have expired early, or the cache been wiped.
                self.ensure_ticket(kerberos, true).await?;
                curl_get(kerberos, &self.ccache, self.timeouts, url).await
            }
        }
    }

    async fn ensure_ticket(&self, kerberos: &Kerberos, force: bool) -> Result<(), ClientError> {
        let fresh = http_lock(&self.ticket).is_some_and(|at| at.elapsed() < kerberos.renew_after);
        if fresh && !force {
            return Ok(());
        }
        kinit(kerberos, &self.ccache).await?;
        *http_lock(&self.ticket) = Some(Instant::now());
        Ok(())
    }
}

#[async_trait]
impl Fas for FasClient {
    /// Follows the pages of the user's groups until `group` shows up or the
    /// pages end.
    async fn is_member(&self, user: &str, group: &str) -> Result<bool, ClientError> {
        let mut page = 1;
        loop {
            let url = self.groups_url(user, page)?;
            let context = http::describe_call(&reqwest::Method::GET, &url);
            let answer = self.get(&url, &context).await?;
            match answer.status {
                200..=299 => {}
                404 => return Ok(false),
                status @ 300..=399 => {
                    return Err(http::redirect_error(
                        SERVICE,
                        &context,
                        status,
                        answer.location.as_deref(),
                    ));
                }
                status => {
                    return Err(http::error_for_status(
                        SERVICE,
                        &context,
                        status,
                        answer.retry_after.as_deref(),
                        &String::from_utf8_lossy(&answer.body),
                    ));
                }
            }
            let groups: GroupsPage =
                serde_json::from_slice(&answer.body).map_err(|err| ClientError::Permanent {
                    service: SERVICE,
                    message: format!("{context}: unexpected response: {err}"),
                })?;
            if groups.result.iter().any(|g| g.groupname == group) {
                return Ok(true);
            }
            match groups.page {
                Some(info) if info.page_number < info.total_pages && page < MAX_PAGES => {
                    page = info.page_number.max(page) + 1;
                }
                _ => return Ok(false),
            }
        }
    }
}

fn http_lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `kinit -k -t <keytab> <principal>` into the client's own cache, within
/// `kinit_timeout`.
async fn kinit(kerberos: &Kerberos, ccache: &OsStr) -> Result<(), ClientError> {
    let mut command = process::command(kerberos.kinit_program.as_os_str(), None, ccache);
    command
        .arg("-k")
        .arg("-t")
        .arg(&kerberos.keytab)
        .arg(&kerberos.principal);
    let output = match process::run(
        command,
        kerberos.kinit_timeout,
        MAX_MESSAGE_OUTPUT,
        MAX_MESSAGE_OUTPUT,
    )
    .await
    {
        Ok(output) => output,
        Err(RunError::TimedOut) => {
            // A KDC that does not answer now may answer later.
            return Err(ClientError::Transient {
                service: SERVICE,
                message: format!(
                    "kinit for {} did not finish within {:?} and was killed (is the KDC reachable?)",
                    kerberos.principal, kerberos.kinit_timeout
                ),
                retry_after: None,
            });
        }
        Err(RunError::Spawn(err) | RunError::Io(err)) => {
            return Err(ClientError::Auth {
                service: SERVICE,
                message: format!("cannot run {}: {err}", kerberos.kinit_program.display()),
            });
        }
        Err(RunError::TooMuchOutput) => {
            return Err(ClientError::Auth {
                service: SERVICE,
                message: format!("{} printed too much", kerberos.kinit_program.display()),
            });
        }
    };
    if output.status.success() {
        tracing::debug!(principal = %kerberos.principal, "FASJSON: Kerberos ticket obtained");
        return Ok(());
    }
    Err(ClientError::Auth {
        service: SERVICE,
        message: format!(
            "kinit for {} with {} failed ({}): {}",
            kerberos.principal,
            kerberos.keytab.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    })
}

/// What curl prints after the body: a marker line, then the status, the
/// absolute URL of a redirect (empty without one) and the `Retry-After`
/// header, one a line (none of them can hold a newline).
const STATUS_MARKER: &str = "\n--fedora-ci-worker-status-- ";

/// curl's exit code for an answer larger than `--max-filesize`.
const CURL_FILESIZE_EXCEEDED: i32 = 63;

/// One GET through `curl --negotiate` with the client's credential cache.
///
/// `--disable` (first, or curl ignores it) keeps a `~/.curlrc` from adding
/// options such as `--location`: curl follows no redirect, as the HTTP
/// clients do not. The answer is capped twice: `--max-filesize` stops curl
/// when FASJSON announces a larger body, and no more than that (and the
/// status trailer) of curl's output is read in any case.
async fn curl_get(
    kerberos: &Kerberos,
    ccache: &OsStr,
    timeouts: Timeouts,
    url: &Url,
) -> Result<Answer, ClientError> {
    let context = http::describe_call(&reqwest::Method::GET, url);
    let mut command = process::command(kerberos.curl_program.as_os_str(), None, ccache);
    command
        .args([
            "--disable",
            "--silent",
            "--show-error",
            "--negotiate",
            "--user",
            ":",
        ])
        .arg("--connect-timeout")
        .arg(timeouts.connect.as_secs_f64().to_string())
        .arg("--max-time")
        .arg(timeouts.total.as_secs_f64().to_string())
        .arg("--max-filesize")
        .arg(http::MAX_JSON_BYTES.to_string())
        .args(["--header", "Accept: application/json"])
        .arg("--write-out")
        .arg(format!(
            "{STATUS_MARKER}%{{http_code}}\n%{{redirect_url}}\n%header{{retry-after}}"
        ))
        .arg("--url")
        .arg(url.as_str());
    let stdout = Limit {
        bytes: http::MAX_JSON_BYTES + TRAILER_BYTES,
        overflow: Overflow::Refuse,
    };
    // curl's own `--max-time` should end it first; this deadline is for a
    // curl stuck where its timer cannot fire (a blocking name look-up), with
    // the connect timeout as grace.
    let deadline = timeouts.total + timeouts.connect;
    let output = match process::run(command, deadline, stdout, MAX_MESSAGE_OUTPUT).await {
        Ok(output) => output,
        Err(RunError::TooMuchOutput) => {
            return Err(http::too_large(SERVICE, &context, http::MAX_JSON_BYTES));
        }
        Err(RunError::TimedOut) => {
            return Err(ClientError::Transient {
                service: SERVICE,
                message: format!(
                    "{context}: curl did not finish within {deadline:?} and was killed"
                ),
                retry_after: None,
            });
        }
        Err(RunError::Spawn(err) | RunError::Io(err)) => {
            return Err(ClientError::Permanent {
                service: SERVICE,
                message: format!("cannot run {}: {err}", kerberos.curl_program.display()),
            });
        }
    };
    if output.status.code() == Some(CURL_FILESIZE_EXCEEDED) {
        return Err(http::too_large(SERVICE, &context, http::MAX_JSON_BYTES));
    }
    if !output.status.success() {
        // curl's own failures: resolving, connecting, TLS, timeouts (28).
        return Err(ClientError::Transient {
            service: SERVICE,
            message: format!(
                "{context}: curl failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            retry_after: None,
        });
    }
    let answer = parse_curl_output(&context, output.stdout)?;
    // A curl before 8.4 does not apply --max-filesize to a body of unknown
    // length; the output limit leaves room for the trailer.
    if answer.body.len() > http::MAX_JSON_BYTES {
        return Err(http::too_large(SERVICE, &context, http::MAX_JSON_BYTES));
    }
    Ok(answer)
}

fn parse_curl_output(context: &str, mut stdout: Vec<u8>) -> Result<Answer, ClientError> {
    let marker = STATUS_MARKER.as_bytes();
    let Some(at) = stdout
        .windows(marker.len())
        .rposition(|window| window == marker)
    else {
        return Err(ClientError::Transient {
            service: SERVICE,
            message: format!("{context}: curl printed no status"),
            retry_after: None,
        });
    };
    let trailer =
        String::from_utf8_lossy(stdout.get(at + marker.len()..).unwrap_or_default()).into_owned();
    stdout.truncate(at);
    let mut lines = trailer.splitn(3, '\n').map(str::trim);
    let status: u16 = lines.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut field = || lines.next().filter(|v| !v.is_empty()).map(str::to_owned);
    let location = field();
    // A curl too old for `%header{..}` prints it as it is.
    let retry_after = field().filter(|v| !v.contains('%'));
    if status == 0 {
        return Err(ClientError::Transient {
            service: SERVICE,
            message: format!("{context}: no HTTP response"),
            retry_after: None,
        });
    }
    Ok(Answer {
        status,
        retry_after,
        location,
        body: stdout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_output_is_split_into_body_and_status() {
        let out = format!("{{\"result\": []}}{STATUS_MARKER}429\n\n120").into_bytes();
        let answer = parse_curl_output("GET x", out).expect("an answer");
        assert_eq!(answer.status, 429);
        assert_eq!(answer.retry_after.as_deref(), Some("120"));
        assert_eq!(answer.location, None);
        assert_eq!(answer.body, b"{\"result\": []}");

        let out = format!("{STATUS_MARKER}503\n\nWed, 21 Oct 2015 07:28:00 GMT").into_bytes();
        let answer = parse_curl_output("GET x", out).expect("an answer");
        assert_eq!(
            answer.retry_after.as_deref(),
            Some("Wed, 21 Oct 2015 07:28:00 GMT")
        );

        let out = format!("{STATUS_MARKER}200\n\n").into_bytes();
        let answer = parse_curl_output("GET x", out).expect("an answer");
        assert_eq!((answer.status, answer.retry_after), (200, None));

        let out = format!("{STATUS_MARKER}307\nhttps://elsewhere.example/x\n").into_bytes();
        let answer = parse_curl_output("GET x", out).expect("an answer");
        assert_eq!(answer.status, 307);
        assert_eq!(
            answer.location.as_deref(),
            Some("https://elsewhere.example/x")
        );

        let out = format!("{STATUS_MARKER}000\n\n").into_bytes();
        assert!(
            parse_curl_output("GET x", out)
                .expect_err("no answer")
                .is_transient()
        );
        assert!(parse_curl_output("GET x", b"garbage".to_vec()).is_err());
    }

    #[test]
    fn pages_are_asked_for_by_number_and_size() {
        let client = FasClient::new(
            "https://fasjson.fedoraproject.org",
            FasAuth::None,
            Timeouts::default(),
        )
        .expect("a client")
        .with_page_size(40);
        assert_eq!(
            client.groups_url("zbyszek", 3).expect("a URL").as_str(),
            "https://fasjson.fedoraproject.org/v1/users/zbyszek/groups/?page_size=40&page_number=3"
        );
        for user in ["..", ".", ""] {
            assert!(client.groups_url(user, 1).is_err(), "{user:?}");
        }
    }
}
