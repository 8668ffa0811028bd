//! Ingest benchmark: how fast the service drains a backlog from the bus into
//! its inbox, against a bare lapin consume-parse-ack loop on the same broker,
//! measured in the same run.
//!
//! Both consumers read the same N messages (real message shapes from
//! `tests/data/bus/`, each with its own id), preloaded into two queues of a
//! vhost made for the run, with the same prefetch. The baseline parses each
//! body as JSON and acknowledges it; the service (`fedora-ci-worker run
//! --consumer`, a child process) records every message in PostgreSQL before
//! acknowledging it. The run prints both rates, their ratio and the service's
//! peak resident memory, and fails only if a message is lost or duplicated.
//!
//! Then the Python pipeline that does the same work the way Packit Service
//! does (`bench/python/celery_ingest.py`): a fedora-messaging consumer hands
//! each message to Celery on the same RabbitMQ, and a Celery worker records it
//! in PostgreSQL, deduplicated. It reads the first `--python-messages` of a
//! fourth queue (it is much slower, and a rate is a rate); the service's rate
//! is printed as a multiple of its rate. It needs a Python with
//! `fedora-messaging`, `celery` and `psycopg` (`--python`, or
//! `$FCI_BENCH_PYTHON`; `scripts/bench` installs them in a virtualenv).
//!
//! ```text
//! cargo build --release --bin fedora-ci-worker --bin ingest-bench
//! target/release/ingest-bench                  # 100,000 messages
//! target/release/ingest-bench --smoke          # 2,000 messages, to keep the benchmark working
//! ```

mod common;

// As the service does (worker/src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use futures::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use sqlx::Connection as _;

use common::{Database, Vhost};

#[derive(Parser)]
#[command(
    about = "Ingest rate of fedora-ci-worker against a bare lapin loop, same broker, same run"
)]
struct Args {
    /// Messages in the backlog.
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    /// A short run that only checks that the benchmark still works (2,000 messages).
    #[arg(long)]
    smoke: bool,
    /// Prefetch (unacknowledged messages in flight) for both consumers.
    #[arg(long, default_value_t = 1000)]
    prefetch: u16,
    /// Messages the Python pipeline reads (smoke: 200).
    #[arg(long, default_value_t = 20_000)]
    python_messages: usize,
    /// The Python with fedora-messaging, celery and psycopg.
    #[arg(long, env = "FCI_BENCH_PYTHON", default_value = "python3")]
    python: PathBuf,
    /// The service binary; default: `fedora-ci-worker` beside this program.
    #[arg(long, value_name = "PATH")]
    worker: Option<PathBuf>,
    /// Directory of real messages in serialized form.
    #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/bus"))]
    data: PathBuf,
    /// A PostgreSQL database on the server where the run may create its own.
    #[arg(
        long,
        env = "FCI_BENCH_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pg_url: String,
    /// The broker, without a vhost; the run makes its own vhost there.
    #[arg(
        long,
        env = "FCI_BENCH_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672"
    )]
    amqp_url: String,
}

const SERVICE_QUEUE: &str = "fedora-ci-worker";
const BASELINE_QUEUE: &str = "bench-baseline";
const BATCHED_QUEUE: &str = "bench-baseline-batched";
const PYTHON_QUEUE: &str = "bench-python";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.messages = 2_000;
        args.python_messages = 200;
    }
    args.python_messages = args.python_messages.min(args.messages);
    let worker = match &args.worker {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this program has no directory")?
            .join("fedora-ci-worker"),
    };
    if !worker.is_file() {
        bail!(
            "{} not found: build it first (cargo build --release --bin fedora-ci-worker), or pass --worker",
            worker.display()
        );
    }
    let work = tempfile::Builder::new().prefix("fci-bench-").tempdir()?;

    let vhost = Vhost::create()?;
    let amqp_url = format!("{}/{}", args.amqp_url.trim_end_matches('/'), vhost.name);
    let database = Database::create(&args.pg_url).await?;
    let result = measure(&args, &worker, work.path(), &amqp_url, &database).await;
    database.drop().await;
    drop(vhost);
    result
}

