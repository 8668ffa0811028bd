//! Latency benchmark: how long the service takes from a bus message to the
//! external call it leads to, at a steady 100 events/s, against local
//! stand-ins for Koji, Testing Farm, dist-git and FASJSON.
//!
//! Of the events, `--ours` percent (default 10) are for the service: half
//! of them pull requests opened (the real message from a fork, each its own
//! pull request and head), measured from publishing to the Koji stand-in
//! receiving the scratch build; half Koji `CLOSED` messages for those builds
//! (the shape the stand-in's message plugin sends), measured from publishing
//! to the Testing Farm stand-in receiving the last of the build's test
//! requests. The rest is the traffic the service's bindings also receive and
//! decide nothing about: other people's Koji tasks and builds, tags, flags,
//! pushes (real messages with other ids). The service (`fedora-ci-worker
//! run`, a child process, release build) runs with its default settings
//! except the addresses and credentials of the stand-ins, and without the
//! per-service rate limits (which are there for Fedora's services, not for
//! this machine). The baseline, measured in the same run on the same broker:
//! how long a message takes from publishing to a bare lapin consumer.
//!
//! The service's resident set is sampled every second meanwhile; the run
//! prints the median of the second tenth of the run (after start-up) against
//! the median of the last tenth. A long run with Testing Farm finishing the
//! requests (`--seconds 900 --finish-after 60`) is the soak test of memory
//! staying flat.
//!
//! ```text
//! cargo build --release --bin fedora-ci-worker --bin latency-bench
//! target/release/latency-bench               # 60 s at 100 events/s
//! target/release/latency-bench --smoke       # 5 s, to keep the benchmark working
//! ```

mod common;

// As the service does (worker/src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use clients::standins::distgit::DistGitStandin;
use clients::standins::fas::FasStandin;
use clients::standins::koji::KojiHub;
use clients::standins::testing_farm::TestingFarmStandin;
use events::states::KojiTaskState;
use futures::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{Value, json};

use common::{Database, Vhost};

#[derive(Parser)]
#[command(about = "Latency of fedora-ci-worker from bus message to external call, at 100 events/s")]
struct Args {
    /// How long to send events.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Events per second.
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// Percent of the events that are the service's own (pull requests
    /// opened and Koji CLOSED of their builds, half each); the rest is other
    /// bus traffic.
    #[arg(long, default_value_t = 10)]
    ours: u64,
    /// Testing Farm finishes each request this many seconds after it was
    /// submitted (passed, with its webhook called); 0: never. A soak run
    /// sets it, so that the work outstanding stays bounded as in Fedora.
    #[arg(long, default_value_t = 0)]
    finish_after: u64,
    /// A 5-second run that only checks that the benchmark still works.
    #[arg(long)]
    smoke: bool,
    /// The service binary; default: `fedora-ci-worker` beside this program.
    #[arg(long, value_name = "PATH")]
    worker: Option<PathBuf>,
    #[arg(
        long,
        env = "FCI_BENCH_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pg_url: String,
    #[arg(
        long,
        env = "FCI_BENCH_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672"
    )]
    amqp_url: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.seconds = 5;
    }
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
    let vhost = Vhost::create()?;
    let amqp_url = format!("{}/{}", args.amqp_url.trim_end_matches('/'), vhost.name);
    let database = Database::create(&args.pg_url).await?;
    let result = measure(&args, &worker, &amqp_url, &database).await;
    database.drop().await;
    drop(vhost);
    result
}

