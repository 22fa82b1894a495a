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

    /// Waits until the slot after the last one handed out (or `limit`, if sooner). An invocation
    /// that ends here holds its place in the event source's concurrency for one interval per post,
    /// so the next invocation in that place, whose first post starts at once, cannot post sooner
    /// than this one's next slot: each place stays within the rate, however short its invocations.
    pub async fn settle(&self, limit: Instant) {
        let next = *self.next.lock().expect("no panic holds this lock");
        tokio::time::sleep_until(next.min(limit)).await;
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
    }

    #[tokio::test]
    async fn settling_holds_the_invocation_one_interval_past_its_last_post() {
        let pace = Pace::per_second(10.0).unwrap();
        let start = Instant::now();
        // Nothing posted: nothing to hold.
        pace.settle(start + Duration::from_secs(5)).await;
        assert!(start.elapsed() < Duration::from_millis(50), "{:?}", start.elapsed());
        for _ in 0..3 {
            pace.wait().await;
        }
        // Three posts at 10/s start at 0, 100 and 200 ms; the place is free again at 300 ms.
        pace.settle(start + Duration::from_secs(5)).await;
        assert!(start.elapsed() >= Duration::from_millis(300), "{:?}", start.elapsed());
        // Never past the limit (the invocation's deadline): one post at 1/s would hold it a second.
        let slow = Pace::per_second(1.0).unwrap();
        slow.wait().await;
        let limited = Instant::now();
        slow.settle(limited + Duration::from_millis(100)).await;
        let held = limited.elapsed();
        assert!(
            held >= Duration::from_millis(100) && held < Duration::from_secs(1),
            "{held:?}"
        );
        assert!(Pace::per_second(f64::NAN).is_none());
    }
}