async fn measure(
    args: &Args,
    worker: &Path,
    work: &Path,
    amqp_url: &str,
    database: &Database,
) -> anyhow::Result<()> {
    let (backlog, average_body) = write_backlog(&args.data, args.messages, work)?;
    println!(
        "ingest benchmark: {} messages (real shapes from {}, {} bytes average body), prefetch {}{}",
        args.messages,
        args.data.display(),
        average_body,
        args.prefetch,
        if args.smoke {
            "; smoke run, the numbers mean nothing"
        } else {
            ""
        }
    );

    declare_queues(amqp_url).await?;
    let config = work.join("config.toml");
    std::fs::write(
        &config,
        service_config(&database.url, amqp_url, args.prefetch),
    )?;
    let log = work.join("service.log");
    run_worker(worker, &config, &["migrate"], &log)?;

    let started = Instant::now();
    run_worker(
        worker,
        &config,
        &["publish", &backlog.display().to_string()],
        &log,
    )?;
    let publish_time = started.elapsed();
    for queue in [BASELINE_QUEUE, BATCHED_QUEUE, SERVICE_QUEUE, PYTHON_QUEUE] {
        let waiting = queue_depth(amqp_url, queue).await?;
        if waiting as usize != args.messages {
            bail!(
                "queue {queue} holds {waiting} messages after publishing {}",
                args.messages
            );
        }
    }
    println!(
        "published  {:>7} in {:>6.2} s  {:>8.0} msg/s  (fedora-ci-worker publish, confirmed, into four queues)",
        args.messages,
        publish_time.as_secs_f64(),
        args.messages as f64 / publish_time.as_secs_f64()
    );

    let baseline = bare_loop(amqp_url, BASELINE_QUEUE, args.messages, args.prefetch, 1).await?;
    let baseline_rate = args.messages as f64 / baseline.as_secs_f64();
    println!(
        "baseline   {:>7} in {:>6.2} s  {:>8.0} msg/s  (lapin: consume, parse the JSON body, ack each)",
        args.messages,
        baseline.as_secs_f64(),
        baseline_rate
    );
    let batch = usize::from(args.prefetch / 2).max(1);
    let batched = bare_loop(amqp_url, BATCHED_QUEUE, args.messages, args.prefetch, batch).await?;
    let batched_rate = args.messages as f64 / batched.as_secs_f64();
    println!(
        "batched    {:>7} in {:>6.2} s  {:>8.0} msg/s  (the same loop, one multiple-ack per {batch} messages)",
        args.messages,
        batched.as_secs_f64(),
        batched_rate
    );

    let service = service(worker, &config, &log, database, args.messages).await?;
    let service_rate = args.messages as f64 / service.elapsed.as_secs_f64();
    println!(
        "service    {:>7} in {:>6.2} s  {:>8.0} msg/s  (fedora-ci-worker run --consumer: record in PostgreSQL, then ack; first row after {:.2} s)",
        args.messages,
        service.elapsed.as_secs_f64(),
        service_rate,
        service.first_row.as_secs_f64()
    );
    let leftover = queue_depth(amqp_url, SERVICE_QUEUE).await?;
    if leftover != 0 {
        bail!(
            "{leftover} messages are back in the queue after the service stopped: some were never acknowledged"
        );
    }
    let ratio = service_rate / baseline_rate;
    println!("ratio      {ratio:.2} of the baseline rate (target: at least 0.50)");
    println!(
        "           {:.2} of the batched-ack loop's rate",
        service_rate / batched_rate
    );
    println!(
        "memory     {:.1} MB peak resident set of the service (VmHWM) over a backlog of {} (target: under 100 MB)",
        service.peak_rss_kb as f64 / 1024.0,
        args.messages
    );

    let python = python_pipeline(args, amqp_url, database)?;
    let mut db = sqlx::PgConnection::connect(&database.url).await?;
    let (rows, distinct): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT message_id) FROM python_inbox WHERE topic <> 'ready'",
    )
    .fetch_one(&mut db)
    .await?;
    db.close().await?;
    if rows as usize != args.python_messages || distinct != rows {
        bail!(
            "the Python pipeline's table holds {rows} rows ({distinct} distinct ids) for {} messages",
            args.python_messages
        );
    }
    let python_rate = args.python_messages as f64 / python.seconds;
    println!(
        "python     {:>7} in {:>6.2} s  {:>8.0} msg/s  (fedora-messaging consumer -> Celery on RabbitMQ -> worker records in PostgreSQL, as Packit Service does; all consumed after {:.2} s)",
        args.python_messages, python.seconds, python_rate, python.consumed_seconds
    );
    println!(
        "ratio      {:.1}x the Python pipeline's rate (target: at least 10x)",
        service_rate / python_rate
    );
    Ok(())
}

