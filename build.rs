//! Builds the Lambda handlers (`handlers/`, one `bootstrap` binary for every function) as static
//! musl binaries, for x86_64 and for arm64, and embeds their deterministic zips in `wsstack`, so
//! that `wsstack up` deploys them from any directory with no build step of the user's.
//!
//! The nested cargo uses its own target directory (`target/handlers`), so it never waits on the
//! outer build's lock, and shares the outer build's jobserver, so it does not oversubscribe the CPU.
//! `WSSTACK_HANDLERS_BOOTSTRAP=path` embeds a prebuilt x86_64 binary instead, and
//! `WSSTACK_HANDLERS_BOOTSTRAP_ARM64=path` a prebuilt aarch64 one; with only the first set, no
//! arm64 handlers are built (a prebuilt x86_64 binary is there to skip the handler builds). Without
//! a toolchain the build still succeeds, with a warning, and `up` of that architecture then needs
//! `--handlers-zip`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One architecture of the handlers: how it is built and where it is embedded.
struct Arch {
    triple: &'static str,
    /// A prebuilt binary to embed instead of building one.
    prebuilt_variable: &'static str,
    /// The file in OUT_DIR that src/bundle.rs includes.
    zip_name: &'static str,
    cfg: &'static str,
    toolchain: &'static str,
}

const X86_64: Arch = Arch {
    triple: "x86_64-unknown-linux-musl",
    prebuilt_variable: "WSSTACK_HANDLERS_BOOTSTRAP",
    zip_name: "handlers.zip",
    cfg: "wsstack_bundled_handlers",
    toolchain: "the musl toolchain",
};

const ARM64: Arch = Arch {
    triple: "aarch64-unknown-linux-musl",
    prebuilt_variable: "WSSTACK_HANDLERS_BOOTSTRAP_ARM64",
    zip_name: "handlers-arm64.zip",
    cfg: "wsstack_bundled_handlers_arm64",
    toolchain: "the aarch64 target and cargo-zigbuild (.cross/)",
};

fn main() {
    println!("cargo:rerun-if-changed=handlers/src");
    println!("cargo:rerun-if-changed=handlers/Cargo.toml");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-env-changed=WSSTACK_SKIP_HANDLERS");
    for arch in [&X86_64, &ARM64] {
        println!("cargo::rustc-check-cfg=cfg({})", arch.cfg);
        println!("cargo:rerun-if-env-changed={}", arch.prebuilt_variable);
    }

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    if std::env::var_os("WSSTACK_SKIP_HANDLERS").is_some() {
        println!("cargo:warning=WSSTACK_SKIP_HANDLERS is set: wsstack is built without bundled handlers");
        return;
    }
    let x86_prebuilt = std::env::var_os(X86_64.prebuilt_variable).is_some();
    for arch in [&X86_64, &ARM64] {
        let bootstrap = match std::env::var_os(arch.prebuilt_variable) {
            Some(path) => {
                // A new binary at the same path must be embedded too, not only a new path.
                println!("cargo:rerun-if-changed={}", PathBuf::from(&path).display());
                PathBuf::from(path)
            }
            None if arch.triple == ARM64.triple && x86_prebuilt => {
                println!(
                    "cargo:warning={} is set and {} is not: wsstack is built without the arm64 handlers",
                    X86_64.prebuilt_variable, ARM64.prebuilt_variable
                );
                continue;
            }
            None => match build_handlers(&root, arch) {
                Ok(path) => path,
                Err(error) => {
                    println!("cargo:warning=the {} Lambda handlers were not built ({error}); `wsstack up` of a stack of that architecture will need --handlers-zip. Run scripts/setup to install {}.", arch.triple, arch.toolchain);
                    continue;
                }
            },
        };
        let binary = std::fs::read(&bootstrap).unwrap_or_else(|e| panic!("reading {}: {e}", bootstrap.display()));
        let zip = wsstack_handlers::package::zip_bootstrap(&binary).expect("zipping bootstrap");
        std::fs::write(out_dir.join(arch.zip_name), zip).expect("writing the handlers zip");
        println!("cargo:rustc-cfg={}", arch.cfg);
    }
}

