//! Shared harness of the integration tests: a moto server with the logging proxy in front, the
//! real `wsstack` binary run against it, and SDK clients that read AWS state back independently.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use testkit::{Moto, Proxy};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

/// One test's private AWS: a moto server, the proxy in front, a work directory.
pub struct Env {
    pub moto: Moto,
    pub proxy: Proxy,
    pub dir: tempfile::TempDir,
    pub config: SdkConfig,
}

/// The result of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// This run, once checked to have exited with `code` (the assertion shows the run when not).
    #[track_caller]
    pub fn expect_exit(self, code: i32) -> Run {
        assert_eq!(self.code, code, "{self}");
        self
    }

    /// Checks that the run printed `text` on stdout (the assertion shows the run when not).
    #[track_caller]
    pub fn expect_stdout(&self, text: &str) -> &Run {
        assert!(self.stdout.contains(text), "{self}");
        self
    }

    /// Checks that the run printed `text` on stderr (the assertion shows the run when not).
    #[track_caller]
    pub fn expect_stderr(&self, text: &str) -> &Run {
        assert!(self.stderr.contains(text), "{self}");
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn wsstack_binary() -> &'static str {
    env!("CARGO_BIN_EXE_wsstack")
}

/// A stack file for a stack named `name`, on top of the shipped stack.yaml, with `edits`
/// applied as (from, to) text replacements.
pub fn stack_text(name: &str, edits: &[(&str, &str)]) -> String {
    let shipped = std::fs::read_to_string(testkit::repo_root().join("stack.yaml")).expect("stack.yaml");
    let mut text = shipped.replace("name: wsstack-demo", &format!("name: {name}"));
    for (from, to) in edits {
        assert!(text.contains(from), "stack.yaml has no `{from}`");
        text = text.replace(from, to);
    }
    text
}

/// The API Gateway CloudWatch Logs role every test account has (`Env::start`): access logs,
/// on by default, need it, and a test of something else should not stop at it.
pub const LOGGING_ROLE: &str = "arn:aws:iam::123456789012:role/apigateway-cloudwatch-logs";

impl Env {
    /// A private emulator whose account has API Gateway's CloudWatch Logs role set.
    pub async fn start() -> Env {
        let env = Env::without_logging_role().await;
        let patch = aws_sdk_apigateway::types::PatchOperation::builder()
            .op(aws_sdk_apigateway::types::Op::Replace)
            .path("/cloudwatchRoleArn")
            .value(LOGGING_ROLE)
            .build();
        let apigateway = aws_sdk_apigateway::Client::new(&env.config);
        let call = apigateway.update_account().patch_operations(patch).send();
        call.await.expect("the account's API Gateway logging role is set");
        env
    }

    /// A private emulator as a fresh AWS account is: no API Gateway CloudWatch Logs role.
    pub async fn without_logging_role() -> Env {
        let moto = tokio::task::spawn_blocking(Moto::start)
            .await
            .unwrap()
            .expect("moto starts");
        let proxy = Proxy::start(&moto.endpoint()).expect("proxy starts");
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(moto.endpoint())
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .load()
            .await;
        Env {
            moto,
            proxy,
            dir: tempfile::tempdir().expect("temp dir"),
            config,
        }
    }

    /// One test's private AWS and, in its work directory, the shipped stack file as stack `name`.
    pub async fn with_stack(name: &str) -> (Env, PathBuf) {
        let env = Env::start().await;
        let stack = env.write_stack("stack.yaml", &stack_text(name, &[]));
        (env, stack)
    }

    /// Write a stack file into the work directory; returns its path.
    pub fn write_stack(&self, file: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(file);
        std::fs::write(&path, text).expect("write stack file");
        path
    }

    /// The command, pointed at the proxy, with test credentials and no other AWS settings.
    pub fn command(&self, stack: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(wsstack_binary());
        command
            .arg("-f")
            .arg(stack)
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", self.proxy.endpoint())
            .stdin(Stdio::null());
        command
    }

