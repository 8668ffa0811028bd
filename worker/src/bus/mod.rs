//! The Fedora Messaging side: connecting the way a fedora-messaging client
//! does, declaring what the configuration says, consuming into the inbox, and
//! publishing in fedora-messaging's wire format.

pub mod amqp;
pub mod consumer;
pub mod publisher;

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::{FieldTable, LongString};
use lapin::{Connection, ConnectionProperties};

use crate::config::Bus;

/// Open a connection: TLS with the configured CA and client certificate
/// (SASL EXTERNAL) when there are certificates, heartbeats, and client
/// properties that tell the broker's operators who we are.
pub async fn connect(bus: &Bus, role: &str) -> anyhow::Result<Connection> {
    use anyhow::Context as _;
    let uri = bus
        .amqp_uri()
        .map_err(|problem| anyhow::anyhow!("bus.amqp_url {problem}"))?;
    let mut tls = OwnedTLSConfig::default();
    if let Some(ca) = &bus.tls.ca_cert {
        tls.cert_chain = Some(
            std::fs::read_to_string(ca)
                .with_context(|| format!("reading bus.tls.ca_cert {}", ca.display()))?,
        );
    }
    if let (Some(cert), Some(key)) = (&bus.tls.certfile, &bus.tls.keyfile) {
        tls.identity = Some(OwnedIdentity::PKCS8 {
            pem: std::fs::read(cert)
                .with_context(|| format!("reading bus.tls.certfile {}", cert.display()))?,
            key: std::fs::read(key)
                .with_context(|| format!("reading bus.tls.keyfile {}", key.display()))?,
        });
    }
    let mut properties = ConnectionProperties::default()
        .with_connection_name(LongString::from(format!("fedora-ci-worker {role}")));
    for (key, value) in &bus.client_properties {
        // with_client_property only takes strings; lists (app_contacts_email)
        // are sent as their TOML text, as readable in the broker's UI.
        let text = match value {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        properties = properties.with_client_property(key.as_str().into(), LongString::from(text));
    }
    let runtime = lapin::runtime::default_runtime().context("starting the AMQP runtime")?;
    Connection::connect_uri_with_config(uri, properties, tls, runtime)
        .await
        .with_context(|| format!("connecting to {}", bus.display_url()))
}

/// Configuration `arguments` tables as AMQP arguments.
fn arguments(map: &std::collections::BTreeMap<String, toml::Value>) -> FieldTable {
    let json: serde_json::Map<String, serde_json::Value> = map
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
            )
        })
        .collect();
    amqp::json_to_table(&json)
}
