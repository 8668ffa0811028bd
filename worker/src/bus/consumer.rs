//! Consuming from the broker into the inbox writer, reconnecting forever.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use lapin::options::{
    BasicConsumeOptions, BasicQosOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{ExchangeKind, Queue};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, error, info, info_span, warn};

use crate::config::Bus;
use crate::ingest::{self, Ack, Headers, Inbound, RawMessage};

/// Whether the consumer holds a working connection, for `/api/readyz`.
#[derive(Debug, Default)]
pub struct BusState {
    connected: AtomicBool,
}

impl BusState {
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn set(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
        metrics::gauge!("fedora_ci_bus_connected").set(if connected { 1.0 } else { 0.0 });
    }
}

/// A session that lasted this long resets the reconnection backoff.
const STABLE_SESSION: Duration = Duration::from_secs(30);

static SESSIONS: AtomicU64 = AtomicU64::new(0);

/// Consume until `stop` fires, reconnecting with capped exponential backoff
/// whenever the connection or channel is lost. Every connection re-declares
/// the topology and re-consumes. When `stop` fires, the consumer is canceled,
/// `tx` is dropped so the writer records what it holds, and the connection
/// stays open until `writer_done` so that those deliveries can be acked.
pub async fn run(
    bus: Bus,
    max_body_bytes: usize,
    tx: mpsc::Sender<Inbound>,
    state: Arc<BusState>,
    stop: CancellationToken,
    writer_done: CancellationToken,
) {
    let max_delay = Duration::from_secs(bus.reconnect_max_seconds.max(1));
    let mut delay = Duration::from_secs(1);
    while !stop.is_cancelled() {
        let session = SESSIONS.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let span = info_span!("bus_session", session);
        let result = consume(&bus, max_body_bytes, &tx, &state, &stop, session)
            .instrument(span)
            .await;
        match result {
            Ok(Some((connection, channel))) => {
                drop(tx);
                writer_done.cancelled().await;
                state.set(false);
                // The channel first: closing the connection under an open
                // channel makes lapin log a spurious error.
                let _ = channel.close(200, "shutting down".into()).await;
                let _ = connection.close(200, "shutting down".into()).await;
                info!("consumer stopped");
                return;
            }
            Ok(None) => break,
            Err(error) => {
                state.set(false);
                if started.elapsed() > STABLE_SESSION {
                    delay = Duration::from_secs(1);
                }
                metrics::counter!("fedora_ci_bus_reconnects_total").increment(1);
                warn!(
                    error = format!("{error:#}"),
                    retry_in = ?delay,
                    "bus connection lost; reconnecting"
                );
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => break,
                }
                delay = (delay * 2).min(max_delay);
            }
        }
    }
    state.set(false);
    info!("consumer stopped");
}

