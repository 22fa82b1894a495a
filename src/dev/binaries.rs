//! The handler binaries `wsstack dev` runs: the bundle's `bootstrap` and each own route's, extracted
//! into a work directory of this run, which goes when the `Binaries` are dropped. Files only:
//! starting processes is `runtime`'s.
//!
//! The directory is made by mkdtemp (0700, a random name, never one that exists): on a shared
//! machine a name that others can guess (`wsstack-dev-{pid}`) lets another user plant a symlink
//! (dev then overwrites a file of yours) or swap a binary between its writing and its start (it
//! then runs as you).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::aws::Aws;
use crate::bundle::Bundle;
use crate::stack::Stack;

pub struct Binaries {
    /// Removed (with everything in it) when dropped.
    dir: tempfile::TempDir,
    bundled: PathBuf,
    /// Each own route's `bootstrap`, by function name.
    own: HashMap<String, PathBuf>,
}

impl Binaries {
    /// Extract the bundle and every own route's package into a fresh private `$TMPDIR/wsstack-dev-XXXXXX`.
    pub fn extract(stack: &Stack, aws: &Aws, bundle: &Bundle) -> Result<Binaries> {
        use std::os::unix::fs::PermissionsExt;
        // tempfile's folders get the default permissions (0777 less the umask) unless told.
        let dir = tempfile::Builder::new()
            .prefix("wsstack-dev-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()
            .context("making a private folder for the handler binaries")?;
        let bundled = extract_bootstrap(bundle, dir.path())?;
        let mut binaries = Binaries {
            dir,
            bundled,
            own: HashMap::new(),
        };
        for own in stack.own_routes() {
            let Some(package) = &own.package else { continue };
            let handler = crate::names::own_route_handler(&own.name);
            let bundle = Bundle {
                zip: package.zip.to_vec(),
                sha256: package.sha256.clone(),
            };
            let binary = extract_bootstrap(&bundle, &binaries.dir.path().join(&handler))
                .with_context(|| format!("the code of route {}", own.name))?;
            binaries.own.insert(aws.names.function(&handler), binary);
        }
        Ok(binaries)
    }

    /// The bundled handlers' `bootstrap`.
    pub fn bundled(&self) -> &Path {
        &self.bundled
    }

    /// Routes with their own code run their own bootstrap; every other function the bundled one.
    pub fn of(&self, function: &str) -> &Path {
        self.own.get(function).unwrap_or(&self.bundled)
    }
}

/// Write the bundle's `bootstrap` into `dir` (made here if missing, inside the private folder),
/// executable by its owner only.
fn extract_bootstrap(bundle: &Bundle, dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bundle.zip)).context("reading the handlers zip")?;
    let mut entry = archive
        .by_name("bootstrap")
        .context("the handlers zip has no bootstrap")?;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("bootstrap");
    // create_new: a file that is already there was not written by this run.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::copy(&mut entry, &mut file)?;
    file.flush()?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
    Ok(path)
}
