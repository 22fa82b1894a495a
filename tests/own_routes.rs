//! Routes with the team's own code: a small Lambda custom runtime compiled here with `rustc` (std
//! only, the Runtime API over HTTP/1.1) deployed by `up` against moto, and run by `wsstack dev`
//! behind real WebSocket clients; updated only when its code changes, removed with everything it
//! had when the stack file drops it.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{counts, stack_text, Env};
use harness::{connect, next_message, send, subscribe, unsubscribe, Dev};
use serde_json::{json, Value};

/// The handler: for each invocation it posts `{"route", "table", "version", "frame"}` to the
/// connection through the management API (CALLBACK_URL), then answers 200 with the body
/// `{"reply": route}`, which reaches the client only when the route is two-way.
const HANDLER: &str = concat!(
    include_str!("lambda/http.rs"),
    r#"
const VERSION: &str = "v1";

/// The JSON string literal after `"field":` (quotes and escapes kept).
fn literal<'a>(event: &'a str, field: &str) -> &'a str {
    let start = event.find(&format!("\"{field}\":\"")).expect(field) + field.len() + 3;
    let mut escaped = false;
    for (i, c) in event[start + 1..].char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return &event[start..start + 1 + i + 1],
            _ => escaped = false,
        }
    }
    panic!("unterminated {field}")
}

fn main() {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").unwrap();
    let callback = std::env::var("CALLBACK_URL").unwrap();
    let (host, stage) = callback.trim_start_matches("http://").split_once('/').unwrap();
    let route = std::env::var("WSSTACK_ROUTE").unwrap_or_default();
    let table = std::env::var("TABLE_NAME").unwrap_or_default();
    loop {
        let (headers, event) = call(&api, "GET", "/2018-06-01/runtime/invocation/next", b"");
        let id = headers.iter().find(|(n, _)| n == "lambda-runtime-aws-request-id").unwrap().1.clone();
        let event = String::from_utf8(event).unwrap();
        let connection = literal(&event, "connectionId").trim_matches('"').to_string();
        let frame = literal(&event, "body");
        let answer = format!("{{\"route\":\"{route}\",\"table\":\"{table}\",\"version\":\"{VERSION}\",\"frame\":{frame}}}");
        management_call(host, "POST", &format!("/{stage}/@connections/{connection}"), answer.as_bytes());
        let reply = format!("{{\"statusCode\":200,\"body\":\"{{\\\"reply\\\":\\\"{route}\\\"}}\"}}");
        call(&api, "POST", &format!("/2018-06-01/runtime/invocation/{id}/response"), reply.as_bytes());
    }
}
"#
);

/// Compile the handler (with `version` in what it posts) into `dir/bootstrap`.
fn build_handler(dir: &Path, version: &str) -> PathBuf {
    let source = dir.join(format!("handler-{version}.rs"));
    std::fs::write(&source, HANDLER.replace("\"v1\"", &format!("\"{version}\""))).unwrap();
    let out = dir.join(format!("bootstrap-{version}"));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let status = std::process::Command::new(rustc)
        .args(["--edition", "2021", "-C", "debuginfo=0", "-o"])
        .arg(&out)
        .arg(&source)
        .status()
        .expect("run rustc");
    assert!(status.success(), "the test handler compiles");
    out
}

/// A zip with `bootstrap` at its root, as `cargo lambda build --output-format zip` makes.
fn zip_of(binary: &Path, out: &Path) -> PathBuf {
    let zip = wsstack_handlers::package::zip_bootstrap(&std::fs::read(binary).unwrap()).unwrap();
    std::fs::write(out, zip).unwrap();
    out.to_path_buf()
}

const BUNDLED: &str = "routes:\n  - subscribe\n  - unsubscribe\n";

fn own_routes(send_message: &str, default: Option<&str>) -> String {
    let mut routes = format!("{BUNDLED}  - name: sendMessage\n    {send_message}\n");
    if let Some(default) = default {
        routes.push_str(&format!("  - name: $default\n    {default}\n"));
    }
    routes
}

