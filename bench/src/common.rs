//! What the benchmarks share: a PostgreSQL database and a RabbitMQ vhost of
//! the run's own.

#![allow(dead_code, reason = "each benchmark uses a part of it")]

use std::process::Command;

use anyhow::{Context as _, bail};
use sqlx::Connection as _;

/// A database of the run's own, dropped at the end.
pub struct Database {
    server_url: String,
    name: String,
    pub url: String,
}

impl Database {
    pub async fn create(server_url: &str) -> anyhow::Result<Self> {
        let name = format!("fci_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(server_url)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {server_url}"))?;
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let url = url_with_path(server_url, &name);
        Ok(Database {
            server_url: server_url.to_owned(),
            name,
            url,
        })
    }

    pub async fn drop(self) {
        let dropped = async {
            let mut conn = sqlx::PgConnection::connect(&self.server_url).await?;
            sqlx::raw_sql(&format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name))
                .execute(&mut conn)
                .await?;
            conn.close().await
        };
        if let Err(error) = dropped.await {
            eprintln!("could not drop database {}: {error}", self.name);
        }
    }
}

/// `server_url` with its database name replaced by `name`.
fn url_with_path(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority_end = base
        .find("://")
        .map(|scheme| scheme + 3)
        .and_then(|start| base[start..].find('/').map(|slash| start + slash))
        .unwrap_or(base.len());
    let mut url = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// A vhost of the run's own on the local broker, so its queues and its
/// `amq.topic` see nothing else. Deleted on drop.
pub struct Vhost {
    pub name: String,
}

impl Vhost {
    pub fn create() -> anyhow::Result<Self> {
        let name = format!("fci_bench_{}", uuid::Uuid::new_v4().simple());
        rabbitmqctl(&["add_vhost", &name])?;
        let vhost = Vhost { name };
        rabbitmqctl(&[
            "set_permissions",
            "-p",
            &vhost.name,
            "guest",
            ".*",
            ".*",
            ".*",
        ])?;
        Ok(vhost)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        if let Err(error) = rabbitmqctl(&["delete_vhost", &self.name]) {
            eprintln!("could not delete vhost {}: {error:#}", self.name);
        }
    }
}

fn rabbitmqctl(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("rabbitmqctl")
        .args(args)
        .current_dir("/")
        .output()
        .context(
            "running rabbitmqctl (is RabbitMQ installed and this user allowed to manage it?)",
        )?;
    if !output.status.success() {
        bail!(
            "rabbitmqctl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// A memory figure of a running process from `/proc/<pid>/status`, in kB:
/// `VmRSS` (resident now) or `VmHWM` (peak resident).
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