    /// Run the binary to completion.
    pub async fn run(&self, stack: &Path, args: &[&str]) -> Run {
        let mut command = self.command(stack, args);
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("run wsstack");
        Run::from(output)
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config)
    }
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.config)
    }
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.config)
    }
    pub fn events(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.config)
    }
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.config)
    }
    pub fn apigateway(&self) -> aws_sdk_apigatewayv2::Client {
        aws_sdk_apigatewayv2::Client::new(&self.config)
    }
    /// Deletes route `key` of API `api` in the emulator, as someone might by hand.
    pub async fn delete_route(&self, api: &str, key: &str) {
        let routes = self.apigateway().get_routes().api_id(api).send().await.unwrap();
        let route = routes
            .items()
            .iter()
            .find(|r| r.route_key() == Some(key))
            .unwrap_or_else(|| panic!("no route {key} in API {api}"));
        self.apigateway()
            .delete_route()
            .api_id(api)
            .route_id(route.route_id().unwrap())
            .send()
            .await
            .unwrap();
    }
    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.config)
    }

    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.config)
    }
    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.config)
    }

    pub fn queue_url(&self, name: &str) -> String {
        format!("{}/{ACCOUNT}/{name}", self.moto.endpoint())
    }

    /// The one message waiting in queue `name` (within 5 s), its body read as JSON.
    pub async fn only_message(&self, name: &str) -> serde_json::Value {
        let received = self
            .sqs()
            .receive_message()
            .queue_url(self.queue_url(name))
            .wait_time_seconds(5)
            .send()
            .await
            .unwrap();
        let messages = received.messages();
        assert_eq!(messages.len(), 1, "{messages:?}");
        json_of(messages[0].body().unwrap())
    }

    /// The EventBridge rule `name`, as AWS describes it.
    pub async fn rule(&self, name: &str) -> aws_sdk_eventbridge::operation::describe_rule::DescribeRuleOutput {
        self.events().describe_rule().name(name).send().await.unwrap()
    }

    /// DynamoDB table `name`, as AWS describes it.
    pub async fn table(&self, name: &str) -> aws_sdk_dynamodb::types::TableDescription {
        let request = self.dynamodb().describe_table().table_name(name);
        request.send().await.unwrap().table.expect("a described table")
    }

    /// Stage `name` of API `api`, as AWS describes it.
    pub async fn stage(&self, api: &str, name: &str) -> aws_sdk_apigatewayv2::operation::get_stage::GetStageOutput {
        let request = self.apigateway().get_stage().api_id(api).stage_name(name);
        request.send().await.unwrap()
    }

    /// The event source mappings of function `name`.
    pub async fn event_source_mappings(
        &self,
        name: &str,
    ) -> Vec<aws_sdk_lambda::types::EventSourceMappingConfiguration> {
        let request = self.lambda().list_event_source_mappings().function_name(name);
        request.send().await.unwrap().event_source_mappings.unwrap_or_default()
    }

    /// The one mapping of `function` from queue `queue` (a name).
    pub async fn event_source_mapping(
        &self,
        function: &str,
        queue: &str,
    ) -> aws_sdk_lambda::types::EventSourceMappingConfiguration {
        let all = self.event_source_mappings(function).await;
        let mut of_queue = all.iter().filter(|m| {
            m.event_source_arn()
                .is_some_and(|arn| arn.ends_with(&format!(":{queue}")))
        });
        let mapping = of_queue
            .next()
            .unwrap_or_else(|| panic!("no mapping of {queue} to {function}: {all:?}"));
        assert!(
            of_queue.next().is_none(),
            "two mappings of {queue} to {function}: {all:?}"
        );
        mapping.clone()
    }

    /// Checks that the proxy saw no AWS call at all.
    #[track_caller]
    pub fn expect_no_call(&self, why: &str) {
        assert!(self.proxy.calls().is_empty(), "{why}: {:?}", self.proxy.calls());
    }

    /// Every write call the proxy saw, as "service operation".
    pub fn writes(&self) -> Vec<String> {
        self.proxy
            .writes()
            .iter()
            .map(|c| format!("{} {}", c.service, c.operation))
            .collect()
    }
}

/// `text` read as JSON, or a panic that shows it.
pub fn json_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The options of `send-event` for the user notification the tests send: to alice, about her
/// order, with a callback.
pub const USER_NOTIFICATION: [&str; 6] = [
    "--user-id",
    "alice",
    "--message",
    "Your order shipped",
    "--callback",
    "orders/42",
];

