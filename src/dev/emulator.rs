//! The AWS APIs for `wsstack dev`: the moto server, started by the shared launcher
//! (`wsstack-moto`, which the tests use too) when no endpoint is given. Only where to find it lives
//! here: `WSSTACK_MOTO_SERVER`, `moto_server` on PATH, the project's `.venv/bin/moto_server` next
//! to the stack file, the per-user cache that `--install-emulator` fills
//! (`~/.cache/wsstack/moto-{version}/`), or the `.venv` where wsstack was built.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use wsstack_moto::{Launch, MotoServer};

pub struct Emulator {
    pub endpoint: String,
    _server: MotoServer,
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
    found.push(wsstack_moto::in_venv(stack_dir));
    if let Some(cache) = cache_dir().filter(|dir| dir.join(INSTALLED_MARKER).is_file()) {
        found.push(cache.join("bin/moto_server"));
    }
    found.push(wsstack_moto::in_venv(Path::new(env!("CARGO_MANIFEST_DIR"))));
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

/// Start moto and wait until it answers; fails at once, with its last output, if it dies.
pub async fn start(stack_dir: &Path) -> Result<Emulator> {
    let Some(executable) = wsstack_moto::find_executable(candidates(stack_dir)) else {
        bail!(
            "the moto emulator (the AWS APIs of `wsstack dev`) is not installed: run `wsstack dev --install-emulator` (moto {MOTO_VERSION} into {}), set WSSTACK_MOTO_SERVER, or pass --endpoint-url",
            cache_dir().map(|d| d.display().to_string()).unwrap_or_else(|| "~/.cache/wsstack".into())
        );
    };
    let server = tokio::task::spawn_blocking(move || MotoServer::start(&Launch::new(executable))).await??;
    Ok(Emulator {
        endpoint: server.endpoint(),
        _server: server,
    })
}
