//! Kerberos for the tests: a real MIT KDC (Debian's `krb5-kdc` and
//! `krb5-admin-server`) in a directory of its own, with a realm, the
//! service's principal and keytab, and the HTTP service principals of the
//! stand-ins; and an [`Acceptor`] with which the Koji and FASJSON stand-ins
//! check a SPNEGO login against that KDC, as `mod_auth_gssapi` does in front
//! of the real services.
//!
//! The service reaches the KDC the way production does: `kinit -k -t
//! <keytab> <principal>` with `KRB5_CONFIG` naming [`Kdc::krb5_config`].
//! The stand-ins' side runs the `gssapi` package (PyPI, the bindings `koji`
//! itself logs in with) with the service keytab: a token is accepted only if
//! the KDC issued it for that service, to a principal of the realm, and it
//! has not expired.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

/// The realm of every test KDC.
pub const REALM: &str = "FCI.TEST";
/// The service's own principal, as production's `fedora-ci@FEDORAPROJECT.ORG`.
pub const SERVICE_PRINCIPAL: &str = "fedora-ci@FCI.TEST";

/// A running KDC with its realm; stopped and removed when dropped.
#[derive(Debug)]
pub struct Kdc {
    dir: tempfile::TempDir,
    port: u16,
    kdc: Option<Child>,
}

impl Kdc {
    /// Creates the realm's database, the principals and their keytabs, and
    /// starts `krb5kdc` on a free local port (TCP and UDP).
    pub fn start() -> std::io::Result<Kdc> {
        let dir = tempfile::Builder::new().prefix("fci-kdc-").tempdir()?;
        let port = free_port()?;
        let root = dir.path();
        std::fs::write(root.join("krb5.conf"), krb5_conf(port))?;
        std::fs::write(root.join("kdc.conf"), kdc_conf(root, port))?;
        std::fs::write(root.join("kadm5.acl"), "")?;
        let mut kdc = Kdc {
            dir,
            port,
            kdc: None,
        };
        kdc.run(
            "kdb5_util",
            &["-r", REALM, "create", "-s", "-P", "test-master-key"],
        )?;
        kdc.admin(&[
            &format!("addprinc -randkey {SERVICE_PRINCIPAL}"),
            "addprinc -randkey HTTP/localhost",
            "addprinc -randkey HTTP/127.0.0.1",
            &format!("ktadd -k {} HTTP/localhost", kdc.http_keytab().display()),
            &format!("ktadd -k {} HTTP/127.0.0.1", kdc.http_keytab().display()),
            // An old key of the service: `ktadd` gives the principal new
            // keys, so the first keytab no longer matches the KDC.
            &format!(
                "ktadd -k {} {SERVICE_PRINCIPAL}",
                kdc.stale_keytab().display()
            ),
            &format!("ktadd -k {} {SERVICE_PRINCIPAL}", kdc.keytab().display()),
        ])?;
        kdc.start_kdc()?;
        Ok(kdc)
    }

    /// The `krb5.conf` the service (`KRB5_CONFIG`) and the stand-ins use.
    pub fn krb5_config(&self) -> PathBuf {
        self.dir.path().join("krb5.conf")
    }

    /// The service's keytab for [`SERVICE_PRINCIPAL`].
    pub fn keytab(&self) -> PathBuf {
        self.dir.path().join("fedora-ci.keytab")
    }

    /// A keytab of [`SERVICE_PRINCIPAL`] with keys the KDC no longer has:
    /// the "wrong keytab" of a deployment whose keytab was rotated.
    pub fn stale_keytab(&self) -> PathBuf {
        self.dir.path().join("fedora-ci-old.keytab")
    }

    /// The keytab of the stand-ins' HTTP service principals.
    pub fn http_keytab(&self) -> PathBuf {
        self.dir.path().join("http.keytab")
    }

    /// How long tickets of the service's principal live from now on.
    pub fn set_ticket_lifetime(&self, lifetime: Duration) -> std::io::Result<()> {
        self.admin(&[&format!(
            "modprinc -maxlife \"{} seconds\" {SERVICE_PRINCIPAL}",
            lifetime.as_secs().max(1)
        )])
    }

