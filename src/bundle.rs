//! The Lambda code `up` deploys: the handlers zip embedded at build time for the stack's
//! architecture (see build.rs), or a prebuilt zip named by `--handlers-zip` / `WSSTACK_HANDLERS_ZIP`.
//! It picks and checks the package; it never builds one.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::stack::Architecture;

/// A deployment package and its CodeSha256 (what Lambda reports for it).
#[derive(Clone)]
pub struct Bundle {
    pub zip: Vec<u8>,
    pub sha256: String,
}

#[cfg(wsstack_bundled_handlers)]
const EMBEDDED_X86_64: Option<&[u8]> = Some(include_bytes!(concat!(env!("OUT_DIR"), "/handlers.zip")));
#[cfg(not(wsstack_bundled_handlers))]
const EMBEDDED_X86_64: Option<&[u8]> = None;

#[cfg(wsstack_bundled_handlers_arm64)]
const EMBEDDED_ARM64: Option<&[u8]> = Some(include_bytes!(concat!(env!("OUT_DIR"), "/handlers-arm64.zip")));
#[cfg(not(wsstack_bundled_handlers_arm64))]
const EMBEDDED_ARM64: Option<&[u8]> = None;

/// Load the bundle for functions of `architecture`: the override when given (one zip, whatever
/// the architecture: its `bootstrap` must be built for the stack's), else the embedded one.
pub fn load(override_zip: Option<&Path>, architecture: Architecture) -> Result<Bundle> {
    let zip = match override_zip {
        Some(path) => {
            let zip =
                std::fs::read(path).with_context(|| format!("reading the handlers zip {}", path.display()))?;
            check_machine(&zip, architecture)
                .with_context(|| format!("the handlers zip {} does not fit the stack", path.display()))?;
            zip
        }
        None => match embedded(architecture) {
            Some(bytes) => bytes.to_vec(),
            None => bail!(
                "this wsstack was built without the {} Lambda handlers (no {} toolchain at build time): set handlers.architecture to the other architecture, pass --handlers-zip PATH, or rebuild after scripts/setup",
                name(architecture),
                match architecture {
                    Architecture::X86_64 => "musl",
                    Architecture::Arm64 => "aarch64 cross",
                },
            ),
        },
    };
    if zip.len() < 22 || &zip[..2] != b"PK" {
        bail!("the handlers package is not a zip file");
    }
    let sha256 = wsstack_handlers::package::code_sha256(&zip);
    Ok(Bundle { zip, sha256 })
}

/// The package of a route with its own code: the zip as given, which must hold `bootstrap` at its
/// root (Lambda's provided runtime runs nothing else), or a deterministic zip of a `bootstrap`
/// executable, so that an unchanged binary keeps its CodeSha256.
pub fn own_route(code: Option<&Path>, bootstrap: Option<&Path>) -> Result<Bundle> {
    let zip = match (code, bootstrap) {
        (Some(path), None) => {
            let zip = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&zip[..]))
                .with_context(|| format!("{} is not a zip file", path.display()))?;
            let Ok(entry) = archive.by_name(wsstack_handlers::package::ENTRY_NAME) else {
                bail!(
                    "{} has no `bootstrap` at its root: the provided.al2023 runtime runs that file",
                    path.display()
                );
            };
            // Lambda keeps the mode a zip gives; without one (zips made on Windows) it is not told.
            if entry.unix_mode().is_some_and(|mode| mode & 0o111 == 0) {
                bail!(
                    "the `bootstrap` in {} is not executable: Lambda could not start it (zip it with mode 755)",
                    path.display()
                );
            }
            drop(entry);
            zip
        }
        (None, Some(path)) => {
            let binary = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            wsstack_handlers::package::zip_bootstrap(&binary)?
        }
        _ => bail!("a route's code is either a zip (`code`) or a `bootstrap` executable"),
    };
    let sha256 = wsstack_handlers::package::code_sha256(&zip);
    Ok(Bundle { zip, sha256 })
}

fn embedded(architecture: Architecture) -> Option<&'static [u8]> {
    match architecture {
        Architecture::X86_64 => EMBEDDED_X86_64,
        Architecture::Arm64 => EMBEDDED_ARM64,
    }
}

/// The stack file's name of an architecture.
fn name(architecture: Architecture) -> &'static str {
    match architecture {
        Architecture::X86_64 => "x86_64",
        Architecture::Arm64 => "arm64",
    }
}

/// The architecture an ELF executable is built for, from its header's `e_machine`; `None` for
/// anything else (a `bootstrap` may also be a script, which runs on either).
pub fn elf_architecture(header: &[u8]) -> Option<Architecture> {
    if header.len() < 20 || &header[..4] != b"\x7fELF" {
        return None;
    }
    match u16::from_le_bytes([header[18], header[19]]) {
        0x3e => Some(Architecture::X86_64),
        0xb7 => Some(Architecture::Arm64),
        _ => None,
    }
}

/// A zip whose `bootstrap` is an ELF binary for the other architecture would deploy functions
/// that fail at their first invocation with `Runtime.InvalidEntrypoint`: refuse it before any write.
fn check_machine(zip: &[u8], architecture: Architecture) -> Result<()> {
    let Ok(mut archive) = zip::ZipArchive::new(std::io::Cursor::new(zip)) else {
        return Ok(()); // reported below as "not a zip file"
    };
    let Ok(entry) = archive.by_name(wsstack_handlers::package::ENTRY_NAME) else {
        bail!("it has no `bootstrap` entry, which the provided.al2023 runtime runs");
    };
    let mut header = Vec::with_capacity(20);
    entry
        .take(20)
        .read_to_end(&mut header)
        .context("reading its bootstrap")?;
    match elf_architecture(&header) {
        Some(built) if built != architecture => bail!(
            "its bootstrap is built for {}, and handlers.architecture is {}",
            name(built),
            name(architecture)
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf_header(machine: u16) -> Vec<u8> {
        let mut header = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0".to_vec();
        header.extend_from_slice(&machine.to_le_bytes());
        header
    }

    #[test]
    fn an_override_built_for_the_other_architecture_is_refused() {
        let zip = wsstack_handlers::package::zip_bootstrap(&elf_header(0x3e)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x86.zip");
        std::fs::write(&path, &zip).unwrap();
        assert!(load(Some(&path), Architecture::X86_64).is_ok());
        let error = format!("{:#}", load(Some(&path), Architecture::Arm64).err().unwrap());
        assert!(
            error.contains("its bootstrap is built for x86_64, and handlers.architecture is arm64"),
            "{error}"
        );
    }

    #[test]
    fn a_script_bootstrap_runs_on_either_architecture() {
        let zip = wsstack_handlers::package::zip_bootstrap(b"#!/bin/sh\nexit 1\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("script.zip");
        std::fs::write(&path, &zip).unwrap();
        assert!(load(Some(&path), Architecture::Arm64).is_ok());
        assert_eq!(elf_architecture(&elf_header(0xb7)), Some(Architecture::Arm64));
    }
}
