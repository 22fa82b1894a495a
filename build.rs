//! Builds the Lambda handlers (`handlers/`, one `bootstrap` binary for every function) as a static
//! musl binary and embeds its deterministic zip in `wsstack`, so that `wsstack up` deploys them from
//! any directory with no build step of the user's.
//!
//! The nested cargo uses its own target directory (`target/handlers`), so it never waits on the
//! outer build's lock, and shares the outer build's jobserver, so it does not oversubscribe the CPU.
//! `WSSTACK_HANDLERS_BOOTSTRAP=path` embeds a prebuilt binary instead. Without the musl toolchain
//! the build still succeeds, with a warning, and `up` then needs `--handlers-zip`.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-musl";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(wsstack_bundled_handlers)");
    println!("cargo:rerun-if-changed=handlers/src");
    println!("cargo:rerun-if-changed=handlers/Cargo.toml");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-env-changed=WSSTACK_HANDLERS_BOOTSTRAP");
    println!("cargo:rerun-if-env-changed=WSSTACK_SKIP_HANDLERS");

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    if std::env::var_os("WSSTACK_SKIP_HANDLERS").is_some() {
        println!("cargo:warning=WSSTACK_SKIP_HANDLERS is set: wsstack is built without bundled handlers");
        return;
    }
    let bootstrap = match std::env::var_os("WSSTACK_HANDLERS_BOOTSTRAP") {
        Some(path) => {
            // A new binary at the same path must be embedded too, not only a new path.
            println!("cargo:rerun-if-changed={}", PathBuf::from(&path).display());
            PathBuf::from(path)
        }
        None => match build_handlers(&root) {
            Ok(path) => path,
            Err(error) => {
                println!("cargo:warning=the Lambda handlers were not built ({error}); `wsstack up` will need --handlers-zip. Run scripts/setup to install the musl toolchain.");
                return;
            }
        },
    };
    let binary = std::fs::read(&bootstrap).unwrap_or_else(|e| panic!("reading {}: {e}", bootstrap.display()));
    let zip = wsstack_handlers::package::zip_bootstrap(&binary).expect("zipping bootstrap");
    std::fs::write(out_dir.join("handlers.zip"), zip).expect("writing handlers.zip");
    println!("cargo:rustc-cfg=wsstack_bundled_handlers");
}

fn build_handlers(root: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = root.join("target").join("handlers");
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args([
            "build",
            "--quiet",
            "-p",
            "wsstack-handlers",
            "--bin",
            "bootstrap",
            "--profile",
            "lambda",
        ])
        .args(["--target", TARGET, "--target-dir"])
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
    command.env("CC_x86_64_unknown_linux_musl", "musl-gcc");
    // As in handlers/build.sh: gcc takes __DATE__/__TIME__ (in mimalloc's C code) from it.
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
    let binary = target_dir.join(TARGET).join("lambda").join("bootstrap");
    if binary.exists() {
        Ok(binary)
    } else {
        Err(format!("{} is missing after the build", binary.display()))
    }
}
