//! Publishing in fedora-messaging's wire format, with publisher confirms.

use anyhow::Context as _;
use events::Envelope;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Confirmation};

use crate::config::Bus;

/// A confirming publisher on its own connection.
pub struct Publisher {
    connection: lapin::Connection,
    channel: lapin::Channel,
    exchange: String,
    topic_prefix: String,
}

impl Publisher {
    pub async fn connect(bus: &Bus) -> anyhow::Result<Self> {
        let connection = super::connect(bus, "publisher").await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .context("enabling publisher confirms")?;
        Ok(Self {
            connection,
            channel,
            exchange: bus.publish_exchange.clone(),
            topic_prefix: bus.topic_prefix.clone(),
        })
    }

    /// Publish a batch and wait until the broker has confirmed every message.
    /// Messages go out back to back; the confirms are awaited afterwards.
    pub async fn publish_all(&self, envelopes: &[Envelope]) -> anyhow::Result<()> {
        let mut pending = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            let (routing_key, properties, body) = wire_format(envelope, &self.topic_prefix);
            let confirm = self
                .channel
                .basic_publish(
                    self.exchange.as_str().into(),
                    routing_key.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    properties,
                )
                .await
                .with_context(|| format!("publishing {}", envelope.id))?;
            pending.push((envelope.id.clone(), confirm));
        }
        for (id, confirm) in pending {
            match confirm.await.with_context(|| format!("confirm of {id}"))? {
                Confirmation::Ack(_) | Confirmation::NotRequested => {}
                Confirmation::Nack(_) => anyhow::bail!("the broker refused message {id}"),
            }
        }
        Ok(())
    }

    /// Publish topics as they are, without `bus.topic_prefix` in front (the
    /// outbox holds full topics).
    #[must_use]
    pub fn without_topic_prefix(mut self) -> Self {
        self.topic_prefix.clear();
        self
    }

    pub async fn close(self) {
        let _ = self.channel.close(200, "done".into()).await;
        let _ = self.connection.close(200, "done".into()).await;
    }
}

/// Routing key, properties and body exactly as fedora-messaging's
/// `Message` would send them: JSON body from Python's `json.dumps`,
/// persistent delivery, the message id and headers of the envelope.
pub fn wire_format(envelope: &Envelope, topic_prefix: &str) -> (String, BasicProperties, Vec<u8>) {
    let topic = if topic_prefix.is_empty() {
        envelope.topic.clone()
    } else {
        format!("{}.{}", topic_prefix.trim_end_matches('.'), envelope.topic)
    };
    let body = events::python_json_dumps(&serde_json::Value::Object(envelope.body.clone()));
    let mut properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_delivery_mode(2)
        .with_message_id(envelope.id.as_str().into())
        .with_headers(super::amqp::json_to_table(&envelope.headers));
    if let Some(priority) = envelope.priority.and_then(|p| u8::try_from(p).ok()) {
        properties = properties.with_priority(priority);
    }
    (topic, properties, body.into_bytes())
}
