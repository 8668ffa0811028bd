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

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use url::Url;

use crate::ClientError;
use crate::http::{self, Timeouts};

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
/// 401. The keytab's content never passes through this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kerberos {
    pub principal: String,
    pub keytab: PathBuf,
    /// The credential cache (`KRB5CCNAME=FILE:<path>`); by default a file in
    /// the temporary directory named after the process.
    pub ccache: PathBuf,
    /// Get a fresh ticket when the last one is older than this.
    pub renew_after: Duration,
    /// The programs to run; `kinit` and `curl` from `PATH` by default.
    pub kinit_program: PathBuf,
    pub curl_program: PathBuf,
}

impl Kerberos {
    pub fn new(principal: impl Into<String>, keytab: impl Into<PathBuf>) -> Kerberos {
        Kerberos {
            principal: principal.into(),
            keytab: keytab.into(),
            ccache: std::env::temp_dir().join(format!(
                "fedora-ci-worker-fasjson-{}.ccache",
                std::process::id()
            )),
            renew_after: Duration::from_secs(3600),
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
}

/// An answer, whichever way it came.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
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
        Ok(FasClient {
            url: http::parse_base_url(SERVICE, "fas.url", url)?,
            auth,
            timeouts,
            http: http::build_client(SERVICE, timeouts)?,
            page_size: DEFAULT_PAGE_SIZE,
            ticket: Mutex::new(None),
        })
    }

    /// Groups asked for per page (at least 1).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    fn groups_url(&self, user: &str, page: u32) -> Url {
        let mut url = http::join(&self.url, &["v1", "users", user, "groups", ""]);
        url.query_pairs_mut()
            .append_pair("page_size", &self.page_size.to_string())
            .append_pair("page_number", &page.to_string());
        url
    }

    async fn get(&self, url: &Url) -> Result<Answer, ClientError> {
        match &self.auth {
            FasAuth::None => {
                let response = http::send(SERVICE, self.http.get(url.clone())).await?;
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = response
                    .bytes()
                    .await
                    .map_err(|err| http::from_reqwest(SERVICE, &err))?;
                Ok(Answer {
                    status,
                    retry_after,
                    body: body.to_vec(),
                })
            }
            FasAuth::Kerberos(kerberos) => {
                self.ensure_ticket(kerberos, false).await?;
                let answer = curl_get(kerberos, self.timeouts, url).await?;
                if answer.status != 401 {
                    return Ok(answer);
                }
                // The ticket may have expired early, or the cache been wiped.
                self.ensure_ticket(kerberos, true).await?;
                curl_get(kerberos, self.timeouts, url).await
            }
        }
    }

    async fn ensure_ticket(&self, kerberos: &Kerberos, force: bool) -> Result<(), ClientError> {
        let fresh = http_lock(&self.ticket).is_some_and(|at| at.elapsed() < kerberos.renew_after);
        if fresh && !force {
            return Ok(());
        }
        kinit(kerberos).await?;
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
            let url = self.groups_url(user, page);
            let context = http::describe_call(&reqwest::Method::GET, &url);
            let answer = self.get(&url).await?;
            match answer.status {
                200..=299 => {}
                404 => return Ok(false),
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

fn ccache_env(kerberos: &Kerberos) -> String {
    format!("FILE:{}", kerberos.ccache.display())
}

/// `kinit -k -t <keytab> <principal>` into the client's own cache.
async fn kinit(kerberos: &Kerberos) -> Result<(), ClientError> {
    let output = tokio::process::Command::new(&kerberos.kinit_program)
        .arg("-k")
        .arg("-t")
        .arg(&kerberos.keytab)
        .arg(&kerberos.principal)
        .env("KRB5CCNAME", ccache_env(kerberos))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|err| ClientError::Auth {
            service: SERVICE,
            message: format!("cannot run {}: {err}", kerberos.kinit_program.display()),
        })?;
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

/// What curl prints after the body: a marker line with the status and the
/// `Retry-After` header.
const STATUS_MARKER: &str = "\n--fedora-ci-worker-status-- ";

/// One GET through `curl --negotiate` with the client's credential cache.
async fn curl_get(
    kerberos: &Kerberos,
    timeouts: Timeouts,
    url: &Url,
) -> Result<Answer, ClientError> {
    let context = http::describe_call(&reqwest::Method::GET, url);
    let output = tokio::process::Command::new(&kerberos.curl_program)
        .args(["--silent", "--show-error", "--negotiate", "--user", ":"])
        .arg("--connect-timeout")
        .arg(timeouts.connect.as_secs_f64().to_string())
        .arg("--max-time")
        .arg(timeouts.total.as_secs_f64().to_string())
        .args(["--header", "Accept: application/json"])
        .arg("--write-out")
        .arg(format!(
            "{STATUS_MARKER}%{{http_code}} %header{{retry-after}}"
        ))
        .arg("--url")
        .arg(url.as_str())
        .env("KRB5CCNAME", ccache_env(kerberos))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|err| ClientError::Permanent {
            service: SERVICE,
            message: format!("cannot run {}: {err}", kerberos.curl_program.display()),
        })?;
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
    parse_curl_output(&context, output.stdout)
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
    let trailer = String::from_utf8_lossy(&stdout[at + marker.len()..]).into_owned();
    stdout.truncate(at);
    let mut fields = trailer.trim().splitn(2, ' ');
    let status: u16 = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let retry_after = fields
        .next()
        .map(str::trim)
        .filter(|v| !v.is_empty() && !v.contains('%'))
        .map(str::to_owned);
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
        body: stdout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_output_is_split_into_body_and_status() {
        let out = format!("{{\"result\": []}}{STATUS_MARKER}429 120").into_bytes();
        let answer = parse_curl_output("GET x", out).expect("an answer");
        assert_eq!(answer.status, 429);
        assert_eq!(answer.retry_after.as_deref(), Some("120"));
        assert_eq!(answer.body, b"{\"result\": []}");

        let out = format!("{STATUS_MARKER}200 ").into_bytes();
        let answer = parse_curl_output("GET x", out).expect("an answer");
        assert_eq!((answer.status, answer.retry_after), (200, None));

        let out = format!("{STATUS_MARKER}000 ").into_bytes();
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
            client.groups_url("zbyszek", 3).as_str(),
            "https://fasjson.fedoraproject.org/v1/users/zbyszek/groups/?page_size=40&page_number=3"
        );
    }
}
