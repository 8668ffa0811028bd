//! Serving the API over HTTP/1.1 with limits a slow or hostile client cannot
//! get around: a cap on open connections, a deadline for each request's
//! head (which also closes a keep-alive connection left idle), and a bounded
//! read buffer. Body size and body and request deadlines are layers of the
//! router ([`super::router`]).
//!
//! `axum::serve` sets none of these, so one client holding connections
//! half-open could use up the process's file descriptors, and with them the
//! database and broker connections of the roles sharing the process.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// The largest request head (request line and headers) read into memory;
/// larger ones are answered 431 by hyper. Also the per-connection buffer
/// bound, so that held connections cost little memory each.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The limits of [`serve`], from `[api]`.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Open connections at most; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// From the start of a connection, or the end of its last response, to
    /// the end of the next request's head.
    pub header_timeout: Duration,
}

/// Accept connections until `stop`, then let those open finish their
/// requests until they are done or `abort` fires.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ServeLimits,
    stop: CancellationToken,
    abort: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let mut last_accept_error: Option<tokio::time::Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, mostly: wait for some to close
                // rather than spin, and say so once a minute at most.
                if last_accept_error.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                    warn!(%error, "cannot accept HTTP connections");
                    last_accept_error = Some(tokio::time::Instant::now());
                }
                metrics::counter!("fedora_ci_http_connections_total", "outcome" => "accept_error")
                    .increment(1);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("fedora_ci_http_connections_total", "outcome" => "over_limit")
                .increment(1);
            debug!(
                max = limits.max_connections,
                "connection refused: too many open"
            );
            drop(stream);
            continue;
        };
        metrics::counter!("fedora_ci_http_connections_total", "outcome" => "accepted").increment(1);
        let _ = stream.set_nodelay(true);
        let connection = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                debug!(%error, "HTTP connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    info!(
        open = graceful.count(),
        "no longer accepting HTTP connections"
    );
    tokio::select! {
        () = graceful.shutdown() => {}
        () = abort.cancelled() => {}
    }
}
