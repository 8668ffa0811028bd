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
                before_send: Some(std::sync::Arc::new(move |event| scrub(event, &secrets))),
                before_breadcrumb: Some(std::sync::Arc::new({
                    let secrets = settings.secrets();
                    move |breadcrumb| scrub_breadcrumb(breadcrumb, &secrets)
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

/// Replace every configured secret in what an error report carries: the
/// whole event is walked as JSON, so that fields put anywhere (sentry-tracing
/// puts an event's fields in `contexts`, a breadcrumb's in its `data`) are
/// covered. A report that cannot be walked is not sent.
fn scrub(
    event: sentry::protocol::Event<'static>,
    secrets: &[String],
) -> Option<sentry::protocol::Event<'static>> {
    let secrets: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    if secrets.is_empty() {
        return Some(event);
    }
    let mut value = serde_json::to_value(&event).ok()?;
    if !clean(&mut value, &secrets) {
        return Some(event);
    }
    serde_json::from_value(value).ok()
}

/// Replace the secrets in every string and key of `value`; whether any was found.
fn clean(value: &mut serde_json::Value, secrets: &[&str]) -> bool {
    let replace = |text: &str| -> Option<String> {
        secrets.iter().any(|s| text.contains(s)).then(|| {
            secrets.iter().fold(text.to_owned(), |text, secret| {
                text.replace(secret, "<redacted>")
            })
        })
    };
    let mut found = false;
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::String(text) => {
                if let Some(clean) = replace(text) {
                    *text = clean;
                    found = true;
                }
            }
            serde_json::Value::Array(items) => stack.extend(items.iter_mut()),
            serde_json::Value::Object(map) => {
                if map.keys().any(|key| replace(key).is_some()) {
                    *map = std::mem::take(map)
                        .into_iter()
                        .map(|(key, v)| (replace(&key).unwrap_or(key), v))
                        .collect();
                    found = true;
                }
                stack.extend(map.values_mut());
            }
            _ => {}
        }
    }
    found
}

/// Install the process-wide metrics recorder; the handle renders `/metrics`.
pub fn metrics() -> anyhow::Result<PrometheusHandle> {
    let seconds = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        300.0,
    ];
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)?
        .set_buckets_for_metric(
            Matcher::Full("fedora_ci_inbox_batch_size".into()),
            &[1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0],
        )?;
    let handle = crate::packit_metrics::with_buckets(builder)?.install_recorder()?;
    metrics::gauge!("fedora_ci_build_info", "revision" => REVISION).set(1.0);
    crate::packit_metrics::register();
    Ok(handle)
}

/// [`scrub`] for a breadcrumb, as it is recorded.
fn scrub_breadcrumb(
    breadcrumb: sentry::protocol::Breadcrumb,
    secrets: &[String],
) -> Option<sentry::protocol::Breadcrumb> {
    let secrets: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    let mut value = serde_json::to_value(&breadcrumb).ok()?;
    if !clean(&mut value, &secrets) {
        return Some(breadcrumb);
    }
    serde_json::from_value(value).ok()
}

#[cfg(test)]
mod tests {
    use sentry::protocol::{Breadcrumb, Context, Event, Exception, Map};

    const SECRET: &str = "s3cret-value";

    #[test]
    fn secrets_are_scrubbed_wherever_a_report_carries_them() {
        let mut fields = Map::new();
        fields.insert("error".to_owned(), format!("token {SECRET} refused").into());
        let mut event = Event {
            message: Some(format!("call failed with token {SECRET}")),
            ..Default::default()
        };
        // Where sentry-tracing puts an event's fields and a breadcrumb's.
        event.contexts.insert(
            "Rust Tracing Fields".to_owned(),
            Context::Other(fields.clone()),
        );
        event.breadcrumbs.values.push(Breadcrumb {
            data: fields.clone(),
            ..Default::default()
        });
        event.exception.values.push(Exception {
            value: Some(SECRET.to_owned()),
            ..Default::default()
        });
        event.tags.insert("t".to_owned(), SECRET.to_owned());
        event.extra.insert(SECRET.to_owned(), SECRET.into());
        let scrubbed = super::scrub(event, &[SECRET.to_owned()]).expect("sent");
        let text = serde_json::to_string(&scrubbed).expect("serializes");
        assert!(!text.contains(SECRET), "{text}");
        assert_eq!(
            scrubbed.message.as_deref(),
            Some("call failed with token <redacted>")
        );

        let breadcrumb = Breadcrumb {
            message: Some(SECRET.to_owned()),
            data: fields,
            ..Default::default()
        };
        let clean = super::scrub_breadcrumb(breadcrumb, &[SECRET.to_owned()]).expect("recorded");
        let text = serde_json::to_string(&clean).expect("serializes");
        assert!(!text.contains(SECRET), "{text}");
    }
}
