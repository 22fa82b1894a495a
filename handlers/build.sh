#!/usr/bin/env bash
# Builds the Lambda handlers' `bootstrap` (one binary for all five functions) as a static musl
# binary with the `lambda` profile, then zips it deterministically into target/handlers/bootstrap.zip.
# Needs the x86_64-unknown-linux-musl target and musl-gcc (scripts/setup installs both).
set -euo pipefail
cd "$(dirname "$0")/.."

export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-musl-gcc}"
# mimalloc's C sources print __DATE__ and __TIME__ in their version line: without a fixed
# SOURCE_DATE_EPOCH (which gcc uses for both) two clean builds differ in those bytes.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-315532800}"
cargo build -p wsstack-handlers --bin bootstrap --profile lambda \
    --target x86_64-unknown-linux-musl --target-dir target/handlers

binary=target/handlers/x86_64-unknown-linux-musl/lambda/bootstrap
# The zip is made by the same library function the CLI uses, so both give the same CodeSha256.
cargo run --quiet -p wsstack-handlers --no-default-features --example package \
    --target-dir target/handlers -- "$binary" target/handlers/bootstrap.zip
