//! Installed, not cloned: `wsstack dev` run in a folder holding only a stack.yaml finds the moto
//! emulator in the per-user cache that `--install-emulator` fills, and `--install-emulator`
//! itself needs no stack file.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{stack_text, wsstack_binary};
use tempfile::TempDir;

/// The per-user cache of the emulator, below a home folder.
const CACHE: &str = ".cache/wsstack/moto-5.2.5";

/// A home folder whose per-user cache holds a moto_server that leaves a file behind (the third
/// value) and then runs the shell line `then`, and a project folder holding only the shipped stack
/// file as stack `name`.
fn home_with_cached_moto(name: &str, then: &str) -> (TempDir, TempDir, PathBuf) {
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("stack.yaml"), stack_text(name, &[])).unwrap();
    let bin = home.path().join(CACHE).join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let started = home.path().join("cached-moto-started");
    let server = bin.join("moto_server");
    std::fs::write(&server, format!("#!/bin/sh\ntouch '{}'\n{then}\n", started.display())).unwrap();
    std::fs::set_permissions(&server, std::fs::Permissions::from_mode(0o755)).unwrap();
    (home, project, started)
}

#[test]
fn dev_finds_the_emulator_in_the_per_user_cache() {
    // A finished install: the marker, and a moto_server that notes it was the one started.
    let real = testkit::repo_root().join(".venv/bin/moto_server");
    let (home, project, used) = home_with_cached_moto("cached", &format!("exec '{}' \"$@\"", real.display()));
    std::fs::write(home.path().join(CACHE).join("wsstack-installed"), "5.2.5").unwrap();

    let (serving, code) = run_dev(home.path(), project.path());
    assert!(serving, "wsstack dev served the stack");
    assert!(
        used.exists(),
        "the moto_server of the per-user cache was the one started"
    );
    assert_eq!(code, Some(0));
}

/// PATH minus the folders that hold a moto_server (this machine may have one, e.g. a pyenv shim):
/// a user's PATH without the emulator.
fn path_without_moto() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kept: Vec<_> = std::env::split_paths(&path)
        .filter(|dir| !dir.join("moto_server").exists())
        .collect();
    std::env::join_paths(kept).unwrap()
}

/// Run `wsstack dev` in `project` with only PATH and HOME from outside, until it serves, then
/// Ctrl-C: (whether it served, its exit code).
fn run_dev(home: &std::path::Path, project: &std::path::Path) -> (bool, Option<i32>) {
    let mut child = Command::new(wsstack_binary())
        .args(["dev", "--port", "0", "-q", "--quiet-handlers"])
        .current_dir(project)
        .env_clear()
        .env("PATH", path_without_moto())
        .env("HOME", home)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let serving = lines.any(|line| line.starts_with("wsstack dev: serving "));
    // Keep reading: dev still prints while it stops.
    std::thread::spawn(move || for _ in lines {});
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut status = None;
    for _ in 0..600 {
        if let Some(done) = child.try_wait().unwrap() {
            status = Some(done);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    (serving, status.and_then(|s| s.code()))
}

#[test]
fn an_unfinished_cache_install_is_not_used() {
    // No marker: an install that was interrupted; its moto_server must not be started.
    let (home, project, used) = home_with_cached_moto("unfinished", "exit 7");
    let (serving, code) = run_dev(home.path(), project.path());
    assert!(serving, "wsstack dev served with the emulator found elsewhere");
    assert!(!used.exists(), "the unfinished install was not started");
    assert_eq!(code, Some(0));
}
