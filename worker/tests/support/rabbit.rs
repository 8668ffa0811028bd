//! RabbitMQ: vhosts on the shared local broker, private nodes that a test may
//! stop and start, and publishing helpers (lapin, publisher confirms).

use std::collections::VecDeque;
use std::fs::File;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldArray, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use lapin::{Confirmation, PublisherConfirm};
use tempfile::TempDir;

use super::free_port;
use super::process::{existing_or, is_root, run_checked, secs, tail_file, try_run};

/// Where the shared broker listens, and as whom we log in.
#[derive(Debug, Clone)]
pub struct AmqpHost {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

impl AmqpHost {
    /// `host:port`
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `amqp://user:password@host:port/<vhost, percent-encoded>`
    pub fn url(&self, vhost: &str) -> String {
        format!(
            "amqp://{}:{}@{}:{}/{}",
            percent_encode(&self.user),
            percent_encode(&self.password),
            self.host,
            self.port,
            percent_encode(vhost)
        )
    }
}

/// The shared broker: `FCI_TEST_AMQP_HOST` (`host:port` or `user:password@host:port`),
/// else 127.0.0.1:5672 as guest/guest.
///
/// Vhosts are managed with `rabbitmqctl` on this machine (`FCI_TEST_RABBITMQCTL`,
/// else /usr/sbin/rabbitmqctl as root, else `rabbitmqctl` on PATH), against node
/// `FCI_TEST_RABBITMQ_NODE` when set, else the tool's default node.
pub fn local_amqp_host() -> AmqpHost {
    let spec = std::env::var("FCI_TEST_AMQP_HOST")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "127.0.0.1:5672".to_string());
    let (credentials, hostport) = match spec.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, spec.as_str()),
    };
    let (user, password) = match credentials.and_then(|c| c.split_once(':')) {
        Some((u, p)) => (u.to_string(), p.to_string()),
        None => ("guest".to_string(), "guest".to_string()),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse()
                .unwrap_or_else(|e| panic!("FCI_TEST_AMQP_HOST={spec:?}: bad port: {e}")),
        ),
        None => (hostport.to_string(), 5672),
    };
    AmqpHost {
        host,
        port,
        user,
        password,
    }
}

/// A vhost of its own on the shared broker, with full permissions for the
/// login user, so the test has its own amq.topic. Deleted on Drop.
#[derive(Debug)]
pub struct TestVhost {
    pub name: String,
    pub amqp_url: String,
}

/// Makes a [`TestVhost`] named `fci_test_<random>` (two rabbitmqctl calls,
/// about a second each; blocks the calling thread).
pub fn fresh_vhost() -> TestVhost {
    let host = local_amqp_host();
    if let Err(e) = tcp_probe(&host.addr(), Duration::from_secs(3)) {
        panic!(
            "RabbitMQ at {} is not reachable: {e}\nstart it with: rabbitmq-server -detached \
             (or point FCI_TEST_AMQP_HOST at a running broker)",
            host.addr()
        );
    }
    let name = format!("fci_test_{}", uuid::Uuid::new_v4().simple());
    run_checked(
        local_ctl().args(["add_vhost", &name]),
        &format!("rabbitmqctl add_vhost {name}"),
        CTL_TIMEOUT,
    );
    let vhost = TestVhost {
        amqp_url: host.url(&name),
        name,
    };
    run_checked(
        local_ctl().args([
            "set_permissions",
            "-p",
            &vhost.name,
            &host.user,
            ".*",
            ".*",
            ".*",
        ]),
        &format!("rabbitmqctl set_permissions -p {}", vhost.name),
        CTL_TIMEOUT,
    );
    vhost
}

impl TestVhost {
    /// Every queue of the vhost with its messages ready for delivery and its
    /// deliveries not yet acknowledged, as the broker counts them now
    /// (`rabbitmqctl list_queues`, which asks each queue). Blocks the calling
    /// thread for about a second.
    pub fn queue_depths(&self) -> Vec<(String, u64, u64)> {
        let out = run_checked(
            local_ctl()
                .args(["list_queues", "-p", &self.name])
                .args(QUEUE_DEPTHS),
            &format!("rabbitmqctl list_queues -p {}", self.name),
            CTL_TIMEOUT,
        );
        parse_queue_depths(&out.stdout)
    }

