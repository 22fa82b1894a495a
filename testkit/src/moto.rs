//! The moto server as a child process on a free loopback port, stopped when dropped.
//!
//! The server comes from the project's virtual environment (`.venv/`, made by `scripts/setup`);
//! `WSSTACK_MOTO_SERVER` names another executable.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A running moto server; killed on drop.
pub struct Moto {
    child: Child,
    addr: SocketAddr,
}

impl Moto {
    /// Path of the moto_server executable this project uses.
    pub fn executable() -> PathBuf {
        match std::env::var_os("WSSTACK_MOTO_SERVER") {
            Some(path) => PathBuf::from(path),
            None => crate::repo_root().join(".venv/bin/moto_server"),
        }
    }

    /// Start moto on a free loopback port and wait until it answers.
    pub fn start() -> Result<Moto> {
        let exe = Self::executable();
        if !exe.exists() {
            bail!(
                "moto server not found at {} (run scripts/setup, or set WSSTACK_MOTO_SERVER)",
                exe.display()
            );
        }
        // A port can be taken between our probe and moto's bind; try a few.
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port()?;
            let child = Command::new(&exe)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_ALLOW_NONEXISTENT_REGION", "true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", exe.display()))?;
            let mut moto = Moto {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            match moto.wait_ready(Duration::from_secs(30)) {
                Ok(()) => return Ok(moto),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap())
    }

    fn wait_ready(&mut self, deadline: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("moto server exited early with {status}");
            }
            if http_get(self.addr, "/moto-api/data.json").is_ok() {
                return Ok(());
            }
            if start.elapsed() > deadline {
                bail!("moto server on {} did not answer within {deadline:?}", self.addr);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Clear all emulator state.
    pub fn reset(&self) -> Result<()> {
        http_request(self.addr, "POST", "/moto-api/reset").map(|_| ())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn http_get(addr: SocketAddr, path: &str) -> Result<String> {
    http_request(addr, "GET", path)
}

fn http_request(addr: SocketAddr, method: &str, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    if !response.starts_with("HTTP/1.1 200") && !response.starts_with("HTTP/1.0 200") {
        bail!("{method} {path}: {}", response.lines().next().unwrap_or(""));
    }
    Ok(response)
}
