//! PostgreSQL: fresh databases on the shared local server, and private
//! clusters that a test may stop and start without disturbing anyone.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::Connection;
use tempfile::TempDir;

use super::free_port;
use super::process::{is_root, run_checked, run_unchecked, secs, tail_file, try_run};

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The shared server: `FCI_TEST_PG_URL`, else `postgres://postgres@127.0.0.1:5432/postgres`.
pub fn local_pg_url() -> String {
    std::env::var("FCI_TEST_PG_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_PG_URL.to_string())
}

/// A database made for one test. It is left behind when the test ends.
#[derive(Debug, Clone)]
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// A small pool on this database.
    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to test database {}: {e}", self.url))
    }
}

/// A new empty database `fci_test_<random>` on the local server ([`local_pg_url`]).
pub async fn fresh_database() -> TestDb {
    fresh_database_at(&local_pg_url()).await
}

/// A new empty database `fci_test_<random>` on the server of `server_url`
/// (any database of that server; e.g. [`PrivatePostgres::url`]).
pub async fn fresh_database_at(server_url: &str) -> TestDb {
    let mut conn = match tokio::time::timeout(
        Duration::from_secs(15),
        sqlx::PgConnection::connect(server_url),
    )
    .await
    {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => unreachable_server(server_url, &e.to_string()),
        Err(_) => unreachable_server(server_url, "no answer within 15s"),
    };
    let name = format!("fci_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {server_url} failed: {e}"));
    let _ = conn.close().await;
    TestDb {
        url: with_database(server_url, &name),
        name,
    }
}

fn unreachable_server(url: &str, error: &str) -> ! {
    panic!(
        "PostgreSQL at {url} is not reachable: {error}\n\
         start it with: pg_ctlcluster 15 main start \
         (or point FCI_TEST_PG_URL at a server where this user may CREATE DATABASE)"
    )
}

/// `url` with its database (path) replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let mut parsed =
        url::Url::parse(url).unwrap_or_else(|e| panic!("bad PostgreSQL URL {url:?}: {e}"));
    parsed.set_path(&format!("/{database}"));
    parsed.to_string()
}

