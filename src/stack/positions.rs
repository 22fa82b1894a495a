//! Where each value of a YAML document sits, by dotted path (`queue.dead_letter.max_receive_count`,
//! `routes.1`), so that semantic errors found after deserialization can name file:line:col.
//!
//! serde_yaml keeps no spans for values; this is a second pass over the same text with an event
//! parser, which costs microseconds for a stack file and keeps the serde types plain.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Line and column, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Positions of every value (and every mapping key) of a document.
#[derive(Debug, Default)]
pub struct Positions {
    values: HashMap<String, Position>,
    keys: HashMap<String, Position>,
    /// Keys given twice in one mapping: (dotted path, where repeated, where first given).
    pub duplicates: Vec<(String, Position, Position)>,
    /// Where each document of the stream starts.
    pub documents: Vec<Position>,
}

impl Positions {
    /// Index a document. A document that does not parse gives an empty index (serde_yaml
    /// reports the syntax error itself, with its position).
    pub fn index(text: &str) -> Positions {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, true).is_err() {
            return Positions::default();
        }
        Positions {
            values: builder.values,
            keys: builder.keys,
            duplicates: builder.duplicates,
            documents: builder.documents,
        }
    }

    /// Position of the value at `path`, or of the closest ancestor that exists in the file
    /// (a missing field is reported where its parent mapping starts).
    pub fn of(&self, path: &str) -> Option<Position> {
        let mut path = path;
        loop {
            if let Some(position) = self.values.get(path) {
                return Some(*position);
            }
            match path.rfind('.') {
                Some(dot) => path = &path[..dot],
                None => return self.values.get("").copied(),
            }
        }
    }

    /// Position of the key of the mapping entry at `path`.
    pub fn key(&self, path: &str) -> Option<Position> {
        self.keys.get(path).copied()
    }
}

enum Frame {
    /// A mapping; `pending_key` is set once a key has been read and its value not yet.
    Mapping {
        path: String,
        pending_key: Option<String>,
    },
    Sequence {
        path: String,
        next_index: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    values: HashMap<String, Position>,
    keys: HashMap<String, Position>,
    duplicates: Vec<(String, Position, Position)>,
    documents: Vec<Position>,
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

fn position(mark: Marker) -> Position {
    // yaml-rust2 lines are 1-based and columns 0-based.
    Position {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

impl Builder {
    /// The path a new node takes, or None when the node is a mapping key.
    fn place_node(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Sequence { path, next_index }) => {
                let node_path = join(path, &next_index.to_string());
                *next_index += 1;
                Some(node_path)
            }
            Some(Frame::Mapping { path, pending_key }) => pending_key.take().map(|key| join(path, &key)),
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        // Only the first document matters (a second one is an error of its own).
        if self.documents.len() > 1 && event != Event::DocumentStart {
            return;
        }
        match event {
            Event::Scalar(value, ..) => match self.place_node() {
                Some(path) => {
                    self.values.insert(path, position(mark));
                }
                None => {
                    if let Some(Frame::Mapping { path, pending_key }) = self.stack.last_mut() {
                        let key_path = join(path, &value);
                        if let Some(first) = self.keys.get(&key_path) {
                            self.duplicates.push((key_path.clone(), position(mark), *first));
                        } else {
                            self.keys.insert(key_path, position(mark));
                        }
                        *pending_key = Some(value);
                    }
                }
            },
            Event::MappingStart(..) => {
                // A complex key (a mapping used as key) is not something a stack file has.
                let path = self.place_node().unwrap_or_default();
                self.values.insert(path.clone(), position(mark));
                self.stack.push(Frame::Mapping {
                    path,
                    pending_key: None,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.place_node().unwrap_or_default();
                self.values.insert(path.clone(), position(mark));
                self.stack.push(Frame::Sequence { path, next_index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::DocumentStart => {
                self.documents.push(position(mark));
                self.stack.clear();
            }
            Event::Alias(..) => {
                if let Some(path) = self.place_node() {
                    self.values.insert(path, position(mark));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values_and_sequence_items() {
        let text =
            "name: demo\nqueue:\n  dead_letter:\n    max_receive_count: 5\nroutes:\n  - subscribe\n  - unsubscribe\n";
        let positions = Positions::index(text);
        assert_eq!(positions.of("name"), Some(Position { line: 1, column: 7 }));
        assert_eq!(
            positions.of("queue.dead_letter.max_receive_count"),
            Some(Position { line: 4, column: 24 })
        );
        assert_eq!(positions.of("routes.1"), Some(Position { line: 7, column: 5 }));
        assert_eq!(positions.key("queue"), Some(Position { line: 2, column: 1 }));
    }

    #[test]
    fn missing_field_falls_back_to_its_parent() {
        let positions = Positions::index("name: demo\nqueue:\n  visibility_timeout_seconds: 30\n");
        assert_eq!(
            positions.of("queue.dead_letter.max_receive_count").map(|p| p.line),
            Some(3)
        );
    }

    #[test]
    fn duplicate_keys_and_documents_are_found() {
        let positions = Positions::index("name: a\nqueue:\n  x: 1\n  x: 2\nname: b\n---\nname: c\n");
        let duplicates: Vec<(&str, usize, usize)> = positions
            .duplicates
            .iter()
            .map(|(k, at, first)| (k.as_str(), at.line, first.line))
            .collect();
        assert_eq!(duplicates, vec![("queue.x", 4, 3), ("name", 5, 1)]);
        assert_eq!(positions.documents.len(), 2);
        assert_eq!(positions.documents[1].line, 6);
    }

    #[test]
    fn broken_yaml_gives_no_positions() {
        assert_eq!(Positions::index("a: [\n").of("a"), None);
    }
}
