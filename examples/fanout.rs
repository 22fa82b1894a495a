//! Push fan-out benchmark of `wsstack dev`: one event to N subscribers, from PutEvents to the last
//! client receiving it, against the floor: the same payload sent to N clients by a bare loopback
//! WebSocket server, measured in the same run. Also the peak memory of `wsstack dev` holding the
//! connections.
//!
//! Run: `cargo build --bin wsstack && cargo run --example fanout -- [N ...]` (default 1 100 1000 5000
//! 15000). Needs the moto emulator (`scripts/setup`). Prints a markdown table. Each size runs on
//! its own moto and `wsstack dev` (`WSSTACK_BIN` names another wsstack binary, e.g. a release one).
//!
//! Clients are spread over child processes of this example (at most [`PER_PROCESS`] each): one
//! process may hold 20,000 open files here, and 15,000 clients plus the floor's 15,000 server
//! sockets would not fit in one. `FANOUT_BUDGET` sets the stack's `max_posts_per_second`
//! (default 10000, the most the stack file allows).

/// Clients per child process.
const PER_PROCESS: usize = 5_000;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::AsyncBufReadExt;

use aws_sdk_dynamodb::types::AttributeValue;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{Barrier, Notify};
use tokio_tungstenite::tungstenite::Message;

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

/// Open `n` clients to `url`, each subscribed to `entity` (acknowledged); returns their receive
/// tasks, which resolve to the instant each got its first message after that.
async fn clients(url: &str, n: usize, entity: &str, subscribe: bool) -> Vec<tokio::task::JoinHandle<Option<Instant>>> {
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
                    let ack = tokio::time::timeout(Duration::from_secs(120), socket.next()).await;
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
                loop {
                    match tokio::time::timeout(Duration::from_secs(120), socket.next()).await {
                        Ok(Some(Ok(Message::Text(_)))) => return Some(Instant::now()),
                        Ok(Some(Ok(_))) => continue,
                        _ => return None,
                    }
                }
            }));
        }
    }
    ready.wait().await;
    tasks
}

/// Polls the entity's subscription count until it reaches `n`. moto sorts the whole table on
/// every Query, so each count costs time proportional to the table: the pause between counts is
/// ten times the last count's duration (at least 200 ms), so that polling never takes more than a
/// tenth of the emulator from the subscribes it waits for.
async fn wait_for_subscribers(dynamodb: &aws_sdk_dynamodb::Client, table: &str, entity: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let counting = Instant::now();
        let mut found = 0;
        let mut start = None;
        loop {
            let page = dynamodb
                .query()
                .table_name(table)
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

/// The floor: a bare WebSocket server on loopback that sends one payload to every client (the
/// clients in child processes, like wsstack's).
async fn floor(n: usize, payload: &str) -> Duration {
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
    let group = ClientGroup::open(&url, n, "", false).await;
    go.notify_one();
    let receipts = group.receipts().await;
    let (started, _sinks) = server.await.unwrap();
    receipts
        .last
        .expect("clients received")
        .duration_since(started)
        .unwrap()
}

/// Clients spread over child processes (`fanout --clients URL ENTITY N SUBSCRIBE`).
struct ClientGroup {
    children: Vec<(
        tokio::process::Child,
        tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    )>,
}

#[derive(Default)]
struct Receipts {
    first: Option<SystemTime>,
    last: Option<SystemTime>,
    missing: usize,
}

impl ClientGroup {
    /// Returns once every client is connected (and subscribed when asked).
    async fn open(url: &str, n: usize, entity: &str, subscribe: bool) -> ClientGroup {
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
                ])
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
        ClientGroup { children }
    }

    async fn receipts(mut self) -> Receipts {
        let mut all = Receipts::default();
        for (child, lines) in &mut self.children {
            let line = lines.next_line().await.unwrap().expect("a client process ended early");
            let fields: Vec<u128> = line.split_whitespace().filter_map(|f| f.parse().ok()).collect();
            let at = |ns: u128| UNIX_EPOCH + Duration::from_nanos(ns as u64);
            if fields[0] > 0 {
                all.first = Some(all.first.map_or(at(fields[0]), |f| f.min(at(fields[0]))));
                all.last = all.last.max(Some(at(fields[1])));
            }
            all.missing += fields[2] as usize;
            let _ = child.wait().await;
        }
        all
    }
}

