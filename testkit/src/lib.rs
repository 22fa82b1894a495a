//! Test tooling for wsstack: starts the moto AWS emulator on a free loopback port (through
//! `wsstack-moto`, the launcher `wsstack dev` uses too), and puts an AWS-like proxy in front of it
//! that logs every call (service, operation, read or write) and can add latency or answer chosen
//! calls with the errors real AWS sends; in realism mode it also behaves like AWS where the
//! emulator does not (propagation lags, Lambda states, ...).
//!
//! Nothing here is used by the `wsstack` binary itself; it exists so that tests and benchmarks
//! talk to a real emulator and can count and perturb the calls the real binary makes.

pub mod critical_path;
pub mod moto;
pub mod proxy;

pub use critical_path::critical_chain;
pub use moto::Moto;
pub use proxy::{Behaviour, Call, Fault, Proxy, Realism, RealismCounts};

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The repository root (the workspace that holds this crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives one level below the repository root")
        .to_path_buf()
}

/// Time since the Unix epoch, now: the clock of token claims, record ttls, Lambda deadlines and
/// log timestamps.
pub fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
}

/// [`since_epoch`] in whole seconds, as JWT claims and DynamoDB ttls count.
pub fn unix_seconds() -> i64 {
    since_epoch().as_secs() as i64
}