    /// How many initial tickets (`kinit`: an AS exchange) the KDC has issued
    /// to [`SERVICE_PRINCIPAL`], from its log.
    pub fn tickets_issued(&self) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("kdc.log")).unwrap_or_default();
        let wanted = format!("{SERVICE_PRINCIPAL} for krbtgt/{REALM}@{REALM}");
        log.lines()
            .filter(|line| {
                line.contains("AS_REQ") && line.contains("ISSUE") && line.contains(&wanted)
            })
            .count()
    }

    /// Stops the KDC: `kinit` then finds no KDC for the realm.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.kdc.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the KDC again on the same port, after [`Kdc::stop`].
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        self.start_kdc()
    }

    /// An acceptor for SPNEGO logins to the stand-ins, run with `python`
    /// (which must import `gssapi`).
    pub fn acceptor(&self, python: impl Into<PathBuf>) -> Acceptor {
        Acceptor::new(python, self.krb5_config(), self.http_keytab())
    }

    fn start_kdc(&mut self) -> std::io::Result<()> {
        let child = self
            .command("krb5kdc")?
            .args(["-n", "-r", REALM])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.kdc = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "krb5kdc did not listen on port {} (see {})",
                    self.port,
                    self.dir.path().join("kdc.log").display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Runs `kadmin.local` with `queries` on its standard input.
    fn admin(&self, queries: &[&str]) -> std::io::Result<()> {
        let mut child = self
            .command("kadmin.local")?
            .args(["-r", REALM])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("piped stdin");
            for query in queries {
                writeln!(stdin, "{query}")?;
            }
        }
        let output = child.wait_with_output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        // kadmin.local keeps going after a failed query and exits 0; a
        // failure shows on its standard error.
        if !output.status.success() || stderr.contains("while ") {
            return Err(std::io::Error::other(format!(
                "kadmin.local failed: {stderr}"
            )));
        }
        Ok(())
    }

    fn run(&self, program: &str, args: &[&str]) -> std::io::Result<()> {
        let output = self.command(program)?.args(args).output()?;
        if output.status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "{program} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }

    fn command(&self, program: &str) -> std::io::Result<Command> {
        let mut command = Command::new(find_program(program)?);
        command
            .env("KRB5_CONFIG", self.krb5_config())
            .env("KRB5_KDC_PROFILE", self.dir.path().join("kdc.conf"));
        Ok(command)
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Checks SPNEGO tokens (`Authorization: Negotiate <token>`) against the KDC
/// with the stand-ins' service keytab.
#[derive(Debug, Clone)]
pub struct Acceptor {
    python: PathBuf,
    krb5_config: PathBuf,
    keytab: PathBuf,
}

/// A login the acceptor took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Who logged in, `name@REALM`.
    pub principal: String,
    /// The acceptor's answer token, for `WWW-Authenticate: Negotiate`.
    pub token: Option<String>,
}

/// The acceptor's side of one SPNEGO exchange, with the `gssapi` package.
const ACCEPT: &str = r#"
import base64, json, sys
import gssapi
token = base64.b64decode(sys.stdin.read().strip(), validate=True)
try:
    creds = gssapi.Credentials(usage="accept")
    ctx = gssapi.SecurityContext(creds=creds, usage="accept")
    out = ctx.step(token)
    if not ctx.complete:
        print(json.dumps({"error": "the SPNEGO exchange wants another round"}))
    else:
        print(json.dumps({
            "principal": str(ctx.initiator_name),
            "token": base64.b64encode(out).decode() if out else None,
        }))
except gssapi.exceptions.GSSError as e:
    print(json.dumps({"error": str(e).replace("\n", " ")}))
"#;

impl Acceptor {
    /// An acceptor run with `python`, for the realm of `krb5_config`, with
    /// the service keys in `keytab`.
    pub fn new(
        python: impl Into<PathBuf>,
        krb5_config: impl Into<PathBuf>,
        keytab: impl Into<PathBuf>,
    ) -> Acceptor {
        Acceptor {
            python: python.into(),
            krb5_config: krb5_config.into(),
            keytab: keytab.into(),
        }
    }

    /// Accepts the base64 token of a `Negotiate` header, or says why not.
    pub async fn accept(&self, token: &str) -> Result<Accepted, String> {
        if token.is_empty()
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        {
            return Err("the Negotiate token is not base64".to_owned());
        }
        let mut child = tokio::process::Command::new(&self.python)
            .args(["-c", ACCEPT])
            .env_clear()
            .env("KRB5_CONFIG", &self.krb5_config)
            .env("KRB5_KTNAME", format!("FILE:{}", self.keytab.display()))
            .env("KRB5RCACHETYPE", "none")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.python.display()))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(token.as_bytes())
            .await
            .map_err(|e| format!("cannot hand the token to the acceptor: {e}"))?;
        drop(stdin);
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| format!("the acceptor failed: {e}"))?;
        let answer: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|_| {
            format!(
                "the acceptor failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )
        })?;
        if let Some(error) = answer["error"].as_str() {
            return Err(error.to_owned());
        }
        Ok(Accepted {
            principal: answer["principal"].as_str().unwrap_or_default().to_owned(),
            token: answer["token"].as_str().map(str::to_owned),
        })
    }
}

/// The token of an `Authorization: Negotiate <token>` header.
pub fn negotiate_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("negotiate")
        .then_some(token.trim())
}

fn krb5_conf(port: u16) -> String {
    format!(
        "[libdefaults]
    default_realm = {REALM}
    dns_lookup_realm = false
    dns_lookup_kdc = false
    rdns = false
    dns_canonicalize_hostname = false
    udp_preference_limit = 1

[realms]
    {REALM} = {{
        kdc = 127.0.0.1:{port}
    }}

[domain_realm]
    localhost = {REALM}
    127.0.0.1 = {REALM}
"
    )
}

fn kdc_conf(root: &Path, port: u16) -> String {
    let root = root.display();
    format!(
        "[kdcdefaults]
    kdc_listen = 127.0.0.1:{port}
    kdc_tcp_listen = 127.0.0.1:{port}

[realms]
    {REALM} = {{
        database_name = {root}/principal
        key_stash_file = {root}/stash
        acl_file = {root}/kadm5.acl
        max_life = 10h 0m 0s
        max_renewable_life = 1d 0h 0m 0s
    }}

[logging]
    kdc = FILE:{root}/kdc.log
"
    )
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The MIT tools are in `/usr/sbin` on Debian, which a test's `PATH` may
/// lack.
fn find_program(name: &str) -> std::io::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "{name} was not found: install Debian's krb5-kdc, krb5-admin-server and krb5-user"
            ))
        })
}
