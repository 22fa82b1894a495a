//! The AWS APIs for `wsstack dev`: the moto server, started by the shared launcher
//! (`wsstack-moto`, which the tests use too) when no endpoint is given. Only where to find it lives
//! here: `WSSTACK_MOTO_SERVER`, `moto_server` on PATH, or the project's `.venv/bin/moto_server`
//! (next to the stack file or where wsstack was built).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use wsstack_moto::{Launch, MotoServer};

pub struct Emulator {
    pub endpoint: String,
    _server: MotoServer,
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
    found.push(wsstack_moto::in_venv(Path::new(env!("CARGO_MANIFEST_DIR"))));
    found
}

/// Start moto and wait until it answers; fails at once, with its last output, if it dies.
pub async fn start(stack_dir: &Path) -> Result<Emulator> {
    let Some(executable) = wsstack_moto::find_executable(candidates(stack_dir)) else {
        bail!(
            "no AWS endpoint given and the moto emulator is not installed: run scripts/setup, or pass --endpoint-url"
        );
    };
    let server = tokio::task::spawn_blocking(move || MotoServer::start(&Launch::new(executable))).await??;
    Ok(Emulator {
        endpoint: server.endpoint(),
        _server: server,
    })
}
