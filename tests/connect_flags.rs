//! `wsstack connect` refuses a `--timeout` that is not a usable number of seconds with exit 2
//! and a message naming the flag, before connecting to anything.

use std::net::TcpListener;
use std::process::Command;

/// A loopback URL nothing answers on: the flags must be refused before it is tried.
fn closed_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("ws://127.0.0.1:{port}/")
}

#[test]
fn a_timeout_that_is_not_a_duration_exits_2_without_a_panic() {
    let url = closed_url();
    for timeout in ["1e20", "-1", "0", "NaN", "inf"] {
        let output = Command::new(env!("CARGO_BIN_EXE_wsstack"))
            .args(["connect", &url, &format!("--timeout={timeout}")])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "--timeout {timeout}: {stderr}");
        assert_eq!(output.status.code(), Some(2), "--timeout {timeout}: {stderr}");
        assert!(stderr.contains("error: --timeout"), "--timeout {timeout}: {stderr}");
    }
}
