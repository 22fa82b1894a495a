//! Named retries for AWS's known eventual-consistency errors, on top of the SDK's own retry of
//! throttling and 5xx: exponential backoff with jitter, and an overall deadline after which the
//! last error is returned as it is.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long and how fast to retry one kind of eventual-consistency error.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub deadline: Duration,
}

/// SQS refuses to create a queue for 60 s after a queue of that name was deleted.
pub const QUEUE_DELETED_RECENTLY: Patience = Patience {
    first_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(10),
    deadline: Duration::from_secs(90),
};

/// A role (or a policy on it) just created is not usable by Lambda for several seconds.
pub const ROLE_PROPAGATION: Patience = Patience {
    first_delay: Duration::from_millis(500),
    max_delay: Duration::from_secs(8),
    deadline: Duration::from_secs(120),
};

/// SQS refuses a RedrivePolicy naming a dead-letter queue created moments ago ("Dead letter
/// target does not exist") until the new queue is known everywhere.
pub const DEAD_LETTER_TARGET: Patience = Patience {
    first_delay: Duration::from_millis(500),
    max_delay: Duration::from_secs(5),
    deadline: Duration::from_secs(60),
};

/// IAM answers DeleteConflict to DeleteRole for a few seconds after the role's last policy went.
pub const ROLE_DELETE_CONFLICT: Patience = Patience {
    first_delay: Duration::from_millis(500),
    max_delay: Duration::from_secs(5),
    deadline: Duration::from_secs(60),
};

/// Lambda deletes an event source mapping asynchronously: the old one (State `Deleting`) blocks
/// a new mapping of the same function and queue until it is gone, usually within a minute.
pub const MAPPING_DELETION: Patience = Patience {
    first_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(5),
    deadline: Duration::from_secs(180),
};

/// A function update refused with ResourceConflictException because another update (or the
/// creation) is still in progress: waited for, then tried again.
pub const FUNCTION_BUSY: Patience = Patience {
    first_delay: Duration::from_millis(500),
    max_delay: Duration::from_secs(5),
    deadline: Duration::from_secs(300),
};

/// Run `op` until it succeeds, fails with an error `is_transient` does not accept, or the
/// deadline passes.
pub async fn eventually<T, E, F, Fut>(patience: Patience, is_transient: impl Fn(&E) -> bool, mut op: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let mut delay = patience.first_delay;
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(error) if is_transient(&error) && start.elapsed() + delay < patience.deadline => {
                tokio::time::sleep(jitter(delay)).await;
                delay = (delay * 2).min(patience.max_delay);
            }
            Err(error) => return Err(error),
        }
    }
}

/// Between 50% and 100% of `delay`, so that concurrent retries spread out.
fn jitter(delay: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let fraction = 0.5 + (nanos % 1000) as f64 / 2000.0;
    delay.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Patience = Patience {
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        deadline: Duration::from_secs(5),
    };

    #[tokio::test]
    async fn retries_transient_errors_until_success() {
        let mut calls = 0;
        let result: Result<u32, &str> = eventually(
            QUICK,
            |e| *e == "not yet",
            || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 4 {
                        Err("not yet")
                    } else {
                        Ok(n)
                    }
                }
            },
        )
        .await;
        assert_eq!(result, Ok(4));
    }

    #[tokio::test]
    async fn other_errors_end_at_once() {
        let mut calls = 0;
        let result: Result<(), &str> = eventually(
            QUICK,
            |e| *e == "not yet",
            || {
                calls += 1;
                async { Err("denied") }
            },
        )
        .await;
        assert_eq!(result, Err("denied"));
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline() {
        let patience = Patience {
            deadline: Duration::from_millis(30),
            ..QUICK
        };
        let start = Instant::now();
        let result: Result<(), &str> = eventually(patience, |_| true, || async { Err("not yet") }).await;
        assert_eq!(result, Err("not yet"));
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
