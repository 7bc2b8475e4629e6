//! The agent file's one YAML parser, serde-saphyr: its settings, and its errors in serde's words.
//!
//! Why serde-saphyr and not saphyr: saphyr gives a tree of marked nodes but no serde, so typing
//! the file with it would mean writing a serde `Deserializer` over that tree (and its error
//! messages) ourselves. serde-saphyr deserializes with serde directly, every error carries a
//! line and column, and its `Spanned<T>` gives the position of any value or key — which is how
//! [`super::locate::Locator`] maps `nodes[1].component` to a place in the file with the same
//! parser. It is maintained, panic-free on hostile input, and replaces the deprecated
//! serde_yaml as well as the second, event-level parser that found positions before.

use serde::de::DeserializeOwned;
use serde_saphyr::{Error, Location, Options};

/// 1-based line and column.
pub type Position = (usize, usize);

/// How the file is read: as serde_yaml read it, YAML 1.2 booleans only (`yes` is text), and
/// `0755` or `1_000` kept as text where the type is open (`variables:`, `config:`). Change
/// `load::TREE_FORMAT` with them: parsed trees kept by the engine are named by it.
pub fn options() -> Options {
    serde_saphyr::options! {
        with_snippet: false,
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
    }
}

/// Deserializes one YAML document (the agent file is read into a value tree, then typed by
/// `typing.rs`; the locator reads it into `Spanned` values).
pub fn from_str<T: DeserializeOwned>(source: &str) -> Result<T, Error> {
    serde_saphyr::from_str_with_options(source, options())
}

pub fn position(location: Location) -> Position {
    (location.line() as usize, location.column() as usize)
}

/// What kind of mistake a parse error is, for the hint that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mistake {
    /// A key the place does not accept; the error is located at the key.
    UnknownKey,
    MissingKey,
    Other,
}

/// A parse error: its message (without the position) and its position, if known.
#[derive(Debug, Clone)]
pub struct Problem {
    pub message: String,
    pub position: Option<Position>,
    pub mistake: Mistake,
}

/// Reads a parse error. Serde's own errors are worded as serde words them (`unknown field
/// `x`, expected one of `a`, `b``); the parser's own keep its wording.
pub fn problem(error: &Error) -> Problem {
    let error = error.without_snippet();
    let position = error.location().filter(|l| l.line() > 0).map(position);
    let (message, mistake) = match error {
        Error::SerdeUnknownField {
            field, expected, ..
        } => (
            format!("unknown field `{field}`, {}", expected_fields(expected)),
            Mistake::UnknownKey,
        ),
        Error::SerdeMissingField { field, .. } => {
            (format!("missing field `{field}`"), Mistake::MissingKey)
        }
        Error::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => (
            format!("invalid type: {unexpected}, expected {expected}"),
            Mistake::Other,
        ),
        Error::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => (
            format!("invalid value: {unexpected}, expected {expected}"),
            Mistake::Other,
        ),
        Error::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            format!(
                "unknown variant `{variant}`, expected {}",
                one_of(expected).unwrap_or_else(|| "none".into())
            ),
            Mistake::Other,
        ),
        Error::InvalidScalar { ty, .. } => {
            (format!("invalid value, expected {ty}"), Mistake::Other)
        }
        Error::DuplicateMappingKey { key, .. } => (
            match key {
                Some(key) => format!("duplicate key `{key}`"),
                None => "duplicate key".to_string(),
            },
            Mistake::Other,
        ),
        other => (without_position(other.to_string()), Mistake::Other),
    };
    Problem {
        message,
        position,
        mistake,
    }
}

/// serde's wording of the fields a struct accepts.
fn expected_fields(fields: &[&str]) -> String {
    match one_of(fields) {
        Some(list) => format!("expected {list}"),
        None => "there are no fields".to_string(),
    }
}

fn one_of(names: &[&str]) -> Option<String> {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        [a, b] => Some(format!("{a} or {b}")),
        more => Some(format!("one of {}", more.join(", "))),
    }
}

/// The parser appends the position to its message; the position is reported in front.
fn without_position(mut message: String) -> String {
    if let Some(cut) = message.rfind(" at line ") {
        message.truncate(cut);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Two {
        a: u32,
        #[serde(default)]
        b: Option<String>,
    }

    #[test]
    fn unknown_keys_are_named_at_their_place() {
        let error = from_str::<Two>("a: 1\nc: 2\n").expect_err("unknown key");
        let problem = problem(&error);
        assert_eq!(problem.message, "unknown field `c`, expected `a` or `b`");
        assert_eq!(problem.position, Some((2, 1)));
        assert_eq!(problem.mistake, Mistake::UnknownKey);
    }

    #[test]
    fn values_read_as_yaml_1_2() {
        let value: serde_json::Value =
            from_str("x: yes\ny: 0755\nz: 1_000\nw: true\n").expect("yaml");
        assert_eq!(
            value,
            serde_json::json!({"x": "yes", "y": "0755", "z": "1_000", "w": true})
        );
    }
}