fn build_handlers(root: &Path, arch: &Arch) -> Result<PathBuf, String> {
    let target_dir = root.join("target").join("handlers");
    let (program, subcommand) = if arch.triple == ARM64.triple {
        // zig's C compiler brings musl's aarch64 headers for ring's and mimalloc's C, and links.
        let zigbuild = root.join(".cross/bin/cargo-zigbuild");
        if !zigbuild.exists() {
            return Err(format!("{} is missing", zigbuild.display()));
        }
        (zigbuild.into_os_string(), "zigbuild")
    } else {
        (std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()), "build")
    };
    let mut command = Command::new(program);
    command.arg(subcommand);
    command
        .current_dir(root)
        .args([
            "--quiet",
            "-p",
            "wsstack-handlers",
            "--bin",
            "bootstrap",
            "--profile",
            "lambda",
        ])
        .args(["--target", arch.triple, "--target-dir"])
        .arg(&target_dir);
    // Only what a plain `cargo build` in a shell would see: the outer build's variables (RUSTC,
    // TARGET, OPT_LEVEL, a clippy wrapper, flags) would change the nested build's fingerprints and
    // rebuild it needlessly. The jobserver variables stay, so both builds share the CPU budget.
    command.env_clear();
    for (name, value) in std::env::vars_os() {
        let keep = matches!(
            name.to_str(),
            Some(
                "PATH"
                    | "HOME"
                    | "CARGO_HOME"
                    | "RUSTUP_HOME"
                    | "RUSTUP_TOOLCHAIN"
                    | "TMPDIR"
                    | "CARGO_MAKEFLAGS"
                    | "MAKEFLAGS"
                    | "MFLAGS"
                    | "CARGO_NET_OFFLINE"
                    | "CARGO_REGISTRIES_CRATES_IO_PROTOCOL"
            )
        );
        if keep {
            command.env(name, value);
        }
    }
    // The same settings as handlers/build.sh, so that either build finds the other's up to date.
    command.env("CC_x86_64_unknown_linux_musl", "musl-gcc");
    command.env("CARGO_ZIGBUILD_PYTHON_PATH", root.join(".cross/bin/python3"));
    // CARGO_HOME's absolute path out of the binaries' panic locations (see handlers/build.sh):
    // rustup sets CARGO_HOME for cargo and its build scripts, `$HOME/.cargo` otherwise.
    let cargo_home = std::env::var("CARGO_HOME")
        .ok()
        .or_else(|| std::env::var("HOME").ok().map(|home| format!("{home}/.cargo")))
        .unwrap_or_default();
    let remap = if cargo_home.is_empty() || cargo_home.contains(char::is_whitespace) {
        String::new()
    } else {
        format!("--remap-path-prefix={cargo_home}=/cargo")
    };
    command.env(
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS",
        format!("-C relocation-model=static -C force-unwind-tables=no {remap}"),
    );
    command.env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS", remap);
    // gcc takes __DATE__/__TIME__ (in mimalloc's C code) from it.
    command.env(
        "SOURCE_DATE_EPOCH",
        std::env::var("SOURCE_DATE_EPOCH").unwrap_or_else(|_| "315532800".to_string()),
    );
    let output = command.output().map_err(|e| format!("running cargo: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last: Vec<&str> = stderr.lines().rev().take(3).collect();
        return Err(format!("cargo build of the handlers failed: {}", last.join(" | ")));
    }
    let binary = target_dir.join(arch.triple).join("lambda").join("bootstrap");
    if binary.exists() {
        Ok(binary)
    } else {
        Err(format!("{} is missing after the build", binary.display()))
    }
}
