//! The whole `wsstack` lifecycle against the proxy in realism mode, every behaviour on: the
//! check that the fixes of issue 10 hold together.

use super::*;

/// One step of the lifecycle: what it cost, printed as it goes so that a failing run still
/// shows the figures up to its failure.
struct Step {
    name: &'static str,
    calls: usize,
    writes: usize,
    wall: Duration,
}

async fn step(
    env: &Env,
    name: &'static str,
    stack: &std::path::Path,
    args: &[&str],
    steps: &mut Vec<Step>,
) -> common::Run {
    env.proxy.clear();
    let start = Instant::now();
    let run = env.run(stack, args).await;
    let wall = start.elapsed();
    let calls = env.proxy.calls();
    let writes = calls.iter().filter(|c| c.write && c.injected.is_none()).count();
    eprintln!(
        "{name}: exit {}, {} calls, {writes} writes, {wall:.1?}; so far {}",
        run.code,
        calls.len(),
        env.proxy.realism_counts()
    );
    steps.push(Step {
        name,
        calls: calls.len(),
        writes,
        wall,
    });
    run
}

/// The event source mappings of a stack as AWS would list them (through the proxy), once none
/// of them is `Deleting` any more.
pub(super) async fn settled_mappings(lambda: &aws_sdk_lambda::Client, stack: &str) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = lambda.list_event_source_mappings().send().await.unwrap();
        let mappings: Vec<(String, String)> = listed
            .event_source_mappings()
            .iter()
            .filter(|m| {
                m.function_arn()
                    .unwrap_or_default()
                    .contains(&format!(":function:{stack}-"))
            })
            .map(|m| {
                (
                    m.uuid().unwrap_or_default().to_string(),
                    m.state().unwrap_or_default().to_string(),
                )
            })
            .collect();
        if !mappings.iter().any(|(_, state)| state == "Deleting") || Instant::now() > deadline {
            return mappings;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn the_whole_lifecycle_converges_against_an_aws_like_proxy() {
    let env = Env::start().await;
    env.proxy.set_latency(Duration::from_millis(60));
    // IAM's lag as long as AWS's usual, since a run spends longer than the default window
    // between a role write and the Lambda call that needs it; a mapping delete that outlasts the
    // next `up`'s way to the event source.
    let mut realism = Realism::all()
        .lasting(Behaviour::RolePropagation, Duration::from_secs(10))
        .lasting(Behaviour::MappingDeletion, Duration::from_secs(30));
    // `WSSTACK_REALISM_WITHOUT=TagsHidden,DeadLetterTargetLag` leaves those behaviours out, to
    // check the fixes one at a time.
    let without = std::env::var("WSSTACK_REALISM_WITHOUT").unwrap_or_default();
    for behaviour in Behaviour::ALL {
        if without.split(',').any(|name| name.trim() == format!("{behaviour:?}")) {
            realism = realism.without(behaviour);
        }
    }
    env.proxy.set_realism(realism);
    let name = "realism";
    let stack = env.write_stack("stack.yaml", &stack_text(name, &[]));
    let lambda = aws_sdk_lambda::Client::new(&through_proxy(&env).await);
    let mut steps = Vec::new();
    let started = Instant::now();

    let up = step(&env, "cold up", &stack, &["up", "-o", "json"], &mut steps).await;
    assert_eq!(up.code, 0, "cold up: {}\n{up}", env.proxy.realism_counts());
    assert_eq!(counts(&up).0, STACK_RESOURCES as u64, "cold up: {up}");
    // `up` hands out the URL: the stage's deployment has landed by then.
    let api = common::apis_of(&env, name).await[0].api_id().unwrap().to_string();
    let stage = aws_sdk_apigatewayv2::Client::new(&through_proxy(&env).await)
        .get_stage()
        .api_id(&api)
        .stage_name("dev")
        .send()
        .await
        .unwrap();
    assert!(
        stage
            .last_deployment_status_message()
            .is_some_and(|m| m.starts_with("Successfully deployed")),
        "cold up returned before its stage was deployed: {stage:?}"
    );

    let again = step(&env, "no-op up", &stack, &["up", "-o", "json"], &mut steps).await;
    assert_eq!(again.code, 0, "no-op up: {again}");
    assert_eq!(counts(&again).3, STACK_RESOURCES as u64, "no-op up: {again}");
    assert_eq!(
        steps.last().unwrap().writes,
        0,
        "a no-op up wrote: {:?}",
        env.proxy.writes()
    );

    let bigger = env.write_stack("stack.yaml", &stack_text(name, &[("memory_mb: 256", "memory_mb: 512")]));
    let changed = step(&env, "memory change", &bigger, &["up", "-o", "json"], &mut steps).await;
    assert_eq!(changed.code, 0, "memory change: {changed}");
    assert!(counts(&changed).1 >= 1, "memory change updated nothing: {changed}");

    let down = step(&env, "down", &bigger, &["down", "--yes", "-o", "json"], &mut steps).await;
    assert_eq!(down.code, 0, "down: {down}");
    let up = step(
        &env,
        "up at once after down",
        &bigger,
        &["up", "-o", "json"],
        &mut steps,
    )
    .await;
    assert_eq!(up.code, 0, "up after down: {}\n{up}", env.proxy.realism_counts());
    let mappings = settled_mappings(&lambda, name).await;
    assert_eq!(
        mappings.len(),
        1,
        "exactly one mapping once the old one is gone: {mappings:?}"
    );
    assert_eq!(mappings[0].1, "Enabled", "{mappings:?}");

    let down = step(
        &env,
        "final down",
        &bigger,
        &["down", "--yes", "-o", "json"],
        &mut steps,
    )
    .await;
    assert_eq!(down.code, 0, "final down: {down}");
    assert_eq!(leftovers(&env, name).await, Vec::<String>::new(), "nothing left");

    let counts = env.proxy.realism_counts();
    eprintln!("lifecycle in realism mode (60 ms per call, every behaviour on):");
    for s in &steps {
        eprintln!(
            "  {:<24} {:>4} calls {:>4} writes {:>8.1?}",
            s.name, s.calls, s.writes, s.wall
        );
    }
    eprintln!(
        "  total: {} calls, {} writes, {:.1?} wall; went through {}",
        steps.iter().map(|s| s.calls).sum::<usize>(),
        steps.iter().map(|s| s.writes).sum::<usize>(),
        started.elapsed(),
        counts
    );
}
