//! Maps paths such as `nodes[1].component` to their line and column in the YAML source, and
//! back: the path of the value or key a parse error points at.
//!
//! The typed model carries no positions, so the same parser reads the text a second time into
//! a tree of [`Spanned`] keys and values, and this walks it once.

use super::yaml::{self, Position};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::collections::HashMap;
use std::fmt;

/// Positions of every mapping key and sequence item of a YAML document.
#[derive(Debug, Default)]
pub struct Locator {
    /// Path → where it is written: a key's own position; a mapping where its first key is.
    positions: HashMap<String, Position>,
    /// A key's position → its path.
    keys: HashMap<Position, String>,
    /// A value's position → its path (the outermost one, when several start at one place).
    values: HashMap<Position, String>,
    /// Path → where its key is written.
    key_positions: HashMap<String, Position>,
    /// Path → where its value starts.
    value_positions: HashMap<String, Position>,
}

impl Locator {
    pub fn new(source: &str) -> Self {
        let mut locator = Self::default();
        // A syntax error is reported by the typed parse with its own position.
        if let Ok(root) = yaml::from_str::<Spanned<Tree>>(source) {
            locator.walk("", &root);
        }
        locator
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

    /// Where the key of `path` is written (`nodes[0].wiht` → the `wiht` of that node).
    pub fn key_position(&self, path: &str) -> Option<Position> {
        self.key_positions.get(path).copied()
    }

    /// Where the value of `path` starts.
    pub fn value_position(&self, path: &str) -> Option<Position> {
        self.value_positions.get(path).copied()
    }

    /// The path of the key written at `position`.
    pub fn key_at(&self, position: Position) -> Option<&str> {
        self.keys.get(&position).map(String::as_str)
    }

    /// The path of the value written at `position`.
    pub fn value_at(&self, position: Position) -> Option<&str> {
        self.values.get(&position).map(String::as_str)
    }

    fn walk(&mut self, path: &str, node: &Spanned<Tree>) {
        self.values
            .entry(yaml::position(node.referenced))
            .or_insert_with(|| path.to_string());
        self.value_positions
            .insert(path.to_string(), yaml::position(node.referenced));
        match &node.value {
            Tree::Mapping(entries) => {
                if let Some((first, _)) = entries.first() {
                    // A block mapping starts where its first key does.
                    let at = yaml::position(first.referenced);
                    self.positions.insert(path.to_string(), at);
                    self.values.entry(at).or_insert_with(|| path.to_string());
                }
                for (key, value) in entries {
                    let full = join(path, &key.value.0);
                    let at = yaml::position(key.referenced);
                    self.positions.entry(full.clone()).or_insert(at);
                    self.key_positions.insert(full.clone(), at);
                    self.keys.entry(at).or_insert_with(|| full.clone());
                    self.walk(&full, value);
                }
            }
            Tree::Sequence(items) => {
                for (index, item) in items.iter().enumerate() {
                    let full = format!("{path}[{index}]");
                    self.positions
                        .entry(full.clone())
                        .or_insert(yaml::position(item.referenced));
                    self.walk(&full, item);
                }
            }
            Tree::Scalar => {}
        }
    }
}

/// The parent of `nodes[0].wiht` (`nodes[0]`); empty at the top.
pub fn parent(path: &str) -> &str {
    path.rfind(['.', '[']).map_or("", |cut| &path[..cut])
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A YAML value with the positions of its parts.
enum Tree {
    Mapping(Vec<(Spanned<Key>, Spanned<Tree>)>),
    Sequence(Vec<Spanned<Tree>>),
    Scalar,
}

/// A mapping key as text (`1` for the number 1).
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self(match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        }))
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Key>>()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Tree::Mapping(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::Sequence(items))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Tree, D::Error> {
        Tree::deserialize(deserializer)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Tree, E> {
        Ok(Tree::Scalar)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Tree, E> {
        Ok(Tree::Scalar)
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Tree, E> {
        Ok(Tree::Scalar)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Tree, E> {
        Ok(Tree::Scalar)
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Tree, E> {
        Ok(Tree::Scalar)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Tree, E> {
        Ok(Tree::Scalar)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Tree, E> {
        Ok(Tree::Scalar)
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Tree, E> {
        Ok(Tree::Scalar)
    }

    fn visit_none<E: de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Scalar)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Scalar)
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

    #[test]
    fn flow_mappings_start_at_their_first_key() {
        let source = "edges:\n  - {from: a, to: b}\nwith: {prompt: hi}\n";
        let locator = Locator::new(source);
        assert_eq!(locator.find("edges[0]"), Some((2, 6)));
        assert_eq!(locator.find("edges[0].to"), Some((2, 15)));
        assert_eq!(locator.find("with.prompt"), Some((3, 8)));
    }

    #[test]
    fn maps_positions_back_to_paths() {
        let source = "name: a\nnodes:\n  - name: one\n    wiht: x\n";
        let locator = Locator::new(source);
        assert_eq!(locator.key_at((4, 5)), Some("nodes[0].wiht"));
        assert_eq!(locator.value_at((3, 5)), Some("nodes[0]"));
        assert_eq!(locator.value_at((1, 1)), Some(""));
        assert_eq!(parent("nodes[0].wiht"), "nodes[0]");
        assert_eq!(parent("name"), "");
    }
}
