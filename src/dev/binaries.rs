//! The handler binaries `wsstack dev` runs: the bundle's `bootstrap` and each own route's, extracted
//! into a work directory of this run, which goes when the `Binaries` are dropped. Files only:
//! starting processes is `runtime`'s.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::aws::Aws;
use crate::bundle::Bundle;
use crate::stack::Stack;

pub struct Binaries {
    dir: PathBuf,
    bundled: PathBuf,
    /// Each own route's `bootstrap`, by function name.
    own: HashMap<String, PathBuf>,
}

impl Binaries {
    /// Extract the bundle and every own route's package into `$TMPDIR/wsstack-dev-{pid}`.
    pub fn extract(stack: &Stack, aws: &Aws, bundle: &Bundle) -> Result<Binaries> {
        let dir = std::env::temp_dir().join(format!("wsstack-dev-{}", std::process::id()));
        let bundled = extract_bootstrap(bundle, &dir)?;
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
            let binary = extract_bootstrap(&bundle, &binaries.dir.join(&handler))
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

impl Drop for Binaries {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Write the bundle's `bootstrap` into a fresh directory, executable.
fn extract_bootstrap(bundle: &Bundle, dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bundle.zip)).context("reading the handlers zip")?;
    let mut entry = archive
        .by_name("bootstrap")
        .context("the handlers zip has no bootstrap")?;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("bootstrap");
    let mut file = std::fs::File::create(&path)?;
    std::io::copy(&mut entry, &mut file)?;
    file.flush()?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}
