//! The service binary as a child process.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::process::{send_signal, tail_lines};

/// Lines of log printed from Drop when the test is panicking.
const LOG_LINES_ON_FAILURE: usize = 100;

/// A running `fedora-ci-worker --config <file> <args...>`, its stdout and
/// stderr captured in one log file. Killed (SIGKILL) on Drop; when the test is
/// failing, Drop prints the last 100 log lines to stderr.
pub struct Service {
    child: Child,
    exit: Option<ExitStatus>,
    dir: TempDir,
    log_path: PathBuf,
    label: String,
}

impl Service {
    /// Writes `config_toml` to a temp file and starts the service binary with
    /// `--config <file>` followed by `args`. RUST_LOG is `info` unless set in
    /// the test's environment; inherited `FEDORA_CI__*` variables are removed.
    pub fn spawn(config_toml: &str, args: &[&str]) -> Self {
        Self::spawn_with_env(config_toml, args, &[])
    }

    /// [`spawn`](Self::spawn) with extra environment variables (set last, so
    /// they win, e.g. `("FEDORA_CI__BUS__AMQP_URL", url)` or `("RUST_LOG", "debug")`).
    pub fn spawn_with_env(config_toml: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("fci-service-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir for the service: {e}"));
        let config = dir.path().join("config.toml");
        std::fs::write(&config, config_toml)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
        let mut full_args: Vec<String> = vec!["--config".into(), config.display().to_string()];
        full_args.extend(args.iter().map(|a| a.to_string()));
        Self::spawn_in(
            dir,
            Path::new(env!("CARGO_BIN_EXE_fedora-ci-worker")),
            &full_args,
            env,
        )
    }

    /// Any program, run the same way (log capture, RUST_LOG, Drop). For testing
    /// this harness itself, or a helper binary.
    pub fn spawn_program(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("fci-service-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Self::spawn_in(dir, program, &args, env)
    }

    fn spawn_in(dir: TempDir, program: &Path, args: &[String], env: &[(&str, &str)]) -> Self {
        let log_path = dir.path().join("service.log");
        let log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone a file handle: {e}"));
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("FEDORA_CI__") {
                cmd.env_remove(&key);
            }
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        for (key, value) in env {
            cmd.env(key, value);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let label = format!(
            "{} (pid {})",
            program
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            child.id()
        );
        Service {
            child,
            exit: None,
            dir,
            log_path,
            label,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The captured stdout+stderr file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The temp dir holding config.toml and service.log (removed on Drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The captured output so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// Sends SIGTERM (no-op if it has already exited and been reaped).
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Sends SIGINT.
    pub fn sigint(&self) {
        self.signal("INT");
    }

    fn signal(&self, signal: &str) {
        // Once reaped, the pid may belong to someone else: send nothing.
        if self.exit.is_some() {
            return;
        }
        if let Err(e) = send_signal(self.child.id(), signal) {
            panic!("SIG{signal} to {}: {e}", self.label);
        }
    }

    /// SIGKILL, and reap it.
    pub fn sigkill(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            match self.child.wait() {
                Ok(status) => self.exit = Some(status),
                Err(e) => panic!("waiting for {} after SIGKILL: {e}", self.label),
            }
        }
    }

    /// Waits up to `timeout` for the process to exit; its status, or None if still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.poll_exit() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// [`wait_exit`](Self::wait_exit) without blocking the async runtime's thread.
    pub async fn wait_exit_async(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.poll_exit() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The exit status if it has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.poll_exit()
    }

    pub fn is_running(&mut self) -> bool {
        self.poll_exit().is_none()
    }

    /// Waits until the log contains `needle`; panics with the log tail after `timeout`,
    /// or at once if the process exits without printing it.
    pub async fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            if let Some(status) = self.poll_exit() {
                // One last read: the line may have landed just before exit.
                let log = self.log();
                if log.contains(needle) {
                    return log;
                }
                panic!(
                    "{} exited ({status}) without logging {needle:?}\n--- log (tail) ---\n{}",
                    self.label,
                    tail_lines(&log, LOG_LINES_ON_FAILURE)
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {}s waiting for {needle:?} in the log of {}\n--- log (tail) ---\n{}",
                    timeout.as_secs_f64(),
                    self.label,
                    tail_lines(&log, LOG_LINES_ON_FAILURE)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn poll_exit_quietly(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    fn poll_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            match self.child.try_wait() {
                Ok(status) => self.exit = status,
                Err(e) => panic!("waiting for {}: {e}", self.label),
            }
        }
        self.exit
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let state = match self.poll_exit_quietly() {
            Some(status) => format!("had exited: {status}"),
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                "was still running; killed".to_string()
            }
        };
        if std::thread::panicking() {
            let log = self.log();
            eprintln!(
                "----- last {LOG_LINES_ON_FAILURE} log lines of {} ({state}) -----\n{}\n----- end of log -----",
                self.label,
                tail_lines(&log, LOG_LINES_ON_FAILURE)
            );
        }
    }
}
