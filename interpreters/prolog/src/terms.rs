//! JSON values as Prolog text, as TEA passes the state to `state/2`: strings become quoted
//! atoms, numbers numbers, `true`/`false`/`null` atoms, arrays lists, and objects
//! `json([Key=Value, ...])` (SWI-Prolog's classic JSON term; TEA's SWI dicts do not exist in
//! Trealla).

use serde_json::Value;

/// `text` as a quoted Prolog atom.
pub fn quoted_atom(text: &str) -> String {
    quoted(text, '\'')
}

/// `text` as a double-quoted Prolog string (a list of characters in Trealla).
pub fn quoted_string(text: &str) -> String {
    quoted(text, '"')
}

fn quoted(text: &str, quote: char) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 32 || c as u32 == 127 => {
                out.push_str(&format!("\\x{:x}\\", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `value` as a Prolog term's text.
pub fn term(value: &Value) -> String {
    let mut out = String::new();
    write_term(value, &mut out);
    out
}

fn write_term(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&format!("({i})"));
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                let text = format!("{f:?}");
                // Rust prints 1e300 as `1e300`; Prolog wants a fraction before the exponent.
                let text = match text.split_once('e') {
                    Some((mantissa, exp)) if !mantissa.contains('.') => {
                        format!("{mantissa}.0e{exp}")
                    }
                    _ => text,
                };
                out.push_str(&format!("({text})"));
            }
        }
        Value::String(s) => out.push_str(&quoted_atom(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_term(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("json([");
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&quoted_atom(key));
                out.push('=');
                write_term(item, out);
            }
            out.push_str("])");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_values_as_prolog_text() {
        assert_eq!(quoted_atom("it's a\\b\n"), "'it\\'s a\\\\b\\n'");
        assert_eq!(
            term(&json!({"a": [1, -2, 2.5, "x", true, null], "b": {}})),
            "json(['a'=[(1),(-2),(2.5),'x',true,null],'b'=json([])])"
        );
        assert_eq!(term(&json!(1e300)), "(1.0e300)");
    }
}
