//! Each realism behaviour on its own, met by the real `wsstack` binary: the fix of issue 10 for
//! that behaviour, shown to converge (each of these failed before its fix).

use super::*;

/// An emulator, and a cold `up` of stack `name` through its proxy with `realism` on, which must
/// succeed.
async fn cold_up(realism: Realism, name: &str) -> (Env, std::path::PathBuf) {
    let env = Env::start().await;
    env.proxy.set_realism(realism);
    let stack = env.write_stack("stack.yaml", &stack_text(name, &[]));
    let up = env.run(&stack, &["up", "-o", "json"]).await;
    assert_eq!(up.code, 0, "cold up: {}\n{up}", env.proxy.realism_counts());
    assert_eq!(counts(&up).0, STACK_RESOURCES as u64, "cold up: {up}");
    (env, stack)
}

/// `down` must succeed and leave nothing of stack `name`.
async fn down_leaves_nothing(env: &Env, stack: &std::path::Path, name: &str) {
    let down = env.run(stack, &["down", "--yes", "-o", "json"]).await;
    assert_eq!(down.code, 0, "down: {}\n{down}", env.proxy.realism_counts());
    assert_eq!(leftovers(env, name).await, Vec::<String>::new(), "nothing left");
}

#[tokio::test]
async fn a_queue_made_right_after_its_dead_letter_queue_is_retried_until_sqs_knows_it() {
    let (env, _) = cold_up(Realism::only(Behaviour::DeadLetterTargetLag), "dlqlag").await;
    assert_showed(&env, Behaviour::DeadLetterTargetLag);
}

#[tokio::test]
async fn functions_stay_ours_when_get_function_hides_their_tags() {
    let (env, stack) = cold_up(Realism::only(Behaviour::TagsHidden), "hidden").await;
    env.proxy.clear();
    let again = env.run(&stack, &["up", "-o", "json"]).await;
    assert_eq!(again.code, 0, "no-op up: {again}");
    assert_eq!(counts(&again).3, STACK_RESOURCES as u64, "no-op up: {again}");
    assert_eq!(
        env.proxy.writes().len(),
        0,
        "a no-op up wrote: {:?}",
        env.proxy.writes()
    );
    down_leaves_nothing(&env, &stack, "hidden").await;
}

#[tokio::test]
async fn down_waits_out_delete_conflict_after_the_role_policies_go() {
    let (env, stack) = cold_up(Realism::only(Behaviour::RoleDeleteConflict), "rolegone").await;
    down_leaves_nothing(&env, &stack, "rolegone").await;
    assert_showed(&env, Behaviour::RoleDeleteConflict);
}

#[tokio::test]
async fn up_returns_once_the_stage_deployment_has_landed() {
    let window = Duration::from_secs(4);
    let (env, _) = cold_up(Realism::off().lasting(Behaviour::LateDeployment, window), "late").await;
    let api = common::apis_of(&env, "late").await[0].api_id().unwrap().to_string();
    let stage = dev_stage_seen(&env, &api).await;
    assert!(
        stage.deployment_id().is_some()
            && stage
                .last_deployment_status_message()
                .is_some_and(|m| m.starts_with("Successfully deployed")),
        "up returned before its stage was deployed: {stage:?}"
    );
}

/// A route changed on a live stack (here: deleted by hand, made again by `up`): AutoDeploy deploys
/// the change some time after the write, and `up` returns only once the stage serves it, though
/// the stage itself did not change.
#[tokio::test]
async fn up_returns_once_a_route_change_is_deployed_on_a_live_stage() {
    let window = Duration::from_secs(4);
    let realism = Realism::off().lasting(Behaviour::LateDeployment, window);
    let (env, stack) = cold_up(realism, "redeploy").await;
    let api = common::apis_of(&env, "redeploy").await[0].api_id().unwrap().to_string();
    env.delete_route(&api, "subscribe").await;

    let up = env.run(&stack, &["up", "-o", "json"]).await;
    assert_eq!(up.code, 0, "{up}");
    let gateway = aws_sdk_apigatewayv2::Client::new(&through_proxy(&env).await);
    let deployments = gateway.get_deployments().api_id(&api).send().await.unwrap();
    let newest = deployments
        .items()
        .iter()
        .max_by_key(|d| d.created_date().copied())
        .expect("deployments");
    assert_eq!(
        newest.deployment_status().map(|s| s.as_str()),
        Some("DEPLOYED"),
        "up returned before the route's deployment landed: {deployments:?}"
    );
    let stage = gateway.get_stage().api_id(&api).stage_name("dev").send().await.unwrap();
    assert_eq!(stage.deployment_id(), newest.deployment_id(), "{stage:?}");
    assert!(
        deployments.items().len() >= 2,
        "the route change deployed again: {deployments:?}"
    );
}

#[tokio::test]
async fn up_updates_a_function_another_run_left_updating() {
    let window = Duration::from_secs(4);
    let (env, stack) = cold_up(Realism::off().lasting(Behaviour::FunctionStates, window), "busy").await;
    // Another run's update of the push function, still in progress when this `up` starts.
    let lambda = aws_sdk_lambda::Client::new(&through_proxy(&env).await);
    lambda
        .update_function_configuration()
        .function_name("busy-dev-push")
        .memory_size(384)
        .send()
        .await
        .expect("the other run's update");
    let before = env.proxy.realism_counts().rewrites_of(Behaviour::FunctionStates);
    let up = env.run(&stack, &["up", "-o", "json"]).await;
    assert_eq!(
        up.code,
        0,
        "up over an update in progress: {}\n{up}",
        env.proxy.realism_counts()
    );
    assert_eq!(counts(&up).1, 1, "the push function's memory put back: {up}");
    assert!(
        env.proxy.realism_counts().rewrites_of(Behaviour::FunctionStates) > before,
        "the update in progress never showed: {}",
        env.proxy.realism_counts()
    );
    let memory = lambda
        .get_function_configuration()
        .function_name("busy-dev-push")
        .send()
        .await
        .unwrap()
        .memory_size();
    assert_eq!(memory, Some(256));
}

#[tokio::test]
async fn up_right_after_down_waits_for_the_deleting_mapping_and_makes_a_live_one() {
    let window = Duration::from_secs(6);
    let realism = Realism::off().lasting(Behaviour::MappingDeletion, window);
    let (env, stack) = cold_up(realism, "remap").await;
    let down = env.run(&stack, &["down", "--yes", "-o", "json"]).await;
    assert_eq!(down.code, 0, "down: {down}");
    let up = env.run(&stack, &["up", "-o", "json"]).await;
    assert_eq!(up.code, 0, "up after down: {}\n{up}", env.proxy.realism_counts());
    assert_eq!(counts(&up).0, STACK_RESOURCES as u64, "up after down creates all: {up}");
    let lambda = aws_sdk_lambda::Client::new(&through_proxy(&env).await);
    let mappings = super::lifecycle::settled_mappings(&lambda, "remap").await;
    assert_eq!(
        mappings,
        [
            ("remap-dev-chunks".to_string(), "Enabled".to_string()),
            ("remap-dev-events".to_string(), "Enabled".to_string())
        ],
        "exactly one live mapping of each queue"
    );
}
