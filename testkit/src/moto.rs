//! The tests' moto server: the shared launcher (`wsstack-moto`, the one `wsstack dev` uses) pointed
//! at the project's virtual environment (`.venv/`, made by `scripts/setup`);
//! `WSSTACK_MOTO_SERVER` names another executable.

use std::path::PathBuf;

use anyhow::Result;
pub use wsstack_moto::{free_port, MotoServer};

/// A running moto server (endpoint, reset: see `MotoServer`); killed on drop.
pub struct Moto(MotoServer);

impl Moto {
    /// Path of the moto_server executable this project uses.
    pub fn executable() -> PathBuf {
        match std::env::var_os("WSSTACK_MOTO_SERVER") {
            Some(path) => PathBuf::from(path),
            None => wsstack_moto::in_venv(&crate::repo_root()),
        }
    }

    /// Start moto on a free loopback port and wait until it answers.
    pub fn start() -> Result<Moto> {
        let launch = wsstack_moto::Launch::new(Self::executable()).env("MOTO_ALLOW_NONEXISTENT_REGION", "true");
        MotoServer::start(&launch)
            .map(Moto)
            .map_err(|error| error.context("moto server for the tests (run scripts/setup, or set WSSTACK_MOTO_SERVER)"))
    }
}

impl std::ops::Deref for Moto {
    type Target = MotoServer;

    fn deref(&self) -> &MotoServer {
        &self.0
    }
}
