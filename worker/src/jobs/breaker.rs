//! Per-service protection: a rate limit, and a circuit breaker that pauses a
//! service's queue after consecutive failures instead of hammering it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How a breaker behaves.
#[derive(Debug, Clone)]
pub struct BreakerConfig {
    /// Consecutive transient failures that open the breaker.
    pub failures: u32,
    /// How long it first stays open; doubles while probes keep failing.
    pub open_for: Duration,
    pub max_open_for: Duration,
}

/// What the breaker says about taking work now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Take as much as the queue's concurrency allows.
    Open,
    /// Take one job, to see whether the service is back.
    Probe,
    /// Take nothing until then.
    Closed(Instant),
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant, open_for: Duration },
    HalfOpen { open_for: Duration, probing: bool },
}

/// One service's breaker. "Open" in the usual sense (requests blocked) is
/// [`Gate::Closed`] here: the gate is what the runner sees.
#[derive(Debug)]
pub struct Breaker {
    service: String,
    config: BreakerConfig,
    state: Mutex<State>,
    /// Until when the service asked us to wait (`Retry-After`).
    hold: Mutex<Option<Instant>>,
}

impl Breaker {
    pub fn new(service: &str, config: BreakerConfig) -> Self {
        metrics::gauge!("fedora_ci_breaker_open", "service" => service.to_owned()).set(0.0);
        Breaker {
            service: service.to_owned(),
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
            hold: Mutex::new(None),
        }
    }

    /// The service asked us to wait (`Retry-After`): its queue takes no job
    /// before `until`.
    pub fn hold_until(&self, until: Instant) {
        let mut hold = self.hold.lock().unwrap_or_else(|p| p.into_inner());
        if hold.is_none_or(|current| current < until) {
            *hold = Some(until);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether to take work now.
    pub fn gate(&self) -> Gate {
        if let Some(until) = *self.hold.lock().unwrap_or_else(|p| p.into_inner())
            && until > Instant::now()
        {
            return Gate::Closed(until);
        }
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Gate::Open,
            State::Open { until, open_for } => {
                if Instant::now() >= until {
                    *state = State::HalfOpen {
                        open_for,
                        probing: true,
                    };
                    Gate::Probe
                } else {
                    Gate::Closed(until)
                }
            }
            State::HalfOpen { open_for, probing } => {
                if probing {
                    // One probe at a time; look again shortly.
                    Gate::Closed(Instant::now() + Duration::from_millis(200))
                } else {
                    *state = State::HalfOpen {
                        open_for,
                        probing: true,
                    };
                    Gate::Probe
                }
            }
        }
    }

    /// `closed`, `open` or `half-open`; until when it stays open (or the
    /// queue is held by a `Retry-After`); consecutive failures.
    pub fn snapshot(&self) -> (&'static str, Option<Instant>, u32) {
        let hold = (*self.hold.lock().unwrap_or_else(|p| p.into_inner()))
            .filter(|until| *until > Instant::now());
        match *self.lock() {
            State::Closed { failures } => match hold {
                Some(until) => ("open", Some(until), failures),
                None => ("closed", None, failures),
            },
            State::Open { until, .. } => ("open", Some(until), self.config.failures),
            State::HalfOpen { .. } => ("half-open", None, self.config.failures),
        }
    }

    /// The service answered (even with a permanent error: it is up).
    pub fn success(&self) {
        let mut state = self.lock();
        if !matches!(*state, State::Closed { failures: 0 }) {
            if !matches!(*state, State::Closed { .. }) {
                tracing::info!(service = %self.service, "the service answers again; its queue resumes");
            }
            *state = State::Closed { failures: 0 };
            metrics::gauge!("fedora_ci_breaker_open", "service" => self.service.clone()).set(0.0);
        }
    }

    /// The service failed (unreachable, 5xx, 429, timeout).
    pub fn failure(&self) {
        let mut state = self.lock();
        let open_for = match *state {
            State::Closed { failures } if failures + 1 < self.config.failures => {
                *state = State::Closed {
                    failures: failures + 1,
                };
                return;
            }
            State::Closed { .. } => self.config.open_for,
            State::HalfOpen { open_for, .. } => (open_for * 2).min(self.config.max_open_for),
            // A job that started before the breaker opened; it stays open.
            State::Open { .. } => return,
        };
        tracing::warn!(
            service = %self.service,
            paused_for = ?open_for,
            "the service keeps failing; pausing its queue"
        );
        metrics::gauge!("fedora_ci_breaker_open", "service" => self.service.clone()).set(1.0);
        metrics::counter!("fedora_ci_breaker_trips_total", "service" => self.service.clone())
            .increment(1);
        *state = State::Open {
            until: Instant::now() + open_for,
            open_for,
        };
    }
}

/// At most `rate` calls per second, spaced evenly.
#[derive(Debug)]
pub struct RateLimit {
    interval: Option<Duration>,
    next: tokio::sync::Mutex<Instant>,
}

impl RateLimit {
    pub fn new(per_second: Option<f64>) -> Self {
        RateLimit {
            interval: per_second
                .filter(|r| *r > 0.0)
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    /// Wait for this call's turn.
    pub async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let turn = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let turn = (*next).max(now);
            *next = turn + interval;
            turn
        };
        tokio::time::sleep_until(turn.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(
            "test",
            BreakerConfig {
                failures: 3,
                open_for: Duration::from_millis(50),
                max_open_for: Duration::from_millis(200),
            },
        )
    }

    #[test]
    fn opens_after_consecutive_failures_and_probes_after_the_pause() {
        let b = breaker();
        b.failure();
        b.failure();
        assert_eq!(b.gate(), Gate::Open);
        b.failure();
        assert!(matches!(b.gate(), Gate::Closed(_)));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.gate(), Gate::Probe);
        // Only one probe at a time.
        assert!(matches!(b.gate(), Gate::Closed(_)));
        b.success();
        assert_eq!(b.gate(), Gate::Open);
    }

    #[test]
    fn a_failed_probe_pauses_longer() {
        let b = breaker();
        for _ in 0..3 {
            b.failure();
        }
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.gate(), Gate::Probe);
        let before = Instant::now();
        b.failure();
        let Gate::Closed(until) = b.gate() else {
            panic!("paused again");
        };
        // Twice the first pause.
        assert!(until >= before + Duration::from_millis(100));
    }

    #[test]
    fn retry_after_holds_the_queue() {
        let b = breaker();
        let until = Instant::now() + Duration::from_secs(60);
        b.hold_until(until);
        assert_eq!(b.gate(), Gate::Closed(until));
        // A shorter hold does not cut a longer one.
        b.hold_until(Instant::now() + Duration::from_secs(1));
        assert_eq!(b.gate(), Gate::Closed(until));
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = breaker();
        b.failure();
        b.failure();
        b.success();
        b.failure();
        b.failure();
        assert_eq!(b.gate(), Gate::Open);
    }

    #[tokio::test]
    async fn the_rate_limit_spaces_calls() {
        let limit = RateLimit::new(Some(100.0));
        let started = Instant::now();
        for _ in 0..5 {
            limit.wait().await;
        }
        assert!(started.elapsed() >= Duration::from_millis(39));
    }
}
