//! The note a running `wsstack dev` leaves beside the stack file (`.wsstack/{name}-{stage}.dev.json`):
//! its emulator endpoint and gateway URL, so that `send-event`, `status` and `connect` in another
//! terminal find the local stack with no flags.
//!
//! The note is also a lock: the dev that wrote it holds an exclusive lock on it for as long as it
//! runs. A second dev for the same stack is refused whatever its endpoint, only the writer removes
//! the note, and a note left by a killed dev is stale at once (its lock died with its process).
//!
//! The note carries the session's management API credentials, so only its owner may read it
//! (0600). Whoever can write a note can point the commands that read it anywhere: a note is
//! followed only to this machine (127.0.0.0/8, ::1, localhost), never to another host.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::credentials::SessionCredentials;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Session {
    pub pid: u32,
    pub endpoint: String,
    pub region: String,
    pub gateway: String,
    /// UUIDs of the emulator's event source mappings this dev paused (its own pollers serve
    /// them): `Disabled` is their expected state while it runs, and no one else may enable them.
    #[serde(default)]
    pub paused_event_sources: Vec<String>,
    /// The credentials the local management API asks for (the ones dev's handlers sign with).
    #[serde(default)]
    pub management: Option<SessionCredentials>,
}

impl Session {
    /// Refuse a note whose endpoint or gateway is not on this machine.
    fn check_local(&self, path: &Path) -> Result<()> {
        for url in [&self.endpoint, &self.gateway] {
            if !is_loopback_url(url) {
                bail!(
                    "the `wsstack dev` note {} points at {url}, which is not on this machine: a dev session \
                     is only followed to 127.0.0.0/8, ::1 or localhost. Remove the note if no `wsstack dev` of \
                     yours runs, or pass --endpoint-url",
                    path.display()
                );
            }
        }
        Ok(())
    }
}

/// Whether `url`'s host is a loopback address or `localhost`.
fn is_loopback_url(url: &str) -> bool {
    match url::Url::parse(url).ok().as_ref().and_then(url::Url::host) {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

pub fn path(stack_file: &Path, name: &str, stage: &str) -> PathBuf {
    let dir = stack_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(".wsstack").join(format!("{name}-{stage}.dev.json"))
}

/// This process's hold on the note: taken before dev starts anything, published once it serves,
/// removed when dropped.
#[derive(Debug)]
pub struct Claim {
    file: File,
    path: PathBuf,
}

/// Take the note for this process, or say which `wsstack dev` holds it.
pub fn claim(path: &Path) -> Result<Claim> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // The holder may remove the note between our open and our lock; then we hold a lock on a file
    // nobody can find, and start over.
    for _ in 0..10 {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read(&file)
                    .map(|session| format!(" (pid {})", session.pid))
                    .unwrap_or_default();
                bail!(
                    "`wsstack dev` is already running for this stack{holder}: see {}",
                    path.display()
                );
            }
            Err(TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("locking {}", path.display()));
            }
        }
        if is_same_file(&file, path) {
            // A note left by an older dev may be readable by others: it is about to hold secrets.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .and_then(|()| file.set_len(0))
                .with_context(|| format!("writing {}", path.display()))?;
            return Ok(Claim {
                file,
                path: path.to_path_buf(),
            });
        }
    }
    bail!("{} keeps changing; is another `wsstack dev` starting?", path.display())
}

impl Claim {
    /// Tell the other commands where this dev serves.
    pub fn publish(&self, session: &Session) -> Result<()> {
        let text = serde_json::to_string_pretty(session)?;
        let mut file = &self.file;
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|()| file.write_all(text.as_bytes()))
            .and_then(|()| file.flush())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Ours for as long as the lock is held: no other dev can have replaced it.
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir); // only if empty
        }
    }
}

/// The session of a `wsstack dev` that is still running (it holds the note's lock and has
/// published where it serves), if any; an error if the note points off this machine.
pub fn live(path: &Path) -> Result<Option<Session>> {
    let Ok(file) = File::open(path) else { return Ok(None) };
    let session = match file.try_lock_shared() {
        // Nobody holds it: a dev that was killed left it.
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => read(&file).filter(|session| !session.endpoint.is_empty()),
        Err(TryLockError::Error(_)) => None,
    };
    if let Some(session) = &session {
        session.check_local(path)?;
    }
    Ok(session)
}

