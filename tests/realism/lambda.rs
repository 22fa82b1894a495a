//! Realism mode's Lambda behaviours, each shown with raw SDK calls through the proxy: a role
//! Lambda cannot use yet, Pending and InProgress functions, a mapping being deleted, hidden tags.

use super::*;

/// What a function with an SQS event source is made with.
fn lambda_clients(aws: &SdkConfig) -> (aws_sdk_iam::Client, aws_sdk_lambda::Client, aws_sdk_sqs::Client) {
    let iam = aws_sdk_iam::Client::new(aws);
    (iam, aws_sdk_lambda::Client::new(aws), aws_sdk_sqs::Client::new(aws))
}

#[tokio::test]
async fn a_fresh_role_or_policy_is_refused_by_lambda_until_it_propagates() {
    let window = RAW_WINDOW;
    let (env, aws) = proxied(Realism::off().lasting(Behaviour::RolePropagation, window)).await;
    let (iam, lambda, sqs) = lambda_clients(&aws);

    let role = create_role(&iam, "lag-role").await;
    let error = create_function(&lambda, "lag-fn", &role).send().await.unwrap_err();
    let error = error.into_service_error();
    assert!(error.is_invalid_parameter_value_exception(), "{error:?}");
    assert_eq!(
        error.message(),
        Some("The role defined for the function cannot be assumed by Lambda.")
    );
    env.proxy.pass_time(window);
    create_function(&lambda, "lag-fn", &role)
        .send()
        .await
        .expect("CreateFunction once the role propagated");

    // A policy written on the role starts the lag again: for the mapping, and for an update
    // that names the role.
    let queue = sqs.create_queue().queue_name("lag-queue").send().await.unwrap();
    let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:lag-queue");
    assert!(queue.queue_url().is_some());
    iam.put_role_policy()
        .role_name("lag-role")
        .policy_name("sqs")
        .policy_document(POLICY)
        .send()
        .await
        .unwrap();
    let error = lambda
        .create_event_source_mapping()
        .function_name("lag-fn")
        .event_source_arn(&queue_arn)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_invalid_parameter_value_exception(), "{error:?}");
    assert_eq!(
        error.message(),
        Some("The provided execution role does not have permissions to call ReceiveMessage on SQS")
    );
    let error = lambda
        .update_function_configuration()
        .function_name("lag-fn")
        .role(&role)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_invalid_parameter_value_exception(), "{error:?}");
    env.proxy.pass_time(window);
    lambda
        .create_event_source_mapping()
        .function_name("lag-fn")
        .event_source_arn(&queue_arn)
        .send()
        .await
        .expect("CreateEventSourceMapping once the policy propagated");
    assert_eq!(env.proxy.realism_counts().conflicts_of(Behaviour::RolePropagation), 3);
}

#[tokio::test]
async fn a_new_or_updated_function_is_pending_or_in_progress_and_refuses_updates_meanwhile() {
    let window = RAW_WINDOW;
    let (env, aws) = proxied(Realism::off().lasting(Behaviour::FunctionStates, window)).await;
    let (iam, lambda) = (aws_sdk_iam::Client::new(&aws), aws_sdk_lambda::Client::new(&aws));
    let role = create_role(&iam, "states-role").await;
    create_function(&lambda, "states-fn", &role).send().await.unwrap();
    let set_memory = |mb: i32| {
        let update = lambda.update_function_configuration().function_name("states-fn");
        update.memory_size(mb).send()
    };

    let function = lambda.get_function().function_name("states-fn").send().await.unwrap();
    let state = function
        .configuration()
        .and_then(|c| c.state())
        .map(|s| s.as_str().to_string());
    assert_eq!(state.as_deref(), Some("Pending"));
    let error = lambda
        .update_function_code()
        .function_name("states-fn")
        .zip_file(empty_zip())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_resource_conflict_exception(), "{error:?}");
    assert!(
        error
            .message()
            .unwrap_or_default()
            .contains("is currently in the following state: 'Pending'"),
        "{error:?}"
    );
    env.proxy.pass_time(window);
    lambda
        .wait_until_function_active_v2()
        .function_name("states-fn")
        .wait(Duration::from_secs(30))
        .await
        .expect("Active once the window has passed");

    set_memory(512).await.expect("first update");
    let config = lambda
        .get_function_configuration()
        .function_name("states-fn")
        .send()
        .await
        .unwrap();
    assert_eq!(config.last_update_status().map(|s| s.as_str()), Some("InProgress"));
    let error = set_memory(1024).await.unwrap_err().into_service_error();
    assert!(error.is_resource_conflict_exception(), "{error:?}");
    let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:states-fn");
    assert_eq!(
        error.message(),
        Some(
            format!("The operation cannot be performed at this time. An update is in progress for resource: {arn}")
                .as_str()
        )
    );
    env.proxy.pass_time(window);
    lambda
        .wait_until_function_updated_v2()
        .function_name("states-fn")
        .wait(Duration::from_secs(30))
        .await
        .expect("Successful once the window has passed");
    set_memory(1024).await.expect("an update after the last one finished");
    assert_eq!(env.proxy.realism_counts().conflicts_of(Behaviour::FunctionStates), 2);
}

