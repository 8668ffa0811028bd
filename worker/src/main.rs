//! `fedora-ci-worker`: Fedora CI for dist-git pull requests and builds.

mod api;
mod bus;
mod config;
mod decide;
mod ingest;
mod jobs;
mod operate;
mod outbox;
mod packit_metrics;
mod replay;
mod run;
mod services;
mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Deciding events builds and drops many small JSON values; mimalloc keeps
// that cheap where glibc's allocator spends its time consolidating.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "Fedora CI: scratch builds and tests for dist-git, driven by the Fedora message bus"
)]
struct Cli {
    /// Configuration file (TOML). Without one, built-in defaults for a local
    /// machine apply; FEDORA_CI__<SECTION>__<KEY> variables override either.
    #[arg(long, global = true, env = "FEDORA_CI_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service. Without role flags, every role runs in this process.
    Run {
        /// Consume the bus into the inbox.
        #[arg(long)]
        consumer: bool,
        /// Serve the HTTP API.
        #[arg(long)]
        api: bool,
        /// Decide what to do about recorded events, and do it.
        #[arg(long)]
        jobs: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration and print it, secrets redacted.
    CheckConfig,
    /// Record serialized messages (object, array, JSON Lines, datagrepper v2
    /// page, legacy fedmsg) through the same inbox path as the bus.
    Replay {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Publish serialized messages to the configured broker, as
    /// fedora-messaging would (for local development).
    Publish {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// List jobs, newest first; or retry dead ones, or cancel waiting ones.
    Jobs {
        #[command(subcommand)]
        action: Option<JobsAction>,
        /// Only jobs in this state (pending, running, done, dead, canceled).
        #[arg(long)]
        state: Option<String>,
        /// Only jobs of this kind (e.g. submit-testing-farm).
        #[arg(long)]
        kind: Option<String>,
        /// Only jobs of this queue (koji, testing-farm, distgit, lookup).
        #[arg(long)]
        queue: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum JobsAction {
    /// Make dead jobs due again, with fresh attempts.
    Retry {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<i64>,
    },
    /// Cancel jobs that have not started.
    Cancel {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<i64>,
    },
}

/// The stack every thread gets unless it asks for another size.
///
/// lapin reads the broker's frames on a thread of its own (`lapin-io-loop`,
/// spawned with the default stack), and amq-protocol-types parses AMQP field
/// tables and arrays by recursing once per nesting level, before any of our
/// code sees the message. One 128 KiB frame (RabbitMQ's default `frame_max`)
/// holds headers nested over 26,000 levels deep; parsing them takes about
/// 2.3 KB of stack per level in a release build (60 MB in all), and dropping
/// them recurses as deeply wherever that happens. A 2 MiB stack overflows at
/// about 900 levels and aborts the process (docs/operations.md, "Hostile
/// input"). The reservation is virtual memory: a thread touches only the
/// pages it uses. Unoptimised builds (the tests') take about ten times the
/// stack per level, as lapin's generic I/O loop is compiled unoptimised in
/// this crate.
const THREAD_STACK_BYTES: usize = if cfg!(debug_assertions) {
    2 << 30
} else {
    256 << 20
};

/// Makes [`THREAD_STACK_BYTES`] the default stack of every thread spawned
/// from now on, lapin's and the async runtime's included (neither sets a
/// size of its own), unless `RUST_MIN_STACK` already asks for more.
fn reserve_thread_stacks() {
    let current = std::env::var("RUST_MIN_STACK")
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok());
    if current.is_some_and(|bytes| bytes >= THREAD_STACK_BYTES) {
        return;
    }
    // SAFETY: called first thing in `main`, before this process has any
    // other thread that could read the environment at the same time; the
    // standard library reads RUST_MIN_STACK when it spawns its first thread.
    #[expect(
        unsafe_code,
        reason = "set_var is only sound while the process has one thread, which is the case here"
    )]
    unsafe {
        std::env::set_var("RUST_MIN_STACK", THREAD_STACK_BYTES.to_string());
    }
}

fn main() -> ExitCode {
    reserve_thread_stacks();
    let cli = Cli::parse();
    let settings = match config::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    if let Command::CheckConfig = cli.command {
        print!("{}", settings.redacted_toml());
        eprintln!("configuration is valid");
        return ExitCode::SUCCESS;
    }
    let _sentry = telemetry::init(&settings);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run {
                consumer,
                api,
                jobs,
            } => {
                let roles = if consumer || api || jobs {
                    run::Roles {
                        consumer,
                        api,
                        jobs,
                    }
                } else {
                    run::Roles {
                        consumer: true,
                        api: true,
                        jobs: true,
                    }
                };
                run::run(settings, roles).await.map(|()| true)
            }
            Command::Migrate => run::migrate_only(&settings).await.map(|()| true),
            Command::Replay { files } => {
                let pool = run::database(&settings).await?;
                replay::replay(&settings, pool, &files).await
            }
            Command::Publish { files } => replay::publish(&settings, &files).await,
            Command::Jobs {
                action,
                state,
                kind,
                queue,
                limit,
            } => match action {
                None => {
                    operate::list(
                        &settings,
                        state.as_deref(),
                        kind.as_deref(),
                        queue.as_deref(),
                        limit,
                    )
                    .await
                }
                Some(JobsAction::Retry { ids }) => operate::act(&settings, true, &ids).await,
                Some(JobsAction::Cancel { ids }) => operate::act(&settings, false, &ids).await,
            },
            Command::CheckConfig => Ok(true),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "failed");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
