//! `auth:` on AWS: the stack's secret, the authorizer function with its role and log group, the
//! API authorizer on `$connect` and its permission, GSI2; created, found again, updated in place,
//! restored when scheduled for deletion, retired when `auth:` goes, removed by `down`; and
//! `wsstack token`. The real binary against moto, every effect read back through the SDK.

mod common;

use common::{apis_of, counts, leftovers, stack_text, Env, ACCOUNT, REGION};
use testkit::{Behaviour, Realism};
use wsstack_handlers::auth::{ClaimNames, Expectations, Identity, SecretVerifier};

const SECRET: &str = "wsstack/au-dev/auth-key";

fn with_auth(stack: &str, extra: &str) -> String {
    format!("{}\nauth:\n  secret: generated\n{extra}", stack_text(stack, &[]))
}

fn secrets(env: &Env) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&env.config)
}

async fn secret_value(env: &Env) -> String {
    let answer = secrets(env).get_secret_value().secret_id(SECRET).send().await.unwrap();
    answer.secret_string().unwrap().to_string()
}

async fn connect_route(env: &Env, api: &str) -> aws_sdk_apigatewayv2::types::Route {
    let routes = env.apigateway().get_routes().api_id(api).send().await.unwrap();
    routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some("$connect"))
        .cloned()
        .expect("a $connect route")
}

