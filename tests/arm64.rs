//! arm64 handlers, end to end: `up` deploys the aarch64 zip with the architecture, a switch from
//! x86_64 uploads code and architecture in one UpdateFunctionCode per function, and `wsstack dev`
//! runs the aarch64 `bootstrap` under qemu-user and delivers a push to a real WebSocket client.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::{stack_text, Env, Run};
use harness::{connect, next_message, send_event, subscribe, wait_for_subscribers};
use serde_json::json;

const FUNCTIONS: [&str; 6] = ["connect", "disconnect", "subscribe", "unsubscribe", "resume", "push"];

/// The arm64 zip handlers/build.sh made, which build.rs embeds (the same binary, zipped by the
/// same function); `None` (the test skips) when it was not built and CI does not require it.
fn arm64_zip() -> Option<Vec<u8>> {
    let path = testkit::repo_root().join("target/handlers/bootstrap-arm64.zip");
    match std::fs::read(&path) {
        Ok(zip) => Some(zip),
        Err(_) => {
            assert!(
                std::env::var_os("WSSTACK_REQUIRE_BOOTSTRAP").is_none(),
                "WSSTACK_REQUIRE_BOOTSTRAP is set but {} is missing (handlers/build.sh)",
                path.display()
            );
            eprintln!("skipped: no {} (run handlers/build.sh)", path.display());
            None
        }
    }
}

/// A wsstack built with a prebuilt x86_64 handler only (WSSTACK_HANDLERS_BOOTSTRAP) has no arm64
/// one: it says so, and the test skips unless CI requires the handlers.
fn built_without_arm64(run: &Run) -> bool {
    let without = run.code == 2 && run.stderr.contains("built without the arm64 Lambda handlers");
    if without {
        assert!(
            std::env::var_os("WSSTACK_REQUIRE_BOOTSTRAP").is_none(),
            "WSSTACK_REQUIRE_BOOTSTRAP is set but wsstack has no arm64 handlers: {run}"
        );
        eprintln!("skipped: this wsstack was built without the arm64 handlers");
    }
    without
}

fn arm64_stack(name: &str) -> String {
    stack_text(name, &[("architecture: x86_64", "architecture: arm64")])
}

async fn configuration(env: &Env, name: &str) -> aws_sdk_lambda::types::FunctionConfiguration {
    let function = env.lambda().get_function().function_name(name).send().await.unwrap();
    function.configuration.expect("a configuration")
}

#[tokio::test]
async fn an_arm64_stack_gets_the_arm64_zip_and_a_second_up_writes_nothing() {
    let Some(zip) = arm64_zip() else { return };
    let env = Env::start().await;
    let stack = env.write_stack("stack.yaml", &arm64_stack("armn"));
    let run = env.run(&stack, &["up"]).await;
    if built_without_arm64(&run) {
        return;
    }
    assert_eq!(run.code, 0, "{run}");
    let sha256 = wsstack_handlers::package::code_sha256(&zip);
    for handler in FUNCTIONS {
        let config = configuration(&env, &format!("armn-dev-{handler}")).await;
        assert_eq!(
            config.architectures(),
            [aws_sdk_lambda::types::Architecture::Arm64],
            "{handler}"
        );
        assert_eq!(config.code_sha256(), Some(sha256.as_str()), "{handler}");
    }

    env.proxy.clear();
    env.run(&stack, &["up"]).await.expect_exit(0);
    let writes: Vec<String> = env.proxy.writes().iter().map(|c| c.operation.clone()).collect();
    assert!(writes.is_empty(), "a no-op up writes nothing: {writes:?}");
}

