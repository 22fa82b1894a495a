//! The runtime host against a real process speaking the Runtime API (the bash bootstrap of
//! `test_support`): answers, the watchdog, init failures, ETXTBSY, the bounded queue, shutdown.

use std::time::Instant;

use super::*;
use crate::dev::test_support::{fake_bootstrap, fake_host, fake_host_in, fake_runtime, wait_for_instances};

fn hello() -> Bytes {
    Bytes::from_static(b"\"hello\"")
}

/// An invocation that must end (with whatever result) well within `limit`.
async fn bounded(host: &Arc<FunctionHost>, payload: Bytes, limit: Duration) -> Result<Bytes, InvokeError> {
    tokio::time::timeout(limit, host.invoke(payload))
        .await
        .expect("the invocation is answered, not left waiting")
}

#[tokio::test]
async fn an_answer_is_returned_and_a_hung_invocation_times_out_and_stops_its_process() {
    let dir = tempfile::tempdir().unwrap();
    let host = fake_host(
        fake_bootstrap(dir.path()),
        Duration::from_millis(800),
        2,
        &[],
        CancellationToken::new(),
    );

    let answer = host.invoke(hello()).await;
    assert_eq!(answer, Ok(Bytes::from_static(b"\"ok\"")));

    let started = Instant::now();
    let answer = host.invoke(Bytes::from_static(b"\"hang\"")).await;
    assert_eq!(answer, Err(InvokeError::Timeout(Duration::from_millis(800))));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // The instance that had the hung invocation is stopped, as Lambda does; the one that
    // answered is still there.
    wait_for_instances(&host, 1).await;
}

#[tokio::test]
async fn the_watchdog_spares_an_instance_that_answered_in_time_and_the_next_one_works() {
    let dir = tempfile::tempdir().unwrap();
    // A timeout the bash bootstrap answers well within, also on a loaded machine (at 300 ms its
    // byte-by-byte reads and a new connection could come close).
    let timeout = Duration::from_millis(1500);
    let host = fake_host(fake_bootstrap(dir.path()), timeout, 1, &[], CancellationToken::new());
    assert_eq!(host.invoke(hello()).await, Ok(Bytes::from_static(b"\"ok\"")));
    // Past the first invocation's timeout: its watchdog must not stop the instance.
    tokio::time::sleep(timeout * 2).await;
    assert_eq!(host.instance_count(), 1);
    assert_eq!(host.invoke(hello()).await, Ok(Bytes::from_static(b"\"ok\"")));

    // A hung invocation on the only instance: timed out, and the next invocation gets a new one.
    let hung = bounded(&host, Bytes::from_static(b"\"hang\""), Duration::from_secs(10)).await;
    assert_eq!(hung, Err(InvokeError::Timeout(timeout)));
    let after = bounded(&host, hello(), Duration::from_secs(5)).await;
    assert_eq!(after, Ok(Bytes::from_static(b"\"ok\"")));
}

#[tokio::test]
async fn shutdown_stops_every_instance() {
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let host = fake_host(fake_bootstrap(dir.path()), Duration::from_secs(5), 2, &[], stop.clone());
    assert!(host.invoke(hello()).await.is_ok());
    wait_for_instances(&host, 1).await;
    stop.cancel();
    wait_for_instances(&host, 0).await;
    assert_eq!(host.invoke(hello()).await, Err(InvokeError::ShuttingDown));
}

#[tokio::test]
async fn a_bootstrap_that_cannot_start_fails_its_invocation_like_lambda() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-bootstrap");
    let host = fake_host(missing, Duration::from_secs(5), 2, &[], CancellationToken::new());
    match bounded(&host, hello(), Duration::from_secs(5)).await {
        Err(InvokeError::Init { error_type, message }) => {
            assert_eq!(error_type, "Runtime.InvalidEntrypoint");
            assert!(message.contains("no-such-bootstrap"), "{message}");
        }
        other => panic!("expected an init error, got {other:?}"),
    }
    wait_for_instances(&host, 0).await;
}

#[tokio::test]
async fn a_process_that_exits_before_its_first_invocation_fails_it_and_the_queue_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let host = fake_host(
        fake_bootstrap(dir.path()),
        Duration::from_secs(5),
        1,
        &[("MODE", "exit")],
        CancellationToken::new(),
    );
    // One instance at most: the second invocation waits in the queue for the first's instance,
    // which dies; it must get an instance of its own (which dies too), not wait forever.
    let (first, second) = tokio::join!(
        bounded(&host, hello(), Duration::from_secs(10)),
        bounded(&host, hello(), Duration::from_secs(10)),
    );
    for answer in [first, second] {
        match answer {
            Err(InvokeError::Init { error_type, message }) => {
                assert_eq!(error_type, "Runtime.ExitError");
                assert!(message.contains("exit status: 3"), "{message}");
            }
            other => panic!("expected an init error, got {other:?}"),
        }
    }
    wait_for_instances(&host, 0).await;
}

