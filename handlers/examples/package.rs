//! Zips a built `bootstrap` deterministically with `wsstack_handlers::package` and prints the zip's
//! size and CodeSha256. Used by `handlers/build.sh`: `package <bootstrap> <zip>`.

use anyhow::{bail, Context, Result};
use wsstack_handlers::package;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [binary, zip] = args.as_slice() else {
        bail!("usage: package <bootstrap> <zip>");
    };
    let bytes = std::fs::read(binary).with_context(|| format!("reading {binary}"))?;
    let archive = package::zip_bootstrap(&bytes)?;
    std::fs::write(zip, &archive).with_context(|| format!("writing {zip}"))?;
    println!(
        "{zip}: {} bytes (bootstrap {} bytes), CodeSha256 {}",
        archive.len(),
        bytes.len(),
        package::code_sha256(&archive)
    );
    Ok(())
}
