//! `replay` and `publish`: serialized messages from files, into the inbox
//! (the same writer the bus feeds) or onto the broker.

use std::path::PathBuf;

use anyhow::Context as _;
use events::Envelope;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::ingest::{self, Ack, Inbound, Totals, WriterConfig};

/// Every file's entries, with the unreadable ones reported on stderr.
/// Returns the good envelopes and how many entries were bad.
fn read_files(files: &[PathBuf]) -> anyhow::Result<(Vec<Envelope>, usize)> {
    let mut envelopes = Vec::new();
    let mut bad = 0;
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let entries = events::parse_serialized(&text)
            .with_context(|| format!("{} is not a file of serialized messages", file.display()))?;
        for entry in entries {
            match entry {
                Ok(envelope) => envelopes.push(envelope),
                Err(error) => {
                    bad += 1;
                    eprintln!("{}: {error}", file.display());
                }
            }
        }
    }
    Ok((envelopes, bad))
}

fn progress(len: usize, verb: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{verb} {{bar:40}} {{pos}}/{{len}} ({{per_sec}}, {{eta}} left)"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Feed the files' messages through the inbox writer.
pub async fn replay(
    settings: &Settings,
    pool: store::PgPool,
    files: &[PathBuf],
) -> anyhow::Result<bool> {
    let (envelopes, bad) = read_files(files)?;
    let (tx, rx) = mpsc::channel(settings.ingest.batch_size * 2);
    let writer = tokio::spawn(ingest::run_writer(
        pool,
        WriterConfig::from_settings(&settings.ingest),
        rx,
        CancellationToken::new(),
    ));
    let bar = progress(envelopes.len(), "replaying");
    for envelope in &envelopes {
        let item = Inbound {
            event: ingest::from_envelope(envelope),
            ack: Ack::None,
        };
        tx.send(item).await.context("the inbox writer stopped")?;
        bar.inc(1);
    }
    drop(tx);
    let totals: Totals = writer.await.context("the inbox writer failed")?;
    bar.finish_and_clear();
    println!(
        "replayed {} messages: {} recorded, {} already known{}",
        envelopes.len(),
        totals.recorded,
        totals.duplicates,
        if bad > 0 {
            format!(", {bad} unreadable entries skipped (listed above)")
        } else {
            String::new()
        }
    );
    Ok(bad == 0)
}

/// Send the files' messages to the configured broker.
pub async fn publish(settings: &Settings, files: &[PathBuf]) -> anyhow::Result<bool> {
    let (envelopes, bad) = read_files(files)?;
    let publisher = crate::bus::publisher::Publisher::connect(&settings.bus).await?;
    let bar = progress(envelopes.len(), "publishing");
    for chunk in envelopes.chunks(1000) {
        publisher.publish_all(chunk).await?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    publisher.close().await;
    println!(
        "published {} messages to {} on {}{}",
        envelopes.len(),
        settings.bus.publish_exchange,
        settings.bus.display_url(),
        if bad > 0 {
            format!("; {bad} unreadable entries skipped (listed above)")
        } else {
            String::new()
        }
    );
    Ok(bad == 0)
}
