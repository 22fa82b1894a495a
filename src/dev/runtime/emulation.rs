//! Running a handler binary built for another architecture than the host's (an arm64 stack's
//! `bootstrap` on an x86_64 machine) under qemu-user. It only finds the way; runtime.rs starts it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::stack::Architecture;

/// How this host runs a handler binary built for another architecture (an arm64 stack's on an
/// x86_64 host): through the kernel when binfmt_misc hands such binaries to qemu, else by starting
/// `qemu-<arch>-static` (Debian's qemu-user-static) with the binary as its argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Emulation {
    Binfmt { architecture: &'static str },
    Qemu { architecture: &'static str, qemu: PathBuf },
}

impl std::fmt::Display for Emulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = std::env::consts::ARCH;
        match self {
            Emulation::Binfmt { architecture } => {
                write!(
                    f,
                    "{architecture} bootstrap under qemu through binfmt_misc (this host is {host})"
                )
            }
            Emulation::Qemu { architecture, qemu } => {
                write!(
                    f,
                    "{architecture} bootstrap under {} (this host is {host})",
                    qemu.display()
                )
            }
        }
    }
}

/// `None` when the binary runs natively (or is not an ELF binary: a script runs anywhere).
pub fn emulation(binary: &Path) -> anyhow::Result<Option<Emulation>> {
    use std::io::Read;
    let mut header = Vec::with_capacity(20);
    std::fs::File::open(binary)
        .and_then(|file| file.take(20).read_to_end(&mut header))
        .with_context(|| format!("reading {}", binary.display()))?;
    let (architecture, qemu_name) = match crate::bundle::elf_architecture(&header) {
        Some(Architecture::Arm64) if std::env::consts::ARCH != "aarch64" => ("arm64", "aarch64"),
        Some(Architecture::X86_64) if std::env::consts::ARCH != "x86_64" => ("x86_64", "x86_64"),
        _ => return Ok(None),
    };
    let binfmt = std::fs::read_to_string(format!("/proc/sys/fs/binfmt_misc/qemu-{qemu_name}"));
    if binfmt.is_ok_and(|entry| entry.starts_with("enabled")) {
        return Ok(Some(Emulation::Binfmt { architecture }));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = [format!("qemu-{qemu_name}-static"), format!("qemu-{qemu_name}")]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file());
    match found {
        Some(qemu) => Ok(Some(Emulation::Qemu { architecture, qemu })),
        None => bail!(
            "the handlers are built for {architecture} (handlers.architecture) and this host is {}: install qemu-user-static (Debian and Ubuntu: apt-get install qemu-user-static) for wsstack dev to run them, or set handlers.architecture to {} while developing",
            std::env::consts::ARCH,
            if architecture == "arm64" { "x86_64" } else { "arm64" }
        ),
    }
}