#[tokio::test]
async fn auth_resources_live_through_up_drift_retirement_and_down() {
    let env = Env::start().await;
    // As on AWS: an authorizer a route refers to cannot be deleted, and a secret purged moments
    // ago blocks a new one of its name.
    env.proxy
        .set_realism(Realism::only(Behaviour::AuthorizerReferenced).with(Behaviour::SecretPurgeLag));
    let stack = env.write_stack("stack.yaml", &with_auth("au", ""));
    let run = env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(
        run.json()["access"],
        "connections need a token signed with the stack's secret (`wsstack token`)"
    );
    let api = apis_of(&env, "au").await[0].api_id().unwrap().to_string();

    // The secret: tagged, 64 letters and digits, never in any output.
    let described = secrets(&env).describe_secret().secret_id(SECRET).send().await.unwrap();
    let tags: Vec<(String, String)> = described
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect();
    assert!(tags.contains(&("wsstack:stack".into(), "au".into())), "{tags:?}");
    let key = secret_value(&env).await;
    assert_eq!(key.len(), 64);
    assert!(
        key.chars().all(|c| c.is_ascii_alphanumeric()),
        "letters and digits only"
    );

    // The authorizer function, its role reading exactly that secret.
    let function = env
        .lambda()
        .get_function()
        .function_name("au-dev-authorizer")
        .send()
        .await
        .unwrap();
    let config = function.configuration().unwrap();
    let variables = config.environment().unwrap().variables().unwrap();
    assert_eq!(variables["WSSTACK_HANDLER"], "authorizer");
    assert_eq!(variables["AUTH_SECRET_ARN"], SECRET);
    assert!(!variables.contains_key("AUTH_USER_CLAIM"), "default claims are not set");
    assert_eq!(config.memory_size(), Some(128));
    let role = format!("au-dev-{REGION}-authorizer");
    assert_eq!(
        config.role(),
        Some(format!("arn:aws:iam::{ACCOUNT}:role/{role}").as_str())
    );
    let policy = env
        .iam()
        .get_role_policy()
        .role_name(&role)
        .policy_name("wsstack")
        .send()
        .await
        .unwrap();
    let policy = urlencoding::decode(policy.policy_document()).unwrap().into_owned();
    assert!(
        policy.contains(&format!(
            "arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:wsstack/au-dev/auth-key-??????"
        )),
        "{policy}"
    );
    assert!(policy.contains("secretsmanager:GetSecretValue"), "{policy}");
    assert!(
        !policy.contains("dynamodb"),
        "the authorizer touches no table: {policy}"
    );

    // The API authorizer on $connect, without an identity source, and its permission.
    let route = connect_route(&env, &api).await;
    assert_eq!(route.authorization_type().map(|t| t.as_str()), Some("CUSTOM"));
    let authorizer_id = route
        .authorizer_id()
        .expect("$connect names the authorizer")
        .to_string();
    let authorizer = env
        .apigateway()
        .get_authorizer()
        .api_id(&api)
        .authorizer_id(&authorizer_id)
        .send()
        .await
        .unwrap();
    assert_eq!(authorizer.name(), Some("au-dev-authorizer"));
    assert_eq!(authorizer.authorizer_type().map(|t| t.as_str()), Some("REQUEST"));
    assert_eq!(
        authorizer.authorizer_uri(),
        Some(
            format!(
                "arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/arn:aws:lambda:{REGION}:{ACCOUNT}:function:au-dev-authorizer/invocations"
            )
            .as_str()
        )
    );
    assert!(authorizer.identity_source().is_empty());
    let permission = env
        .lambda()
        .get_policy()
        .function_name("au-dev-authorizer")
        .send()
        .await
        .unwrap();
    assert!(
        permission.policy().unwrap().contains(&format!(
            "arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/authorizers/{authorizer_id}"
        )),
        "{}",
        permission.policy().unwrap()
    );
    for route in ["subscribe", "$disconnect"] {
        let routes = env.apigateway().get_routes().api_id(&api).send().await.unwrap();
        let route = routes.items().iter().find(|r| r.route_key() == Some(route)).unwrap();
        assert_ne!(route.authorization_type().map(|t| t.as_str()), Some("CUSTOM"));
    }

    // GSI2 on the table.
    let table = env.table("au-dev-connections").await;
    let gsi2 = table
        .global_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some("GSI2"))
        .expect("GSI2")
        .clone();
    assert_eq!(gsi2.key_schema()[0].attribute_name(), "GSI2PK");
    assert_eq!(
        gsi2.projection().unwrap().projection_type().unwrap().as_str(),
        "KEYS_ONLY"
    );

    // A second up writes nothing; plan and status agree.
    env.proxy.clear();
    let again = env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(counts(&again).0 + counts(&again).1 + counts(&again).2, 0, "{again}");
    assert!(env.proxy.writes().is_empty(), "{:?}", env.proxy.writes());
    let mut outputs = vec![run.stdout.clone(), run.stderr.clone(), again.stdout.clone()];
    for args in [
        &["status"][..],
        &["status", "-o", "json"],
        &["plan"],
        &["plan", "-o", "json"],
        &["up"],
    ] {
        let shown = env.run(&stack, args).await;
        assert_eq!(shown.code, 0, "{args:?}: {shown}");
        outputs.extend([shown.stdout, shown.stderr]);
    }
    assert!(
        outputs.iter().all(|o| !o.contains(&key)),
        "the secret appears in an output"
    );

    // wsstack token: only the token on stdout, signed with the stack's key, with its claims.
    let token = env
        .run(
            &stack,
            &[
                "token",
                "--user-id",
                "user-7",
                "--entities",
                "order-*,user-7",
                "--ttl",
                "10m",
            ],
        )
        .await;
    assert_eq!(token.code, 0, "{token}");
    assert_eq!(token.stdout.lines().count(), 1, "{token}");
    assert!(!token.stdout.contains(&key) && !token.stderr.contains(&key));
    let verifier = SecretVerifier::new(key.as_bytes(), Expectations::default()).unwrap();
    let claims = verifier
        .verify(token.stdout.trim())
        .expect("a token the authorizer accepts");
    let identity = Identity::from_claims(&claims, &ClaimNames::default(), Default::default()).unwrap();
    assert_eq!(identity.user_id, "user-7");
    assert!(identity.allows("order-12") && !identity.allows("invoice-1"));
    env.run(
        &stack,
        &["token", "--user-id", "u", "--all-entities", "--ttl", "forever"],
    )
    .await
    .expect_exit(2);

    // Drift: tags change in place (same key); a secret scheduled for deletion is restored.
    let retagged = env.write_stack(
        "stack.yaml",
        &with_auth("au", "").replace("project: wsstack-demo", "project: other"),
    );
    secrets(&env)
        .delete_secret()
        .secret_id(SECRET)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let plan = env.run(&retagged, &["plan"]).await.expect_exit(3);
    plan.expect_stdout("scheduled for deletion");
    env.run(&retagged, &["up", "-o", "json"]).await.expect_exit(0);
    let described = secrets(&env).describe_secret().secret_id(SECRET).send().await.unwrap();
    assert!(described.deleted_date().is_none(), "restored");
    assert!(described.tags().iter().any(|t| t.value() == Some("other")));
    assert_eq!(
        secret_value(&env).await,
        key,
        "the same key: tokens minted before still verify"
    );

    // A rotation: a new AWSCURRENT, the old key AWSPREVIOUS; no drift, and `up` leaves it alone.
    let rotated = env
        .run(&retagged, &["rotate-secret", "-o", "json"])
        .await
        .expect_exit(0);
    assert!(rotated.json()["previous_key_valid_until"].is_string(), "{rotated}");
    assert!(!rotated.stdout.contains(&key) && !rotated.stderr.contains(&key));
    let new_key = secret_value(&env).await;
    assert_ne!(new_key, key);
    let previous = secrets(&env)
        .get_secret_value()
        .secret_id(SECRET)
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(previous.secret_string(), Some(key.as_str()));
    env.proxy.clear();
    env.run(&retagged, &["plan"]).await.expect_exit(0);
    env.run(&retagged, &["status"]).await.expect_exit(0);
    let again = env.run(&retagged, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(counts(&again).0 + counts(&again).1 + counts(&again).2, 0, "{again}");
    assert!(env.proxy.writes().is_empty(), "{:?}", env.proxy.writes());
    assert_eq!(secret_value(&env).await, new_key, "up put no key back");
    // Within the window a second rotation needs --force (it would retire `key` at once).
    let twice = env.run(&retagged, &["rotate-secret"]).await.expect_exit(2);
    twice.expect_stderr("--force");
    // The new key signs `wsstack token`'s tokens.
    let token = env
        .run(&retagged, &["token", "--user-id", "user-7", "--all-entities"])
        .await
        .expect_exit(0);
    let verifier = SecretVerifier::new(new_key.as_bytes(), Expectations::default()).unwrap();
    let claims = verifier.verify(token.stdout.trim()).expect("signed with AWSCURRENT");
    assert_eq!(claims["entities"], serde_json::json!(["*"]));
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 3600);

    // Without auth: everything of it goes, $connect is open again, and up says so.
    let open = env.write_stack("stack.yaml", &stack_text("au", &[]));
    let run = env.run(&open, &["up"]).await.expect_exit(0);
    run.expect_stdout("anyone who knows the URL may connect");
    let route = connect_route(&env, &api).await;
    assert_ne!(route.authorization_type().map(|t| t.as_str()), Some("CUSTOM"));
    assert_eq!(
        route.authorizer_id().filter(|id| !id.is_empty()),
        None,
        "the route let go of the authorizer: {route:?}"
    );
    assert!(
        env.proxy.realism_counts().conflicts_of(Behaviour::AuthorizerReferenced) >= 1,
        "{}",
        env.proxy.realism_counts()
    );
    let gone = env
        .apigateway()
        .get_authorizer()
        .api_id(&api)
        .authorizer_id(&authorizer_id)
        .send()
        .await;
    assert!(gone.is_err(), "the authorizer is deleted");
    assert!(secrets(&env).describe_secret().secret_id(SECRET).send().await.is_err());
    assert!(env
        .lambda()
        .get_function()
        .function_name("au-dev-authorizer")
        .send()
        .await
        .is_err());
    assert!(env.iam().get_role().role_name(&role).send().await.is_err());
    let no_token = env
        .run(&open, &["token", "--user-id", "u", "--all-entities"])
        .await
        .expect_exit(2);
    no_token.expect_stderr("anyone may connect");

    // Back on at once (the secret is still being purged), then down removes every part, the
    // secret without a recovery window. (The file is written again: `open` took its place.)
    let stack = env.write_stack("stack.yaml", &with_auth("au", ""));
    let back = env.run(&stack, &["up"]).await;
    assert_eq!(back.code, 0, "{back}");
    assert!(
        env.proxy.realism_counts().conflicts_of(Behaviour::SecretPurgeLag) >= 1,
        "{}",
        env.proxy.realism_counts()
    );
    env.run(&stack, &["down", "--yes"]).await.expect_exit(0);
    assert_eq!(leftovers(&env, "au").await, Vec::<String>::new());
    let listed = secrets(&env)
        .list_secrets()
        .include_planned_deletion(true)
        .send()
        .await
        .unwrap();
    assert!(listed.secret_list().is_empty(), "purged, not waiting out a window");
    assert!(env.iam().get_role().role_name(&role).send().await.is_err());
}

