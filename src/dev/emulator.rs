//! The AWS APIs for `wsstack dev`: the moto server, started on a free loopback port when no
//! endpoint is given. Found as `WSSTACK_MOTO_SERVER`, `moto_server` on PATH, or the project's
//! `.venv/bin/moto_server` (next to the stack file or where wsstack was built).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub struct Emulator {
    pub endpoint: String,
    _child: tokio::process::Child,
}

fn candidates(stack_dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Some(path) = std::env::var_os("WSSTACK_MOTO_SERVER") {
        found.push(PathBuf::from(path));
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            found.push(dir.join("moto_server"));
        }
    }
    found.push(stack_dir.join(".venv/bin/moto_server"));
    found.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server"));
    found
}

/// Start moto and wait until it answers.
pub async fn start(stack_dir: &Path) -> Result<Emulator> {
    let Some(executable) = candidates(stack_dir).into_iter().find(|p| p.is_file()) else {
        bail!(
            "no AWS endpoint given and the moto emulator is not installed: run scripts/setup, or pass --endpoint-url"
        );
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = tokio::process::Command::new(&executable)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", executable.display()))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        let ready = tokio::task::spawn_blocking(move || answers(port))
            .await
            .unwrap_or(false);
        if ready {
            return Ok(Emulator {
                endpoint,
                _child: child,
            });
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the moto emulator at {endpoint} did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /moto-api/data.json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
