//! Realism mode's API Gateway write serialisation: shown with raw SDK calls through the proxy,
//! and met by the real `wsstack` binary, whose concurrent writes to one API must all land; and a
//! conflict that never clears, which `up` gives up on at its retry deadline.

use std::collections::BTreeMap;

use aws_sdk_apigatewayv2::types::IntegrationType;

use super::*;

const CONCURRENT: &str = "Unable to complete operation due to concurrent modification. Please try again later.";

#[tokio::test]
async fn a_write_to_an_api_while_another_is_under_way_is_refused_as_a_concurrent_modification() {
    let (env, aws) = proxied(Realism::off().lasting(Behaviour::ConcurrentApiWrites, RAW_WINDOW)).await;
    let gateway = aws_sdk_apigatewayv2::Client::new(&aws);
    let api = &websocket_api(&gateway, "serial").await;
    let integration = || {
        gateway
            .create_integration()
            .api_id(api)
            .integration_type(IntegrationType::AwsProxy)
            .integration_uri("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:f/invocations")
            .send()
    };
    // Two writes at once: API Gateway takes one and refuses the other (whichever comes second,
    // while the first is in flight or just after it).
    let (first, second) = futures::join!(integration(), integration());
    let (taken, refused): (Vec<_>, Vec<_>) = [first, second].into_iter().partition(|r| r.is_ok());
    assert_eq!((taken.len(), refused.len()), (1, 1), "one taken, one refused");
    let error = refused.into_iter().next().unwrap().unwrap_err().into_service_error();
    assert!(error.is_conflict_exception(), "{error:?}");
    assert_eq!(
        aws_sdk_apigatewayv2::error::ProvideErrorMetadata::message(&error),
        Some(CONCURRENT)
    );

    // Once the API is quiet again, the write goes through.
    env.proxy.pass_time(RAW_WINDOW);
    integration().await.expect("a write to a quiet API");
    // Reads are never refused.
    gateway.get_integrations().api_id(api).send().await.unwrap();
    assert_eq!(
        env.proxy.realism_counts().conflicts_of(Behaviour::ConcurrentApiWrites),
        1
    );
}

#[tokio::test]
async fn up_lands_every_route_and_integration_when_api_gateway_takes_one_write_at_a_time() {
    let env = Env::start().await;
    env.proxy.set_realism(Realism::only(Behaviour::ConcurrentApiWrites));
    let name = "serial";
    let stack = env.write_stack("stack.yaml", &stack_text(name, &[]));
    let up = env.run(&stack, &["up", "-o", "json"]).await;
    assert_eq!(up.code, 0, "cold up: {}\n{up}", env.proxy.realism_counts());
    assert_eq!(counts(&up).0, STACK_RESOURCES as u64, "cold up: {up}");
    assert_showed(&env, Behaviour::ConcurrentApiWrites);

    // Every route is there, each pointing at the integration that invokes its own function.
    let api = common::apis_of(&env, name).await[0].api_id().unwrap().to_string();
    let gateway = env.apigateway();
    let integrations: BTreeMap<String, String> = gateway
        .get_integrations()
        .api_id(&api)
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .map(|i| {
            (
                format!("integrations/{}", i.integration_id().unwrap()),
                i.integration_uri().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(integrations.len(), 5, "one integration a route: {integrations:?}");
    let routes = gateway.get_routes().api_id(&api).send().await.unwrap();
    let mut served: Vec<(String, String)> = routes
        .items()
        .iter()
        .map(|r| {
            let uri = r
                .target()
                .and_then(|t| integrations.get(t))
                .cloned()
                .unwrap_or_default();
            let function = uri.split(":function:").nth(1).unwrap_or_default();
            let function = function.split('/').next().unwrap_or_default().to_string();
            (r.route_key().unwrap().to_string(), function)
        })
        .collect();
    served.sort();
    assert_eq!(
        served,
        [
            ("$connect", "connect"),
            ("$disconnect", "disconnect"),
            ("resume", "resume"),
            ("subscribe", "subscribe"),
            ("unsubscribe", "unsubscribe"),
        ]
        .map(|(key, handler)| (key.to_string(), format!("{name}-dev-{handler}")))
        .to_vec()
    );

    let down = env.run(&stack, &["down", "--yes", "-o", "json"]).await;
    assert_eq!(down.code, 0, "down: {}\n{down}", env.proxy.realism_counts());
    assert_eq!(leftovers(&env, name).await, Vec::<String>::new(), "nothing left");
}

/// The stage's retry of ConflictException is bounded: API Gateway answering CreateStage with a
/// conflict that never clears makes `up` fail after the retry deadline, instead of retrying
/// forever (it recursed without end before). It waits out that minute beside this binary's other
/// tests rather than alone in a test binary of its own.
#[tokio::test]
async fn a_stage_that_conflicts_forever_fails_up_after_the_retry_deadline() {
    let (env, stack) = Env::with_stack("conflict").await;
    env.run(&stack, &["up", "-q"]).await.expect_exit(0);
    let api = common::apis_of(&env, "conflict").await[0].api_id().unwrap().to_string();
    env.apigateway()
        .delete_stage()
        .api_id(&api)
        .stage_name("dev")
        .send()
        .await
        .unwrap();
    env.proxy.inject(testkit::Fault::new(
        "apigateway",
        &format!("POST /v2/apis/{api}/stages"),
        100_000,
        409,
        "ConflictException",
        CONCURRENT,
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