#[tokio::test]
async fn a_deleted_mapping_lingers_as_deleting_and_blocks_a_new_one_for_the_same_pair() {
    let window = RAW_WINDOW;
    let (env, aws) = proxied(Realism::off().lasting(Behaviour::MappingDeletion, window)).await;
    let (iam, lambda, sqs) = lambda_clients(&aws);
    let role = create_role(&iam, "esm-role").await;
    create_function(&lambda, "esm-fn", &role).send().await.unwrap();
    sqs.create_queue().queue_name("esm-queue").send().await.unwrap();
    let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:esm-queue");
    let create = || {
        lambda
            .create_event_source_mapping()
            .function_name("esm-fn")
            .event_source_arn(&queue_arn)
            .send()
    };
    let old = create().await.unwrap().uuid().unwrap().to_string();
    lambda.delete_event_source_mapping().uuid(&old).send().await.unwrap();

    let listed = lambda
        .list_event_source_mappings()
        .function_name("esm-fn")
        .event_source_arn(&queue_arn)
        .send()
        .await
        .unwrap();
    let states: Vec<_> = listed
        .event_source_mappings()
        .iter()
        .map(|m| (m.uuid().unwrap_or_default(), m.state().unwrap_or_default()))
        .collect();
    assert_eq!(states, vec![(old.as_str(), "Deleting")]);
    let got = lambda.get_event_source_mapping().uuid(&old).send().await.unwrap();
    assert_eq!(got.state(), Some("Deleting"));
    let error = create().await.unwrap_err().into_service_error();
    assert!(error.is_resource_conflict_exception(), "{error:?}");
    assert_eq!(
        error.message(),
        Some(format!(
            "The event source arn (\" {queue_arn} \") and function (\" esm-fn \") provided mapping already exists. Please update or delete the existing mapping with UUID {old}"
        ).as_str())
    );

    env.proxy.pass_time(window);
    let listed = lambda
        .list_event_source_mappings()
        .function_name("esm-fn")
        .send()
        .await
        .unwrap();
    assert!(listed.event_source_mappings().is_empty(), "{listed:?}");
    let new = create().await.expect("a new mapping once the old one is gone");
    assert_ne!(new.uuid(), Some(old.as_str()));
    let counts = env.proxy.realism_counts();
    assert_eq!(counts.conflicts_of(Behaviour::MappingDeletion), 1, "{counts}");
}

#[tokio::test]
async fn get_function_hides_tags_behind_tags_error_while_list_tags_shows_them() {
    let (_env, aws) = proxied(Realism::only(Behaviour::TagsHidden)).await;
    let (iam, lambda) = (aws_sdk_iam::Client::new(&aws), aws_sdk_lambda::Client::new(&aws));
    let role = create_role(&iam, "tags-role").await;
    let created = create_function(&lambda, "tags-fn", &role)
        .tags("wsstack:stack", "tags")
        .send()
        .await
        .unwrap();
    let function = lambda.get_function().function_name("tags-fn").send().await.unwrap();
    assert_eq!(function.tags(), None);
    let error = function.tags_error().expect("TagsError");
    assert_eq!(error.error_code(), "AccessDeniedException");
    assert!(error.message().contains("lambda:ListTags"), "{error:?}");
    let tags = lambda
        .list_tags()
        .resource(created.function_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags.tags().and_then(|t| t.get("wsstack:stack")).map(String::as_str),
        Some("tags")
    );
}