    /// One queue's messages ready for delivery and delivered but not yet
    /// acknowledged; `None` while the queue does not exist.
    pub fn queue_counts(&self, queue: &str) -> Option<(u64, u64)> {
        self.queue_depths()
            .into_iter()
            .find(|(name, _, _)| name == queue)
            .map(|(_, ready, unacked)| (ready, unacked))
    }

    /// Whether every queue of the vhost is empty with nothing unacknowledged:
    /// each delivery was acknowledged, and none is waiting to be redelivered.
    pub fn drained(&self) -> bool {
        all_drained(&self.queue_depths())
    }
}

/// The `rabbitmqctl list_queues` arguments that [`parse_queue_depths`] reads.
const QUEUE_DEPTHS: [&str; 5] = [
    "--quiet",
    "--no-table-headers",
    "name",
    "messages_ready",
    "messages_unacknowledged",
];

/// `name ready unacknowledged` lines, as [`QUEUE_DEPTHS`] asks for them.
fn parse_queue_depths(listing: &str) -> Vec<(String, u64, u64)> {
    listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next()?.to_owned();
            let ready = fields.next()?.parse().ok()?;
            let unacked = fields.next()?.parse().ok()?;
            Some((name, ready, unacked))
        })
        .collect()
}

/// At least one queue, and every queue empty with nothing unacknowledged.
fn all_drained(depths: &[(String, u64, u64)]) -> bool {
    !depths.is_empty()
        && depths
            .iter()
            .all(|(_, ready, unacked)| *ready == 0 && *unacked == 0)
}

impl Drop for TestVhost {
    fn drop(&mut self) {
        match try_run(local_ctl().args(["delete_vhost", &self.name]), CTL_TIMEOUT) {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "[support] rabbitmqctl delete_vhost {} failed: {}",
                self.name,
                out.stderr.trim()
            ),
            Err(e) => eprintln!("[support] rabbitmqctl delete_vhost {}: {e}", self.name),
        }
    }
}

const CTL_TIMEOUT: Duration = Duration::from_secs(60);

/// rabbitmqctl for the shared broker.
fn local_ctl() -> Command {
    let program = match std::env::var("FCI_TEST_RABBITMQCTL") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        // The Debian wrapper runs the tool as the rabbitmq user, with its cookie.
        _ if is_root() => existing_or("/usr/sbin/rabbitmqctl", "rabbitmqctl"),
        _ => PathBuf::from("rabbitmqctl"),
    };
    let mut cmd = Command::new(program);
    // The wrapper cd's to /var/lib/rabbitmq itself; keep ours harmless too.
    cmd.current_dir("/");
    if let Ok(node) = std::env::var("FCI_TEST_RABBITMQ_NODE")
        && !node.is_empty()
    {
        cmd.args(["-n", &node]);
    }
    cmd
}

fn tcp_probe(addr: &str, timeout: Duration) -> Result<(), String> {
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {addr}: {e}"))?
        .collect();
    let mut last = format!("{addr} resolves to nothing");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("TCP connect to {a}: {e}"),
        }
    }
    Err(last)
}

/// A RabbitMQ node of its own: unique node name, AMQP on a free 127.0.0.1
/// port, its own distribution port, data, log and config dirs and Erlang
/// cookie (in its own HOME), no plugins. Killed on Drop.
///
/// All methods block the calling thread (rabbitmqctl takes about a second).
pub struct PrivateRabbit {
    dir: TempDir,
    node: String,
    port: u16,
    dist_port: u16,
    child: Mutex<Child>,
    startup: Duration,
}