async fn measure(
    args: &Args,
    worker: &Path,
    amqp_url: &str,
    database: &Database,
) -> anyhow::Result<()> {
    let koji = KojiHub::start().await?;
    let testing_farm = TestingFarmStandin::start_with_token("tf-token").await?;
    let distgit = DistGitStandin::start_with_token("distgit-token").await?;
    let fas = FasStandin::start().await?;
    let work = tempfile::Builder::new().prefix("fci-latency-").tempdir()?;
    let port = free_port()?;
    let config = work.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r##"
[database]
url = "{db}"

[bus]
amqp_url = "{amqp_url}"

[[bus.bindings]]
queue = "fedora-ci-worker"
exchange = "amq.topic"
routing_keys = ["org.fedoraproject.#"]

[api]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"

[testing_farm]
api_url = "{tf}"
token = "tf-token"
webhook_token = "latency-bench-webhook-token"

[distgit]
api_url = "{distgit}"
token = "distgit-token"

[koji]
hub_url = "{koji}"
auth = "none"

[fas]
url = "{fas}"

[fedora_ci]
# Nothing outside the machine is called: no ELN package list is fetched.
eln_packages_urls = []

[jobs.queues.koji]
concurrency = 4
rate_per_second = 0.0

[jobs.queues.testing-farm]
concurrency = 4
rate_per_second = 0.0

[jobs.queues.distgit]
concurrency = 4
rate_per_second = 0.0

[jobs.queues.lookup]
concurrency = 4
rate_per_second = 0.0
"##,
            db = database.url,
            tf = testing_farm.url(),
            distgit = distgit.url(),
            koji = koji.url(),
            fas = fas.url(),
        ),
    )?;
    let log = work.path().join("service.log");
    let mut service = Service::start(worker, &config, &log)?;
    wait_ready(port, &mut service, &log).await?;

    let connection = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let baseline = baseline_latencies(amqp_url, args).await?;

    let opened = real_message("pagure.pull-request.new-fork.json")?;
    let noise: Vec<Value> = [
        "buildsys.task.state.change-open-scratch.json",
        "buildsys.task.state.change-closed-scratch.json",
        "buildsys.tag.json",
        "buildsys.build.state.change-building.json",
        "buildsys.build.state.change-complete.json",
        "pagure.pull-request.flag.updated.json",
        "pagure.git.receive-branch.json",
    ]
    .iter()
    .map(|file| real_message(file))
    .collect::<anyhow::Result<_>>()?;
    // Every 100 events, which are ours: spread evenly.
    let ours_every = (100 / args.ours.clamp(1, 100)).max(1);
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let events = args.seconds * args.rate;
    let mut pr_sent: HashMap<String, Instant> = HashMap::new(); // source URL -> publish time
    let mut closed_sent: HashMap<i64, Instant> = HashMap::new(); // task -> publish time
    let mut to_close: Vec<i64> = Vec::new();
    let mut seen_submissions = 0;
    let started = Instant::now();
    let mut next = Instant::now();
    let mut pr = 0u64;
    let mut ours = 0u64;
    let pid = service.child.id();
    let mut rss: Vec<u64> = Vec::new(); // kB, one a second
    let mut submitted: Vec<(Instant, String)> = Vec::new(); // Testing Farm requests, as seen
    let mut finished = 0;
    for i in 0..events {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        if i.is_multiple_of(args.rate.max(1)) {
            if let Some(kb) = common::proc_status_kb(pid, "VmRSS") {
                rss.push(kb);
            }
            if args.finish_after > 0 {
                let now = Instant::now();
                let ids = testing_farm.request_ids();
                submitted.extend(ids.into_iter().skip(submitted.len()).map(|id| (now, id)));
                let due = submitted[finished..]
                    .iter()
                    .take_while(|(seen, _)| {
                        now.duration_since(*seen) >= Duration::from_secs(args.finish_after)
                    })
                    .count();
                let batch = &submitted[finished..finished + due];
                for (_, id) in batch {
                    testing_farm.set_state(id, "complete", Some("passed"), Some("all passed"));
                }
                for (status, (_, id)) in
                    futures::future::join_all(batch.iter().map(|(_, id)| testing_farm.notify(id)))
                        .await
                        .into_iter()
                        .zip(batch)
                {
                    if status != Ok(200) {
                        bail!("the service's webhook answered {status:?} for request {id}");
                    }
                }
                finished += due;
            }
        }
        if !i.is_multiple_of(ours_every) {
            publish(&channel, &other(&noise, i)).await?;
            continue;
        }
        ours += 1;
        // Builds submitted since the last tick get their CLOSED in turn.
        let submissions = koji.submissions();
        for submission in &submissions[seen_submissions..] {
            to_close.push(submission.task_id);
        }
        seen_submissions = submissions.len();
        if ours.is_multiple_of(2)
            && let Some(task) = to_close.first().copied()
        {
            to_close.remove(0);
            koji.set_task_state(task, KojiTaskState::Closed, &["x86_64"]);
            let message = json!({
                "id": uuid::Uuid::new_v4().to_string(),
                "topic": "org.fedoraproject.prod.buildsys.task.state.change",
                "headers": {"fedora_messaging_schema": "base.message", "fedora_messaging_severity": 20,
                            "sent-at": chrono::Utc::now().to_rfc3339()},
                "body": koji.task_message(task),
            });
            publish(&channel, &message).await?;
            closed_sent.insert(task, Instant::now());
            continue;
        }
        pr += 1;
        let (message, source) = pull_request(&opened, pr);
        // The pull request exists on dist-git, so its flags are taken.
        distgit.add_pull_request_from_message(&message["body"]["pullrequest"]);
        let sent = Instant::now();
        publish(&channel, &message).await?;
        pr_sent.insert(source, sent);
    }
    let sending = started.elapsed();
    // Let the last ones through.
    tokio::time::sleep(Duration::from_secs(5)).await;
    if let Some(status) = service.child.try_wait()? {
        bail!("the service exited ({status}); see {}", log.display());
    }

    let mut to_build = Vec::new();
    for submission in koji.submissions() {
        if let Some(sent) = pr_sent.get(&submission.src) {
            to_build.push(submission.at.saturating_duration_since(*sent));
        }
    }
    let mut by_task: HashMap<i64, Instant> = HashMap::new();
    for (at, request) in testing_farm.requests_with_times() {
        let Some(task) = request["environments"][0]["variables"]["KOJI_TASK_ID"]
            .as_str()
            .and_then(|t| t.parse::<i64>().ok())
        else {
            continue;
        };
        let last = by_task.entry(task).or_insert(at);
        *last = (*last).max(at);
    }
    let mut to_tests = Vec::new();
    for (task, sent) in &closed_sent {
        if let Some(last) = by_task.get(task) {
            to_tests.push(last.saturating_duration_since(*sent));
        }
    }
    service.stop();
    connection.close(200, "done".into()).await?;

    println!(
        "latency benchmark: {} events in {:.1} s ({} events/s asked; {} pull requests opened, {} Koji CLOSED, the rest other bus traffic; {} Testing Farm requests finished {} s after submission){}",
        events,
        sending.as_secs_f64(),
        args.rate,
        pr_sent.len(),
        closed_sent.len(),
        finished,
        args.finish_after,
        if args.smoke {
            "; smoke run, the numbers mean nothing"
        } else {
            ""
        }
    );
    print_line(
        "baseline",
        "bus: publish -> a bare lapin consumer",
        &baseline,
    );
    print_line(
        "build",
        "pull request opened -> Koji build submitted",
        &to_build,
    );
    print_line(
        "tests",
        "Koji CLOSED -> last Testing Farm request submitted",
        &to_tests,
    );
    let tenth = (rss.len() / 10).max(1);
    if rss.len() >= 3 {
        let median = |part: &[u64]| {
            let mut part = part.to_vec();
            part.sort_unstable();
            part[part.len() / 2] as f64 / 1024.0
        };
        let early = median(&rss[tenth..2 * tenth]);
        let late = median(&rss[rss.len() - tenth..]);
        println!(
            "memory     resident set {early:.1} MB in the second tenth of the run, {late:.1} MB in the last ({:+.1}%), peak {:.1} MB; {} samples, one a second",
            (late / early - 1.0) * 100.0,
            rss.iter().max().copied().unwrap_or_default() as f64 / 1024.0,
            rss.len()
        );
    }
    if to_build.len() < pr_sent.len() || to_tests.len() < closed_sent.len() {
        bail!(
            "not everything arrived: {} of {} builds, {} of {} test sets",
            to_build.len(),
            pr_sent.len(),
            to_tests.len(),
            closed_sent.len()
        );
    }
    let p99 = |v: &[Duration]| percentile(v, 0.99);
    println!(
        "ratio      p99 {:.1}x (build) and {:.1}x (tests) of the bus alone; target: p99 under 100 ms: {}",
        ratio(p99(&to_build), p99(&baseline)),
        ratio(p99(&to_tests), p99(&baseline)),
        if p99(&to_build) < Duration::from_millis(100)
            && p99(&to_tests) < Duration::from_millis(100)
        {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-6)
}

