//! The note a running `wsstack dev` leaves beside the stack file (`.wsstack/{name}-{stage}.dev.json`):
//! its emulator endpoint and gateway URL, so that `send-event`, `status` and `connect` in another
//! terminal find the local stack with no flags. Removed on exit; ignored once its process is gone.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Session {
    pub pid: u32,
    pub endpoint: String,
    pub region: String,
    pub gateway: String,
}

pub fn path(stack_file: &Path, name: &str, stage: &str) -> PathBuf {
    let dir = stack_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(".wsstack").join(format!("{name}-{stage}.dev.json"))
}

pub fn write(path: &Path, session: &Session) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(session)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The session of a `wsstack dev` that is still running, if any.
pub fn live(path: &Path) -> Option<Session> {
    let text = std::fs::read_to_string(path).ok()?;
    let session: Session = serde_json::from_str(&text).ok()?;
    // Signal 0 checks that the process exists without touching it.
    let alive = unsafe { libc::kill(session.pid as libc::pid_t, 0) } == 0;
    alive.then_some(session)
}

pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir(dir); // only if empty
    }
}
