//! Named retries for AWS's known eventual-consistency errors, on top of the SDK's own retry of
//! throttling and 5xx: exponential backoff with jitter, and an overall deadline after which the
//! last error is returned as it is. Errors every call of a service may meet are taught to that
//! service's SDK client instead, as a retry classifier (`ConcurrentModification`).

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_apigatewayv2::config::interceptors::InterceptorContext;
use aws_sdk_apigatewayv2::config::retry::{ClassifyRetry, RetryAction};

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

/// A secret deleted without a recovery window is purged in the background: until then CreateSecret
/// of its name answers "already scheduled for deletion" (AWS: "use appropriate back off and retry").
pub const SECRET_PURGE: Patience = Patience {
    first_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(10),
    deadline: Duration::from_secs(120),
};

/// DeleteAuthorizer answers 409 "is referenced in route" for a moment after the route let go of
/// the authorizer (terraform-provider-aws retries it too, its PR 37732).
pub const AUTHORIZER_RELEASE: Patience = Patience {
    first_delay: Duration::from_millis(500),
    max_delay: Duration::from_secs(5),
    deadline: Duration::from_secs(60),
};

/// A function update refused with ResourceConflictException because another update (or the
/// creation) is still in progress: waited for, then tried again.
pub const FUNCTION_BUSY: Patience = Patience {
    first_delay: Duration::from_millis(500),
    max_delay: Duration::from_secs(5),
    deadline: Duration::from_secs(300),
};

/// API Gateway serialises the writes to one API: a write while another is under way answers 409
/// ConflictException "Unable to complete operation due to concurrent modification. Please try
/// again later." The SDK does not retry it (a modelled error, not in its throttling list), and
/// `up` writes routes, integrations, the authorizer and the stage of one API concurrently. On the
/// API Gateway client this classifier makes every operation retry it with the client's backoff,
/// as terraform-provider-aws does for every apigatewayv2 call (its PR 37902). A 409 for something
/// that exists (a route key taken) says so in another message and is not retried here; the route
/// tells the two apart by reading the routes as well.
#[derive(Debug, Default)]
pub struct ConcurrentModification;

impl ConcurrentModification {
    /// Whether an answer's status and body are API Gateway's concurrent-modification conflict.
    pub fn matches(status: u16, body: &[u8]) -> bool {
        status == 409 && String::from_utf8_lossy(body).contains("concurrent modification")
    }
}

impl ClassifyRetry for ConcurrentModification {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let conflict = ctx.response().is_some_and(|r| {
            r.body()
                .bytes()
                .is_some_and(|body| Self::matches(r.status().as_u16(), body))
        });
        if conflict {
            // "Please try again later": the kind whose retries cost the least of the retry quota.
            RetryAction::throttling_error()
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "API Gateway concurrent modification"
    }
}

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

/// What one look at something awaited found: it, or the state it is still in.
pub enum Look<T, S> {
    Done(T),
    NotYet(S),
}

/// Look until `look` finds what is awaited, sleeping between looks from `patience.first_delay`,
/// doubling up to `max_delay`. When another sleep would pass the deadline, `late` makes the error
/// from the last state seen and the time spent: what was awaited, and what to do.
pub async fn until<T, S, F, Fut>(
    patience: Patience,
    mut look: F,
    late: impl FnOnce(S, Duration) -> anyhow::Error,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Look<T, S>>>,
{
    let start = Instant::now();
    let mut delay = patience.first_delay;
    loop {
        let state = match look().await? {
            Look::Done(found) => return Ok(found),
            Look::NotYet(state) => state,
        };
        if start.elapsed() + delay > patience.deadline {
            return Err(late(state, start.elapsed()));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(patience.max_delay);
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

    #[test]
    fn the_concurrent_modification_conflict_is_told_from_a_taken_route_key() {
        let concurrent =
            br#"{"message":"Unable to complete operation due to concurrent modification. Please try again later."}"#;
        assert!(ConcurrentModification::matches(409, concurrent));
        let taken = br#"{"message":"Route with key subscribe already exists for this API"}"#;
        assert!(!ConcurrentModification::matches(409, taken));
        assert!(!ConcurrentModification::matches(400, concurrent));
    }

    #[tokio::test]
    async fn until_looks_again_until_done_and_names_the_last_state_when_late() {
        let mut looks = 0;
        let found = until(
            QUICK,
            || {
                looks += 1;
                let n = looks;
                async move { Ok(if n < 3 { Look::NotYet(n) } else { Look::Done("ready") }) }
            },
            |_, _| anyhow::anyhow!("never"),
        )
        .await;
        assert_eq!(found.unwrap(), "ready");
        let patience = Patience {
            deadline: Duration::from_millis(20),
            ..QUICK
        };
        let late = until(
            patience,
            || async { Ok(Look::<(), _>::NotYet("CREATING")) },
            |state, _| anyhow::anyhow!("still {state}"),
        )
        .await;
        assert_eq!(late.unwrap_err().to_string(), "still CREATING");
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
