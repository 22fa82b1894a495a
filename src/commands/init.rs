//! `wsstack init [DIR]`: write the shipped, commented stack.yaml (pointing editors at its schema)
//! and stack.schema.json beside it.
//!
//! Never overwrites: an existing file is bad input (exit 2) and nothing is written.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, Context as _};

use crate::render::{bad_input, Failure};

/// The stack file wsstack ships, comments and all.
const DEFAULT_STACK: &str = include_str!("../../stack.yaml");
const SCHEMA_FILE: &str = "stack.schema.json";
const STACK_FILE: &str = "stack.yaml";

pub fn run(dir: &Path) -> Result<u8, Failure> {
    let stack_path = dir.join(STACK_FILE);
    let schema_path = dir.join(SCHEMA_FILE);
    // Both checked first, so that a refusal leaves the folder as it was.
    for path in [&stack_path, &schema_path] {
        if path.exists() {
            return Err(bad_input(anyhow!(
                "{} already exists: wsstack init never overwrites a file (move it away or pick another folder)",
                path.display()
            )));
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let stack = format!("# yaml-language-server: $schema=./{SCHEMA_FILE}\n{DEFAULT_STACK}");
    let schema = serde_json::to_string_pretty(&crate::stack::json_schema())? + "\n";
    write_new(&schema_path, &schema)?;
    write_new(&stack_path, &stack)?;
    println!(
        "wrote {} and {}: edit the stack, then `wsstack dev` (local) or `wsstack up` (AWS)",
        stack_path.display(),
        schema_path.display()
    );
    Ok(0)
}

/// Create `path` only if it does not exist yet (a file that appeared meanwhile is kept).
fn write_new(path: &Path, text: &str) -> Result<(), Failure> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                bad_input(anyhow!("{} already exists: not overwritten", path.display()))
            }
            _ => Failure::from(anyhow!("creating {}: {e}", path.display())),
        })?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