fn read(mut file: &File) -> Option<Session> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn is_same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(endpoint: &str) -> Session {
        Session {
            pid: std::process::id(),
            endpoint: endpoint.into(),
            region: "us-east-1".into(),
            gateway: "ws://127.0.0.1:1/dev".into(),
            paused_event_sources: vec!["4c1b1e6a-0000-4000-8000-000000000001".into()],
            management: Some(SessionCredentials::generate()),
        }
    }

    #[test]
    fn a_second_claim_is_refused_while_the_first_holds_the_note() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(&dir.path().join("stack.yaml"), "demo", "dev");
        let first = claim(&path).unwrap();
        first.publish(&session("http://127.0.0.1:5000")).unwrap();
        let error = claim(&path).unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("already running"), "{message}");
        assert!(message.contains(&format!("pid {}", std::process::id())), "{message}");
        // The refused claim left the first one's note as it was.
        let published = live(&path).unwrap().expect("published");
        assert_eq!(published.endpoint, "http://127.0.0.1:5000");
        drop(first);
        assert!(!path.exists(), "the holder removes its note");
        assert!(claim(&path).is_ok(), "free again once the holder is gone");
    }

    #[test]
    fn a_note_nobody_holds_is_stale_and_can_be_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(&dir.path().join("stack.yaml"), "demo", "dev");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // What a killed dev leaves: its note, with nobody holding the lock.
        std::fs::write(&path, serde_json::to_string(&session("http://127.0.0.1:5000")).unwrap()).unwrap();
        assert_eq!(live(&path).unwrap(), None);
        let claim = claim(&path).unwrap();
        assert_eq!(live(&path).unwrap(), None, "claimed but not yet serving");
        claim.publish(&session("http://127.0.0.1:6000")).unwrap();
        assert_eq!(
            live(&path).unwrap().map(|s| s.endpoint),
            Some("http://127.0.0.1:6000".into())
        );
    }

    #[test]
    fn a_claim_removes_only_its_own_note() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(&dir.path().join("stack.yaml"), "demo", "dev");
        let first = claim(&path).unwrap();
        // A refused second dev stops: nothing of it may touch the first one's note.
        let second = claim(&path);
        assert!(second.is_err());
        drop(second);
        first.publish(&session("http://127.0.0.1:5000")).unwrap();
        assert!(live(&path).unwrap().is_some());
    }

    #[test]
    fn the_note_holding_the_sessions_credentials_is_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(&dir.path().join("stack.yaml"), "demo", "dev");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // A stale note of an older dev, readable by everyone.
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let claim = claim(&path).unwrap();
        claim.publish(&session("http://127.0.0.1:5000")).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_live_note_pointing_off_this_machine_is_refused() {
        for local in [
            "http://127.0.0.1:5000",
            "http://127.8.9.10:1",
            "http://[::1]:5000",
            "http://localhost:5000",
        ] {
            assert!(is_loopback_url(local), "{local}");
        }
        for remote in [
            "http://203.0.113.5:4566",
            "http://localhost.example.com:1",
            "http://[2001:db8::1]:1",
            "http://0.0.0.0:1",
            "not a url",
        ] {
            assert!(!is_loopback_url(remote), "{remote}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = path(&dir.path().join("stack.yaml"), "demo", "dev");
        let holder = claim(&path).unwrap();
        holder.publish(&session("http://203.0.113.5:4566")).unwrap();
        let message = format!("{:#}", live(&path).unwrap_err());
        assert!(
            message.contains("http://203.0.113.5:4566") && message.contains("not on this machine"),
            "{message}"
        );
        let mut gateway_elsewhere = session("http://127.0.0.1:5000");
        gateway_elsewhere.gateway = "ws://attacker.example:80/dev".into();
        holder.publish(&gateway_elsewhere).unwrap();
        assert!(live(&path).is_err());
    }
}
