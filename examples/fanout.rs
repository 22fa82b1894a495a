//! Push fan-out benchmark of `wsstack dev`: the latency from an event put on EventBridge to the
//! WebSocket clients that receive it, through the whole local stack (the rule and the queue in
//! moto, dev's SQS poller, the push handler process, PostToConnection on dev's management API, the
//! gateway), against a floor: the same payload sent to as many clients by a bare loopback
//! WebSocket server, measured in the same run.
//!
//! Run: `cargo build --bin wsstack --example fanout`, then `target/debug/examples/fanout [ARG ...]`.
//! Needs the moto emulator (`scripts/setup`). Each part prints a markdown table, and each size and
//! scenario runs on a fresh moto and `wsstack dev` (`WSSTACK_BIN` names another wsstack binary,
//! e.g. a release one). The arguments:
//!
//! - `N ...` (default `1 100 1000 5000`; 15,000 only when asked, `fanout 15000`): one event to N
//!   subscribers of one entity. For each size: the p50, p95, p99 and max of the latency from just
//!   before PutEvents is sent to each client's receipt, the first receipt, the same percentiles of
//!   the floor (the payload the clients got, to N clients, each from just before the server's first
//!   write) and the ratios; the peak memory of `wsstack dev` holding the connections.
//! - `burst`: ten events put one after the other (ten PutEvents, as ten `wsstack send-event`s) for
//!   200 subscribers of one entity: from the first PutEvents to the last of the 2,000 receipts,
//!   against 2,000 posts at the stack's post budget; and how many push invocations carried them.
//! - `small-behind-big[=N]` (N 5000 by default): an event to N subscribers of one entity, then at
//!   once an event to the one subscriber of another: that subscriber's latency, and the same
//!   event's latency alone on the same dev and table just before.
//! - `breakdown[=R]` (R 20 by default): R events to one subscriber, one at a time: where the time
//!   goes, step by step, from dev's own log (`WSSTACK_LOG`) and a side queue on the rule.
//!
//! Without sizes only the scenarios named run; without arguments, the default sizes.
//!
//! Clients are spread over child processes of this example (at most [`PER_PROCESS`] each): one
//! process may hold 20,000 open files here, and 15,000 clients plus the floor's 15,000 server
//! sockets would not fit in one. A child keeps its connections open until the parent has every
//! receipt, so that no `$disconnect` runs during a measurement. `FANOUT_BUDGET` sets the stack's
//! `max_posts_per_second` (default 10000, the most the stack file allows).

/// Clients per child process.
const PER_PROCESS: usize = 5_000;
/// The stack the example serves: `name: fanout`, the shipped `stage: dev`.
const PREFIX: &str = "fanout-dev";
/// The source the stack's rule takes (`wsstack.{name}.{stage}`).
const SOURCE: &str = "wsstack.fanout.dev";
/// The burst: this many events, back to back, to this many subscribers of one entity.
const BURST_EVENTS: usize = 10;
const BURST_SUBSCRIBERS: usize = 200;
/// How long a client waits for each message it expects before it counts the rest as missed.
const RECEIPT_WAIT: Duration = Duration::from_secs(120);

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::AsyncBufReadExt;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{Barrier, Notify};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A memory figure of `pid` in KiB from /proc/PID/status: `VmRSS` (now) or `VmHWM` (peak).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The 1, 5 and 15 minute load averages, as /proc/loadavg has them.
fn load_average() -> String {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    loadavg.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// What one client got: the instant of each message (up to the number expected), the first
/// message's text, and its socket, which stays open until the process ends.
type ClientResult = (Vec<Instant>, Option<String>, Socket);

/// Open `n` clients to `url`, each subscribed to `entity` (acknowledged) when asked; returns their
/// receive tasks, which resolve once each got `expect` messages after that (or waited
/// [`RECEIPT_WAIT`] for one in vain).
async fn clients(
    url: &str,
    n: usize,
    entity: &str,
    subscribe: bool,
    expect: usize,
) -> Vec<tokio::task::JoinHandle<ClientResult>> {
    let mut tasks = Vec::with_capacity(n);
    let ready = Arc::new(Barrier::new(n + 1));
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let mut opening = Vec::new();
        for _ in chunk {
            let url = url.to_string();
            let entity = entity.to_string();
            opening.push(tokio::spawn(async move {
                let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("connect");
                if subscribe {
                    let frame = json!({"action": "subscribe", "entityId": entity}).to_string();
                    socket.send(Message::Text(frame.into())).await.unwrap();
                    // The acknowledgement (the subscription is stored) is not a receipt.
                    let ack = tokio::time::timeout(RECEIPT_WAIT, socket.next()).await;
                    match ack {
                        Ok(Some(Ok(Message::Text(text)))) if text.contains(r#""type":"subscribed""#) => {}
                        other => panic!("no acknowledgement of the subscription: {other:?}"),
                    }
                }
                socket
            }));
        }
        for socket in opening {
            let mut socket = socket.await.unwrap();
            let ready = ready.clone();
            tasks.push(tokio::spawn(async move {
                ready.wait().await;
                let mut receipts = Vec::with_capacity(expect);
                let mut first = None;
                while receipts.len() < expect {
                    match tokio::time::timeout(RECEIPT_WAIT, socket.next()).await {
                        Ok(Some(Ok(Message::Text(text)))) => {
                            receipts.push(Instant::now());
                            first.get_or_insert_with(|| text.to_string());
                        }
                        Ok(Some(Ok(_))) => continue,
                        _ => break,
                    }
                }
                (receipts, first, socket)
            }));
        }
    }
    ready.wait().await;
    tasks
}

/// Child mode: open the clients, say `ready`, then once every client is done print one line
/// `client NS...` per client (the epoch nanoseconds of its receipts, in order), `payload TEXT` (the
/// first message any client got) and `end`; then hold the connections until stdin ends.
async fn client_process(url: &str, entity: &str, n: usize, subscribe: bool, expect: usize) {
    let tasks = clients(url, n, entity, subscribe, expect).await;
    println!("ready");
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    // Instants to wall-clock time, which the parent shares.
    let (now, wall) = (Instant::now(), SystemTime::now());
    let epoch_ns = |at: Instant| (wall - (now - at)).duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let mut payload = None;
    let mut sockets = Vec::with_capacity(n);
    for (receipts, first, socket) in results {
        let times: Vec<String> = receipts.iter().map(|at| epoch_ns(*at).to_string()).collect();
        println!("client {}", times.join(" "));
        payload = payload.or(first);
        sockets.push(socket);
    }
    println!("payload {}", payload.unwrap_or_default());
    println!("end");
    let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut tokio::io::sink()).await;
    drop(sockets);
}

