//! Realism mode's IAM, API Gateway and SQS behaviours, each shown with raw SDK calls through the
//! proxy, and the proxy with realism off.

use super::*;

#[tokio::test]
async fn delete_role_conflicts_for_a_while_after_its_policies_go() {
    let window = RAW_WINDOW;
    let (env, aws) = proxied(Realism::off().lasting(Behaviour::RoleDeleteConflict, window)).await;
    let iam = aws_sdk_iam::Client::new(&aws);
    create_role(&iam, "gone-role").await;
    iam.put_role_policy()
        .role_name("gone-role")
        .policy_name("sqs")
        .policy_document(POLICY)
        .send()
        .await
        .unwrap();
    iam.delete_role_policy()
        .role_name("gone-role")
        .policy_name("sqs")
        .send()
        .await
        .unwrap();
    let error = iam
        .delete_role()
        .role_name("gone-role")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_delete_conflict_exception(), "{error:?}");
    assert_eq!(
        aws_sdk_iam::error::ProvideErrorMetadata::message(&error),
        Some("Cannot delete entity, must delete policies first.")
    );
    env.proxy.pass_time(window);
    iam.delete_role()
        .role_name("gone-role")
        .send()
        .await
        .expect("DeleteRole once IAM caught up");
}

#[tokio::test]
async fn an_auto_deployed_stage_shows_its_deployment_only_once_it_landed() {
    let window = RAW_WINDOW;
    let (env, aws) = proxied(Realism::off().lasting(Behaviour::LateDeployment, window)).await;
    let gateway = aws_sdk_apigatewayv2::Client::new(&aws);
    let api = &websocket_api(&gateway, "late").await;
    let create = gateway.create_stage().api_id(api).stage_name("prod");
    create.auto_deploy(true).send().await.unwrap();
    let stage = gateway.get_stage().api_id(api).stage_name("prod").send().await.unwrap();
    assert_eq!(
        (stage.deployment_id(), stage.last_deployment_status_message()),
        (None, None)
    );
    let stages = gateway.get_stages().api_id(api).send().await.unwrap();
    assert_eq!(stages.items()[0].last_deployment_status_message(), None);

    env.proxy.pass_time(window);
    let stage = gateway.get_stage().api_id(api).stage_name("prod").send().await.unwrap();
    let id = stage.deployment_id().expect("a deployment once it landed").to_string();
    assert_eq!(
        stage.last_deployment_status_message(),
        Some(format!("Successfully deployed stage with deployment ID '{id}'").as_str())
    );

    // The emulator has no UpdateStage: a stage created again deploys again just the same.
    let delete = gateway.delete_stage().api_id(api).stage_name("prod");
    delete.send().await.unwrap();
    let create = gateway.create_stage().api_id(api).stage_name("prod");
    create.auto_deploy(true).send().await.unwrap();
    let stage = gateway.get_stage().api_id(api).stage_name("prod").send().await.unwrap();
    assert_eq!(
        stage.last_deployment_status_message(),
        None,
        "a new stage deploys again"
    );
    env.proxy.pass_time(window);
    let stage = gateway.get_stage().api_id(api).stage_name("prod").send().await.unwrap();
    assert_ne!(stage.deployment_id(), Some(id.as_str()), "a new deployment");
}

#[tokio::test]
async fn a_queue_naming_a_dead_letter_queue_created_a_moment_ago_is_refused() {
    let window = RAW_WINDOW;
    let (env, aws) = proxied(Realism::off().lasting(Behaviour::DeadLetterTargetLag, window)).await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    sqs.create_queue().queue_name("main-dlq").send().await.unwrap();
    let policy = redrive_to("main-dlq");
    let create = || with_dead_letter_queue(&sqs, "main", &policy).send();
    let error = create().await.unwrap_err();
    assert_eq!(
        aws_sdk_sqs::error::ProvideErrorMetadata::code(&error),
        Some("InvalidParameterValue")
    );
    assert_eq!(
        aws_sdk_sqs::error::ProvideErrorMetadata::message(&error),
        Some(
            format!(
                "Value {policy} for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist."
            )
            .as_str()
        )
    );
    env.proxy.pass_time(window);
    create().await.expect("CreateQueue once the DLQ is known");
    assert_eq!(
        env.proxy.realism_counts().conflicts_of(Behaviour::DeadLetterTargetLag),
        1
    );
}

/// A window stays open until its behaviour has shown once, however late the next call comes:
/// what a test asserts never depends on how fast this machine gets from the write to that call.
#[tokio::test]
async fn a_behaviour_shows_once_however_late_the_next_call_comes() {
    let window = Duration::from_millis(1);
    let (env, aws) = proxied(Realism::off().lasting(Behaviour::DeadLetterTargetLag, window)).await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    sqs.create_queue().queue_name("late-dlq").send().await.unwrap();
    // Far past the window, as a slow machine would be.
    env.proxy.pass_time(Duration::from_secs(60));
    tokio::time::sleep(window * 20).await;
    let policy = redrive_to("late-dlq");
    let create = || with_dead_letter_queue(&sqs, "late", &policy).send();
    let error = create().await.unwrap_err();
    let code = aws_sdk_sqs::error::ProvideErrorMetadata::code(&error);
    assert_eq!(code, Some("InvalidParameterValue"), "{error:?}");
    create().await.expect("once shown, the window closes with its duration");
    assert_eq!(
        env.proxy.realism_counts().conflicts_of(Behaviour::DeadLetterTargetLag),
        1
    );
}

/// The RedrivePolicy that names dead-letter queue `dlq`.
fn redrive_to(dlq: &str) -> String {
    format!(r#"{{"deadLetterTargetArn":"arn:aws:sqs:{REGION}:{ACCOUNT}:{dlq}","maxReceiveCount":"5"}}"#)
}

/// CreateQueue of `name` with `policy` as its RedrivePolicy.
fn with_dead_letter_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    policy: &str,
) -> aws_sdk_sqs::operation::create_queue::builders::CreateQueueFluentBuilder {
    sqs.create_queue()
        .queue_name(name)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy, policy)
}

#[tokio::test]
async fn with_realism_off_the_proxy_forwards_as_before() {
    let env = Env::start().await;
    env.proxy.set_realism(Realism::all());
    env.proxy.set_realism(Realism::off());
    let aws = through_proxy(&env).await;
    let (iam, lambda) = (aws_sdk_iam::Client::new(&aws), aws_sdk_lambda::Client::new(&aws));
    let role = create_role(&iam, "plain-role").await;
    create_function(&lambda, "plain-fn", &role)
        .tags("k", "v")
        .send()
        .await
        .expect("no propagation lag");
    let function = lambda.get_function().function_name("plain-fn").send().await.unwrap();
    assert_eq!(function.tags().and_then(|t| t.get("k")).map(String::as_str), Some("v"));
    assert_eq!(
        function.configuration().and_then(|c| c.state()).map(|s| s.as_str()),
        Some("Active")
    );
    assert_eq!(env.proxy.realism_counts(), testkit::RealismCounts::default());
}
