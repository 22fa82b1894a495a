//! `wsstack schema`: print the stack file's JSON Schema, generated from the parsing types.
//!
//! Needs no stack file and no AWS; `init` writes the same schema to disk.

use crate::render::{self, Failure};

pub fn print() -> Result<u8, Failure> {
    render::print_json(&crate::stack::json_schema());
    Ok(0)
}
