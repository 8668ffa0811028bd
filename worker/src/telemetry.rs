//! Logs, Sentry and the Prometheus recorder.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use secrecy::ExposeSecret as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LogFormat, Settings};

/// The git revision the binary was built from (the container build passes it).
pub const REVISION: &str = match option_env!("FEDORA_CI_GIT_REVISION") {
    Some(revision) => revision,
    None => "unknown",
};

/// Logs to stderr, `RUST_LOG` filtering (default `info`), JSON in production.
/// Errors also go to Sentry when a DSN is configured; the guard flushes it.
pub fn init(settings: &Settings) -> Option<sentry::ClientInitGuard> {
    let secrets = settings.secrets();
    let guard = settings.sentry.dsn.as_ref().map(|dsn| {
        sentry::init((
            dsn.expose_secret(),
            sentry::ClientOptions {
                release: Some(REVISION.into()),
                environment: settings.sentry.environment.clone().map(Into::into),
                // Request data and user details could carry tokens.
                send_default_pii: false,
                before_send: Some(std::sync::Arc::new(move |event| {
                    Some(scrub(event, &secrets))
                })),
                ..Default::default()
            },
        ))
    });
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter).with(
        guard
            .as_ref()
            .map(|_| sentry::integrations::tracing::layer()),
    );
    let result = match settings.service.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
    if let Err(error) = result {
        eprintln!("logging was already set up: {error}");
    }
    guard
}

/// Replace every configured secret in what an error report carries.
fn scrub(
    mut event: sentry::protocol::Event<'static>,
    secrets: &[String],
) -> sentry::protocol::Event<'static> {
    let clean = |text: &mut String| {
        for secret in secrets {
            if !secret.is_empty() && text.contains(secret.as_str()) {
                *text = text.replace(secret.as_str(), "<redacted>");
            }
        }
    };
    if let Some(message) = event.message.as_mut() {
        clean(message);
    }
    if let Some(entry) = event.logentry.as_mut() {
        clean(&mut entry.message);
    }
    for exception in event.exception.values.iter_mut() {
        if let Some(value) = exception.value.as_mut() {
            clean(value);
        }
    }
    for breadcrumb in event.breadcrumbs.values.iter_mut() {
        if let Some(message) = breadcrumb.message.as_mut() {
            clean(message);
        }
    }
    for value in event.extra.values_mut() {
        if let serde_json::Value::String(text) = value {
            clean(text);
        }
    }
    event
}

/// Install the process-wide metrics recorder; the handle renders `/metrics`.
pub fn metrics() -> anyhow::Result<PrometheusHandle> {
    let seconds = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        300.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)?
        .set_buckets_for_metric(
            Matcher::Full("fedora_ci_inbox_batch_size".into()),
            &[1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0],
        )?
        .install_recorder()?;
    metrics::gauge!("fedora_ci_build_info", "revision" => REVISION).set(1.0);
    Ok(handle)
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_scrubbed_from_error_reports() {
        let event = sentry::protocol::Event {
            message: Some("call failed with token s3cret-value".into()),
            ..Default::default()
        };
        let event = super::scrub(event, &["s3cret-value".to_owned()]);
        assert_eq!(
            event.message.as_deref(),
            Some("call failed with token <redacted>")
        );
    }
}