fn print_line(name: &str, what: &str, samples: &[Duration]) {
    println!(
        "{name:<10} {:>5} samples  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  ({what})",
        samples.len(),
        percentile(samples, 0.50).as_secs_f64() * 1000.0,
        percentile(samples, 0.99).as_secs_f64() * 1000.0,
        samples
            .iter()
            .max()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1000.0,
    );
}

fn percentile(samples: &[Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an index into a short list"
    )]
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// The bus alone at the same rate: publish to a queue of the same broker
/// and time the delivery to a bare consumer.
async fn baseline_latencies(amqp_url: &str, args: &Args) -> anyhow::Result<Vec<Duration>> {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.name().clone(),
            "amq.topic".into(),
            "bench.latency".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let consumer_channel = connection.create_channel().await?;
    let mut consumer = consumer_channel
        .basic_consume(
            queue.name().clone(),
            "latency-baseline".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let count = (args.rate * args.seconds.min(10)) as usize;
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let receiver = tokio::spawn(async move {
        let mut arrivals = Vec::with_capacity(count);
        while arrivals.len() < count {
            match tokio::time::timeout(Duration::from_secs(10), consumer.next()).await {
                Ok(Some(Ok(delivery))) => {
                    let _ = delivery.ack(BasicAckOptions::default()).await;
                    arrivals.push(Instant::now());
                }
                _ => break,
            }
        }
        arrivals
    });
    let mut sent = Vec::with_capacity(count);
    let mut next = Instant::now();
    for i in 0..count {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        sent.push(Instant::now());
        channel
            .basic_publish(
                "amq.topic".into(),
                "bench.latency".into(),
                BasicPublishOptions::default(),
                format!("{{\"n\": {i}}}").as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?
            .await?;
    }
    let arrivals = receiver.await?;
    connection.close(200, "done".into()).await?;
    Ok(sent
        .iter()
        .zip(arrivals.iter())
        .map(|(s, a)| a.saturating_duration_since(*s))
        .collect())
}

/// Other bus traffic: a real message with its ids changed, so that each is
/// new to the inbox and names nothing of ours.
fn other(noise: &[Value], i: u64) -> Value {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "an index into a short list"
    )]
    let mut message = noise[(i as usize) % noise.len()].clone();
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    let body = &mut message["body"];
    let n = 10_000_000 + i64::try_from(i).unwrap_or(0);
    for key in ["id", "build_id", "task_id"] {
        if body.get(key).is_some_and(Value::is_i64) {
            body[key] = json!(n);
        }
    }
    if body.pointer("/info/id").is_some() {
        body["info"]["id"] = json!(n);
    }
    message
}

