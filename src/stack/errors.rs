//! Errors in a stack file and how they read: `file:line:col: field: message`, for the checks
//! of `validation` and for what serde_yaml reports (its position moved to the front, with hints).
//!
//! Decides wording and position only; what is wrong is decided by serde and `validation`.

use std::fmt;
use std::path::{Path, PathBuf};

use super::positions::Position;

/// An error in a stack file, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct StackError {
    pub file: PathBuf,
    pub position: Option<Position>,
    /// The field at fault (dotted path), when known.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for StackError {}

/// All errors of one file, reported together so that one run shows every problem.
#[derive(Debug, Clone, PartialEq)]
pub struct StackErrors(pub Vec<StackError>);

impl fmt::Display for StackErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StackErrors {}

/// A serde_yaml error as a `StackError`, placed at its line and column in `text`.
pub(super) fn serde_error(path: &Path, text: &str, error: &serde_yaml::Error) -> StackError {
    let mut message = error.to_string();
    // serde_yaml appends " at line L column C" to the message; the position goes in front instead.
    if let Some(at) = message.find(" at line ") {
        message.truncate(at);
    }
    let mut position = error.location().map(|l| Position {
        line: l.line(),
        column: l.column(),
    });
    // Some scanner errors (control characters) come with a byte offset, "at position N", only.
    if let Some(offset) = message
        .split("at position ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse::<usize>().ok())
    {
        let before = &text.as_bytes()[..offset.min(text.len())];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
        let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
        position = Some(Position { line, column });
        if let Some(cut) = message.find(" at position ") {
            message.truncate(cut);
        }
    }
    let (field, mut message) = split_field(&message);
    // What the parser says is right but not always what to do about it.
    if message.contains("expected u32") && message.contains("integer `") {
        message.push_str("; use a whole number from 0 to 4294967295, within the range the field allows");
    }
    let offending_line = position.and_then(|p| text.lines().nth(p.line.saturating_sub(1)));
    if message.contains("cannot start any token") && offending_line.is_some_and(|l| l.contains('\t')) {
        message.push_str("; YAML does not allow tabs for indentation: use spaces");
    }
    let mut error = StackError {
        file: path.to_path_buf(),
        position,
        field,
        message,
    };
    if text.trim().is_empty() {
        error.message = "the stack file is empty: it needs at least `name:`".into();
        error.field = None;
    }
    error
}

/// serde_yaml prefixes nested errors with the path: "queue.dead_letter: invalid type ...".
fn split_field(message: &str) -> (Option<String>, String) {
    if let Some((head, rest)) = message.split_once(": ") {
        let looks_like_path = !head.is_empty()
            && head
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '[' || c == ']');
        if looks_like_path {
            return (Some(head.replace('[', ".").replace(']', "")), rest.to_string());
        }
    }
    (None, message.to_string())
}