impl PrivateRabbit {
    /// Starts the node and waits until it accepts AMQP connections.
    pub fn start() -> Self {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("fci-rmq-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir for RabbitMQ: {e}"));
        let port = free_port();
        let mut dist_port = free_port();
        while dist_port == port {
            dist_port = free_port();
        }
        let short = uuid::Uuid::new_v4().simple().to_string();
        let node = format!("fci_{}@localhost", &short[..12]);
        for sub in ["home", "mnesia", "log"] {
            std::fs::create_dir_all(dir.path().join(sub))
                .unwrap_or_else(|e| panic!("cannot create {sub} in {}: {e}", dir.path().display()));
        }
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text)
                .unwrap_or_else(|e| panic!("cannot write {name}: {e}"));
        };
        write("enabled_plugins", "[].\n");
        // Sourced instead of /etc/rabbitmq/rabbitmq-env.conf (which names the system node).
        write("rabbitmq-env.conf", "");
        // Replaces /etc/rabbitmq/rabbitmq.conf, whose listener is the system port.
        write(
            "rabbitmq.conf",
            &format!(
                "listeners.tcp.1 = 127.0.0.1:{port}\n\
                 loopback_users.guest = true\n\
                 disk_free_limit.absolute = 10MB\n\
                 log.file.level = info\n"
            ),
        );
        let server_out = dir.path().join("server.out");
        let out = File::create(&server_out)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", server_out.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone a file handle: {e}"));

        let program = rabbit_sbin().join("rabbitmq-server");
        let mut cmd = Command::new(&program);
        Self::base_env(&mut cmd, dir.path(), &node);
        cmd.env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.path().join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.path().join("log"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                dir.path().join("enabled_plugins"),
            )
            .env("RABBITMQ_CONFIG_FILE", dir.path().join("rabbitmq.conf"))
            // Makes the start script exec the Erlang VM instead of staying as a
            // shell parent: our child *is* the node, so killing it stops it all.
            .env("RUNNING_UNDER_SYSTEMD", "true")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "could not start {}: {e} (is the rabbitmq-server package installed? \
                 FCI_TEST_RABBITMQ_SBIN names another directory)",
                program.display()
            )
        });
        let mut rabbit = PrivateRabbit {
            dir,
            node,
            port,
            dist_port,
            child: Mutex::new(child),
            startup: Duration::ZERO,
        };
        rabbit.await_amqp(Duration::from_secs(120));
        rabbit.startup = started.elapsed();
        eprintln!(
            "[support] private RabbitMQ node {} on port {} ready in {:.2}s",
            rabbit.node,
            rabbit.port,
            rabbit.startup.as_secs_f64()
        );
        rabbit
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dist_port(&self) -> u16 {
        self.dist_port
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// How long [`start`](Self::start) took until the node answered.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// `rabbitmqctl -n <node> stop_app`: the broker goes away (connections are
    /// closed, the port stops listening), the Erlang node stays.
    pub fn stop_app(&self) {
        self.ctl(&["stop_app"]);
    }

    /// `rabbitmqctl -n <node> start_app`, then waits until AMQP answers again.
    pub fn start_app(&self) {
        self.ctl(&["start_app"]);
        self.await_amqp(Duration::from_secs(60));
    }

    /// Every queue of the node's default vhost with its messages ready and its
    /// deliveries not yet acknowledged.
    pub fn queue_depths(&self) -> Vec<(String, u64, u64)> {
        let mut args = vec!["list_queues"];
        args.extend(QUEUE_DEPTHS);
        parse_queue_depths(&self.ctl(&args))
    }

    /// Whether every queue is empty with nothing unacknowledged.
    pub fn drained(&self) -> bool {
        all_drained(&self.queue_depths())
    }

    /// Runs `rabbitmqctl -n <node> <args>` and returns its stdout; panics with
    /// its stderr when it fails. E.g. `ctl(&["list_queues", "name", "messages"])`.
    pub fn ctl(&self, args: &[&str]) -> String {
        let mut cmd = self.ctl_command();
        cmd.args(args);
        run_checked(
            &mut cmd,
            &format!("rabbitmqctl -n {} {}", self.node, args.join(" ")),
            CTL_TIMEOUT,
        )
        .stdout
    }

    /// The node's log file and console output, for failure messages.
    pub fn log(&self) -> String {
        let log = self
            .dir
            .path()
            .join("log")
            .join(format!("{}.log", self.node));
        format!(
            "--- {} ---\n{}\n--- console ---\n{}",
            log.display(),
            tail_file(&log, 60),
            tail_file(&self.dir.path().join("server.out"), 30)
        )
    }

    fn lock_child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn ctl_command(&self) -> Command {
        let mut cmd = Command::new(rabbit_sbin().join("rabbitmqctl"));
        Self::base_env(&mut cmd, self.dir.path(), &self.node);
        cmd.current_dir(self.dir.path()).args(["-n", &self.node]);
        cmd
    }

    /// What the server and rabbitmqctl share: HOME (hence the Erlang cookie,
    /// which Erlang creates there on first start), the env file, the node name.
    fn base_env(cmd: &mut Command, dir: &std::path::Path, node: &str) {
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("RABBITMQ_") || k == "NOTIFY_SOCKET" {
                cmd.env_remove(&key);
            }
        }
        cmd.env("HOME", dir.join("home"))
            .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_NODENAME", node)
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_FLAGS", "-kernel inet_dist_use_interface {127,0,0,1}");
    }

    /// Polls until the AMQP port accepts TCP, then asks the node to confirm with
    /// `await_startup`. Panics with the node's log if it dies or takes too long.
    fn await_amqp(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let addr = format!("127.0.0.1:{}", self.port);
        loop {
            // Take the status first: panicking while holding the lock would
            // poison it (Drop copes with that too, but needs no such help).
            let exited = self.lock_child().try_wait().ok().flatten();
            if let Some(status) = exited {
                panic!(
                    "private RabbitMQ node {} exited ({status}) while starting\n{}",
                    self.node,
                    self.log()
                );
            }
            if tcp_probe(&addr, Duration::from_millis(500)).is_ok() {
                break;
            }
            if Instant::now() >= deadline {
                panic!(
                    "private RabbitMQ node {} did not listen on {addr} within {}s\n{}",
                    self.node,
                    secs(timeout),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut cmd = self.ctl_command();
        cmd.args(["await_startup", "--timeout", "60"]);
        match try_run(&mut cmd, Duration::from_secs(90)) {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "rabbitmqctl -n {} await_startup failed ({})\n--- stderr ---\n{}\n--- stdout ---\n{}\n{}",
                self.node,
                out.status,
                out.stderr.trim_end(),
                out.stdout.trim_end(),
                self.log()
            ),
            Err(e) => panic!(
                "rabbitmqctl -n {} await_startup: {e}\n{}",
                self.node,
                self.log()
            ),
        }
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        // The child is the Erlang VM itself (see RUNNING_UNDER_SYSTEMD above):
        // SIGKILL stops the whole node; its helper processes exit with it and
        // epmd drops the registration when the connection closes.
        let mut child = self.lock_child();
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `FCI_TEST_RABBITMQ_SBIN`, else /usr/lib/rabbitmq/bin (the real scripts, not
/// the Debian wrappers that switch to the rabbitmq user and its cookie).
fn rabbit_sbin() -> PathBuf {
    match std::env::var("FCI_TEST_RABBITMQ_SBIN") {
        Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("/usr/lib/rabbitmq/bin"),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------- publishing

/// Connects, panicking with a readable message (within 15 s).
pub async fn amqp_connect(amqp_url: &str) -> Connection {
    match tokio::time::timeout(
        Duration::from_secs(15),
        Connection::connect(amqp_url, ConnectionProperties::default()),
    )
    .await
    {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!("cannot connect to AMQP {amqp_url}: {e}"),
        Err(_) => panic!("cannot connect to AMQP {amqp_url}: no answer within 15s"),
    }
}

async fn confirm_channel(conn: &Connection, amqp_url: &str) -> Channel {
    let channel = conn
        .create_channel()
        .await
        .unwrap_or_else(|e| panic!("cannot open a channel on {amqp_url}: {e}"));
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap_or_else(|e| panic!("confirm.select on {amqp_url} failed: {e}"));
    channel
}

fn check_confirmation(confirmation: Confirmation, what: &str) {
    match confirmation {
        Confirmation::Ack(None) => {}
        Confirmation::Ack(Some(returned)) => {
            panic!("{what}: the broker returned the message: {returned:?}")
        }
        other => panic!("{what}: the broker did not confirm the message: {other:?}"),
    }
}

/// Publishes one message to `amq.topic` and waits for the broker's confirm.
/// `properties` go out as given (see [`fm_properties`] for the usual ones).
pub async fn publish_raw(
    amqp_url: &str,
    routing_key: &str,
    properties: BasicProperties,
    body: &[u8],
) {
    let conn = amqp_connect(amqp_url).await;
    let channel = confirm_channel(&conn, amqp_url).await;
    let what = format!("publishing to amq.topic with routing key {routing_key:?}");
    let confirm = channel
        .basic_publish(
            "amq.topic".into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
        .unwrap_or_else(|e| panic!("{what} failed: {e}"));
    let confirmation = confirm
        .await
        .unwrap_or_else(|e| panic!("{what}: no confirm: {e}"));
    check_confirmation(confirmation, &what);
    let _ = conn.close(200, "done".into()).await;
}

/// Publishes every message (routing key, properties, body) to `amq.topic` on one
/// channel with publisher confirms, keeping up to 1024 confirms in flight rather
/// than awaiting each; returns once all are confirmed. Returns the count.
pub async fn publish_many(
    amqp_url: &str,
    messages: impl IntoIterator<Item = (String, BasicProperties, Vec<u8>)>,
) -> usize {
    const IN_FLIGHT: usize = 1024;
    let conn = amqp_connect(amqp_url).await;
    let channel = confirm_channel(&conn, amqp_url).await;
    let mut pending = VecDeque::with_capacity(IN_FLIGHT);
    let mut count = 0usize;
    for (routing_key, properties, body) in messages {
        if pending.len() >= IN_FLIGHT {
            await_confirm(&mut pending).await;
        }
        let confirm = channel
            .basic_publish(
                "amq.topic".into(),
                routing_key.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                properties,
            )
            .await
            .unwrap_or_else(|e| panic!("publishing message #{count} ({routing_key}) failed: {e}"));
        pending.push_back((count, confirm));
        count += 1;
    }
    while !pending.is_empty() {
        await_confirm(&mut pending).await;
    }
    let _ = conn.close(200, "done".into()).await;
    count
}

async fn await_confirm(pending: &mut VecDeque<(usize, PublisherConfirm)>) {
    if let Some((index, confirm)) = pending.pop_front() {
        let what = format!("message #{index}");
        let confirmation = confirm
            .await
            .unwrap_or_else(|e| panic!("{what}: no confirm: {e}"));
        check_confirmation(confirmation, &what);
    }
}

/// The properties fedora-messaging puts on a message: JSON, utf-8, persistent
/// (delivery mode 2), the given message id and headers.
pub fn fm_properties(message_id: &str, headers: FieldTable) -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_delivery_mode(2)
        .with_message_id(message_id.into())
        .with_headers(headers)
}

/// A FieldTable from a JSON object, typed as pika would send it: strings as
/// long strings, integers as 64-bit, booleans, floats as doubles, null as void,
/// arrays and objects nested. Panics if `value` is not an object.
pub fn field_table(value: &serde_json::Value) -> FieldTable {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("field_table wants a JSON object, got {value}"));
    let mut table = FieldTable::default();
    for (key, v) in object {
        table.insert(key.as_str().into(), amqp_value(v));
    }
    table
}

fn amqp_value(value: &serde_json::Value) -> AMQPValue {
    use serde_json::Value;
    match value {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AMQPValue::LongLongInt(i),
            None => AMQPValue::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => AMQPValue::LongString(s.as_str().into()),
        Value::Array(items) => AMQPValue::FieldArray(FieldArray::from(
            items.iter().map(amqp_value).collect::<Vec<_>>(),
        )),
        Value::Object(_) => AMQPValue::FieldTable(field_table(value)),
    }
}

// ---------------------------------------------------------------- observing

/// A queue bound to `amq.topic`, to see what reaches the broker.
pub struct ProbeQueue {
    conn: Connection,
    channel: Channel,
    pub name: String,
}

impl ProbeQueue {
    /// `name` None: an exclusive server-named queue, gone with this connection.
    /// `name` Some: a durable queue of that name (declared again if it exists),
    /// which survives the connection and a broker restart.
    pub async fn declare(amqp_url: &str, name: Option<&str>, binding_keys: &[&str]) -> Self {
        let conn = amqp_connect(amqp_url).await;
        let channel = conn
            .create_channel()
            .await
            .unwrap_or_else(|e| panic!("cannot open a channel on {amqp_url}: {e}"));
        let options = match name {
            None => QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            Some(_) => QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
        };
        let queue = channel
            .queue_declare(name.unwrap_or("").into(), options, FieldTable::default())
            .await
            .unwrap_or_else(|e| panic!("queue.declare {name:?} on {amqp_url} failed: {e}"));
        let queue_name = queue.name().to_string();
        for key in binding_keys {
            channel
                .queue_bind(
                    queue_name.as_str().into(),
                    "amq.topic".into(),
                    (*key).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap_or_else(|e| {
                    panic!("binding {queue_name} to amq.topic {key:?} failed: {e}")
                });
        }
        ProbeQueue {
            conn,
            channel,
            name: queue_name,
        }
    }

    /// The next message (auto-acked), polling until `timeout`; None if none came.
    pub async fn next(&self, timeout: Duration) -> Option<lapin::message::Delivery> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self
                .channel
                .basic_get(self.name.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap_or_else(|e| panic!("basic.get on {} failed: {e}", self.name));
            if let Some(message) = got {
                return Some(message.delivery);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many messages wait in the queue.
    pub async fn message_count(&self) -> u32 {
        self.channel
            .queue_declare(
                self.name.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("passive queue.declare {} failed: {e}", self.name))
            .message_count()
    }

    pub async fn close(self) {
        let _ = self.conn.close(200, "done".into()).await;
    }
}
