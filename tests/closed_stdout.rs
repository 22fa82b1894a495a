//! A command whose reader has gone away (`wsstack asyncapi | head -1`) ends quietly, as `cat` or
//! `git log` do: killed by SIGPIPE at the write, with nothing on stderr, not a panic and a backtrace.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

/// Runs `wsstack args` with its stdout a pipe whose read end is already closed.
fn with_stdout_closed(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsstack"))
        .args(args)
        .current_dir(testkit::repo_root())
        // Offline: no region from the environment or a profile is needed.
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_command_whose_reader_went_away_ends_quietly() {
    for args in [&["asyncapi"][..], &["schema"][..], &["completions", "bash"][..]] {
        let (status, stderr) = with_stdout_closed(args);
        assert_eq!(stderr, "", "wsstack {args:?} wrote to stderr");
        assert_eq!(
            status.signal(),
            Some(libc::SIGPIPE),
            "wsstack {args:?} should end at the write, as other CLIs do: {status:?}"
        );
    }
}
