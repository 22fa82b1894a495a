//! The post rate budget of one invocation: posts start at most `rate` per second, evenly spaced,
//! whatever the number of records and posts in flight. Owns only the spacing; how many posts may be
//! in flight at once is the push handler's semaphore.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Hands out start times one interval apart; a caller that is late starts at once and moves the
/// next slot on from there, so an idle spell earns no burst.
#[derive(Debug)]
pub struct Pace {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pace {
    /// `None` when the rate is not a positive number of posts per second.
    pub fn per_second(rate: f64) -> Option<Pace> {
        (rate.is_finite() && rate > 0.0).then(|| Pace {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: Mutex::new(Instant::now()),
        })
    }

    /// Waits for this caller's slot.
    pub async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().expect("no panic holds this lock");
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_one_interval_apart_and_idle_time_earns_no_burst() {
        let pace = Pace::per_second(100.0).unwrap();
        let start = Instant::now();
        for _ in 0..50 {
            pace.wait().await;
        }
        // The first slot is now; the 50th is 49 intervals later.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(490) && elapsed < Duration::from_millis(800),
            "{elapsed:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let idle_end = Instant::now();
        for _ in 0..3 {
            pace.wait().await;
        }
        assert!(
            idle_end.elapsed() >= Duration::from_millis(20),
            "{:?}",
            idle_end.elapsed()
        );
        assert!(Pace::per_second(0.0).is_none());
        assert!(Pace::per_second(f64::NAN).is_none());
    }
}