/// One connection's life. `Ok` means we were asked to stop (with the
/// connection and channel, still open for the pending acks) or the writer is gone.
async fn consume(
    bus: &Bus,
    max_body_bytes: usize,
    tx: &mpsc::Sender<Inbound>,
    state: &BusState,
    stop: &CancellationToken,
    session: u64,
) -> anyhow::Result<Option<(lapin::Connection, lapin::Channel)>> {
    let connection = super::connect(bus, "consumer").await?;
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(bus.qos.prefetch_count, BasicQosOptions { global: false })
        .await?;
    let queue = declare(&channel, bus).await?;
    let queue_name = queue.name().as_str().to_owned();
    let tag = format!("fedora-ci-worker-{}-{session}", std::process::id());
    let mut consumer = channel
        .basic_consume(
            queue_name.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    state.set(true);
    info!(
        url = %bus.display_url(),
        queue = %queue_name,
        messages_waiting = queue.message_count(),
        prefetch = bus.qos.prefetch_count,
        "consuming"
    );

    loop {
        let delivery = tokio::select! {
            next = consumer.next() => next,
            () = stop.cancelled() => {
                // Stop taking deliveries; the ones already received are with
                // the writer, which acks them on this still-open channel.
                let _ = channel
                    .basic_cancel(tag.as_str().into(), lapin::options::BasicCancelOptions::default())
                    .await;
                return Ok(Some((connection, channel)));
            }
        };
        let delivery = match delivery {
            Some(Ok(delivery)) => delivery,
            Some(Err(error)) => return Err(error.into()),
            None => anyhow::bail!("the broker canceled our consumer"),
        };
        let lapin::message::Delivery {
            routing_key,
            properties,
            data,
            acker,
            ..
        } = delivery;
        let headers = match properties.headers() {
            Some(table) if !table.inner().is_empty() => {
                // Measured first, without recursion: only headers within the
                // limit are converted (see bus::amqp::table_depth).
                let depth = super::amqp::table_depth(table);
                if depth > events::MAX_HEADER_DEPTH {
                    Headers::TooDeep(depth)
                } else {
                    Headers::Table(super::amqp::table_to_json(table))
                }
            }
            _ => Headers::Absent,
        };
        let event = ingest::from_delivery(
            RawMessage {
                topic: routing_key.as_str(),
                message_id: properties.message_id().as_ref().map(|id| id.as_str()),
                headers,
                content_encoding: properties.content_encoding().as_ref().map(|e| e.as_str()),
                priority: *properties.priority(),
                queue: &queue_name,
                body: data,
            },
            max_body_bytes,
        );
        if let Some(reason) = &event.dead_reason {
            warn!(
                message_id = %event.message_id,
                topic = %event.topic,
                %reason,
                "bad message: recording it as dead"
            );
        }
        metrics::counter!("fedora_ci_bus_deliveries_total").increment(1);
        let item = Inbound {
            event,
            ack: Ack::Delivery { acker, session },
        };
        if tx.send(item).await.is_err() {
            error!("the inbox writer is gone; stopping the consumer");
            return Ok(None);
        }
    }
}

/// Declare exchanges, the queue and its bindings as configured. `amq.*`
/// exchanges exist on every broker and may not be declared by clients.
async fn declare(channel: &lapin::Channel, bus: &Bus) -> anyhow::Result<Queue> {
    use anyhow::Context as _;
    for (name, exchange) in &bus.exchanges {
        if name.starts_with("amq.") {
            continue;
        }
        let kind = match exchange.kind.as_str() {
            "topic" => ExchangeKind::Topic,
            "direct" => ExchangeKind::Direct,
            "fanout" => ExchangeKind::Fanout,
            "headers" => ExchangeKind::Headers,
            other => ExchangeKind::Custom(other.to_owned()),
        };
        channel
            .exchange_declare(
                name.as_str().into(),
                kind,
                ExchangeDeclareOptions {
                    passive: bus.passive_declares,
                    durable: exchange.durable,
                    auto_delete: exchange.auto_delete,
                    internal: false,
                    nowait: false,
                },
                super::arguments(&exchange.arguments),
            )
            .await
            .with_context(|| format!("declaring exchange {name}"))?;
    }
    let queue = match bus.queue() {
        Some((name, queue)) => channel
            .queue_declare(
                name.into(),
                QueueDeclareOptions {
                    passive: bus.passive_declares,
                    durable: queue.durable,
                    exclusive: queue.exclusive,
                    auto_delete: queue.auto_delete,
                    nowait: false,
                },
                super::arguments(&queue.arguments),
            )
            .await
            .with_context(|| format!("declaring queue {name}"))?,
        None => {
            warn!(
                "no queue configured: using a server-named exclusive queue, which loses \
                 what is published while we are disconnected"
            );
            channel
                .queue_declare(
                    "".into(),
                    QueueDeclareOptions {
                        passive: false,
                        durable: false,
                        exclusive: true,
                        auto_delete: true,
                        nowait: false,
                    },
                    FieldTable::default(),
                )
                .await
                .context("declaring a server-named queue")?
        }
    };
    for binding in &bus.bindings {
        for key in &binding.routing_keys {
            channel
                .queue_bind(
                    queue.name().clone(),
                    binding.exchange.as_str().into(),
                    key.as_str().into(),
                    QueueBindOptions::default(),
                    super::arguments(&binding.arguments),
                )
                .await
                .with_context(|| {
                    format!(
                        "binding queue {} to {} with {key}",
                        queue.name().as_str(),
                        binding.exchange
                    )
                })?;
        }
    }
    Ok(queue)
}
