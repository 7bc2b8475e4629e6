//! Type errors in the user's words: what was written, what the place expects, and how to fix
//! it — never a Rust type name (`struct StepSpec`, `u32`, `untagged enum Goto`).

use serde_json::Value;

/// The key named by serde's "unknown field `x`, expected ..." message.
pub fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// The key named by serde's "missing field `x`" message.
pub fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// The message and hint of a type error at `path`, from serde's `message` and the value
/// written there (absent for a missing key).
pub fn describe(path: &str, message: &str, written: Option<&Value>) -> (String, Option<String>) {
    if let Some(key) = unknown_field(message) {
        let place = super::locate::parent(path);
        let accepted = accepted_keys(message);
        let prefix = if place.is_empty() {
            String::new()
        } else {
            format!("{place}: ")
        };
        let list = if accepted.is_empty() {
            "this place takes no keys".to_string()
        } else {
            format!("expected {}", one_of(&accepted))
        };
        let mut hint = "remove the key or fix its spelling".to_string();
        if let Some(near) = closest(&key, &accepted) {
            hint = format!("did you mean `{near}`? Otherwise {hint}");
        }
        return (format!("{prefix}unknown field `{key}`, {list}"), Some(hint));
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let key = &rest[..rest.find('`').unwrap_or(rest.len())];
        let place = if path.is_empty() { "the file" } else { path };
        return (
            format!("{place}: the key `{key}` is missing"),
            Some(format!("add `{key}:`")),
        );
    }
    let expected = expected(message);
    let found = written.map_or_else(|| "nothing".to_string(), found);
    let place = if path.is_empty() { "the file" } else { path };
    (
        format!("{place}: expected {}, but found {found}", expected.what),
        Some(expected.hint.to_string()),
    )
}

/// What the place expects, in words, and how to write it.
struct Expected {
    what: String,
    hint: &'static str,
}

/// serde's "..., expected X" turned into words. Unknown wordings fall back to serde's own,
/// with every Rust type name replaced.
fn expected(message: &str) -> Expected {
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let choices = accepted_keys(rest);
        return Expected {
            what: format!("one of {}", choices.join(", ")),
            hint: "write one of the values listed",
        };
    }
    let wanted = match message.find("untagged enum ") {
        Some(at) => &message[at..],
        None => message
            .rsplit_once(", expected ")
            .map_or(message, |(_, wanted)| wanted)
            .trim(),
    };
    let (what, hint): (&str, &str) = match wanted {
        "a string" => (
            "text",
            "write text; quote it if it looks like a number or true/false",
        ),
        "a boolean" => (
            "true or false",
            "write `true` or `false` (in YAML 1.2, `yes` and `no` are text)",
        ),
        "u8" | "u16" | "u32" | "u64" | "usize" => (
            "a whole number (0 or more)",
            "write a whole number without quotes, such as 3",
        ),
        "i8" | "i16" | "i32" | "i64" | "isize" => (
            "a whole number",
            "write a whole number without quotes, such as 3",
        ),
        "f32" | "f64" => ("a number", "write a number without quotes, such as 0.5"),
        "a sequence" => (
            "a list",
            "write one item per line starting with `- `, or `[a, b]`",
        ),
        "a map" | "map" => (
            "a mapping",
            "write `key: value` lines indented under the key, or `{key: value}`",
        ),
        "struct StepSpec" => (
            "a step (a mapping with `uses:`, `component:` or `run:`)",
            "write the step as a mapping, such as `{uses: llm.call, with: {prompt: hi}}`",
        ),
        "untagged enum Goto" => (
            "a node name, or a list of `{if: EXPR, to: NODE}` rules",
            "write `goto: NODE`, or one `- if: EXPR` / `to: NODE` rule per item (the last without `if:`)",
        ),
        "untagged enum FanIn" => (
            "`true` or a node name",
            "write `fan_in: true` on the node where parallel branches join; a `dynamic_parallel` node names the node to go to next",
        ),
        "untagged enum When" => (
            "an expression, or true/false",
            "write `when: \"state.score > 0.5\"`",
        ),
        "untagged enum NodeAction" => (
            "an action's name (such as `llm.call`) or a step (a mapping with `uses:`)",
            "write `action: llm.call` with `with:` on the node, or `action: {uses: llm.call, with: {...}}` on a `dynamic_parallel` node",
        ),
        "untagged enum Output" => (
            "a state key, or a mapping of state keys to templates over `result`",
            "write `output: answer`, or `output: {answer: \"{{ result.content }}\"}`",
        ),
        "untagged enum ConditionForm" => (
            "an expression, or `{type: expression, value: EXPR}`",
            "write `condition: \"state.score > 0.5\"`",
        ),
        "untagged enum OneOrMany" => (
            "a name or a list of names",
            "write `exporter: file` or `exporter: [file, otlp]`",
        ),
        other if other.starts_with("struct ") => (
            "a mapping",
            "write `key: value` lines indented under the key, or `{key: value}`",
        ),
        _ => {
            return Expected {
                what: plain(wanted),
                hint: "see the README for what this key takes",
            };
        }
    };
    Expected {
        what: what.to_string(),
        hint,
    }
}

