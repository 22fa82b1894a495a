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

/// `down`, then `up` at once after it (which meets what `down` left settling); both must succeed.
async fn down_then_up_at_once(env: &Env, stack: &std::path::Path, steps: &mut Vec<Step>) {
    let down = step(env, "down", stack, &["down", "--yes", "-o", "json"], steps).await;
    assert_eq!(down.code, 0, "down: {down}");
    let up = step(env, "up at once after down", stack, &["up", "-o", "json"], steps).await;
    assert_eq!(up.code, 0, "up after down: {}\n{up}", env.proxy.realism_counts());
}

/// The last `down`, which must leave nothing of stack `name`.
async fn final_down(env: &Env, stack: &std::path::Path, name: &str, steps: &mut Vec<Step>) {
    let down = step(env, "final down", stack, &["down", "--yes", "-o", "json"], steps).await;
    assert_eq!(down.code, 0, "final down: {down}");
    assert_eq!(leftovers(env, name).await, Vec::<String>::new(), "nothing left");
}

/// The figures of a lifecycle, step by step (BENCHMARKS.md keeps them).
fn report(what: &str, steps: &[Step], started: Instant, env: &Env) {
    eprintln!("{what} in realism mode (60 ms per call, every behaviour on):");
    for s in steps {
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
        env.proxy.realism_counts()
    );
}

/// The event source mappings of a stack as AWS would list them (through the proxy), once none
/// of them is `Deleting` any more: the queue each reads from and its state, by queue.
pub(super) async fn settled_mappings(lambda: &aws_sdk_lambda::Client, stack: &str) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = lambda.list_event_source_mappings().send().await.unwrap();
        let mut mappings: Vec<(String, String)> = listed
            .event_source_mappings()
            .iter()
            .filter(|m| {
                m.function_arn()
                    .unwrap_or_default()
                    .contains(&format!(":function:{stack}-"))
            })
            .map(|m| {
                let queue = m
                    .event_source_arn()
                    .unwrap_or_default()
                    .rsplit(':')
                    .next()
                    .unwrap_or_default();
                (queue.to_string(), m.state().unwrap_or_default().to_string())
            })
            .collect();
        mappings.sort();
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
    let stage = dev_stage_seen(&env, &api).await;
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

    down_then_up_at_once(&env, &bigger, &mut steps).await;
    let mappings = settled_mappings(&lambda, name).await;
    assert_eq!(
        mappings,
        [
            (format!("{name}-dev-chunks"), "Enabled".to_string()),
            (format!("{name}-dev-events"), "Enabled".to_string())
        ],
        "exactly one mapping of each queue once the old ones are gone"
    );

    final_down(&env, &bigger, name, &mut steps).await;

    report("lifecycle", &steps, started, &env);
}

/// The lifecycle of a stack with `auth:` and `domain:`, every behaviour on at 60 ms per call:
/// cold `up` (every route there with its integration), a no-op `up` that writes nothing, `down`,
/// `up` again at once (a secret still being purged, a certificate token ACM remembers), dropping
/// `auth:`, `down`; nothing left but the validation record every certificate for the name shares.
#[tokio::test]
async fn a_stack_with_auth_and_a_domain_lives_through_its_lifecycle_against_an_aws_like_proxy() {
    // ACM issues 2 s after the request (moto's own clock), for every moto of this binary.
    std::env::set_var("MOTO_ACM_VALIDATION_WAIT", "2");
    let env = Env::start().await;
    env.proxy.set_latency(Duration::from_millis(60));
    env.proxy.set_realism(
        Realism::all()
            .lasting(Behaviour::RolePropagation, Duration::from_secs(10))
            .lasting(Behaviour::MappingDeletion, Duration::from_secs(30)),
    );
    let route53 = aws_sdk_route53::Client::new(&env.config);
    let zone = route53
        .create_hosted_zone()
        .name("example.com")
        .caller_reference("lifecycle")
        .send()
        .await
        .unwrap();
    let zone = zone
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    let name = "fulllife";
    let domain = format!("\ndomain:\n  name: ws.example.com\n  hosted_zone_id: {zone}\n");
    let with_auth = env.write_stack(
        "full.yaml",
        &format!("{}{domain}\nauth:\n  secret: generated\n", stack_text(name, &[])),
    );
    let without_auth = env.write_stack("open.yaml", &format!("{}{domain}", stack_text(name, &[])));
    let proxied = through_proxy(&env).await;
    let gateway = aws_sdk_apigatewayv2::Client::new(&proxied);
    let mut steps = Vec::new();
    let started = Instant::now();

    let up = step(&env, "cold up", &with_auth, &["up", "-o", "json"], &mut steps).await;
    assert_eq!(up.code, 0, "cold up: {}\n{up}", env.proxy.realism_counts());
    assert_eq!(up.json()["outputs"]["websocket_url"], "wss://ws.example.com", "{up}");
    let api = common::apis_of(&env, name).await[0].api_id().unwrap().to_string();
    let routes = gateway.get_routes().api_id(&api).send().await.unwrap();
    let mut keys: Vec<&str> = routes.items().iter().filter_map(|r| r.route_key()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["$connect", "$disconnect", "resume", "subscribe", "unsubscribe"],
        "every route"
    );
    for route in routes.items() {
        let target = route.target().unwrap_or_default();
        let id = target
            .strip_prefix("integrations/")
            .unwrap_or_else(|| panic!("{route:?}"));
        gateway
            .get_integration()
            .api_id(&api)
            .integration_id(id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("route {:?} without its integration: {e:?}", route.route_key()));
    }

    let again = step(&env, "no-op up", &with_auth, &["up", "-o", "json"], &mut steps).await;
    assert_eq!(again.code, 0, "no-op up: {again}");
    assert_eq!(
        steps.last().unwrap().writes,
        0,
        "a no-op up wrote: {:?}",
        env.proxy.writes()
    );

    down_then_up_at_once(&env, &with_auth, &mut steps).await;

    let open = step(&env, "auth dropped", &without_auth, &["up", "-o", "json"], &mut steps).await;
    assert_eq!(open.code, 0, "dropping auth: {}\n{open}", env.proxy.realism_counts());
    let api = common::apis_of(&env, name).await[0].api_id().unwrap().to_string();
    let routes = gateway.get_routes().api_id(&api).send().await.unwrap();
    let connect = routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some("$connect"))
        .unwrap();
    assert_eq!(
        connect.authorization_type().map(|t| t.as_str()),
        Some("NONE"),
        "{connect:?}"
    );
    assert_eq!(connect.authorizer_id().filter(|id| !id.is_empty()), None, "{connect:?}");

    final_down(&env, &without_auth, name, &mut steps).await;
    let acm = aws_sdk_acm::Client::new(&env.config);
    let certificates = acm.list_certificates().send().await.unwrap();
    assert!(certificates.certificate_summary_list().is_empty(), "{certificates:?}");
    let records = route53
        .list_resource_record_sets()
        .hosted_zone_id(&zone)
        .send()
        .await
        .unwrap();
    let left: Vec<(&str, &str)> = records
        .resource_record_sets()
        .iter()
        .filter(|r| !matches!(r.r#type().as_str(), "NS" | "SOA"))
        .map(|r| (r.name(), r.r#type().as_str()))
        .collect();
    assert_eq!(left.len(), 1, "only the shared validation record: {left:?}");
    assert_eq!(left[0].1, "CNAME", "{left:?}");

    report("lifecycle with auth and domain", &steps, started, &env);
}