#[tokio::test]
async fn an_init_error_fails_the_first_invocation_with_the_runtimes_error() {
    let dir = tempfile::tempdir().unwrap();
    let host = fake_host(
        fake_bootstrap(dir.path()),
        Duration::from_secs(5),
        2,
        &[("MODE", "init-error")],
        CancellationToken::new(),
    );
    let answer = bounded(&host, hello(), Duration::from_secs(5)).await;
    assert_eq!(
        answer,
        Err(InvokeError::Init {
            error_type: "Config.Missing".into(),
            message: "no TABLE_NAME".into()
        })
    );
    wait_for_instances(&host, 0).await;
}

#[tokio::test]
async fn an_executable_still_open_for_writing_is_started_once_it_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let binary = fake_bootstrap(dir.path());
    // What another thread's fork does to a file just written: it stays open for writing, and
    // exec answers ETXTBSY until it is closed.
    let writer = std::fs::OpenOptions::new().append(true).open(&binary).unwrap();
    let host = fake_host(binary, Duration::from_secs(5), 1, &[], CancellationToken::new());
    let invocation = tokio::spawn({
        let host = host.clone();
        async move { bounded(&host, hello(), Duration::from_secs(10)).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    drop(writer);
    assert_eq!(invocation.await.unwrap(), Ok(Bytes::from_static(b"\"ok\"")));
}

/// A runtime with one function of these limits and timeout, whose first instance hangs on an
/// invocation (returned, to be awaited). The directory holds the bootstrap: keep it alive.
async fn one_instance_hung(
    limits: Limits,
    timeout: Duration,
) -> (
    tempfile::TempDir,
    Runtime,
    Arc<FunctionHost>,
    tokio::task::JoinHandle<Result<Bytes, InvokeError>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let runtime = fake_runtime(CancellationToken::new());
    let host = fake_host_in(&runtime, fake_bootstrap(dir.path()), timeout, limits, &[]);
    let hung = tokio::spawn({
        let host = host.clone();
        async move { host.invoke(Bytes::from_static(b"\"hang\"")).await }
    });
    wait_for_instances(&host, 1).await;
    (dir, runtime, host, hung)
}

#[tokio::test]
async fn a_full_queue_throttles_at_once_and_what_it_holds_still_runs() {
    let limits = Limits {
        instances: 1,
        queued: 1,
    };
    // The only instance hangs on the first invocation; the second waits in the queue.
    let (_dir, _runtime, host, hung) = one_instance_hung(limits, Duration::from_secs(1)).await;
    let queued = tokio::spawn({
        let host = host.clone();
        async move { host.invoke(hello()).await }
    });
    for _ in 0..500 {
        if host.queued_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(host.queued_count(), 1);

    // The third finds the queue full: refused at once, as Lambda throttles.
    let started = Instant::now();
    let throttled = host.invoke(hello()).await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(throttled, Err(InvokeError::Throttled { waiting: 1 }));
    let message = throttled.unwrap_err().to_string();
    assert!(message.starts_with("TooManyRequestsException"), "{message}");

    // What the queue held runs once the hung instance is stopped.
    assert_eq!(hung.await.unwrap(), Err(InvokeError::Timeout(Duration::from_secs(1))));
    let answer = tokio::time::timeout(Duration::from_secs(10), queued)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer, Ok(Bytes::from_static(b"\"ok\"")));
}

#[tokio::test]
async fn stop_returns_once_every_instance_its_process_and_its_output_have_ended() {
    let limits = Limits {
        instances: 2,
        queued: 10,
    };
    // Two instances: one hung on an invocation (its process sleeping), one idle in /next.
    let (_dir, runtime, host, hung) = one_instance_hung(limits, Duration::from_secs(30)).await;
    assert_eq!(
        bounded(&host, hello(), Duration::from_secs(10)).await,
        Ok(Bytes::from_static(b"\"ok\""))
    );
    assert_eq!(host.instance_count(), 2);
    // Each instance's own task, its output readers, its Runtime API connections.
    assert!(runtime.task_count() >= 2 * 3, "{} tasks", runtime.task_count());

    let started = Instant::now();
    assert!(
        runtime.stop(Duration::from_secs(10)).await,
        "tasks left after the grace"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // Nothing is left running once stop returns: no waiting for it to settle.
    assert_eq!(runtime.task_count(), 0);
    assert_eq!(host.instance_count(), 0);
    assert_eq!(hung.await.unwrap(), Err(InvokeError::ShuttingDown));
    assert_eq!(host.invoke(hello()).await, Err(InvokeError::ShuttingDown));
}
