//! Maps paths such as `nodes[1].component` to their line and column in the YAML source.
//!
//! serde gives typed values without positions, so positions come from a second, event-level
//! pass over the same text.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// 1-based line and column.
pub type Position = (usize, usize);

/// Positions of every mapping key and sequence item of a YAML document.
#[derive(Debug, Default)]
pub struct Locator {
    positions: HashMap<String, Position>,
}

impl Locator {
    pub fn new(source: &str) -> Self {
        let mut walker = Walker::default();
        let mut parser = Parser::new_from_str(source);
        // A syntax error is reported by serde_yaml with its own position; what was
        // walked before it is still useful.
        let _ = parser.load(&mut walker, false);
        Self {
            positions: walker.positions,
        }
    }

    /// The position of `path` (`nodes[1].component`), else of its nearest located ancestor.
    pub fn find(&self, path: &str) -> Option<Position> {
        let mut path = path;
        loop {
            if let Some(position) = self.positions.get(path) {
                return Some(*position);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }
}

enum Frame {
    Mapping {
        path: String,
        key: Option<String>,
        seen_key: bool,
    },
    Sequence {
        path: String,
        index: usize,
    },
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    positions: HashMap<String, Position>,
}

impl Walker {
    /// Registers a value (scalar or collection start) and returns its path.
    fn value_path(&mut self, mark: Marker) -> String {
        let position = (mark.line(), mark.col() + 1);
        match self.stack.last_mut() {
            None => String::new(),
            Some(Frame::Mapping { path, key, .. }) => {
                let key = key.take().unwrap_or_default();
                join(path, &key)
            }
            Some(Frame::Sequence { path, index }) => {
                let item = format!("{path}[{index}]");
                *index += 1;
                self.positions.entry(item.clone()).or_insert(position);
                item
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let position = (mark.line(), mark.col() + 1);
        match event {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Mapping {
                    path,
                    key,
                    seen_key,
                }) = self.stack.last_mut()
                    && key.is_none()
                {
                    if !*seen_key {
                        // A block mapping starts where its first key does.
                        *seen_key = true;
                        self.positions.insert(path.clone(), position);
                    }
                    let full = join(path, &value);
                    self.positions.entry(full).or_insert(position);
                    *key = Some(value);
                    return;
                }
                self.value_path(mark);
            }
            Event::Alias(_) => {
                self.value_path(mark);
            }
            Event::MappingStart(..) => {
                let path = self.value_path(mark);
                self.stack.push(Frame::Mapping {
                    path,
                    key: None,
                    seen_key: false,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.value_path(mark);
                self.stack.push(Frame::Sequence { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_items() {
        let source = "name: a\nnodes:\n  - name: one\n    component: x.wasm\n  - name: two\n";
        let locator = Locator::new(source);
        assert_eq!(locator.find("name"), Some((1, 1)));
        assert_eq!(locator.find("nodes[0].component"), Some((4, 5)));
        assert_eq!(locator.find("nodes[1].name"), Some((5, 5)));
        // Unknown leaf: falls back to the enclosing item.
        assert_eq!(locator.find("nodes[1].uses"), Some((5, 5)));
    }
}
