#!/usr/bin/env bash
# Builds the Lambda handlers' `bootstrap` (one binary for all five functions) as static musl
# binaries with the `lambda` profile, for x86_64 and for arm64 (aarch64), and zips each
# deterministically: target/handlers/bootstrap.zip (x86_64) and target/handlers/bootstrap-arm64.zip.
# Needs the two musl targets, musl-gcc and cargo-zigbuild in .cross/ (scripts/setup installs them).
# The settings are build.rs's, so that either build finds the other's binaries up to date.
set -euo pipefail
cd "$(dirname "$0")/.."

export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-musl-gcc}"
export CARGO_ZIGBUILD_PYTHON_PATH="$PWD/.cross/bin/python3"
# A static executable, not the musl target's default static PIE: no 457 KB of relocations to
# apply at start (the zip shrinks by 122 KB), as the aarch64 build through zig links already.
# Panic locations in dependencies name their sources under CARGO_HOME (770 paths such as
# /root/.cargo/registry/src/index.crates.io-.../tokio-1.54.1/src/...): written as /cargo/..., the
# binary, and the CodeSha256, do not depend on where the builder's CARGO_HOME is. Workspace sources
# are already relative ("handlers/src/..."), the standard library's are /rustc/<commit>/....
# A path with white space cannot go through the RUSTFLAGS variables: left as it is.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
remap=""
[[ "$cargo_home" =~ [[:space:]] ]] || remap="--remap-path-prefix=$cargo_home=/cargo"
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C relocation-model=static -C force-unwind-tables=no $remap"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="$remap"
# mimalloc's C sources print __DATE__ and __TIME__ in their version line: without a fixed
# SOURCE_DATE_EPOCH (which gcc uses for both) two clean builds differ in those bytes.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-315532800}"
build=(-p wsstack-handlers --bin bootstrap --profile lambda --target-dir target/handlers)
cargo build "${build[@]}" --target x86_64-unknown-linux-musl
.cross/bin/cargo-zigbuild zigbuild "${build[@]}" --target aarch64-unknown-linux-musl

# The zips are made by the same library function the CLI uses, so both give the same CodeSha256.
for pair in x86_64-unknown-linux-musl:bootstrap.zip aarch64-unknown-linux-musl:bootstrap-arm64.zip; do
    cargo run --quiet -p wsstack-handlers --no-default-features --example package \
        --target-dir target/handlers -- "target/handlers/${pair%%:*}/lambda/bootstrap" "target/handlers/${pair#*:}"
done
