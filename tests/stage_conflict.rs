//! The stage's retry of ConflictException is bounded: API Gateway answering CreateStage with a
//! conflict that never clears makes `up` fail after the retry deadline, instead of retrying
//! forever (it recursed without end before). The real binary against moto behind the proxy.

mod common;

use std::time::{Duration, Instant};

use common::{apis_of, Env};
use testkit::Fault;

#[tokio::test]
async fn a_stage_that_conflicts_forever_fails_up_after_the_retry_deadline() {
    let (env, stack) = Env::with_stack("conflict").await;
    env.run(&stack, &["up", "-q"]).await.expect_exit(0);
    let api = apis_of(&env, "conflict").await[0].api_id().unwrap().to_string();
    env.apigateway()
        .delete_stage()
        .api_id(&api)
        .stage_name("dev")
        .send()
        .await
        .unwrap();
    env.proxy.inject(Fault::new(
        "apigateway",
        &format!("POST /v2/apis/{api}/stages"),
        100_000,
        409,
        "ConflictException",
        "Unable to complete operation due to concurrent modification. Please try again later.",
    ));
    let started = Instant::now();
    let run = tokio::time::timeout(Duration::from_secs(180), env.run(&stack, &["up"]))
        .await
        .expect("`up` ends: the conflict retry has a deadline");
    assert_eq!(run.code, 1, "{run}");
    run.expect_stderr("ConflictException");
    // It did retry, with backoff, for its deadline (60 s), not a handful of times.
    assert!(started.elapsed() >= Duration::from_secs(50), "{:?}", started.elapsed());
    let attempts = env.proxy.calls().iter().filter(|c| c.injected.is_some()).count();
    assert!((5..100).contains(&attempts), "{attempts} CreateStage calls");
}