/// `connect --token T` offers `websocket, T` as its protocols (the authorizer reads the token
/// there) and accepts the server echoing `websocket`; a real WebSocket server on loopback.
#[tokio::test]
// The handshake callback's error type is tungstenite's, not ours to shrink.
#[allow(clippy::result_large_err)]
async fn connect_sends_the_token_as_the_second_protocol() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::Message;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut offered = None;
        let mut socket = tokio_tungstenite::accept_hdr_async(stream, |request: &Request, mut response: Response| {
            offered = request
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_string());
            response
                .headers_mut()
                .insert("sec-websocket-protocol", "websocket".parse().unwrap());
            Ok(response)
        })
        .await
        .unwrap();
        socket.send(Message::text(r#"{"type":"hello"}"#)).await.unwrap();
        let _ = socket.close(None).await;
        offered
    });
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_wsstack"))
            .args([
                "connect",
                &url,
                "--token",
                "header.payload.signature",
                "--count",
                "1",
                "--timeout",
                "10",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("hello"), "{stdout}");
    assert_eq!(
        server.await.unwrap().as_deref(),
        Some("websocket, header.payload.signature")
    );
}

/// A table made before GSI2 (only GSI1) gets it from `up` with UpdateTable, keeping its items,
/// and a second `up` writes nothing.
#[tokio::test]
async fn up_adds_gsi2_to_a_table_made_before_it() {
    use std::collections::HashMap;

    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
        ProjectionType, ScalarAttributeType, Tag,
    };
    let (env, stack) = Env::with_stack("old").await;
    assert_eq!(env.run(&stack, &["up"]).await.code, 0);
    let table = "old-dev-connections";
    let dynamodb = env.dynamodb();
    dynamodb.delete_table().table_name(table).send().await.unwrap();
    let key = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .unwrap()
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(["pk", "sk", "GSI1PK", "GSI1SK"].map(attribute).to_vec()))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("GSI1")
                .key_schema(key("GSI1PK", KeyType::Hash))
                .key_schema(key("GSI1SK", KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .unwrap(),
        )
        .tags(Tag::builder().key("wsstack:stack").value("old").build().unwrap())
        .tags(Tag::builder().key("wsstack:stage").value("dev").build().unwrap())
        .tags(Tag::builder().key("project").value("wsstack-demo").build().unwrap())
        .send()
        .await
        .unwrap();
    let record = HashMap::from([
        ("pk".to_string(), AttributeValue::S("c1".into())),
        ("sk".to_string(), AttributeValue::S("connection#".into())),
    ]);
    let put = dynamodb.put_item().table_name(table).set_item(Some(record.clone()));
    put.send().await.unwrap();

    let plan = env.run(&stack, &["plan"]).await.expect_exit(3);
    plan.expect_stdout("index GSI2");
    env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    let described = dynamodb.describe_table().table_name(table).send().await.unwrap();
    let names: Vec<&str> = described
        .table()
        .unwrap()
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name())
        .collect();
    assert!(names.contains(&"GSI1") && names.contains(&"GSI2"), "{names:?}");
    let item = dynamodb.get_item().table_name(table).set_key(Some(record));
    let item = item.send().await.unwrap();
    assert!(item.item().is_some(), "the table was updated, not replaced");
    env.proxy.clear();
    env.run(&stack, &["up"]).await.expect_exit(0);
    assert!(env.proxy.writes().is_empty(), "{:?}", env.proxy.writes());
}