/// Clients spread over child processes (`fanout --clients URL ENTITY N SUBSCRIBE EXPECT`).
struct ClientGroup {
    children: Vec<(
        tokio::process::Child,
        tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    )>,
    expect: usize,
}

/// Every client's receipts (wall-clock, in the order they came), and the text of one message.
struct Receipts {
    clients: Vec<Vec<SystemTime>>,
    expect: usize,
    payload: Option<String>,
}

impl Receipts {
    fn all(&self) -> impl Iterator<Item = SystemTime> + '_ {
        self.clients.iter().flatten().copied()
    }

    /// Messages expected and not received.
    fn missed(&self) -> usize {
        self.clients.iter().map(|c| self.expect - c.len()).sum()
    }

    /// Each receipt's latency from `start`.
    fn since(&self, start: SystemTime) -> Latencies {
        Latencies::new(self.all().map(|at| at.duration_since(start).unwrap_or_default()))
    }
}

impl ClientGroup {
    /// Returns once every client is connected (and subscribed when asked); each waits for `expect`
    /// messages.
    async fn open(url: &str, n: usize, entity: &str, subscribe: bool, expect: usize) -> ClientGroup {
        let mut children = Vec::new();
        let mut left = n;
        while left > 0 {
            let count = left.min(PER_PROCESS);
            left -= count;
            let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--clients",
                    url,
                    entity,
                    &count.to_string(),
                    if subscribe { "1" } else { "0" },
                    &expect.to_string(),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("starting a client process");
            let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
            children.push((child, lines));
        }
        for (_, lines) in &mut children {
            let line = lines.next_line().await.unwrap().expect("a client process ended early");
            assert_eq!(line, "ready");
        }
        ClientGroup { children, expect }
    }

