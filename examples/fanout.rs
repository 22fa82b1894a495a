//! Push fan-out benchmark of `wsstack dev`: one event to N subscribers, from PutEvents to the last
//! client receiving it, against the floor: the same payload sent to N clients by a bare loopback
//! WebSocket server, measured in the same run. Also the peak memory of `wsstack dev` holding the
//! connections.
//!
//! Run: `cargo build --bin wsstack && cargo run --example fanout -- [N ...]` (default 1 100 1000 5000).
//! Needs the moto emulator (`scripts/setup`). Prints a markdown table.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{Barrier, Notify};
use tokio_tungstenite::tungstenite::Message;

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Open `n` clients to `url`, each subscribed to `entity`; returns their receive tasks, which
/// resolve to the instant each got its first message.
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

async fn wait_for_subscribers(dynamodb: &aws_sdk_dynamodb::Client, table: &str, entity: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
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
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The floor: a bare WebSocket server on loopback that sends one payload to every client.
async fn floor(n: usize, payload: &str) -> Duration {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let go = Arc::new(Notify::new());
    let started = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let server = {
        let go = go.clone();
        let payload = payload.to_string();
        let started = started.clone();
        tokio::spawn(async move {
            let mut sinks = Vec::new();
            while sinks.len() < n {
                let (stream, _) = listener.accept().await.unwrap();
                let socket = tokio_tungstenite::accept_async(stream).await.unwrap();
                sinks.push(socket.split().0);
            }
            go.notified().await;
            *started.lock().unwrap() = Some(Instant::now());
            let sends = sinks
                .iter_mut()
                .map(|sink| sink.send(Message::Text(payload.clone().into())));
            futures::future::join_all(sends).await;
            sinks
        })
    };
    let tasks = clients(&url, n, "", false).await;
    go.notify_one();
    let mut last = None;
    for task in tasks {
        last = last.max(task.await.unwrap());
    }
    let _sinks = server.await.unwrap();
    let start = started.lock().unwrap().expect("server sent");
    last.expect("clients received") - start
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![1, 100, 1000, 5000]
    } else {
        sizes
    };
    let moto = tokio::task::spawn_blocking(testkit::Moto::start)
        .await
        .unwrap()
        .expect("moto");
    let dir = tempfile::tempdir().unwrap();
    let stack = std::fs::read_to_string(testkit::repo_root().join("stack.yaml"))
        .unwrap()
        .replace("name: wsstack-demo", "name: fanout");
    std::fs::write(dir.path().join("stack.yaml"), stack).unwrap();
    let wsstack = testkit::repo_root().join("target/debug/wsstack");
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

    println!("| subscribers | send-event -> last receipt | first receipt | loopback floor | ratio | wsstack dev RSS |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        let entity = format!("fan-{n}");
        let tasks = clients(&url, n, &entity, true).await;
        wait_for_subscribers(&dynamodb, "fanout-dev-connections", &entity, n).await;
        let start = Instant::now();
        let output = events
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source("wsstack")
                    .detail_type("Entity Updated")
                    .detail(json!({"entityId": entity, "message": "Hello world"}).to_string())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(output.failed_entry_count(), 0);
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
        let rss = rss_kib(dev_pid);
        let total = last.expect("someone received") - start;
        let first = first.unwrap() - start;
        let floor = floor(n, &payload).await;
        println!(
            "| {n} | {:.1} ms | {:.1} ms | {:.2} ms | {:.0}x | {:.1} MiB{} |",
            total.as_secs_f64() * 1e3,
            first.as_secs_f64() * 1e3,
            floor.as_secs_f64() * 1e3,
            total.as_secs_f64() / floor.as_secs_f64().max(1e-6),
            rss as f64 / 1024.0,
            if missing > 0 {
                format!(" ({missing} missed)")
            } else {
                String::new()
            }
        );
        // Let the clients' $disconnect settle before the next size.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!();
    println!("wsstack dev peak RSS: {:.1} MiB", peak_rss_kib(dev_pid) as f64 / 1024.0);
    unsafe { libc::kill(dev_pid as i32, libc::SIGINT) };
    let _ = dev.wait();
}
