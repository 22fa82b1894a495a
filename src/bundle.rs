//! The Lambda code `up` deploys: the handlers zip embedded at build time (see build.rs), or a
//! prebuilt zip named by `--handlers-zip` / `WSSTACK_HANDLERS_ZIP`.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// A deployment package and its CodeSha256 (what Lambda reports for it).
#[derive(Clone)]
pub struct Bundle {
    pub zip: Vec<u8>,
    pub sha256: String,
}

#[cfg(wsstack_bundled_handlers)]
const EMBEDDED: Option<&[u8]> = Some(include_bytes!(concat!(env!("OUT_DIR"), "/handlers.zip")));
#[cfg(not(wsstack_bundled_handlers))]
const EMBEDDED: Option<&[u8]> = None;

/// Load the bundle: the override when given, else the embedded one.
pub fn load(override_zip: Option<&Path>) -> Result<Bundle> {
    let zip = match override_zip {
        Some(path) => std::fs::read(path).with_context(|| format!("reading the handlers zip {}", path.display()))?,
        None => match EMBEDDED {
            Some(bytes) => bytes.to_vec(),
            None => bail!(
                "this wsstack was built without the Lambda handlers (no musl toolchain at build time): pass --handlers-zip PATH, or rebuild after scripts/setup"
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
