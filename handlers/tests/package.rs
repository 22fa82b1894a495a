//! The deterministic zip: same bytes in, same zip out (pinned by a golden CodeSha256, so a change of
//! the zip or deflate crates that would change every deployed hash is caught); the entry is exactly
//! what Lambda's `provided.al2023` runtime needs; and the zip `handlers/build.sh` wrote is the one
//! the library makes from the built binary.

use std::io::Read;

use wsstack_handlers::package::{code_sha256, zip_bootstrap};

/// 256 KiB of fixed pseudo-random-looking but compressible bytes (a stand-in for a binary).
fn sample_binary() -> Vec<u8> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..256 * 1024)
        .map(|index| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if index % 3 == 0 {
                (state % 16) as u8
            } else {
                b"\x7fELF bootstrap"[index % 14]
            }
        })
        .collect()
}

#[test]
fn the_same_input_gives_byte_identical_zips() {
    let binary = sample_binary();
    let first = zip_bootstrap(&binary).unwrap();
    let second = zip_bootstrap(&binary.clone()).unwrap();
    assert!(first == second, "two zips of the same bytes differ");
    assert_eq!(code_sha256(&first), code_sha256(&second));

    let mut changed = binary.clone();
    changed[1000] ^= 1;
    assert_ne!(code_sha256(&zip_bootstrap(&changed).unwrap()), code_sha256(&first));
}

#[test]
fn the_zip_of_a_known_input_has_a_pinned_code_sha256() {
    // If this changes, every deployed function would be re-uploaded once: update it on purpose.
    let zip = zip_bootstrap(&sample_binary()).unwrap();
    assert_eq!(code_sha256(&zip), GOLDEN_CODE_SHA256, "zip of {} bytes", zip.len());
}

const GOLDEN_CODE_SHA256: &str = "3o2VMuC5Qct/f0ygDJHcxMmxJb+Pgpo/g8lX1A768Eg=";

#[test]
fn the_zip_holds_one_executable_bootstrap_entry_dated_1980() {
    let binary = sample_binary();
    let zip = zip_bootstrap(&binary).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    assert_eq!(archive.len(), 1);
    let mut entry = archive.by_index(0).unwrap();
    assert_eq!(entry.name().unwrap(), "bootstrap");
    assert_eq!(entry.unix_mode().map(|mode| mode & 0o777), Some(0o755));
    assert!(entry.is_file());
    assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
    let modified = entry.last_modified().unwrap();
    assert_eq!(
        (
            modified.year(),
            modified.month(),
            modified.day(),
            modified.hour(),
            modified.minute()
        ),
        (1980, 1, 1, 0, 0)
    );
    assert!(
        entry.extra_data().is_none_or(|extra| extra.is_empty()),
        "no timestamps in extra fields"
    );
    let mut content = Vec::new();
    entry.read_to_end(&mut content).unwrap();
    assert_eq!(content, binary);
}

#[test]
fn code_sha256_is_base64_of_the_sha256_of_the_zip() {
    // Independent reference values: `printf abc | sha256sum | xxd -r -p | base64`.
    assert_eq!(code_sha256(b"abc"), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
}

/// When `handlers/build.sh` has run, its zip must be exactly what the library makes from the built
/// binary: the CLI and the build script agree on the CodeSha256.
#[test]
fn the_built_zip_is_the_library_zip_of_the_built_binary() {
    let root = testkit::repo_root().join("target/handlers");
    let binary = root.join("x86_64-unknown-linux-musl/lambda/bootstrap");
    let built_zip = root.join("bootstrap.zip");
    if !binary.exists() || !built_zip.exists() {
        assert!(
            std::env::var_os("WSSTACK_REQUIRE_BOOTSTRAP").is_none(),
            "WSSTACK_REQUIRE_BOOTSTRAP is set but handlers/build.sh has not run"
        );
        eprintln!("skipped: run handlers/build.sh first");
        return;
    }
    let binary = std::fs::read(binary).unwrap();
    let zipped_now = zip_bootstrap(&binary).unwrap();
    let built_zip = std::fs::read(built_zip).unwrap();
    // Compared by hash: a byte dump of two 3 MB zips helps nobody.
    assert_eq!(
        code_sha256(&zipped_now),
        code_sha256(&built_zip),
        "rerun handlers/build.sh?"
    );
    assert_eq!(zipped_now.len(), built_zip.len());
}