/// A pull request of its own: the real message with another number, fork
/// owner and head. Returns the message and the source URL Koji will get.
fn pull_request(opened: &Value, n: u64) -> (Value, String) {
    let mut message = opened.clone();
    let head = format!("{:040x}", n);
    let owner = format!("bench{n}");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    let pr = &mut message["body"]["pullrequest"];
    pr["id"] = json!(n);
    pr["commit_stop"] = json!(head);
    pr["full_url"] = json!(format!(
        "https://src.fedoraproject.org/rpms/optee_os/pull-request/{n}"
    ));
    pr["repo_from"]["full_url"] = json!(format!(
        "https://src.fedoraproject.org/fork/{owner}/rpms/optee_os"
    ));
    pr["repo_from"]["fullname"] = json!(format!("forks/{owner}/rpms/optee_os"));
    pr["repo_from"]["user"]["name"] = json!(owner);
    let source =
        format!("git+https://src.fedoraproject.org/forks/{owner}/rpms/optee_os.git#{head}");
    (message, source)
}

fn real_message(file: &str) -> anyhow::Result<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/bus")
        .join(file);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let envelope = events::parse_serialized(&text)?
        .into_iter()
        .next()
        .context("no message")??;
    Ok(envelope.to_serialized())
}

/// Publish as fedora-messaging does, with publisher confirms.
async fn publish(channel: &lapin::Channel, message: &Value) -> anyhow::Result<()> {
    let mut headers = FieldTable::default();
    if let Some(map) = message["headers"].as_object() {
        for (key, value) in map {
            let value = match value {
                Value::String(s) => AMQPValue::LongString(s.as_str().into()),
                Value::Number(n) => AMQPValue::LongLongInt(n.as_i64().unwrap_or(0)),
                Value::Bool(b) => AMQPValue::Boolean(*b),
                _ => continue,
            };
            headers.insert(key.as_str().into(), value);
        }
    }
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_delivery_mode(2)
        .with_message_id(message["id"].as_str().unwrap_or_default().into())
        .with_headers(headers);
    let body = events::python_json_dumps(&message["body"]);
    channel
        .basic_publish(
            "amq.topic".into(),
            message["topic"].as_str().unwrap_or_default().into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            properties,
        )
        .await?
        .await?;
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Service {
    child: Child,
}

impl Service {
    fn start(worker: &Path, config: &Path, log: &Path) -> anyhow::Result<Self> {
        let log_file = std::fs::File::create(log)?;
        let child = Command::new(worker)
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", worker.display()))?;
        Ok(Service { child })
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_ready(port: u16, service: &mut Service, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("http://127.0.0.1:{port}/api/readyz");
    let client = reqwest::Client::new();
    while Instant::now() < deadline {
        if let Some(status) = service.child.try_wait()? {
            bail!("the service exited ({status}); see {}", log.display());
        }
        if client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "the service was not ready within 60 s; see {}",
        log.display()
    )
}
