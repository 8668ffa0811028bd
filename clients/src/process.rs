//! The programs the clients run (`kinit` and `koji` for Koji, `kinit` and
//! `curl` for FASJSON): what they see of the service's environment, where
//! their Kerberos ticket cache lives, how long they may run and how much of
//! their output is kept.

use std::ffi::OsStr;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The variables a child gets from the service's environment, when they are
/// set there. Nothing else is passed on: the service's environment holds
/// `FEDORA_CI__DATABASE__URL` with the database password, the Sentry DSN and
/// other secrets, which no child needs. On top of these a child gets
/// `PATH`, `KRB5CCNAME` (its own ticket cache) and `LC_ALL=C` (messages are
/// classified by their English text).
///
/// - `HOME`: `koji` reads `~/.koji/config.d`, Python its user site; the
///   deployment gives the service a home of its own.
/// - `KRB5_CONFIG`: the realm's `krb5.conf`; production sets it
///   (`/etc/ipa/krb5.conf`), and `kinit` cannot find the KDC without it.
/// - `KRB5_TRACE`: set by an operator who is debugging Kerberos, and only then.
/// - `SSL_CERT_FILE`, `SSL_CERT_DIR`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`:
///   a CA bundle for `curl` (OpenSSL) and `koji` (Python `requests`), for a
///   deployment whose Koji or FASJSON has a private CA (the service's own
///   HTTP client reads `SSL_CERT_FILE` too); they name files, not secrets,
///   and are unset in production, where the system's CAs are used.
/// - `https_proxy`, `http_proxy`, `no_proxy` (either case): the service's
///   own HTTP client follows these, so its children must too, or Koji and
///   FASJSON would fail only through them behind an egress proxy.
///
/// `KRB5_CLIENT_KTNAME` is deliberately left out: the clients always name
/// their keytab (`kinit -k -t`) and then use only their own ticket cache; a
/// default client keytab could let GSSAPI pick another identity silently.
pub const INHERITED_ENV: &[&str] = &[
    "HOME",
    "KRB5_CONFIG",
    "KRB5_TRACE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// A command for `program` with an environment of its own (see
/// [`INHERITED_ENV`]), no standard input, and killed when dropped. `PATH` is
/// `search_path`, or the service's own; with `PATH` set here, a bare
/// `program` is looked up on it.
pub(crate) fn command(
    program: &OsStr,
    search_path: Option<&OsStr>,
    ccache: &OsStr,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command.env_clear();
    for name in INHERITED_ENV {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    if let Some(path) = search_path
        .map(OsStr::to_owned)
        .or_else(|| std::env::var_os("PATH"))
    {
        command.env("PATH", path);
    }
    command
        .env("KRB5CCNAME", ccache)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// A directory only the service can read (mode 0700, named at random by
/// `tempfile`, so it cannot be guessed, pre-created or replaced by a
/// symlink), removed when dropped: for a Kerberos ticket cache.
pub(crate) fn private_temp_dir() -> io::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::Builder::new()
        .prefix("fedora-ci-krb5-")
        .tempdir()?;
    // tempfile already creates it 0700; this says so whatever the umask.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

/// What to do with output beyond a stream's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// Keep the first bytes and read on, throwing the rest away: the
    /// program's exit status still decides (a `koji build` that printed too
    /// much may well have created its task).
    Truncate,
    /// Stop and kill the program: its output is its answer, and an answer
    /// this large is refused anyway.
    Refuse,
}

/// How much of one output stream is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit {
    pub bytes: usize,
    pub overflow: Overflow,
}

/// A finished program's exit status and output (each stream cut at its
/// [`Limit`]).
#[derive(Debug)]
pub(crate) struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Whether the output went beyond its limit (and was cut).
    pub stdout_cut: bool,
    pub stderr_cut: bool,
}

#[derive(Debug)]
pub(crate) enum RunError {
    /// The program could not be started (not found, not executable, ...).
    Spawn(io::Error),
    /// Reading its output or waiting for it failed.
    Io(io::Error),
    /// It did not finish within its deadline, and was killed.
    TimedOut,
    /// A stream with [`Overflow::Refuse`] went beyond its limit; the
    /// program was killed.
    TooMuchOutput,
}

