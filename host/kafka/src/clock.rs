//! Wall-clock time for retry scheduling: when an attempt started, when the
//! next one is due, and waiting until then.
//!
//! Retry times are wall-clock milliseconds because they are stored (in sled
//! and the changelog) and must mean the same after a restart or on another
//! host. [`SystemClock`] is the real one; [`ManualClock`] is moved by hand,
//! so tests check the delays of a retry policy without sleeping.
//!
//! Offset commit ticks and drain bounds are not retry times: they use
//! tokio's monotonic timers directly.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A future that waits for a point in time.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Resolves once `now_ms() >= at_ms`.
    fn sleep_until_ms(&self, at_ms: i64) -> Sleep;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        system_now_ms()
    }

    fn sleep_until_ms(&self, at_ms: i64) -> Sleep {
        let wait = u64::try_from(at_ms.saturating_sub(system_now_ms())).unwrap_or(0);
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }
}

/// Milliseconds since the Unix epoch by the system clock.
pub fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A clock that moves only when told to.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<tokio::sync::watch::Sender<i64>>,
}

impl ManualClock {
    /// A clock at `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        let (tx, _rx) = tokio::sync::watch::channel(start_ms);
        ManualClock { now: Arc::new(tx) }
    }

    /// Moves the clock forward, waking the sleepers now due.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.now.send_modify(|now| *now = now.saturating_add(by));
    }

    /// Sets the clock (forward or back).
    pub fn set(&self, at_ms: i64) {
        self.now.send_replace(at_ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        *self.now.borrow()
    }

    fn sleep_until_ms(&self, at_ms: i64) -> Sleep {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // An error means the clock was dropped: nothing will ever be due.
            if rx.wait_for(|now| *now >= at_ms).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_sleeper_wakes_only_when_the_clock_reaches_its_time() {
        let clock = ManualClock::new(1_000);
        let mut sleep = clock.sleep_until_ms(2_000);
        let poll_once = |sleep: &mut Sleep| {
            let waker = futures::task::noop_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            sleep.as_mut().poll(&mut cx).is_ready()
        };
        assert!(!poll_once(&mut sleep));
        clock.advance(Duration::from_millis(999));
        assert!(!poll_once(&mut sleep));
        clock.advance(Duration::from_millis(1));
        tokio::time::timeout(Duration::from_secs(5), sleep)
            .await
            .unwrap();
        assert_eq!(clock.now_ms(), 2_000);
    }

    #[test]
    fn the_system_clock_is_after_2020() {
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