#[tokio::test]
async fn own_routes_answer_through_dev_and_default_takes_the_rest() {
    let env = Env::start().await;
    let bootstrap = build_handler(env.dir.path(), "v1");
    let zip = zip_of(&bootstrap, &env.dir.path().join("default.zip"));
    // sendMessage one-way, $default two-way.
    let routes = own_routes(
        &format!("bootstrap: {}", bootstrap.file_name().unwrap().to_str().unwrap()),
        Some(&format!(
            "code: ./{}\n    replies: true",
            zip.file_name().unwrap().to_str().unwrap()
        )),
    );
    let dev = Dev::start(&env, "mine", &[(BUNDLED, &routes)]).await;
    let (mut client, _) = connect(&dev.url, None).await;

    send(&mut client, json!({"action": "sendMessage", "text": "hi"})).await;
    let answer = next_message(&mut client, Duration::from_secs(20))
        .await
        .expect("sendMessage's own code answers");
    assert_eq!(
        answer,
        json!({"route": "sendMessage", "table": "mine-dev-connections", "version": "v1",
               "frame": "{\"action\":\"sendMessage\",\"text\":\"hi\"}"})
    );

    // A connection's frames are routed one at a time, in order: had sendMessage's body come
    // back, it would arrive before what $default posts.
    send(&mut client, json!({"action": "nobodyServesThis"})).await;
    let answer = next_message(&mut client, Duration::from_secs(20))
        .await
        .expect("$default answers");
    assert_eq!(
        answer["route"], "$default",
        "one-way sendMessage sent its body back: {answer}"
    );
    assert_eq!(answer["frame"], "{\"action\":\"nobodyServesThis\"}");
    // $default is two-way: its function's body comes back after what it posted.
    let reply = next_message(&mut client, Duration::from_secs(20)).await;
    assert_eq!(reply, Some(json!({"reply": "$default"})));

    // The bundled routes are still theirs, and acknowledge.
    subscribe(&mut client, "e-1").await;
    // Acknowledged once stored: the connection's record and the subscription are there.
    let ids = harness::all_connection_ids(&env, &dev.table()).await;
    assert_eq!(ids.len(), 1);
    assert_eq!(harness::records_of(&env, &dev.table(), &ids[0]).await, 2);
    unsubscribe(&mut client, "e-1").await;
}

#[tokio::test]
async fn without_default_an_unknown_action_still_gets_the_error_frame() {
    let env = Env::start().await;
    let bootstrap = build_handler(env.dir.path(), "v1");
    let routes = own_routes(&format!("bootstrap: {}", bootstrap.display()), None);
    let dev = Dev::start(&env, "nodef", &[(BUNDLED, &routes)]).await;
    let (mut client, _) = connect(&dev.url, None).await;
    send(&mut client, json!({"action": "nobodyServesThis"})).await;
    let answer = next_message(&mut client, Duration::from_secs(20))
        .await
        .expect("an answer");
    assert_eq!(answer["message"], "Forbidden", "{answer}");
}