/// A serde wording with Rust's names taken out.
fn plain(wanted: &str) -> String {
    if wanted.starts_with("untagged enum ") {
        return "another kind of value".into();
    }
    let text = wanted
        .replace("untagged enum ", "")
        .replace("struct ", "")
        .replace("a sequence", "a list")
        .replace("a map", "a mapping");
    if text.is_empty() {
        "another kind of value".into()
    } else {
        text
    }
}

/// What was written, in words: "the text `x`", "the number 5", "a list", "a mapping".
pub fn found(value: &Value) -> String {
    match value {
        Value::Null => "nothing (an empty value)".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => {
            let short: String = s.chars().take(60).collect();
            let more = if short.len() < s.len() { "…" } else { "" };
            format!("the text `{short}{more}`")
        }
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// The names in serde's "expected `a`, `b` or `c`" tail.
fn accepted_keys(message: &str) -> Vec<String> {
    let Some((_, tail)) = message.split_once("expected") else {
        return Vec::new();
    };
    tail.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn one_of(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        more => format!("one of {}", more.join(", ")),
    }
}

/// The accepted key nearest to `key`, when it is near enough to be a typo.
fn closest<'a>(key: &str, accepted: &'a [String]) -> Option<&'a str> {
    accepted
        .iter()
        .map(|a| (distance(key, a), a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4) && *d < a.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a.as_str())
}

/// Edit distance (insertions, deletions, substitutions, adjacent swaps).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typos_are_matched() {
        let keys: Vec<String> = ["with", "uses", "name"].map(String::from).to_vec();
        assert_eq!(closest("wiht", &keys), Some("with"));
        assert_eq!(closest("usse", &keys), Some("uses"));
        assert_eq!(closest("zzzzzz", &keys), None);
    }

    #[test]
    fn no_rust_names_remain() {
        for message in [
            "invalid type: string \"x\", expected struct RetrySpec",
            "invalid type: map, expected a sequence",
            "data did not match any variant of untagged enum Strange",
            "invalid value: integer `-1`, expected u64",
        ] {
            let (text, hint) = describe("a.b", message, Some(&json!("x")));
            for rust in ["struct", "enum", "u64", "sequence", "Retry"] {
                assert!(!text.contains(rust), "{text}");
            }
            assert!(hint.is_some());
        }
        assert_eq!(
            describe("settings", "missing field `x`", None).0,
            "settings: the key `x` is missing"
        );
        assert_eq!(
            describe(
                "nodes[0].permissions.fs[0].access",
                "unknown variant `write`, expected `read` or `read_write`",
                Some(&json!("write"))
            )
            .0,
            "nodes[0].permissions.fs[0].access: expected one of read, read_write, but found the text `write`"
        );
    }
}