/// A PostgreSQL cluster of its own: initdb in a temp dir, listening on
/// 127.0.0.1 on a free port (socket in the same dir), user `postgres`, trust
/// auth, fsync off. Stopped (immediate mode) and removed on Drop.
///
/// All methods block the calling thread while the tool runs (well under a second
/// each here), and panic with the tool's stderr and the server log on failure.
pub struct PrivatePostgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// initdb + start; ready (pg_isready) when it returns.
    pub fn start() -> Self {
        let started = Instant::now();
        let bin = pg_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("fci-pg-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir for PostgreSQL: {e}"));
        if is_root() {
            // initdb refuses to run as root: the cluster belongs to `postgres`.
            let uid = id_of("-u");
            let gid = id_of("-g");
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap_or_else(|e| {
                panic!("cannot chown {} to postgres: {e}", dir.path().display())
            });
        }
        let mut pg = PrivatePostgres {
            dir,
            bin,
            port: free_port(),
        };
        run_checked(
            pg.tool("initdb").arg("-D").arg(pg.data_dir()).args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]),
            "initdb of a private PostgreSQL cluster",
            Duration::from_secs(120),
        );
        // The port came from free_port(); another process may take it before the
        // server binds it, so try a couple of fresh ports before giving up.
        let mut attempt = 1;
        loop {
            match pg.try_start() {
                Ok(()) => break,
                Err(e) if attempt < 3 && e.contains("already in use") => {
                    attempt += 1;
                    pg.port = free_port();
                }
                Err(e) => panic!("{e}"),
            }
        }
        eprintln!(
            "[support] private PostgreSQL on port {} ready in {:.2}s ({})",
            pg.port,
            started.elapsed().as_secs_f64(),
            pg.dir.path().display()
        );
        pg
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server log (all starts so far).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// Clean shutdown (`pg_ctl stop -m fast`): clients are disconnected.
    pub fn stop(&self) {
        self.pg_ctl_stop("fast");
    }

    /// Crash-like shutdown (`pg_ctl stop -m immediate`): recovery runs on the next start.
    pub fn stop_immediate(&self) {
        self.pg_ctl_stop("immediate");
    }

    /// Start a stopped cluster again, on the same port; ready when it returns.
    pub fn start_again(&self) {
        if let Err(e) = self.try_start() {
            panic!("{e}");
        }
    }

    /// [`stop`](Self::stop) then [`start_again`](Self::start_again).
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    fn try_start(&self) -> Result<(), String> {
        let options = format!(
            // synchronous_commit stays on: a crash test must not lose commits
            // the service was told were durable. fsync=off only skips the disk
            // flush, which a killed server (not a crashed machine) does not need.
            "-p {} -k '{}' -c listen_addresses=127.0.0.1 -c fsync=off \
             -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        let out = run_unchecked(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.log_file())
                .args(["-w", "-t", "60", "-o", &options, "start"]),
            "pg_ctl start",
            Duration::from_secs(90),
        );
        if !out.status.success() {
            return Err(format!(
                "pg_ctl start of the private PostgreSQL on port {} failed ({})\n\
                 --- stderr ---\n{}\n--- stdout ---\n{}\n--- server log (tail) ---\n{}",
                self.port,
                out.status,
                out.stderr.trim_end(),
                out.stdout.trim_end(),
                tail_file(&self.log_file(), 30)
            ));
        }
        self.await_ready(Duration::from_secs(30));
        Ok(())
    }

    fn await_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let port = self.port.to_string();
            let out = run_unchecked(
                self.tool("pg_isready").args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-t",
                    "2",
                ]),
                "pg_isready",
                Duration::from_secs(10),
            );
            if out.status.success() {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "private PostgreSQL on port {} not ready after {}s: {}{}\n--- server log (tail) ---\n{}",
                    self.port,
                    secs(timeout),
                    out.stdout.trim(),
                    out.stderr.trim(),
                    tail_file(&self.log_file(), 30)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn pg_ctl_stop(&self, mode: &str) {
        let out = run_unchecked(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", mode, "-w", "-t", "60", "stop"]),
            "pg_ctl stop",
            Duration::from_secs(90),
        );
        if !out.status.success() {
            panic!(
                "pg_ctl stop -m {mode} of the private PostgreSQL on port {} failed ({})\n\
                 --- stderr ---\n{}\n--- server log (tail) ---\n{}",
                self.port,
                out.status,
                out.stderr.trim_end(),
                tail_file(&self.log_file(), 30)
            );
        }
    }

    /// A command for one of the server tools, run as `postgres` when we are root.
    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        // The test's own cwd may not be readable by `postgres`.
        cmd.current_dir(self.dir.path());
        cmd.env("LC_ALL", "C.UTF-8");
        cmd
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Never panic here; a cluster that is already stopped just says so.
        let _ = try_run(
            self.tool("pg_ctl").arg("-D").arg(self.data_dir()).args([
                "-m",
                "immediate",
                "-w",
                "-t",
                "30",
                "stop",
            ]),
            Duration::from_secs(40),
        );
    }
}

/// `FCI_TEST_PG_BIN`, else the newest /usr/lib/postgresql/<version>/bin with initdb,
/// else the directory of `initdb` on PATH.
fn pg_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("FCI_TEST_PG_BIN")
        && !dir.is_empty()
    {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    if let Some(dir) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
    }) {
        return dir;
    }
    panic!(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin \
         nor on PATH; install the postgresql package or set FCI_TEST_PG_BIN"
    )
}

fn id_of(flag: &str) -> u32 {
    let out = run_checked(
        Command::new("id").args([flag, "postgres"]),
        "looking up the postgres user",
        Duration::from_secs(10),
    );
    out.stdout
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("`id {flag} postgres` printed {:?}: {e}", out.stdout))
}