/// What of a stack exists, read straight through the SDK: every resource whose name starts with
/// the stack's prefix, and every one tagged with its name.
pub async fn leftovers(env: &Env, stack: &str) -> Vec<String> {
    let prefix = format!("{stack}-");
    let mut found = Vec::new();
    let roles = env.iam().list_roles().send().await.unwrap();
    for role in roles.roles() {
        if role.role_name().starts_with(&prefix) {
            found.push(format!("role {}", role.role_name()));
        }
    }
    let tables = env.dynamodb().list_tables().send().await.unwrap();
    for table in tables.table_names() {
        if table.starts_with(&prefix) {
            found.push(format!("table {table}"));
        }
    }
    let queues = env.sqs().list_queues().queue_name_prefix(&prefix).send().await.unwrap();
    for url in queues.queue_urls() {
        found.push(format!("queue {url}"));
    }
    let rules = env.events().list_rules().name_prefix(&prefix).send().await.unwrap();
    for rule in rules.rules() {
        found.push(format!("rule {}", rule.name().unwrap_or_default()));
    }
    let functions = env.lambda().list_functions().send().await.unwrap();
    for function in functions.functions() {
        if function.function_name().unwrap_or_default().starts_with(&prefix) {
            found.push(format!("function {}", function.function_name().unwrap_or_default()));
        }
    }
    let mappings = env.lambda().list_event_source_mappings().send().await.unwrap();
    for mapping in mappings.event_source_mappings() {
        if mapping
            .function_arn()
            .unwrap_or_default()
            .contains(&format!(":function:{prefix}"))
        {
            found.push(format!("event source {}", mapping.uuid().unwrap_or_default()));
        }
    }
    // The handlers' log groups and the stage's access log group.
    for group_prefix in [format!("/aws/lambda/{prefix}"), format!("/aws/apigateway/{prefix}")] {
        let groups = env
            .logs()
            .describe_log_groups()
            .log_group_name_prefix(group_prefix)
            .send()
            .await
            .unwrap();
        for group in groups.log_groups() {
            found.push(format!("log group {}", group.log_group_name().unwrap_or_default()));
        }
    }
    for api in apis_of(env, stack).await {
        found.push(format!("api {}", api.api_id().unwrap_or_default()));
    }
    let topics = env.sns().list_topics().send().await.unwrap();
    for topic in topics.topics() {
        let arn = topic.topic_arn().unwrap_or_default();
        if arn.rsplit(':').next().unwrap_or_default().starts_with(&prefix) {
            found.push(format!("topic {arn}"));
        }
    }
    let alarms = env
        .cloudwatch()
        .describe_alarms()
        .alarm_name_prefix(&prefix)
        .send()
        .await
        .unwrap();
    for alarm in alarms.metric_alarms() {
        found.push(format!("alarm {}", alarm.alarm_name().unwrap_or_default()));
    }
    found
}

/// The WebSocket APIs tagged with the stack's name.
pub async fn apis_of(env: &Env, stack: &str) -> Vec<aws_sdk_apigatewayv2::types::Api> {
    let apis = env.apigateway().get_apis().send().await.unwrap();
    apis.items
        .unwrap_or_default()
        .into_iter()
        .filter(|api| api.tags().and_then(|t| t.get("wsstack:stack")).map(String::as_str) == Some(stack))
        .collect()
}

/// How many resources a stack has with the shipped stack.yaml: 2 roles with their 2 policies, the
/// table, 3 queues (events, chunks, dead letters), the rule, the API, its stage, 6 functions with 6
/// log groups, 5 permissions, 5 routes with the route responses of subscribe, unsubscribe and
/// resume, the 2 event sources, the alarm topic, the dead-letter alarm and the stage's access log
/// group.
pub const STACK_RESOURCES: usize = 41;

/// `-o json` summary counts of an up: (created, updated, deleted, unchanged).
pub fn counts(run: &Run) -> (u64, u64, u64, u64) {
    let summary = &run.json()["summary"];
    let n = |k: &str| {
        summary[k]
            .as_u64()
            .unwrap_or_else(|| panic!("no {k} in summary:\n{run}"))
    };
    (n("created"), n("updated"), n("deleted"), n("unchanged"))
}