#[tokio::test]
async fn switching_to_arm64_uploads_code_and_architecture_in_one_call_per_function() {
    let Some(zip) = arm64_zip() else { return };
    let env = Env::start().await;
    let x86 = env.write_stack("x86.yaml", &stack_text("arms", &[]));
    env.run(&x86, &["up"]).await.expect_exit(0);
    let arm = env.write_stack("arm.yaml", &arm64_stack("arms"));

    env.proxy.clear();
    let plan = env.run(&arm, &["plan"]).await;
    if built_without_arm64(&plan) {
        return;
    }
    assert_eq!(plan.code, 3, "{plan}");
    assert!(env.proxy.writes().is_empty(), "plan is read-only");
    assert_eq!(
        plan.stdout.matches("architecture: x86_64 -> arm64").count(),
        FUNCTIONS.len(),
        "{plan}"
    );
    assert_eq!(plan.stdout.matches("      code: ").count(), FUNCTIONS.len(), "{plan}");

    env.run(&arm, &["up"]).await.expect_exit(0);
    let writes: Vec<String> = env.proxy.writes().iter().map(|c| c.operation.clone()).collect();
    for handler in FUNCTIONS {
        let name = format!("arms-dev-{handler}");
        let of_function: Vec<&String> = writes
            .iter()
            .filter(|w| w.contains(&format!("/functions/{name}/")))
            .collect();
        assert_eq!(
            of_function,
            [&format!("PUT /2015-03-31/functions/{name}/code")],
            "one UpdateFunctionCode, which carries the architecture, and no configuration update"
        );
        let config = configuration(&env, &name).await;
        assert_eq!(
            config.code_sha256(),
            Some(wsstack_handlers::package::code_sha256(&zip).as_str()),
            "{handler}"
        );
        // moto 5.2.5 drops UpdateFunctionCode's Architectures (AWS applies it), so the function
        // reads back as x86_64 here: the arm64 read-back is proven on creation, above.
    }
}

#[tokio::test]
async fn dev_runs_the_arm64_handlers_under_qemu_and_delivers_the_push() {
    if zip_missing_or_no_qemu() {
        return;
    }
    let env = Env::start().await;
    let path = env.write_stack("armd.yaml", &arm64_stack("armd"));
    let mut command = env.command(&path, &["dev", "--port", "0", "--quiet-handlers", "-q"]);
    command
        .env("AWS_ENDPOINT_URL", env.moto.endpoint())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start wsstack dev");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    // Up to "Ctrl-C stops it.": the lines that describe what dev serves.
    let banner = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        for line in lines.by_ref() {
            let line = line.expect("dev stdout");
            let last = line.starts_with("Ctrl-C stops it.");
            banner.push(line);
            if last {
                std::thread::spawn(move || for _ in lines {});
                return Some(banner);
            }
        }
        None
    })
    .await
    .unwrap();
    let Some(banner) = banner else {
        let _ = child.wait();
        let errors = errors.join().unwrap();
        if errors.contains("built without the arm64 Lambda handlers") {
            assert!(std::env::var_os("WSSTACK_REQUIRE_BOOTSTRAP").is_none(), "{errors}");
            eprintln!("skipped: this wsstack was built without the arm64 handlers");
            return;
        }
        panic!("wsstack dev exited before serving:\n{errors}");
    };
    let dev = Stopping(child);
    let url = banner
        .iter()
        .find_map(|line| line.strip_prefix("wsstack dev: serving "))
        .expect("the serving line")
        .trim()
        .to_string();
    let handlers = banner
        .iter()
        .find(|line| line.trim_start().starts_with("handlers"))
        .unwrap_or_else(|| panic!("dev says how it runs the arm64 handlers: {banner:?}"));
    assert!(
        handlers.contains("arm64 bootstrap under") && handlers.contains("qemu"),
        "{handlers}"
    );

    let (mut client, _) = connect(&url, None).await;
    subscribe(&mut client, "graviton").await;
    wait_for_subscribers(&env, "armd-dev-connections", "graviton", 1).await;
    send_event(&env, "armd", "graviton", "from aarch64").await;
    let push = next_message(&mut client, Duration::from_secs(60))
        .await
        .expect("the push arrives");
    assert_eq!(
        push,
        json!({"type": "Entity Updated", "entityId": "graviton", "message": "from aarch64", "seq": 1})
    );
    let code = tokio::task::spawn_blocking(move || dev.interrupt()).await.unwrap();
    assert_eq!(code, Some(0), "dev stops cleanly on Ctrl-C");
}

/// The dev process, stopped with SIGINT (then SIGKILL) however the test ends.
struct Stopping(std::process::Child);

impl Stopping {
    fn interrupt(mut self) -> Option<i32> {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        for _ in 0..400 {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Stopping {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The dev test needs the arm64 zip and qemu-user (scripts/setup installs qemu-user-static).
fn zip_missing_or_no_qemu() -> bool {
    if arm64_zip().is_none() {
        return true;
    }
    let qemu = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|dir| dir.join("qemu-aarch64-static").is_file() || dir.join("qemu-aarch64").is_file());
    if !qemu && std::env::consts::ARCH != "aarch64" {
        assert!(
            std::env::var_os("WSSTACK_REQUIRE_BOOTSTRAP").is_none(),
            "WSSTACK_REQUIRE_BOOTSTRAP is set but qemu-aarch64-static is missing (scripts/setup)"
        );
        eprintln!("skipped: no qemu-aarch64-static (scripts/setup installs it)");
        return true;
    }
    false
}