    /// Waits until every client got its messages (or gave up); the connections stay open.
    async fn receipts(&mut self) -> Receipts {
        let mut all = Receipts {
            clients: Vec::new(),
            expect: self.expect,
            payload: None,
        };
        for (_, lines) in &mut self.children {
            loop {
                let line = lines.next_line().await.unwrap().expect("a client process ended early");
                let (kind, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                match kind {
                    "client" => all.clients.push(
                        rest.split_whitespace()
                            .map(|ns| UNIX_EPOCH + Duration::from_nanos(ns.parse().unwrap()))
                            .collect(),
                    ),
                    "payload" if !rest.is_empty() => {
                        all.payload.get_or_insert_with(|| rest.to_string());
                    }
                    "end" => break,
                    _ => {}
                }
            }
        }
        all
    }

    /// Closes the connections (each child ends when its stdin does).
    async fn close(mut self) {
        for (child, _) in &mut self.children {
            drop(child.stdin.take());
        }
        for (child, _) in &mut self.children {
            let _ = child.wait().await;
        }
    }
}

/// Latencies, sorted.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn new(latencies: impl Iterator<Item = Duration>) -> Latencies {
        let mut sorted: Vec<Duration> = latencies.collect();
        sorted.sort();
        Latencies(sorted)
    }

    /// The `q` quantile by nearest rank (the smallest latency that at least q of them do not
    /// exceed); zero when there is none.
    fn quantile(&self, q: f64) -> Duration {
        let rank = ((q * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len().max(1));
        self.0.get(rank - 1).copied().unwrap_or_default()
    }

    fn first(&self) -> Duration {
        self.0.first().copied().unwrap_or_default()
    }

    fn max(&self) -> Duration {
        self.0.last().copied().unwrap_or_default()
    }

    /// p50, p95, p99, max.
    fn percentiles(&self) -> [Duration; 4] {
        [
            self.quantile(0.50),
            self.quantile(0.95),
            self.quantile(0.99),
            self.max(),
        ]
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The floor: a bare WebSocket server on loopback that sends one payload to every client (the
/// clients in child processes, like wsstack's); each receipt from just before the first write.
async fn floor(n: usize, payload: &str) -> Latencies {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let go = Arc::new(Notify::new());
    let server = {
        let go = go.clone();
        let payload = payload.to_string();
        tokio::spawn(async move {
            let mut sinks = Vec::new();
            while sinks.len() < n {
                let (stream, _) = listener.accept().await.unwrap();
                let socket = tokio_tungstenite::accept_async(stream).await.unwrap();
                sinks.push(socket.split().0);
            }
            go.notified().await;
            let started = SystemTime::now();
            let sends = sinks
                .iter_mut()
                .map(|sink| sink.send(Message::Text(payload.clone().into())));
            futures::future::join_all(sends).await;
            (started, sinks)
        })
    };
    let mut group = ClientGroup::open(&url, n, "", false, 1).await;
    go.notify_one();
    let receipts = group.receipts().await;
    let (started, _sinks) = server.await.unwrap();
    group.close().await;
    assert_eq!(receipts.missed(), 0, "the floor's clients missed the payload");
    receipts.since(started)
}

/// What `wsstack dev` writes on stderr, and what this example keeps of it.
#[derive(Clone, Copy, PartialEq)]
enum DevLog {
    /// dev's stderr as it is (its log at `info`, or as `WSSTACK_LOG` says), on this example's.
    Quiet,
    /// Also the handlers' lines (`wsstack::handler`, at trace with `--quiet-handlers`), kept.
    Handlers,
    /// Also the poller's batches and the gateway's posts, kept; and the handlers' AWS calls (the
    /// SDK's debug lines, asked for through the handlers' `RUST_LOG`; see [`sdk_call`]).
    Breakdown,
}

/// A line of dev's stderr kept (see [`DevLog`]), with the time dev stamped on it (when it wrote
/// the line; for a handler's line, when dev read it from the handler's stderr). Lines of another
/// kind are dropped, but warnings and errors, which go on to this example's stderr.
struct LogLine {
    at: SystemTime,
    text: String,
}

/// The lines of dev's log a scenario looks for.
const KEPT_LINES: [&str; 6] = [
    "event source: received a batch",
    "posted to the connection",
    r#""pushed""#,
    "handed on as chunks",
    r#""initialized""#,
    "sdk_invocation_id",
];

/// dev's stamp: RFC 3339 in UTC with microseconds (`2026-12-07T05:51:02.123456Z`), the first
/// word of the line.
fn stamp(line: &str) -> Option<SystemTime> {
    let word = line.split_whitespace().next()?;
    let at = chrono::NaiveDateTime::parse_from_str(word, "%Y-%m-%dT%H:%M:%S%.fZ").ok()?;
    let ns = at.and_utc().timestamp_nanos_opt()?;
    Some(UNIX_EPOCH + Duration::from_nanos(ns as u64))
}

/// A fresh moto and `wsstack dev` serving the repository's stack.yaml (renamed `fanout`, with the
/// post budget).
struct Dev {
    process: std::process::Child,
    url: String,
    /// `max_posts_per_second` in the stack file it serves.
    budget: u32,
    config: aws_config::SdkConfig,
    log: Arc<Mutex<Vec<LogLine>>>,
    moto: testkit::Moto,
    _dir: tempfile::TempDir,
}

impl Dev {
    async fn start(budget: u32, log: DevLog) -> Dev {
        let moto = tokio::task::spawn_blocking(testkit::Moto::start)
            .await
            .unwrap()
            .expect("moto");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stack.yaml"), stack_file(budget)).unwrap();
        let mut command = Command::new(wsstack_bin());
        command
            .args([
                "-f",
                "stack.yaml",
                "dev",
                "--port",
                "0",
                "--quiet-handlers",
                "-q",
                "--endpoint-url",
            ])
            .arg(moto.endpoint())
            .current_dir(dir.path())
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        match log {
            DevLog::Quiet => {
                command.stderr(Stdio::inherit());
            }
            DevLog::Handlers => {
                command
                    .env("WSSTACK_LOG", "info,wsstack::handler=trace")
                    .stderr(Stdio::piped());
            }
            DevLog::Breakdown => {
                command
                    .env(
                        "WSSTACK_LOG",
                        "info,wsstack::dev::poller=debug,wsstack::dev::gateway=debug,wsstack::handler=trace",
                    )
                    // dev passes RUST_LOG on to the handlers: a few debug lines at the start of
                    // each AWS call, in the span that names it (see `sdk_call`).
                    .env(
                        "RUST_LOG",
                        "info,aws_smithy_runtime::client::orchestrator=debug,aws_sdk_dynamodb=debug,aws_sdk_apigatewaymanagement=debug,aws_sdk_sqs=debug",
                    )
                    .stderr(Stdio::piped());
            }
        }
        let mut process = command.spawn().expect("wsstack dev (cargo build --bin wsstack first)");
        let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
        let url = loop {
            let line = lines.next().expect("dev output").unwrap();
            if let Some(url) = line.strip_prefix("wsstack dev: serving ") {
                break url.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let kept = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = process.stderr.take() {
            let kept = kept.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if KEPT_LINES.iter().any(|k| line.contains(k)) {
                        if let Some(at) = stamp(&line) {
                            kept.lock().unwrap().push(LogLine { at, text: line });
                        }
                    } else if line.contains(" WARN ") || line.contains(" ERROR ") {
                        eprintln!("{line}");
                    }
                }
            });
        }
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(moto.endpoint())
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "bench", "bench", None, None, "bench",
            ))
            .load()
            .await;
        Dev {
            process,
            url,
            budget,
            config,
            log: kept,
            moto,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Puts one "Entity Updated" event; returns the time just before PutEvents was sent.
    async fn put_event(&self, entity: &str, message: &str) -> SystemTime {
        let request = aws_sdk_eventbridge::Client::new(&self.config).put_events().entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source(SOURCE)
                .detail_type("Entity Updated")
                .detail(json!({"entityId": entity, "message": message}).to_string())
                .build(),
        );
        let sent = SystemTime::now();
        let output = request.send().await.unwrap();
        assert_eq!(output.failed_entry_count(), 0);
        sent
    }

    /// Polls the entity's subscription count until it reaches `n`. moto reads the whole table on
    /// every Query, so each count costs time proportional to the table: the pause between counts
    /// is ten times the last count's duration (at least 200 ms), so that polling never takes more
    /// than a tenth of the emulator from the subscribes it waits for.
    async fn wait_for_subscribers(&self, entity: &str, n: usize) {
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.config);
        let deadline = Instant::now() + Duration::from_secs(1800);
        loop {
            let counting = Instant::now();
            let mut found = 0;
            let mut start = None;
            loop {
                let page = dynamodb
                    .query()
                    .table_name(format!("{PREFIX}-connections"))
                    .index_name("GSI1")
                    .key_condition_expression("GSI1PK = :e")
                    .expression_attribute_values(":e", AttributeValue::S(entity.into()))
                    .select(aws_sdk_dynamodb::types::Select::Count)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .unwrap();
                found += page.count() as usize;
                start = page.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
            if found >= n {
                return;
            }
            assert!(Instant::now() < deadline, "{entity}: only {found} of {n} subscribed");
            tokio::time::sleep((counting.elapsed() * 10).max(Duration::from_millis(200))).await;
        }
    }

    /// The lines kept from dev's stderr so far (see [`DevLog`]), in the order dev wrote them.
    fn kept<T>(&self, read: impl FnOnce(&[LogLine]) -> T) -> T {
        read(&self.log.lock().unwrap())
    }

    /// Waits until `count` kept lines contain `needle` (at most `wait`).
    async fn wait_for_lines(&self, needle: &str, count: usize, wait: Duration) {
        let deadline = Instant::now() + wait;
        while self.kept(|lines| lines.iter().filter(|l| l.text.contains(needle)).count()) < count {
            if Instant::now() > deadline {
                eprintln!("fanout: dev logged {needle} fewer than {count} times within {wait:?}");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A side queue, as the first target of the stack's rules: every event the rules take is also
    /// sent there, and its `SentTimestamp` says when the emulator's EventBridge had matched the
    /// event and began sending it to the targets. moto sends to a rule's targets one after the
    /// other in the PutEvents call, in the order they were put, so the rules' own targets are taken
    /// off and put back after the side queue. (As the last target, its stamp came up to 17 ms after
    /// dev's poller had the events queue's copy: the poller's thread took moto's interpreter.)
    /// moto renders every target's input, by default through eight JSONPath expressions that it
    /// parses anew each time (about 10 ms here); the side target's input is the event's detail
    /// alone, one expression, so that it delays the events queue's copy by little. Returns its URL.
    async fn side_queue(&self) -> String {
        let sqs = aws_sdk_sqs::Client::new(&self.config);
        let events = aws_sdk_eventbridge::Client::new(&self.config);
        let url = sqs
            .create_queue()
            .queue_name("fanout-side")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap();
        let arn = attributes.attributes().unwrap()[&QueueAttributeName::QueueArn].clone();
        let rules = events.list_rules().name_prefix(PREFIX).send().await.unwrap();
        assert!(!rules.rules().is_empty(), "no rule {PREFIX}*");
        for rule in rules.rules() {
            let (name, bus) = (rule.name().unwrap(), rule.event_bus_name().unwrap_or("default"));
            let own = events
                .list_targets_by_rule()
                .rule(name)
                .event_bus_name(bus)
                .send()
                .await
                .unwrap()
                .targets
                .unwrap_or_default();
            if !own.is_empty() {
                let ids = own.iter().map(|t| t.id.clone()).collect();
                let removing = events
                    .remove_targets()
                    .rule(name)
                    .event_bus_name(bus)
                    .set_ids(Some(ids));
                removing.send().await.unwrap();
            }
            let detail_only = aws_sdk_eventbridge::types::InputTransformer::builder()
                .input_paths_map("detail", "$.detail")
                .input_template("<detail>")
                .build()
                .unwrap();
            let side = aws_sdk_eventbridge::types::Target::builder()
                .id("fanout-side")
                .arn(&arn)
                .input_transformer(detail_only)
                .build()
                .unwrap();
            let mut targets = vec![side];
            targets.extend(own);
            let putting = events
                .put_targets()
                .rule(name)
                .event_bus_name(bus)
                .set_targets(Some(targets));
            assert_eq!(putting.send().await.unwrap().failed_entry_count(), 0);
        }
        url
    }

    /// The `SentTimestamp` of each message in the side queue whose body holds one of `markers`.
    async fn sent_timestamps(&self, url: &str, markers: &[String]) -> HashMap<String, SystemTime> {
        let sqs = aws_sdk_sqs::Client::new(&self.config);
        let mut sent = HashMap::new();
        while sent.len() < markers.len() {
            let output = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .send()
                .await
                .unwrap();
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for message in messages {
                let body = message.body().unwrap_or_default();
                let at = message
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                    .and_then(|ms| ms.parse().ok())
                    .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
                if let (Some(marker), Some(at)) = (markers.iter().find(|m| body.contains(m.as_str())), at) {
                    sent.entry(marker.clone()).or_insert(at);
                }
            }
        }
        sent
    }

    /// Stops dev (SIGINT: it closes its connections and stops its handlers) and the emulator.
    fn stop(mut self) {
        unsafe { libc::kill(self.process.id() as i32, libc::SIGINT) };
        let _ = self.process.wait();
        drop(self.moto);
    }
}

/// `WSSTACK_BIN`, else the debug build.
fn wsstack_bin() -> std::path::PathBuf {
    std::env::var_os("WSSTACK_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| testkit::repo_root().join("target/debug/wsstack"))
}

/// The value of the first `key:` line of a stack file that is not a comment.
fn stack_value(stack: &str, key: &str) -> Option<String> {
    stack.lines().find_map(|line| {
        let value = line.trim_start().strip_prefix(key)?.strip_prefix(':')?;
        Some(value.split('#').next()?.trim().to_string())
    })
}

/// The repository's stack.yaml, named `fanout`, with `max_posts_per_second: {budget}`. Whatever
/// else the shipped file declares is served as it is.
fn stack_file(budget: u32) -> String {
    let shipped = std::fs::read_to_string(testkit::repo_root().join("stack.yaml")).unwrap();
    let mut budget_set = false;
    let lines: Vec<String> = shipped
        .lines()
        .map(|line| {
            let key = line.trim_start();
            if line.starts_with("name:") {
                "name: fanout".to_string()
            } else if key.starts_with("max_posts_per_second:") {
                budget_set = true;
                let indent = &line[..line.len() - key.len()];
                format!("{indent}max_posts_per_second: {budget}")
            } else {
                line.to_string()
            }
        })
        .collect();
    assert!(budget_set, "stack.yaml has no max_posts_per_second to set");
    assert!(
        lines.iter().any(|l| l == "stage: dev"),
        "the example expects stack.yaml's stage: dev"
    );
    lines.join("\n") + "\n"
}

/// What to run, from the arguments.
enum Scenario {
    Sizes(Vec<usize>),
    Burst,
    SmallBehindBig(usize),
    Breakdown(usize),
}

fn scenarios(args: &[String]) -> Vec<Scenario> {
    let mut sizes = Vec::new();
    let mut named = Vec::new();
    for arg in args {
        let (name, value) = arg.split_once('=').unwrap_or((arg.as_str(), ""));
        let number = |default: usize| {
            if value.is_empty() {
                default
            } else {
                value.parse().unwrap_or_else(|_| panic!("{arg}: a number after ="))
            }
        };
        match name {
            "burst" => named.push(Scenario::Burst),
            "small-behind-big" => named.push(Scenario::SmallBehindBig(number(5000))),
            "breakdown" => named.push(Scenario::Breakdown(number(20))),
            _ => sizes.push(arg.parse().unwrap_or_else(|_| {
                panic!("{arg}: expected subscriber counts, burst, small-behind-big[=N] or breakdown[=R]")
            })),
        }
    }
    if sizes.is_empty() && named.is_empty() {
        sizes = vec![1, 100, 1000, 5000];
    }
    let mut all = Vec::new();
    if !sizes.is_empty() {
        all.push(Scenario::Sizes(sizes));
    }
    all.extend(named);
    all
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--clients") {
        let n = args[3].parse().expect("a client count");
        let expect = args[5].parse().expect("a message count");
        return client_process(&args[1], &args[2], n, args[4] == "1", expect).await;
    }
    let budget: u32 = std::env::var("FANOUT_BUDGET")
        .ok()
        .map(|b| b.parse().expect("FANOUT_BUDGET: posts per second"))
        .unwrap_or(10_000);
    let wsstack = wsstack_bin();
    let built = std::fs::metadata(&wsstack).and_then(|m| m.modified()).ok().map(|at| {
        let at: chrono::DateTime<chrono::Utc> = at.into();
        at.format("%Y-%m-%d %H:%M UTC").to_string()
    });
    println!(
        "wsstack: {} (built {})",
        wsstack.display(),
        built.unwrap_or_else(|| "?".into())
    );
    println!(
        "Post budget: {budget} posts/s (handlers.push.max_posts_per_second), max_concurrency {} (from stack.yaml).",
        stack_value(&stack_file(budget), "max_concurrency").unwrap_or_else(|| "?".into())
    );
    println!(
        "Each table row on a fresh emulator and `wsstack dev`; load average (1, 5, 15 min) at the end of each row."
    );
    for scenario in scenarios(&args) {
        println!();
        match scenario {
            Scenario::Sizes(sizes) => {
                println!("Latency: PutEvents (just before it is sent) -> each client's receipt; the floor: the same payload to as many clients from a bare loopback server.");
                println!();
                println!("| subscribers | p50 | p95 | p99 | max | first receipt | floor p50 / p95 / p99 / max | ratio p50 / p95 / p99 / max | wsstack dev RSS (peak) | connected and subscribed in | load |");
                println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
                for n in sizes {
                    latency_row(n, budget).await;
                }
            }
            Scenario::Burst => burst(budget).await,
            Scenario::SmallBehindBig(n) => small_behind_big(n, budget).await,
            Scenario::Breakdown(reps) => breakdown(reps, budget).await,
        }
    }
}

/// One size: a fresh moto and `wsstack dev` for `n` subscribers. Each size gets its own, because
/// moto reads the whole table on every Query: the `$disconnect`s of an earlier size's clients (a
/// Query each) would keep the emulator busy while the next size's clients connect.
async fn latency_row(n: usize, budget: u32) {
    let dev = Dev::start(budget, DevLog::Quiet).await;
    let entity = format!("fan-{n}");
    let opening = Instant::now();
    let mut group = ClientGroup::open(&dev.url, n, &entity, true, 1).await;
    dev.wait_for_subscribers(&entity, n).await;
    let opened = opening.elapsed();
    let start = dev.put_event(&entity, "Hello world").await;
    let receipts = group.receipts().await;
    let (rss, peak) = (status_kib(dev.pid(), "VmRSS"), status_kib(dev.pid(), "VmHWM"));
    group.close().await;
    dev.stop();
    let latencies = receipts.since(start);
    // The floor sends what the clients got (with the stack's `seq`), or the event's shape if no
    // one got anything.
    let payload = receipts
        .payload
        .clone()
        .unwrap_or_else(|| json!({"type": "Entity Updated", "entityId": entity, "message": "Hello world"}).to_string());
    let floor = floor(n, &payload).await;
    let (ours, theirs) = (latencies.percentiles(), floor.percentiles());
    let cell = |values: [Duration; 4], digits: usize| {
        let values: Vec<String> = values.iter().map(|d| format!("{:.digits$}", ms(*d))).collect();
        values.join(" / ")
    };
    let ratios: Vec<String> = ours
        .iter()
        .zip(theirs)
        .map(|(o, t)| format!("{:.1}", o.as_secs_f64() / t.as_secs_f64().max(1e-6)))
        .collect();
    let missed = match receipts.missed() {
        0 => String::new(),
        missed => format!(" ({missed} missed)"),
    };
    println!(
        "| {n}{missed} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} ms | {}x | {:.1} MiB ({:.1} MiB) | {:.0} s | {} |",
        ms(ours[0]),
        ms(ours[1]),
        ms(ours[2]),
        ms(ours[3]),
        ms(latencies.first()),
        cell(theirs, 2),
        ratios.join(" / "),
        rss as f64 / 1024.0,
        peak as f64 / 1024.0,
        opened.as_secs_f64(),
        load_average(),
    );
}

/// The request id of a handler line (the Lambda runtime's span, `"requestId":"..."`).
fn request_id(line: &str) -> Option<&str> {
    let rest = line.split_once(r#""requestId":""#)?.1;
    rest.split('"').next()
}

/// Ten events back to back to 200 subscribers of one entity.
async fn burst(budget: u32) {
    let dev = Dev::start(budget, DevLog::Handlers).await;
    let entity = "burst";
    let mut group = ClientGroup::open(&dev.url, BURST_SUBSCRIBERS, entity, true, BURST_EVENTS).await;
    dev.wait_for_subscribers(entity, BURST_SUBSCRIBERS).await;
    let start = SystemTime::now();
    for i in 0..BURST_EVENTS {
        dev.put_event(entity, &format!("burst {i}")).await;
    }
    let put = SystemTime::now().duration_since(start).unwrap();
    let receipts = group.receipts().await;
    group.close().await;
    // Who posted: the handler logs "pushed" for each record (an event or a chunk of one) it
    // posted, and "handed on as chunks" for each event it split instead.
    let (posted_by, handed_on) = dev.kept(|lines| {
        let mut posted_by = BTreeMap::<String, usize>::new();
        for line in lines.iter().filter(|l| l.text.contains(r#""pushed""#)) {
            *posted_by
                .entry(request_id(&line.text).unwrap_or("?").into())
                .or_default() += 1;
        }
        let handed_on = lines.iter().filter(|l| l.text.contains("handed on as chunks")).count();
        (posted_by, handed_on)
    });
    // "invocations x records each", most records first.
    let mut shapes = BTreeMap::<usize, usize>::new();
    for records in posted_by.values() {
        *shapes.entry(*records).or_default() += 1;
    }
    let shapes: Vec<String> = shapes
        .iter()
        .rev()
        .map(|(records, n)| format!("{n} x {records}"))
        .collect();
    let budget_posts = dev.budget;
    dev.stop();
    let latencies = receipts.since(start);
    let posts = BURST_EVENTS * BURST_SUBSCRIBERS;
    let at_budget = Duration::from_secs_f64(posts as f64 / budget_posts as f64);
    let spread = latencies.max() - latencies.first();
    println!("Burst: {BURST_EVENTS} events put back to back (one PutEvents each) to {BURST_SUBSCRIBERS} subscribers of one entity, {posts} posts.");
    println!();
    println!("| events x subscribers | {BURST_EVENTS} PutEvents took | first receipt | p50 receipt | last receipt | last receipt after the last PutEvents answered | {posts} posts at the budget ({budget_posts}/s) | last / budget | posts/s, first to last receipt | events handed on as chunks | invocations that posted (invocations x records) | load |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
    let missed = match receipts.missed() {
        0 => String::new(),
        missed => format!(" ({missed} missed)"),
    };
    println!(
        "| {BURST_EVENTS} x {BURST_SUBSCRIBERS}{missed} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1}x | {:.0} | {handed_on} | {} ({}) | {} |",
        ms(put),
        ms(latencies.first()),
        ms(latencies.quantile(0.5)),
        ms(latencies.max()),
        ms(latencies.max().saturating_sub(put)),
        ms(at_budget),
        latencies.max().as_secs_f64() / at_budget.as_secs_f64(),
        (latencies.0.len().saturating_sub(1)) as f64 / spread.as_secs_f64().max(1e-6),
        posted_by.len(),
        shapes.join(", "),
        load_average(),
    );
}

/// An event to `n` subscribers of one entity, then at once one to the single subscriber of
/// another.
async fn small_behind_big(n: usize, budget: u32) {
    let dev = Dev::start(budget, DevLog::Handlers).await;
    let opening = Instant::now();
    let mut big = ClientGroup::open(&dev.url, n, "big", true, 1).await;
    let mut alone = ClientGroup::open(&dev.url, 1, "small-alone", true, 1).await;
    let mut small = ClientGroup::open(&dev.url, 1, "small", true, 1).await;
    dev.wait_for_subscribers("big", n).await;
    dev.wait_for_subscribers("small-alone", 1).await;
    dev.wait_for_subscribers("small", 1).await;
    let opened = opening.elapsed();
    // The reference: the same small event with nothing ahead of it, on the same table.
    let alone_start = dev.put_event("small-alone", "Hello world").await;
    let alone_latency = alone.receipts().await.since(alone_start);
    let big_start = dev.put_event("big", "Hello world").await;
    let small_start = dev.put_event("small", "Hello world").await;
    let small_latency = small.receipts().await.since(small_start);
    let big_receipts = big.receipts().await;
    for group in [alone, small, big] {
        group.close().await;
    }
    let chunked = dev.kept(|lines| lines.iter().any(|l| l.text.contains("handed on as chunks")));
    dev.stop();
    let big_latency = big_receipts.since(big_start);
    let missed = match big_receipts.missed() {
        0 => String::new(),
        missed => format!(" ({missed} missed)"),
    };
    println!("Small behind big: an event to N subscribers of one entity, then at once one to the single subscriber of another; that subscriber's latency from its own PutEvents.");
    println!();
    println!("| N | small event right behind the big one | small event alone, just before | big event sent ahead by | big: first receipt | big: p50 | big: last receipt | big split into chunks | connected and subscribed in | load |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---|---:|---|");
    println!(
        "| {n}{missed} | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} | {:.0} s | {} |",
        match small_latency.0.first() {
            Some(d) => format!("{:.1} ms", ms(*d)),
            None => "missed".into(),
        },
        match alone_latency.0.first() {
            Some(d) => format!("{:.1} ms", ms(*d)),
            None => "missed".into(),
        },
        ms(small_start.duration_since(big_start).unwrap()),
        ms(big_latency.first()),
        ms(big_latency.quantile(0.5)),
        ms(big_latency.max()),
        if chunked { "yes" } else { "no" },
        opened.as_secs_f64(),
        load_average(),
    );
}

/// The AWS call a handler's debug line belongs to (the SDK's operation span): its
/// `sdk_invocation_id` and `Service.Method`. The handlers write such lines when their `RUST_LOG`
/// asks for the SDK's debug level (`handlers/src/main.rs`), as [`DevLog::Breakdown`] does.
fn sdk_call(line: &str) -> Option<(&str, String)> {
    let field = |name: &str| {
        let rest = line.split_once(&format!(r#""{name}":"#))?.1;
        let rest = rest.strip_prefix('"').unwrap_or(rest);
        rest.split(['"', ',', '}']).next()
    };
    Some((
        field("sdk_invocation_id")?,
        format!("{}.{}", field("rpc.service")?, field("rpc.method")?),
    ))
}

/// One event's way through the stack: named instants, in the order they came.
type Timeline = Vec<(String, SystemTime)>;

/// One event of the breakdown, as the example saw it.
struct Sent {
    /// In the event's message, to find it in dev's log and the side queue.
    marker: String,
    /// Just before PutEvents was sent, and when it was answered.
    before: SystemTime,
    answered: SystemTime,
    /// Round trips of three calls to the emulator just before: ListEventBuses, a PutEvents no
    /// rule takes, a GSI1 Query of the entity's subscribers.
    side: [Duration; 3],
}

async fn timed<T>(call: impl std::future::Future<Output = T>) -> Duration {
    let start = Instant::now();
    call.await;
    start.elapsed()
}

/// `reps` events to one subscriber, one at a time: each event's timeline from the example's own
/// clock (PutEvents, the client's receipt), the side queue's `SentTimestamp` and the lines of
/// dev's log: the poller's batch, the push handler's AWS calls (the SDK's debug lines, through the
/// handlers' `RUST_LOG`) and the gateway's post.
async fn breakdown(reps: usize, budget: u32) {
    let dev = Dev::start(budget, DevLog::Breakdown).await;
    let side = dev.side_queue().await;
    let entity = "solo";
    let mut group = ClientGroup::open(&dev.url, 1, entity, true, reps).await;
    dev.wait_for_subscribers(entity, 1).await;
    let events = aws_sdk_eventbridge::Client::new(&dev.config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&dev.config);
    let mut sent = Vec::with_capacity(reps);
    for i in 0..reps {
        // What calls to the emulator cost from here: any call (SDK, HTTP, moto's request
        // handling), a PutEvents without the rule's work, the handler's Query of the subscribers.
        let side = [
            timed(async { events.list_event_buses().send().await.unwrap() }).await,
            timed(async {
                let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source("fanout.nobody")
                    .detail_type("Entity Updated")
                    .detail(json!({"entityId": entity, "message": "side"}).to_string())
                    .build();
                events.put_events().entries(entry).send().await.unwrap()
            })
            .await,
            timed(async {
                let query = dynamodb
                    .query()
                    .table_name(format!("{PREFIX}-connections"))
                    .index_name("GSI1")
                    .key_condition_expression("GSI1PK = :e")
                    .expression_attribute_values(":e", AttributeValue::S(entity.into()));
                query.send().await.unwrap()
            })
            .await,
        ];
        let marker = format!("breakdown {i:03}");
        let before = dev.put_event(entity, &marker).await;
        let answered = SystemTime::now();
        sent.push(Sent {
            marker,
            before,
            answered,
            side,
        });
        // One event at a time: the next once the handler is done with this one.
        dev.wait_for_lines(r#""pushed""#, i + 1, Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let receipts = group.receipts().await;
    group.close().await;
    let markers: Vec<String> = sent.iter().map(|s| s.marker.clone()).collect();
    let queued = dev.sent_timestamps(&side, &markers).await;
    let received = receipts.clients.first().cloned().unwrap_or_default();
    let push = format!(r#"function="{PREFIX}-push""#);
    // Each event's timeline, from the lines after its PutEvents and before the next one's.
    let timelines: Vec<Timeline> = dev.kept(|lines| {
        sent.iter()
            .enumerate()
            .map(|(i, Sent { marker, before, .. })| {
                let until = sent.get(i + 1).map_or(SystemTime::now(), |next| next.before);
                let window = |after: SystemTime| lines.iter().filter(move |l| l.at >= after && l.at < until);
                let find = |after: SystemTime, needles: &[&str]| {
                    window(after)
                        .find(|l| needles.iter().all(|n| l.text.contains(n)))
                        .map(|l| l.at)
                };
                let mut timeline = vec![("PutEvents is sent".to_string(), *before)];
                if let Some(at) = queued.get(marker) {
                    timeline.push(("moto matched the rule (side queue SentTimestamp, whole ms)".into(), *at));
                }
                if let Some(polled) = find(*before, &["event source: received a batch", marker]) {
                    timeline.push(("dev's poller has the batch".into(), polled));
                    let posted = find(polled, &["posted to the connection", marker]);
                    let handler = window(polled).filter(|l| posted.is_none_or(|p| l.at <= p) && l.text.contains(&push));
                    let mut calls: Vec<&str> = Vec::new();
                    for line in handler {
                        if line.text.contains(r#""initialized""#) {
                            timeline.push(("the push process is initialized".into(), line.at));
                        } else if let Some((id, name)) = sdk_call(&line.text) {
                            if !calls.contains(&id) {
                                calls.push(id);
                                let nth = timeline.iter().filter(|(n, _)| n.starts_with(&name)).count();
                                let name = if nth == 0 { name } else { format!("{name} #{}", nth + 1) };
                                timeline.push((format!("{name} starts"), line.at));
                            }
                        }
                    }
                    if let Some(posted) = posted {
                        timeline.push(("the gateway accepts the post".into(), posted));
                    }
                }
                if let Some(at) = received.get(i) {
                    timeline.push(("the client has it".into(), *at));
                }
                timeline
            })
            .collect()
    });
    let pushed: Vec<Option<SystemTime>> = dev.kept(|lines| {
        sent.iter()
            .enumerate()
            .map(|(i, Sent { before, .. })| {
                let until = sent.get(i + 1).map_or(SystemTime::now(), |next| next.before);
                let pushed = lines
                    .iter()
                    .filter(|l| l.at >= *before && l.at < until && l.text.contains(r#""pushed""#));
                pushed.map(|l| l.at).next()
            })
            .collect()
    });
    dev.stop();

    // Signed milliseconds from one instant to another (the queue's stamp is whole ms, and its
    // message is written just after the events queue's).
    let between = |from: SystemTime, to: SystemTime| match to.duration_since(from) {
        Ok(d) => ms(d),
        Err(e) => -ms(e.duration()),
    };
    // The rows: each step between two consecutive instants of a timeline, in the order of the
    // instants' first appearance (the first event has the push process's start, the others not).
    let mut order: Vec<String> = Vec::new();
    for timeline in &timelines {
        let mut at = 0;
        for (name, _) in timeline {
            match order.iter().position(|o| o == name) {
                Some(position) => at = position + 1,
                None => {
                    order.insert(at, name.clone());
                    at += 1;
                }
            }
        }
    }
    let mut rows: Vec<(String, Vec<Option<f64>>)> = Vec::new();
    let mut steps: Vec<(usize, usize)> = timelines
        .iter()
        .flat_map(|t| t.windows(2).map(|w| (w[0].0.clone(), w[1].0.clone())))
        .map(|(a, b)| {
            (
                order.iter().position(|o| *o == a).unwrap(),
                order.iter().position(|o| *o == b).unwrap(),
            )
        })
        .collect();
    steps.sort();
    steps.dedup();
    let time_of = |t: &Timeline, name: &str| t.iter().find(|(n, _)| n == name).map(|(_, at)| *at);
    for (from, to) in steps {
        let values = timelines
            .iter()
            .map(|t| {
                let consecutive = t.windows(2).any(|w| w[0].0 == order[from] && w[1].0 == order[to]);
                consecutive.then(|| between(time_of(t, &order[from]).unwrap(), time_of(t, &order[to]).unwrap()))
            })
            .collect();
        rows.push((format!("{} -> {}", order[from], order[to]), values));
    }
    let total = |t: &Timeline| {
        Some(between(
            time_of(t, "PutEvents is sent")?,
            time_of(t, "the client has it")?,
        ))
    };
    rows.push((
        "**total: PutEvents is sent -> the client has it**".into(),
        timelines.iter().map(total).collect(),
    ));
    rows.push((
        "(PutEvents is sent -> answered)".into(),
        sent.iter().map(|s| Some(between(s.before, s.answered))).collect(),
    ));
    let side_calls = [
        "ListEventBuses (any call)",
        "PutEvents no rule takes",
        "GSI1 Query of the subscribers",
    ];
    for (i, call) in side_calls.iter().enumerate() {
        rows.push((
            format!("(just before, from here: {call}, round trip)"),
            sent.iter().map(|s| Some(ms(s.side[i]))).collect(),
        ));
    }
    rows.push((
        "(the gateway accepts the post -> the handler logs \"pushed\")".into(),
        timelines
            .iter()
            .zip(&pushed)
            .map(|(t, pushed)| Some(between(time_of(t, "the gateway accepts the post")?, (*pushed)?)))
            .collect(),
    ));

    println!("Breakdown: {reps} events to 1 subscriber, one at a time. Instants: the example's clock (PutEvents, the client), a side queue put first on the rule (SentTimestamp), dev's log stamps (WSSTACK_LOG; a handler's line is stamped as dev reads it).");
    println!();
    println!(
        "| step | first event (push process cold) | next {} events: median | min | max |",
        reps.saturating_sub(1)
    );
    println!("|---|---:|---:|---:|---:|");
    let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
    for (name, values) in rows {
        let mut warm: Vec<f64> = values.iter().skip(1).flatten().copied().collect();
        warm.sort_by(|a, b| a.total_cmp(b));
        let median = (!warm.is_empty()).then(|| warm[(warm.len() - 1) / 2]);
        println!(
            "| {name} | {} | {} | {} | {} |",
            show(values.first().copied().flatten()),
            show(median),
            show(warm.first().copied()),
            show(warm.last().copied()),
        );
    }
    println!();
    if !timelines.iter().flatten().any(|(name, _)| name.ends_with(" starts")) {
        println!("The push handler's work (the event's history, the GSI1 Query, the post) is one step: no handler logged its AWS calls (a wsstack built with handlers older than commit 57f3a0c logs at info at most, whatever RUST_LOG says).");
    }
    println!(
        "Load average {}; {} of {reps} receipts missed; {} of {reps} events seen in the side queue.",
        load_average(),
        receipts.missed(),
        queued.len()
    );
}
