//! Test fixtures for the runtime host and the gateway: a `bootstrap` in bash that speaks the Lambda
//! Runtime API over /dev/tcp, and a function host that runs it. Its behaviour is set per function
//! through the environment, so the code under test runs a real process over real HTTP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::runtime::{FunctionConfig, FunctionHost, Limits, LogSink, Runtime};

/// A runtime that, per invocation, appends the event to `$RECORD` (if set) and answers `$ANSWER`
/// (default `"ok"`); the event `"hang"` hangs. `$MODE` = `exit` exits at once with status 3,
/// `init-error` posts an init error and waits, `error` reports `$ANSWER` as the invocation's error.
const SCRIPT: &str = r#"#!/bin/bash
host=${AWS_LAMBDA_RUNTIME_API%:*}; port=${AWS_LAMBDA_RUNTIME_API#*:}
case "$MODE" in
  exit) exit 3 ;;
  init-error)
    error='{"errorType":"Config.Missing","errorMessage":"no TABLE_NAME"}'
    exec 3<>/dev/tcp/$host/$port
    printf 'POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: runtime\r\nContent-Length: %d\r\n\r\n%s' ${#error} "$error" >&3
    exec sleep 60 ;;
esac
answer=${ANSWER:-'"ok"'}
while true; do
  exec 3<>/dev/tcp/$host/$port
  printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: runtime\r\n\r\n' >&3
  id=""; length=0
  while IFS= read -r line <&3; do
    line=${line%$'\r'}
    case "$line" in
      [Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d:*) id=${line#*: } ;;
      [Cc]ontent-[Ll]ength:*) length=${line#*: } ;;
      "") break ;;
    esac
  done
  body=""
  if [ "$length" -gt 0 ]; then read -r -N "$length" body <&3; fi
  exec 3<&-
  if [ -n "$RECORD" ]; then printf '%s\n' "$body" >> "$RECORD"; fi
  if [ "$body" = '"hang"' ]; then exec sleep 60; fi
  outcome=response; if [ "$MODE" = error ]; then outcome=error; fi
  exec 4<>/dev/tcp/$host/$port
  printf 'POST /2018-06-01/runtime/invocation/%s/'$outcome' HTTP/1.1\r\nHost: runtime\r\nContent-Length: %d\r\n\r\n%s' "$id" ${#answer} "$answer" >&4
  read -r status <&4
  exec 4<&-
done
"#;

/// Write the fake bootstrap into `dir`.
pub fn fake_bootstrap(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("bootstrap");
    std::fs::write(&path, SCRIPT).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A host of the fake bootstrap with this environment (`MODE`, `ANSWER`, `RECORD`), in a runtime of
/// its own that `shutdown` stops.
pub fn fake_host(
    binary: PathBuf,
    timeout: Duration,
    max_instances: usize,
    environment: &[(&str, &str)],
    shutdown: CancellationToken,
) -> Arc<FunctionHost> {
    let limits = Limits {
        instances: max_instances,
        queued: 1_000,
    };
    fake_host_in(&fake_runtime(shutdown), binary, timeout, limits, environment)
}

/// A runtime whose handler output is quiet and goes nowhere.
pub fn fake_runtime(shutdown: CancellationToken) -> Runtime {
    Runtime::new(
        shutdown,
        LogSink {
            quiet: true,
            cloudwatch: None,
        },
    )
}

/// A host of the fake bootstrap in `runtime`, with these limits.
pub fn fake_host_in(
    runtime: &Runtime,
    binary: PathBuf,
    timeout: Duration,
    limits: Limits,
    environment: &[(&str, &str)],
) -> Arc<FunctionHost> {
    let mut variables = BTreeMap::new();
    variables.insert("PATH".to_string(), std::env::var("PATH").unwrap_or_default());
    variables.insert("LC_ALL".to_string(), "C".to_string());
    for (name, value) in environment {
        variables.insert(name.to_string(), value.to_string());
    }
    let config = FunctionConfig {
        name: "fake".into(),
        arn: "arn:aws:lambda:us-east-1:123456789012:function:fake".into(),
        memory_mb: 128,
        timeout,
        environment: variables,
        binary,
    };
    runtime.host(config, limits)
}

/// Wait until the host runs `count` instances.
pub async fn wait_for_instances(host: &FunctionHost, count: usize) {
    for _ in 0..500 {
        if host.instance_count() == count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} instances, expected {count}", host.instance_count());
}
