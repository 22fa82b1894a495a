//! Deterministic packaging of the `bootstrap` binary for Lambda: the same bytes in give the same zip
//! out (one entry, fixed timestamp, permissions, system and compression), so unchanged code keeps the
//! same CodeSha256 and `wsstack up` can skip the upload. No file system access here: bytes in, bytes out.

use std::io::{Cursor, Write};

use anyhow::{Context, Result};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipWriter};

/// The only entry of the zip: what the `provided.al2023` runtime executes.
pub const ENTRY_NAME: &str = "bootstrap";
/// Unix mode of the entry: executable by everyone, writable by the owner.
pub const ENTRY_MODE: u32 = 0o755;
/// Deflate level, fixed so that a change of the library default cannot change the zip. With
/// zlib-rs, level 9 zips the 6.1 MB bootstrap to 2,709,627 bytes where level 6 gave 2,823,591
/// (4.0% less); it costs about 2 s of CPU in the CLI's (unoptimized) build script.
pub const DEFLATE_LEVEL: i64 = 9;

/// Zips `bootstrap` (the binary's bytes) as the single entry `bootstrap`, mode 0755, dated
/// 1980-01-01 00:00:00, deflated at a fixed level, with no extra fields.
pub fn zip_bootstrap(bootstrap: &[u8]) -> Result<Vec<u8>> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(DEFLATE_LEVEL))
        .last_modified_time(DateTime::default())
        .system(System::Unix)
        .unix_permissions(ENTRY_MODE)
        .large_file(false);
    let mut writer = ZipWriter::new(Cursor::new(Vec::with_capacity(bootstrap.len() / 2)));
    writer
        .start_file(ENTRY_NAME, options)
        .context("starting the bootstrap entry of the zip")?;
    writer
        .write_all(bootstrap)
        .context("compressing bootstrap into the zip")?;
    let cursor = writer.finish().context("finishing the zip")?;
    Ok(cursor.into_inner())
}

/// What Lambda reports as `CodeSha256` for a zip: base64 (standard, padded) of its SHA-256.
pub fn code_sha256(zip: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(zip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_sha256_of_empty_input_is_the_known_digest() {
        // `printf "" | sha256sum | xxd -r -p | base64`
        assert_eq!(code_sha256(b""), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    }
}
