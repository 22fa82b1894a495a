//! The AWS APIs for `wsstack dev`: the moto server, started on a free loopback port when no
//! endpoint is given. Found as `WSSTACK_MOTO_SERVER`, `moto_server` on PATH, the project's
//! `.venv/bin/moto_server` next to the stack file, the per-user cache that `--install-emulator`
//! fills (`~/.cache/wsstack/moto-{version}/`), or the `.venv` where wsstack was built.

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

/// The moto version wsstack is tested with (scripts/setup pins the same).
pub const MOTO_VERSION: &str = "5.2.5";
/// Written last by `--install-emulator`: a cache folder without it is an interrupted install.
const INSTALLED_MARKER: &str = "wsstack-installed";

/// The per-user folder `--install-emulator` fills: `$XDG_CACHE_HOME/wsstack/moto-{version}`,
/// else `~/.cache/wsstack/moto-{version}`.
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("wsstack").join(format!("moto-{MOTO_VERSION}")))
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
    if let Some(cache) = cache_dir().filter(|dir| dir.join(INSTALLED_MARKER).is_file()) {
        found.push(cache.join("bin/moto_server"));
    }
    found.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server"));
    found
}

/// Put the pinned moto into the per-user cache (python3 -m venv, then pip); idempotent. An
/// interrupted install is started again from scratch.
pub fn install() -> Result<PathBuf> {
    let dir = cache_dir().context("neither XDG_CACHE_HOME nor HOME is set: no per-user cache folder")?;
    if dir.join(INSTALLED_MARKER).is_file() {
        return Ok(dir);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing the unfinished {}", dir.display()))?;
    }
    let run = |program: &Path, args: &[&str]| -> Result<()> {
        let status = std::process::Command::new(program)
            .args(args)
            .status()
            .with_context(|| format!("running {}", program.display()))?;
        if !status.success() {
            bail!("{} {} failed ({status})", program.display(), args.join(" "));
        }
        Ok(())
    };
    let venv = dir.to_string_lossy().into_owned();
    run(Path::new("python3"), &["-m", "venv", &venv])
        .context("python3 with the venv module is needed (Debian: apt install python3-venv)")?;
    run(
        &dir.join("bin/pip"),
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("moto[server]=={MOTO_VERSION}"),
        ],
    )?;
    std::fs::write(dir.join(INSTALLED_MARKER), MOTO_VERSION)?;
    Ok(dir)
}

/// Start moto and wait until it answers.
pub async fn start(stack_dir: &Path) -> Result<Emulator> {
    let Some(executable) = candidates(stack_dir).into_iter().find(|p| p.is_file()) else {
        bail!(
            "the moto emulator (the AWS APIs of `wsstack dev`) is not installed: run `wsstack dev --install-emulator` (moto {MOTO_VERSION} into {}), set WSSTACK_MOTO_SERVER, or pass --endpoint-url",
            cache_dir().map(|d| d.display().to_string()).unwrap_or_else(|| "~/.cache/wsstack".into())
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
