//! Running external tools (initdb, pg_ctl, rabbitmqctl, kill) with a time limit,
//! and turning every failure into a panic that shows the tool's stderr.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a finished command printed.
#[derive(Debug)]
pub struct CmdOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion, killing it after `timeout`. Err (never a panic, so
/// it is safe in `Drop`) when it cannot start or times out; a non-zero exit is Ok.
pub fn try_run(cmd: &mut Command, timeout: Duration) -> Result<CmdOutput, String> {
    // Output goes to anonymous files rather than pipes: a tool that leaves a
    // daemon behind (pg_ctl start) must not keep us waiting for EOF.
    let mut out = tempfile::tempfile().map_err(|e| format!("cannot create a temp file: {e}"))?;
    let mut err = tempfile::tempfile().map_err(|e| format!("cannot create a temp file: {e}"))?;
    let out_w = out.try_clone().map_err(|e| e.to_string())?;
    let err_w = err.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w));
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", program_of(cmd)))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} did not finish within {}s\n--- stderr ---\n{}\n--- stdout ---\n{}",
                    program_of(cmd),
                    secs(timeout),
                    read_all(&mut err),
                    read_all(&mut out)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("waiting for {} failed: {e}", program_of(cmd))),
        }
    };
    Ok(CmdOutput {
        status,
        stdout: read_all(&mut out),
        stderr: read_all(&mut err),
    })
}

/// Runs `cmd` and panics, naming `what` and showing stderr and stdout, unless it exits 0.
pub fn run_checked(cmd: &mut Command, what: &str, timeout: Duration) -> CmdOutput {
    let output = run_unchecked(cmd, what, timeout);
    if !output.status.success() {
        panic!(
            "{what} failed ({}): {cmd:?}\n--- stderr ---\n{}\n--- stdout ---\n{}",
            output.status,
            output.stderr.trim_end(),
            output.stdout.trim_end()
        );
    }
    output
}

/// Runs `cmd`; panics only when it cannot start or times out.
pub fn run_unchecked(cmd: &mut Command, what: &str, timeout: Duration) -> CmdOutput {
    try_run(cmd, timeout).unwrap_or_else(|e| panic!("{what}: {e}\ncommand: {cmd:?}"))
}

fn read_all(file: &mut File) -> String {
    let mut bytes = Vec::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn program_of(cmd: &Command) -> String {
    cmd.get_program().to_string_lossy().into_owned()
}

/// `1.5` for 1500 ms, `30` for 30 s.
pub fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// Whether this process runs as root (the owner of /proc/self is the effective uid).
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Sends a signal (`"TERM"`, `"KILL"`, `"INT"`) to one process with kill(1).
pub fn send_signal(pid: u32, signal: &str) -> Result<(), String> {
    let out = try_run(
        Command::new("kill").args(["-s", signal, &pid.to_string()]),
        Duration::from_secs(10),
    )?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "kill -s {signal} {pid} failed: {}",
            out.stderr.trim()
        ))
    }
}

/// The last `n` lines of `text`.
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last `n` lines of a file, or a note that it cannot be read.
pub fn tail_file(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => tail_lines(&String::from_utf8_lossy(&bytes), n),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// `path` if it exists, else the bare program name for a `PATH` lookup.
pub fn existing_or(path: &str, fallback: &str) -> PathBuf {
    if Path::new(path).exists() {
        PathBuf::from(path)
    } else {
        PathBuf::from(fallback)
    }
}