struct PythonRun {
    messages: usize,
    seconds: f64,
    consumed_seconds: f64,
}

/// `bench/python/celery_ingest.py` on the first `python_messages` of its
/// queue (the caller checks the rows it wrote).
fn python_pipeline(args: &Args, amqp_url: &str, database: &Database) -> anyhow::Result<PythonRun> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/celery_ingest.py");
    let output = Command::new(&args.python)
        .arg(&script)
        .args([amqp_url, &database.url, PYTHON_QUEUE])
        .arg(args.python_messages.to_string())
        .arg(format!("--prefetch={}", args.prefetch))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {}", args.python.display()))?;
    if !output.status.success() {
        bail!(
            "the Python pipeline failed ({}); it needs fedora-messaging, celery and psycopg in {} \
             (scripts/bench installs them)",
            output.status,
            args.python.display()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rfind(|line| line.starts_with('{'))
        .context("the Python pipeline printed no result")?;
    let value: serde_json::Value = serde_json::from_str(line)
        .with_context(|| format!("the Python pipeline's result: {line}"))?;
    let number = |key: &str| {
        value[key]
            .as_f64()
            .with_context(|| format!("no {key} in the Python pipeline's result: {line}"))
    };
    let run = PythonRun {
        messages: number("messages")? as usize,
        seconds: number("seconds")?,
        consumed_seconds: number("consumed_seconds")?,
    };
    if run.messages != args.python_messages {
        bail!(
            "the Python pipeline read {} messages, not {}",
            run.messages,
            args.python_messages
        );
    }
    Ok(run)
}

/// Writes `count` messages as JSON Lines: the real messages of `data`, in
/// turn, each copy with a fresh id. Returns the file and the average body size.
fn write_backlog(data: &Path, count: usize, dir: &Path) -> anyhow::Result<(PathBuf, usize)> {
    let mut shapes = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(data)
        .with_context(|| format!("reading {}", data.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for entry in events::parse_serialized(&text)
            .with_context(|| format!("{} is not a serialized message", file.display()))?
        {
            shapes.push(entry.with_context(|| file.display().to_string())?);
        }
    }
    if shapes.is_empty() {
        bail!("no messages in {}", data.display());
    }
    let path = dir.join("backlog.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut body_bytes = 0;
    for i in 0..count {
        let mut envelope = shapes[i % shapes.len()].clone();
        envelope.id = events::MessageId(uuid::Uuid::new_v4().to_string());
        body_bytes +=
            events::python_json_dumps(&serde_json::Value::Object(envelope.body.clone())).len();
        serde_json::to_writer(&mut out, &envelope.to_serialized())?;
        std::io::Write::write_all(&mut out, b"\n")?;
    }
    std::io::Write::flush(&mut out)?;
    Ok((path, body_bytes / count.max(1)))
}

fn service_config(database_url: &str, amqp_url: &str, prefetch: u16) -> String {
    format!(
        r##"
[database]
url = "{database_url}"

[bus]
amqp_url = "{amqp_url}"

[bus.qos]
prefetch_count = {prefetch}

[[bus.bindings]]
queue = "{SERVICE_QUEUE}"
exchange = "amq.topic"
routing_keys = ["#"]

[api]
listen = "127.0.0.1:0"
"##
    )
}

/// Both queues, bound to every topic, declared as the service declares its own.
async fn declare_queues(amqp_url: &str) -> anyhow::Result<()> {
    let connection = connect(amqp_url).await?;
    let channel = connection.create_channel().await?;
    for queue in [BASELINE_QUEUE, BATCHED_QUEUE, SERVICE_QUEUE, PYTHON_QUEUE] {
        channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                queue.into(),
                "amq.topic".into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    connection.close(200, "declared".into()).await?;
    Ok(())
}

async fn queue_depth(amqp_url: &str, queue: &str) -> anyhow::Result<u32> {
    let connection = connect(amqp_url).await?;
    let channel = connection.create_channel().await?;
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    connection.close(200, "counted".into()).await?;
    Ok(declared.message_count())
}

async fn connect(amqp_url: &str) -> anyhow::Result<Connection> {
    Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .with_context(|| format!("connecting to {amqp_url}"))
}

/// The bare loop: consume, parse the body as a JSON object, acknowledge.
/// With `ack_every` above 1, one multiple-ack covers that many deliveries.
async fn bare_loop(
    amqp_url: &str,
    queue: &str,
    count: usize,
    prefetch: u16,
    ack_every: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let connection = connect(amqp_url).await?;
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "bench-baseline".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut seen = 0;
    while seen < count {
        let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .context("the baseline consumer waited 30 s for a message")?
            .context("the broker ended the baseline consumer")??;
        let body: serde_json::Value =
            serde_json::from_slice(&delivery.data).context("a body that is not JSON")?;
        if !body.is_object() {
            bail!("a body that is not a JSON object");
        }
        seen += 1;
        if ack_every == 1 {
            delivery.ack(BasicAckOptions::default()).await?;
        } else if seen % ack_every == 0 || seen == count {
            delivery.ack(BasicAckOptions { multiple: true }).await?;
        }
    }
    let elapsed = started.elapsed();
    connection.close(200, "done".into()).await?;
    Ok(elapsed)
}

struct ServiceRun {
    elapsed: Duration,
    first_row: Duration,
    peak_rss_kb: u64,
}

/// Start the service's consumer on the preloaded queue, wait until every
/// message is in the inbox, stop it with SIGTERM and check that it exits 0.
async fn service(
    worker: &Path,
    config: &Path,
    log: &Path,
    database: &Database,
    count: usize,
) -> anyhow::Result<ServiceRun> {
    let mut db = sqlx::PgConnection::connect(&database.url).await?;
    let log_file = std::fs::OpenOptions::new().append(true).open(log)?;
    let started = Instant::now();
    let mut child = Command::new(worker)
        .arg("--config")
        .arg(config)
        .args(["run", "--consumer"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("starting {}", worker.display()))?;
    let pid = child.id();
    let mut first_row = None;
    let result = loop {
        if let Some(status) = child.try_wait()? {
            break Err(anyhow::anyhow!(
                "the service exited ({status}) before recording everything; see {}",
                log.display()
            ));
        }
        let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&mut db)
            .await?;
        if recorded > 0 && first_row.is_none() {
            first_row = Some(started.elapsed());
        }
        if recorded as usize >= count {
            break Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(600) {
            break Err(anyhow::anyhow!(
                "after 600 s the inbox holds {recorded} of {count} messages"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let peak_rss_kb = common::proc_status_kb(pid, "VmHWM").unwrap_or(0);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = child.wait()?;
    let elapsed = result?;
    if !status.success() {
        bail!(
            "the service exited with {status} after SIGTERM; see {}",
            log.display()
        );
    }
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT message_id) FROM events")
            .fetch_one(&mut db)
            .await?;
    if rows as usize != count || distinct != rows {
        bail!("the inbox holds {rows} rows ({distinct} distinct ids) for {count} messages");
    }
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE status = 'dead'")
        .fetch_one(&mut db)
        .await?;
    if dead != 0 {
        bail!("{dead} real messages were recorded as dead; see the reason column");
    }
    db.close().await?;
    Ok(ServiceRun {
        elapsed,
        first_row: first_row.unwrap_or(elapsed),
        peak_rss_kb,
    })
}

fn run_worker(worker: &Path, config: &Path, args: &[&str], log: &Path) -> anyhow::Result<()> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let status = Command::new(worker)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .status()
        .with_context(|| format!("starting {}", worker.display()))?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        bail!(
            "fedora-ci-worker {} failed ({status}):\n{text}",
            args.join(" ")
        );
    }
    Ok(())
}