/// Runs `command` with its output captured up to `stdout` and `stderr`
/// bytes, and kills it if it is still running after `deadline`.
pub(crate) async fn run(
    mut command: tokio::process::Command,
    deadline: Duration,
    stdout: Limit,
    stderr: Limit,
) -> Result<Finished, RunError> {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(RunError::Spawn)?;
    let out = child.stdout.take();
    let err = child.stderr.take();
    let result = tokio::time::timeout(deadline, async {
        // Both streams are read while the program runs: one that fills a
        // pipe nobody reads would block for ever.
        let ((stdout, stdout_cut), (stderr, stderr_cut)) =
            tokio::try_join!(read_limited(out, stdout), read_limited(err, stderr))?;
        let status = child.wait().await.map_err(RunError::Io)?;
        Ok(Finished {
            status,
            stdout,
            stderr,
            stdout_cut,
            stderr_cut,
        })
    })
    .await;
    match result {
        Ok(Ok(finished)) => Ok(finished),
        Ok(Err(error)) => {
            let _ = child.start_kill();
            Err(error)
        }
        Err(_) => {
            // `kill_on_drop` is for a caller that drops this future mid-run
            // (a job that lost its lease); here the kill is ours to make.
            let _ = child.start_kill();
            Err(RunError::TimedOut)
        }
    }
}

/// One output stream, up to `limit`; whether it went beyond.
async fn read_limited<R: AsyncRead + Unpin>(
    stream: Option<R>,
    limit: Limit,
) -> Result<(Vec<u8>, bool), RunError> {
    let mut kept = Vec::new();
    let mut cut = false;
    let Some(mut stream) = stream else {
        return Ok((kept, cut));
    };
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buffer).await.map_err(RunError::Io)?;
        if n == 0 {
            return Ok((kept, cut));
        }
        let room = limit.bytes.saturating_sub(kept.len());
        let chunk = buffer.get(..n).unwrap_or_default();
        if chunk.len() > room {
            cut = true;
            if limit.overflow == Overflow::Refuse {
                return Err(RunError::TooMuchOutput);
            }
        }
        kept.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> tokio::process::Command {
        let mut command = command(OsStr::new("sh"), None, OsStr::new("FILE:/nonexistent"));
        command.arg("-c").arg(script);
        command
    }

    const SMALL: Limit = Limit {
        bytes: 10,
        overflow: Overflow::Truncate,
    };

    #[tokio::test]
    async fn output_beyond_the_limit_is_cut_and_the_program_finishes() {
        let finished = run(
            sh("i=0; while [ $i -lt 1000 ]; do echo 0123456789; i=$((i+1)); done; echo oops >&2; exit 3"),
            Duration::from_secs(20),
            SMALL,
            Limit {
                bytes: 100,
                overflow: Overflow::Truncate,
            },
        )
        .await
        .expect("it ran");
        assert_eq!(finished.stdout, b"0123456789");
        assert!(finished.stdout_cut);
        assert_eq!(finished.stderr, b"oops\n");
        assert!(!finished.stderr_cut);
        assert_eq!(finished.status.code(), Some(3));
    }

    #[tokio::test]
    async fn refused_output_stops_the_program() {
        let error = run(
            sh("while :; do echo 0123456789; done"),
            Duration::from_secs(20),
            Limit {
                bytes: 1000,
                overflow: Overflow::Refuse,
            },
            SMALL,
        )
        .await
        .expect_err("too much");
        assert!(matches!(error, RunError::TooMuchOutput), "{error:?}");
    }

    #[tokio::test]
    async fn a_program_past_its_deadline_is_killed() {
        let started = std::time::Instant::now();
        let error = run(
            sh("exec sleep 30"),
            Duration::from_millis(300),
            SMALL,
            SMALL,
        )
        .await
        .expect_err("too slow");
        assert!(matches!(error, RunError::TimedOut), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn the_private_directory_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = private_temp_dir().expect("a directory");
        let mode = std::fs::metadata(dir.path())
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists());
    }
}