/// Child mode: open the clients, say `ready`, then print `first_ns last_ns missing` (epoch).
async fn client_process(url: &str, entity: &str, n: usize, subscribe: bool) {
    let tasks = clients(url, n, entity, subscribe).await;
    println!("ready");
    let mut first = None::<Instant>;
    let mut last = None::<Instant>;
    let mut missing = 0;
    for task in tasks {
        match task.await.unwrap() {
            Some(at) => {
                first = Some(first.map_or(at, |f| f.min(at)));
                last = last.max(Some(at));
            }
            None => missing += 1,
        }
    }
    // Instants to wall-clock time, which the parent shares.
    let (now, wall) = (Instant::now(), SystemTime::now());
    let epoch_ns = |at: Option<Instant>| {
        at.map_or(0, |at| {
            (wall - (now - at)).duration_since(UNIX_EPOCH).unwrap().as_nanos()
        })
    };
    println!("{} {} {missing}", epoch_ns(first), epoch_ns(last));
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--clients") {
        let n = args[3].parse().expect("a client count");
        return client_process(&args[1], &args[2], n, args[4] == "1").await;
    }
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![1, 100, 1000, 5000, 15000]
    } else {
        sizes
    };
    let budget = std::env::var("FANOUT_BUDGET").unwrap_or_else(|_| "10000".into());
    println!("Post budget: {budget} posts/s (handlers.push.max_posts_per_second), 5 invocations at most.");
    println!("Each row on a fresh emulator and `wsstack dev`.");
    println!();
    println!("| subscribers | send-event -> last receipt | first receipt | loopback floor | ratio | wsstack dev RSS (peak) | clients connected and subscribed in |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        row(n, &budget).await;
    }
}

/// One row: a fresh moto and `wsstack dev` for `n` subscribers. Each size gets its own, because
/// moto sorts the whole table on every Query: the `$disconnect`s of an earlier size's clients
/// (a Query each) would keep the emulator busy while the next size's clients connect.
async fn row(n: usize, budget: &str) {
    let moto = tokio::task::spawn_blocking(testkit::Moto::start)
        .await
        .unwrap()
        .expect("moto");
    let dir = tempfile::tempdir().unwrap();
    let stack = std::fs::read_to_string(testkit::repo_root().join("stack.yaml"))
        .unwrap()
        .replace("name: wsstack-demo", "name: fanout")
        .replace("max_posts_per_second: 2000", &format!("max_posts_per_second: {budget}"));
    std::fs::write(dir.path().join("stack.yaml"), stack).unwrap();
    let wsstack = std::env::var_os("WSSTACK_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| testkit::repo_root().join("target/debug/wsstack"));
    let mut dev = Command::new(&wsstack)
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
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("wsstack dev (cargo build --bin wsstack first)");
    let mut lines = BufReader::new(dev.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("dev output").unwrap();
        if let Some(url) = line.strip_prefix("wsstack dev: serving ") {
            break url.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let dev_pid = dev.id();

    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(moto.endpoint())
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "bench", "bench", None, None, "bench",
        ))
        .load()
        .await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let events = aws_sdk_eventbridge::Client::new(&config);
    let payload = json!({"type": "Entity Updated", "entityId": "e", "message": "Hello world"}).to_string();

    let entity = format!("fan-{n}");
    let opening = Instant::now();
    let group = ClientGroup::open(&url, n, &entity, true).await;
    wait_for_subscribers(&dynamodb, "fanout-dev-connections", &entity, n).await;
    let opened = opening.elapsed();
    let start = SystemTime::now();
    let output = events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source("wsstack.fanout.dev")
                .detail_type("Entity Updated")
                .detail(json!({"entityId": entity, "message": "Hello world"}).to_string())
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(output.failed_entry_count(), 0);
    let receipts = group.receipts().await;
    let missing = receipts.missing;
    let (rss, peak) = (status_kib(dev_pid, "VmRSS"), status_kib(dev_pid, "VmHWM"));
    let total = receipts.last.expect("someone received").duration_since(start).unwrap();
    let first = receipts.first.unwrap().duration_since(start).unwrap();
    unsafe { libc::kill(dev_pid as i32, libc::SIGINT) };
    let _ = dev.wait();
    drop(moto);
    let floor = floor(n, &payload).await;
    println!(
        "| {n} | {:.1} ms | {:.1} ms | {:.2} ms | {:.1}x | {:.1} MiB ({:.1} MiB){} | {:.0} s |",
        total.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3,
        floor.as_secs_f64() * 1e3,
        total.as_secs_f64() / floor.as_secs_f64().max(1e-6),
        rss as f64 / 1024.0,
        peak as f64 / 1024.0,
        if missing > 0 {
            format!(" ({missing} missed)")
        } else {
            String::new()
        },
        opened.as_secs_f64(),
    );
}
