//! The round trips `up`, `plan` and `down` make one after another: the critical path of the
//! proxy's call log, counted as `scripts/bench` counts it. Held to the goals of issue 13: a cold
//! `up` in at most 12, a no-op `up` and `plan` in at most 6 with no write, `down` in at most 10.
//!
//! Calls that go out together must overlap even when a debug build on a loaded machine sends them
//! some time apart, or they would count as one after another: so 250 ms per call rather than the
//! bench's 60, and a tiny handlers zip (signing the real 2.7 MB one five times over takes seconds
//! unoptimised). Neither changes which call waits for which.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Env;
use testkit::critical_chain;
use testkit::critical_path::describe;

/// Run one command; its critical path, its write count and the chain for messages.
async fn measure(env: &Env, stack: &Path, args: &[&str], ok: &[i32]) -> (usize, usize, String) {
    env.proxy.clear();
    let zip = tiny_zip(env);
    let mut args = args.to_vec();
    args.extend(["--handlers-zip", zip.to_str().unwrap()]);
    let run = env.run(stack, &args).await;
    assert!(ok.contains(&run.code), "{args:?}: {run}");
    let calls = env.proxy.calls();
    let chain = critical_chain(&calls);
    let writes = calls.iter().filter(|c| c.write).count();
    (chain.len(), writes, describe(&chain))
}

/// A handlers package of a few bytes, the same for every command.
fn tiny_zip(env: &Env) -> std::path::PathBuf {
    use std::io::Write;
    let path = env.dir.path().join("tiny.zip");
    if !path.exists() {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        zip.start_file("bootstrap", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"#!/bin/sh\n").unwrap();
        zip.finish().unwrap();
    }
    path
}

#[tokio::test]
async fn each_command_makes_few_round_trips_one_after_another() {
    let (env, stack) = Env::with_stack("paths").await;
    env.proxy.set_latency(Duration::from_millis(250));

    let (cold, _, chain) = measure(&env, &stack, &["up", "-q"], &[0]).await;
    assert!(cold <= 12, "cold up: {cold} round trips: {chain}");
    let (plan, writes, chain) = measure(&env, &stack, &["plan", "-q"], &[0]).await;
    assert_eq!(writes, 0, "plan writes nothing");
    assert!(plan <= 6, "plan: {plan} round trips: {chain}");
    let (noop, writes, chain) = measure(&env, &stack, &["up", "-q"], &[0]).await;
    assert_eq!(writes, 0, "a no-op up writes nothing");
    assert!(noop <= 6, "no-op up: {noop} round trips: {chain}");
    let (down, _, chain) = measure(&env, &stack, &["down", "--yes", "-q"], &[0]).await;
    assert!(down <= 10, "down: {down} round trips: {chain}");
    assert_eq!(common::leftovers(&env, "paths").await, Vec::<String>::new());
}