/// Every write of the proxy's log, as `service operation`.
#[tokio::test]
async fn up_deploys_updates_only_new_code_and_removes_a_dropped_route() {
    let env = Env::start().await;
    let v1 = build_handler(env.dir.path(), "v1");
    let v2 = build_handler(env.dir.path(), "v2");
    let with_replies = |binary: &Path, replies: bool| {
        let route = format!("bootstrap: {}\n    replies: {replies}", binary.display());
        stack_text("own", &[(BUNDLED, &own_routes(&route, None))])
    };
    let with = |binary: &Path| with_replies(binary, true);
    let path = env.write_stack("own.yaml", &with(&v1));
    env.run(&path, &["up", "-o", "json"]).await.expect_exit(0);

    let function = env
        .lambda()
        .get_function_configuration()
        .function_name("own-dev-route-sendMessage")
        .send()
        .await
        .expect("the route's function");
    assert_eq!(function.runtime().map(|r| r.as_str()), Some("provided.al2023"));
    let variables = function.environment().and_then(|e| e.variables()).unwrap();
    assert_eq!(variables["TABLE_NAME"], "own-dev-connections");
    assert!(variables["CALLBACK_URL"].starts_with("https://"), "{variables:?}");
    let role_name = "own-dev-us-east-1-route-sendMessage";
    assert!(function.role().unwrap().ends_with(&format!(":role/{role_name}")));
    let policy = env
        .iam()
        .get_role_policy()
        .role_name(role_name)
        .policy_name("wsstack")
        .send()
        .await
        .expect("the route's own role policy");
    let policy: Value = serde_json::from_str(&urlencoding_decode(policy.policy_document())).unwrap();
    let resources = policy["Statement"].to_string();
    assert!(resources.contains("table/own-dev-connections"), "{policy}");
    assert!(resources.contains("/dev/*/@connections/*"), "{policy}");
    assert!(
        resources.contains("log-group:/aws/lambda/own-dev-route-sendMessage:*"),
        "{policy}"
    );
    let statement = permission_source(&env, "own-dev-route-sendMessage").await;
    assert!(statement.ends_with("/dev/sendMessage"), "{statement}");
    let api = common::apis_of(&env, "own").await[0].api_id().unwrap().to_string();
    // Two-way routes (sendMessage with `replies: true`, the bundled subscribe, unsubscribe and
    // resume, which acknowledge) have their route response; $connect and $disconnect have none.
    let routes = env.apigateway().get_routes().api_id(&api).send().await.unwrap();
    assert!(routes.items().iter().any(|r| r.route_key() == Some("sendMessage")));
    assert_eq!(
        route_responses(&env, &api).await,
        [
            ("$connect", None, vec![]),
            ("$disconnect", None, vec![]),
            ("resume", Some("$default".to_string()), vec!["$default".to_string()]),
            (
                "sendMessage",
                Some("$default".to_string()),
                vec!["$default".to_string()]
            ),
            ("subscribe", Some("$default".to_string()), vec!["$default".to_string()]),
            (
                "unsubscribe",
                Some("$default".to_string()),
                vec!["$default".to_string()]
            ),
        ]
        .map(|(key, selection, responses)| (key.to_string(), selection, responses))
    );
    assert!(env
        .logs()
        .describe_log_groups()
        .log_group_name_prefix("/aws/lambda/own-dev-route-sendMessage")
        .send()
        .await
        .unwrap()
        .log_groups()
        .iter()
        .any(|g| g.log_group_name() == Some("/aws/lambda/own-dev-route-sendMessage")));

    // Nothing changed: nothing written.
    env.proxy.clear();
    env.run(&path, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(env.writes(), Vec::<String>::new());

    // New code: one upload, of that function.
    std::fs::write(&path, with(&v2)).unwrap();
    env.proxy.clear();
    let run = env.run(&path, &["up", "-o", "json"]).await.expect_exit(0);
    let uploads: Vec<String> = env.writes().into_iter().filter(|w| w.ends_with("/code")).collect();
    assert_eq!(
        uploads,
        vec!["lambda PUT /2015-03-31/functions/own-dev-route-sendMessage/code".to_string()]
    );
    assert_eq!(counts(&run).1, 1, "{run}");

    // One-way again: its route response goes, nothing else changes.
    std::fs::write(&path, with_replies(&v2, false)).unwrap();
    env.proxy.clear();
    let run = env.run(&path, &["up", "-o", "json"]).await.expect_exit(0);
    let writes = env.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(
        writes[0].starts_with("apigateway DELETE /v2/apis/") && writes[0].contains("/routeresponses/"),
        "{writes:?}"
    );
    assert_eq!(counts(&run).2, 1, "{run}");
    let responses = route_responses(&env, &api).await;
    let send_message = responses.iter().find(|(key, ..)| key == "sendMessage").unwrap();
    assert!(send_message.2.is_empty(), "{responses:?}");

    // Taken out of the file: route, permission, function, log group and role go.
    std::fs::write(&path, stack_text("own", &[])).unwrap();
    let run = env.run(&path, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(counts(&run).2, 5, "{run}");
    let routes = env.apigateway().get_routes().api_id(&api).send().await.unwrap();
    assert!(!routes.items().iter().any(|r| r.route_key() == Some("sendMessage")));
    assert!(env
        .lambda()
        .get_function()
        .function_name("own-dev-route-sendMessage")
        .send()
        .await
        .is_err());
    assert!(env.iam().get_role().role_name(role_name).send().await.is_err());
    let leftovers = common::leftovers(&env, "own").await;
    assert!(!leftovers.iter().any(|l| l.contains("sendMessage")), "{leftovers:?}");
    // And the next up finds nothing more to do.
    env.proxy.clear();
    env.run(&path, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(env.writes(), Vec::<String>::new());

    // Back in the file, then `down`: nothing of the stack is left, the route's role included.
    std::fs::write(&path, with(&v2)).unwrap();
    assert_eq!(env.run(&path, &["up"]).await.code, 0);
    env.run(&path, &["down", "--yes"]).await.expect_exit(0);
    assert_eq!(common::leftovers(&env, "own").await, Vec::<String>::new());
    assert!(env.iam().get_role().role_name(role_name).send().await.is_err());
}

/// Each route of the API by key: its route response selection expression and its route
/// responses' keys.
async fn route_responses(env: &Env, api: &str) -> Vec<(String, Option<String>, Vec<String>)> {
    let routes = env.apigateway().get_routes().api_id(api).send().await.unwrap();
    let mut found = Vec::new();
    for route in routes.items() {
        let call = env.apigateway().get_route_responses().api_id(api);
        let responses = call.route_id(route.route_id().unwrap()).send().await.unwrap();
        found.push((
            route.route_key().unwrap().to_string(),
            route.route_response_selection_expression().map(String::from),
            responses
                .items()
                .iter()
                .filter_map(|r| r.route_response_key())
                .map(String::from)
                .collect(),
        ));
    }
    found.sort();
    found
}

/// The SourceArn of the function's API Gateway statement.
async fn permission_source(env: &Env, function: &str) -> String {
    let policy = env.lambda().get_policy().function_name(function).send().await.unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    policy["Statement"][0]["Condition"]["ArnLike"]["AWS:SourceArn"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn urlencoding_decode(text: &str) -> String {
    urlencoding::decode(text)
        .map(|d| d.into_owned())
        .unwrap_or_else(|_| text.to_string())
}

#[tokio::test]
async fn bad_routes_are_refused_at_their_line() {
    let env = Env::start().await;
    let bootstrap = build_handler(env.dir.path(), "v1");
    let not_a_zip = env.dir.path().join("not.zip");
    std::fs::write(&not_a_zip, b"PK\x03\x04 but no zip").unwrap();
    let empty_zip = env.dir.path().join("empty.zip");
    {
        let mut writer = zip::ZipWriter::new(std::fs::File::create(&empty_zip).unwrap());
        writer
            .start_file("handler/bootstrap", zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.finish().unwrap();
    }
    let not_executable = env.dir.path().join("not_executable.zip");
    {
        let mut writer = zip::ZipWriter::new(std::fs::File::create(&not_executable).unwrap());
        let options = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
        writer.start_file("bootstrap", options).unwrap();
        writer.finish().unwrap();
    }
    let b = bootstrap.display().to_string();
    // (the routes added after the bundled two, what the error says, its line within them)
    let cases = [
        ("  - ping\n".to_string(), "routes.2: unknown route `ping`", 0),
        (
            "  - name: sendMessage\n    code: ./missing.zip\n".into(),
            "routes.2.code: cannot read",
            1,
        ),
        (
            "  - name: sendMessage\n    code: ./empty.zip\n".into(),
            "has no `bootstrap` at its root",
            1,
        ),
        (
            "  - name: sendMessage\n    code: ./not.zip\n".into(),
            "is not a zip file",
            1,
        ),
        (
            "  - name: sendMessage\n    code: ./not_executable.zip\n".into(),
            "not_executable.zip is not executable",
            1,
        ),
        (
            format!("  - name: sendMessage\n    code: ./empty.zip\n    bootstrap: {b}\n"),
            "routes.2.bootstrap: give either `code` (a zip) or `bootstrap`",
            2,
        ),
        (
            "  - name: sendMessage\n".into(),
            "routes.2.name: route `sendMessage` needs its code",
            0,
        ),
        (
            format!("  - name: $connect\n    bootstrap: {b}\n"),
            "routes.2.name: `$connect` is not a route key",
            0,
        ),
        (
            format!("  - name: send message\n    bootstrap: {b}\n"),
            "routes.2.name: `send message` is not a route key",
            0,
        ),
        (
            format!("  - name: subscribe\n    bootstrap: {b}\n"),
            "routes.2.name: `subscribe` is a bundled route",
            0,
        ),
        (
            format!("  - name: sendMessage\n    bootstrp: {b}\n"),
            "routes.2: unknown field `bootstrp`, expected one of `name`, `code`, `bootstrap`, `schema`",
            1,
        ),
        (
            format!("  - name: sendMessage\n    bootstrap: {b}\n    schema: 5\n"),
            "routes.2.schema: a JSON Schema is an object",
            2,
        ),
        (
            format!("  - name: x\n    bootstrap: {b}\n  - name: x\n    bootstrap: {b}\n"),
            "routes.3: route `x` is listed twice",
            2,
        ),
    ];
    for (extra, expected, offset) in cases {
        let text = stack_text("bad", &[(BUNDLED, &format!("{BUNDLED}{extra}"))]);
        let path = env.write_stack("bad.yaml", &text);
        let run = env.run(&path, &["plan"]).await;
        assert_eq!(run.code, 2, "{extra}\n{run}");
        let first = text.lines().position(|l| l.starts_with("routes:")).unwrap() + 4;
        let line = first + offset;
        assert!(
            run.stderr.contains(&format!("bad.yaml:{line}:")),
            "{extra}: the error names line {line}\n{run}"
        );
        assert!(run.stderr.contains(expected), "{extra}: {expected}\n{run}");
    }
}
